//! `tether.Function`: a native function object that calls back into Python. Arguments and the
//! result cross the native side (tied objects as native references), so
//! `tether.function(lambda v: v)(x) is x`.

use core::ffi::c_void;
use core::ptr::{self, NonNull};

use pyo3::ffi;
use pyo3::prelude::*;

use super::capi::{CApi, CPYTHON};
use super::class::{Class, ClassDef};
use super::kind::{Target, new_native};
use super::native::{Raised, Value, Visit, raise, with_value};
use crate::adapter::PyRef;

/// A new `Function` wrapping `callable` (borrowed).
///
/// # Safety
///
/// Attached; `callable` is live.
pub unsafe fn new_function(
    ty: *mut ffi::PyTypeObject,
    callable: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: attached; `callable` and `ty` live.
    unsafe {
        if ffi::PyCallable_Check(callable) == 0 {
            raise(
                ffi::PyExc_TypeError,
                &format!(
                    "tether.function() expects a callable, not {}",
                    super::native::type_name(callable)
                ),
            );
            return ptr::null_mut();
        }
        let class = PyRef::from_borrowed(CApi, NonNull::new_unchecked(ty.cast()));
        let target = PyRef::from_borrowed(CApi, NonNull::new_unchecked(callable));
        let handle = new_native(class, Target(core::mem::ManuallyDrop::new(target)));
        match CPYTHON.construct(NonNull::new_unchecked(ty), handle) {
            Ok(o) => o.as_ptr(),
            Err(_) => ptr::null_mut(),
        }
    }
}

/// `Function(callable)`.
unsafe extern "C" fn function_new(
    ty: *mut ffi::PyTypeObject,
    args: *mut ffi::PyObject,
    kwds: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: attached (tp_new); `args` is a tuple.
    unsafe {
        if super::types::refuse_abstract(ty).is_err() {
            return ptr::null_mut();
        }
        if (!kwds.is_null() && ffi::PyDict_Size(kwds) != 0) || ffi::PyTuple_Size(args) != 1 {
            raise(
                ffi::PyExc_TypeError,
                "Function() takes exactly one argument (the callable)",
            );
            return ptr::null_mut();
        }
        new_function(ty, ffi::PyTuple_GetItem(args, 0))
    }
}

/// Sends a borrowed Python object through the native side and back: the canonical wrapper for a
/// tied object, the object itself otherwise.
///
/// # Safety
///
/// Attached; `o` is live.
pub unsafe fn round_trip(o: *mut ffi::PyObject) -> Result<*mut ffi::PyObject, Raised> {
    // SAFETY: caller.
    unsafe { Value::from_py(o)?.into_py() }
}

/// Round-trips every element of a tuple into a new tuple.
///
/// # Safety
///
/// Attached; `t` is a tuple.
unsafe fn round_trip_tuple(t: *mut ffi::PyObject) -> Result<*mut ffi::PyObject, Raised> {
    // SAFETY: attached; PyTuple_SetItem steals the new references.
    unsafe {
        let n = ffi::PyTuple_Size(t);
        let out = ffi::PyTuple_New(n);
        if out.is_null() {
            return Err(Raised);
        }
        for i in 0..n {
            match round_trip(ffi::PyTuple_GetItem(t, i)) {
                Ok(v) => {
                    ffi::PyTuple_SetItem(out, i, v);
                }
                Err(e) => {
                    ffi::Py_DECREF(out);
                    return Err(e);
                }
            }
        }
        Ok(out)
    }
}

