//! A small object system and wrapper runtime written as a C one would be (`extern "C"`
//! callbacks, `repr(C)` structs, the binding in the object's header), driven through the
//! exported functions (`ABI = true`) or through `tether::direct` (`ABI = false`). Shared by the
//! ABI tests (also run under miri) and the boundary benchmark.
#![allow(dead_code)]

use std::ffi::c_void;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};

use tether::*;

// ---------------------------------------------------------------- the object system

/// An object: its count and the binding in its header.
#[repr(C)]
pub struct Obj {
    pub refcnt: AtomicUsize,
    pub binding: TetherBinding,
}

/// A wrapper: count, try-incref arming, slot, and room for its baton.
#[repr(C, align(8))]
pub struct Wrap {
    pub refcnt: AtomicUsize,
    pub armed: AtomicBool,
    pub slot: TetherSlot,
    pub baton: TetherBaton,
    /// The runtime of the wrapper's object.
    pub rt: *const TetherRuntime,
}

/// Live objects and wrapper blocks (a shadow count: each block is counted once when made and
/// once when freed, so a leak or a double free shows as a non-zero count).
pub static OBJECTS: AtomicIsize = AtomicIsize::new(0);
/// Live wrapper blocks (cached ones included).
pub static WRAPPERS: AtomicIsize = AtomicIsize::new(0);

fn free_obj(o: *mut Obj) {
    OBJECTS.fetch_sub(1, Ordering::Relaxed);
    // SAFETY: callers free each object once, when the protocol says so.
    drop(unsafe { Box::from_raw(o) });
}

fn free_wrap(w: *mut Wrap) {
    WRAPPERS.fetch_sub(1, Ordering::Relaxed);
    // SAFETY: callers free each wrapper once, when the protocol says so.
    drop(unsafe { Box::from_raw(w) });
}

pub fn obj_of(b: *mut TetherBinding) -> *mut Obj {
    // The binding is the second field of the repr(C) object.
    b.wrapping_byte_sub(std::mem::offset_of!(Obj, binding))
        .cast()
}

