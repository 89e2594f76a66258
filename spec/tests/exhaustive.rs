//! Exhaustive checks of the design as built: every reachable state of each scenario satisfies
//! S1–S6 and L1, reaches the witnesses it must, and (for the walked scenarios) the reachable
//! graph has no cycle, so every lookup returns.

use std::time::Instant;

use spec::check::{exhaustive, trace};
use spec::explore::{Exploration, explore};
use spec::scenarios::{self, Scenario};

fn check(sc: Scenario) {
    let report = exhaustive(sc.cfg.clone(), 2);
    println!("[spec] {}: {}", sc.name, report.summary());
    for (name, path) in &report.failures {
        println!("counterexample to {name}:\n{}", trace(&sc.cfg, path));
    }
    assert!(
        report.failures.is_empty(),
        "{}: invariants broken: {:?}",
        sc.name,
        report.failures.iter().map(|f| f.0).collect::<Vec<_>>()
    );
    for w in sc.witness_names() {
        assert!(
            !report.missing_witnesses.contains(&w),
            "{}: never reached \"{w}\": the model cannot exercise that path",
            sc.name
        );
    }
    assert!(report.unique_states > 1000 || sc.cfg.objects.iter().all(|o| !o.header));
}

fn acyclic(sc: Scenario) -> Exploration {
    let start = Instant::now();
    let walk = explore(&sc.cfg);
    println!(
        "[spec] {} (graph walk): {} states, {} edges, {} terminal, {:.2?}",
        sc.name,
        walk.states,
        walk.edges,
        walk.terminal,
        start.elapsed()
    );
    assert!(
        walk.cycle.is_none(),
        "{}: livelock, a cycle of steps: {:?}",
        sc.name,
        walk.cycle
    );
    assert!(walk.terminal > 0);
    walk
}

#[test]
fn one_object_three_threads_no_takeover() {
    check(scenarios::three_threads_no_takeover());
}

#[test]
fn one_object_three_threads_all_options() {
    check(scenarios::three_threads_all_options());
}

#[test]
fn one_object_two_threads_all_options() {
    check(scenarios::two_threads_all_options());
}

#[test]
fn outer_inner_no_takeover() {
    check(scenarios::outer_inner_no_takeover());
}

#[test]
fn outer_inner_all_options() {
    check(scenarios::outer_inner_all_options());
}

#[test]
fn finalizer_type() {
    check(scenarios::finalizer());
}

#[test]
fn object_without_header() {
    check(scenarios::legacy());
}

#[test]
fn trashcan() {
    check(scenarios::trashcan());
}

#[test]
fn trashcan_all_options() {
    check(scenarios::trashcan_all_options());
}

#[test]
fn trashcan_outer_inner() {
    check(scenarios::trashcan_outer_inner());
}

#[test]
fn no_livelock_trashcan() {
    acyclic(scenarios::trashcan());
    acyclic(scenarios::trashcan_all_options());
    acyclic(scenarios::trashcan_outer_inner());
}

#[test]
fn no_livelock_three_threads() {
    acyclic(scenarios::three_threads_no_takeover());
}

#[test]
fn no_livelock_all_options() {
    acyclic(scenarios::two_threads_all_options());
    acyclic(scenarios::three_threads_all_options());
}

#[test]
fn no_livelock_outer_inner() {
    acyclic(scenarios::outer_inner_all_options());
}

// GIL mode (a serialized frontend on a runtime with a GIL).

#[test]
fn gil_one_object_three_threads() {
    check(scenarios::gil_three_threads());
}

#[test]
fn gil_one_object_three_threads_all_options() {
    check(scenarios::gil_three_threads_all_options());
}

#[test]
fn gil_one_object_two_threads_all_options() {
    check(scenarios::gil_two_threads_all_options());
}

#[test]
fn gil_outer_inner_all_options() {
    check(scenarios::gil_outer_inner_all_options());
}

#[test]
fn gil_outer_inner() {
    check(scenarios::gil_outer_inner());
}

#[test]
fn gil_trashcan_all_options() {
    check(scenarios::gil_trashcan_all_options());
}

/// Every GIL-mode graph is acyclic, and in GIL mode no word is ever locked: every binding-word
/// write is a plain store, under the GIL but for reclaim's detach after a refused attach.
#[test]
fn gil_no_livelock_no_lock() {
    for sc in scenarios::gil_scenarios() {
        let walk = acyclic(sc.clone());
        let locked: Vec<_> = walk
            .word_edges
            .iter()
            .filter(|(from, to, _)| from.contains("Locked") || to.contains("Locked"))
            .collect();
        assert!(
            locked.is_empty(),
            "{}: a locked word in GIL mode: {locked:?}",
            sc.name
        );
    }
}

/// Tens of millions of states and several GiB: `cargo test --release -p spec -- --ignored`.
#[test]
#[ignore]
fn deep_outer_inner_three_threads() {
    check(scenarios::deep());
}

/// The default run with the takeover: tens of millions of states (`--ignored`).
#[test]
#[ignore]
fn deep_one_object_three_threads() {
    check(scenarios::three_threads());
}

/// The default run with the takeover: millions of states (`--ignored`).
#[test]
#[ignore]
fn deep_outer_inner() {
    check(scenarios::outer_inner());
}

/// GIL mode, three threads, rebind (`--ignored`).
#[test]
#[ignore]
fn deep_gil_three_threads_rebind() {
    check(scenarios::gil_deep_scenarios().remove(0));
}

/// GIL mode, three threads, weak references (`--ignored`).
#[test]
#[ignore]
fn deep_gil_three_threads_weakrefs() {
    check(scenarios::gil_deep_scenarios().remove(1));
}

/// GIL mode, outer/inner with three threads (`--ignored`).
#[test]
#[ignore]
fn deep_gil_outer_inner_three_threads() {
    check(scenarios::gil_deep_scenarios().remove(2));
}
