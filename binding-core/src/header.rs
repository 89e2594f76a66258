//! The native object header: counts, the binding word, and what is needed to free the block.
//!
//! The header is the first field of every native block, so the binding word exists *by
//! construction*: nothing ever probes memory outside a block to find out whether it carries a
//! header (upstream lesson 1, tvm-ffi #696).

use core::any::TypeId;
use core::ptr::NonNull;

use crate::Frontend;
use crate::native::{NativeObject, WrapperOf};
use crate::reclaim::{Reclaimed, reclaim};
use crate::sync::atomic::Ordering;
use crate::sync::kernel_atomic::AtomicUsize;
use crate::word::{BindingWord, StateKind};

/// Counts above this abort the program rather than wrap (as `std::sync::Arc`).
const MAX_REFCOUNT: usize = isize::MAX as usize;

/// Type-specific operations on a block, reachable from the header alone.
pub(crate) struct VTable<F: Frontend> {
    /// Drops the value in place (strong → 0).
    pub(crate) drop_value: unsafe fn(NonNull<Header<F>>),
    /// Drops the header's frontend and allocator and frees the block (after reclaim).
    pub(crate) free_block: unsafe fn(NonNull<Header<F>>),
    /// The value's and allocator's types, for checked downcasts of erased handles.
    pub(crate) type_id: fn() -> TypeId,
}

/// The header at the start of every native object the kernel allocates itself
/// ([`ObjectArc`](crate::ObjectArc)): its strong and weak counts, the binding word, and the
/// frontend. It is the kernel's own [`NativeObject`]; object systems with their own counts
/// implement that trait for their header instead.
#[repr(C)]
pub struct Header<F: Frontend> {
    strong: AtomicUsize,
    weak: AtomicUsize,
    pub(crate) binding: BindingWord<F::Wrapper>,
    pub(crate) vtable: &'static VTable<F>,
    pub(crate) frontend: F,
}

impl<F: Frontend> Header<F> {
    pub(crate) fn new(vtable: &'static VTable<F>, frontend: F) -> Self {
        Self {
            strong: AtomicUsize::new(1),
            // The strong references together own one weak reference.
            weak: AtomicUsize::new(1),
            binding: BindingWord::new(),
            vtable,
            frontend,
        }
    }

    /// The frontend this object is bound to.
    pub fn frontend(&self) -> &F {
        &self.frontend
    }

    /// The binding word.
    pub fn binding(&self) -> &BindingWord<F::Wrapper> {
        &self.binding
    }

    /// The binding state's name (a snapshot, for diagnostics and tests).
    pub fn binding_state(&self) -> StateKind {
        self.binding.snapshot().kind()
    }

    /// Number of strong references (a snapshot).
    pub fn strong_count(&self) -> usize {
        // Relaxed: a diagnostic snapshot orders nothing.
        self.strong.load(Ordering::Relaxed)
    }

    /// Number of weak references, not counting the one the strong references share (a snapshot).
    pub fn weak_count(&self) -> usize {
        // Relaxed: a diagnostic snapshot orders nothing.
        let weak = self.weak.load(Ordering::Relaxed);
        if self.strong_count() > 0 {
            weak - 1
        } else {
            weak
        }
    }

    /// Adds a strong reference; the caller already owns one.
    pub(crate) fn acquire_strong(&self) {
        // Relaxed: a new reference can only come from an existing one, which already orders
        // everything (as `Arc::clone`).
        let old = self.strong.fetch_add(1, Ordering::Relaxed);
        assert!(old <= MAX_REFCOUNT, "native strong count overflow");
    }

    /// Adds a weak reference; the caller owns a strong or weak one.
    pub(crate) fn acquire_weak(&self) {
        // Relaxed: as `acquire_strong`.
        let old = self.weak.fetch_add(1, Ordering::Relaxed);
        assert!(old <= MAX_REFCOUNT, "native weak count overflow");
    }

