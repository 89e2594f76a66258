//! Wrapper types: the slots every wrapper type shares, type creation, and `_move`.

use core::ffi::{CStr, c_int, c_void};
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::ffi;

use super::capi::{CApi, CPYTHON};
use super::native::{Handle, Meta, Raised, Visit, meta_ptr, raise, type_name};
use crate::adapter::WrapperObj;

/// `tp_dealloc` of every wrapper type (and of every Python subclass: `patch_subclass` installs
/// it in place of `subtype_dealloc`, so the binding transition comes before any finalizer or
/// weak reference clearing, lesson 2).
#[inline(never)]
pub unsafe extern "C" fn tether_dealloc(o: *mut ffi::PyObject) {
    // SAFETY: CPython calls tp_dealloc once, when `o`'s count reached zero, on an attached
    // thread; `o` is an instance of a wrapper type.
    unsafe { CPYTHON.dealloc_wrapper(NonNull::new_unchecked(o)) }
}

/// `tp_free` of the wrapper types whose native objects hold a `T`: settle the baton or free the
/// memory (`tether_dealloc` calls the same code directly).
///
/// One function per `T`, on purpose: CPython refuses a `__class__` assignment between types whose
/// `tp_free` differ ("deallocator differs"), so a wrapper can never be given a class whose
/// descriptors expect another native type. The `TypeId` keeps the monomorphisations distinct
/// (identical functions could otherwise be merged into one address).
pub unsafe extern "C" fn tether_free<T: 'static>(o: *mut c_void) {
    core::hint::black_box(core::any::TypeId::of::<T>());
    // SAFETY: CPython calls tp_free once on a dead instance whose dealloc ran on this thread.
    unsafe { CPYTHON.free_wrapper(NonNull::new_unchecked(o.cast())) }
}

/// `tp_alloc` of every wrapper type: a fresh block (always the type's fixed basic size) with
/// the adapter's fields initialised. Revival never comes here: it re-initialises cached memory
/// in place under the binding word's lock.
pub unsafe extern "C" fn tether_alloc(
    ty: *mut ffi::PyTypeObject,
    nitems: ffi::Py_ssize_t,
) -> *mut ffi::PyObject {
    // SAFETY: `ty` is a live wrapper type; we are attached.
    let o = unsafe { ffi::PyType_GenericAlloc(ty, nitems) };
    if let Some(o) = NonNull::new(o) {
        // SAFETY: fresh, zeroed, `basicsize` bytes: laid out as WrapperObj.
        unsafe { WrapperObj::<CApi>::init_fields(o) };
    }
    o
}

/// The native object behind a live wrapper, when the wrapper holds its only strong reference:
/// then the Python objects the native value owns are, for the collector, owned by the wrapper
/// (nothing else can reach them), so a cycle through them and the wrapper is garbage. With any
/// other strong reference the native side may still use them: the wrapper reports none.
///
/// # Safety
///
/// `o` is a live wrapper; the collector runs (the GIL is held, or the world is stopped), so
/// nothing moves its handle meanwhile.
unsafe fn sole_native(o: *mut ffi::PyObject) -> Option<NonNull<Meta>> {
    // SAFETY: `o` is a live wrapper (caller).
    let w = unsafe { WrapperObj::<CApi>::of(NonNull::new_unchecked(o)) };
    let header = w.slot.header()?;
    // SAFETY: the slot owns a reference, keeping the header alive while `o` lives.
    if unsafe { header.as_ref() }.strong_count() != 1 {
        return None;
    }
    // SAFETY: the slot's reference, borrowed (not dropped).
    let h = ManuallyDrop::new(unsafe { Handle::from_raw(header) });
    // The meta lives as long as the object, which our wrapper keeps alive.
    Some(meta_ptr(&h))
}

