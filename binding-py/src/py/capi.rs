//! The real runtime: CPython's C-API.

use core::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, Ordering};

use pyo3::ffi;

use crate::adapter::{Interp, WrapperObj};
use crate::runtime::Runtime;
use crate::state::AdapterState;

#[cfg(all(Py_GIL_DISABLED, not(Py_3_14)))]
compile_error!("free-threaded CPython is supported from 3.14 (PyUnstable_TryIncRef)");

/// A thread state detached by `PyEval_SaveThread`, to be restored on the same thread.
#[derive(Debug)]
pub struct SavedThread(*mut ffi::PyThreadState);

/// CPython through its C-API (a zero-sized handle: the interpreter is process-global).
#[derive(Clone, Copy, Debug, Default)]
pub struct CApi;

/// CPython as a kernel frontend.
pub type CPython = Interp<CApi>;

/// The frontend every native object of the extension module is bound to.
pub const CPYTHON: CPython = Interp(CApi);

std::thread_local! {
    /// The native objects (header addresses) whose wrapper's finalizer runs on this thread.
    static FINALIZING: core::cell::RefCell<Vec<usize>> = const { core::cell::RefCell::new(Vec::new()) };
}

/// The adapter's state for the (single) interpreter this module is loaded into.
static STATE: AdapterState = AdapterState::new();

// SAFETY: the signature is CPython's, `void _Py_NewReference(PyObject *op)`.
unsafe extern "C" {
    /// `_Py_NewReference`: what `PyObject_Init` does after setting the type and taking the type
    /// reference. It makes `op` a new object with one reference (free-threaded: owned by this
    /// thread, the owner's count 1, the shared count, `ob_flags`, `ob_mutex` and `ob_gc_bits`
    /// cleared), and runs every hook `PyObject_Init` runs on it: tracemalloc's on 3.11 and 3.12,
    /// the reference tracer's `PyRefTracer_CREATE` from 3.13 (tracemalloc is one), the
    /// `Py_REF_DEBUG` total and the `Py_TRACE_REFS` list. So debug builds, tracemalloc and
    /// reference tracers see a revival as they see `PyObject_Init`.
    ///
    /// Not in pyo3-ffi (which skips it as private), but exported as `PyAPI_FUNC` from the
    /// non-limited API (`Include/cpython/object.h`) on 3.11 through 3.14, GIL and free-threaded
    /// builds alike (and still on CPython's main branch); an extension module linked without
    /// libpython resolves it from the interpreter at import.
    #[link_name = "_Py_NewReference"]
    fn py_new_reference(op: *mut ffi::PyObject);
}

// SAFETY: every method is the C-API call its documentation names, with the same contract.
// `try_incref` is `PyUnstable_TryIncRef` on free-threaded builds (refuses a zero count; may
// fail spuriously only on an object not armed by `PyUnstable_EnableTryIncRef`), and "refcount
// > 0 then incref" with a GIL (what `PyUnstable_TryIncRef` does there), every caller holding it.
unsafe impl Runtime for CApi {
    type Object = ffi::PyObject;
    type Type = ffi::PyTypeObject;
    type Saved = SavedThread;
    type Gil = ffi::PyGILState_STATE;

    // Every kernel call of the adapter is made by an attached thread, which on a GIL build holds
    // the GIL; the adapter lets it go only in `backoff` and in allocations (`make_fresh`). A
    // foreign-thread reclaim runs without it, which the kernel allows for.
    const SERIALIZED: bool = cfg!(not(Py_GIL_DISABLED));

    #[inline]
    fn has_gil(&self) -> bool {
        cfg!(not(Py_GIL_DISABLED))
    }

    #[inline]
    fn state(&self) -> &AdapterState {
        &STATE
    }

    #[inline]
    unsafe fn incref(&self, o: NonNull<ffi::PyObject>) {
        // SAFETY: `o` is live and referenced (caller).
        unsafe { ffi::Py_INCREF(o.as_ptr()) }
    }

    #[inline]
    unsafe fn decref(&self, o: NonNull<ffi::PyObject>) {
        // SAFETY: the caller owns the reference and is attached.
        unsafe { ffi::Py_DECREF(o.as_ptr()) }
    }

    #[inline]
    unsafe fn try_incref(&self, o: NonNull<ffi::PyObject>) -> bool {
        #[cfg(Py_GIL_DISABLED)]
        // SAFETY: `o`'s memory is live (the binding word is locked).
        unsafe {
            ffi::PyUnstable_TryIncRef(o.as_ptr()) != 0
        }
        #[cfg(all(not(Py_GIL_DISABLED), Py_3_14, target_pointer_width = "64"))]
        // SAFETY: as above; the GIL is held (caller), so nothing else writes the count.
        unsafe {
            try_incref_u32(o)
        }
        #[cfg(all(not(Py_GIL_DISABLED), not(all(Py_3_14, target_pointer_width = "64"))))]
        // SAFETY: as above. With a GIL this is what `PyUnstable_TryIncRef` does (3.14), inlined:
        // the caller holds the GIL, so the count cannot change between the check and the
        // increment.
        unsafe {
            if ffi::Py_REFCNT(o.as_ptr()) > 0 {
                ffi::Py_INCREF(o.as_ptr());
                true
            } else {
                false
            }
        }
    }

