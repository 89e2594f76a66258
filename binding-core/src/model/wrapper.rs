//! The model's wrapper object: a CPython-like reference count on a quarantined block.

use core::hash::{Hash, Hasher};
use core::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicU64 as StdAtomicU64, Ordering::Relaxed};

use crate::sync::UnsafeCell;
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::{Caching, Dealloc, HandleSlot, NativeRef, Settled};

use super::{ModelFrontend, Own, System};

const LIVE: u8 = 1;
const CACHED: u8 = 2;
const FREED: u8 = 3;

/// A stable non-zero key for the current (loom, shuttle or std) thread.
pub(crate) fn thread_key() -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    crate::sync::thread::current().id().hash(&mut h);
    h.finish() | 1
}

/// A wrapper block of the model runtime (8-aligned, like a `PyObject`).
#[repr(C, align(8))]
pub struct ModelWrapper<const FLAW: u8, const GIL: bool = false, S: System = Own> {
    id: u64,
    /// Shadow-heap state (bookkeeping, invisible to loom): LIVE, CACHED or FREED.
    life: AtomicU8,
    /// The frontend reference count (loom-visible).
    refcnt: AtomicUsize,
    /// CPython's "may have weakrefs" flag, set by enable-try-incref, cleared by (re)init.
    armed: AtomicBool,
    gc_tracked: std::sync::atomic::AtomicBool,
    /// Key of the thread running this wrapper's dealloc, or 0.
    dying_on: StdAtomicU64,
    cacheable: bool,
    /// Non-atomic object memory written by (re)initialisation and read by try-incref: loom
    /// reports a data race if a revival is not published with Release.
    generation: UnsafeCell<u64>,
    /// Non-atomic object memory the dealloc writes before settling (its last writes to the
    /// block, like CPython's `tp_free` bookkeeping) and the reviver or reclaimer writes after:
    /// loom reports a data race if the settle does not publish them (Release) or the reclaimer's
    /// free does not see them.
    teardown: UnsafeCell<u64>,
    slot: HandleSlot<S::Native<FLAW, GIL>>,
}

impl<const FLAW: u8, const GIL: bool, S: System> ModelWrapper<FLAW, GIL, S> {
    pub(crate) fn new(id: u64, cacheable: bool, slot: HandleSlot<S::Native<FLAW, GIL>>) -> Self {
        Self {
            id,
            life: AtomicU8::new(LIVE),
            refcnt: AtomicUsize::new(1),
            armed: AtomicBool::new(false),
            gc_tracked: std::sync::atomic::AtomicBool::new(true),
            dying_on: StdAtomicU64::new(0),
            cacheable,
            generation: UnsafeCell::new(0),
            teardown: UnsafeCell::new(0),
            slot,
        }
    }

    /// The block's id (stable across revivals).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The wrapper's handle slot.
    pub fn slot(&self) -> &HandleSlot<S::Native<FLAW, GIL>> {
        &self.slot
    }

    /// How many times this block was (re)initialised.
    pub fn generation(&self) -> u64 {
        self.generation.with(|g| {
            // SAFETY: written only while the block is exclusively owned by its (re)initialiser.
            unsafe { *g }
        })
    }

    /// The current reference count (a snapshot).
    pub fn refcount(&self) -> usize {
        // Relaxed: a diagnostic snapshot.
        self.refcnt.load(Ordering::Relaxed)
    }

    pub(crate) fn is_freed(&self) -> bool {
        self.life.load(Relaxed) == FREED
    }

    pub(crate) fn is_cached(&self) -> bool {
        self.life.load(Relaxed) == CACHED
    }

    pub(crate) fn is_gc_tracked(&self) -> bool {
        self.gc_tracked.load(Relaxed)
    }

    pub(crate) fn is_dying_on(&self, thread: u64) -> bool {
        self.dying_on.load(Relaxed) == thread
    }

