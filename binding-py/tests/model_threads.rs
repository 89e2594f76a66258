//! Every model scenario on real std threads, many times (fast, nondeterministic): the adapter's
//! paths on the model of free-threaded CPython under the operating system's scheduler.
#![cfg(not(any(loom, feature = "shuttle")))]

mod common;

use tether_py::runtime::AdapterFlaw;

fn runs() -> usize {
    std::env::var("TETHER_MODEL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

#[test]
fn scenarios_on_std_threads() {
    // Real threads may wait on a descheduled peer for a while: L1 is reported after 30 s of
    // uninterrupted back-off (see the model's `note_backoff`).
    // SAFETY: set before any thread of this test binary reads the environment.
    unsafe { std::env::set_var("TETHER_MAX_SPINS", "30") };
    for (name, body) in common::ALL {
        for _ in 0..runs() {
            body(AdapterFlaw::None);
        }
        println!("std {name}: {} runs", runs());
    }
}

/// A lookup misses on a dying wrapper (its try-incref fails) and waits; meanwhile the wrapper is
/// cached and revived *at the same address* by another thread, which keeps it alive. The word
/// reads Active(W) again, the value the waiter saw before its miss: a wait that only watches for
/// the word to change never ends, although W is alive and a retry would hit it (L1).
///
/// This is a liveness bug in the kernel's `BindingWord::wait_for_change` on the hit-miss path
/// (binding-core commit 758e641, "kernel waits watch the word instead of re-locking"); see
/// `binding-py/KERNEL_REQUESTS.md`. Ignored until the kernel retries the lock after a miss.
#[test]
fn lookup_that_missed_a_dying_wrapper_sees_its_revival() {
    // SAFETY: set before any thread of this test binary reads the environment.
    unsafe { std::env::set_var("TETHER_MAX_SPINS", "10") };
    let w = common::world(AdapterFlaw::None);
    let main = w.rt.python_thread();
    let x = w.rt.construct(1, w.class, None);
    let addr = x.addr();
    let h = x.handle().unwrap();
    let looker = std::sync::Arc::new(std::sync::Mutex::new(None));
    {
        let (rt, h, looker) = (w.rt.clone(), h.clone(), looker.clone());
        w.rt.on_next_untrack(move || {
            // x's count reached zero on this thread; its transition has not happened yet.
            rt.close_gate();
            let t = {
                let rt = rt.clone();
                std::thread::spawn(move || {
                    let _py = rt.python_thread();
                    rt.lookup(&h).addr()
                })
            };
            rt.wait_for_gate(); // the lookup missed on the dying x and is waiting
            *looker.lock().unwrap() = Some(t);
        });
    }
    drop(x); // dealloc: the hook runs the missed lookup; then the transition; x is cached
    let y = w.rt.lookup(&h); // revived at the same address, and kept alive
    assert_eq!(y.addr(), addr);
    w.rt.open_gate();
    let t = looker.lock().unwrap().take().expect("the hook ran");
    assert_eq!(
        t.join().unwrap(),
        addr,
        "the waiter must find the revived wrapper"
    );
    drop((y, h));
    drop(main);
    w.rt.assert_quiescent();
}
