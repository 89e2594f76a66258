//! Reclaim: the native object's weak count reached zero; free what the word still owns.

use core::ptr::NonNull;

use crate::frontend::flawed;
use crate::sync::atomic::Ordering;
use crate::word::{Raw, State};
use crate::{Frontend, Header};

/// Runs on the weak → 0 edge, on any thread, possibly re-entrantly inside a wrapper's dealloc.
///
/// No lookup, dealloc transition or rebind can run concurrently (each holds a strong reference);
/// the only possible concurrent actor is the settler of an InTransit baton.
///
/// # Safety
///
/// No strong or weak reference to `header` remains.
pub(crate) unsafe fn reclaim<F: Frontend>(header: NonNull<Header<F>>) {
    // SAFETY: the block is live until we free it below or hand it to the settler.
    let h = unsafe { header.as_ref() };
    let word = &h.binding;
    // Acquire: see the settler's writes to a cached wrapper before freeing it.
    let mut seen = word.load(Ordering::Acquire);
    loop {
        debug_assert!(!seen.is_locked(), "a lock outlived every strong reference");
        match seen.decode() {
            State::Detached => break,
            State::InTransit(w) => {
                if flawed!(F, ReclaimFreesInTransit) {
                    break;
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
                    Ok(()) => return,
                    Err(now) => seen = now,
                }
            }
            State::Inactive(w) => {
                // Relaxed: nobody else can read the word any more.
                word.store(Raw::DETACHED, Ordering::Relaxed);
                let frontend = &h.frontend;
                // After shutdown began the cached memory is leaked on purpose (lesson 5).
                if frontend.is_alive()
                    && let Some(attached) = frontend.attach()
                {
                    // SAFETY: `w` is the cached block the word owned; we just detached it.
                    unsafe { frontend.free_cached(w, &attached) };
                }
                break;
            }
            State::Active(w) => panic!(
                "S3 violated: reclaim found Active({w:p}), but an active wrapper owns a strong \
                 reference"
            ),
        }
    }
    // SAFETY: the value was dropped and no reference remains.
    unsafe { (h.vtable.free_block)(header) };
}
