//! Criterion benchmarks of the kernel's uncontended transitions, each printed as a ratio to a
//! bare compare-exchange measured in the same run.
//!
//! The frontend here is deliberately minimal (a boxed wrapper with an atomic refcount), so the
//! numbers are the kernel's cost, not a runtime's.

use std::hint::black_box;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use binding_core::{
    Caching, Dealloc, Frontend, HandleSlot, ObjectArc, ObjectRef, Settled, WrapperFactory,
};
use criterion::{Criterion, criterion_group};

/// A minimal frontend: wrappers are boxed structs with a refcount.
#[derive(Clone, Copy, Debug, Default)]
struct Fast;

#[repr(align(8))]
struct FastWrapper {
    refcnt: AtomicUsize,
    armed: AtomicBool,
    slot: HandleSlot<Fast>,
}

// SAFETY: try_incref refuses at zero; attach always succeeds (the runtime never shuts down).
unsafe impl Frontend for Fast {
    type Wrapper = FastWrapper;
    type Attachment = ();

    unsafe fn try_incref(&self, w: NonNull<FastWrapper>) -> bool {
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
    unsafe fn enable_try_incref(&self, w: NonNull<FastWrapper>) {
        // SAFETY: live (kernel contract). Relaxed: published by the word's Release.
        unsafe { w.as_ref() }.armed.store(true, Ordering::Relaxed);
    }
    unsafe fn untrack(&self, _w: NonNull<FastWrapper>) {}
    fn backoff(&self, _spins: u32) {
        std::thread::yield_now();
    }
    fn is_alive(&self) -> bool {
        true
    }
    fn attach(&self) -> Option<()> {
        Some(())
    }
    unsafe fn free_cached(&self, w: NonNull<FastWrapper>, _: &()) {
        // SAFETY: the word owned the cached box; nobody else can reach it.
        drop(unsafe { Box::from_raw(w.as_ptr()) });
    }
}

struct FastFactory;

impl WrapperFactory<Fast> for FastFactory {
    type Error = ();
    fn make_fresh(&self, handle: ObjectRef<Fast>) -> Result<NonNull<FastWrapper>, ()> {
        Ok(NonNull::from(Box::leak(Box::new(FastWrapper {
            refcnt: AtomicUsize::new(1),
            armed: AtomicBool::new(false),
            slot: HandleSlot::new(handle),
        }))))
    }
    unsafe fn revive(&self, w: NonNull<FastWrapper>, handle: ObjectRef<Fast>) {
        // SAFETY: the cached block is ours while the word is locked.
        let w = unsafe { w.as_ref() };
        w.refcnt.store(1, Ordering::Relaxed);
        w.armed.store(false, Ordering::Relaxed);
        drop(w.slot.put(handle));
    }
    unsafe fn discard(&self, w: NonNull<FastWrapper>) {
        // SAFETY: we own the unpublished wrapper's only reference.
        unsafe { release(w) };
    }
}

/// `Py_DECREF` of the fast frontend: dealloc + free at zero.
unsafe fn release(w: NonNull<FastWrapper>) {
    // SAFETY: the caller owns a reference.
    let wr = unsafe { w.as_ref() };
    // Release/Acquire: as `Arc`.
    if wr.refcnt.fetch_sub(1, Ordering::Release) != 1 {
        return;
    }
    wr.refcnt.load(Ordering::Acquire);
    // SAFETY: the count reached zero here; this is the only dealloc.
    match unsafe { binding_core::dealloc(&Fast, w, &wr.slot, Caching::Cache) } {
        Dealloc::Cached(baton) => match baton.settle() {
            Settled::Cached => {}
            // SAFETY: reclaim deferred to us; we own the block.
            Settled::FreeWrapper => drop(unsafe { Box::from_raw(w.as_ptr()) }),
        },
        // SAFETY: not cached: we own the block.
        Dealloc::Detached | Dealloc::NotCanonical => drop(unsafe { Box::from_raw(w.as_ptr()) }),
    }
}

/// An owned wrapper reference; dropping it releases (outside the timed section).
struct Owned(NonNull<FastWrapper>);

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { release(self.0) }
    }
}

