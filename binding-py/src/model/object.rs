//! The model's objects: a `PyObject` header with free-threaded CPython's biased reference count.
//!
//! Fields and rules follow CPython 3.14t (`Include/object.h`, `Include/refcount.h`,
//! `Objects/object.c`): `ob_tid` names the owning thread, which alone uses the non-atomic
//! `ob_ref_local`; every other thread uses `ob_ref_shared`, whose two low bits are the state
//! flags below. Orderings are CPython's (its `_Py_atomic_*` calls).

use core::ptr::NonNull;
use std::boxed::Box;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicBool as StdBool, AtomicU8, AtomicU64 as StdU64, Ordering::Relaxed};
use std::vec::Vec;

use binding_core::sync::atomic::{AtomicUsize, Ordering};

/// `_Py_REF_SHARED_SHIFT`: the shared count lives above the two flag bits.
pub const SHARED_SHIFT: usize = 2;
/// `_Py_REF_MAYBE_WEAKREF`: try-incref from other threads may succeed at shared count zero.
pub const MAYBE_WEAKREF: usize = 1;
/// `_Py_REF_QUEUED`: queued to the owner for a merge (the queue holds a reference).
pub const QUEUED: usize = 2;
/// `_Py_REF_MERGED`: local and shared counts merged; the owner no longer matters.
pub const MERGED: usize = 3;
const FLAGS: usize = 3;

/// A live object.
pub const LIVE: u8 = 1;
/// The reference count reached zero: the dealloc runs (or the finalizer's temporary
/// resurrection, see `RESURRECTING`).
pub const DYING: u8 = 2;
/// A dying object temporarily resurrected to run its finalizer from its dealloc.
pub const RESURRECTING: u8 = 3;
/// A dead block owned by a binding word (Inactive), waiting for revival or reclaim.
pub const CACHED: u8 = 4;
/// Memory returned (`PyObject_GC_Del`): any further access is a use after free.
pub const FREED: u8 = 5;

/// What a state is called in violation messages.
pub fn life_name(life: u8) -> &'static str {
    match life {
        LIVE => "live",
        DYING => "dying",
        RESURRECTING => "in its finalizer",
        CACHED => "cached (dead)",
        FREED => "freed",
        _ => "corrupt",
    }
}

/// A weak reference callback (run by `PyObject_ClearWeakRefs`).
pub type WeakCallback = Box<dyn FnOnce() + Send>;

/// Non-atomic object memory, visible to loom's race detector: written when the object is
/// (re)initialised, read by try-incref. A revival that is not published with release ordering
/// shows up as a data race.
#[derive(Debug)]
pub(crate) struct ObjectMemory {
    #[cfg(loom)]
    cell: loom::cell::UnsafeCell<u64>,
    #[cfg(not(loom))]
    cell: core::cell::UnsafeCell<u64>,
}

impl ObjectMemory {
    fn new() -> Self {
        #[cfg(loom)]
        let cell = loom::cell::UnsafeCell::new(0);
        #[cfg(not(loom))]
        let cell = core::cell::UnsafeCell::new(0);
        Self { cell }
    }

    /// Reads the memory (as CPython's try-incref reads `ob_tid` and the counts).
    pub(crate) fn read(&self) -> u64 {
        #[cfg(loom)]
        // SAFETY: loom checks that this read is ordered after the last write.
        return self.cell.with(|p| unsafe { *p });
        #[cfg(not(loom))]
        // SAFETY: only written while the block is exclusively owned (see `bump`).
        unsafe {
            *self.cell.get()
        }
    }

    /// Writes it (re-initialisation; the writer owns the block).
    pub(crate) fn bump(&self) {
        #[cfg(loom)]
        // SAFETY: loom checks exclusivity.
        self.cell.with_mut(|p| unsafe { *p += 1 });
        #[cfg(not(loom))]
        // SAFETY: the writer owns the block exclusively (the word is locked).
        unsafe {
            *self.cell.get() += 1
        }
    }
}

