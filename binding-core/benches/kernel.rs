//! Criterion benchmarks of the kernel's uncontended transitions, each printed as a ratio to a
//! bare compare-exchange measured in the same run.
//!
//! The frontend here is deliberately minimal (a boxed wrapper with an atomic refcount), so the
//! numbers are the kernel's cost, not a runtime's.

use std::hint::black_box;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use binding_core::model::minimal::{lookup, lookup_borrowed, object};
use criterion::{Criterion, criterion_group};

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
