//! One facade for every synchronisation primitive the kernel and the model use.
//!
//! The same kernel source runs on `core` atomics (production), under loom (`--cfg loom`: every
//! interleaving and weak-memory outcome up to a preemption bound) and under shuttle (feature
//! `shuttle`: randomized and PCT schedules with many threads). Modelled on tokio's `loom` facade.

#[cfg(loom)]
mod imp {
    // Used by the model frontend and the production back-off only.
    #[allow(unused_imports)]
    pub(crate) use loom::cell::UnsafeCell;
    #[allow(unused_imports)]
    pub(crate) use loom::hint::spin_loop;
    pub mod atomic {
        //! Atomics (loom).
        pub use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering, fence};
    }
    #[cfg(feature = "std")]
    pub use loom::sync::{Condvar, Mutex};
    #[cfg(feature = "std")]
    pub mod thread {
        //! Threads (loom).
        pub use loom::thread::{current, spawn, yield_now};
    }
}

#[cfg(all(not(loom), feature = "shuttle"))]
mod imp {
    #[allow(unused_imports)]
    pub(crate) use super::plain_cell::UnsafeCell;
    // Used by the model frontend only.
    #[allow(unused_imports)]
    pub(crate) use shuttle::hint::spin_loop;
    pub mod atomic {
        //! Atomics (shuttle; every ordering behaves as SeqCst).
        pub use core::sync::atomic::Ordering;
        pub use shuttle::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, fence};
    }
    #[cfg(feature = "std")]
    pub use shuttle::sync::{Condvar, Mutex};
    #[cfg(feature = "std")]
    pub mod thread {
        //! Threads (shuttle).
        pub use shuttle::thread::{current, spawn, yield_now};
    }
}

#[cfg(all(not(loom), not(feature = "shuttle")))]
mod imp {
    #[allow(unused_imports)]
    pub(crate) use super::plain_cell::UnsafeCell;
    pub(crate) use core::hint::spin_loop;
    pub mod atomic {
        //! Atomics (core).
        pub use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering, fence};
    }
    #[cfg(feature = "std")]
    pub use std::sync::{Condvar, Mutex};
    #[cfg(feature = "std")]
    pub mod thread {
        //! Threads (std).
        pub use std::thread::{current, spawn, yield_now};
    }
}

#[allow(dead_code)]
mod plain_cell {
    /// `core::cell::UnsafeCell` with loom's closure-based access API, so call sites are shared.
    #[derive(Debug)]
    pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

    impl<T> UnsafeCell<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(core::cell::UnsafeCell::new(value))
        }
        pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
            f(self.0.get())
        }
        pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
            f(self.0.get())
        }
    }
}

pub use imp::atomic;
#[cfg(feature = "std")]
pub use imp::thread;

/// The atomics of the kernel's own state (the binding word, the handle slot, the native
/// counts): the facade's, or with the `count-rmw` feature the same atomics counting every
/// operation per thread, so tests can assert how many read-modify-writes each transition costs
/// (docs/design.md, "Atomic operations per transition"). The model frontends keep the plain
/// facade, so their own atomics are not counted.
pub(crate) mod kernel_atomic {
    #[cfg(not(all(feature = "count-rmw", not(loom), not(feature = "shuttle"))))]
    pub(crate) use super::atomic::{AtomicPtr, AtomicUsize};
    #[cfg(all(feature = "count-rmw", not(loom), not(feature = "shuttle")))]
    pub(crate) use super::counted::{AtomicPtr, AtomicUsize};
}

/// Counting atomics (feature `count-rmw`, std builds only).
#[cfg(all(feature = "count-rmw", not(loom), not(feature = "shuttle")))]
pub mod counted {
    use core::cell::Cell;
    use core::sync::atomic::{self, Ordering};

    /// Atomic operations on the kernel's state by the current thread since the last [`take`].
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct Counts {
        /// Read-modify-writes: compare-exchanges (successful or not), fetch-adds, swaps. Each is
        /// a locked instruction (a full fence) on x86.
        pub rmw: u32,
        /// Atomic loads.
        pub loads: u32,
        /// Atomic stores.
        pub stores: u32,
    }

    std::thread_local! {
        static COUNTS: Cell<Counts> = const {
            Cell::new(Counts { rmw: 0, loads: 0, stores: 0 })
        };
    }

    fn note(f: impl FnOnce(&mut Counts)) {
        COUNTS.with(|c| {
            let mut n = c.get();
            f(&mut n);
            c.set(n);
        });
    }

