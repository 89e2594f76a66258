//! [`new_field_descriptor`]: the data descriptor of a `tether.Object` field, which owns its
//! accessors.
//!
//! An extension class's members are `getset` descriptors whose definitions live as long as the
//! process (the class does too). A `tether.Object` class may be made and dropped at run time (a
//! class factory, a class in a test function): its fields' accessors must be freed with it. A
//! getset descriptor cannot own them, so a field is this small descriptor type instead: the same
//! getter and setter functions (`member_get`, `member_set`), called with the closure the
//! descriptor owns and frees in its dealloc. Nothing can call the accessors after that: every
//! call goes through the descriptor, which the caller holds.

use core::ffi::{c_int, c_void};
use core::ptr;
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;

use super::capi::CApi;
use super::native::{raise, type_name};
use crate::runtime::Runtime;
use crate::state::Stats;

/// The accessors a field descriptor calls and owns (`get` and `closure` first: with `owner`
/// they are all that a read loads, next to the object's head).
#[repr(C)]
pub(crate) struct Accessors {
    pub(crate) get: unsafe extern "C" fn(*mut ffi::PyObject, *mut c_void) -> *mut ffi::PyObject,
    /// Passed to `get` and `set`; freed by `free` when the descriptor dies.
    pub(crate) closure: *mut c_void,
    pub(crate) set:
        unsafe extern "C" fn(*mut ffi::PyObject, *mut ffi::PyObject, *mut c_void) -> c_int,
    pub(crate) free: unsafe fn(*mut c_void),
}

#[cfg(all(Py_GIL_DISABLED, Py_3_14))]
// SAFETY: the signature is CPython's (3.14, `Include/cpython/object.h`):
// `int PyUnstable_Object_EnableDeferredRefcount(PyObject *obj)`; not in pyo3-ffi yet.
unsafe extern "C" {
    /// Gives `obj` (a GC-tracked object) a deferred reference count: references from the
    /// interpreter's stack are not counted, and the collector frees it. 1 if enabled.
    fn PyUnstable_Object_EnableDeferredRefcount(obj: *mut ffi::PyObject) -> c_int;
}

/// The descriptor object.
#[repr(C)]
struct FieldDescr {
    head: ffi::PyObject,
    /// The class whose instances it applies to (a strong reference, as a getset descriptor's
    /// `d_type`): every access checks the instance against it. Null only after `tp_clear`.
    owner: *mut ffi::PyObject,
    accessors: Accessors,
    /// The field's name (a strong reference to a `str`).
    name: *mut ffi::PyObject,
}

/// The descriptor type, made once (`tether._core.field`).
static FIELD_TYPE: OnceLock<Py<pyo3::types::PyType>> = OnceLock::new();

/// A new field descriptor for instances of `owner`, named `name`, calling (and owning)
/// `accessors`. On failure the accessors' closure is freed.
///
/// # Safety
///
/// `accessors.get`/`set` accept `accessors.closure` and instances of `owner`;
/// `accessors.free` frees that closure.
pub(crate) unsafe fn new_field_descriptor<'py>(
    owner: &Bound<'py, pyo3::types::PyType>,
    name: &Bound<'py, pyo3::types::PyString>,
    accessors: Accessors,
) -> PyResult<Bound<'py, PyAny>> {
    let py = owner.py();
    let ty = match field_type(py) {
        Ok(t) => t,
        Err(e) => {
            // SAFETY: the closure is ours to free (caller) and was never shared.
            unsafe { (accessors.free)(accessors.closure) };
            return Err(e);
        }
    };
    // SAFETY: attached; `ty` is the descriptor type, whose basic size is a `FieldDescr`.
    let o = unsafe { ffi::PyType_GenericAlloc(ty.as_ptr().cast(), 0) };
    if o.is_null() {
        // SAFETY: as above.
        unsafe { (accessors.free)(accessors.closure) };
        return Err(PyErr::fetch(py));
    }
    let d = o.cast::<FieldDescr>();
    // SAFETY: `o` is a fresh, zeroed `FieldDescr` nobody else sees yet; the references are new.
    unsafe {
        ptr::write(&raw mut (*d).owner, owner.clone().into_any().into_ptr());
        ptr::write(&raw mut (*d).name, name.clone().into_any().into_ptr());
        ptr::write(&raw mut (*d).accessors, accessors);
        // (`PyType_GenericAlloc` already tracked it for the collector; `traverse` skips nulls.)
        // Free-threaded, as CPython does for its own descriptors (`descr_new`): a deferred
        // count, so the attribute lookup of every read of the field takes no reference to the
        // descriptor (its stack reference is not counted). The collector frees it. (A failure
        // leaves an ordinary count: harmless.)
        #[cfg(all(Py_GIL_DISABLED, Py_3_14))]
        PyUnstable_Object_EnableDeferredRefcount(o);
        // Not serialized: a descriptor may die on any attached thread, free-threaded.
        Stats::add(&CApi.state().stats.field_descriptors, 1, false);
        Ok(Bound::from_owned_ptr(py, o))
    }
}

