//! Teeth: each historical bug, switched back on, yields a counterexample (printed, shortest by
//! BFS), through the mechanism it is known for; each passes when switched off.

use spec::Bug;
use spec::check::{counterexample, exhaustive, trace};
use spec::properties::INVARIANTS;
use spec::scenarios::bug_scenario;
use spec::state::{Frame, LookupPc, Mem, State};

/// Checks `bug`: off passes, on fails `property` with a shortest counterexample of `len` steps
/// whose last state satisfies `mechanism`. Returns the last state.
fn teeth(bug: Bug, len: usize, mechanism: fn(&State) -> bool) {
    let (cfg, property) = bug_scenario(bug);
    let off = exhaustive(cfg.clone(), 2);
    assert!(
        off.failures.is_empty(),
        "{bug:?} off: {:?}",
        off.failures.iter().map(|f| f.0).collect::<Vec<_>>()
    );
    let on = cfg.with_bug(bug);
    let found = counterexample(&on, property)
        .unwrap_or_else(|| panic!("{bug:?}: the checker found no counterexample to {property}"));
    let steps = found.shortest.clone().into_actions().len();
    println!(
        "[spec] {bug:?}: {property} broken; first counterexample {} steps, shortest {steps} steps \
         ({} states searched)\n{}",
        found.first.clone().into_actions().len(),
        found.states,
        trace(&on, &found.shortest)
    );
    let last = found.shortest.last_state().clone();
    let prop = INVARIANTS
        .iter()
        .find(|p| p.name == property)
        .expect("known property");
    assert!(
        !(prop.holds)(&on, &last),
        "the trace must end in a violation"
    );
    assert!(
        mechanism(&last),
        "{bug:?}: the counterexample is not the known mechanism"
    );
    assert_eq!(
        steps, len,
        "{bug:?}: shortest counterexample changed; update docs/spec.md"
    );
}

fn violation_mentions(s: &State, what: &str) -> bool {
    s.violation.is_some_and(|v| v.contains(what))
}

#[test]
fn bump_before_transition_cython_7769() {
    teeth(Bug::BumpBeforeTransition, 16, |s| {
        violation_mentions(s, "cython#7769")
    });
}

#[test]
fn revive_without_rearm_spins() {
    // A lookup is backed off, refused by a wrapper that is alive and not dying, with its
    // try-incref flag clear: nothing will ever change what it waits for.
    teeth(Bug::ReviveWithoutRearm, 25, |s| {
        s.actors
            .iter()
            .flat_map(|a| a.stack.iter())
            .any(|f| match *f {
                Frame::Lookup {
                    pc: LookupPc::Backoff(wait),
                    ..
                } => wait.rc.is_some_and(|(w, _)| {
                    let w = &s.wrappers[usize::from(w)];
                    w.mem == Mem::Live && !w.dying && !w.rc.maybe_weakref && w.rc.total() > 0
                }),
                _ => false,
            })
    });
}

#[test]
fn backoff_before_untrack_gh_135909() {
    teeth(Bug::BackoffBeforeUntrack, 17, |s| {
        violation_mentions(s, "gh-135909")
    });
}

#[test]
fn probe_header_tvm_ffi_696() {
    teeth(Bug::ProbeHeader, 2, |s| {
        violation_mentions(s, "tvm-ffi #696")
    });
}

#[test]
fn blind_publish_two_wrappers() {
    // Two live wrappers of the object were each returned as the canonical one.
    teeth(Bug::BlindPublish, 12, |s| {
        s.wrappers
            .iter()
            .filter(|w| w.claimed && w.mem == Mem::Live && !w.dying)
            .count()
            >= 2
    });
}

#[test]
fn first_settler_frees() {
    // The allocation is gone while the settler still holds the baton it will CAS.
    teeth(Bug::FirstSettlerFrees, 18, |s| {
        s.objects[0].freed
            && s.actors
                .iter()
                .flat_map(|a| a.stack.iter())
                .any(|f| matches!(f, Frame::Dealloc { .. }))
    });
}

#[test]
fn unserialized_move_requirement() {
    teeth(Bug::UnserializedMove, 26, |s| {
        violation_mentions(s, "after its allocation was freed")
    });
}

#[test]
fn callback_before_transition_requirement() {
    // The only in-flight thread waits inside its own dealloc, on its own dying wrapper.
    teeth(Bug::CallbackBeforeTransition, 17, |s| {
        s.actors.iter().any(|a| {
            a.stack.len() >= 2
                && matches!(a.stack[0], Frame::Dealloc { .. })
                && matches!(
                    a.top(),
                    Some(Frame::Lookup {
                        pc: LookupPc::Backoff(_),
                        ..
                    })
                )
        })
    });
}

#[test]
fn cache_with_weakrefs_requirement() {
    teeth(Bug::CacheWithWeakrefs, 15, |s| {
        s.actors.iter().any(|a| {
            a.stack.len() >= 2
                && matches!(a.stack[0], Frame::Dealloc { .. })
                && matches!(
                    a.top(),
                    Some(Frame::Lookup {
                        pc: LookupPc::Backoff(_),
                        ..
                    })
                )
        })
    });
}
