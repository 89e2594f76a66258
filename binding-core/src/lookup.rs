//! Lookup (make-return): the canonical wrapper for a native object, reviving or creating it.

use core::ptr::NonNull;

use crate::Frontend;
use crate::backoff::Backoff;
use crate::frontend::flawed;
use crate::native::{NativeObject, NativeRef, WrapperOf};
use crate::sync::atomic::Ordering;
use crate::word::{Raw, State};

/// How a frontend makes wrappers for one kind of native object.
pub trait WrapperFactory<N: NativeObject> {
    /// Why a fresh wrapper could not be made.
    type Error;

    /// Allocates and initialises a fresh wrapper that owns `handle` (holding +1 frontend
    /// reference for the caller). Runs *outside* the word's lock: it may allocate, collect
    /// garbage and run user code, including lookups of this same object.
    fn make_fresh(&self, handle: NativeRef<N>) -> Result<NonNull<WrapperOf<N>>, Self::Error>;

    /// Re-initialises the cached wrapper memory `w` in place as a live wrapper that owns
    /// `handle`, with one frontend reference for the caller. Runs *under* the word's lock (for a
    /// [`SERIALIZED`](Frontend::SERIALIZED) frontend: between a plain load of the word and the
    /// store that publishes, so it must not let the runtime's global lock go either): it must
    /// not block, allocate, or run user code; it cannot fail.
    ///
    /// # Safety
    ///
    /// `w` is the Inactive wrapper block of `handle`'s object; the kernel holds the lock.
    unsafe fn revive(&self, w: NonNull<WrapperOf<N>>, handle: NativeRef<N>);

    /// Disposes of a fresh wrapper that lost the race to be published: it dies as an ordinary
    /// non-canonical wrapper (its dealloc finds another wrapper canonical).
    ///
    /// # Safety
    ///
    /// `w` came from `make_fresh` and was never published; the caller's reference is given up.
    unsafe fn discard(&self, w: NonNull<WrapperOf<N>>);
}

/// How a lookup found its wrapper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Found {
    /// The live canonical wrapper.
    Hit,
    /// The cached wrapper, revived in place (same address as before).
    Revived,
    /// A new wrapper.
    Fresh,
    /// A new wrapper that took the binding over from a canonical wrapper whose reference count
    /// reached zero but whose dealloc did not come (CPython 3.14's trashcan parks a dealloc on a
    /// deep C stack, possibly on this very thread). The old wrapper's late dealloc finds itself
    /// not canonical. The only case in which a re-fetch gets a new address while the native
    /// object lives (S5's one exception).
    Replaced,
}

/// How many consecutive misses on one dying wrapper a lookup tolerates, by default, before it
/// replaces it (each miss watches the word for a bounded number of back-offs); see
/// [`Frontend::replace_dying`](crate::Frontend::replace_dying).
#[cfg(not(any(loom, feature = "shuttle")))]
pub const MISSES_BEFORE_TAKEOVER: u32 = 4;
/// Under a checker: a smaller budget, so the takeover is explored within the bounds.
#[cfg(any(loom, feature = "shuttle"))]
pub const MISSES_BEFORE_TAKEOVER: u32 = 2;

/// The release ordering for unlock / publish stores (a broken variant weakens it).
#[cfg_attr(not(feature = "teeth"), allow(clippy::extra_unused_type_parameters))]
pub(crate) fn publish_order<F: Frontend>() -> Ordering {
    if flawed!(F, UnlockRelaxed) {
        Ordering::Relaxed
    } else {
        Ordering::Release
    }
}

impl<N: NativeObject> NativeRef<N> {
    /// [`lookup`](Self::lookup) for a caller that holds +1 on the object and hands it over
    /// (upstream's make-return): the reference is dropped after the lookup.
    pub fn into_wrapper<M: WrapperFactory<N>>(
        self,
        factory: &M,
    ) -> Result<(NonNull<WrapperOf<N>>, Found), M::Error> {
        self.lookup(factory)
    }

    /// Returns the canonical wrapper for this object with +1 frontend reference: hits the live
    /// wrapper, revives the cached one in place, or publishes a fresh one. The handle is only
    /// borrowed; a revived or fresh wrapper gets a clone of it.
    ///
    /// Two concurrent lookups of one object return the same wrapper (S4); while the object lives,
    /// a wrapper that died is revived at the same address (S5). A hit costs one compare-exchange
    /// and one store on the binding word plus the frontend's try-incref.
    #[inline]
    pub fn lookup<M: WrapperFactory<N>>(
        &self,
        factory: &M,
    ) -> Result<(NonNull<WrapperOf<N>>, Found), M::Error> {
        match self.hit() {
            Some(w) => Ok((w, Found::Hit)),
            None => self.lookup_slow(factory),
        }
    }

