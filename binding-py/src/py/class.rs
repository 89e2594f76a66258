//! The extension API: a Rust type `T` as a tied Python class.
//!
//! A binding author implements [`Class`] for `T` and calls [`add_class`] in the module's init.
//! The class gets the wrapper lifecycle every tether class has (one canonical wrapper per
//! native object, revived in place), and what [`Class::define`] declares on a [`ClassDef`]:
//! a constructor, properties, methods (ordinary PyO3 `#[pyfunction]`s taking `Tied<T>` first),
//! static and class methods, `__repr__`, `__eq__`/`__hash__`, subclasses for a Rust type
//! hierarchy. See `docs/extending.md`.

use core::any::TypeId;
use core::ffi::{CStr, c_int, c_void};
use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use std::ffi::CString;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock, RwLock};

use pyo3::conversion::FromPyObjectOwned;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyString, PyTuple, PyType};
use pyo3::{IntoPyObjectExt, ffi};

use super::capi::{CApi, CPYTHON};
use super::member::{Member, MemberAccess, MemberCheck, member_getset, projection};
use super::native::{NativeValue, Raised, Visit, measure_layout, no_class};
use super::tied::{Tied, extract_tied};
use super::types::{self, leak, patch_subclass};
use crate::adapter::PyRef;

unsafe extern "C" {
    /// `PyInstanceMethod_New` (not in pyo3-ffi): a descriptor binding any callable as a method.
    fn PyInstanceMethod_New(func: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

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

/// Builds a `T` from the arguments of a Python-side construction (`Node(1, 2)`).
type Constructor<T> =
    dyn Fn(&Bound<'_, PyTuple>, Option<&Bound<'_, PyDict>>) -> PyResult<T> + Send + Sync;

/// One registered class.
struct Registered {
    type_id: TypeId,
    /// The Python class name, as [`Class::class_name`] returns it.
    name: &'static str,
    /// The class (a strong reference, kept for the process's life).
    ty: NonNull<ffi::PyTypeObject>,
    /// The erased `Arc<Constructor<T>>`, if the class can be instantiated from Python.
    constructor: Option<Arc<dyn core::any::Any + Send + Sync>>,
}

// SAFETY: the type pointer is an immortal-for-us strong reference, only used attached.
unsafe impl Send for Registered {}
// SAFETY: as above.
unsafe impl Sync for Registered {}

/// Every class registered in this extension.
static REGISTRY: RwLock<Vec<Registered>> = RwLock::new(Vec::new());

fn registry() -> std::sync::RwLockReadGuard<'static, Vec<Registered>> {
    REGISTRY.read().unwrap_or_else(|e| e.into_inner())
}

/// The class registered for `T` under `name` (for a fresh wrapper); `TypeError` when none is.
fn registered_class<T: Class>(name: &str) -> Result<NonNull<ffi::PyTypeObject>, Raised> {
    if let Some(r) = registry()
        .iter()
        .find(|r| r.type_id == TypeId::of::<T>() && r.name == name)
    {
        return Ok(r.ty);
    }
    let rust = core::any::type_name::<T>();
    Err(no_class(&format!(
        "a {rust} whose class is '{name}': call tether_py::add_class::<{rust}>(module) in the \
         module's init (and declare '{name}' with ClassDef::subclass if it is a subclass)"
    )))
}

/// The metaclass of every class made here, and of their Python subclasses: forces
/// `__slots__ = ()` (instances have exactly the wrapper layout, so a dead wrapper can be revived
/// in place) and installs the wrapper lifecycle on each new class.
static METACLASS: OnceLock<Py<PyType>> = OnceLock::new();

const METACLASS_SOURCE: &CStr = cr#"
class TiedType(type):
    """Metaclass of tied classes: instances keep all their state in the native object."""

    def __new__(mcls, name, bases, namespace, **kwargs):
        if "__slots__" in namespace:
            raise TypeError(
                f"{name}: subclasses of tied classes cannot declare __slots__ (their state "
                "lives in the native object; add properties in Rust instead)"
            )
        namespace = dict(namespace)
        namespace["__slots__"] = ()
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        _patch(cls)
        return cls
"#;

/// `ImportError` unless the calling thread runs the main interpreter: the adapter's state (the
/// class registry, the at-exit flag, the metaclass) is process-wide, and Python objects must not
/// cross interpreters.
pub(crate) fn refuse_subinterpreter() -> PyResult<()> {
    // SAFETY: attached (callers hold a `Python` token); both calls only read interpreter state.
    let main = unsafe { ffi::PyInterpreterState_Get() == ffi::PyInterpreterState_Main() };
    if main {
        Ok(())
    } else {
        Err(pyo3::exceptions::PyImportError::new_err(
            "tether does not support sub-interpreters: import it in the main interpreter only \
             (its native state is shared by the whole process)",
        ))
    }
}

/// `_patch(cls)`: the metaclass's hook (see [`METACLASS`]).
#[pyfunction]
fn _patch(cls: &Bound<'_, PyType>) -> PyResult<()> {
    // SAFETY: attached; `cls` was just created by `type.__new__` (no instances yet).
    unsafe { patch_subclass(cls.as_ptr().cast()) }.map_err(|Raised| PyErr::fetch(cls.py()))
}

pub(crate) fn metaclass(py: Python<'_>) -> PyResult<&'static Py<PyType>> {
    refuse_subinterpreter()?;
    if let Some(m) = METACLASS.get() {
        return Ok(m);
    }
    measure_layout().map_err(pyo3::exceptions::PyImportError::new_err)?;
    let module = PyModule::from_code(
        py,
        METACLASS_SOURCE,
        c"<tether_py class support>",
        c"tether_py_support",
    )?;
    module.add_function(wrap_pyfunction!(_patch, &module)?)?;
    let meta = module.getattr("TiedType")?.cast_into::<PyType>()?.unbind();
    // The at-exit hook of this extension's adapter (its state is per extension library), and
    // its reset in a forked child. The hook runs where the interpreter really begins to exit:
    // `threading._shutdown()`, which `Py_FinalizeEx` calls before `atexit`'s callbacks (the
    // module is imported here, so it is always called). An `atexit` callback could be run
    // early (`atexit._run_exitfuncs()`, a library clearing atexit), after which every reclaim
    // would leak its cached wrapper for the rest of the process.
    let hook = wrap_pyfunction!(at_exit, &module)?;
    let threading = py.import("threading")?;
    match threading.getattr("_register_atexit") {
        Ok(register) => register.call1((hook,))?,
        Err(_) => py.import("atexit")?.call_method1("register", (hook,))?,
    };
    let kwargs = PyDict::new(py);
    kwargs.set_item(
        "after_in_child",
        wrap_pyfunction!(after_fork_in_child, &module)?,
    )?;
    py.import("os")?
        .call_method("register_at_fork", (), Some(&kwargs))?;
    // A racing initialiser (free-threaded) made one too: keep the first.
    Ok(METACLASS.get_or_init(|| meta))
}

/// Registered with `os.register_at_fork(after_in_child=...)`.
#[pyfunction]
fn after_fork_in_child() {
    use crate::runtime::Runtime;
    CApi.state().after_fork_in_child();
}

/// Registered with `atexit`: from now on nothing attaches to the interpreter.
#[pyfunction]
fn at_exit() {
    CPYTHON.shutdown();
}

/// A property's getter and setter, type-erased to the C calling convention.
struct GetSet {
    name: CString,
    doc: Option<CString>,
    get: ffi::getter,
    set: Option<ffi::setter>,
    closure: *mut c_void,
}

/// What [`Class::define`] declares.
pub struct ClassDef<'py, T: Class> {
    py: Python<'py>,
    name: &'static str,
    doc: Option<String>,
    getsets: Vec<GetSet>,
    attrs: Vec<(String, Py<PyAny>)>,
    constructor: Option<Box<Constructor<T>>>,
    slots: Vec<ffi::PyType_Slot>,
    subclasses: Vec<ClassDef<'py, T>>,
    _value: PhantomData<T>,
}

impl<'py, T: Class> ClassDef<'py, T> {
    fn new(py: Python<'py>, name: &'static str, doc: Option<String>) -> Self {
        Self {
            py,
            name,
            doc,
            getsets: Vec::new(),
            attrs: Vec::new(),
            constructor: None,
            slots: Vec::new(),
            subclasses: Vec::new(),
            _value: PhantomData,
        }
    }

    /// The interpreter (for `wrap_pyfunction!(f, class.py())`).
    pub fn py(&self) -> Python<'py> {
        self.py
    }

    /// The class docstring (default: [`Class::DOC`]).
    pub fn doc(&mut self, doc: &str) -> &mut Self {
        self.doc = Some(doc.to_owned());
        self
    }

    /// Python-side construction: `Class(*args)` extracts `A` (a tuple type such as `()`,
    /// `(i64,)` or `(String, Option<Tied<Node>>)`, see [`Args`]) from the positional arguments
    /// and builds the value.
    /// Keyword arguments are refused with `TypeError`; for those, write a `#[pyfunction]`
    /// factory returning `Tied<T>`. Without a constructor the class cannot be instantiated
    /// from Python (`TypeError`).
    pub fn constructor<A, F>(&mut self, f: F) -> &mut Self
    where
        A: Args,
        F: Fn(A) -> PyResult<T> + Send + Sync + 'static,
    {
        let name = self.name;
        self.constructor = Some(Box::new(move |args, kwargs| {
            if kwargs.is_some_and(|k| !k.is_empty()) {
                return Err(PyTypeError::new_err(format!(
                    "{name}() takes no keyword arguments"
                )));
            }
            f(A::from_args(name, args)?)
        }));
        self
    }

    /// A read-only property: `get(&this)` is returned as the Python value (a `Tied<U>` as its
    /// canonical wrapper). `this` is the instance's native object (`&Tied<T>`, which derefs to
    /// `&T`), held for the call: the closure runs outside every lock of tether's.
    pub fn getter<R, G>(&mut self, name: &str, get: G) -> &mut Self
    where
        R: for<'p> IntoPyObject<'p>,
        G: Fn(&Tied<T>) -> PyResult<R> + Send + Sync + 'static,
    {
        self.push(name, get, None::<fn(&Tied<T>, Py<PyAny>) -> PyResult<()>>)
    }

    /// A read-write property: `set(&this, v)` receives the assigned Python value extracted as
    /// `V` (a wrong type is a `TypeError` naming the property; `del obj.name` is a `TypeError`).
    pub fn property<R, V, G, S>(&mut self, name: &str, get: G, set: S) -> &mut Self
    where
        R: for<'p> IntoPyObject<'p>,
        V: for<'a> FromPyObjectOwned<'a> + 'static,
        G: Fn(&Tied<T>) -> PyResult<R> + Send + Sync + 'static,
        S: Fn(&Tied<T>, V) -> PyResult<()> + Send + Sync + 'static,
    {
        self.push(name, get, Some(set))
    }

    fn push<R, V, G, S>(&mut self, name: &str, get: G, set: Option<S>) -> &mut Self
    where
        R: for<'p> IntoPyObject<'p>,
        V: for<'a> FromPyObjectOwned<'a> + 'static,
        G: Fn(&Tied<T>) -> PyResult<R> + Send + Sync + 'static,
        S: Fn(&Tied<T>, V) -> PyResult<()> + Send + Sync + 'static,
    {
        let access = leak(Accessor::<T, G, S, V> {
            owner: self.name,
            name: name.to_owned(),
            get,
            set,
            _marker: PhantomData,
        });
        self.getsets.push(GetSet {
            name: CString::new(name).unwrap_or_else(|_| c"invalid_name".to_owned()),
            doc: None,
            get: get_trampoline::<T, R, G, S, V>,
            set: access
                .set
                .is_some()
                .then_some(set_trampoline::<T, G, S, V> as ffi::setter),
            closure: ptr::from_mut(access).cast(),
        });
        self
    }

    /// A property stored in a [`Member`] of the value (`project` returns it; it must only borrow,
    /// and runs with the instance locked against `_move()`). Reading is tether's fastest path
    /// (as fast as `tether.Object` fields, which are members); assigning stores any Python
    /// object, a tied object of this extension as a native reference; `del obj.name` unsets it
    /// (reading an unset member is an `AttributeError`).
    pub fn member<P>(&mut self, name: &str, project: P) -> &mut Self
    where
        P: Fn(&T) -> &Member + Send + Sync + 'static,
    {
        self.push_member(name, project, None)
    }

    /// As [`member`](Self::member), accepting only objects of class `U` (and `None` when
    /// `nullable`): anything else is a `TypeError` (`Node.left must be Node | None, not int`),
    /// and the member is unchanged.
    pub fn member_of<U: Class, P>(&mut self, name: &str, nullable: bool, project: P) -> &mut Self
    where
        P: Fn(&T) -> &Member + Send + Sync + 'static,
    {
        let what = format!(
            "{}.{name} must be {}{}",
            self.name,
            U::NAME,
            if nullable { " | None" } else { "" }
        );
        let check: MemberCheck = Box::new(move |_obj: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>| {
            if nullable && v.is_none() {
                return Ok(());
            }
            match extract_tied::<U>(v) {
                Ok(_) => Ok(()),
                Err(e) if e.is_instance_of::<PyTypeError>(v.py()) => {
                    Err(PyTypeError::new_err(format!(
                        "{what}, not {}",
                        v.get_type()
                            .name()
                            .map(|n| n.to_string())
                            .unwrap_or_default()
                    )))
                }
                Err(e) => Err(e),
            }
        });
        self.push_member(name, project, Some(check))
    }

    fn push_member<P>(&mut self, name: &str, project: P, check: Option<MemberCheck>) -> &mut Self
    where
        P: Fn(&T) -> &Member + Send + Sync + 'static,
    {
        let (get, set, closure) = member_getset(MemberAccess::<T, _> {
            name: name.to_owned(),
            project: projection(move |t: &T| Some(project(t))),
            check,
            _value: PhantomData,
        });
        self.getsets.push(GetSet {
            name: CString::new(name).unwrap_or_else(|_| c"invalid_name".to_owned()),
            doc: None,
            get,
            set: Some(set),
            closure,
        });
        self
    }

    /// Sets the docstring of the property declared last.
    pub fn with_doc(&mut self, doc: &str) -> &mut Self {
        if let Some(g) = self.getsets.last_mut() {
            g.doc = CString::new(doc).ok();
        }
        self
    }

    /// A method: an ordinary PyO3 function whose first parameter receives the instance (declare
    /// it `this: Tied<T>`). `class.method(wrap_pyfunction!(f, class.py())?)`; its name, signature
    /// and docstring are the function's.
    pub fn method(&mut self, f: Bound<'py, PyCFunction>) -> PyResult<&mut Self> {
        let name: String = f.getattr("__name__")?.extract()?;
        // SAFETY: attached; `PyInstanceMethod_New` binds any callable as a method.
        let m = unsafe { Bound::from_owned_ptr_or_err(self.py, PyInstanceMethod_New(f.as_ptr())) }?;
        self.attrs.push((name, m.unbind()));
        Ok(self)
    }

    /// A static method (a PyO3 function).
    pub fn staticmethod(&mut self, f: Bound<'py, PyCFunction>) -> PyResult<&mut Self> {
        self.wrapped("staticmethod", f)
    }

    /// A class method (a PyO3 function whose first parameter receives the class).
    pub fn classmethod(&mut self, f: Bound<'py, PyCFunction>) -> PyResult<&mut Self> {
        self.wrapped("classmethod", f)
    }

    fn wrapped(&mut self, kind: &str, f: Bound<'py, PyCFunction>) -> PyResult<&mut Self> {
        let name: String = f.getattr("__name__")?.extract()?;
        let builtins = self.py.import("builtins")?;
        let m = builtins.getattr(kind)?.call1((f,))?;
        self.attrs.push((name, m.unbind()));
        Ok(self)
    }

    /// A class attribute (a constant, or any descriptor).
    pub fn attr(&mut self, name: &str, value: impl IntoPyObject<'py>) -> PyResult<&mut Self> {
        let v = value.into_py_any(self.py)?;
        self.attrs.push((name.to_owned(), v));
        Ok(self)
    }

    /// `__repr__`.
    pub fn repr<F>(&mut self, f: F) -> PyResult<&mut Self>
    where
        F: Fn(&T) -> PyResult<String> + Send + Sync + 'static,
    {
        self.instance_method(c"__repr__", move |this: &T, _args: &Bound<'_, PyTuple>| {
            f(this).map(|s| s.into_py_any(_args.py()))?
        })
    }

    /// `__eq__` (and `__ne__`) comparing values, and `__hash__` from `hash`. Without this, `==`
    /// and `hash` are identity, which is what tied objects usually want. Comparing with an
    /// object that is not a `T` returns `NotImplemented`.
    pub fn eq_hash<E, H>(&mut self, eq: E, hash: H) -> PyResult<&mut Self>
    where
        E: Fn(&T, &T) -> bool + Send + Sync + 'static,
        H: Fn(&T) -> u64 + Send + Sync + 'static,
    {
        let eq = Arc::new(eq);
        let ne = eq.clone();
        self.instance_method(c"__eq__", move |this: &T, args: &Bound<'_, PyTuple>| {
            compare(args, |other| eq(this, other))
        })?;
        self.instance_method(c"__ne__", move |this: &T, args: &Bound<'_, PyTuple>| {
            compare(args, |other| !ne(this, other))
        })?;
        self.instance_method(c"__hash__", move |this: &T, args: &Bound<'_, PyTuple>| {
            // Python hashes are signed; -1 is reserved for errors, which Python remaps itself.
            (hash(this) as i64).into_py_any(args.py())
        })
    }

    /// A method implemented by a closure over `&T` and the remaining positional arguments.
    fn instance_method<F>(&mut self, name: &'static CStr, f: F) -> PyResult<&mut Self>
    where
        F: Fn(&T, &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> + Send + Sync + 'static,
    {
        let func = PyCFunction::new_closure(
            self.py,
            Some(name),
            None,
            move |args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>| {
                let this = args.get_item(0)?;
                let this = extract_tied::<T>(&this)?;
                let rest = args.get_slice(1, args.len());
                f(&this, &rest)
            },
        )?;
        // SAFETY: attached; binds the closure as a method.
        let m =
            unsafe { Bound::from_owned_ptr_or_err(self.py, PyInstanceMethod_New(func.as_ptr())) }?;
        self.attrs
            .push((name.to_string_lossy().into_owned(), m.unbind()));
        Ok(self)
    }

    /// A raw CPython type slot on the class's C base (`Py_tp_new`, `Py_sq_item`, `Py_tp_call`,
    /// …), replacing tether's own for the same slot. The low-level layer under the builder
    /// (tether's `Array` and `Function` use it); the lifecycle slots (`tp_alloc`, `tp_dealloc`,
    /// `tp_free`, `tp_traverse`, `tp_clear`) cannot be replaced. Only on the top class.
    ///
    /// # Safety
    ///
    /// `pfunc` is a valid function for `slot` on instances laid out as tether wrappers whose
    /// native objects hold a `T` (reach the value with the crate's own accessors); it must not
    /// unwind.
    pub unsafe fn slot(&mut self, slot: c_int, pfunc: *mut c_void) -> &mut Self {
        self.slots.push(ffi::PyType_Slot { slot, pfunc });
        self
    }

    /// A registered subclass of this class, for a Rust type hierarchy: values whose
    /// [`Class::class_name`] is `name` come back as it. `define` declares what only the
    /// subclass has (its properties may assume the value is of that kind, and return a
    /// `TypeError` when it is not).
    pub fn subclass(
        &mut self,
        name: &'static str,
        define: impl FnOnce(&mut ClassDef<'py, T>) -> PyResult<()>,
    ) -> PyResult<&mut Self> {
        let mut sub = ClassDef::new(self.py, name, None);
        define(&mut sub)?;
        self.subclasses.push(sub);
        Ok(self)
    }
}

/// The positional arguments of a constructor: `()`, `(A,)`, `(A, B)`, … up to eight, each
/// element extracted with PyO3 (`i64`, `String`, `Option<Tied<U>>`, `Vec<f64>`, …).
pub trait Args: Sized {
    /// Extracts the arguments of `name(...)`: a wrong count or a wrong type is a `TypeError`
    /// that says which.
    fn from_args(name: &str, args: &Bound<'_, PyTuple>) -> PyResult<Self>;
}

/// An extraction error with `where_` in front of its message: a `TypeError` or `ValueError`
/// keeps its type; anything else (a moved-from object's `RuntimeError`) is returned unchanged.
fn in_context(py: Python<'_>, e: PyErr, where_: impl FnOnce() -> String) -> PyErr {
    if e.is_instance_of::<PyTypeError>(py) {
        PyTypeError::new_err(format!("{}: {}", where_(), e.value(py)))
    } else if e.is_instance_of::<pyo3::exceptions::PyValueError>(py) {
        pyo3::exceptions::PyValueError::new_err(format!("{}: {}", where_(), e.value(py)))
    } else {
        e
    }
}

fn arg_count(name: &str, args: &Bound<'_, PyTuple>, n: usize) -> PyResult<()> {
    if args.len() == n {
        return Ok(());
    }
    Err(PyTypeError::new_err(format!(
        "{name}() takes {n} positional argument{} ({} given)",
        if n == 1 { "" } else { "s" },
        args.len()
    )))
}

impl Args for () {
    fn from_args(name: &str, args: &Bound<'_, PyTuple>) -> PyResult<Self> {
        arg_count(name, args, 0)
    }
}

macro_rules! impl_args {
    ($n:literal; $($t:ident $i:tt),+) => {
        impl<$($t),+> Args for ($($t,)+)
        where
            $($t: for<'a> FromPyObjectOwned<'a>,)+
        {
            fn from_args(name: &str, args: &Bound<'_, PyTuple>) -> PyResult<Self> {
                arg_count(name, args, $n)?;
                Ok(($(
                    args.get_item($i)?.extract::<$t>().map_err(|e| {
                        in_context(args.py(), e.into(), || format!("{name}() argument {}", $i + 1))
                    })?,
                )+))
            }
        }
    };
}

impl_args!(1; A 0);
impl_args!(2; A 0, B 1);
impl_args!(3; A 0, B 1, C 2);
impl_args!(4; A 0, B 1, C 2, D 3);
impl_args!(5; A 0, B 1, C 2, D 3, E 4);
impl_args!(6; A 0, B 1, C 2, D 3, E 4, F 5);
impl_args!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
impl_args!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

/// `__eq__`'s comparison with the other operand, or `NotImplemented`.
fn compare<T: Class>(args: &Bound<'_, PyTuple>, f: impl Fn(&T) -> bool) -> PyResult<Py<PyAny>> {
    let py = args.py();
    let other = args.get_item(0)?;
    match extract_tied::<T>(&other) {
        Ok(o) => f(&o).into_py_any(py),
        Err(_) => Ok(py.NotImplemented()),
    }
}

/// A property's functions and names (leaked: the getset descriptor points to it for the life
/// of the class).
struct Accessor<T, G, S, V> {
    owner: &'static str,
    name: String,
    get: G,
    set: Option<S>,
    _marker: PhantomData<fn(&T, V)>,
}

/// Runs `f` attached, turning a Rust panic into `pyo3_runtime.PanicException` and an error into
/// a raised exception (no panic crosses the C boundary).
fn guard<R>(py: Python<'_>, error: R, f: impl FnOnce() -> PyResult<R>) -> R {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            e.restore(py);
            error
        }
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a Rust panic".to_owned());
            pyo3::panic::PanicException::new_err(msg).restore(py);
            error
        }
    }
}