    pub(crate) fn assert_live(&self, what: &str) {
        let life = self.life.load(Relaxed);
        assert!(
            life == LIVE,
            "S1 violated: {what} touched wrapper #{} which is {}",
            self.id,
            if life == CACHED {
                "cached (dead)"
            } else {
                "freed"
            }
        );
    }

    pub(crate) fn try_incref(&self) -> bool {
        self.assert_live("try_incref");
        assert!(
            self.slot.header().is_some(),
            "S3 violated: the canonical wrapper #{} has no handle",
            self.id
        );
        // Reads the object's (re)initialised memory, as CPython's try-incref reads ob_tid, and
        // the memory its free writes (`teardown`): a free not ordered after this is a race.
        let _ = self.generation();
        self.teardown.with(|t| {
            // SAFETY: writers of `teardown` are ordered with this read by the word's lock (the
            // dealloc, the reviver, the reclaimer) or by the dealloc's compare-exchange (the free
            // of a replaced wrapper); loom reports it otherwise.
            let _ = unsafe { *t };
        });
        // Relaxed: the word's lock orders us with the (re)initialiser and the dealloc.
        // CPython fails here spuriously, and the lookup would spin for as long as the wrapper
        // lives (lesson 3). The kernel arms every wrapper before publishing it, so this is a bug.
        assert!(
            self.armed.load(Ordering::Relaxed),
            "L1 violated (lesson 3): try-incref on wrapper #{} which was not re-armed since its \
             (re)initialisation; CPython fails it spuriously and the lookup spins while it lives",
            self.id
        );
        let mut n = self.refcnt.load(Ordering::Relaxed);
        loop {
            if n == 0 {
                return false;
            }
            // Relaxed: as CPython's incref; the caller already synchronised via the word.
            match self
                .refcnt
                .compare_exchange(n, n + 1, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(seen) => n = seen,
            }
        }
    }

    pub(crate) fn enable_try_incref(&self) {
        self.assert_live("enable_try_incref");
        // Relaxed: published by the word's Release store.
        self.armed.store(true, Ordering::Relaxed);
    }

    pub(crate) fn untrack(&self) {
        self.gc_tracked.store(false, Relaxed);
    }

    pub(crate) fn incref(&self) {
        self.assert_live("incref");
        let old = self.refcnt.fetch_add(1, Ordering::Relaxed);
        assert!(
            old > 0,
            "S1 violated: incref resurrected dead wrapper #{}",
            self.id
        );
    }

    /// Re-initialises a cached block in place (the model's `PyObject_Init`).
    pub(crate) fn reinit(&self, handle: NativeRef<S::Native<FLAW, GIL>>) {
        let life = self.life.load(Relaxed);
        assert!(
            life == CACHED,
            "S1 violated: revived wrapper #{} which is not cached (state {life})",
            self.id
        );
        self.generation.with_mut(|g| {
            // SAFETY: the reviver owns the block exclusively (the word is locked).
            unsafe { *g += 1 }
        });
        self.touch_teardown();
        // Relaxed: published by the word's Release store.
        self.refcnt.store(1, Ordering::Relaxed);
        self.armed.store(false, Ordering::Relaxed);
        self.gc_tracked.store(true, Relaxed);
        self.dying_on.store(0, Relaxed);
        self.life.store(LIVE, Relaxed);
        // SAFETY: the reviver owns the block exclusively (the word is locked).
        let displaced = unsafe { self.slot.put_exclusive(handle) };
        assert!(displaced.is_none(), "revived wrapper still had a handle");
    }

    pub(crate) fn free_cached(&self) {
        self.touch_teardown();
        let life = self.life.swap(FREED, Relaxed);
        assert!(
            life == CACHED,
            "S1 violated: reclaim freed wrapper #{} which was {}",
            self.id,
            if life == FREED {
                "already freed (double free)"
            } else {
                "live"
            }
        );
    }

