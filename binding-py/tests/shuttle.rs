//! The model scenarios under shuttle: randomized and PCT schedules over the adapter and the
//! kernel (both run their atomics on shuttle's scheduler through the kernel's sync facade).
//!
//! Run: `cargo test -p binding-py --release --features shuttle --test shuttle`.
//! `TETHER_SHUTTLE_ITERS` sets the schedules per scenario and scheduler (default 2,000).
//! A failure prints the schedule to pass to `shuttle::replay`.
#![cfg(all(feature = "shuttle", not(loom)))]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use tether_py::runtime::AdapterFlaw;

fn iterations() -> usize {
    std::env::var("TETHER_SHUTTLE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn explore(name: &str, body: fn(AdapterFlaw)) {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    RUNS.store(0, Relaxed);
    let n = iterations();
    let counted = move || {
        RUNS.fetch_add(1, Relaxed);
        body(AdapterFlaw::None)
    };
    shuttle::check_pct(counted, n, 3);
    shuttle::check_random(counted, n);
    let runs = RUNS.load(Relaxed);
    assert_eq!(runs, 2 * n, "every schedule ran the scenario");
    println!("shuttle {name}: {n} PCT(depth 3) + {n} random schedules ({runs} executions)");
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            explore(stringify!($name), common::$name);
        }
    )*};
}

common::for_each_scenario!(scenarios);