    /// The current thread's counts, reset to zero.
    pub fn take() -> Counts {
        COUNTS.with(|c| c.replace(Counts::default()))
    }

    /// `AtomicUsize`, counted.
    #[derive(Debug, Default)]
    pub struct AtomicUsize(atomic::AtomicUsize);

    impl AtomicUsize {
        pub(crate) const fn new(v: usize) -> Self {
            Self(atomic::AtomicUsize::new(v))
        }
        pub(crate) fn load(&self, order: Ordering) -> usize {
            note(|n| n.loads += 1);
            self.0.load(order)
        }
        pub(crate) fn fetch_add(&self, v: usize, order: Ordering) -> usize {
            note(|n| n.rmw += 1);
            self.0.fetch_add(v, order)
        }
        pub(crate) fn fetch_sub(&self, v: usize, order: Ordering) -> usize {
            note(|n| n.rmw += 1);
            self.0.fetch_sub(v, order)
        }
        pub(crate) fn compare_exchange_weak(
            &self,
            current: usize,
            new: usize,
            success: Ordering,
            failure: Ordering,
        ) -> Result<usize, usize> {
            note(|n| n.rmw += 1);
            self.0.compare_exchange_weak(current, new, success, failure)
        }
    }

    /// `AtomicPtr`, counted.
    #[derive(Debug)]
    pub struct AtomicPtr<T>(atomic::AtomicPtr<T>);

    impl<T> AtomicPtr<T> {
        pub(crate) const fn new(p: *mut T) -> Self {
            Self(atomic::AtomicPtr::new(p))
        }
        pub(crate) fn load(&self, order: Ordering) -> *mut T {
            note(|n| n.loads += 1);
            self.0.load(order)
        }
        pub(crate) fn store(&self, p: *mut T, order: Ordering) {
            note(|n| n.stores += 1);
            self.0.store(p, order);
        }
        pub(crate) fn swap(&self, p: *mut T, order: Ordering) -> *mut T {
            note(|n| n.rmw += 1);
            self.0.swap(p, order)
        }
        pub(crate) fn compare_exchange(
            &self,
            current: *mut T,
            new: *mut T,
            success: Ordering,
            failure: Ordering,
        ) -> Result<*mut T, *mut T> {
            note(|n| n.rmw += 1);
            self.0.compare_exchange(current, new, success, failure)
        }
    }
}
#[allow(unused_imports)] // which items are used depends on the features
pub(crate) use imp::*;
#[cfg(feature = "std")]
pub use imp::{Condvar, Mutex};

/// Fair waiting under a model checker: "block until this word changes" (a futex emulation).
///
/// loom and shuttle may otherwise schedule two spinning waiters against each other forever and
/// never run the thread they wait on, a schedule no fair OS produces. Under a checker every
/// successful write of a binding word wakes all waiters, and a waiter sleeps while the word still
/// holds the value it saw (checked under the mutex, so no wake-up is lost). A real livelock then
/// surfaces as the checker's deadlock report. Production builds spin instead.
#[cfg(any(loom, feature = "shuttle"))]
pub(crate) mod park {
    #[cfg(loom)]
    use loom::{
        lazy_static,
        sync::{Condvar, Mutex},
    };
    #[cfg(all(not(loom), feature = "shuttle"))]
    use shuttle::{
        lazy_static,
        sync::{Condvar, Mutex},
    };

    lazy_static! {
        /// The waiters' mutex and condition variable.
        static ref WORDS: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }

    // A poisoned lock is taken anyway: it guards no data, and a model thread that panicked
    // while holding it (the model's own assertion, a tooth that must fire) must not turn every
    // other thread's next word write into a `PoisonError` panic that hides the real report
    // (seen: NeverReplace's L1 violation reported as a PoisonError, once in 500 runs).

    /// Wakes every waiter after a word write.
    pub(crate) fn wake_all() {
        let _guard = WORDS.0.lock().unwrap_or_else(|e| e.into_inner());
        WORDS.1.notify_all();
    }

    /// Sleeps while `unchanged()` holds.
    pub(crate) fn wait_while(unchanged: impl Fn() -> bool) {
        let mut guard = WORDS.0.lock().unwrap_or_else(|e| e.into_inner());
        while unchanged() {
            guard = WORDS.1.wait(guard).unwrap_or_else(|e| e.into_inner());
        }
    }
}