/// The instance's native object, as an owned handle: the user's code runs on it outside every
/// lock (it may release the GIL or detach, during which the wrapper could be moved from).
///
/// # Safety
///
/// Attached; `o` is live.
unsafe fn instance<T: Class>(py: Python<'_>, o: *mut ffi::PyObject) -> PyResult<Tied<T>> {
    // SAFETY: `o` is live (caller).
    let obj = unsafe { Bound::from_borrowed_ptr(py, o) };
    extract_tied::<T>(&obj)
}

unsafe extern "C" fn get_trampoline<T, R, G, S, V>(
    o: *mut ffi::PyObject,
    closure: *mut c_void,
) -> *mut ffi::PyObject
where
    T: Class,
    R: for<'p> IntoPyObject<'p>,
    G: Fn(&Tied<T>) -> PyResult<R>,
{
    // SAFETY: CPython calls getters attached.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: the closure is this property's leaked accessor.
    let access = unsafe { &*closure.cast::<Accessor<T, G, S, V>>() };
    guard(py, ptr::null_mut(), || {
        // SAFETY: attached; `o` is live.
        let this = unsafe { instance::<T>(py, o) }?;
        let value = (access.get)(&this)?;
        Ok(value.into_py_any(py)?.into_ptr())
    })
}

unsafe extern "C" fn set_trampoline<T, G, S, V>(
    o: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
    closure: *mut c_void,
) -> c_int
where
    T: Class,
    V: for<'a> FromPyObjectOwned<'a>,
    S: Fn(&Tied<T>, V) -> PyResult<()>,
{
    // SAFETY: CPython calls setters attached.
    let py = unsafe { Python::assume_attached() };
    // SAFETY: the closure is this property's leaked accessor.
    let access = unsafe { &*closure.cast::<Accessor<T, G, S, V>>() };
    guard(py, -1, || {
        let Some(set) = &access.set else {
            return Err(PyTypeError::new_err(format!(
                "{}.{} is read-only",
                access.owner, access.name
            )));
        };
        if value.is_null() {
            return Err(PyTypeError::new_err(format!(
                "{}.{} cannot be deleted",
                access.owner, access.name
            )));
        }
        // SAFETY: attached; `o` is live.
        let this = unsafe { instance::<T>(py, o) }?;
        // SAFETY: `value` is live (borrowed from the caller).
        let value = unsafe { Bound::from_borrowed_ptr(py, value) };
        let v = value.extract::<V>().map_err(|e| {
            in_context(py, e.into(), || format!("{}.{}", access.owner, access.name))
        })?;
        set(&this, v)?;
        Ok(0)
    })
}

