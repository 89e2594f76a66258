//! `tether.Array`: an immutable native sequence whose elements keep their identity.

use core::ffi::c_void;
use core::ptr::{self, NonNull};

use pyo3::ffi;
use pyo3::prelude::*;

use super::capi::{CApi, CPYTHON};
use super::class::{Class, ClassDef};
use super::kind::{Items, new_native};
use super::native::{Raised, Value, Visit, raise, with_value};
use crate::adapter::PyRef;

/// `Array(iterable=())`: the iterable's Python code runs through the forced-unwind shield
/// (`shield.rs`); panics become `PanicException`.
unsafe extern "C" fn array_new(
    ty: *mut ffi::PyTypeObject,
    args: *mut ffi::PyObject,
    kwds: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls tp_new attached.
    let py = unsafe { pyo3::Python::assume_attached() };
    super::class::guard(py, ptr::null_mut(), || {
        // SAFETY: CPython's contract for this slot is the function's (attached, live arguments).
        Ok(unsafe { new_array(ty, args, kwds) })
    })
}

/// The body of `array_new` (null with an exception set on failure).
///
/// # Safety
///
/// Attached; `ty` is Array or a subclass; `args` is a tuple, `kwds` a dict or null.
unsafe fn new_array(
    ty: *mut ffi::PyTypeObject,
    args: *mut ffi::PyObject,
    kwds: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: caller.
    unsafe {
        if super::types::refuse_abstract(ty).is_err() {
            return ptr::null_mut();
        }
        if !kwds.is_null() && ffi::PyDict_Size(kwds) != 0 {
            raise(ffi::PyExc_TypeError, "Array() takes no keyword arguments");
            return ptr::null_mut();
        }
        let n = ffi::PyTuple_Size(args);
        if n > 1 {
            raise(
                ffi::PyExc_TypeError,
                &format!("Array() takes at most 1 argument ({n} given)"),
            );
            return ptr::null_mut();
        }
        let values = if n == 0 {
            Vec::new()
        } else {
            match collect(ffi::PyTuple_GetItem(args, 0)) {
                Ok(v) => v,
                Err(Raised) => return ptr::null_mut(),
            }
        };
        let class = PyRef::from_borrowed(CApi, NonNull::new_unchecked(ty.cast()));
        let handle = new_native(class, Items(values.into_boxed_slice()));
        match CPYTHON.construct(NonNull::new_unchecked(ty), handle) {
            Ok(o) => o.as_ptr(),
            Err(_) => ptr::null_mut(),
        }
    }
}

/// The native values of an iterable's items.
///
/// # Safety
///
/// `iterable` is live; attached.
unsafe fn collect(iterable: *mut ffi::PyObject) -> Result<Vec<Value>, Raised> {
    // SAFETY: attached; every item is a new reference we release after converting it.
    unsafe {
        let it = super::shield::get_iter(iterable);
        if it.is_null() {
            return Err(Raised);
        }
        let mut out = Vec::new();
        loop {
            let item = super::shield::iter_next(it);
            if item.is_null() {
                break;
            }
            let v = Value::from_py(item);
            ffi::Py_DECREF(item);
            match v {
                Ok(v) => out.push(v),
                Err(e) => {
                    ffi::Py_DECREF(it);
                    return Err(e);
                }
            }
        }
        ffi::Py_DECREF(it);
        if !ffi::PyErr_Occurred().is_null() {
            return Err(Raised);
        }
        Ok(out)
    }
}

fn len_of(o: *mut ffi::PyObject) -> Result<usize, Raised> {
    // SAFETY: `o` is a live Array (slot of the Array type); attached.
    unsafe { with_value(o, |_, items: &Items| items.0.len()) }
}

unsafe extern "C" fn array_len(o: *mut ffi::PyObject) -> ffi::Py_ssize_t {
    match len_of(o) {
        Ok(n) => n as ffi::Py_ssize_t,
        Err(Raised) => -1,
    }
}

/// Element `i` (already non-negative for in-range negative indices, as `PySequence_GetItem`
/// adjusts them), or `IndexError`.
fn item(o: *mut ffi::PyObject, i: ffi::Py_ssize_t) -> *mut ffi::PyObject {
    // SAFETY: `o` is a live Array; attached.
    let v = unsafe {
        with_value(o, |_, items: &Items| {
            usize::try_from(i)
                .ok()
                .and_then(|i| items.0.get(i))
                .map(|v| v.clone_value())
        })
    };
    match v {
        // SAFETY: attached.
        Ok(Some(v)) => unsafe { v.into_py() }.unwrap_or(ptr::null_mut()),
        Ok(None) => {
            // SAFETY: reading an exception type object.
            raise(unsafe { ffi::PyExc_IndexError }, "Array index out of range");
            ptr::null_mut()
        }
        Err(Raised) => ptr::null_mut(),
    }
}

