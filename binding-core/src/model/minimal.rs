//! A minimal frontend: wrappers are boxed structs with an atomic refcount, nothing else. The
//! kernel's benchmarks and its read-modify-write budget (`tests/rmw_budget.rs`) run on it, so
//! what they measure is the kernel's cost, not a runtime's. Its own atomics are `std`'s (never
//! counted by `sync::counted`, never modelled by loom).

use std::boxed::Box;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::{
    Caching, Dealloc, Frontend, HandleSlot, Header, ObjectArc, ObjectRef, Settled, WrapperFactory,
};

/// The minimal frontend. `Fast<true>` declares GIL mode ([`Frontend::SERIALIZED`]) and has no
/// lock of its own: only single-threaded code (the budget test, the benchmarks) may use it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fast<const GIL: bool = false>;

/// A wrapper of the minimal frontend.
#[repr(align(8))]
pub struct FastWrapper<const GIL: bool = false> {
    refcnt: AtomicUsize,
    armed: AtomicBool,
    slot: HandleSlot<Header<Fast<GIL>>>,
}

// SAFETY: try_incref refuses at zero; attach always succeeds (the runtime never shuts down).
unsafe impl<const GIL: bool> Frontend for Fast<GIL> {
    type Wrapper = FastWrapper<GIL>;
    type Attachment = ();

    const SERIALIZED: bool = GIL;
    // Single-threaded by contract: attaching "takes" the lock the one thread always holds.
    const ATTACH_LOCKS: bool = GIL;

    unsafe fn try_incref(&self, w: NonNull<FastWrapper<GIL>>) -> bool {
        // SAFETY: the kernel holds the word's lock; `w` is live.
        let w = unsafe { w.as_ref() };
        // Relaxed: ordered by the word's lock, as in CPython.
        let mut n = w.refcnt.load(Ordering::Relaxed);
        while n != 0 && w.armed.load(Ordering::Relaxed) {
            match w
                .refcnt
                .compare_exchange_weak(n, n + 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => n = seen,
            }
        }
        false
    }
    unsafe fn enable_try_incref(&self, w: NonNull<FastWrapper<GIL>>) {
        // SAFETY: live (kernel contract). Relaxed: published by the word's Release.
        unsafe { w.as_ref() }.armed.store(true, Ordering::Relaxed);
    }
    unsafe fn untrack(&self, _w: NonNull<FastWrapper<GIL>>) {}
    fn backoff(&self, _spins: u32) {
        std::thread::yield_now();
    }
    fn holds_lock(&self) -> bool {
        // `Fast<true>` is single-threaded by contract: its one thread is always "under the lock".
        GIL
    }
    fn is_alive(&self) -> bool {
        true
    }
    fn attach(&self) -> Option<()> {
        Some(())
    }
    unsafe fn free_cached(&self, w: NonNull<FastWrapper<GIL>>, _: &()) {
        // SAFETY: the word owned the cached box; nobody else can reach it.
        drop(unsafe { Box::from_raw(w.as_ptr()) });
    }
}

/// Makes and revives [`FastWrapper`]s.
pub struct FastFactory;

impl<const GIL: bool> WrapperFactory<Header<Fast<GIL>>> for FastFactory {
    type Error = ();
    fn make_fresh(&self, handle: ObjectRef<Fast<GIL>>) -> Result<NonNull<FastWrapper<GIL>>, ()> {
        Ok(NonNull::from(Box::leak(Box::new(FastWrapper {
            refcnt: AtomicUsize::new(1),
            armed: AtomicBool::new(false),
            slot: HandleSlot::new(handle),
        }))))
    }
    unsafe fn revive(&self, w: NonNull<FastWrapper<GIL>>, handle: ObjectRef<Fast<GIL>>) {
        // SAFETY: the cached block is ours while the word is locked.
        let w = unsafe { w.as_ref() };
        w.refcnt.store(1, Ordering::Relaxed);
        w.armed.store(false, Ordering::Relaxed);
        // SAFETY: the cached block is ours while the word is locked.
        drop(unsafe { w.slot.put_exclusive(handle) });
    }
    unsafe fn discard(&self, w: NonNull<FastWrapper<GIL>>) {
        // SAFETY: we own the unpublished wrapper's only reference.
        unsafe { release(w) };
    }
}

