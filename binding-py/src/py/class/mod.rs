//! The extension API: a Rust type `T` as a tied Python class.
//!
//! A binding author implements [`Class`] for `T` and calls [`add_class`] in the module's init.
//! The class gets the wrapper lifecycle every tether class has (one canonical wrapper per
//! native object, revived in place), and what [`Class::define`] declares on a [`ClassDef`]:
//! a constructor, properties, methods (ordinary PyO3 `#[pyfunction]`s taking `Tied<T>` first),
//! static and class methods, `__repr__`, `__eq__`/`__hash__`, subclasses for a Rust type
//! hierarchy. See `docs/extending.md`.

use core::any::TypeId;
use core::ffi::{c_int, c_void};
use core::ptr::{self, NonNull};
use std::ffi::CString;
use std::sync::Arc;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyType};

use crate::py::capi::CApi;
use crate::py::native::{NativeValue, Raised, Visit};
use crate::py::tied::Tied;
use crate::py::types::{self, leak};
mod args;
mod def;
mod meta;
mod registry;
mod trampolines;

pub use args::Args;
pub use def::ClassDef;
pub(crate) use meta::{metaclass, refuse_subinterpreter};
use registry::{REGISTRY, Registered, registered, registered_class};
pub(crate) use trampolines::guard;
use trampolines::{tied_init, tied_new};

