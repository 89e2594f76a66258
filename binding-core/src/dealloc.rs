//! Wrapper teardown: the binding transition (dealloc) and the settle (free).

use core::ptr::NonNull;

use crate::backoff::Backoff;
use crate::frontend::{flawed, serial_reclaim};
use crate::native::{NativeObject, WrapperOf};
use crate::sync::atomic::Ordering;
use crate::word::{Raw, State};
use crate::{Frontend, HandleSlot};

/// Whether a dying wrapper's memory may be kept for revival.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Caching {
    /// Keep the memory while the native object lives (same address on the next lookup).
    Cache,
    /// Really free it (types with finalizers, wrappers with live weak references, or a frontend
    /// that does not cache).
    Forget,
}

/// What the binding transition decided for a dying wrapper.
#[must_use = "a Cached outcome carries the InTransit baton, which must be settled"]
pub enum Dealloc<N: NativeObject> {
    /// Canonical and cacheable: the word is InTransit; settle the token in the wrapper's free.
    Cached(InTransit<N>),
    /// Canonical, not cacheable: the word is Detached; free the wrapper's memory.
    Detached,
    /// Not canonical (moved from, lost a publication race, or never bound): word unchanged; free
    /// the wrapper's memory.
    NotCanonical,
}

/// The InTransit baton: proof that the word says `InTransit(w)`. It must be [`settle`]d once, in
/// the wrapper's free; dropping it instead panics (the memory would leak or be freed twice).
///
/// [`settle`]: InTransit::settle
#[must_use = "settle the baton in the wrapper's free"]
pub struct InTransit<N: NativeObject> {
    object: NonNull<N>,
    wrapper: NonNull<WrapperOf<N>>,
}

impl<N: NativeObject> core::fmt::Debug for Dealloc<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Cached(t) => f.debug_tuple("Cached").field(t).finish(),
            Self::Detached => f.write_str("Detached"),
            Self::NotCanonical => f.write_str("NotCanonical"),
        }
    }
}

impl<N: NativeObject> core::fmt::Debug for InTransit<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InTransit")
            .field("object", &self.object)
            .field("wrapper", &self.wrapper)
            .finish()
    }
}

// SAFETY: the token only names the block and the wrapper; the word decides who may touch them.
unsafe impl<N: NativeObject> Send for InTransit<N> {}

/// What the wrapper's free must do with the wrapper's memory after settling.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Settled {
    /// The native object lives on: the memory now belongs to the word (Inactive). Do not touch it.
    Cached,
    /// Reclaim already ran and deferred: the kernel has freed the native block; free the
    /// wrapper's memory now.
    FreeWrapper,
}

/// The binding transition for wrapper `w`, whose frontend reference count reached zero.
///
/// Untracks `w` from the frontend's GC first, transitions the word (backing off while a lookup
/// holds the lock), then drops the native reference `slot` held, outside any lock: that drop may
/// run reclaim re-entrantly. Call it before anything can make `w`'s reference count look
/// non-zero to another thread (lesson 2).
///
/// # Safety
///
/// `w` is a wrapper of `frontend` whose reference count reached zero, `slot` is its handle slot,
/// and this is its only dealloc.
// Inline: a frontend's dealloc calls it on every wrapper death (the CPython adapter from both its
// common path and its full one, which made it an out-of-line call of ~50 instructions).
#[inline]
pub unsafe fn dealloc<N: NativeObject>(
    frontend: &N::Frontend,
    w: NonNull<WrapperOf<N>>,
    slot: &HandleSlot<N>,
    caching: Caching,
) -> Dealloc<N> {
    if !flawed!(N::Frontend, BackoffBeforeUntrack) {
        // SAFETY: `w` is dying on this thread (caller).
        unsafe { frontend.untrack(w) };
    }
    let outcome = match slot.header() {
        None => Dealloc::NotCanonical,
        Some(header_ptr) => {
            if flawed!(N::Frontend, DropBeforeTransit) {
                // SAFETY: as below (the broken variant's bug is the order).
                drop(unsafe { slot.take_exclusive() });
            }
            // SAFETY: the slot's reference keeps the block alive (the broken variant above
            // gives it up too early: that is its bug).
            let word = unsafe { header_ptr.as_ref() }.binding();
            transition(frontend, word, w, caching, header_ptr)
        }
    };
    if flawed!(N::Frontend, BackoffBeforeUntrack) {
        // SAFETY: as above.
        unsafe { frontend.untrack(w) };
    }
    // Outside any lock: may run reclaim on this thread, which then finds InTransit and defers.
    // SAFETY: `w` is dying on this thread, so nobody else reaches its slot (its count is zero;
    // moves and reads of the handle need a reference).
    drop(unsafe { slot.take_exclusive() });
    outcome
}

