//! [`MoveLock`]: what serialises, on a free-threaded build, every read of a wrapper's handle
//! slot from Python with `_move()` of that wrapper (with a GIL, the GIL does).
//!
//! A read borrows the slot's native reference in place (no clone: a clone and its drop would be
//! two read-modify-writes on the object's shared count); `_move()` empties the slot, after which
//! the reference may be dropped on another thread. CPython's per-object critical section did
//! this job, at two read-modify-writes plus its thread-state bookkeeping per read, the largest
//! share of a free-threaded hit. This lock takes one compare-exchange and unlocks with a plain
//! store.
//!
//! Unlike a critical section, it is not let go when its holder detaches: `_move()` may back off
//! (detaching) inside it while it waits for the binding word, and a waiter must then detach too,
//! or a stop-the-world could wait for the waiter while the holder waits to re-attach. So a
//! waiter backs off exactly as the kernel does (`Frontend::backoff`: spins, then detaches). For
//! the same reason a holder never waits for another wrapper's move lock (no nesting: two threads
//! nesting in opposite orders would wait for each other forever); `with_native` documents it,
//! and debug builds check it.

use binding_core::Frontend;
use spin::mutex::SpinMutex;

use super::capi::CPYTHON;

/// The lock inside a free-threaded wrapper (`WrapperObj::move_lock`). Free (unlocked) whenever
/// the wrapper's count can reach zero: every holder holds a reference to the wrapper.
pub struct MoveLock(SpinMutex<()>);

impl MoveLock {
    /// An unlocked lock.
    pub const fn new() -> Self {
        Self(SpinMutex::new(()))
    }

    /// Runs `f` holding the lock.
    #[inline]
    pub fn with<T>(&self, f: impl FnOnce() -> T) -> T {
        #[cfg(debug_assertions)]
        let _depth = nesting::enter();
        let _held = match self.0.try_lock() {
            Some(g) => g,
            None => self.lock_slow(),
        };
        f()
    }

    /// The contended case: back off as the kernel does until the lock is free.
    #[cold]
    #[inline(never)]
    fn lock_slow(&self) -> spin::mutex::SpinMutexGuard<'_, ()> {
        let mut spins = 0u32;
        loop {
            spins = spins.saturating_add(1);
            CPYTHON.backoff(spins);
            if !self.0.is_locked()
                && let Some(g) = self.0.try_lock()
            {
                return g;
            }
        }
    }
}

impl Default for MoveLock {
    fn default() -> Self {
        Self::new()
    }
}

/// Debug builds: a thread holds at most one move lock (see the module documentation).
#[cfg(debug_assertions)]
mod nesting {
    use core::cell::Cell;

    std::thread_local! {
        static HELD: Cell<bool> = const { Cell::new(false) };
    }

    /// Marks the thread as holding a move lock until the guard drops.
    pub(super) fn enter() -> Guard {
        let nested = HELD.with(|h| h.replace(true));
        assert!(
            !nested,
            "a wrapper's move lock taken while holding another (with_native nested): deadlock-prone"
        );
        Guard
    }

    pub(super) struct Guard;

    impl Drop for Guard {
        fn drop(&mut self) {
            HELD.with(|h| h.set(false));
        }
    }
}