fn lookup(handle: ObjectRef<Fast>) -> Owned {
    Owned(handle.lookup(&FastFactory).unwrap().0)
}

fn lookup_borrowed(handle: &ObjectRef<Fast>) -> Owned {
    Owned(handle.lookup(&FastFactory).unwrap().0)
}

fn object() -> ObjectRef<Fast> {
    ObjectArc::new(0u64, Fast).erase()
}

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

/// Times `op` over `iters` fresh inputs made by `setup` (setup and teardown untimed).
fn timed<I, O>(iters: u64, mut setup: impl FnMut() -> I, mut op: impl FnMut(I) -> O) -> Duration {
    let inputs: Vec<I> = (0..iters).map(|_| setup()).collect();
    let mut outputs = Vec::with_capacity(inputs.len());
    let start = Instant::now();
    for input in inputs {
        outputs.push(op(input));
    }
    let elapsed = start.elapsed();
    drop(outputs);
    elapsed
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("kernel");
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

    // Hit: a borrowed handle in (a field read), the live canonical wrapper out.
    let obj = object();
    let live = lookup(obj.clone());
    g.bench_function("lookup hit", |b| {
        b.iter_custom(|iters| {
            let t = timed(iters, || &obj, lookup_borrowed);
            record("lookup hit", t, iters);
            t
        })
    });
    g.bench_function("lookup hit, +1 handed over", |b| {
        b.iter_custom(|iters| {
            let t = timed(iters, || obj.clone(), lookup);
            record("lookup hit, +1 handed over", t, iters);
            t
        })
    });
    drop((live, obj));

    g.bench_function("revive (lookup of a cached wrapper)", |b| {
        b.iter_custom(|iters| {
            let objs: Vec<_> = (0..iters).map(|_| object()).collect();
            for o in &objs {
                drop(lookup(o.clone()));
            }
            let mut handles = objs.iter().cloned();
            let t = timed(iters, || handles.next().unwrap(), lookup);
            record("revive", t, iters);
            t
        })
    });

    g.bench_function("fresh (lookup of a detached object)", |b| {
        b.iter_custom(|iters| {
            let t = timed(iters, object, lookup);
            record("fresh", t, iters);
            t
        })
    });

    g.bench_function("dealloc + free (cache)", |b| {
        b.iter_custom(|iters| {
            let objs: Vec<_> = (0..iters).map(|_| object()).collect();
            let mut ws = objs
                .iter()
                .map(|o| lookup(o.clone()))
                .collect::<Vec<_>>()
                .into_iter();
            let t = timed(iters, || ws.next().unwrap(), drop);
            record("dealloc + free", t, iters);
            t
        })
    });

    g.bench_function("reclaim (last native ref, cached wrapper)", |b| {
        b.iter_custom(|iters| {
            let mut objs = Vec::new();
            for _ in 0..iters {
                let o = object();
                drop(lookup(o.clone()));
                objs.push(o);
            }
            let mut it = objs.into_iter();
            let t = timed(iters, || it.next().unwrap(), drop);
            record("reclaim", t, iters);
            t
        })
    });
    g.finish();
}

fn report() {
    let means = MEANS.lock().unwrap();
    let base = means
        .iter()
        .find(|(n, _)| n.starts_with("baseline"))
        .map(|m| m.1)
        .unwrap_or(f64::NAN);
    println!("\n{:<34} {:>10} {:>10}", "operation", "ns/op", "× CAS");
    for (name, ns) in means.iter() {
        println!("{name:<34} {ns:>10.2} {:>10.2}", ns / base);
    }
}

criterion_group!(kernel, benches);

fn main() {
    kernel();
    Criterion::default().configure_from_args().final_summary();
    report();
}