/// The model's `PyObject` header.
#[repr(C, align(8))]
pub struct ObjHead {
    /// `ob_tid`: the owning thread's key, or 0 once merged.
    pub(crate) tid: AtomicUsize,
    /// `ob_ref_local`: the owner's count (read and written by the owner only, relaxed).
    pub(crate) local: AtomicUsize,
    /// `ob_ref_shared`: `count << 2 | flags`, an `isize` in two's complement (it may go
    /// negative when a non-owner drops a reference the owner counted).
    pub(crate) shared: AtomicUsize,
    /// The GC's tracked bit.
    pub(crate) tracked: StdBool,
    /// Shadow state (bookkeeping, invisible to loom): LIVE, DYING, … FREED.
    pub(crate) life: AtomicU8,
    /// Key of the thread running this object's dealloc, or 0.
    pub(crate) dying_on: StdU64,
    /// `_PyGC_BITS_FINALIZED`: the finalizer ran in this life.
    pub(crate) finalized: StdBool,
    /// `ob_type`.
    pub(crate) ty: std::sync::atomic::AtomicPtr<super::ModelType>,
    /// A stable label for messages.
    pub(crate) id: u64,
    pub(crate) memory: ObjectMemory,
    /// Weak reference callbacks (the weak reference list).
    pub(crate) weakrefs: StdMutex<Vec<WeakCallback>>,
}

impl ObjHead {
    /// A fresh header as `PyType_GenericAlloc` leaves it: one reference owned by `owner`,
    /// tracked.
    pub(crate) fn new(id: u64, owner: usize, ty: NonNull<super::ModelType>) -> Self {
        Self {
            tid: AtomicUsize::new(owner),
            local: AtomicUsize::new(1),
            shared: AtomicUsize::new(0),
            tracked: StdBool::new(true),
            life: AtomicU8::new(LIVE),
            dying_on: StdU64::new(0),
            finalized: StdBool::new(false),
            ty: std::sync::atomic::AtomicPtr::new(ty.as_ptr()),
            id,
            memory: ObjectMemory::new(),
            weakrefs: StdMutex::new(Vec::new()),
        }
    }

    /// The shadow state.
    pub fn life(&self) -> u8 {
        self.life.load(Relaxed)
    }