    /// The wrapper's own free: from live (uncached death) or from its just-cached state (reclaim
    /// deferred to us).
    fn free_block(&self) {
        // The allocator reuses the memory: a plain write (loom: after every reader).
        self.touch_teardown();
        let life = self.life.swap(FREED, Relaxed);
        assert!(
            life != FREED,
            "S1 violated: wrapper #{} freed twice (double free)",
            self.id
        );
    }

    /// A plain write to the block's memory (see `teardown`).
    fn touch_teardown(&self) {
        self.teardown.with_mut(|t| {
            // SAFETY: only the block's current owner writes it: the dying thread before its
            // settle, then the word's next owner (reviver or reclaimer) after it.
            unsafe { *t += 1 }
        });
    }

    fn cache(&self) {
        self.touch_teardown();
        let life = self.life.swap(CACHED, Relaxed);
        assert!(
            life == LIVE,
            "S1 violated: wrapper #{} cached twice",
            self.id
        );
    }
}

impl<const FLAW: u8, const GIL: bool, S: System> ModelFrontend<FLAW, GIL, S> {
    /// `Py_DECREF`: drops one reference; at zero runs the wrapper's dealloc and free.
    ///
    /// # Safety
    ///
    /// The caller owns a reference to `w` and gives it up.
    pub(crate) unsafe fn release(&self, w: NonNull<ModelWrapper<FLAW, GIL, S>>) {
        // SAFETY: quarantined blocks live as long as the model.
        let wr = unsafe { w.as_ref() };
        wr.assert_live("decref");
        // GIL mode: `Py_DECREF` and the dealloc it runs hold the GIL.
        let _gil = self.gil();
        // Release: our uses of the wrapper happen before its dealloc.
        let old = self.refcnt_sub(wr);
        assert!(old > 0, "S1 violated: decref of dead wrapper #{}", wr.id);
        if old != 1 {
            return;
        }
        // Acquire: the dealloc sees every previous owner's uses (a load, not a fence, so that
        // ThreadSanitizer checks it).
        wr.refcnt.load(Ordering::Acquire);
        // SAFETY: the count just reached zero on this thread.
        unsafe { self.run_dealloc(w) }
    }

    /// The wrapper's dealloc and free, once its count reached zero on this thread (at once, or
    /// later for a parked wrapper).
    ///
    /// # Safety
    ///
    /// `w`'s count reached zero on this thread and its dealloc has not run.
    unsafe fn run_dealloc(&self, w: NonNull<ModelWrapper<FLAW, GIL, S>>) {
        // SAFETY: quarantined blocks live as long as the model.
        let wr = unsafe { w.as_ref() };
        wr.dying_on.store(thread_key(), Relaxed);
        let caching = if wr.cacheable {
            Caching::Cache
        } else {
            Caching::Forget
        };
        // tp_dealloc: the binding transition first.
        let outcome = {
            let _gil = self.gil();
            // SAFETY: the count reached zero on this thread; this is the wrapper's only dealloc.
            unsafe { crate::dealloc(self, w, &wr.slot, caching) }
        };
        // GIL mode: the native reference's drop in the dealloc may run code that lets the GIL
        // go before the free.
        self.let_gil_go();
        let _gil = self.gil();
        // tp_free: settle or free. Every write to the wrapper's memory happens before the settle:
        // once the word says Inactive, a reviver or reclaimer on another thread owns the block.
        wr.dying_on.store(0, Relaxed);
        let free = match outcome {
            Dealloc::Cached(baton) => {
                wr.cache();
                match baton.settle() {
                    Settled::Cached => false,
                    Settled::FreeWrapper => {
                        self.stats.deferred_settles.fetch_add(1, Relaxed);
                        true
                    }
                }
            }
            Dealloc::Detached | Dealloc::NotCanonical => true,
        };
        if free {
            wr.free_block();
            self.stats.wrappers_freed.fetch_add(1, Relaxed);
        }
    }