/// `tp_traverse`: the wrapper's (heap) type, and the Python objects its native value owns while
/// the wrapper holds the native object's only strong reference (see `sole_native`).
pub unsafe extern "C" fn tether_traverse(
    o: *mut ffi::PyObject,
    visit: ffi::visitproc,
    arg: *mut c_void,
) -> c_int {
    // SAFETY: `o` is live; its type is a heap type the instance holds a reference to.
    let r = unsafe { visit(ffi::Py_TYPE(o).cast(), arg) };
    if r != 0 {
        return r;
    }
    // SAFETY: tp_traverse runs on a live object while the collector runs.
    let Some(ptr) = (unsafe { sole_native(o) }) else {
        return 0;
    };
    // SAFETY: live while `o` is (see `sole_native`).
    let meta = unsafe { ptr.as_ref() };
    // SAFETY: CPython's visitor for this traversal.
    let v = unsafe { Visit::new(visit, arg) };
    // The class the native object records (a Python subclass, or a `tether.Object` class) is one
    // of the references the native value owns: a class whose attributes hold the object is a
    // cycle too.
    if let Some(class) = &meta.class {
        v.call_ptr(class.as_ptr().as_ptr());
    }
    // SAFETY: the vtable belongs to the native value `meta` heads.
    unsafe { (meta.vtable.traverse)(ptr, &v) }
}

/// `tp_clear`: the collector found the wrapper in unreachable garbage. Drops the Python objects
/// its native value owns (when the wrapper holds the only strong reference, as for traverse).
pub unsafe extern "C" fn tether_clear(o: *mut ffi::PyObject) -> c_int {
    // SAFETY: as in `tether_traverse`.
    if let Some(ptr) = unsafe { sole_native(o) } {
        // SAFETY: the vtable belongs to the native value `ptr` heads (a pointer with the block's
        // provenance); attached.
        unsafe { (ptr.as_ref().vtable.clear)(ptr) };
    }
    0
}

/// Whether instances of `ty` are wrappers (laid out as `WrapperObj`, with our lifecycle).
///
/// # Safety
///
/// `ty` is a live type.
#[inline]
pub unsafe fn is_tied(ty: *mut ffi::PyTypeObject) -> bool {
    // SAFETY: caller.
    let dealloc = unsafe { (*ty).tp_dealloc };
    // `tether_dealloc` is one non-generic, non-inlined function of this crate, and every wrapper
    // type's slot was set from it here, so its address identifies our types.
    dealloc.is_some_and(|d| core::ptr::fn_addr_eq(d, tether_dealloc as unsafe extern "C" fn(_)))
}

/// Runs `f` serialised with `_move()` of `o`: free-threaded, inside `o`'s critical section; with
/// a GIL, the GIL already serialises (`f` never lets it go).
#[inline]
pub fn locked<T>(o: *mut ffi::PyObject, f: impl FnOnce() -> T) -> T {
    #[cfg(Py_GIL_DISABLED)]
    {
        struct End(*mut ffi::PyCriticalSection);
        impl Drop for End {
            // Inline: every getter ends its critical section here, and an extension crate
            // (which instantiates the getters) cannot inline a non-generic function of this
            // crate otherwise: it would call it out of line on every read.
            #[inline]
            fn drop(&mut self) {
                // SAFETY: pairs with the Begin below, on the same (unmoved) section.
                unsafe { ffi::PyCriticalSection_End(self.0) }
            }
        }
        let mut cs = core::mem::MaybeUninit::<ffi::PyCriticalSection>::uninit();
        // SAFETY: `o` is live (callers); `cs` stays in place until `End` runs.
        unsafe { ffi::PyCriticalSection_Begin(cs.as_mut_ptr(), o) };
        let _end = End(cs.as_mut_ptr());
        f()
    }
    #[cfg(not(Py_GIL_DISABLED))]
    {
        let _ = o;
        f()
    }
}

/// The `RuntimeError` for any use of a moved-from wrapper.
#[cold]
#[inline(never)]
pub fn moved_error(o: *mut ffi::PyObject) -> Raised {
    raise(
        // SAFETY: reading an exception type object.
        unsafe { ffi::PyExc_RuntimeError },
        &format!(
            "this {} was moved (x._move() hands its native object to the new wrapper); \
             use the object _move() returned",
            type_name(o)
        ),
    )
}

/// A new strong native reference to the object behind wrapper `o`.
///
/// # Safety
///
/// `o` is a live wrapper; the calling thread is attached.
pub unsafe fn handle_of(o: *mut ffi::PyObject) -> Result<Handle, Raised> {
    // SAFETY: `o` is a live wrapper (caller).
    let w = unsafe { WrapperObj::<CApi>::of(NonNull::new_unchecked(o)) };
    // SAFETY: serialised with `_move()` of `o`, the only thing that empties its slot.
    locked(o, || unsafe { w.slot.clone_handle() }).ok_or_else(|| moved_error(o))
}