    /// The common case of [`lookup`](Self::lookup) on its own, small enough to inline into a
    /// frontend's getter: the word is Active and its wrapper alive, and this returns it with +1
    /// frontend reference. `None` for every other case (then call `lookup`, which meets a miss
    /// again and counts it).
    ///
    /// Never waits, allocates or calls the frontend except for one `try_incref`, so it may run
    /// where `lookup` may not: inside a critical section or a lock that protects the stored
    /// reference being read (the CPython adapter reads a field this way without cloning it).
    #[inline]
    pub fn hit(&self) -> Option<NonNull<WrapperOf<N>>> {
        if flawed!(N::Frontend, HitWithoutTryIncref) {
            return None;
        }
        let object = self.object();
        let word = object.binding();
        // Relaxed: only picks the branch; the lock below is the Acquire.
        let seen = word.load(Ordering::Relaxed);
        // A locked word is a miss here: its compare-exchange below would fail anyway (and a
        // serialized frontend never sees one).
        let w = seen.active_unlocked()?;
        if <N::Frontend as Frontend>::SERIALIZED {
            // GIL mode: the runtime's lock already keeps every other thread from freeing or
            // re-initialising `w` (the word's own lock would protect against nothing), and the
            // word is never seen locked (no thread lets the global lock go while holding it).
            // SAFETY: `w` is canonical and no other thread can change that while we run.
            return unsafe { object.frontend().try_incref(w) }.then_some(w);
        }
        // Acquire: see the publisher's initialisation of `w` before touching it.
        if word
            .cas(seen, seen.locked(), Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        // SAFETY: we hold the lock, so `w` can be neither freed nor re-initialised.
        let hit = unsafe { object.frontend().try_incref(w) };
        // Release (unlock): as the slow path's.
        word.store(seen, publish_order::<N::Frontend>());
        hit.then_some(w)
    }

    /// Every case but the plain hit. The common one, a cached wrapper to revive (every drop +
    /// refetch), is tried first on its own: it never waits, so none of the loop's state (the
    /// back-off, the takeover's bookkeeping) is set up for it, and this stays a small function.
    #[inline(never)]
    fn lookup_slow<M: WrapperFactory<N>>(
        &self,
        factory: &M,
    ) -> Result<(NonNull<WrapperOf<N>>, Found), M::Error> {
        let word = self.object().binding();
        // Relaxed: only picks the branch; the lock below is the Acquire.
        let seen = word.load(Ordering::Relaxed);
        if let Some(w) = seen.inactive_unlocked()
            // Acquire: see the settler's last writes to `w`'s memory before reusing it.
            && word
                .cas_serial::<N::Frontend>(seen, seen.locked(), Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            // SAFETY: we just locked the word on Inactive(w).
            return Ok((unsafe { self.revive_locked(factory, w) }, Found::Revived));
        }
        self.lookup_loop(factory)
    }

    /// Revives `w`, this object's cached block, in place, and unlocks the word on Active(w).
    ///
    /// # Safety
    ///
    /// The caller locked the word on Inactive(w).
    #[inline(always)]
    unsafe fn revive_locked<M: WrapperFactory<N>>(
        &self,
        factory: &M,
        w: NonNull<WrapperOf<N>>,
    ) -> NonNull<WrapperOf<N>> {
        let object = self.object();
        // SAFETY: `w` is this object's cached block and we hold the lock (caller).
        unsafe { factory.revive(w, self.clone()) };
        if !flawed!(N::Frontend, ReviveWithoutRearm) {
            // SAFETY: `w` is live again and we own its only reference.
            unsafe { object.frontend().enable_try_incref(w) };
        }
        // Release (unlock + publish in one store): the revival happens before any other
        // thread's lock of this word.
        object.binding().store(
            Raw::encode(State::Active(w)),
            publish_order::<N::Frontend>(),
        );
        w
    }

    /// [`lookup_slow`](Self::lookup_slow)'s loop: waits, revival, fresh wrapper, the takeover.
    #[inline(never)]
    fn lookup_loop<M: WrapperFactory<N>>(
        &self,
        factory: &M,
    ) -> Result<(NonNull<WrapperOf<N>>, Found), M::Error> {
        let object = self.object();
        let word = object.binding();
        let frontend = object.frontend();
        let mut backoff = Backoff::new(frontend);
        // The dying wrapper the last misses were on, and how many in a row.
        let mut missed: Option<(NonNull<WrapperOf<N>>, u32)> = None;
        // The dying wrapper the frontend agreed to replace (`Frontend::replace_dying`).
        let mut replace: Option<NonNull<WrapperOf<N>>> = None;
        // A fresh wrapper made (outside the lock) to replace a dying wrapper whose dealloc does
        // not come; also usable for a Detached word. Discarded if unused, after every unlock.
        let mut spare: Option<NonNull<WrapperOf<N>>> = None;
        let found = loop {
            // Relaxed: only picks the branch; every branch that touches a wrapper first takes
            // the lock (Acquire) or publishes by compare-exchange.
            let seen = word.load(Ordering::Relaxed);
            if seen.is_locked() {
                word.wait_for_change(seen, &mut backoff);
                continue;
            }
            match seen.decode() {
                State::Active(w) => {
                    if flawed!(N::Frontend, HitWithoutTryIncref) {
                        break Ok((w, Found::Hit));
                    }
                    // Acquire: see the publisher's initialisation of `w` before touching it.
                    if word
                        .cas_serial::<N::Frontend>(
                            seen,
                            seen.locked(),
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        )
                        .is_err()
                    {
                        continue;
                    }
                    let due = spare.is_some() && replace == Some(w);
                    if due
                        && flawed!(N::Frontend, TakeoverWithoutTryIncref)
                        && let Some(new) = spare.take()
                    {
                        // SAFETY: as below (the broken variant skips the try-incref).
                        unsafe { frontend.replaced(w) };
                        word.store(Raw::encode(State::Active(new)), Ordering::Release);
                        break Ok((new, Found::Replaced));
                    }
                    // SAFETY: we hold the lock, so `w` can be neither freed nor re-initialised.
                    let hit = unsafe { frontend.try_incref(w) };
                    if !hit
                        && due
                        && let Some(new) = spare.take()
                    {
                        // The takeover: `w`'s count is zero (the failed try-incref, under
                        // the lock, so `w` cannot have been revived meanwhile) and its
                        // dealloc has not moved the word after all our waits. It may never
                        // come while we wait (parked on this thread's delete-later list), so
                        // `new` becomes canonical; `w`'s late dealloc finds the word moved on
                        // and dies as a non-canonical wrapper, dropping its own reference.
                        // Release (unlock + publish in one store): `new`'s initialisation
                        // happens before any other thread's lock of this word.
                        // SAFETY: we hold the lock, so `w`'s memory is live.
                        unsafe { frontend.replaced(w) };
                        word.store(
                            Raw::encode(State::Active(new)),
                            publish_order::<N::Frontend>(),
                        );
                        break Ok((new, Found::Replaced));
                    }
                    word.store(seen, publish_order::<N::Frontend>());
                    if hit {
                        break Ok((w, Found::Hit));
                    }
                    let misses = match missed {
                        Some((m, n)) if m == w => n.saturating_add(1),
                        _ => 1,
                    };
                    missed = Some((w, misses));
                    if !flawed!(N::Frontend, WaitForParkedDealloc) && frontend.replace_dying(misses)
                    {
                        replace = Some(w);
                        if spare.is_none() {
                            // Outside the lock, like every fresh wrapper.
                            match self.make_spare(factory) {
                                Ok(new) => spare = Some(new),
                                Err(e) => break Err(e),
                            }
                        }
                        continue;
                    }
                    // `w` is dying: its dealloc will move the word on, but `w` may also come back
                    // at this very address (revived elsewhere). Wait, boundedly, then retry.
                    word.wait_after_miss(seen, &mut backoff);
                }
                State::InTransit(_) => word.wait_for_change(seen, &mut backoff),
                State::Inactive(w) => {
                    // Acquire: see the settler's last writes to `w`'s memory before reusing it.
                    if word
                        .cas_serial::<N::Frontend>(
                            seen,
                            seen.locked(),
                            Ordering::Acquire,
                            Ordering::Relaxed,
                        )
                        .is_err()
                    {
                        continue;
                    }
                    // SAFETY: we just locked the word on Inactive(w).
                    break Ok((unsafe { self.revive_locked(factory, w) }, Found::Revived));
                }
                State::Detached => {
                    // Outside the lock: allocation may collect garbage and run user code
                    // (docs/design.md, "fresh wrappers are allocated outside the lock").
                    let w = match spare.take() {
                        Some(w) => w,
                        None => match self.make_spare(factory) {
                            Ok(w) => w,
                            Err(e) => break Err(e),
                        },
                    };
                    let active = Raw::encode(State::Active(w));
                    let published = if flawed!(N::Frontend, FreshBlindStore) {
                        word.store(active, Ordering::Release);
                        Ok(())
                    } else {
                        // AcqRel: publish `w`'s initialisation; Relaxed on failure because the
                        // loop re-reads and locks before touching the winner.
                        word.cas_serial::<N::Frontend>(
                            Raw::DETACHED,
                            active,
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        )
                    };
                    match published {
                        Ok(()) => break Ok((w, Found::Fresh)),
                        // Lost the race: keep it, in case the winner's dealloc never comes.
                        Err(_) => spare = Some(w),
                    }
                }
            }
        };
        if let Some(w) = spare {
            // SAFETY: `w` was never published and we own its only reference; no lock is held.
            unsafe { factory.discard(w) };
        }
        found
    }

    /// A fresh wrapper for this object, armed for try-incref, not yet published.
    fn make_spare<M: WrapperFactory<N>>(
        &self,
        factory: &M,
    ) -> Result<NonNull<WrapperOf<N>>, M::Error> {
        let w = factory.make_fresh(self.clone())?;
        // SAFETY: `w` is live and we own its only reference.
        unsafe { self.object().frontend().enable_try_incref(w) };
        Ok(w)
    }
}