pub unsafe extern "C" fn try_incref(_: *mut c_void, w: *mut TetherWrapper) -> bool {
    // SAFETY: live (kernel contract).
    let w = unsafe { &*w.cast::<Wrap>() };
    // Relaxed: ordered by the word's lock.
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

pub unsafe extern "C" fn enable_try_incref(_: *mut c_void, w: *mut TetherWrapper) {
    // SAFETY: live. Relaxed: published by the word's Release.
    unsafe { &*w.cast::<Wrap>() }
        .armed
        .store(true, Ordering::Relaxed);
}

pub unsafe extern "C" fn free_cached(_: *mut c_void, w: *mut TetherWrapper) {
    // The word owned the cached box.
    free_wrap(w.cast());
}

pub unsafe extern "C" fn retain(_: *mut c_void, b: *mut TetherBinding) {
    // SAFETY: live (caller owns a reference). Relaxed: as `Arc::clone`.
    unsafe { &(*obj_of(b)).refcnt }.fetch_add(1, Ordering::Relaxed);
}

pub unsafe extern "C" fn release(_: *mut c_void, b: *mut TetherBinding) {
    let o = obj_of(b);
    // SAFETY: the caller's reference keeps it alive. Release/Acquire: as `Arc`.
    if unsafe { &(*o).refcnt }.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    // SAFETY: as above.
    unsafe { &(*o).refcnt }.load(Ordering::Acquire);
    let mut r = TetherReclaimed::Free;
    // SAFETY: no reference remains; the only reclaim.
    unsafe { tether_reclaim(b, &mut r) };
    if r == TetherReclaimed::Free {
        // Reclaim left the block to us.
        free_obj(o);
    }
}

pub unsafe extern "C" fn free_object(_: *mut c_void, b: *mut TetherBinding) {
    // Reclaim deferred to the settle calling this.
    free_obj(obj_of(b));
}

/// The runtime table, shared by every thread.
pub struct Shared(pub TetherRuntime);
// SAFETY: a null context and plain functions, callable from any thread.
unsafe impl Sync for Shared {}

impl Shared {
    /// A runtime table without `free_object` (which `tether_binding_init` must refuse).
    pub const fn incomplete() -> Shared {
        Shared(TetherRuntime {
            free_object: None,
            ..runtime(false)
        })
    }
}

std::thread_local! {
    /// When this thread's current run of misses on a dying wrapper started.
    static FIRST_MISS: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
}

/// The takeover of a dying wrapper whose dealloc does not come: after the kernel's few misses
/// and 50 ms, so a dealloc merely descheduled on a loaded machine keeps its wrapper's address
/// (S5; nothing here parks a dealloc). As the CPython adapter's free-threaded patience.
pub unsafe extern "C" fn replace_dying(_: *mut c_void, misses: u32) -> bool {
    if misses == 1 {
        FIRST_MISS.with(|t| t.set(Some(std::time::Instant::now())));
    }
    let waited = FIRST_MISS.with(|t| t.get().map_or(std::time::Duration::ZERO, |t| t.elapsed()));
    misses >= 4 && waited >= std::time::Duration::from_millis(50)
}

/// Lookups that replaced a dying wrapper (S5's one exception: a dealloc descheduled past the
/// patience above, which miri's and loaded machines' schedules produce).
pub static REPLACED: AtomicUsize = AtomicUsize::new(0);

pub unsafe extern "C" fn replaced(_: *mut c_void, _old: *mut TetherWrapper) {
    REPLACED.fetch_add(1, Ordering::Relaxed);
}

/// The runtime table of the general (free-threaded) mode.
pub static RUNTIME: Shared = Shared(runtime(false));
/// The same runtime in GIL mode (single-threaded tests keep its promise trivially).
pub static RUNTIME_GIL: Shared = Shared(runtime(true));

const fn runtime(serialized: bool) -> TetherRuntime {
    TetherRuntime {
        abi_version: TETHER_ABI_VERSION,
        serialized,
        ctx: ptr::null_mut(),
        try_incref: Some(try_incref),
        enable_try_incref: Some(enable_try_incref),
        untrack: None,
        backoff: None,
        replace_dying: Some(replace_dying),
        replaced: Some(replaced),
        is_alive: None,
        attach: None,
        detach: None,
        free_cached: Some(free_cached),
        retain: Some(retain),
        release: Some(release),
        free_object: Some(free_object),
    }
}

/// A new object of runtime `rt`, with one reference for the caller.
pub fn new_object(rt: &'static Shared) -> *mut TetherBinding {
    OBJECTS.fetch_add(1, Ordering::Relaxed);
    let o = Box::into_raw(Box::new(Obj {
        refcnt: AtomicUsize::new(1),
        // SAFETY: written by `tether_binding_init` below before any use.
        binding: unsafe { std::mem::zeroed() },
    }));
    // SAFETY: a fresh object; the runtime is static.
    let b = unsafe { &raw mut (*o).binding };
    // SAFETY: as above.
    let status = unsafe { tether_binding_init(b, &rt.0) };
    assert_eq!(status, TetherStatus::Ok);
    b
}

/// The wrapper's death, through the ABI (`ABI`) or without it.
pub unsafe extern "C" fn wrapper_release<const ABI: bool>(w: *mut Wrap) {
    // SAFETY: the caller owns a reference. Release/Acquire: as `Arc`.
    if unsafe { &*w }.refcnt.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    // SAFETY: as above.
    unsafe { &*w }.refcnt.load(Ordering::Acquire);
    // SAFETY: the count reached zero; the only dealloc.
    let (slot, baton) = unsafe { (&raw mut (*w).slot, &raw mut (*w).baton) };
    let outcome = if ABI {
        let mut out = TetherDeallocOutcome::NotCanonical;
        // SAFETY: as above.
        unsafe { tether_dealloc((*w).rt, w.cast(), slot, true, baton, &mut out) };
        out
    } else {
        // SAFETY: as above, every pointer valid and aligned.
        unsafe {
            direct::dealloc::<false>(
                NonNull::from(&RUNTIME.0),
                NonNull::new_unchecked(w.cast()),
                NonNull::new_unchecked(slot),
                true,
                Some(NonNull::new_unchecked(baton)),
            )
        }
    };
    if outcome == TetherDeallocOutcome::Cached {
        let settled = if ABI {
            let mut s = TetherSettled::FreeWrapper;
            // SAFETY: the pending baton of this dealloc.
            unsafe { tether_settle(baton, &mut s) };
            s
        } else {
            // SAFETY: as above.
            unsafe { direct::settle::<false>(NonNull::new_unchecked(baton)) }.unwrap()
        };
        if settled == TetherSettled::Cached {
            return;
        }
    }
    // Not cached: ours.
    free_wrap(w);
}

pub unsafe extern "C" fn make_fresh(
    _: *mut c_void,
    handle: *mut TetherBinding,
) -> *mut TetherWrapper {
    WRAPPERS.fetch_add(1, Ordering::Relaxed);
    let w = Box::into_raw(Box::new(Wrap {
        refcnt: AtomicUsize::new(1),
        armed: AtomicBool::new(false),
        // SAFETY: initialised by `tether_slot_init` below.
        slot: unsafe { std::mem::zeroed() },
        baton: TetherBaton {
            object: ptr::null_mut(),
            wrapper: ptr::null_mut(),
            state: 0,
        },
        // SAFETY: the handle is an initialised binding.
        rt: unsafe { (*handle).runtime },
    }));
    // SAFETY: the fresh wrapper's slot; the handle is given to it.
    unsafe { tether_slot_init(&raw mut (*w).slot, handle) };
    w.cast()
}

pub unsafe extern "C" fn revive(_: *mut c_void, w: *mut TetherWrapper, handle: *mut TetherBinding) {
    let w = w.cast::<Wrap>();
    // SAFETY: the cached block is ours while the word is locked.
    let wr = unsafe { &*w };
    wr.refcnt.store(1, Ordering::Relaxed);
    wr.armed.store(false, Ordering::Relaxed);
    let mut previous = ptr::null_mut();
    // SAFETY: as above.
    unsafe { tether_slot_put(&raw mut (*w).slot, handle, &mut previous) };
    debug_assert!(previous.is_null());
}

pub unsafe extern "C" fn discard_abi(_: *mut c_void, w: *mut TetherWrapper) {
    // SAFETY: we own the unpublished wrapper's only reference.
    unsafe { wrapper_release::<true>(w.cast()) }
}

pub unsafe extern "C" fn discard_direct(_: *mut c_void, w: *mut TetherWrapper) {
    // SAFETY: as above.
    unsafe { wrapper_release::<false>(w.cast()) }
}

pub fn factory(abi: bool) -> TetherFactory {
    TetherFactory {
        abi_version: TETHER_ABI_VERSION,
        ctx: ptr::null_mut(),
        make_fresh: Some(make_fresh),
        revive: Some(revive),
        discard: Some(if abi { discard_abi } else { discard_direct }),
    }
}

/// A lookup of `b` through the ABI (`ABI`) or without it.
pub fn lookup<const ABI: bool>(b: *mut TetherBinding, f: &TetherFactory) -> *mut Wrap {
    if ABI {
        let mut w = ptr::null_mut();
        // SAFETY: `b` is live and ours; the factory is complete.
        let status = unsafe { tether_lookup(b, f, &mut w, ptr::null_mut()) };
        debug_assert_eq!(status, TetherStatus::Ok);
        w.cast()
    } else {
        // SAFETY: as above.
        unsafe { direct::lookup::<false>(NonNull::new_unchecked(b), f) }
            .unwrap()
            .0
            .as_ptr()
            .cast()
    }
}

pub fn hit<const ABI: bool>(b: *mut TetherBinding) -> *mut Wrap {
    if ABI {
        let mut w = ptr::null_mut();
        // SAFETY: `b` is live and ours.
        unsafe { tether_hit(b, &mut w) };
        w.cast()
    } else {
        // SAFETY: as above.
        unsafe { direct::hit::<false>(NonNull::new_unchecked(b)) }.cast()
    }
}
