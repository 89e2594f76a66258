//! The C entry points CPython calls on tied classes: property getters and setters, `tp_new`,
//! `tp_init`. Each catches panics and turns errors into raised exceptions.

use core::any::TypeId;
use core::ffi::{c_int, c_void};
use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use std::panic::{AssertUnwindSafe, catch_unwind};

use pyo3::conversion::FromPyObjectOwned;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple, PyType};
use pyo3::{IntoPyObjectExt, ffi};

use crate::adapter::PyRef;
use crate::py::capi::CApi;
use crate::py::native::Raised;
use crate::py::tied::{Tied, extract_tied};
use crate::py::types;

use super::Class;
use super::args::in_context;
use super::registry::{Constructor, registered};

/// A property's functions and names (leaked: the getset descriptor points to it for the life
/// of the class).
pub(super) struct Accessor<T, G, S, V> {
    pub(super) owner: &'static str,
    pub(super) name: String,
    pub(super) get: G,
    pub(super) set: Option<S>,
    pub(super) _marker: PhantomData<fn(&T, V)>,
}

/// Runs `f` attached, turning a Rust panic into `pyo3_runtime.PanicException` and an error into
/// a raised exception (no panic crosses the C boundary).
pub(crate) fn guard<R>(py: Python<'_>, error: R, f: impl FnOnce() -> PyResult<R>) -> R {
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

pub(super) unsafe extern "C" fn get_trampoline<T, R, G, S, V>(
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

pub(super) unsafe extern "C" fn set_trampoline<T, G, S, V>(
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
pub(super) unsafe extern "C" fn tied_new<T: Class>(
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
            let reg = registered();
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
pub(super) unsafe extern "C" fn tied_init(
    _o: *mut ffi::PyObject,
    _args: *mut ffi::PyObject,
    _kwds: *mut ffi::PyObject,
) -> c_int {
    0
}