    fn refcnt_sub(&self, w: &ModelWrapper<FLAW, GIL, S>) -> usize {
        // Release: as `release`.
        w.refcnt.fetch_sub(1, Ordering::Release)
    }
}

/// An owned frontend reference to a model wrapper (`Py<...>`); dropping it decrefs.
pub struct WrapperRef<const FLAW: u8, const GIL: bool = false, S: System = Own> {
    frontend: ModelFrontend<FLAW, GIL, S>,
    ptr: NonNull<ModelWrapper<FLAW, GIL, S>>,
}

// SAFETY: the wrapper's shared state is atomics and its block outlives the model handle we hold.
unsafe impl<const FLAW: u8, const GIL: bool, S: System> Send for WrapperRef<FLAW, GIL, S> {}
// SAFETY: as above.
unsafe impl<const FLAW: u8, const GIL: bool, S: System> Sync for WrapperRef<FLAW, GIL, S> {}

impl<const FLAW: u8, const GIL: bool, S: System> WrapperRef<FLAW, GIL, S> {
    pub(crate) fn adopt(
        frontend: ModelFrontend<FLAW, GIL, S>,
        ptr: NonNull<ModelWrapper<FLAW, GIL, S>>,
    ) -> Self {
        Self { frontend, ptr }
    }

    /// Takes ownership of a reference returned by `ObjectRef::into_wrapper`.
    ///
    /// # Safety
    ///
    /// The caller owns one reference to `ptr`, a wrapper of `frontend`, and gives it up.
    pub unsafe fn from_raw(
        frontend: ModelFrontend<FLAW, GIL, S>,
        ptr: NonNull<ModelWrapper<FLAW, GIL, S>>,
    ) -> Self {
        Self { frontend, ptr }
    }

    /// [`ModelFrontend::with_gil`] of this wrapper's runtime.
    pub fn with_gil<R>(&self, f: impl FnOnce() -> R) -> R {
        self.frontend.with_gil(f)
    }

    /// The wrapper's address (what Python's `id()` returns).
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr().addr()
    }

    /// The wrapper block.
    pub fn wrapper(&self) -> &ModelWrapper<FLAW, GIL, S> {
        // SAFETY: we own a reference, so the block is live (and quarantined in any case).
        unsafe { self.ptr.as_ref() }
    }

    /// A raw pointer to the wrapper.
    pub fn as_ptr(&self) -> NonNull<ModelWrapper<FLAW, GIL, S>> {
        self.ptr
    }

    /// A new strong native reference to the wrapped object, if the wrapper holds one.
    pub fn handle(&self) -> Option<NativeRef<S::Native<FLAW, GIL>>> {
        // SAFETY: tests serialise moves of one wrapper with reads of it.
        unsafe { self.wrapper().slot.clone_handle() }
    }

    /// A move (`x._move()`): a new wrapper takes over the native reference (and the binding, if
    /// this one is canonical); this one is left without a handle.
    pub fn take_over(&self) -> Option<WrapperRef<FLAW, GIL, S>> {
        let to = self.frontend.new_unbound_wrapper(true);
        let _gil = self.frontend.gil();
        // SAFETY: both wrappers are live and owned; nobody else moves `self` concurrently.
        let moved = unsafe {
            crate::move_binding(
                &self.frontend,
                self.ptr,
                &self.wrapper().slot,
                to.ptr,
                &to.wrapper().slot,
            )
        };
        moved.map(|_| to)
    }
}

