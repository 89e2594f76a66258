//! The kernel's view of a C runtime and a C object system: [`CFrontend`] implements
//! `binding_core::Frontend` over a [`TetherRuntime`] table, [`Binding`] implements
//! `NativeObject` over a [`TetherBinding`] in a C object's header.

use core::ffi::c_void;
use core::ptr::NonNull;

use binding_core::{BindingWord, Frontend, NativeObject, WrapperOf};

use crate::types::{TetherBinding, TetherRuntime, TetherWrapper};

/// A [`TetherRuntime`] as the kernel's frontend, in GIL mode when `S` (the table's
/// `serialized`). `repr(transparent)`, so a pointer to the C table is a pointer to it.
#[repr(transparent)]
#[derive(Clone, Copy)]
pub(crate) struct CFrontend<const S: bool>(pub(crate) TetherRuntime);

// SAFETY: the C contract (tether.h, docs/c-abi.md) makes every callback callable from any thread,
// concurrently; `ctx` is only passed back to them.
unsafe impl<const S: bool> Send for CFrontend<S> {}
// SAFETY: as above.
unsafe impl<const S: bool> Sync for CFrontend<S> {}

/// Whether every required callback is present.
pub(crate) fn is_complete(rt: &TetherRuntime) -> bool {
    rt.try_incref.is_some()
        && rt.free_cached.is_some()
        && rt.retain.is_some()
        && rt.release.is_some()
        && rt.free_object.is_some()
}

impl<const S: bool> CFrontend<S> {
    fn ctx(&self) -> *mut c_void {
        self.0.ctx
    }
}

/// A successful `attach`; dropping it calls `detach`.
pub(crate) struct Attached<const S: bool>(CFrontend<S>);

impl<const S: bool> Drop for Attached<S> {
    fn drop(&mut self) {
        if let Some(detach) = self.0.0.detach {
            // SAFETY: undoes the successful `attach` this guard stands for (C contract).
            unsafe { detach(self.0.ctx()) }
        }
    }
}

/// Calls a required callback; `tether_binding_init` checked that it is present.
macro_rules! required {
    ($rt:expr, $name:ident) => {
        $rt.0.$name.expect(concat!(
            "the runtime lost its ",
            stringify!($name),
            " callback"
        ))
    };
}

// SAFETY: the C contract (docs/c-abi.md) states each callback's rules as the trait does:
// `try_incref` never succeeds on a wrapper whose count reached zero once armed; `attach` fails
// once shutdown began, atomically with it.
unsafe impl<const S: bool> Frontend for CFrontend<S> {
    type Wrapper = TetherWrapper;
    type Attachment = Attached<S>;

    /// The table's `serialized`: the runtime holds one lock around every tether call but
    /// reclaim (docs/c-abi.md).
    const SERIALIZED: bool = S;

    unsafe fn try_incref(&self, w: NonNull<TetherWrapper>) -> bool {
        // SAFETY: `w` is live (kernel contract); the callback's rules are the C contract.
        unsafe { required!(self, try_incref)(self.ctx(), w.as_ptr()) }
    }

    unsafe fn enable_try_incref(&self, w: NonNull<TetherWrapper>) {
        if let Some(f) = self.0.enable_try_incref {
            // SAFETY: as `try_incref`.
            unsafe { f(self.ctx(), w.as_ptr()) }
        }
    }

    unsafe fn untrack(&self, w: NonNull<TetherWrapper>) {
        if let Some(f) = self.0.untrack {
            // SAFETY: `w` is dying on this thread (kernel contract).
            unsafe { f(self.ctx(), w.as_ptr()) }
        }
    }

    fn backoff(&self, spins: u32) {
        match self.0.backoff {
            // SAFETY: a plain callback (C contract).
            Some(f) => unsafe { f(self.ctx(), spins) },
            None => std::thread::yield_now(),
        }
    }