    /// Adds a strong reference unless the count already reached zero (weak upgrade).
    pub(crate) fn try_acquire_strong(&self) -> bool {
        // Relaxed: the caller's weak reference keeps the block; a successful upgrade is ordered by
        // the value's previous owners' Release decrements only when they reach zero, which makes
        // this fail (as `Weak::upgrade`).
        let mut n = self.strong.load(Ordering::Relaxed);
        if crate::frontend::flawed!(F, UpgradeBlindIncrement) {
            // The broken variant: check, then increment (a window between the two).
            if n == 0 {
                return false;
            }
            // Acquire: as the compare-exchange below (the bug is the window, not the order).
            self.strong.fetch_add(1, Ordering::Acquire);
            return true;
        }
        loop {
            if n == 0 {
                return false;
            }
            assert!(n <= MAX_REFCOUNT, "native strong count overflow");
            match self
                .strong
                .compare_exchange_weak(n, n + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => n = seen,
            }
        }
    }
}

// SAFETY: `binding` and `frontend` are fields, fixed for the block's life; the counts are a
// strong count whose references share one weak reference, and `release_weak` calls `reclaim`
// at weak → 0 and frees the block only when it says so; `free` is the block's only other free.
unsafe impl<F: Frontend> NativeObject for Header<F> {
    type Frontend = F;

    #[inline]
    fn binding(&self) -> &BindingWord<WrapperOf<Self>> {
        &self.binding
    }

    #[inline]
    fn frontend(&self) -> &F {
        &self.frontend
    }

    #[inline]
    unsafe fn retain(this: NonNull<Self>) {
        // SAFETY: the caller's strong reference keeps the block alive.
        unsafe { this.as_ref() }.acquire_strong();
    }

    #[inline]
    unsafe fn release(this: NonNull<Self>) {
        // SAFETY: the caller gives up a strong reference it owns.
        unsafe { release_strong(this) }
    }

    unsafe fn free(this: NonNull<Self>) {
        // SAFETY: reclaim ran and deferred; nobody references the block (caller).
        unsafe { (this.as_ref().vtable.free_block)(this) }
    }
}

/// Drops one strong reference; at zero drops the value and the strong side's weak reference.
///
/// # Safety
///
/// The caller owns one strong reference to `header` and gives it up.
pub(crate) unsafe fn release_strong<F: Frontend>(header: NonNull<Header<F>>) {
    // SAFETY: the caller's strong reference keeps the block alive.
    let h = unsafe { header.as_ref() };
    // Release: our uses of the value happen before whoever drops it.
    if h.strong.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    // SAFETY: ours was the last strong reference.
    unsafe { drop_last_strong(header) }
}

/// [`release_strong`] at zero, out of line (as `Arc`'s `drop_slow`): the decrement stays inlined
/// into the wrapper's dealloc, whose common case is not the last reference, however large the
/// value drop and reclaim behind it grow.
///
/// # Safety
///
/// The caller gave up the last strong reference to `header`.
#[cold]
#[inline(never)]
unsafe fn drop_last_strong<F: Frontend>(header: NonNull<Header<F>>) {
    // SAFETY: the strong side's weak reference keeps the block alive.
    let h = unsafe { header.as_ref() };
    // Acquire: synchronise with every other owner's Release decrement before dropping the value.
    // A load of the counter (the end of its release sequence) rather than a fence, so that
    // ThreadSanitizer, which does not model fences, checks it too (as `std::sync::Arc` under TSan).
    h.strong.load(Ordering::Acquire);
    // SAFETY: the last strong reference is gone; the value is dropped exactly once, here.
    unsafe { (h.vtable.drop_value)(header) };
    // SAFETY: the strong references' shared weak reference is ours to give up now.
    unsafe { release_weak(header) };
}

/// Drops one weak reference; at zero runs reclaim (the weak → 0 edge).
///
/// # Safety
///
/// The caller owns one weak reference to `header` and gives it up.
pub(crate) unsafe fn release_weak<F: Frontend>(header: NonNull<Header<F>>) {
    // SAFETY: the caller's weak reference keeps the block alive.
    let h = unsafe { header.as_ref() };
    // Release: our accesses to the block happen before it is freed.
    if h.weak.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    // Acquire: every other reference's last access happens before the reclaim (a load, not a
    // fence, for ThreadSanitizer: see `release_strong`).
    h.weak.load(Ordering::Acquire);
    // SAFETY: no strong or weak reference remains and this is the block's only reclaim.
    if unsafe { reclaim(header) } == Reclaimed::Free {
        // SAFETY: the value was dropped, nothing references the block, and reclaim left it to
        // us (otherwise the settler frees it through `NativeObject::free`).
        unsafe { (h.vtable.free_block)(header) };
    }
}