impl<const FLAW: u8, const GIL: bool, S: System> WrapperRef<FLAW, GIL, S> {
    /// Drops this reference as CPython 3.14's trashcan does on a deep C stack: if it was the
    /// last one, the wrapper's dealloc does not run now but is parked (GC-untracked, count zero,
    /// the binding word untouched) until the returned token runs or drops it, on this thread.
    pub fn drop_parked(self) -> Option<Parked<FLAW, GIL, S>> {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: we own the reference; `this` is never dropped, so it is given up exactly once.
        let frontend = unsafe { core::ptr::read(&this.frontend) };
        let wr = this.wrapper();
        wr.assert_live("decref");
        {
            let _gil = frontend.gil();
            let old = frontend.refcnt_sub(wr);
            assert!(old > 0, "S1 violated: decref of dead wrapper #{}", wr.id);
            if old != 1 {
                return None;
            }
            // Acquire: as `release`.
            wr.refcnt.load(Ordering::Acquire);
            // CPython's deposit untracks the object (`_PyTrash_thread_deposit_object`).
            wr.untrack();
        }
        Some(Parked {
            frontend,
            ptr: this.ptr,
        })
    }
}

/// A wrapper whose count reached zero but whose dealloc is parked (see
/// [`WrapperRef::drop_parked`]); dropping it runs the dealloc and free, as CPython's drain of the
/// thread's delete-later list does when the stack unwinds.
pub struct Parked<const FLAW: u8, const GIL: bool = false, S: System = Own> {
    frontend: ModelFrontend<FLAW, GIL, S>,
    ptr: NonNull<ModelWrapper<FLAW, GIL, S>>,
}

impl<const FLAW: u8, const GIL: bool, S: System> Parked<FLAW, GIL, S> {
    /// The parked wrapper's address.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr().addr()
    }
}

impl<const FLAW: u8, const GIL: bool, S: System> Drop for Parked<FLAW, GIL, S> {
    fn drop(&mut self) {
        // SAFETY: the count reached zero on this thread (parking threads never hand the token
        // on: it is not `Send`) and the dealloc has not run.
        unsafe { self.frontend.run_dealloc(self.ptr) }
    }
}

impl<const FLAW: u8, const GIL: bool, S: System> Clone for WrapperRef<FLAW, GIL, S> {
    fn clone(&self) -> Self {
        self.wrapper().incref();
        Self::adopt(self.frontend.clone(), self.ptr)
    }
}

impl<const FLAW: u8, const GIL: bool, S: System> Drop for WrapperRef<FLAW, GIL, S> {
    fn drop(&mut self) {
        // SAFETY: we own one reference and give it up.
        unsafe { self.frontend.release(self.ptr) }
    }
}

impl<const FLAW: u8, const GIL: bool, S: System> core::fmt::Debug for WrapperRef<FLAW, GIL, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WrapperRef")
            .field("id", &self.wrapper().id)
            .field("addr", &format_args!("{:#x}", self.addr()))
            .finish()
    }
}

impl<const FLAW: u8, const GIL: bool, S: System> ModelFrontend<FLAW, GIL, S> {
    /// A new wrapper block without a handle (a move target or a constructor's wrapper).
    pub fn new_unbound_wrapper(&self, cacheable: bool) -> WrapperRef<FLAW, GIL, S> {
        let block = std::boxed::Box::new(ModelWrapper::new(
            self.fresh_id(),
            cacheable,
            HandleSlot::empty(),
        ));
        let ptr = NonNull::from(std::boxed::Box::leak(block));
        self.register_wrapper(ptr);
        WrapperRef::adopt(self.clone(), ptr)
    }

    /// Construct: a new wrapper bound to `handle` from the start (Python's `Inner(...)`).
    pub fn construct(
        &self,
        handle: NativeRef<S::Native<FLAW, GIL>>,
        cacheable: bool,
    ) -> WrapperRef<FLAW, GIL, S> {
        let w = self.new_unbound_wrapper(cacheable);
        let header = handle.as_ptr();
        let _gil = self.gil();
        drop(w.wrapper().slot.put(handle));
        // SAFETY: `w` is live, owned, and its slot holds this object.
        let _ = unsafe { crate::bind(header.as_ref(), w.ptr) };
        w
    }
}