/// A new strong native reference to the object behind `o`, or `TypeError` if `o` is not a
/// tether object.
///
/// # Safety
///
/// `o` is live; the calling thread is attached.
pub unsafe fn expect_tied(o: *mut ffi::PyObject, what: &str) -> Result<Handle, Raised> {
    // SAFETY: `o` is live.
    if !unsafe { is_tied(ffi::Py_TYPE(o)) } {
        return Err(raise(
            // SAFETY: reading an exception type object.
            unsafe { ffi::PyExc_TypeError },
            &format!(
                "{what} expects a tether object (tether.Object, Array or Function), not {}",
                type_name(o)
            ),
        ));
    }
    // SAFETY: `o` is a wrapper.
    unsafe { handle_of(o) }
}

/// `obj._move()`.
pub unsafe extern "C" fn tether_move(
    o: *mut ffi::PyObject,
    _unused: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: `o` is a live wrapper (method of a wrapper type); we are attached.
    unsafe {
        let from = NonNull::new_unchecked(o);
        if WrapperObj::<CApi>::of(from).slot.header().is_none() {
            moved_error(o);
            return ptr::null_mut();
        }
        // Allocate outside the critical section (allocation may collect garbage).
        let ty = NonNull::new_unchecked(ffi::Py_TYPE(o));
        let Ok(to) = CPYTHON.alloc_wrapper(ty) else {
            return ptr::null_mut();
        };
        // Serialised with every read of `o`'s handle (`locked`): the mover may back off
        // (detaching, which suspends the critical section) only before it empties the slot.
        let moved = locked(o, || CPYTHON.move_into(from, to));
        if moved {
            to.as_ptr()
        } else {
            ffi::Py_DECREF(to.as_ptr());
            moved_error(o);
            ptr::null_mut()
        }
    }
}

/// One process-wide type pointer, set at module init.
pub struct TypeCell(AtomicPtr<ffi::PyTypeObject>);

impl TypeCell {
    /// Unset.
    pub const fn new() -> Self {
        Self(AtomicPtr::new(ptr::null_mut()))
    }

    /// The type (null before module init).
    #[inline]
    pub fn get(&self) -> *mut ffi::PyTypeObject {
        // Acquire: pairs with `set`, so the type object's initialisation is visible.
        self.0.load(Ordering::Acquire)
    }

    /// Sets the type (module init).
    pub fn set(&self, ty: *mut ffi::PyTypeObject) {
        // Release: publishes the initialised type object.
        self.0.store(ty, Ordering::Release);
    }
}

/// `tether._core.ObjectBase`, the C base of `tether.Object`.
pub static OBJECT_BASE: TypeCell = TypeCell::new();
/// `tether.Function`.
pub static FUNCTION: TypeCell = TypeCell::new();

/// Leaks a value for the process lifetime (type specs, method and getset tables must outlive
/// the types that point into them).
pub fn leak<T>(v: T) -> &'static mut T {
    Box::leak(Box::new(v))
}

/// The method table of a wrapper type: `_move`, and `__reduce__` when the type pickles.
pub fn wrapper_methods(reduce: Option<ffi::PyCFunction>) -> *mut ffi::PyMethodDef {
    let move_method = ffi::PyMethodDef {
        ml_name: c"_move".as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunction: tether_move,
        },
        ml_flags: ffi::METH_NOARGS,
        ml_doc: c"_move() -> a new wrapper that takes over this object's native reference; \
                  this one then raises RuntimeError on any use"
            .as_ptr(),
    };
    let reduce_method = reduce.map(|reduce| ffi::PyMethodDef {
        ml_name: c"__reduce__".as_ptr(),
        ml_meth: ffi::PyMethodDefPointer {
            PyCFunction: reduce,
        },
        ml_flags: ffi::METH_NOARGS,
        ml_doc: core::ptr::null(),
    });
    let table: Vec<ffi::PyMethodDef> = [
        Some(move_method),
        reduce_method,
        Some(ffi::PyMethodDef::zeroed()),
    ]
    .into_iter()
    .flatten()
    .collect();
    Box::leak(table.into_boxed_slice()).as_mut_ptr()
}

