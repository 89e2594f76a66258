//! The model's teeth: each deliberately broken adapter variant (`AdapterFlaw`) reproduces one
//! upstream lesson, and the scenario aimed at it must fail. A model that let these pass would
//! prove nothing about the correct adapter.
//!
//! Runs under shuttle (`--features shuttle`); the finalizer and weak reference flaws fail on
//! every schedule, the attach flaw needs the interleaving shuttle has to find.
#![cfg(all(feature = "shuttle", not(loom)))]

mod common;

use tether_py::runtime::AdapterFlaw;

fn caught(flaw: AdapterFlaw, body: fn(AdapterFlaw), iterations: usize) -> String {
    let result = std::panic::catch_unwind(move || {
        shuttle::check_random(move || body(flaw), iterations);
    });
    let err = result.expect_err("the model must catch the broken variant");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn finalizer_before_detach_is_lesson_2() {
    let msg = caught(
        AdapterFlaw::FinalizerBeforeDetach,
        common::finalizer_refetch,
        100,
    );
    println!(
        "teeth FinalizerBeforeDetach: {}",
        msg.lines().next().unwrap_or("")
    );
}

#[test]
fn weakrefs_before_transition_is_lesson_7() {
    let msg = caught(
        AdapterFlaw::WeakrefsBeforeTransition,
        common::weakref_callback_refetch,
        100,
    );
    println!(
        "teeth WeakrefsBeforeTransition: {}",
        msg.lines().next().unwrap_or("")
    );
}

#[test]
fn attach_without_count_is_lesson_5() {
    let msg = caught(
        AdapterFlaw::AttachWithoutCount,
        common::reclaim_vs_shutdown,
        20_000,
    );
    println!(
        "teeth AttachWithoutCount: {}",
        msg.lines().next().unwrap_or("")
    );
}

#[test]
fn untrack_after_detach_is_lesson_4() {
    let msg = caught(
        AdapterFlaw::UntrackAfterDetach,
        common::finalizer_refetch,
        20_000,
    );
    println!(
        "teeth UntrackAfterDetach: {}",
        msg.lines().next().unwrap_or("")
    );
}

#[test]
fn never_replace_waits_for_a_parked_dealloc() {
    let msg = caught(
        AdapterFlaw::NeverReplace,
        common::parked_dealloc_refetch,
        100,
    );
    assert!(
        msg.contains("L1 violated") || msg.contains("deadlock"),
        "{msg}"
    );
    println!("teeth NeverReplace: {}", msg.lines().next().unwrap_or(""));
}

#[test]
fn leave_count_before_release_is_lesson_5() {
    let msg = caught(
        AdapterFlaw::LeaveCountBeforeRelease,
        common::reclaim_vs_shutdown,
        20_000,
    );
    assert!(msg.contains("lesson 5 violated"), "{msg}");
    println!(
        "teeth LeaveCountBeforeRelease: {}",
        msg.lines().next().unwrap_or("")
    );
}
