//! The model's global interpreter lock, for GIL mode (`ModelFrontend<FLAW, true>`, which
//! declares [`Frontend::SERIALIZED`](crate::Frontend::SERIALIZED)).
//!
//! It is held where a GIL build of CPython holds the GIL: around every lookup, dealloc + free,
//! move and construct, and by an attached reclaimer. It is let go where CPython can let it go:
//! in every back-off (the adapter detaches its thread state there), inside `make_fresh` (the
//! allocation may run the garbage collector and user code), and between a dealloc and its free.
//! Reclaims that drop the last native reference on a thread that does not hold it run without it,
//! as on a foreign thread. Re-entrant, like `PyGILState_Ensure`.

use crate::sync::atomic::{AtomicUsize, Ordering};

use super::wrapper::thread_key;

/// A lock owned by one thread at a time (loom- and shuttle-visible), handed over in arrival
/// order (a ticket lock): a thread that lets it go in a back-off queues behind the threads
/// already waiting, as CPython's forced switching hands the GIL over. An unfair lock would let
/// two waiters pass it between themselves forever under a checker's adversarial schedule and
/// starve the thread they both wait for, a schedule no real GIL produces.
#[derive(Debug, Default)]
pub(crate) struct Gil {
    /// The owner's thread key, or 0.
    owner: AtomicUsize,
    /// The next ticket to hand out.
    next: AtomicUsize,
    /// The ticket being served.
    serving: AtomicUsize,
}

/// Proof that the current thread holds the GIL; releases it on drop if this was the outermost
/// acquisition.
#[must_use]
pub(crate) struct GilGuard<'a> {
    gil: Option<&'a Gil>,
}

impl Gil {
    fn me() -> usize {
        // The key is odd (never 0); truncation on 32-bit targets keeps it non-zero.
        thread_key() as usize | 1
    }

    /// Whether the current thread holds the lock.
    pub(crate) fn held(&self) -> bool {
        // Relaxed: only this thread stores its own key.
        self.owner.load(Ordering::Relaxed) == Self::me()
    }

    /// Acquires the lock (or re-enters it).
    pub(crate) fn enter(&self) -> GilGuard<'_> {
        if self.held() {
            return GilGuard { gil: None };
        }
        self.lock();
        GilGuard { gil: Some(self) }
    }

    /// [`enter`](Self::enter) for an owner that cannot borrow the lock (an attachment):
    /// whether this call took it, to pass to [`exit`](Self::exit).
    pub(crate) fn enter_detached(&self) -> bool {
        let outer = !self.held();
        if outer {
            self.lock();
        }
        outer
    }

    /// Ends an [`enter_detached`](Self::enter_detached).
    pub(crate) fn exit(&self, outer: bool) {
        if outer {
            self.unlock();
        }
    }

    fn lock(&self) {
        // Relaxed: the ticket only orders the waiters; `serving` carries the happens-before.
        let ticket = self.next.fetch_add(1, Ordering::Relaxed);
        // Acquire: everything the previous holder did happens before what we do holding it.
        let my_turn = || self.serving.load(Ordering::Acquire) == ticket;
        // Under a checker: sleep until a release wakes us (fair waiting, `sync::park`).
        #[cfg(any(loom, feature = "shuttle"))]
        crate::sync::park::wait_while(|| !my_turn());
        #[cfg(not(any(loom, feature = "shuttle")))]
        while !my_turn() {
            std::thread::yield_now();
        }
        // Relaxed: read only by this thread (`held`) and cleared by it.
        self.owner.store(Self::me(), Ordering::Relaxed);
    }

    fn unlock(&self) {
        // Relaxed: as in `lock`.
        self.owner.store(0, Ordering::Relaxed);
        // Relaxed load: only the holder advances `serving`. Release store: what we did holding
        // the lock happens before the next holder's work.
        let served = self.serving.load(Ordering::Relaxed);
        self.serving
            .store(served.wrapping_add(1), Ordering::Release);
        #[cfg(any(loom, feature = "shuttle"))]
        crate::sync::park::wake_all();
    }

    /// Runs `f` with the lock let go, if the current thread holds it (a checker's sleeping
    /// waiter, `Frontend::sleep_unlocked`).
    #[cfg(any(loom, feature = "shuttle"))]
    pub(crate) fn without(&self, f: &dyn Fn()) {
        if !self.held() {
            return f();
        }
        self.unlock();
        f();
        self.lock();
    }

    /// Lets the lock go and takes it back (a back-off, an allocation that may run the GC), if
    /// the current thread holds it: other threads may run a whole operation meanwhile.
    pub(crate) fn let_go(&self) {
        if !self.held() {
            return;
        }
        self.unlock();
        crate::sync::thread::yield_now();
        self.lock();
    }
}

impl Drop for GilGuard<'_> {
    fn drop(&mut self) {
        if let Some(gil) = self.gil {
            gil.unlock();
        }
    }
}
