//! Calls back into Python that cannot let a forced unwind reach Rust frames.
//!
//! On CPython 3.11-3.13 a daemon thread that re-takes the GIL while the interpreter finalizes
//! is ended with `pthread_exit`, a forced unwind (glibc). Unwinding Rust frames that way is
//! undefined behaviour (RFC 2945: forced unwinding over non-POFs, i.e. frames with live
//! destructors or `catch_unwind`), and in practice aborts the process. Every call from Rust
//! into Python code goes through a C shield that stops the forced unwind before any Rust
//! frame and hangs the thread (what CPython 3.14 does itself). The thread keeps whatever
//! its Rust frames own (leaked until the process exits), so no lock may be held across
//! these calls.

use pyo3::ffi;

type Fn1 = unsafe extern "C" fn(*mut ffi::PyObject) -> *mut ffi::PyObject;
type Fn3 = unsafe extern "C" fn(
    *mut ffi::PyObject,
    *mut ffi::PyObject,
    *mut ffi::PyObject,
) -> *mut ffi::PyObject;

#[cfg(all(target_os = "linux", not(Py_3_14)))]
unsafe extern "C" {
    // Never unwind: they return `f`'s result or never return.
    fn tether_shielded_call1(f: Fn1, a: *mut ffi::PyObject) -> *mut ffi::PyObject;
    fn tether_shielded_call3(
        f: Fn3,
        a: *mut ffi::PyObject,
        b: *mut ffi::PyObject,
        c: *mut ffi::PyObject,
    ) -> *mut ffi::PyObject;
}

#[cfg(all(target_os = "linux", not(Py_3_14)))]
unsafe fn call1(f: Fn1, a: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: forwarded (caller).
    unsafe { tether_shielded_call1(f, a) }
}
#[cfg(all(target_os = "linux", not(Py_3_14)))]
unsafe fn call3(
    f: Fn3,
    a: *mut ffi::PyObject,
    b: *mut ffi::PyObject,
    c: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: forwarded (caller).
    unsafe { tether_shielded_call3(f, a, b, c) }
}
#[cfg(not(all(target_os = "linux", not(Py_3_14))))]
unsafe fn call1(f: Fn1, a: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: forwarded (caller).
    unsafe { f(a) }
}
#[cfg(not(all(target_os = "linux", not(Py_3_14))))]
unsafe fn call3(
    f: Fn3,
    a: *mut ffi::PyObject,
    b: *mut ffi::PyObject,
    c: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: forwarded (caller).
    unsafe { f(a, b, c) }
}

/// `PyObject_Call`, shielded.
///
/// # Safety
///
/// As `PyObject_Call`; no Rust lock held.
pub unsafe fn object_call(
    callable: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    kwargs: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: caller.
    unsafe { call3(ffi::PyObject_Call, callable, args, kwargs) }
}

/// `PyIter_Next`, shielded.
///
/// # Safety
///
/// As `PyIter_Next`; no Rust lock held.
pub unsafe fn iter_next(it: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: caller.
    unsafe { call1(ffi::PyIter_Next, it) }
}

/// `PyObject_GetIter`, shielded.
///
/// # Safety
///
/// As `PyObject_GetIter`; no Rust lock held.
pub unsafe fn get_iter(o: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: caller.
    unsafe { call1(ffi::PyObject_GetIter, o) }
}