/// Round-trips every value of a dict into a new dict.
///
/// # Safety
///
/// Attached; `d` is a dict owned by the current call.
unsafe fn round_trip_dict(d: *mut ffi::PyObject) -> Result<*mut ffi::PyObject, Raised> {
    // SAFETY: attached; keys and values from PyDict_Next are borrowed.
    unsafe {
        let out = ffi::PyDict_New();
        if out.is_null() {
            return Err(Raised);
        }
        let (mut pos, mut k, mut v) = (0, ptr::null_mut(), ptr::null_mut());
        while ffi::PyDict_Next(d, &mut pos, &mut k, &mut v) != 0 {
            let r = match round_trip(v) {
                Ok(r) => r,
                Err(e) => {
                    ffi::Py_DECREF(out);
                    return Err(e);
                }
            };
            let rc = ffi::PyDict_SetItem(out, k, r);
            ffi::Py_DECREF(r);
            if rc < 0 {
                ffi::Py_DECREF(out);
                return Err(Raised);
            }
        }
        Ok(out)
    }
}

/// `Function.__call__`: the callable runs through the forced-unwind shield (`shield.rs`);
/// panics become `PanicException`.
unsafe extern "C" fn function_call(
    o: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    kwds: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls tp_call attached.
    let py = unsafe { Python::assume_attached() };
    super::class::guard(py, ptr::null_mut(), || {
        // SAFETY: CPython's contract for this slot is the function's (attached, live arguments).
        Ok(unsafe { call(o, args, kwds) })
    })
}

/// The body of `function_call` (null with an exception set on failure).
///
/// # Safety
///
/// Attached; `o` is a live Function; `args` a tuple, `kwds` a dict or null.
unsafe fn call(
    o: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    kwds: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: caller.
    unsafe {
        let target = match with_value(o, |_, t: &Target| t.0.clone_ref()) {
            Ok(t) => t,
            Err(Raised) => return ptr::null_mut(),
        };
        let Ok(args) = round_trip_tuple(args) else {
            return ptr::null_mut();
        };
        let kwargs = if kwds.is_null() {
            ptr::null_mut()
        } else {
            match round_trip_dict(kwds) {
                Ok(k) => k,
                Err(Raised) => {
                    ffi::Py_DECREF(args);
                    return ptr::null_mut();
                }
            }
        };
        // No lock is held here: a thread parked by the shield keeps what it owns forever.
        let result = super::shield::object_call(target.as_ptr().as_ptr(), args, kwargs);
        ffi::Py_DECREF(args);
        if !kwargs.is_null() {
            ffi::Py_DECREF(kwargs);
        }
        if result.is_null() {
            return ptr::null_mut();
        }
        let out = round_trip(result);
        ffi::Py_DECREF(result);
        out.unwrap_or(ptr::null_mut())
    }
}

/// `Function.__reduce__`: `(tether.function, (callable,))` (the callable must be picklable).
#[pyfunction]
#[pyo3(name = "__reduce__")]
fn function_reduce<'py>(
    this: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, pyo3::types::PyType>, (Bound<'py, PyAny>,))> {
    let py = this.py();
    // SAFETY: attached; `this` is live.
    let target = unsafe { with_value(this.as_ptr(), |_, t: &Target| t.0.clone_ref()) }
        .map_err(|Raised| PyErr::fetch(py))?;
    // SAFETY: a new reference we own (`into_ptr` gives it up).
    let target = unsafe { Bound::from_owned_ptr(py, target.into_ptr().as_ptr()) };
    Ok((this.get_type(), (target,)))
}

/// `tether.Function`: registered like any extension class, `__call__` as a raw slot.
impl Class for Target {
    const NAME: &'static str = "Function";
    const MODULE: &'static str = "tether";
    const DOC: &'static str =
        "Function(callable) -> a native function object calling back into Python";

    fn define(c: &mut ClassDef<'_, Self>) -> PyResult<()> {
        // SAFETY: each function has the slot's signature and works on wrappers of `Target`.
        unsafe {
            c.slot(ffi::Py_tp_new, function_new as *mut c_void)
                .slot(ffi::Py_tp_call, function_call as *mut c_void);
        }
        c.method(wrap_pyfunction!(function_reduce, c.py())?)?;
        Ok(())
    }

    fn traverse(&self, visit: &Visit<'_>) {
        self.visit(visit);
    }
}
