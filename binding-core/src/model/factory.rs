//! The model's wrapper factory: fresh wrappers, in-place revival, discarding race losers.

use core::ptr::NonNull;
use std::sync::atomic::Ordering::Relaxed;

use crate::{HandleSlot, WrapperFactory};

use super::{ModelFrontend, ModelWrapper, Own, System};
use crate::NativeRef;

/// A fresh wrapper could not be allocated (an injected failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FreshFailed;

impl core::fmt::Display for FreshFailed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("injected allocation failure of a fresh wrapper")
    }
}

/// Makes model wrappers; configurable cacheability and injected allocation failure.
#[derive(Clone, Debug)]
pub struct ModelFactory<const FLAW: u8, const GIL: bool = false, S: System = Own> {
    frontend: ModelFrontend<FLAW, GIL, S>,
    cacheable: bool,
    fail_fresh: bool,
}

impl<const FLAW: u8, const GIL: bool, S: System> ModelFactory<FLAW, GIL, S> {
    /// Cacheable wrappers, allocation always succeeds.
    pub fn new(frontend: ModelFrontend<FLAW, GIL, S>) -> Self {
        Self {
            frontend,
            cacheable: true,
            fail_fresh: false,
        }
    }

    /// Wrappers of a type that is (not) cached when it dies (e.g. one with a finalizer).
    pub fn cacheable(mut self, cacheable: bool) -> Self {
        self.cacheable = cacheable;
        self
    }

    /// Every fresh allocation fails.
    pub fn failing(mut self) -> Self {
        self.fail_fresh = true;
        self
    }
}

impl<const FLAW: u8, const GIL: bool, S: System> WrapperFactory<S::Native<FLAW, GIL>>
    for ModelFactory<FLAW, GIL, S>
{
    type Error = FreshFailed;

    fn make_fresh(
        &self,
        handle: NativeRef<S::Native<FLAW, GIL>>,
    ) -> Result<NonNull<ModelWrapper<FLAW, GIL, S>>, FreshFailed> {
        // GIL mode: allocating may run the GC and user code, which may let the GIL go.
        self.frontend.let_gil_go();
        if self.fail_fresh {
            return Err(FreshFailed);
        }
        let block = std::boxed::Box::new(ModelWrapper::new(
            self.frontend.fresh_id(),
            self.cacheable,
            HandleSlot::new(handle),
        ));
        let ptr = NonNull::from(std::boxed::Box::leak(block));
        self.frontend.register_wrapper(ptr);
        self.frontend.stats.fresh.fetch_add(1, Relaxed);
        Ok(ptr)
    }

    unsafe fn revive(
        &self,
        w: NonNull<ModelWrapper<FLAW, GIL, S>>,
        handle: NativeRef<S::Native<FLAW, GIL>>,
    ) {
        // SAFETY: quarantined blocks live as long as the model.
        unsafe { w.as_ref() }.reinit(handle);
        self.frontend.stats.revivals.fetch_add(1, Relaxed);
    }

    unsafe fn discard(&self, w: NonNull<ModelWrapper<FLAW, GIL, S>>) {
        self.frontend.stats.fresh.fetch_sub(1, Relaxed);
        self.frontend.stats.discarded.fetch_add(1, Relaxed);
        // SAFETY: we own the unpublished wrapper's only reference.
        unsafe { self.frontend.release(w) };
    }
}