/// A Rust type whose values live in native objects tied to Python wrappers.
///
/// `T` is shared between Python threads and Rust threads (`Send + Sync`): state that changes
/// after construction lives behind `T`'s own interior mutability (`Mutex`, `RwLock`, atomics).
/// tether serialises nothing inside `T`; it guarantees that every wrapper of one native object
/// is the same Python object, that `&T` stays valid while any `Tied<T>` or wrapper exists, and
/// that no lock of its own is held while your code runs.
pub trait Class: Send + Sync + Sized + 'static {
    /// The Python class name (`"Node"`).
    const NAME: &'static str;
    /// The module the class is defined in (`"mypkg"`): its `__module__`, for `repr` and pickle.
    const MODULE: &'static str;
    /// The class docstring.
    const DOC: &'static str = "";

    /// Declares the class: constructor, properties, methods, subclasses.
    fn define(class: &mut ClassDef<'_, Self>) -> PyResult<()>;

    /// The registered class a value belongs to: `Self::NAME`, or the name of a subclass
    /// declared with [`ClassDef::subclass`] (for an enum, one per variant). A fresh wrapper of
    /// the value gets that class, so an object always comes back as its most-derived class.
    fn class_name(&self) -> &'static str {
        Self::NAME
    }

    /// Called once on every object made from Python (`Class(...)`), right after it got its
    /// native object and before its wrapper is returned: for what needs the object's own
    /// handle (a child's back-reference to its parent, say).
    fn created(_this: &Tied<Self>) -> PyResult<()> {
        Ok(())
    }

    /// Visits the Python objects the value owns (as PyO3's `__traverse__`): lets the collector
    /// free a cycle through them and the object's wrapper, while the wrapper holds the native
    /// object's only strong reference. Call [`Visit::call`] on each.
    fn traverse(&self, _visit: &Visit<'_>) {}

    /// Drops the Python objects the value owns (as PyO3's `__clear__`): the collector found the
    /// wrapper in unreachable garbage.
    fn clear(&self, _py: Python<'_>) {}
}

impl<T: Class> NativeValue for T {
    fn registered_class(&self) -> Result<NonNull<ffi::PyTypeObject>, Raised> {
        registered_class::<T>(self.class_name())
    }

    fn traverse_value(&self, visit: &Visit<'_>) -> c_int {
        self.traverse(visit);
        visit.result()
    }

    fn clear_value(&self) {
        // SAFETY: tp_clear runs attached.
        self.clear(unsafe { Python::assume_attached() });
    }
}

/// Registers `T`'s class (and the subclasses its [`Class::define`] declares) and adds them to
/// module `m`.
///
/// Errors: `RuntimeError` if `T` or a class of that name was registered already; whatever
/// `define` raises.
pub fn add_class<T: Class>(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let meta = metaclass(py)?.bind(py);
    {
        let reg = registered();
        if reg.iter().any(|r| r.type_id == TypeId::of::<T>()) {
            return Err(PyRuntimeError::new_err(format!(
                "{}.{} is already registered (add_class::<{}>() ran twice)",
                T::MODULE,
                T::NAME,
                core::any::type_name::<T>()
            )));
        }
    }
    let mut def = ClassDef::<T>::new(py, T::NAME, (!T::DOC.is_empty()).then(|| T::DOC.to_owned()));
    T::define(&mut def)?;

    // The C base: the wrapper layout and lifecycle, `tp_new`/`tp_init`, `_move`, `__class__`.
    let methods = types::wrapper_methods(None);
    let slot = |slot, pfunc: *mut c_void| ffi::PyType_Slot { slot, pfunc };
    let mut slots = vec![
        slot(ffi::Py_tp_new, tied_new::<T> as *mut c_void),
        slot(ffi::Py_tp_init, tied_init as *mut c_void),
        slot(ffi::Py_tp_methods, methods.cast()),
    ];
    let lifecycle = [
        ffi::Py_tp_alloc,
        ffi::Py_tp_dealloc,
        ffi::Py_tp_free,
        ffi::Py_tp_traverse,
        ffi::Py_tp_clear,
    ];
    for raw in core::mem::take(&mut def.slots) {
        if lifecycle.contains(&raw.slot) {
            return Err(PyTypeError::new_err(format!(
                "{}: the wrapper lifecycle slots cannot be replaced",
                T::NAME
            )));
        }
        slots.retain(|s| s.slot != raw.slot);
        slots.push(raw);
    }
    let base_name = CString::new(format!("{}._{}Native", T::MODULE, T::NAME))
        .map_err(|_| PyTypeError::new_err("class and module names cannot contain NUL"))?;
    // SAFETY: attached; the slots fit the wrapper layout.
    let base = unsafe { types::make_type::<T>(&base_name, ffi::Py_TPFLAGS_BASETYPE, slots) }
        .map_err(|Raised| PyErr::fetch(py))?;
    // SAFETY: a new reference to the type object.
    let base = unsafe { Bound::from_owned_ptr(py, base.cast()) };

    let mut made = Vec::new();
    build(meta, &base, &mut def, &mut made)?;
    for (name, ty, _) in &made {
        m.add(*name, ty.bind(py))?;
    }
    // No Python code runs while the registry is locked: a free-threaded reader blocked on the
    // lock could not let a stop-the-world requested meanwhile proceed.
    let mut reg = REGISTRY.write().unwrap_or_else(|e| e.into_inner());
    for (name, ty, constructor) in made {
        reg.push(Registered {
            type_id: TypeId::of::<T>(),
            name,
            // The registry's reference: classes live for the process.
            ty: NonNull::new(ty.into_ptr().cast()).expect("a type object"),
            constructor,
        });
    }
    Ok(())
}

/// A made class: its name, the class, its erased constructor.
type Made = (
    &'static str,
    Py<PyAny>,
    Option<Arc<dyn core::any::Any + Send + Sync>>,
);

/// Makes the class `def` declares, with base `base`, then its subclasses.
fn build<'py, T: Class>(
    meta: &Bound<'py, PyType>,
    base: &Bound<'py, PyAny>,
    def: &mut ClassDef<'py, T>,
    made: &mut Vec<Made>,
) -> PyResult<()> {
    let py = meta.py();
    if made.iter().any(|(n, _, _)| *n == def.name) {
        return Err(PyRuntimeError::new_err(format!(
            "{} declares the class name '{}' twice",
            T::NAME,
            def.name
        )));
    }
    let ns = PyDict::new(py);
    ns.set_item("__module__", T::MODULE)?;
    ns.set_item("__qualname__", def.name)?;
    ns.set_item("__doc__", def.doc.as_deref())?;
    let cls = meta.call1((def.name, (base,), ns))?;
    for g in def.getsets.drain(..) {
        let name = PyString::new(py, &g.name.to_string_lossy());
        let getset = leak(ffi::PyGetSetDef {
            name: g.name.into_raw(),
            get: Some(g.get),
            set: g.set,
            doc: g.doc.map_or(ptr::null(), |d| d.into_raw().cast_const()),
            closure: g.closure,
        });
        // SAFETY: attached; `cls` is a live type; the def lives forever.
        let descr = unsafe {
            Bound::from_owned_ptr_or_err(py, ffi::PyDescr_NewGetSet(cls.as_ptr().cast(), getset))
        }?;
        cls.setattr(name, descr)?;
    }
    for (name, value) in def.attrs.drain(..) {
        cls.setattr(name.as_str(), value)?;
    }
    let ctor = def
        .constructor
        .take()
        .map(|c| Arc::new(c) as Arc<dyn core::any::Any + Send + Sync>);
    made.push((def.name, cls.clone().unbind(), ctor));
    for sub in &mut def.subclasses {
        build(meta, &cls, sub, made)?;
    }
    Ok(())
}

/// The adapter's counters for this extension's classes (its native objects and wrappers): a
/// test that makes and drops objects checks that `native_alive`, `wrappers_alive` and
/// `wrappers_cached` come back to where they were. Keys as `tether.testing.stats()`.
pub fn stats() -> Vec<(&'static str, isize)> {
    use crate::runtime::Runtime;
    CApi.state().stats.snapshot().to_vec()
}
