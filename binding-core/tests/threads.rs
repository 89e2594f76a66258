//! Every loom/shuttle scenario on real std threads (also the miri and ThreadSanitizer target),
//! plus a many-thread stress test of one shared object.

mod common;

use binding_core::model::{Config, Foreign, ModelFrontend, Own, System};
use std::sync::Arc;

fn rounds() -> usize {
    if cfg!(miri) { 2 } else { 50 }
}

/// Runs every two-actor cell and three-actor flow of one kernel mode and object system.
fn every_scenario<const GIL: bool, S: System>(label: &str) {
    for (name, body) in common::cells::<0, GIL, S>()
        .into_iter()
        .chain(common::flows::<0, GIL, S>())
    {
        for _ in 0..rounds() {
            body();
        }
        println!("std threads, {label} {name}: {} rounds", rounds());
    }
}

#[test]
fn every_scenario_on_std_threads() {
    every_scenario::<false, Own>("own objects");
}

/// GIL mode: the kernel's plain-store transitions under the model's global lock, on real threads
/// (miri and ThreadSanitizer then check that the lock and the two compare-exchanges left, the
/// settle and reclaim's deferral, order every access).
#[test]
fn every_scenario_on_std_threads_gil_mode() {
    every_scenario::<true, Own>("GIL mode");
}

/// A foreign object system (its own count, reclaim called by it): miri and ThreadSanitizer check
/// that the contract's hand-offs (the deferred free through `NativeObject::free`) are ordered.
#[test]
fn every_scenario_on_std_threads_foreign_objects() {
    every_scenario::<false, Foreign>("foreign objects");
}

#[test]
fn many_threads_refetch_one_object() {
    let (threads, iters) = if cfg!(miri) { (3, 20) } else { (8, 2_000) };
    let rt: ModelFrontend = ModelFrontend::new(Config {
        max_spins: 1_000_000,
        yield_after: 4,
        // No dealloc is parked here, so no lookup may ever replace a wrapper: S5 is asserted
        // strictly, however slowly the threads run (miri's clock, an oversubscribed machine).
        takeover_patience: std::time::Duration::MAX,
        ..Config::default()
    });
    let obj = rt.object(1, None).erase();
    let first = rt.lookup(obj.clone()).addr();
    let barrier = Arc::new(std::sync::Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (rt, obj, barrier) = (rt.clone(), obj.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..iters {
                    let a = rt.lookup(obj.clone());
                    assert_eq!(a.addr(), first, "S5 violated in thread {t} at {i}");
                    if i % 3 == 0 {
                        let b = rt.lookup(obj.clone());
                        assert_eq!(a.addr(), b.addr(), "S4 violated");
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    drop(obj);
    rt.assert_quiescent();
}