/// The `__weaklistoffset__` member table every wrapper type carries.
pub fn weaklist_members() -> *mut ffi::PyMemberDef {
    let offset = core::mem::offset_of!(WrapperObj<CApi>, weaklist) as ffi::Py_ssize_t;
    leak([
        ffi::PyMemberDef {
            name: c"__weaklistoffset__".as_ptr(),
            type_code: ffi::Py_T_PYSSIZET,
            offset,
            flags: ffi::Py_READONLY,
            doc: ptr::null(),
        },
        ffi::PyMemberDef::default(),
    ])
    .as_mut_ptr()
}

/// `__class__` getter: the type, as `object.__class__`.
unsafe extern "C" fn class_get(o: *mut ffi::PyObject, _closure: *mut c_void) -> *mut ffi::PyObject {
    // SAFETY: `o` is live; a new reference to its type.
    unsafe {
        let ty = ffi::Py_TYPE(o).cast::<ffi::PyObject>();
        ffi::Py_INCREF(ty);
        ty
    }
}

/// `__class__` setter: refused. Every native object records its wrapper type, and a cached
/// wrapper is revived as that type; an instance whose class changed would be revived as another
/// type than its memory holds a reference to.
unsafe extern "C" fn class_set(
    o: *mut ffi::PyObject,
    _value: *mut ffi::PyObject,
    _closure: *mut c_void,
) -> c_int {
    raise(
        // SAFETY: reading an exception type object.
        unsafe { ffi::PyExc_TypeError },
        &format!(
            "the class of a tether object cannot change ({} is tied to its native object)",
            type_name(o)
        ),
    );
    -1
}

/// The getset table every wrapper type carries (`__class__`, see `class_set`).
fn class_getset() -> *mut ffi::PyGetSetDef {
    leak([
        ffi::PyGetSetDef {
            name: c"__class__".as_ptr(),
            get: Some(class_get),
            set: Some(class_set),
            doc: c"the object's type (it cannot be reassigned)".as_ptr(),
            closure: ptr::null_mut(),
        },
        ffi::PyGetSetDef {
            name: ptr::null(),
            get: None,
            set: None,
            doc: ptr::null(),
            closure: ptr::null_mut(),
        },
    ])
    .as_mut_ptr()
}

/// Creates a wrapper heap type from `slots` (the shared lifecycle slots are added here).
///
/// # Safety
///
/// Attached; `slots` contains valid slot functions for a `WrapperObj` layout.
pub unsafe fn make_type<T: 'static>(
    name: &CStr,
    flags: u64,
    mut slots: Vec<ffi::PyType_Slot>,
) -> Result<*mut ffi::PyTypeObject, Raised> {
    let common: [(c_int, *mut c_void); 7] = [
        (ffi::Py_tp_dealloc, tether_dealloc as *mut c_void),
        (ffi::Py_tp_free, tether_free::<T> as *mut c_void),
        (ffi::Py_tp_alloc, tether_alloc as *mut c_void),
        (ffi::Py_tp_traverse, tether_traverse as *mut c_void),
        (ffi::Py_tp_clear, tether_clear as *mut c_void),
        (ffi::Py_tp_members, weaklist_members().cast()),
        (ffi::Py_tp_getset, class_getset().cast()),
    ];
    slots.extend(
        common
            .into_iter()
            .map(|(slot, pfunc)| ffi::PyType_Slot { slot, pfunc }),
    );
    slots.push(ffi::PyType_Slot {
        slot: 0,
        pfunc: ptr::null_mut(),
    });
    let slots = Box::leak(slots.into_boxed_slice());
    // The spec's name must outlive the type (CPython keeps `tp_name` pointing into it).
    let name: &'static CStr = Box::leak(name.to_owned().into_boxed_c_str());
    let spec = leak(ffi::PyType_Spec {
        name: name.as_ptr(),
        basicsize: c_int::try_from(core::mem::size_of::<WrapperObj<CApi>>()).expect("small struct"),
        itemsize: 0,
        flags: (ffi::Py_TPFLAGS_DEFAULT | ffi::Py_TPFLAGS_HAVE_GC | flags) as _,
        slots: slots.as_mut_ptr(),
    });
    // SAFETY: the spec and everything it points to live forever; attached.
    let ty = unsafe { ffi::PyType_FromSpec(spec) };
    if ty.is_null() {
        Err(Raised)
    } else {
        Ok(ty.cast())
    }
}