/// The dealloc's binding transition: Active(w) → InTransit(w) (or Detached), waiting while a
/// lookup holds the word's lock; `NotCanonical` if the word names another wrapper.
// Inline, with the first try on its own: it succeeds in every dealloc but those that meet a
// lookup's lock (never with a serialized frontend), so the waiting loop and its back-off state
// stay out of line.
#[inline]
fn transition<N: NativeObject>(
    frontend: &N::Frontend,
    word: &crate::BindingWord<WrapperOf<N>>,
    w: NonNull<WrapperOf<N>>,
    caching: Caching,
    object: NonNull<N>,
) -> Dealloc<N> {
    let (active, target) = transition_words(w, caching);
    // Orderings: as in `transition_wait`'s loop, which this first try is.
    match word.cas_serial::<N::Frontend>(
        active,
        target,
        Ordering::AcqRel,
        transition_failure_order::<N::Frontend>(),
    ) {
        Ok(()) => transitioned(caching, object, w),
        Err(seen) if seen == active.locked() => {
            transition_wait(frontend, word, w, caching, object, seen)
        }
        Err(_) => Dealloc::NotCanonical,
    }
}

/// The words of the dealloc's transition: the one it expects (Active(w)) and the one it leaves
/// (InTransit(w) when caching, else Detached).
#[inline(always)]
fn transition_words<W>(w: NonNull<W>, caching: Caching) -> (Raw<W>, Raw<W>) {
    let target = match caching {
        Caching::Cache => State::InTransit(w),
        Caching::Forget => State::Detached,
    };
    (Raw::encode(State::Active(w)), Raw::encode(target))
}

/// The dealloc's outcome after its transition.
#[inline(always)]
fn transitioned<N: NativeObject>(
    caching: Caching,
    object: NonNull<N>,
    w: NonNull<WrapperOf<N>>,
) -> Dealloc<N> {
    match caching {
        Caching::Cache => Dealloc::Cached(InTransit { object, wrapper: w }),
        Caching::Forget => Dealloc::Detached,
    }
}

/// The failure ordering of the transition's compare-exchange (a broken variant weakens it).
#[cfg_attr(not(feature = "teeth"), allow(clippy::extra_unused_type_parameters))]
fn transition_failure_order<F: crate::Frontend>() -> Ordering {
    // Acquire on failure too: when a lookup replaced `w` (the word moved on), the caller frees
    // `w`'s memory next, which must come after that lookup's try-incref read of it (its
    // publishing store is a Release). ThreadSanitizer found this through the C ABI; the model
    // cannot (its wrapper blocks are quarantined, never reused).
    if flawed!(F, DeallocFailureRelaxed) {
        Ordering::Relaxed
    } else {
        Ordering::Acquire
    }
}

