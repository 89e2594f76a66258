//! Reclaim: the native object's last reference is gone; free what the word still owns.

use core::ptr::NonNull;

use crate::Frontend;
use crate::frontend::flawed;
use crate::native::NativeObject;
use crate::sync::atomic::Ordering;
use crate::word::{Raw, State};

/// What the object system does with the block after [`reclaim`].
#[must_use = "free the block on `Free`; never touch it on `Deferred`"]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reclaimed {
    /// The word is Detached and its cached wrapper (if any) freed: free the block now.
    Free,
    /// A wrapper of this object is dying on some thread (the word is InTransit): its settle will
    /// free the block through [`NativeObject::free`]. Do not touch the block again.
    Deferred,
}

/// The reclaim edge: an object system calls this once per object, when no strong or weak
/// reference to it remains (its weak → 0 edge; without weak references, right after the value
/// is dropped at strong → 0), on any thread, possibly re-entrantly inside a wrapper's dealloc.
///
/// Frees the object's cached wrapper if the word owns one (attaching to the runtime first; after
/// the runtime began shutting down the wrapper is leaked on purpose, lesson 5), or hands the
/// block to the settler of a wrapper that is dying right now.
///
/// No lookup, dealloc transition or rebind can run concurrently (each holds a strong reference);
/// the only possible concurrent actor is the settler of an InTransit baton.
///
/// # Safety
///
/// `object` is live, no strong or weak reference to it remains, and this is its only reclaim.
pub unsafe fn reclaim<N: NativeObject>(object: NonNull<N>) -> Reclaimed {
    // SAFETY: the block is live until the caller frees it or the settler does.
    let o = unsafe { object.as_ref() };
    let word = o.binding();
    // Acquire: see the settler's writes to a cached wrapper before freeing it.
    let mut seen = word.load(Ordering::Acquire);
    loop {
        debug_assert!(!seen.is_locked(), "a lock outlived every strong reference");
        match seen.decode() {
            State::Detached => return Reclaimed::Free,
            State::InTransit(w) => {
                if flawed!(N::Frontend, ReclaimFreesInTransit) {
                    return Reclaimed::Free;
                }
                // AcqRel: the settler frees the block after our value drop (Release) and we
                // observe its settle if it came first (Acquire on failure).
                match word.cas(
                    seen,
                    Raw::encode(State::Inactive(w)),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    // First settler: defer. The wrapper's free will free both.
                    Ok(()) => return Reclaimed::Deferred,
                    Err(now) => seen = now,
                }
            }
            State::Inactive(w) => {
                // Relaxed: nobody else can read the word any more.
                word.store(Raw::DETACHED, Ordering::Relaxed);
                let frontend = o.frontend();
                // After shutdown began the cached memory is leaked on purpose (lesson 5).
                if frontend.is_alive()
                    && let Some(attached) = frontend.attach()
                {
                    // SAFETY: `w` is the cached block the word owned; we just detached it.
                    unsafe { frontend.free_cached(w, &attached) };
                }
                return Reclaimed::Free;
            }
            State::Active(w) => panic!(
                "S3 violated: reclaim found Active({w:p}), but an active wrapper owns a strong \
                 reference"
            ),
        }
    }
}
