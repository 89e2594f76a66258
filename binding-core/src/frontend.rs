//! What the kernel needs from a language runtime, and nothing more.
//!
//! The kernel never knows what a wrapper is: it stores `NonNull<F::Wrapper>` in the binding word
//! and asks the frontend to act on it. A CPython frontend implements this with
//! `PyUnstable_TryIncRef`, `PyUnstable_EnableTryIncRef`, `PyObject_GC_UnTrack`, a back-off that
//! detaches the thread state, and `PyGILState_Ensure` for reclaims on foreign threads.

use core::ptr::NonNull;

#[cfg(feature = "teeth")]
use crate::flaw::Flaw;

/// A language runtime that owns wrappers.
///
/// # Safety
///
/// Implementations must uphold the contracts written on each method; the kernel's memory safety
/// (S1) rests on them. In particular `try_incref` must never succeed on a wrapper whose reference
/// count has reached zero, and `attach` must return `None` once the runtime began shutting down,
/// atomically with respect to that shutdown.
pub unsafe trait Frontend: Clone + Send + Sync + 'static {
    /// The runtime's object type. Only pointers to it are stored; they must be 8-byte aligned
    /// (checked at compile time).
    type Wrapper;

    /// Whether the runtime serializes the kernel's word transitions itself (a GIL build of
    /// CPython): then the kernel replaces the word's compare-exchanges and its per-word lock by
    /// plain loads and stores, and a hit costs no read-modify-write (docs/design.md, "GIL
    /// mode"). Default `false`: every transition is a compare-exchange (free-threaded runtimes).
    ///
    /// A frontend that says `true` promises: every kernel call on its wrappers' words —
    /// lookups, deallocs, settles, rebinds — runs while the calling thread holds one
    /// runtime-wide lock, which the thread lets go only inside [`backoff`](Self::backoff) and
    /// inside [`WrapperFactory::make_fresh`](crate::WrapperFactory::make_fresh) (never between
    /// a kernel load and its store). Only reclaim may run on any thread without that lock;
    /// unless the frontend also declares [`ATTACH_LOCKS`](Self::ATTACH_LOCKS), the kernel keeps
    /// the two transitions reclaim can race (the settle and reclaim's deferral) as
    /// compare-exchanges. Breaking the promise breaks S1 and S4.
    const SERIALIZED: bool = false;

    /// [`SERIALIZED`](Self::SERIALIZED) frontends only: whether [`attach`](Self::attach) takes
    /// the runtime's global lock (re-entrantly) and holds it for the attachment's life (CPython:
    /// `PyGILState_Ensure`). Then reclaim touches a word that is not Detached only holding the
    /// lock ([`holds_lock`](Self::holds_lock), else it attaches first), so it cannot meet a
    /// settle between that one's load and store, and the settle is a plain load and store too:
    /// one read-modify-write less per wrapper drop. Default `false` (the settle stays a
    /// compare-exchange). Saying `true` for an `attach` that does not take the lock breaks S2.
    const ATTACH_LOCKS: bool = false;

    /// [`SERIALIZED`](Self::SERIALIZED) and [`ATTACH_LOCKS`](Self::ATTACH_LOCKS) frontends
    /// only: whether the calling thread holds the runtime's global lock right now (a GIL build
    /// of CPython: the thread has an attached thread state). Reclaim asks it to skip
    /// [`attach`](Self::attach) in the common case, a reclaim run re-entrantly inside a
    /// wrapper's dealloc. Must be cheap, must not block, and must never say `true` to a thread
    /// that does not hold the lock (a wrong `false` only costs an attach). Default `false`.
    fn holds_lock(&self) -> bool {
        false
    }

    /// Proof of being attached to the runtime (for a reclaim on a foreign thread). Dropping it
    /// detaches again.
    type Attachment;

    /// Takes a new reference to `w` unless its reference count already reached zero (it is
    /// dying). Must not block, allocate or run user code. May fail spuriously unless
    /// [`enable_try_incref`](Self::enable_try_incref) was called since `w`'s memory was last
    /// (re)initialised: the kernel always calls it before publishing a wrapper.
    ///
    /// Once armed, a failure must mean that `w` is dying: after repeated failures the kernel
    /// may replace `w` ([`replace_dying`](Self::replace_dying)), which for a live `w` would
    /// make two wrappers (S4). A runtime that refuses some live objects (free-threaded CPython
    /// refuses an object inside its finalizer) must keep such a wrapper from being canonical
    /// then (the CPython adapter detaches the word before running `__del__`) or say no in
    /// `replace_dying`.
    ///
    /// # Safety
    ///
    /// `w`'s memory is live (the kernel holds the word's lock, so it can be neither freed nor
    /// re-initialised).
    unsafe fn try_incref(&self, w: NonNull<Self::Wrapper>) -> bool;

    /// Arms `try_incref` for `w` (CPython: `PyUnstable_EnableTryIncRef`). Called after every
    /// fresh construction and every revival, before the wrapper is published (lesson 3).
    ///
    /// # Safety
    ///
    /// `w` is a live wrapper that the calling thread owns a reference to or is publishing.
    unsafe fn enable_try_incref(&self, w: NonNull<Self::Wrapper>);

    /// Removes a dying `w` from the runtime's garbage collector. The kernel calls it first in
    /// every dealloc, before anything that can back off (lesson 4, CPython gh-135909).
    ///
    /// # Safety
    ///
    /// `w`'s reference count reached zero and its dealloc is running on this thread.
    unsafe fn untrack(&self, w: NonNull<Self::Wrapper>);

    /// Waits a little because another thread holds what this one needs. `spins` counts the
    /// consecutive waits of the current operation. A runtime with a global or stop-the-world lock
    /// must let it go here (CPython: detach the thread state) so the thread waited on can run.
    fn backoff(&self, spins: u32);

    /// Whether a lookup that missed `misses` times in a row on one dying wrapper (each miss
    /// followed by a bounded watch of the word) stops waiting for that wrapper's dealloc and
    /// replaces it ([`Found::Replaced`](crate::Found::Replaced)). Called once per miss, with
    /// `misses` counting from 1.
    ///
    /// A runtime that can park a dealloc (CPython 3.14's trashcan defers it until the thread's
    /// stack unwinds, possibly the looking-up thread's own) must say yes eventually, or the
    /// lookup waits forever (L1). Saying yes early is safe (S1-S4 hold either way) but gives up
    /// the address (S5) of a wrapper whose dealloc was merely slow. The default says yes after
    /// [`MISSES_BEFORE_TAKEOVER`](crate::MISSES_BEFORE_TAKEOVER) misses.
    fn replace_dying(&self, misses: u32) -> bool {
        misses >= crate::MISSES_BEFORE_TAKEOVER
    }

    /// Told that a lookup is about to replace the canonical wrapper `old`, whose count is zero
    /// (its try-incref just failed under the word's lock) and whose dealloc has not come. For
    /// statistics and checks; the default does nothing.
    ///
    /// # Safety
    ///
    /// `old`'s memory is live (the kernel holds the word's lock); must not block, allocate or
    /// run user code.
    unsafe fn replaced(&self, old: NonNull<Self::Wrapper>) {
        let _ = old;
    }

    /// Whether the runtime is still running (not finalising).
    fn is_alive(&self) -> bool;

    /// Attaches the calling thread to the runtime so it may free wrapper memory, or `None` once
    /// shutdown began (never call into a finalising runtime, lesson 5).
    ///
    /// With [`ATTACH_LOCKS`](Self::ATTACH_LOCKS), the attachment holds the runtime's global lock
    /// for its life, re-entrantly if the thread holds it already: reclaim relies on it to
    /// exclude the settle.
    fn attach(&self) -> Option<Self::Attachment>;

    /// Frees the memory of a cached (Inactive) wrapper whose native object is being reclaimed.
    ///
    /// # Safety
    ///
    /// `w` is a cached wrapper block owned by the binding word, which the kernel has just
    /// detached; nobody else can reach it. The caller is attached.
    unsafe fn free_cached(&self, w: NonNull<Self::Wrapper>, attached: &Self::Attachment);

    /// Under a model checker only: runs `sleep`, in which the thread blocks until a binding
    /// word changes, with any global lock the thread holds let go (a serialized frontend's
    /// model, whose back-off would let it go). The default just sleeps.
    #[cfg(any(loom, feature = "shuttle"))]
    #[doc(hidden)]
    fn sleep_unlocked(&self, sleep: &dyn Fn()) {
        sleep();
    }

    /// Test-only: which deliberately broken kernel variant this frontend runs
    /// (see `docs/broken-variants.md`).
    #[cfg(feature = "teeth")]
    #[doc(hidden)]
    const FLAW: Flaw = Flaw::None;
}

/// Whether reclaim and the settle of frontend `F`'s words are serialized by its global lock
/// ([`Frontend::SERIALIZED`] and [`Frontend::ATTACH_LOCKS`]): then the settle is a plain load
/// and store.
pub(crate) const fn serial_reclaim<F: Frontend>() -> bool {
    F::SERIALIZED && F::ATTACH_LOCKS
}

/// `true` when frontend `F` runs the broken variant `$flaw`; constant `false` without `teeth`.
macro_rules! flawed {
    ($f:ty, $flaw:ident) => {{
        #[cfg(feature = "teeth")]
        let on = matches!(<$f as $crate::Frontend>::FLAW, $crate::flaw::Flaw::$flaw);
        #[cfg(not(feature = "teeth"))]
        let on = false;
        on
    }};
}
pub(crate) use flawed;
