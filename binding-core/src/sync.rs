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

    /// Wakes every waiter after a word write.
    pub(crate) fn wake_all() {
        let _guard = WORDS.0.lock().unwrap();
        WORDS.1.notify_all();
    }

    /// Sleeps while `unchanged()` holds.
    pub(crate) fn wait_while(unchanged: impl Fn() -> bool) {
        let mut guard = WORDS.0.lock().unwrap();
        while unchanged() {
            guard = WORDS.1.wait(guard).unwrap();
        }
    }
}