    fn replace_dying(&self, misses: u32) -> bool {
        match self.0.replace_dying {
            // SAFETY: a plain callback (C contract).
            Some(f) => unsafe { f(self.ctx(), misses) },
            None => misses >= binding_core::MISSES_BEFORE_TAKEOVER,
        }
    }

    unsafe fn replaced(&self, old: NonNull<TetherWrapper>) {
        if let Some(f) = self.0.replaced {
            // SAFETY: `old` is live (the kernel holds the word's lock); the C contract.
            unsafe { f(self.ctx(), old.as_ptr()) }
        }
    }

    fn is_alive(&self) -> bool {
        match self.0.is_alive {
            // SAFETY: a plain callback (C contract).
            Some(f) => unsafe { f(self.ctx()) },
            None => true,
        }
    }

    fn attach(&self) -> Option<Attached<S>> {
        let attached = match self.0.attach {
            // SAFETY: a plain callback (C contract).
            Some(f) => unsafe { f(self.ctx()) },
            None => true,
        };
        // `then`, not `then_some`: a guard built for a refused attach would `detach` when dropped.
        attached.then(|| Attached(*self))
    }

    unsafe fn free_cached(&self, w: NonNull<TetherWrapper>, _attached: &Attached<S>) {
        // SAFETY: `w` is a cached block nobody else can reach, and we are attached (kernel
        // contract).
        unsafe { required!(self, free_cached)(self.ctx(), w.as_ptr()) }
    }
}

/// The kernel's view of a [`TetherBinding`]: the same layout, with the word as the kernel's
/// atomic type.
#[repr(C)]
pub(crate) struct Binding<const S: bool> {
    pub(crate) word: BindingWord<TetherWrapper>,
    pub(crate) runtime: *const CFrontend<S>,
}

static_assertions::assert_eq_size!(Binding<false>, TetherBinding);
static_assertions::assert_eq_align!(Binding<false>, TetherBinding);
static_assertions::assert_eq_size!(Binding<true>, TetherBinding);
static_assertions::assert_eq_size!(BindingWord<TetherWrapper>, crate::types::TetherWord);

// SAFETY: the C object system's contract (docs/c-abi.md): the binding lives in the object's
// header for its whole life; `retain`/`release` are its strong count; it calls `tether_reclaim`
// once at its reclaim edge and frees the block only on `TETHER_RECLAIMED_FREE`.
unsafe impl<const S: bool> Send for Binding<S> {}
// SAFETY: as above; the word is atomic and the runtime pointer never changes after init.
unsafe impl<const S: bool> Sync for Binding<S> {}

// SAFETY: as above (the C contract mirrors the trait's).
unsafe impl<const S: bool> NativeObject for Binding<S> {
    type Frontend = CFrontend<S>;

    fn binding(&self) -> &BindingWord<WrapperOf<Self>> {
        &self.word
    }

    fn frontend(&self) -> &CFrontend<S> {
        // SAFETY: `tether_binding_init` stored a complete table that outlives the object.
        unsafe { &*self.runtime }
    }

    unsafe fn retain(this: NonNull<Self>) {
        // SAFETY: the caller owns a strong reference (kernel contract).
        let rt = unsafe { this.as_ref() }.frontend();
        // SAFETY: the object system's strong increment on a live object.
        unsafe { required!(rt, retain)(rt.ctx(), this.as_ptr().cast()) }
    }

    unsafe fn release(this: NonNull<Self>) {
        // SAFETY: as `retain`; copied out first, since the release may free the block.
        let rt = *unsafe { this.as_ref() }.frontend();
        // SAFETY: the caller gives up a strong reference it owns.
        unsafe { required!(rt, release)(rt.ctx(), this.as_ptr().cast()) }
    }

    unsafe fn free(this: NonNull<Self>) {
        // SAFETY: reclaim deferred; the block is still live until the callback frees it.
        let rt = *unsafe { this.as_ref() }.frontend();
        // SAFETY: the kernel calls this once, after a deferred reclaim (kernel contract).
        unsafe { required!(rt, free_object)(rt.ctx(), this.as_ptr().cast()) }
    }
}