fn field_type(py: Python<'_>) -> PyResult<&'static Py<pyo3::types::PyType>> {
    if let Some(t) = FIELD_TYPE.get() {
        return Ok(t);
    }
    let mut slots = [
        ffi::PyType_Slot {
            slot: ffi::Py_tp_dealloc,
            pfunc: field_dealloc as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_traverse,
            pfunc: field_traverse as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_clear,
            pfunc: field_clear as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_descr_get,
            pfunc: field_get as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_descr_set,
            pfunc: field_set as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_repr,
            pfunc: field_repr as *mut c_void,
        },
        ffi::PyType_Slot {
            slot: ffi::Py_tp_doc,
            pfunc: c"A field of a tether.Object class (stored in the native object)."
                .as_ptr()
                .cast_mut()
                .cast(),
        },
        ffi::PyType_Slot {
            slot: 0,
            pfunc: ptr::null_mut(),
        },
    ];
    let mut spec = ffi::PyType_Spec {
        name: c"tether._core.field".as_ptr(),
        basicsize: core::mem::size_of::<FieldDescr>() as c_int,
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_HAVE_GC) as _,
        slots: slots.as_mut_ptr(),
    };
    // SAFETY: attached; the spec and slots are valid for the call (CPython copies them).
    let ty = unsafe { ffi::PyType_FromSpec(&mut spec) };
    if ty.is_null() {
        return Err(PyErr::fetch(py));
    }
    // SAFETY: a new reference to a type object.
    let ty = unsafe { Bound::from_owned_ptr(py, ty) }.cast_into::<pyo3::types::PyType>()?;
    // A racing first use (free-threaded) made one too: keep the first.
    Ok(FIELD_TYPE.get_or_init(|| ty.unbind()))
}

/// The descriptor behind `o`.
///
/// # Safety
///
/// `o` is a live field descriptor.
unsafe fn descr<'a>(o: *mut ffi::PyObject) -> &'a FieldDescr {
    // SAFETY: caller.
    unsafe { &*o.cast::<FieldDescr>() }
}

/// Whether the descriptor applies to `obj` (an instance of its class); raises `TypeError` for
/// an instance of another class, or `RuntimeError` for a descriptor the collector cleared.
///
/// # Safety
///
/// Attached; `d` and `obj` are live.
unsafe fn applies(d: &FieldDescr, obj: *mut ffi::PyObject) -> bool {
    if d.owner.is_null() {
        raise(
            // SAFETY: reading an exception type object.
            unsafe { ffi::PyExc_RuntimeError },
            "this field descriptor was cleared by the garbage collector",
        );
        return false;
    }
    // SAFETY: both live (caller).
    if unsafe { ffi::PyObject_TypeCheck(obj, d.owner.cast()) } != 0 {
        return true;
    }
    not_applicable(d, obj);
    false
}

#[cold]
#[inline(never)]
fn not_applicable(d: &FieldDescr, obj: *mut ffi::PyObject) {
    raise(
        // SAFETY: reading an exception type object.
        unsafe { ffi::PyExc_TypeError },
        &format!(
            "field '{}' of '{}' objects does not apply to a '{}' object",
            text(d.name),
            class_name(d.owner),
            type_name(obj)
        ),
    );
}