/// Installs the wrapper lifecycle on a Python subclass of a wrapper type (created by `type_new`,
/// which gave it `subtype_dealloc`, `PyType_GenericAlloc` and `PyObject_GC_Del`), after checking
/// that its instances have exactly its tied base's layout: no `__dict__`, no extra slots, the
/// same weak reference list, so a cached block can always be revived in place (lesson 6). The
/// base's `tp_free` (one per native type, see `tether_free`) is inherited.
///
/// # Safety
///
/// Attached; `ty` is a live type object that has no instances yet.
pub unsafe fn patch_subclass(ty: *mut ffi::PyTypeObject) -> Result<(), Raised> {
    // SAFETY: live types; attached.
    unsafe {
        let t = &mut *ty;
        let mut base = t.tp_base;
        while !base.is_null() && !is_tied(base) {
            base = (*base).tp_base;
        }
        let name = CStr::from_ptr(t.tp_name).to_string_lossy().into_owned();
        if base.is_null() {
            return Err(raise(
                ffi::PyExc_TypeError,
                &format!("{name} does not derive from a tether class"),
            ));
        }
        let b = &*base;
        let bad = |why: &str| {
            raise(
                ffi::PyExc_TypeError,
                &format!(
                    "{name} cannot subclass {}: {why} (instances of tether classes have no \
                     __dict__ and no __slots__: their state lives in the native object)",
                    CStr::from_ptr(b.tp_name).to_string_lossy()
                ),
            )
        };
        if t.tp_basicsize != b.tp_basicsize || t.tp_itemsize != 0 {
            return Err(bad("its instances would be larger than the base's"));
        }
        let flags = ffi::PyType_GetFlags(ty) as u64;
        #[cfg(Py_3_12)]
        let managed = flags & (ffi::Py_TPFLAGS_MANAGED_DICT | ffi::Py_TPFLAGS_MANAGED_WEAKREF) != 0;
        #[cfg(not(Py_3_12))]
        let managed = false;
        if t.tp_dictoffset != 0 || managed {
            return Err(bad("its instances would have a __dict__"));
        }
        if t.tp_weaklistoffset != b.tp_weaklistoffset {
            return Err(bad("it moves the weak reference list"));
        }
        if flags & ffi::Py_TPFLAGS_HAVE_GC == 0 {
            return Err(bad("it is not garbage-collected"));
        }
        t.tp_dealloc = Some(tether_dealloc);
        t.tp_free = b.tp_free;
        t.tp_alloc = Some(tether_alloc);
        t.tp_traverse = Some(tether_traverse);
        t.tp_clear = Some(tether_clear);
        ffi::PyType_Modified(ty);
    }
    Ok(())
}

/// `TypeError` if `ty` is abstract (`abc.ABCMeta` left abstract methods unimplemented), as
/// `object.__new__` does: every tied class's `tp_new` checks this first.
///
/// # Safety
///
/// Attached; `ty` is a live type.
pub unsafe fn refuse_abstract(ty: *mut ffi::PyTypeObject) -> Result<(), Raised> {
    // SAFETY: `ty` is live (caller).
    if unsafe { ffi::PyType_GetFlags(ty) } & ffi::Py_TPFLAGS_IS_ABSTRACT == 0 {
        return Ok(());
    }
    // SAFETY: attached (caller).
    let py = unsafe { pyo3::Python::assume_attached() };
    use pyo3::prelude::*;
    // SAFETY: `ty` is live.
    let cls = unsafe { Bound::<PyAny>::from_borrowed_ptr(py, ty.cast()) };
    let names: Vec<String> = cls
        .getattr("__abstractmethods__")
        .and_then(|m| m.try_iter()?.map(|n| n?.extract::<String>()).collect())
        .unwrap_or_default();
    let mut names = names;
    names.sort();
    let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    Err(raise(
        // SAFETY: reading an exception type object.
        unsafe { ffi::PyExc_TypeError },
        &format!(
            "Can't instantiate abstract class {} without an implementation for abstract \
             method{} {}",
            cls.getattr("__name__")
                .and_then(|n| n.extract::<String>())
                .unwrap_or_default(),
            if names.len() == 1 { "" } else { "s" },
            quoted.join(", ")
        ),
    ))
}
