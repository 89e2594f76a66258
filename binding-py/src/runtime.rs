//! The C-API surface the adapter uses, behind a trait.
//!
//! The adapter's own logic (dealloc, free, lookup, revival, reclaim, shutdown, dropping Python
//! references from foreign threads) is written once against [`Runtime`]. The extension module
//! plugs in the real C-API (`crate::py::CApi`); the tests plug in a model of free-threaded
//! CPython's reference counting (`crate::model`), so the same code runs under loom and shuttle
//! without an interpreter.

use core::ptr::NonNull;

use crate::state::AdapterState;

/// The CPython operations the adapter needs, and nothing more.
///
/// # Safety
///
/// Implementations must behave like CPython where the adapter relies on it:
///
/// * `try_incref` never succeeds on an object whose reference count reached zero (its dealloc
///   has started or is about to), and may fail spuriously only on an object that was not armed
///   with `enable_try_incref` since it was last (re)initialised;
/// * `alloc` returns zero-initialised, GC-tracked memory of the type's instance size with one
///   reference owned by the caller; `reinit` turns a dead block of that type back into a live
///   object with one reference, without allocating, running user code or blocking;
/// * `free` and `clear_weakrefs` run only on a thread that is attached;
/// * `ensure` attaches a thread (possibly a foreign one) and `release` undoes it.
pub unsafe trait Runtime: Clone + Send + Sync + 'static {
    /// The object header (`PyObject`).
    type Object;
    /// A type object (`PyTypeObject`).
    type Type;
    /// A detached thread state (`PyEval_SaveThread`'s result).
    type Saved;
    /// What `PyGILState_Ensure` returns.
    type Gil;

    /// Whether the interpreter serialises attached threads with a GIL. With a GIL, a thread the
    /// adapter waits on can only progress once we let the GIL go, so back-offs detach at once.
    fn has_gil(&self) -> bool;

    /// Whether the adapter may run the kernel in GIL mode
    /// ([`binding_core::Frontend::SERIALIZED`]): every lookup, dealloc, settle and rebind then
    /// runs with the GIL held, and the GIL is let go only in back-offs and allocations. True for
    /// CPython's GIL builds; the adapter model stays in the general mode (its GIL exists to test
    /// the waits, and the kernel's own model checks GIL mode).
    const SERIALIZED: bool = false;

    /// The adapter's shared state: shutdown flag, attach count, statistics.
    fn state(&self) -> &AdapterState;

    /// `Py_INCREF`.
    ///
    /// # Safety
    ///
    /// `o` is live and the calling thread owns a reference to it or borrows one.
    unsafe fn incref(&self, o: NonNull<Self::Object>);

    /// `Py_DECREF`: may run `o`'s dealloc (and arbitrary code) on this thread.
    ///
    /// # Safety
    ///
    /// The calling thread is attached and owns the reference it gives up.
    unsafe fn decref(&self, o: NonNull<Self::Object>);

    /// `PyUnstable_TryIncRef` (3.14+), or "refcount > 0 then incref" before 3.14.
    ///
    /// # Safety
    ///
    /// `o`'s memory is live (the binding word is locked by the caller).
    unsafe fn try_incref(&self, o: NonNull<Self::Object>) -> bool;

    /// `PyUnstable_EnableTryIncRef` (3.14+); nothing before 3.14.
    ///
    /// # Safety
    ///
    /// `o` is live and owned or being published by the caller.
    unsafe fn enable_try_incref(&self, o: NonNull<Self::Object>);

    /// `PyObject_GC_Track`.
    ///
    /// # Safety
    ///
    /// `o` is untracked and owned by the caller.
    unsafe fn track(&self, o: NonNull<Self::Object>);

    /// `PyObject_GC_UnTrack` (does nothing if `o` is not tracked).
    ///
    /// # Safety
    ///
    /// `o` is live or dying on this thread.
    unsafe fn untrack(&self, o: NonNull<Self::Object>);

    /// `Py_TYPE(o)`.
    ///
    /// # Safety
    ///
    /// `o` is live, dying, or a cached block (whose type the block keeps alive).
    unsafe fn type_of(&self, o: NonNull<Self::Object>) -> NonNull<Self::Type>;

    /// `type->tp_alloc(type, 0)`: a fresh, zeroed, GC-tracked instance with one reference, or
    /// `None` with an exception set.
    ///
    /// # Safety
    ///
    /// The calling thread is attached; `ty` is a live wrapper type.
    unsafe fn alloc(&self, ty: NonNull<Self::Type>) -> Option<NonNull<Self::Object>>;

    /// `PyObject_Init(o, ty)` on a dead block of type `ty`, keeping the type's reference count
    /// unchanged (the cached block kept its reference): on CPython `_Py_NewReference(o)`, the
    /// part of `PyObject_Init` after the type reference. Does not GC-track. Never allocates,
    /// blocks or runs user code.
    ///
    /// # Safety
    ///
    /// `o` is a dead (cached) block of type `ty` owned by the caller.
    unsafe fn reinit(&self, o: NonNull<Self::Object>, ty: NonNull<Self::Type>);

    /// `PyObject_GC_Del`: returns a dead block's memory. Does not touch the type's refcount.
    ///
    /// # Safety
    ///
    /// `o` is dead, untracked, owned by the caller; the calling thread is attached.
    unsafe fn free(&self, o: NonNull<Self::Object>);

    /// `Py_INCREF(type)`.
    ///
    /// # Safety
    ///
    /// `ty` is live and the caller owns or borrows a reference to it.
    unsafe fn incref_type(&self, ty: NonNull<Self::Type>);

    /// `Py_DECREF(type)`: may free the type.
    ///
    /// # Safety
    ///
    /// The caller owns the reference it gives up; the calling thread is attached.
    unsafe fn decref_type(&self, ty: NonNull<Self::Type>);

    /// Whether instances of `ty` have a finalizer (`tp_finalize`, i.e. `__del__`, or `tp_del`).
    ///
    /// # Safety
    ///
    /// `ty` is live.
    unsafe fn has_finalizer(&self, ty: NonNull<Self::Type>) -> bool;

    /// `PyObject_CallFinalizerFromDealloc(o)`: runs the finalizer on a dying object (temporarily
    /// resurrecting it). Returns `true` if the finalizer resurrected `o` for good.
    ///
    /// # Safety
    ///
    /// `o`'s reference count reached zero and its dealloc is running on this thread.
    unsafe fn call_finalizer(&self, o: NonNull<Self::Object>) -> bool;

    /// Whether weak references to `o` exist.
    ///
    /// # Safety
    ///
    /// `o` is dying on this thread.
    unsafe fn has_weakrefs(&self, o: NonNull<Self::Object>) -> bool;

    /// `PyObject_ClearWeakRefs(o)`: clears the weak references and runs their callbacks.
    ///
    /// # Safety
    ///
    /// `o` is dying on this thread.
    unsafe fn clear_weakrefs(&self, o: NonNull<Self::Object>);

    /// Whether the calling thread is attached to the interpreter (`PyGILState_Check`).
    fn is_attached(&self) -> bool;

    /// `PyEval_SaveThread`: detaches the calling, attached thread.
    fn save_thread(&self) -> Self::Saved;

    /// `PyEval_RestoreThread`: re-attaches after `save_thread`.
    fn restore_thread(&self, saved: Self::Saved);

    /// Lets other OS threads run.
    fn yield_thread(&self);

    /// `PyGILState_Ensure`: attaches the calling thread (a foreign one gets a thread state).
    ///
    /// Never called once the adapter's shutdown flag is set (see `Interp::attach`).
    fn ensure(&self) -> Self::Gil;

    /// `PyGILState_Release`.
    fn release(&self, gil: Self::Gil);

    /// Consecutive back-offs of one operation that only spin before a back-off detaches the
    /// thread state (free-threaded builds; with a GIL every back-off detaches). The model says
    /// 0, so every back-off is checked as a possible stop-the-world point.
    fn spins_before_detach(&self) -> u32 {
        crate::adapter::SPINS_BEFORE_DETACH
    }

    /// How long a lookup waits for a dying wrapper's dealloc, beyond the kernel's count of
    /// misses, before it replaces the wrapper (`Frontend::replace_dying`).
    fn takeover_patience(&self) -> core::time::Duration {
        crate::adapter::TAKEOVER_PATIENCE
    }

    /// Bookkeeping hook: one back-off of an operation that has waited `spins` times in a row. A
    /// no-op on the real interpreter; the model bounds it (a livelock or deadlock is reported
    /// instead of spinning forever, L1).
    fn note_backoff(&self, _spins: u32) {}

    /// Test-only: which deliberately broken adapter variant runs (the model's teeth).
    #[cfg(feature = "model")]
    #[doc(hidden)]
    fn flaw(&self) -> AdapterFlaw {
        AdapterFlaw::None
    }

    /// Bookkeeping hook: `o`'s memory is about to be handed to the binding word (cached). A
    /// no-op on the real interpreter; the model uses it to check S1.
    ///
    /// # Safety
    ///
    /// `o` is dying on this thread.
    unsafe fn note_cached(&self, _o: NonNull<Self::Object>) {}

    /// Bookkeeping hook: a lookup is replacing the canonical wrapper `o`, whose try-incref just
    /// failed under the binding word's lock. A no-op on the real interpreter; the model checks
    /// that `o` really is dead (S4).
    ///
    /// # Safety
    ///
    /// `o`'s memory is live (the word's lock is held).
    unsafe fn note_replaced(&self, _o: NonNull<Self::Object>) {}
}

