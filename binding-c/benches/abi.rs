//! What the C ABI's boundary costs: the same object system and wrapper runtime (written here in
//! Rust with `extern "C"` callbacks, as a C one would be) driven through the exported
//! `tether_*` functions and through the same operations without the boundary
//! (`tether::direct`), each printed as a ratio to a bare compare-exchange measured in the same
//! run. The boundary is a call plus argument checks; the table shows what that adds to a hit
//! and to a drop + refetch (dealloc, settle, revival).

use std::ffi::c_void;
use std::hint::black_box;
use std::ptr::{self, NonNull};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use tether::*;

/// Mean nanoseconds per operation of each benchmark, for the ratio table.
static MEANS: Mutex<Vec<(&'static str, f64)>> = Mutex::new(Vec::new());

fn record(name: &'static str, total: Duration, iters: u64) {
    let ns = total.as_nanos() as f64 / iters.max(1) as f64;
    let mut means = MEANS.lock().unwrap();
    match means.iter_mut().find(|(n, _)| *n == name) {
        Some(slot) => slot.1 = slot.1.min(ns),
        None => means.push((name, ns)),
    }
}

// ---------------------------------------------------------------- the object system

/// An object: its count and the binding in its header.
#[repr(C)]
struct Obj {
    refcnt: AtomicUsize,
    binding: TetherBinding,
}

/// A wrapper: count, try-incref arming, slot, and room for its baton.
#[repr(C, align(8))]
struct Wrap {
    refcnt: AtomicUsize,
    armed: AtomicBool,
    slot: TetherSlot,
    baton: TetherBaton,
}

fn obj_of(b: *mut TetherBinding) -> *mut Obj {
    // The binding is the second field of the repr(C) object.
    b.wrapping_byte_sub(std::mem::offset_of!(Obj, binding))
        .cast()
}

unsafe extern "C" fn try_incref(_: *mut c_void, w: *mut TetherWrapper) -> bool {
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

unsafe extern "C" fn enable_try_incref(_: *mut c_void, w: *mut TetherWrapper) {
    // SAFETY: live. Relaxed: published by the word's Release.
    unsafe { &*w.cast::<Wrap>() }
        .armed
        .store(true, Ordering::Relaxed);
}

unsafe extern "C" fn free_cached(_: *mut c_void, w: *mut TetherWrapper) {
    // SAFETY: the word owned the cached box.
    drop(unsafe { Box::from_raw(w.cast::<Wrap>()) });
}

unsafe extern "C" fn retain(_: *mut c_void, b: *mut TetherBinding) {
    // SAFETY: live (caller owns a reference). Relaxed: as `Arc::clone`.
    unsafe { &*obj_of(b) }
        .refcnt
        .fetch_add(1, Ordering::Relaxed);
}

unsafe extern "C" fn release(_: *mut c_void, b: *mut TetherBinding) {
    let o = obj_of(b);
    // SAFETY: the caller's reference keeps it alive. Release/Acquire: as `Arc`.
    if unsafe { &*o }.refcnt.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    // SAFETY: as above.
    unsafe { &*o }.refcnt.load(Ordering::Acquire);
    let mut r = TetherReclaimed::Free;
    // SAFETY: no reference remains; the only reclaim.
    unsafe { tether_reclaim(b, &mut r) };
    if r == TetherReclaimed::Free {
        // SAFETY: reclaim left the block to us.
        drop(unsafe { Box::from_raw(o) });
    }
}

unsafe extern "C" fn free_object(_: *mut c_void, b: *mut TetherBinding) {
    // SAFETY: reclaim deferred to the settle calling this.
    drop(unsafe { Box::from_raw(obj_of(b)) });
}

/// The runtime table, shared by every thread.
struct Shared(TetherRuntime);
// SAFETY: a null context and plain functions, callable from any thread.
unsafe impl Sync for Shared {}

static RUNTIME: Shared = Shared(TetherRuntime {
    ctx: ptr::null_mut(),
    serialized: false,
    try_incref: Some(try_incref),
    enable_try_incref: Some(enable_try_incref),
    untrack: None,
    backoff: None,
    is_alive: None,
    attach: None,
    detach: None,
    free_cached: Some(free_cached),
    retain: Some(retain),
    release: Some(release),
    free_object: Some(free_object),
});

fn new_object() -> *mut TetherBinding {
    let o = Box::into_raw(Box::new(Obj {
        refcnt: AtomicUsize::new(1),
        // SAFETY: written by `tether_binding_init` below before any use.
        binding: unsafe { std::mem::zeroed() },
    }));
    // SAFETY: a fresh object; the runtime is static.
    let b = unsafe { &raw mut (*o).binding };
    // SAFETY: as above.
    let status = unsafe { tether_binding_init(b, &RUNTIME.0) };
    assert_eq!(status, TetherStatus::Ok);
    b
}

/// The wrapper's death, through the ABI (`ABI`) or without it.
unsafe extern "C" fn wrapper_release<const ABI: bool>(w: *mut Wrap) {
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
        unsafe { tether_dealloc(&RUNTIME.0, w.cast(), slot, true, baton, &mut out) };
        out
    } else {
        // SAFETY: as above, every pointer valid and aligned.
        unsafe {
            direct::dealloc::<false>(
                NonNull::from(&RUNTIME.0),
                NonNull::new_unchecked(w.cast()),
                NonNull::new_unchecked(slot),
                true,
                NonNull::new_unchecked(baton),
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
    // SAFETY: not cached: ours.
    drop(unsafe { Box::from_raw(w) });
}

unsafe extern "C" fn make_fresh(_: *mut c_void, handle: *mut TetherBinding) -> *mut TetherWrapper {
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
    }));
    // SAFETY: the fresh wrapper's slot; the handle is given to it.
    unsafe { tether_slot_init(&raw mut (*w).slot, handle) };
    w.cast()
}

unsafe extern "C" fn revive(_: *mut c_void, w: *mut TetherWrapper, handle: *mut TetherBinding) {
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

unsafe extern "C" fn discard_abi(_: *mut c_void, w: *mut TetherWrapper) {
    // SAFETY: we own the unpublished wrapper's only reference.
    unsafe { wrapper_release::<true>(w.cast()) }
}

unsafe extern "C" fn discard_direct(_: *mut c_void, w: *mut TetherWrapper) {
    // SAFETY: as above.
    unsafe { wrapper_release::<false>(w.cast()) }
}

fn factory(abi: bool) -> TetherFactory {
    TetherFactory {
        ctx: ptr::null_mut(),
        make_fresh: Some(make_fresh),
        revive: Some(revive),
        discard: Some(if abi { discard_abi } else { discard_direct }),
    }
}

/// A lookup of `b` through the ABI (`ABI`) or without it.
fn lookup<const ABI: bool>(b: *mut TetherBinding, f: &TetherFactory) -> *mut Wrap {
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

fn hit<const ABI: bool>(b: *mut TetherBinding) -> *mut Wrap {
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

fn bench_pair<const ABI: bool>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    names: [&'static str; 2],
) {
    let f = factory(ABI);
    let b = new_object();
    let keep = lookup::<ABI>(b, &f);
    g.bench_function(names[0], |bench| {
        bench.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let w = hit::<ABI>(black_box(b));
                // SAFETY: the hit's reference is ours.
                unsafe { wrapper_release::<ABI>(black_box(w)) };
            }
            let t = start.elapsed();
            record(names[0], t, iters);
            t
        })
    });
    // SAFETY: ours.
    unsafe { wrapper_release::<ABI>(keep) };
    g.bench_function(names[1], |bench| {
        bench.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let w = lookup::<ABI>(black_box(b), &f);
                // SAFETY: the lookup's reference is ours; the wrapper dies and is cached.
                unsafe { wrapper_release::<ABI>(black_box(w)) };
            }
            let t = start.elapsed();
            record(names[1], t, iters);
            t
        })
    });
    // SAFETY: our reference to the object.
    unsafe { release(ptr::null_mut(), b) };
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("abi");
    g.measurement_time(Duration::from_secs(2));
    g.warm_up_time(Duration::from_millis(500));

    let word = AtomicUsize::new(0);
    g.bench_function("baseline: compare_exchange", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters as usize {
                // AcqRel: the same ordering as the kernel's transitions.
                let _ = black_box(&word).compare_exchange(
                    i,
                    i + 1,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            }
            let t = start.elapsed();
            record("baseline: compare_exchange", t, iters);
            t
        })
    });
    bench_pair::<false>(&mut g, ["hit + release, Rust", "drop + refetch, Rust"]);
    bench_pair::<true>(&mut g, ["hit + release, C ABI", "drop + refetch, C ABI"]);
    g.finish();
}

fn report() {
    let means = MEANS.lock().unwrap();
    let find = |n: &str| {
        means
            .iter()
            .find(|(m, _)| *m == n)
            .map_or(f64::NAN, |m| m.1)
    };
    let base = find("baseline: compare_exchange");
    println!("\n{:<28} {:>10} {:>10}", "operation", "ns/op", "× CAS");
    for (name, ns) in means.iter() {
        println!("{name:<28} {ns:>10.2} {:>10.2}", ns / base);
    }
    for op in ["hit + release", "drop + refetch"] {
        let (rust, abi) = (find(&format!("{op}, Rust")), find(&format!("{op}, C ABI")));
        println!(
            "{op}: the C ABI adds {:.2} ns ({:.2}×)",
            abi - rust,
            abi / rust
        );
    }
}

criterion_group!(abi, benches);

fn main() {
    abi();
    Criterion::default().configure_from_args().final_summary();
    report();
}
