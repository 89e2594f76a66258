//! Lookup (make-return): the canonical wrapper for a native object, reviving or creating it.

use core::ptr::NonNull;

use crate::backoff::Backoff;
use crate::frontend::flawed;
use crate::sync::atomic::Ordering;
use crate::word::{Raw, State};
use crate::{Frontend, ObjectRef};

/// How a frontend makes wrappers for one kind of native object.
pub trait WrapperFactory<F: Frontend> {
    /// Why a fresh wrapper could not be made.
    type Error;

    /// Allocates and initialises a fresh wrapper that owns `handle` (holding +1 frontend
    /// reference for the caller). Runs *outside* the word's lock: it may allocate, collect
    /// garbage and run user code, including lookups of this same object.
    fn make_fresh(&self, handle: ObjectRef<F>) -> Result<NonNull<F::Wrapper>, Self::Error>;

    /// Re-initialises the cached wrapper memory `w` in place as a live wrapper that owns
    /// `handle`, with one frontend reference for the caller. Runs *under* the word's lock, so it
    /// must not block, allocate, or run user code; it cannot fail.
    ///
    /// # Safety
    ///
    /// `w` is the Inactive wrapper block of `handle`'s object; the kernel holds the lock.
    unsafe fn revive(&self, w: NonNull<F::Wrapper>, handle: ObjectRef<F>);

    /// Disposes of a fresh wrapper that lost the race to be published: it dies as an ordinary
    /// non-canonical wrapper (its dealloc finds another wrapper canonical).
    ///
    /// # Safety
    ///
    /// `w` came from `make_fresh` and was never published; the caller's reference is given up.
    unsafe fn discard(&self, w: NonNull<F::Wrapper>);
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
}

/// The release ordering for unlock / publish stores (a broken variant weakens it).
#[cfg_attr(not(feature = "teeth"), allow(clippy::extra_unused_type_parameters))]
pub(crate) fn publish_order<F: Frontend>() -> Ordering {
    if flawed!(F, UnlockRelaxed) {
        Ordering::Relaxed
    } else {
        Ordering::Release
    }
}

impl<F: Frontend> ObjectRef<F> {
    /// [`lookup`](Self::lookup) for a caller that holds +1 on the object and hands it over
    /// (upstream's make-return): the reference is dropped after the lookup.
    pub fn into_wrapper<M: WrapperFactory<F>>(
        self,
        factory: &M,
    ) -> Result<(NonNull<F::Wrapper>, Found), M::Error> {
        self.lookup(factory)
    }

    /// Returns the canonical wrapper for this object with +1 frontend reference: hits the live
    /// wrapper, revives the cached one in place, or publishes a fresh one. The handle is only
    /// borrowed; a revived or fresh wrapper gets a clone of it.
    ///
    /// Two concurrent lookups of one object return the same wrapper (S4); while the object lives,
    /// a wrapper that died is revived at the same address (S5). A hit costs one compare-exchange
    /// and one store on the binding word plus the frontend's try-incref.
    pub fn lookup<M: WrapperFactory<F>>(
        &self,
        factory: &M,
    ) -> Result<(NonNull<F::Wrapper>, Found), M::Error> {
        let header = self.header();
        let word = &header.binding;
        let frontend = &header.frontend;
        let mut backoff = Backoff::new(frontend);
        loop {
            // Relaxed: only picks the branch; every branch that touches a wrapper first takes
            // the lock (Acquire) or publishes by compare-exchange.
            let seen = word.load(Ordering::Relaxed);
            if seen.is_locked() {
                word.wait_for_change(seen, &mut backoff);
                continue;
            }
            match seen.decode() {
                State::Active(w) => {
                    if flawed!(F, HitWithoutTryIncref) {
                        return Ok((w, Found::Hit));
                    }
                    // Acquire: see the publisher's initialisation of `w` before touching it.
                    if word
                        .cas(seen, seen.locked(), Ordering::Acquire, Ordering::Relaxed)
                        .is_err()
                    {
                        continue;
                    }
                    // SAFETY: we hold the lock, so `w` can be neither freed nor re-initialised.
                    let hit = unsafe { frontend.try_incref(w) };
                    let before_unlock = word.write_epoch();
                    word.store(seen, publish_order::<F>(), false);
                    if hit {
                        return Ok((w, Found::Hit));
                    }
                    // `w` is dying: its dealloc will move the word on, but `w` may also come back
                    // at this very address (revived elsewhere). Wait, boundedly, then retry.
                    word.wait_after_miss(seen, before_unlock, &mut backoff);
                }
                State::InTransit(_) => word.wait_for_change(seen, &mut backoff),
                State::Inactive(w) => {
                    // Acquire: see the settler's last writes to `w`'s memory before reusing it.
                    if word
                        .cas(seen, seen.locked(), Ordering::Acquire, Ordering::Relaxed)
                        .is_err()
                    {
                        continue;
                    }
                    // SAFETY: `w` is this object's cached block and we hold the lock.
                    unsafe { factory.revive(w, self.clone()) };
                    if !flawed!(F, ReviveWithoutRearm) {
                        // SAFETY: `w` is live again and we own its only reference.
                        unsafe { frontend.enable_try_incref(w) };
                    }
                    // Release (unlock + publish in one store): the revival happens before any
                    // other thread's lock of this word.
                    word.store(Raw::encode(State::Active(w)), publish_order::<F>(), true);
                    return Ok((w, Found::Revived));
                }
                State::Detached => {
                    // Outside the lock: allocation may collect garbage and run user code
                    // (docs/design.md, "fresh wrappers are allocated outside the lock").
                    let w = factory.make_fresh(self.clone())?;
                    // SAFETY: `w` is live and we own its only reference.
                    unsafe { frontend.enable_try_incref(w) };
                    let active = Raw::encode(State::Active(w));
                    let published = if flawed!(F, FreshBlindStore) {
                        word.store(active, Ordering::Release, true);
                        Ok(())
                    } else {
                        // AcqRel: publish `w`'s initialisation; Relaxed on failure because the
                        // loop re-reads and locks before touching the winner.
                        word.cas(Raw::DETACHED, active, Ordering::AcqRel, Ordering::Relaxed)
                    };
                    match published {
                        Ok(()) => return Ok((w, Found::Fresh)),
                        // SAFETY: `w` was never published and we own its only reference.
                        Err(_) => unsafe { factory.discard(w) },
                    }
                }
            }
        }
    }
}