/// Deliberately broken adapter variants, each reproducing one upstream lesson; the model's
/// tests show that the model catches every one of them (`tests/teeth.rs`).
#[cfg(feature = "model")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdapterFlaw {
    /// The correct adapter.
    None,
    /// Clears weak references (running callbacks) before the binding transition: a callback
    /// that fetches the same object waits forever for its own dying wrapper (lesson 7), which
    /// is still GC-tracked when that wait detaches (lesson 4).
    WeakrefsBeforeTransition,
    /// Runs `__del__` before detaching the word: the finalizer's resurrection makes the
    /// canonical wrapper look alive while it is dying (lesson 2, cython#7769).
    FinalizerBeforeDetach,
    /// GC-untracks a dying wrapper with a finalizer only after detaching the word: that detach
    /// may back off (and detach the thread state) while the dying object is still tracked, so
    /// a stop-the-world collection could deallocate it twice (lesson 4, gh-135909).
    UntrackAfterDetach,
    /// `attach` checks the at-exit flag without counting itself first: a reclaim can attach to
    /// a finalising interpreter (lesson 5).
    AttachWithoutCount,
    /// A reclaimer leaves the count of attached threads before it releases its thread state:
    /// shutdown, seeing the count at zero, lets the interpreter finalise while that thread still
    /// calls `PyGILState_Release` (lesson 5).
    LeaveCountBeforeRelease,
    /// A back-off that never detaches the thread state (it only spins): with a GIL the thread
    /// waited on cannot run, so a wait for it never ends (or ends in a needless takeover).
    BackoffWithoutDetach,
    /// Never agrees to replace a dying wrapper (`Frontend::replace_dying`): a lookup waits for a
    /// dealloc that CPython 3.14's trashcan parked until this very thread unwinds (issue 8,
    /// item 10).
    NeverReplace,
}

/// `true` when runtime `rt` runs the broken adapter variant `$flaw`; `false` without the model.
macro_rules! flawed {
    ($rt:expr, $flaw:ident) => {{
        #[cfg(feature = "model")]
        let on = $rt.flaw() == $crate::runtime::AdapterFlaw::$flaw;
        #[cfg(not(feature = "model"))]
        let on = {
            let _ = &$rt;
            false
        };
        on
    }};
}
pub(crate) use flawed;
