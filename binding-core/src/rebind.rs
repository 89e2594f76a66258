//! Rebind: binding a constructed wrapper, moving a binding between wrappers, detaching.

use core::ptr::NonNull;

use crate::backoff::Backoff;
use crate::frontend::flawed;
use crate::native::{NativeObject, WrapperOf};
use crate::sync::atomic::Ordering;
use crate::word::{Raw, State};
use crate::{Frontend, HandleSlot};

/// Outcome of a rebind: whether the word held the expected state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rebound {
    /// The word moved to the new state.
    Done,
    /// The word held something else and is unchanged.
    Unchanged,
}

/// `from → to` by compare-exchange, backing off while a lookup holds the lock.
fn rebind_word<N: NativeObject>(
    object: &N,
    from: State<WrapperOf<N>>,
    to: State<WrapperOf<N>>,
) -> Rebound {
    let (from, to) = (Raw::encode(from), Raw::encode(to));
    let word = object.binding();
    let mut backoff = Backoff::new(object.frontend());
    loop {
        // AcqRel: publish the new wrapper's initialisation; order after the last unlock.
        match word.cas_serial::<N::Frontend>(from, to, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(()) => return Rebound::Done,
            Err(seen) if seen == from.locked() => word.wait_for_change(seen, &mut backoff),
            Err(_) => return Rebound::Unchanged,
        }
    }
}

/// Construct: binds a freshly constructed wrapper `w` (whose slot already holds `object`):
/// Detached → Active(w).
///
/// # Safety
///
/// `w` is live, its handle slot holds a reference to `object`, and the caller owns a reference
/// to it.
pub unsafe fn bind<N: NativeObject>(object: &N, w: NonNull<WrapperOf<N>>) -> Rebound {
    // SAFETY: `w` is live (caller).
    unsafe { object.frontend().enable_try_incref(w) };
    rebind_word(object, State::Detached, State::Active(w))
}

/// Detach: Active(w) → Detached, before a handle is moved out of `w` (or before a runtime runs
/// code in which `w` must not be canonical, such as its finalizer).
pub fn detach<N: NativeObject>(object: &N, w: NonNull<WrapperOf<N>>) -> Rebound {
    rebind_word(object, State::Active(w), State::Detached)
}

/// Moves the native reference (and, if `from` is canonical, the binding) from wrapper `from` to
/// wrapper `to`: `to`'s slot gets a reference first, then Active(from) → Active(to), and only
/// then is `from`'s slot emptied, so no instant exists where the canonical wrapper has no handle.
/// Returns `None` (and does nothing) if `from` holds no handle.
///
/// # Safety
///
/// `from` and `to` are live wrappers of `frontend` with slots `from_slot` and `to_slot`; `to`'s
/// slot is empty; no other thread reads or empties `from_slot` concurrently.
pub unsafe fn move_binding<N: NativeObject>(
    frontend: &N::Frontend,
    from: NonNull<WrapperOf<N>>,
    from_slot: &HandleSlot<N>,
    to: NonNull<WrapperOf<N>>,
    to_slot: &HandleSlot<N>,
) -> Option<Rebound> {
    if flawed!(N::Frontend, MoveClearsHandleFirst) {
        let handle = from_slot.take()?;
        let header_ptr = handle.as_ptr();
        to_slot.put(handle);
        // SAFETY: `to`'s slot keeps the block alive.
        let header = unsafe { header_ptr.as_ref() };
        // SAFETY: `to` is live (caller).
        unsafe { frontend.enable_try_incref(to) };
        return Some(rebind_word(header, State::Active(from), State::Active(to)));
    }
    // SAFETY: nobody empties `from_slot` concurrently (caller).
    let handle = unsafe { from_slot.clone_handle() }?;
    let header_ptr = handle.as_ptr();
    let displaced = to_slot.put(handle);
    debug_assert!(displaced.is_none(), "move target already had a handle");
    drop(displaced);
    // SAFETY: `to`'s slot keeps the block alive.
    let header = unsafe { header_ptr.as_ref() };
    // SAFETY: `to` is live (caller).
    unsafe { frontend.enable_try_incref(to) };
    let rebound = rebind_word(header, State::Active(from), State::Active(to));
    drop(from_slot.take());
    Some(rebound)
}
