//! [`ClassDef`]: what `Class::define` declares.

use core::ffi::{CStr, c_int, c_void};
use core::marker::PhantomData;
use core::ptr::{self};
use std::ffi::CString;
use std::sync::Arc;

use pyo3::conversion::FromPyObjectOwned;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyCFunction, PyDict, PyTuple};
use pyo3::{IntoPyObjectExt, ffi};

use crate::py::member::{Member, MemberAccess, MemberCheck, member_getset, projection};
use crate::py::tied::{Tied, extract_tied};
use crate::py::types::leak;

use super::Class;
use super::args::Args;
use super::registry::Constructor;
use super::trampolines::{Accessor, get_trampoline, set_trampoline};

unsafe extern "C" {
    /// `PyInstanceMethod_New` (not in pyo3-ffi): a descriptor binding any callable as a method.
    fn PyInstanceMethod_New(func: *mut ffi::PyObject) -> *mut ffi::PyObject;
}

/// A property's getter and setter, type-erased to the C calling convention.
pub(super) struct GetSet {
    pub(super) name: CString,
    pub(super) doc: Option<CString>,
    pub(super) get: ffi::getter,
    pub(super) set: Option<ffi::setter>,
    pub(super) closure: *mut c_void,
}

/// What [`Class::define`] declares.
pub struct ClassDef<'py, T: Class> {
    pub(super) py: Python<'py>,
    pub(super) name: &'static str,
    pub(super) doc: Option<String>,
    pub(super) getsets: Vec<GetSet>,
    pub(super) attrs: Vec<(String, Py<PyAny>)>,
    pub(super) constructor: Option<Box<Constructor<T>>>,
    pub(super) slots: Vec<ffi::PyType_Slot>,
    pub(super) subclasses: Vec<ClassDef<'py, T>>,
    pub(super) _value: PhantomData<T>,
}

impl<'py, T: Class> ClassDef<'py, T> {
    pub(super) fn new(py: Python<'py>, name: &'static str, doc: Option<String>) -> Self {
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

/// `__eq__`'s comparison with the other operand, or `NotImplemented`.
pub(super) fn compare<T: Class>(
    args: &Bound<'_, PyTuple>,
    f: impl Fn(&T) -> bool,
) -> PyResult<Py<PyAny>> {
    let py = args.py();
    let other = args.get_item(0)?;
    match extract_tied::<T>(&other) {
        Ok(o) => f(&o).into_py_any(py),
        Err(_) => Ok(py.NotImplemented()),
    }
}