/// `tp_new` of every class registered for `T` (and their Python subclasses): the constructor
/// of the nearest registered class in `cls`'s MRO builds the value; a Python subclass is
/// recorded as the object's class, so its wrappers (fresh or revived) keep being instances of it.
unsafe extern "C" fn tied_new<T: Class>(
    cls: *mut ffi::PyTypeObject,
    args: *mut ffi::PyObject,
    kwds: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls tp_new attached.
    let py = unsafe { Python::assume_attached() };
    guard(py, ptr::null_mut(), || {
        // SAFETY: attached; `cls` is live.
        unsafe { types::refuse_abstract(cls) }.map_err(|Raised| PyErr::fetch(py))?;
        // SAFETY: live objects from CPython; `args` is a tuple, `kwds` a dict or null.
        let (cls, args, kwds) = unsafe {
            (
                Bound::from_borrowed_ptr(py, cls.cast()).cast_into::<PyType>()?,
                Bound::from_borrowed_ptr(py, args).cast_into::<PyTuple>()?,
                Bound::<PyAny>::from_borrowed_ptr_or_opt(py, kwds)
                    .map(|k| k.cast_into::<PyDict>())
                    .transpose()?,
            )
        };
        let mro = cls
            .getattr(pyo3::intern!(py, "__mro__"))?
            .cast_into::<PyTuple>()?;
        let (ctor, registered) = {
            let reg = registry();
            let entry = |base: &Bound<'_, PyAny>| {
                reg.iter().find(|r| {
                    r.type_id == TypeId::of::<T>() && r.ty.as_ptr().cast() == base.as_ptr()
                })
            };
            // Whether `cls` itself is registered; the constructor of the nearest registered
            // class that declares one.
            let registered = entry(cls.as_any()).is_some();
            let ctor = mro
                .iter()
                .find_map(|base| entry(&base).and_then(|e| e.constructor.clone()));
            (ctor, registered)
        };
        let ctor = ctor
            .and_then(|c| c.downcast::<Box<Constructor<T>>>().ok())
            .ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "cannot create '{}' instances from Python (no constructor is declared)",
                    cls.name().map(|n| n.to_string()).unwrap_or_default()
                ))
            })?;
        let value = ctor(&args, kwds.as_ref())?;
        // A registered class: the value's own registered class (most-derived). A Python
        // subclass: recorded, with a strong reference (it must outlive the object).
        let class = (!registered).then(|| {
            // SAFETY: attached; a new reference to a live type.
            unsafe { PyRef::from_borrowed(CApi, NonNull::new_unchecked(cls.as_ptr())) }
        });
        let tied = Tied::with_class(value, class);
        T::created(&tied)?;
        let o = tied.to_object(py)?;
        Ok(o.into_ptr())
    })
}

/// `tp_init` of every tied class: construction happened in `tp_new`; accepts (and ignores) the
/// arguments, so Python subclasses can define `__init__` and call `super().__init__(...)`.
unsafe extern "C" fn tied_init(
    _o: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
    _kwds: *mut ffi::PyObject,
) -> c_int {
    0
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
        let reg = registry();
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