/// [`transition`] after its first try met a lookup's lock (`seen`): waits and retries.
#[inline(never)]
fn transition_wait<N: NativeObject>(
    frontend: &N::Frontend,
    word: &crate::BindingWord<WrapperOf<N>>,
    w: NonNull<WrapperOf<N>>,
    caching: Caching,
    object: NonNull<N>,
    seen: Raw<WrapperOf<N>>,
) -> Dealloc<N> {
    let (active, target) = transition_words(w, caching);
    let mut backoff = Backoff::new(frontend);
    word.wait_for_change(seen, &mut backoff);
    loop {
        // AcqRel: after the last lookup's unlock (so its try-incref failed on our zero count),
        // and published to the settler and reclaimer. Failure: see `transition_failure_order`.
        match word.cas_serial::<N::Frontend>(
            active,
            target,
            Ordering::AcqRel,
            transition_failure_order::<N::Frontend>(),
        ) {
            Ok(()) => return transitioned(caching, object, w),
            Err(seen) if seen == active.locked() => word.wait_for_change(seen, &mut backoff),
            Err(_) => return Dealloc::NotCanonical,
        }
    }
}

impl<N: NativeObject> InTransit<N> {
    /// Gives the baton up as its two pointers, for a frontend that keeps it in foreign memory
    /// (the C ABI's `TetherBaton`): pair with [`from_raw`](Self::from_raw), which must be
    /// called exactly once before the settle.
    pub fn into_raw(self) -> (NonNull<N>, NonNull<WrapperOf<N>>) {
        let this = core::mem::ManuallyDrop::new(self);
        (this.object, this.wrapper)
    }

    /// Re-takes a baton given up by [`into_raw`](Self::into_raw).
    ///
    /// # Safety
    ///
    /// The pointers came from `into_raw` and the baton is re-taken at most once.
    pub unsafe fn from_raw(object: NonNull<N>, wrapper: NonNull<WrapperOf<N>>) -> Self {
        Self { object, wrapper }
    }

    /// The dying wrapper.
    pub fn wrapper(&self) -> NonNull<WrapperOf<N>> {
        self.wrapper
    }

    /// Settles the baton (the wrapper's free): InTransit → Inactive if the native object lives,
    /// otherwise frees the native block because reclaim already ran and deferred to us.
    pub fn settle(self) -> Settled {
        let this = core::mem::ManuallyDrop::new(self);
        let (object, w) = (this.object, this.wrapper);
        // SAFETY: while IN_TRANSIT is set, reclaim does not free the block (it defers to us).
        let word = unsafe { object.as_ref() }.binding();
        let transit = Raw::encode(State::InTransit(w));
        let inactive = Raw::encode(State::Inactive(w));
        // Release: a later reviver or reclaimer touches `w`'s memory after our writes to it.
        // Acquire on failure: we free the block after reclaim's writes (its value drop).
        let (success, failure) = if flawed!(N::Frontend, SettleRelaxed) {
            (Ordering::Relaxed, Ordering::Relaxed)
        } else {
            (Ordering::Release, Ordering::Acquire)
        };
        // A serialized frontend settles holding the runtime's lock. If its attach takes that
        // lock too, reclaim writes a word that is not Detached only holding it (it attaches
        // first on a foreign thread; after a refused attach at shutdown it leaves the word
        // alone): nothing comes between the load and the store, so they are plain (Acquire
        // load, Release store: the orderings above, both directions at once). Otherwise a
        // reclaim on a foreign thread can race this transition: a compare-exchange.
        let settled = if serial_reclaim::<N::Frontend>() {
            word.cas_serial::<N::Frontend>(transit, inactive, success, failure)
        } else {
            word.cas(transit, inactive, success, failure)
        };
        match settled {
            Ok(()) => Settled::Cached,
            Err(seen) => {
                assert!(
                    seen == inactive,
                    "InTransit baton changed hands to something other than the reclaimer"
                );
                // SAFETY: reclaim ran (no references remain) and left freeing to us.
                unsafe { N::free(object) };
                Settled::FreeWrapper
            }
        }
    }
}

impl<N: NativeObject> Drop for InTransit<N> {
    fn drop(&mut self) {
        // Already unwinding from another failure: do not turn it into an abort.
        #[cfg(feature = "std")]
        if std::thread::panicking() {
            return;
        }
        panic!("InTransit baton dropped without settle: the wrapper's free must settle it");
    }
}
