//! Rebind: binding a constructed wrapper, moving a binding between wrappers, detaching.

use core::ptr::NonNull;

use crate::backoff::Backoff;
use crate::frontend::flawed;
use crate::sync::atomic::Ordering;
use crate::word::{Raw, State};
use crate::{Frontend, HandleSlot, Header};

/// Outcome of a rebind: whether the word held the expected state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rebound {
    /// The word moved to the new state.
    Done,
    /// The word held something else and is unchanged.
    Unchanged,
}

impl<F: Frontend> Header<F> {
    /// `from → to` by compare-exchange, backing off while a lookup holds the lock.
    fn rebind_word(&self, from: State<F::Wrapper>, to: State<F::Wrapper>) -> Rebound {
        let (from, to) = (Raw::encode(from), Raw::encode(to));
        let mut backoff = Backoff::new(&self.frontend);
        loop {
            // AcqRel: publish the new wrapper's initialisation; order after the last unlock.
            match self
                .binding
                .cas_serial::<F>(from, to, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(()) => return Rebound::Done,
                Err(seen) if seen == from.locked() => {
                    self.binding.wait_for_change(seen, &mut backoff)
                }
                Err(_) => return Rebound::Unchanged,
            }
        }
    }

    /// Construct: binds a freshly constructed wrapper `w` (whose slot already holds this object):
    /// Detached → Active(w).
    ///
    /// # Safety
    ///
    /// `w` is live, its handle slot holds a reference to this object, and the caller owns a
    /// reference to it.
    pub unsafe fn bind(&self, w: NonNull<F::Wrapper>) -> Rebound {
        // SAFETY: `w` is live (caller).
        unsafe { self.frontend.enable_try_incref(w) };
        self.rebind_word(State::Detached, State::Active(w))
    }

    /// Detach: Active(w) → Detached, before a handle is moved out of `w`.
    pub fn detach(&self, w: NonNull<F::Wrapper>) -> Rebound {
        self.rebind_word(State::Active(w), State::Detached)
    }
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
pub unsafe fn move_binding<F: Frontend>(
    frontend: &F,
    from: NonNull<F::Wrapper>,
    from_slot: &HandleSlot<F>,
    to: NonNull<F::Wrapper>,
    to_slot: &HandleSlot<F>,
) -> Option<Rebound> {
    if flawed!(F, MoveClearsHandleFirst) {
        let handle = from_slot.take()?;
        let header_ptr = handle.as_ptr();
        to_slot.put(handle);
        // SAFETY: `to`'s slot keeps the block alive.
        let header = unsafe { header_ptr.as_ref() };
        // SAFETY: `to` is live (caller).
        unsafe { frontend.enable_try_incref(to) };
        return Some(header.rebind_word(State::Active(from), State::Active(to)));
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
    let rebound = header.rebind_word(State::Active(from), State::Active(to));
    drop(from_slot.take());
    Some(rebound)
}
