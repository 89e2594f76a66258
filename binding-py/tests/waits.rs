//! The adapter's production waits under a GIL and a stop-the-world, on real threads.
//!
//! The checkers (loom, shuttle) run the kernel's waits as sleeps and have no lock that the thread
//! waited on needs; the std-thread models had none either. Here the model interpreter has a real
//! GIL (`Config::gil`): attached threads hold it, only a detach (`PyEval_SaveThread`, which every
//! back-off of a GIL-ful frontend does) or a thread's exit lets it go, and a thread that waits for
//! it longer than `max_spins` seconds reports an L1 violation. Without the GIL the model has a
//! stop-the-world (`ModelRt::stop_the_world`, the free-threaded collector's): it waits until every
//! other thread detached, and attaching waits for it to end. Each scenario makes a production
//! wait (the at-exit hook's wait for attached reclaimers; a lookup's wait after a try-incref miss)
//! wait for a thread that needs the GIL or the world; the broken variant `BackoffWithoutDetach`
//! (a back-off that only spins) shows each scenario would notice.
#![cfg(not(any(loom, feature = "shuttle")))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use tether_py::model::{Config, ModelRt};
use tether_py::runtime::{AdapterFlaw, Runtime};

/// Generous patience: the scenarios assert that no replacement happens, and a loaded machine
/// may deschedule the dealloc's thread for a while (the broken variant never lets it run, so
/// it still replaces, after this long).
const PATIENCE: std::time::Duration = std::time::Duration::from_millis(500);

fn gil_runtime(flaw: AdapterFlaw) -> ModelRt {
    ModelRt::new(Config {
        max_spins: 3,
        flaw,
        gil: true,
        takeover_patience: PATIENCE,
    })
}

/// Joins `h` detached (as `Thread.join` does), re-raising its panic with its own message.
fn join<T>(rt: &ModelRt, h: std::thread::JoinHandle<T>) -> T {
    match rt.allow_threads(|| h.join()) {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e),
    }
}

/// The at-exit hook runs with the GIL while a foreign thread, counted as attached for a reclaim,
/// waits for the GIL to free a cached wrapper and its Python payload: the hook's wait for the
/// count must let the GIL go, or neither thread ever proceeds.
fn shutdown_lets_an_attaching_reclaimer_take_the_gil(flaw: AdapterFlaw) {
    let rt = gil_runtime(flaw);
    let class = rt.new_type("Inner", None, false);
    let plain = rt.new_type("payload", None, true);
    let main = rt.python_thread();
    let x = rt.construct(1, class, Some(rt.py_object(plain)));
    let h = x.handle().expect("a constructed wrapper has a handle");
    drop(x); // cached: the reclaim must attach to free it
    let foreign = std::thread::spawn(move || drop(h));
    // The reclaimer counts itself attached, then waits for the GIL, which we hold.
    while rt.state().attached_reclaimers() == 0 {
        std::thread::yield_now();
    }
    rt.interp().shutdown();
    join(&rt, foreign);
    rt.finalize();
    drop(main);
    // Native blocks are all freed; Python objects reached only after the hook may be leaked.
    rt.assert_quiescent_after_shutdown();
}

/// A wrapper's dealloc lets the GIL go between its count reaching zero and its transition (as a
/// dealloc that backs off does); another thread looks the object up meanwhile, misses on the dead
/// wrapper and waits. That wait must let the GIL go so the dealloc can finish: then the lookup
/// revives the wrapper at its address. A wait that keeps the GIL ends only by replacing the
/// wrapper (S5 lost for no reason: with a GIL and no parked dealloc, no replacement may happen).
fn a_missed_lookup_lets_the_dealloc_take_the_gil(flaw: AdapterFlaw) {
    let rt = gil_runtime(flaw);
    let class = rt.new_type("Inner", None, false);
    let main = rt.python_thread();
    let x = rt.construct(1, class, None);
    let addr = x.addr();
    let h = x.handle().expect("a constructed wrapper has a handle");
    let looking = Arc::new(AtomicBool::new(false));
    let looker = {
        let (rt, h, looking) = (rt.clone(), h.clone(), looking.clone());
        std::thread::spawn(move || {
            let _py = rt.python_thread();
            looking.store(true, Relaxed);
            rt.lookup(&h).addr()
        })
    };
    {
        let (rt, looking) = (rt.clone(), looking.clone());
        rt.clone().on_next_untrack(move || {
            // Inside the dealloc: count zero, word still Active. Let the looker in.
            rt.allow_threads(|| {
                while !looking.load(Relaxed) {
                    std::thread::yield_now();
                }
            });
        });
    }
    drop(x);
    let found = join(&rt, looker);
    let replaced = rt.stats().replaced.load(Relaxed);
    assert_eq!(
        replaced, 0,
        "S5 violated: a lookup replaced a wrapper under a GIL, though no dealloc was parked"
    );
    assert_eq!(found, addr, "S5 violated: the revival moved");
    drop(h);
    drop(main);
    rt.assert_quiescent();
}