/// A class's own name (not its metaclass's), for messages.
fn class_name(ty: *mut ffi::PyObject) -> String {
    // SAFETY: `ty` is a live type object; `tp_name` is a valid C string for every type.
    unsafe { core::ffi::CStr::from_ptr((*ty.cast::<ffi::PyTypeObject>()).tp_name) }
        .to_string_lossy()
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A `str`'s text, for messages.
fn text(s: *mut ffi::PyObject) -> String {
    // SAFETY: `s` is a live `str` (a descriptor's name); attached.
    let p = unsafe { ffi::PyUnicode_AsUTF8AndSize(s, ptr::null_mut()) };
    if p.is_null() {
        // SAFETY: attached; the name's encoding error is replaced by "?" below.
        unsafe { ffi::PyErr_Clear() };
        return "?".to_owned();
    }
    // SAFETY: a NUL-terminated UTF-8 buffer owned by `s`.
    unsafe { core::ffi::CStr::from_ptr(p) }
        .to_string_lossy()
        .into_owned()
}

/// `tp_descr_get`: the field's value on an instance of exactly the descriptor's class; every
/// other case in [`field_get_rest`]. Both ends are tail calls, so the getter saves no registers.
unsafe extern "C" fn field_get(
    o: *mut ffi::PyObject,
    obj: *mut ffi::PyObject,
    ty: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: CPython calls this on a live field descriptor, attached.
    let d = unsafe { descr(o) };
    // SAFETY: `obj` is live when non-null.
    if !obj.is_null() && unsafe { ffi::Py_TYPE(obj) }.cast() == d.owner {
        // SAFETY: `obj` is an instance of the owner, which the accessors accept (constructor).
        return unsafe { (d.accessors.get)(obj, d.accessors.closure) };
    }
    // SAFETY: as called.
    unsafe { field_get_rest(o, obj, ty) }
}

/// [`field_get`] on the class (the descriptor itself), on a subclass instance, or on anything
/// else (`TypeError`).
///
/// # Safety
///
/// As `tp_descr_get`.
#[cold]
#[inline(never)]
unsafe fn field_get_rest(
    o: *mut ffi::PyObject,
    obj: *mut ffi::PyObject,
    _ty: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    if obj.is_null() {
        // SAFETY: `o` is a live descriptor; attached.
        unsafe { ffi::Py_INCREF(o) };
        return o;
    }
    // SAFETY: a live field descriptor (caller).
    let d = unsafe { descr(o) };
    // SAFETY: attached; both live.
    if !unsafe { applies(d, obj) } {
        return ptr::null_mut();
    }
    // SAFETY: as in `field_get`.
    unsafe { (d.accessors.get)(obj, d.accessors.closure) }
}

/// `tp_descr_set`: assignment (`value` non-null) or `del` (null) on an instance.
unsafe extern "C" fn field_set(
    o: *mut ffi::PyObject,
    obj: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
) -> c_int {
    // SAFETY: CPython calls this on a live field descriptor, attached, with a live `obj`.
    let d = unsafe { descr(o) };
    // SAFETY: attached; both live.
    if !unsafe { applies(d, obj) } {
        return -1;
    }
    // SAFETY: as in `field_get`.
    unsafe { (d.accessors.set)(obj, value, d.accessors.closure) }
}

unsafe extern "C" fn field_repr(o: *mut ffi::PyObject) -> *mut ffi::PyObject {
    // SAFETY: CPython calls this on a live field descriptor, attached.
    let d = unsafe { descr(o) };
    let owner = if d.owner.is_null() {
        "?".to_owned()
    } else {
        class_name(d.owner)
    };
    let s = format!("<field '{}' of '{owner}' objects>", text(d.name));
    // SAFETY: attached; a valid UTF-8 buffer of that length.
    unsafe { ffi::PyUnicode_FromStringAndSize(s.as_ptr().cast(), s.len() as ffi::Py_ssize_t) }
}

unsafe extern "C" fn field_traverse(
    o: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: CPython calls this on a live field descriptor.
    let d = unsafe { descr(o) };
    for p in [d.owner, d.name] {
        if !p.is_null() {
            // SAFETY: CPython's visitor on an object we own a reference to.
            let r = unsafe { visit(p, arg) };
            if r != 0 {
                return r;
            }
        }
    }
    0
}

unsafe extern "C" fn field_clear(o: *mut ffi::PyObject) -> c_int {
    let d = o.cast::<FieldDescr>();
    // SAFETY: a live field descriptor; attached (the collector). The owner is the only
    // reference that can form a cycle (class → its dict → descriptor → class).
    unsafe {
        let owner = core::mem::replace(&mut (*d).owner, ptr::null_mut());
        ffi::Py_XDECREF(owner);
    }
    0
}

unsafe extern "C" fn field_dealloc(o: *mut ffi::PyObject) {
    let d = o.cast::<FieldDescr>();
    // SAFETY: CPython calls this once, attached, when the count reached zero: nobody holds the
    // descriptor, so nobody can call its accessors any more; the closure is freed exactly here.
    unsafe {
        ffi::PyObject_GC_UnTrack(o.cast());
        let ty = ffi::Py_TYPE(o);
        ffi::Py_XDECREF((*d).owner);
        ffi::Py_XDECREF((*d).name);
        let accessors = ptr::read(&raw const (*d).accessors);
        (accessors.free)(accessors.closure);
        Stats::add(&CApi.state().stats.field_descriptors, -1, false);
        ffi::PyObject_GC_Del(o.cast());
        // A heap type's instances each hold a reference to it.
        ffi::Py_DECREF(ty.cast());
    }
}
