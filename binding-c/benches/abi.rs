//! What the C ABI's boundary costs: the same object system and wrapper runtime (written here in
//! Rust with `extern "C"` callbacks, as a C one would be) driven through the exported
//! `tether_*` functions and through the same operations without the boundary
//! (`tether::direct`), each printed as a ratio to a bare compare-exchange measured in the same
//! run. The boundary is a call plus argument checks; the table shows what that adds to a hit
//! and to a drop + refetch (dealloc, settle, revival).

use std::hint::black_box;
use std::ptr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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

#[path = "../tests/support/mod.rs"]
mod support;
use support::*;

fn bench_pair<const ABI: bool>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    names: [&'static str; 2],
) {
    let f = factory(ABI);
    let b = new_object(&RUNTIME);
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