/// `Py_DECREF` of the fast frontend: dealloc + free at zero.
///
/// # Safety
///
/// The caller owns a reference to `w` and gives it up.
pub unsafe fn release<const GIL: bool>(w: NonNull<FastWrapper<GIL>>) {
    // SAFETY: the caller owns a reference.
    let wr = unsafe { w.as_ref() };
    // Release/Acquire: as `Arc`.
    if wr.refcnt.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    wr.refcnt.load(Ordering::Acquire);
    // SAFETY: the count reached zero here; this is the only dealloc.
    unsafe { dealloc_and_free(w) }
}

/// The wrapper's dealloc and free, once its count reached zero.
///
/// # Safety
///
/// `w`'s count reached zero and its dealloc has not run.
unsafe fn dealloc_and_free<const GIL: bool>(w: NonNull<FastWrapper<GIL>>) {
    // SAFETY: the box is live until freed here (caller).
    let wr = unsafe { w.as_ref() };
    // SAFETY: the count reached zero (caller); this is the only dealloc.
    match unsafe { crate::dealloc(&Fast::<GIL>, w, &wr.slot, Caching::Cache) } {
        Dealloc::Cached(baton) => match baton.settle() {
            Settled::Cached => {}
            // SAFETY: reclaim deferred to us; we own the block.
            Settled::FreeWrapper => drop(unsafe { Box::from_raw(w.as_ptr()) }),
        },
        // SAFETY: not cached: we own the block.
        Dealloc::Detached | Dealloc::NotCanonical => drop(unsafe { Box::from_raw(w.as_ptr()) }),
    }
}

/// An owned wrapper reference; dropping it releases.
pub struct Owned<const GIL: bool = false>(pub NonNull<FastWrapper<GIL>>);

impl<const GIL: bool> Drop for Owned<GIL> {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { release(self.0) }
    }
}

/// Make-return: the canonical wrapper of `handle`'s object; `handle` is handed over.
pub fn lookup<const GIL: bool>(handle: ObjectRef<Fast<GIL>>) -> Owned<GIL> {
    Owned(handle.lookup(&FastFactory).unwrap().0)
}

/// The canonical wrapper of `handle`'s object, the handle only borrowed.
pub fn lookup_borrowed<const GIL: bool>(handle: &ObjectRef<Fast<GIL>>) -> Owned<GIL> {
    Owned(handle.lookup(&FastFactory).unwrap().0)
}

/// A new native object (its value a `u64`).
pub fn object() -> ObjectRef<Fast> {
    ObjectArc::new(0u64, Fast).erase()
}

/// A new native object of the GIL-mode frontend `Fast<true>`.
pub fn object_gil() -> ObjectRef<Fast<true>> {
    ObjectArc::new(0u64, Fast::<true>).erase()
}

/// A wrapper whose count reached zero but whose dealloc did not run yet (CPython 3.14's trashcan
/// parks it); dropping the token runs the dealloc, late.
pub struct Parked<const GIL: bool = false>(NonNull<FastWrapper<GIL>>);

/// Drops `w`'s last reference without running its dealloc (see [`Parked`]).
///
/// # Panics
///
/// If `w` was not the last reference.
pub fn park<const GIL: bool>(w: Owned<GIL>) -> Parked<GIL> {
    let w = core::mem::ManuallyDrop::new(w);
    // SAFETY: we own a reference, so the box is live.
    let wr = unsafe { w.0.as_ref() };
    // Release/Acquire: as `release`.
    assert_eq!(
        wr.refcnt.fetch_sub(1, Ordering::Release),
        1,
        "park: not the last reference"
    );
    wr.refcnt.load(Ordering::Acquire);
    Parked(w.0)
}

impl<const GIL: bool> Drop for Parked<GIL> {
    fn drop(&mut self) {
        // SAFETY: the count reached zero in `park`; this is the only dealloc.
        unsafe { dealloc_and_free(self.0) }
    }
}
