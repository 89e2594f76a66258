//! The model scenarios under loom: every interleaving (and weak-memory outcome) of the adapter
//! and the kernel on the model of free-threaded CPython, up to a preemption bound.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p binding-py --release --test loom`.
//! `TETHER_LOOM_BOUND` overrides the preemption bound (default 3).
#![cfg(loom)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use tether_py::runtime::AdapterFlaw;

fn explore(name: &str, body: fn(AdapterFlaw)) {
    static EXECUTIONS: AtomicUsize = AtomicUsize::new(0);
    EXECUTIONS.store(0, Relaxed);
    let bound = std::env::var("TETHER_LOOM_BOUND")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(bound);
    builder.check(move || {
        EXECUTIONS.fetch_add(1, Relaxed);
        body(AdapterFlaw::None);
    });
    let n = EXECUTIONS.load(Relaxed);
    println!("loom {name}: bound {bound}, {n} executions");
    assert!(n > 1, "loom explored a single execution");
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

#[test]
fn teeth_attach_without_count() {
    let caught = std::panic::catch_unwind(|| {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(2);
        builder.check(|| common::reclaim_vs_shutdown(AdapterFlaw::AttachWithoutCount));
    });
    assert!(
        caught.is_err(),
        "loom must find the lesson 5 race of the broken attach"
    );
    println!("loom teeth AttachWithoutCount: caught");
}
