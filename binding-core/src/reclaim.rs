//! Reclaim: the native object's last reference is gone; free what the word still owns.

use core::ptr::NonNull;

use crate::Frontend;
use crate::frontend::{flawed, serial_reclaim};
use crate::native::{NativeObject, WrapperOf};
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
/// For a [`SERIALIZED`](Frontend::SERIALIZED) frontend whose attach takes its lock
/// ([`ATTACH_LOCKS`](Frontend::ATTACH_LOCKS)), reclaim touches a word that is not
/// Detached only while the thread holds the runtime's lock ([`Frontend::holds_lock`], else it
/// attaches first, which takes it), so it cannot meet the settle between that one's load and
/// store, and both are plain loads and stores. The one exception: the runtime began shutting down
/// and refused the attach while a wrapper of this object is between its dealloc and its free.
/// Reclaim then returns [`Reclaimed::Deferred`] without touching the word: the settler caches the
/// wrapper, and the block and the wrapper are leaked (as cached wrappers are after shutdown,
/// lesson 5).
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
    if serial_reclaim::<N::Frontend>() && !flawed!(N::Frontend, ReclaimWithoutLock) {
        return serialized(o, seen);
    }
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

/// Reclaim for a frontend that serializes it ([`Frontend::ATTACH_LOCKS`]), the word first seen
/// as `seen`: every write to a word that is not Detached is made holding the runtime's lock, the
/// lock the settle runs under, so plain loads and stores suffice.
fn serialized<N: NativeObject>(o: &N, seen: Raw<WrapperOf<N>>) -> Reclaimed {
    let word = o.binding();
    if seen.decode() == State::Detached {
        // No baton, no cached wrapper: nobody else can reach the word.
        return Reclaimed::Free;
    }
    let frontend = o.frontend();
    let (seen, locked, attached) = if frontend.holds_lock() {
        // The common case: a reclaim run inside a wrapper's dealloc on this very thread (the
        // dealloc's strong decrement dropped the last reference), which holds the lock. No other
        // settler is between its load and its store, and the word was read under the lock.
        (seen, true, None)
    } else {
        // A foreign thread (or one that let the lock go): attaching takes the lock (after
        // shutdown began it is refused, and we still do not hold it).
        let attached = frontend.attach();
        // Read again: a settler may have run between our first load and the lock. Acquire: its
        // writes to the wrapper's memory (before its Release store of Inactive) happen before we
        // free that memory, and before we drop the block, which we may free (the lock orders
        // both too; this keeps the edge explicit, and without the lock it is the only one).
        let now = if flawed!(N::Frontend, ReclaimStaleWord) {
            seen
        } else {
            word.load(Ordering::Acquire)
        };
        (now, attached.is_some(), attached)
    };
    match seen.decode() {
        // Not after a first load of InTransit or Inactive (only reclaim detaches a dead
        // object's word), but harmless: nothing to free but the block.
        State::Detached => Reclaimed::Free,
        State::InTransit(w) if locked => {
            // First settler: defer. The settler runs its load and store under the lock after we
            // let it go, sees Inactive, and frees both. Release: it frees the block after our
            // value drop (the lock's hand-over orders this too; a Release store costs nothing
            // more than a Relaxed one on x86 and ARM's store-release).
            word.store(Raw::encode(State::Inactive(w)), Ordering::Release);
            drop(attached);
            Reclaimed::Deferred
        }
        State::InTransit(_) => {
            // The attach was refused (shutdown) and we do not hold the lock: the settler may be
            // between its load of InTransit and its store of Inactive, which would overwrite a
            // write of ours. Leave the word alone: the settler caches the wrapper, and this block
            // (and the wrapper in it) is leaked on purpose, as cached wrappers are at shutdown.
            Reclaimed::Deferred
        }
        State::Inactive(w) => {
            // Relaxed: nobody else can read the word any more (the settle's store of Inactive
            // was its last access, and we read it with Acquire).
            word.store(Raw::DETACHED, Ordering::Relaxed);
            // Freeing wrapper memory needs the attachment token; with the lock held, attaching
            // is re-entrant (and refused after shutdown began: leak the wrapper, lesson 5).
            let attached = match attached {
                Some(a) => Some(a),
                None if locked && frontend.is_alive() => frontend.attach(),
                None => None,
            };
            if let Some(attached) = &attached {
                // SAFETY: `w` is the cached block the word owned; we just detached it.
                unsafe { frontend.free_cached(w, attached) };
            }
            drop(attached);
            Reclaimed::Free
        }
        State::Active(w) => panic!(
            "S3 violated: reclaim found Active({w:p}), but an active wrapper owns a strong \
             reference"
        ),
    }
}
