//! Teeth: each historical bug, switched back on, yields a counterexample (printed, shortest by
//! BFS), through the mechanism it is known for; each passes when switched off.

use spec::check::{counterexample, exhaustive, trace};
use spec::properties::INVARIANTS;
use spec::scenarios::bug_scenario;
use spec::state::{Frame, LookupPc, Mem, State};
use spec::{Bug, Config};

/// Checks `bug`: off passes, on fails `property` with a shortest counterexample of `len` steps
/// whose last state satisfies `mechanism`.
fn teeth(bug: Bug, len: usize, mechanism: fn(&State) -> bool) {
    let (cfg, property) = bug_scenario(bug);
    teeth_at(bug, cfg, property, len, mechanism);
}

/// [`teeth`] in `bug`'s scenario changed by `adapt`, breaking `property`.
fn teeth_in(
    bug: Bug,
    adapt: fn(Config) -> Config,
    property: &'static str,
    len: usize,
    mechanism: fn(&State) -> bool,
) {
    teeth_at(bug, adapt(bug_scenario(bug).0), property, len, mechanism);
}

/// The protocol before the takeover (a frontend that never replaces a dying wrapper).
fn no_takeover(cfg: Config) -> Config {
    Config {
        takeover: false,
        ..cfg
    }
}

fn teeth_at(
    bug: Bug,
    cfg: Config,
    property: &'static str,
    len: usize,
    mechanism: fn(&State) -> bool,
) {
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

/// Whether some thread's lookup waits, after a miss, on a wrapper whose dealloc is parked on
/// that same thread.
fn waits_on_own_parked_dealloc(s: &State) -> bool {
    s.actors.iter().any(|a| {
        a.stack.iter().any(|f| match *f {
            Frame::Lookup {
                pc: LookupPc::Backoff(wait),
                ..
            } => wait.rc.is_some_and(|(w, _)| a.parked.contains(&w)),
            _ => false,
        })
    })
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
fn revive_without_rearm_replaced_alive() {
    // With the takeover, the lookup refused by the live, unarmed wrapper stops waiting and
    // replaces it: a live wrapper loses the binding.
    teeth(Bug::ReviveWithoutRearm, 30, |s| {
        violation_mentions(s, "takeover replaced a wrapper whose count is not zero")
    });
}

#[test]
fn revive_without_rearm_spins_without_takeover() {
    // A lookup is backed off, refused by a wrapper that is alive and not dying, with its
    // try-incref flag clear: nothing will ever change what it waits for.
    teeth_in(
        Bug::ReviveWithoutRearm,
        no_takeover,
        "L1 progress",
        25,
        |s| {
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
        },
    );
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
    teeth_in(
        Bug::CallbackBeforeTransition,
        no_takeover,
        "L1 progress",
        17,
        |s| {
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
        },
    );
}

#[test]
fn callback_before_transition_with_takeover_gives_up_identity_only() {
    // With the takeover, the callback's re-fetch stops waiting for its own dying wrapper and
    // replaces it: no deadlock, no safety violation, only a new address (S5's one exception).
    let (cfg, _) = bug_scenario(Bug::CallbackBeforeTransition);
    let report = exhaustive(cfg.with_bug(Bug::CallbackBeforeTransition), 2);
    assert!(
        report.failures.is_empty(),
        "{:?}",
        report.failures.iter().map(|f| f.0).collect::<Vec<_>>()
    );
    let takeover = "witness: a lookup replaced a dying wrapper (takeover)";
    assert!(!report.missing_witnesses.contains(&takeover));
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

#[test]
fn wait_for_parked_dealloc() {
    // The trashcan parked a wrapper's dealloc on a thread that then looked the object up: the
    // lookup misses on the parked wrapper and waits for a dealloc that runs only once this very
    // lookup has returned.
    teeth(Bug::WaitForParkedDealloc, 16, waits_on_own_parked_dealloc);
}

#[test]
fn takeover_without_try_incref() {
    // A lookup due to replace a wrapper it missed on replaces it, revived meanwhile, while alive.
    teeth(Bug::TakeoverWithoutTryIncref, 30, |s| {
        violation_mentions(s, "takeover replaced a wrapper whose count is not zero")
    });
}

#[test]
fn reclaim_without_gil_races_the_settle() {
    // GIL mode, the settle a plain load and store under the GIL: the foreign thread's reclaim
    // (without the GIL, not attaching first) clears IN_TRANSIT between them, and the settler's
    // store caches W over a dead object whose allocation nobody will free.
    teeth(Bug::ReclaimWithoutGil, 21, |s| {
        s.objects[0].strong == 0
            && !s.objects[0].freed
            && s.wrappers.iter().any(|w| w.mem == Mem::Cached)
    });
}

#[test]
fn serialized_without_gil_two_wrappers() {
    // GIL mode's plain loads and stores on a runtime without a GIL: two lookups each load
    // Detached and each store their fresh wrapper; both were returned as the canonical one.
    teeth(Bug::SerializedWithoutGil, 14, |s| {
        s.wrappers
            .iter()
            .filter(|w| w.claimed && w.mem == Mem::Live && !w.dying)
            .count()
            >= 2
    });
}

#[test]
fn wait_holding_gil() {
    // GIL mode with a wait that keeps the GIL: a lookup waits for a settle that the settling
    // thread can only do once it has the GIL back. L1 counts a thread waiting for the GIL as
    // blocked, and requires the holder to be able to move: here it cannot.
    teeth(Bug::WaitHoldingGil, 15, |s| {
        s.gil.is_some_and(|h| {
            matches!(
                s.actors[usize::from(h)].top(),
                Some(Frame::Lookup {
                    pc: LookupPc::Backoff(_),
                    ..
                })
            )
        })
    });
}

#[test]
fn reclaim_stale_word_defers_to_nobody() {
    // GIL mode with a reclaim that takes the GIL but acts on the word it loaded before: the
    // settler cached W in between, and reclaim's store of W|INACTIVE then defers to nobody.
    teeth(Bug::ReclaimStaleWord, 22, |s| {
        s.objects[0].strong == 0
            && !s.objects[0].freed
            && s.wrappers.iter().any(|w| w.mem == Mem::Cached)
    });
}

#[test]
fn blind_publish_gil_needs_the_reload() {
    // GIL mode: `make_fresh` lets the GIL go, so the store of the fresh wrapper must follow a
    // load made after it. Trusting the load of Detached made before it: two canonical wrappers.
    teeth_in(
        Bug::BlindPublish,
        spec::scenarios::gil,
        "S4 one wrapper",
        12,
        |s| {
            s.wrappers
                .iter()
                .filter(|w| w.claimed && w.mem == Mem::Live && !w.dying)
                .count()
                >= 2
        },
    );
}