unsafe extern "C" fn array_item(o: *mut ffi::PyObject, i: ffi::Py_ssize_t) -> *mut ffi::PyObject {
    item(o, i)
}

/// `iter(arr)`: a sequence iterator, after checking the Array was not moved from (the check at
/// `iter()`, as `len()` and indexing do, not only at the first `next()`).
unsafe extern "C" fn array_iter(o: *mut ffi::PyObject) -> *mut ffi::PyObject {
    if len_of(o).is_err() {
        return ptr::null_mut();
    }
    // SAFETY: `o` is live; attached (CPython calls `tp_iter` attached).
    unsafe { ffi::PySeqIter_New(o) }
}

/// `arr[i]` (negative indices count from the end) and `arr[a:b:c]` (a new Array).
unsafe extern "C" fn array_subscript(
    o: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    let n = match len_of(o) {
        Ok(n) => n as ffi::Py_ssize_t,
        Err(Raised) => return ptr::null_mut(),
    };
    // SAFETY: attached; `key` is live.
    unsafe {
        if ffi::PySlice_Check(key) != 0 {
            let (mut start, mut stop, mut step) = (0, 0, 0);
            if ffi::PySlice_Unpack(key, &mut start, &mut stop, &mut step) < 0 {
                return ptr::null_mut();
            }
            let len = ffi::PySlice_AdjustIndices(n, &mut start, &mut stop, step);
            let picked = with_value(o, |_, items: &Items| {
                (0..len)
                    .map(|k| items.0[(start + k * step) as usize].clone_value())
                    .collect::<Vec<_>>()
            });
            let Ok(picked) = picked else {
                return ptr::null_mut();
            };
            let class = PyRef::from_borrowed(CApi, NonNull::new_unchecked(ffi::Py_TYPE(o).cast()));
            let handle = new_native(class, Items(picked.into_boxed_slice()));
            return match CPYTHON.construct(NonNull::new_unchecked(ffi::Py_TYPE(o)), handle) {
                Ok(o) => o.as_ptr(),
                Err(_) => ptr::null_mut(),
            };
        }
        if ffi::PyIndex_Check(key) == 0 {
            raise(
                ffi::PyExc_TypeError,
                &format!(
                    "Array indices must be integers or slices, not {}",
                    super::native::type_name(key)
                ),
            );
            return ptr::null_mut();
        }
        let mut i = ffi::PyNumber_AsSsize_t(key, ffi::PyExc_IndexError);
        if i == -1 && !ffi::PyErr_Occurred().is_null() {
            return ptr::null_mut();
        }
        if i < 0 {
            i += n;
        }
        if i < 0 {
            raise(ffi::PyExc_IndexError, "Array index out of range");
            return ptr::null_mut();
        }
        item(o, i)
    }
}

/// `Array.__reduce__`: `(type(self), (list(self),))`.
#[pyfunction]
#[pyo3(name = "__reduce__")]
fn array_reduce<'py>(
    this: &Bound<'py, PyAny>,
) -> PyResult<(
    Bound<'py, pyo3::types::PyType>,
    (Bound<'py, pyo3::types::PyList>,),
)> {
    let items = pyo3::types::PyList::empty(this.py());
    for item in this.try_iter()? {
        items.append(item?)?;
    }
    Ok((this.get_type(), (items,)))
}

/// `tether.Array`: registered like any extension class, its sequence protocol as raw slots.
impl Class for Items {
    const NAME: &'static str = "Array";
    const MODULE: &'static str = "tether";
    const DOC: &'static str =
        "Array(iterable=()) -> an immutable native sequence; arr[i] is arr[i]";

    fn define(c: &mut ClassDef<'_, Self>) -> PyResult<()> {
        // SAFETY: each function has the slot's signature and works on wrappers of `Items`.
        unsafe {
            c.slot(ffi::Py_tp_new, array_new as *mut c_void)
                .slot(ffi::Py_sq_length, array_len as *mut c_void)
                .slot(ffi::Py_mp_length, array_len as *mut c_void)
                .slot(ffi::Py_sq_item, array_item as *mut c_void)
                .slot(ffi::Py_tp_iter, array_iter as *mut c_void)
                .slot(ffi::Py_mp_subscript, array_subscript as *mut c_void);
        }
        c.method(wrap_pyfunction!(array_reduce, c.py())?)?;
        Ok(())
    }

    fn traverse(&self, visit: &Visit<'_>) {
        self.visit(visit);
    }
}