/// Free-threaded: a wrapper's dealloc detaches between its count reaching zero and its
/// transition just as the collector stops the world, so it cannot re-attach until the world runs
/// again; another thread's lookup misses on the dead wrapper meanwhile. The lookup's wait must
/// detach (after its first few spins), or the stop-the-world never completes, the dealloc never
/// resumes, and the lookup ends only by replacing the wrapper.
fn a_missed_lookup_lets_a_stop_the_world_through(flaw: AdapterFlaw) {
    let rt = ModelRt::new(Config {
        max_spins: 3,
        flaw,
        gil: false,
        takeover_patience: PATIENCE,
    });
    let class = rt.new_type("Inner", None, false);
    let main = rt.python_thread();
    let x = rt.construct(1, class, None);
    let addr = x.addr();
    let h = x.handle().expect("a constructed wrapper has a handle");
    let dying = Arc::new(AtomicBool::new(false));
    let looking = Arc::new(AtomicBool::new(false));
    let looker = {
        let (rt, h, dying, looking) = (rt.clone(), h.clone(), dying.clone(), looking.clone());
        std::thread::spawn(move || {
            let _py = rt.python_thread();
            // Only once the dealloc is under way: a lookup before it would simply hit (no GIL
            // keeps this thread out meanwhile), and the scenario would test nothing.
            rt.allow_threads(|| {
                while !dying.load(Relaxed) {
                    std::thread::yield_now();
                }
            });
            looking.store(true, Relaxed);
            rt.lookup(&h).addr()
        })
    };
    let collector = {
        let (rt, looking) = (rt.clone(), looking.clone());
        std::thread::spawn(move || {
            let _py = rt.python_thread();
            while !looking.load(Relaxed) {
                std::thread::yield_now();
            }
            rt.stop_the_world();
        })
    };
    {
        let (rt, dying) = (rt.clone(), dying.clone());
        rt.clone().on_next_untrack(move || {
            // Inside the dealloc: count zero, word still Active. Detached until the collector
            // has asked to stop the world (not merely decided to: re-attaching before the
            // request would let the dealloc finish first); re-attaching then waits for the world
            // to run again.
            dying.store(true, Relaxed);
            rt.allow_threads(|| {
                while rt.stops_requested() == 0 {
                    std::thread::yield_now();
                }
            });
        });
    }
    drop(x);
    let found = join(&rt, looker);
    join(&rt, collector);
    let replaced = rt.stats().replaced.load(Relaxed);
    assert_eq!(
        replaced, 0,
        "S5 violated: a lookup replaced a wrapper whose dealloc only waited for a stop-the-world"
    );
    assert_eq!(found, addr, "S5 violated: the revival moved");
    drop(h);
    drop(main);
    rt.assert_quiescent();
}

#[test]
fn production_waits_let_the_gil_and_the_world_go() {
    for _ in 0..20 {
        shutdown_lets_an_attaching_reclaimer_take_the_gil(AdapterFlaw::None);
        a_missed_lookup_lets_the_dealloc_take_the_gil(AdapterFlaw::None);
        a_missed_lookup_lets_a_stop_the_world_through(AdapterFlaw::None);
    }
    println!("waits: production waits let the GIL and the world go (20 runs each)");
}

/// Runs `body` with the broken back-off and returns the violation it reports.
fn caught(body: fn(AdapterFlaw)) -> String {
    let err = std::panic::catch_unwind(|| body(AdapterFlaw::BackoffWithoutDetach))
        .expect_err("the GIL model must catch a back-off that does not detach");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn teeth_backoff_without_detach_deadlocks_the_at_exit_wait() {
    let msg = caught(shutdown_lets_an_attaching_reclaimer_take_the_gil);
    assert!(msg.contains("L1 violated"), "{msg}");
    println!(
        "gil teeth BackoffWithoutDetach (shutdown): {}",
        msg.lines().next().unwrap_or("")
    );
}

#[test]
fn teeth_backoff_without_detach_stalls_a_stop_the_world() {
    let msg = caught(a_missed_lookup_lets_a_stop_the_world_through);
    assert!(
        msg.contains("S5 violated") || msg.contains("L1 violated"),
        "{msg}"
    );
    println!(
        "stw teeth BackoffWithoutDetach: {}",
        msg.lines().next().unwrap_or("")
    );
}

#[test]
fn teeth_backoff_without_detach_replaces_a_wrapper_needlessly() {
    let msg = caught(a_missed_lookup_lets_the_dealloc_take_the_gil);
    assert!(
        msg.contains("S5 violated") || msg.contains("L1 violated"),
        "{msg}"
    );
    println!(
        "gil teeth BackoffWithoutDetach (lookup): {}",
        msg.lines().next().unwrap_or("")
    );
}