    #[inline]
    unsafe fn enable_try_incref(&self, o: NonNull<ffi::PyObject>) {
        #[cfg(Py_GIL_DISABLED)]
        // SAFETY: `o` is live and owned by the caller.
        unsafe {
            ffi::PyUnstable_EnableTryIncRef(o.as_ptr())
        }
        // With a GIL, `PyUnstable_EnableTryIncRef` does nothing (and does not exist before 3.14).
        #[cfg(not(Py_GIL_DISABLED))]
        let _ = o;
    }

    #[inline]
    unsafe fn track(&self, o: NonNull<ffi::PyObject>) {
        // SAFETY: `o` is untracked and ours.
        unsafe { ffi::PyObject_GC_Track(o.as_ptr().cast()) }
    }

    #[inline]
    unsafe fn untrack(&self, o: NonNull<ffi::PyObject>) {
        // SAFETY: `o` is live or dying on this thread.
        unsafe { ffi::PyObject_GC_UnTrack(o.as_ptr().cast()) }
    }

    #[inline]
    unsafe fn type_of(&self, o: NonNull<ffi::PyObject>) -> NonNull<ffi::PyTypeObject> {
        // SAFETY: `o`'s memory is valid (caller); every object has a type.
        unsafe { NonNull::new_unchecked(ffi::Py_TYPE(o.as_ptr())) }
    }

    unsafe fn alloc(&self, ty: NonNull<ffi::PyTypeObject>) -> Option<NonNull<ffi::PyObject>> {
        // SAFETY: `ty` is a live wrapper type, whose tp_alloc is `types::tether_alloc`
        // (initialises the wrapper fields); we are attached.
        unsafe {
            let alloc = (*ty.as_ptr()).tp_alloc.unwrap_or(ffi::PyType_GenericAlloc);
            NonNull::new(alloc(ty.as_ptr(), 0))
        }
    }

    #[inline]
    unsafe fn reinit(&self, o: NonNull<ffi::PyObject>, ty: NonNull<ffi::PyTypeObject>) {
        // `PyObject_Init(o, ty)` is `Py_SET_TYPE(o, ty)`, a new reference to the heap type, then
        // `_Py_NewReference(o)`. The block's type already is `ty` and the block kept its
        // reference to it, so only the last step is needed. Taking a type reference and giving
        // it back would cost, on free-threaded builds, a compare-exchange on the class's shared
        // count (the `Py_DECREF` of a thread that does not own the class) by every thread that
        // revives an instance of it.
        debug_assert_eq!(
            // SAFETY: a cached block's header is intact and its type alive (caller).
            unsafe { ffi::Py_TYPE(o.as_ptr()) },
            ty.as_ptr(),
            "a cached block revived as another type"
        );
        // SAFETY: `o` is a dead block owned by the caller: nothing else reads or writes its
        // header meanwhile (the binding word's lock), and its memory stays allocated.
        unsafe { py_new_reference(o.as_ptr()) }
    }

    #[inline]
    unsafe fn free(&self, o: NonNull<ffi::PyObject>) {
        // SAFETY: `o` is dead, untracked and ours; we are attached; its type is still alive
        // (PyObject_GC_Del reads it to find the pre-header).
        unsafe { ffi::PyObject_GC_Del(o.as_ptr().cast()) }
    }

    #[inline]
    unsafe fn incref_type(&self, ty: NonNull<ffi::PyTypeObject>) {
        // SAFETY: `ty` is live (caller).
        unsafe { ffi::Py_INCREF(ty.as_ptr().cast()) }
    }

    #[inline]
    unsafe fn decref_type(&self, ty: NonNull<ffi::PyTypeObject>) {
        // SAFETY: the caller gives up a reference it owns and is attached.
        unsafe { ffi::Py_DECREF(ty.as_ptr().cast()) }
    }

    #[inline]
    unsafe fn has_finalizer(&self, ty: NonNull<ffi::PyTypeObject>) -> bool {
        // SAFETY: `ty` is live (caller).
        let t = unsafe { ty.as_ref() };
        t.tp_finalize.is_some() || t.tp_del.is_some()
    }

    unsafe fn call_finalizer(&self, o: NonNull<ffi::PyObject>) -> bool {
        // A `__del__` that fetches its own object gets a fresh wrapper (the dying one let go of
        // the binding first); when that wrapper dies inside the same `__del__`, running
        // `__del__` again would repeat without end. So while a native object's finalizer runs
        // on this thread, the finalizer of another wrapper of the same object is skipped.
        // SAFETY: `o` is a dying wrapper: its slot is intact.
        let native = unsafe { WrapperObj::<CApi>::of(o) }
            .slot
            .header()
            .map_or(0, |h| h.as_ptr().addr());
        let nested = native != 0
            && FINALIZING
                .try_with(|f| f.borrow().contains(&native))
                .unwrap_or(true);
        if nested {
            return false;
        }
        let _ = FINALIZING.try_with(|f| f.borrow_mut().push(native));
        // SAFETY: `o`'s count reached zero and its dealloc runs on this thread.
        let resurrected = unsafe { ffi::PyObject_CallFinalizerFromDealloc(o.as_ptr()) < 0 };
        let _ = FINALIZING.try_with(|f| {
            let mut f = f.borrow_mut();
            if let Some(i) = f.iter().rposition(|&n| n == native) {
                f.swap_remove(i);
            }
        });
        resurrected
    }

