//! Waiting for another thread to finish its part of a transition.

use crate::Frontend;

/// Counts the consecutive waits of one operation and hands each to the frontend, which decides
/// how to wait (spin, yield, or detach its thread state so a stop-the-world can proceed).
pub(crate) struct Backoff<'a, F: Frontend> {
    frontend: &'a F,
    spins: u32,
}

impl<'a, F: Frontend> Backoff<'a, F> {
    pub(crate) fn new(frontend: &'a F) -> Self {
        Self { frontend, spins: 0 }
    }

    /// Waits once: a spin hint, then the frontend's back-off (which may detach from the runtime
    /// so the awaited thread can run, L1). Under a model checker the caller then sleeps until the
    /// word changes instead of spinning (`BindingWord::wait_for_change`).
    pub(crate) fn wait(&mut self) {
        self.spins = self.spins.saturating_add(1);
        #[cfg(not(any(loom, feature = "shuttle")))]
        crate::sync::spin_loop();
        self.frontend.backoff(self.spins);
    }

    /// Under a model checker: runs `sleep` (a fair wait for the word to change, `sync::park`)
    /// through the frontend, which lets its global lock go meanwhile, if it has one.
    #[cfg(any(loom, feature = "shuttle"))]
    pub(crate) fn sleep(&self, sleep: &dyn Fn()) {
        self.frontend.sleep_unlocked(sleep);
    }
}