    /// The object's label.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn assert_life(&self, what: &str, allowed: &[u8]) {
        let life = self.life();
        assert!(
            allowed.contains(&life),
            "S1 violated: {what} on object #{} which is {}",
            self.id,
            life_name(life)
        );
    }

    /// `Py_REFCNT`: local + shared count (a snapshot).
    pub fn refcount(&self) -> isize {
        // Relaxed: a diagnostic snapshot (as CPython's Py_REFCNT).
        let shared = self.shared.load(Ordering::Relaxed) as isize;
        self.local.load(Ordering::Relaxed) as isize + (shared >> SHARED_SHIFT)
    }

    /// `_Py_IsOwnedByCurrentThread`.
    pub(crate) fn owned_by(&self, me: usize) -> bool {
        // Relaxed: `_Py_atomic_load_uintptr_relaxed(&ob->ob_tid)`.
        self.tid.load(Ordering::Relaxed) == me
    }

    /// `Py_INCREF`.
    pub(crate) fn incref(&self, me: usize) {
        if self.owned_by(me) {
            // Relaxed: the owner's non-atomic local count (`_Py_atomic_store_uint32_relaxed`).
            let local = self.local.load(Ordering::Relaxed);
            self.local.store(local + 1, Ordering::Relaxed);
        } else {
            // SeqCst: `_Py_atomic_add_ssize`.
            self.shared.fetch_add(1 << SHARED_SHIFT, Ordering::SeqCst);
        }
    }

    /// `_Py_TryIncrefFast || _Py_TryIncRefShared` (`PyUnstable_TryIncRef`).
    pub(crate) fn try_incref(&self, me: usize) -> bool {
        let _ = self.memory.read();
        if self.owned_by(me) {
            // Relaxed: as `incref`.
            let local = self.local.load(Ordering::Relaxed);
            self.local.store(local + 1, Ordering::Relaxed);
            return true;
        }
        // Relaxed: `_Py_atomic_load_ssize_relaxed`; the CAS below decides.
        let mut shared = self.shared.load(Ordering::Relaxed);
        loop {
            if shared == 0 || shared == MERGED {
                return false;
            }
            // SeqCst: `_Py_atomic_compare_exchange_ssize`.
            match self.shared.compare_exchange(
                shared,
                shared.wrapping_add(1 << SHARED_SHIFT),
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return true,
                Err(seen) => shared = seen,
            }
        }
    }

    /// `_PyObject_SetMaybeWeakref` (`PyUnstable_EnableTryIncRef`).
    pub(crate) fn set_maybe_weakref(&self) {
        // Relaxed: `_Py_atomic_load_ssize_relaxed`; the CAS decides.
        let mut shared = self.shared.load(Ordering::Relaxed);
        loop {
            if shared & FLAGS != 0 {
                return;
            }
            // SeqCst: `_Py_atomic_compare_exchange_ssize`.
            match self.shared.compare_exchange(
                shared,
                shared | MAYBE_WEAKREF,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return,
                Err(seen) => shared = seen,
            }
        }
    }

    /// The owner's `Py_DECREF`: `true` if the object must be deallocated now.
    pub(crate) fn decref_local(&self) -> bool {
        // Relaxed: the owner's local count.
        let local = self.local.load(Ordering::Relaxed) - 1;
        self.local.store(local, Ordering::Relaxed);
        if local != 0 {
            return false;
        }
        // `_Py_MergeZeroLocalRefcount`. Acquire: `_Py_atomic_load_ssize_acquire`.
        let mut shared = self.shared.load(Ordering::Acquire);
        if shared == 0 {
            return true;
        }
        // Relaxed: `_Py_atomic_store_uintptr_relaxed(&op->ob_tid, 0)`, before the merge.
        self.tid.store(0, Ordering::Relaxed);
        loop {
            let merged = (shared & !FLAGS) | MERGED;
            // SeqCst: `_Py_atomic_compare_exchange_ssize`.
            match self
                .shared
                .compare_exchange(shared, merged, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return merged == MERGED,
                Err(seen) => shared = seen,
            }
        }
    }

    /// A non-owner's `Py_DECREF` (`_Py_DecRefShared`): whether to queue the object to its owner
    /// (the queue then holds the reference) and whether to deallocate it now.
    pub(crate) fn decref_shared(&self) -> (bool, bool) {
        // Relaxed: `_Py_atomic_load_ssize_relaxed`; the CAS decides.
        let mut shared = self.shared.load(Ordering::Relaxed);
        loop {
            let queue = shared == 0 || shared == MAYBE_WEAKREF;
            let new = if queue {
                QUEUED
            } else {
                shared.wrapping_sub(1 << SHARED_SHIFT)
            };
            // SeqCst: `_Py_atomic_compare_exchange_ssize`.
            match self
                .shared
                .compare_exchange(shared, new, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return (queue, !queue && new == MERGED),
                Err(seen) => shared = seen,
            }
        }
    }

    /// `_Py_ExplicitMergeRefcount(op, extra)`: the merged count.
    pub(crate) fn explicit_merge(&self, extra: isize) -> isize {
        // Relaxed: `_Py_atomic_load_ssize_relaxed`; the CAS decides.
        let mut shared = self.shared.load(Ordering::Relaxed);
        loop {
            // Relaxed: the local count is stable here (its owner is merging, or gone).
            let refcnt = ((shared as isize) >> SHARED_SHIFT)
                + self.local.load(Ordering::Relaxed) as isize
                + extra;
            let new = ((refcnt << SHARED_SHIFT) as usize) | MERGED;
            // SeqCst: `_Py_atomic_compare_exchange_ssize`.
            match self
                .shared
                .compare_exchange(shared, new, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => {
                    // Relaxed: `_Py_atomic_store_*_relaxed`, as CPython.
                    self.local.store(0, Ordering::Relaxed);
                    self.tid.store(0, Ordering::Relaxed);
                    return refcnt;
                }
                Err(seen) => shared = seen,
            }
        }
    }

    /// `_Py_NewReference` (from `PyObject_Init` or a finalizer's resurrection): one reference
    /// owned by `me`, shared count and flags cleared (so `MAYBE_WEAKREF` too, lesson 3).
    pub(crate) fn new_reference(&self, me: usize) {
        // Relaxed: the caller owns the block; publication is the caller's business.
        self.tid.store(me, Ordering::Relaxed);
        self.local.store(1, Ordering::Relaxed);
        self.shared.store(0, Ordering::Relaxed);
    }
}

/// A raw object pointer sent between model threads (only dereferenced under the model's rules).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ObjPtr(pub(crate) NonNull<ObjHead>);
// SAFETY: blocks are quarantined for the model's life; every access checks the shadow state.
unsafe impl Send for ObjPtr {}
// SAFETY: as above.
unsafe impl Sync for ObjPtr {}