    #[inline]
    unsafe fn has_weakrefs(&self, o: NonNull<ffi::PyObject>) -> bool {
        // SAFETY: `o` is a wrapper (its weak reference list sits at `weaklist`, which is what
        // `tp_weaklistoffset` names) and is dying on this thread.
        let list = unsafe { &raw mut (*o.cast::<WrapperObj<CApi>>().as_ptr()).weaklist };
        // Acquire: on free-threaded builds another thread may be unlinking a dying weak
        // reference from the list (under CPython's weakref lock); we only need to see whether
        // any is left, and an atomic load keeps that read race-free.
        // SAFETY: the field is pointer-sized, aligned, and only accessed atomically by others.
        !unsafe { AtomicPtr::from_ptr(list) }
            .load(Ordering::Acquire)
            .is_null()
    }

    unsafe fn clear_weakrefs(&self, o: NonNull<ffi::PyObject>) {
        // SAFETY: `o` is dying on this thread.
        unsafe { ffi::PyObject_ClearWeakRefs(o.as_ptr()) }
    }

    #[inline]
    fn is_attached(&self) -> bool {
        // Not `PyGILState_Check`: on 3.11 it answers 1 once the runtime is finalised (its TSS key
        // is gone), and a foreign thread dropping a native reference while the process exits
        // would then decref without an interpreter.
        #[cfg(Py_3_12)]
        // SAFETY: callable from any thread; the current thread state is thread-local from 3.12.
        unsafe {
            !ffi::compat::PyThreadState_GetUnchecked().is_null()
        }
        #[cfg(not(Py_3_12))]
        // SAFETY: callable from any thread. On 3.11 the current thread state is the GIL holder's
        // (process-wide): this thread is attached when that is this thread's own state. Both are
        // null once the runtime is finalised.
        unsafe {
            let current = ffi::compat::PyThreadState_GetUnchecked();
            !current.is_null() && current == ffi::PyGILState_GetThisThreadState()
        }
    }

    fn save_thread(&self) -> SavedThread {
        // SAFETY: only called when `is_attached()` (see `Interp::backoff`).
        SavedThread(unsafe { ffi::PyEval_SaveThread() })
    }

    fn restore_thread(&self, saved: SavedThread) {
        // SAFETY: `saved` came from `save_thread` on this thread (it is not `Send`).
        unsafe { ffi::PyEval_RestoreThread(saved.0) }
    }

    fn yield_thread(&self) {
        std::thread::yield_now();
    }

    fn ensure(&self) -> ffi::PyGILState_STATE {
        // SAFETY: never called once the at-exit flag is set (`Interp::attach`), so the
        // interpreter is not finalising.
        unsafe { ffi::PyGILState_Ensure() }
    }

    fn release(&self, gil: ffi::PyGILState_STATE) {
        // SAFETY: pairs with the `ensure` that returned `gil`, on this thread.
        unsafe { ffi::PyGILState_Release(gil) }
    }
}

/// `PyUnstable_TryIncRef` of CPython 3.14 with a GIL, on a 64-bit build, inlined: the count is
/// the 32-bit `ob_refcnt` and is read and written as CPython's own `Py_INCREF`/`Py_DECREF` do.
/// Not through `pyo3::ffi::Py_REFCNT`/`Py_INCREF`, which read and write the whole 64-bit word
/// (count, overflow and flags: a flag bit would make a dead object's count look non-zero) and
/// test it twice (4 instructions more per hit).
///
/// # Safety
///
/// `o` is live memory of an object; the GIL is held.
#[cfg(all(not(Py_GIL_DISABLED), Py_3_14, target_pointer_width = "64"))]
#[inline]
unsafe fn try_incref_u32(o: NonNull<ffi::PyObject>) -> bool {
    // CPython 3.14 `Include/refcount.h`: an immortal count starts at 3 << 30 and is never
    // written by `Py_INCREF`.
    const IMMORTAL_INITIAL: u32 = 3 << 30;
    // SAFETY: live (caller); `refcnt_and_flags` is the 3.14 64-bit layout of the count word,
    // whose `ob_refcnt` field is the count CPython reads (endianness handled by pyo3-ffi).
    let count = unsafe { &raw mut (*o.as_ptr()).ob_refcnt.refcnt_and_flags.ob_refcnt };
    // SAFETY: as above; the GIL serialises every access to a count.
    let cur = unsafe { count.read() };
    if cur == 0 {
        return false;
    }
    if cur < IMMORTAL_INITIAL {
        // SAFETY: as above.
        unsafe { count.write(cur + 1) };
    }
    true
}
