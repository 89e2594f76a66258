//! Conformance: random operation sequences through `binding-core` (model frontend) and through
//! the spec's sequential semantics; the first divergence in state or effects fails
//! (`spec::conformance`, `docs/spec.md` "Conformance"). The same driver runs under cargo-fuzz
//! (`fuzz/`).
//!
//! Teeth: the deliberately broken kernel variants that a single thread can expose, and one of the
//! model's own bug switches, must each be found; the shortest sequence is printed.

use std::cell::RefCell;
use std::sync::Once;
use std::time::Instant;

use binding_core::flaw::Flaw;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestError, TestRunner};
use spec::conformance::{
    self, Coverage, Divergence, FOREIGN_THREAD, Foreign, MAX_OBJECTS, Own, Program,
};
use spec::sequential::Op;
use spec::{Bug, Bugs, ObjSpec};

/// Random programs per run of the main property (a few seconds in a debug build);
/// `TETHER_CONFORMANCE_CASES` overrides it.
fn cases() -> u32 {
    std::env::var("TETHER_CONFORMANCE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

fn obj_spec() -> impl Strategy<Value = ObjSpec> {
    (
        prop::bool::weighted(0.2),
        any::<bool>(),
        prop::option::weighted(0.4, 0..MAX_OBJECTS as u8),
    )
        .prop_map(|(finalizer, rooted, holds)| ObjSpec {
            header: true,
            finalizer,
            rooted,
            holds,
        })
}

fn op() -> impl Strategy<Value = Op> {
    let thread = 0..2u8;
    let small = 0..4u8;
    prop_oneof![
        6 => (thread.clone(), small.clone(), prop::bool::weighted(0.1)).prop_map(
            |(thread, obj, alloc_fails)| Op::Lookup { thread, obj, alloc_fails }
        ),
        4 => (thread.clone(), small.clone()).prop_map(|(thread, nth)| Op::DropWrapper { thread, nth }),
        1 => (thread.clone(), small.clone()).prop_map(|(thread, nth)| Op::DropParked { thread, nth }),
        1 => thread.clone().prop_map(|thread| Op::Unwind { thread }),
        1 => (thread.clone(), small.clone()).prop_map(|(thread, nth)| Op::Move { thread, nth }),
        1 => (thread.clone(), small.clone()).prop_map(|(thread, nth)| Op::Detach { thread, nth }),
        1 => small.clone().prop_map(|obj| Op::CloneNative { obj }),
        1 => (thread, small.clone()).prop_map(|(thread, nth)| Op::StashHandle { thread, nth }),
        2 => small.prop_map(|obj| Op::DropNative { obj }),
        1 => Just(Op::Shutdown),
    ]
}

fn program() -> impl Strategy<Value = Program> {
    (
        prop::collection::vec(obj_spec(), 1..=MAX_OBJECTS),
        prop::collection::vec(op(), 0..48),
    )
        .prop_map(|(objects, ops)| Program { objects, ops })
}

fn runner(cases: u32, persist: bool) -> TestRunner {
    TestRunner::new(Config {
        cases,
        source_file: Some(file!()),
        failure_persistence: if persist {
            Some(Box::new(FileFailurePersistence::WithSource(
                "proptest-regressions",
            )))
        } else {
            None
        },
        ..Config::default()
    })
}

/// Every program runs over the kernel's own objects and over the foreign object system; each
/// must conform, and each system's runs must take every path.
#[test]
fn kernel_conforms_to_the_sequential_spec() {
    let total = RefCell::new([Coverage::default(); 2]);
    let cases = cases();
    let start = Instant::now();
    let result = runner(cases, true).run(&program(), |p| {
        let fail = |d: Divergence| TestCaseError::fail(d.to_string());
        let own = conformance::run::<0, Own>(&p, Bugs::NONE).map_err(fail)?;
        let foreign = conformance::run::<0, Foreign>(&p, Bugs::NONE).map_err(fail)?;
        let mut t = total.borrow_mut();
        t[0] += own;
        t[1] += foreign;
        Ok(())
    });
    let elapsed = start.elapsed();
    if let Err(e) = result {
        panic!("{e}");
    }
    let [own, foreign] = total.into_inner();
    let runs = 2.0 * f64::from(cases);
    let applied = own.applied + foreign.applied;
    println!(
        "[spec] conformance: {cases} programs over 2 object systems, {applied} operations in \
         {elapsed:.2?}: {:.0} runs/s, {:.0} operations/s",
        runs / elapsed.as_secs_f64(),
        applied as f64 / elapsed.as_secs_f64(),
    );
    for (system, c) in [("Own", own), ("Foreign", foreign)] {
        println!("[spec] conformance over {system}: {c:?}");
        assert_every_path(system, &c);
    }
}

/// Not vacuous: every path of the protocol a single thread can take was taken.
fn assert_every_path(system: &str, c: &Coverage) {
    let paths = [
        ("hit", c.hits),
        ("revival in place", c.revivals),
        ("fresh wrapper", c.fresh),
        ("failed allocation", c.failed),
        ("move rebinding the word", c.rebinds),
        ("detach", c.detaches),
        ("reclaim deferring to the settler", c.deferred_settles),
        ("reclaim freeing a cached wrapper", c.reclaimed_cached),
        ("cached wrapper leaked after shutdown", c.leaked),
        ("native free on the foreign thread", c.foreign_frees),
        (
            "inner object freed by the outer value's drop",
            c.nested_frees,
        ),
        ("dealloc parked by the trashcan", c.parked),
        ("dying wrapper replaced (takeover)", c.replaced),
    ];
    for (what, n) in paths {
        assert!(n > 0, "no program over {system} exercised: {what}");
    }
}

fn lookup(thread: u8, obj: u8) -> Op {
    Op::Lookup {
        thread,
        obj,
        alloc_fails: false,
    }
}

/// What a hand-written sequence must exercise.
type Expect = fn(&Coverage) -> bool;

/// Hand-written sequences through each path, with what they must exercise.
#[test]
fn known_sequences_conform() {
    let outer_inner = vec![
        ObjSpec {
            holds: Some(1),
            ..ObjSpec::PLAIN
        },
        ObjSpec {
            rooted: false,
            ..ObjSpec::PLAIN
        },
    ];
    let cases: Vec<(Vec<ObjSpec>, Vec<Op>, Expect)> = vec![
        // Fresh, hit from the other thread, cache, revive; the root goes first and the wrapper's
        // death frees everything (reclaim defers to the settler).
        (
            vec![ObjSpec::PLAIN],
            vec![
                lookup(0, 0),
                lookup(1, 0),
                Op::DropWrapper { thread: 0, nth: 0 },
                Op::DropWrapper { thread: 1, nth: 0 },
                lookup(1, 0),
                Op::DropNative { obj: 0 },
                Op::DropWrapper { thread: 1, nth: 0 },
            ],
            |c| c.hits == 1 && c.revivals == 1 && c.deferred_settles == 1,
        ),
        // The inner object is reached through the outer wrapper, cached, and freed with the outer
        // value on the foreign thread, which attaches to free the cached wrapper.
        (
            outer_inner.clone(),
            vec![
                lookup(0, 0),
                lookup(0, 1),
                Op::DropWrapper { thread: 0, nth: 1 },
                Op::DropWrapper { thread: 0, nth: 0 },
                Op::DropNative { obj: 0 },
            ],
            |c| c.nested_frees == 1 && c.reclaimed_cached == 2 && c.foreign_frees == 1,
        ),
        // The trashcan parks the inner wrapper's dealloc; the same thread reads the attribute
        // again and replaces the parked wrapper; the unwind runs the late dealloc, which finds
        // itself not canonical. Then the other thread replaces a wrapper parked on this one.
        (
            outer_inner.clone(),
            vec![
                lookup(0, 0),
                lookup(0, 1),
                Op::DropParked { thread: 0, nth: 1 },
                lookup(0, 1),
                Op::Unwind { thread: 0 },
                Op::DropParked { thread: 0, nth: 1 },
                lookup(1, 0),
                lookup(1, 1),
                Op::Unwind { thread: 0 },
            ],
            |c| c.parked == 2 && c.replaced == 2,
        ),
        // After shutdown, reclaim leaks the cached wrappers.
        (
            outer_inner,
            vec![
                lookup(1, 0),
                lookup(1, 1),
                Op::DropWrapper { thread: 1, nth: 0 },
                Op::DropWrapper { thread: 1, nth: 0 },
                Op::Shutdown,
            ],
            |c| c.leaked == 2,
        ),
        // Failed allocation, move, detach, a stashed handle outliving every wrapper.
        (
            vec![ObjSpec {
                finalizer: true,
                ..ObjSpec::PLAIN
            }],
            vec![
                Op::Lookup {
                    thread: 0,
                    obj: 0,
                    alloc_fails: true,
                },
                lookup(0, 0),
                Op::Move { thread: 0, nth: 0 },
                Op::StashHandle { thread: 0, nth: 1 },
                Op::CloneNative { obj: 0 },
                Op::Detach { thread: 0, nth: 1 },
                lookup(1, 0),
            ],
            |c| c.failed == 1 && c.rebinds == 1 && c.detaches == 1 && c.fresh == 2,
        ),
    ];
    for (objects, ops, expect) in cases {
        let p = Program { objects, ops };
        for c in [
            conformance::run::<0, Own>(&p, Bugs::NONE),
            conformance::run::<0, Foreign>(&p, Bugs::NONE),
        ] {
            let c = c.unwrap_or_else(|d| panic!("{d}"));
            assert!(expect(&c), "{p:?} did not exercise what it should: {c:?}");
        }
    }
}

/// Model-frontend panics are expected while the teeth run: keep them off the output.
fn quiet_expected_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            if !(name.contains("teeth") || name == FOREIGN_THREAD) {
                default(info);
            }
        }));
    });
}

/// Searches random programs until `run` diverges; returns the shrunk divergence.
fn find(run: Run) -> Option<Divergence> {
    quiet_expected_panics();
    let result = runner(2_000, false).run(&program(), |p| {
        run(&p)
            .map(drop)
            .map_err(|d| TestCaseError::fail(d.to_string()))
    });
    match result {
        Ok(()) => None,
        Err(TestError::Fail(_, p)) => {
            let d = run(&p).expect_err("the shrunk program diverges");
            Some(conformance::minimize(d, run))
        }
        Err(e) => panic!("{e}"),
    }
}

fn flawed<const FLAW: u8>(p: &Program) -> Result<Coverage, Divergence> {
    conformance::run::<FLAW, Own>(p, Bugs::NONE)
}

fn flawed_foreign<const FLAW: u8>(p: &Program) -> Result<Coverage, Divergence> {
    conformance::run::<FLAW, Foreign>(p, Bugs::NONE)
}

/// A conformance run of one program.
type Run = fn(&Program) -> Result<Coverage, Divergence>;

fn teeth(name: &str, run: Run) -> Divergence {
    let start = Instant::now();
    let d = find(run).unwrap_or_else(|| panic!("{name}: no divergence found"));
    println!(
        "[spec] conformance: {name}: divergence found and shrunk to {} operations in {:.2?}\n{d}",
        d.ops.len(),
        start.elapsed()
    );
    d
}

/// Over both object systems: the kernel's own objects, and the foreign one whose own last release
/// calls `reclaim`.
#[test]
fn teeth_hit_without_try_incref() {
    const FLAW: u8 = Flaw::HitWithoutTryIncref as u8;
    let runs: [(_, Run); 2] = [("Own", flawed::<FLAW>), ("Foreign", flawed_foreign::<FLAW>)];
    for (system, run) in runs {
        let d = teeth(&format!("{system} HitWithoutTryIncref"), run);
        assert_eq!(d.system, system);
        assert!(
            d.what.contains("refcount") || d.what.contains("panicked"),
            "{d}"
        );
    }
}

#[test]
fn teeth_revive_without_rearm() {
    let d = teeth(
        "ReviveWithoutRearm",
        flawed::<{ Flaw::ReviveWithoutRearm as u8 }>,
    );
    assert!(d.what.contains("lesson 3"), "{d}");
}

#[test]
fn teeth_drop_before_transit() {
    let d = teeth(
        "DropBeforeTransit",
        flawed::<{ Flaw::DropBeforeTransit as u8 }>,
    );
    assert!(d.what.contains("panicked"), "{d}");
}

/// Over both object systems, as `teeth_hit_without_try_incref`.
#[test]
fn teeth_reclaim_frees_in_transit() {
    const FLAW: u8 = Flaw::ReclaimFreesInTransit as u8;
    let runs: [(_, Run); 2] = [("Own", flawed::<FLAW>), ("Foreign", flawed_foreign::<FLAW>)];
    for (system, run) in runs {
        let d = teeth(&format!("{system} ReclaimFreesInTransit"), run);
        assert_eq!(d.system, system);
        assert!(
            d.what.contains("panicked") || d.what.contains("effects"),
            "{d}"
        );
    }
}

/// A dealloc parked on the looking-up thread: the kernel variant that never replaces the dying
/// wrapper spins until the model frontend's L1 check gives up (after its two-second grace), where
/// the spec's lookup returns `Replaced`. A hand-written program: a random search would pay the
/// grace at every shrinking step.
#[test]
fn teeth_wait_for_parked_dealloc() {
    quiet_expected_panics();
    let p = Program {
        objects: vec![ObjSpec::PLAIN],
        ops: vec![
            lookup(0, 0),
            Op::DropParked { thread: 0, nth: 0 },
            lookup(0, 0),
        ],
    };
    conformance::check(&p).unwrap_or_else(|d| panic!("{d}"));
    let start = Instant::now();
    let d = flawed::<{ Flaw::WaitForParkedDealloc as u8 }>(&p)
        .expect_err("the kernel waits for its own parked dealloc");
    println!(
        "[spec] conformance: WaitForParkedDealloc: divergence in {:.2?}\n{d}",
        start.elapsed()
    );
    assert!(d.what.contains("L1"), "{d}");
}

/// The other direction: the model with one of its bug switches on diverges from the kernel.
#[test]
fn teeth_spec_first_settler_frees() {
    let d = teeth("spec FirstSettlerFrees", |p| {
        conformance::run::<0, Own>(p, Bugs::only(Bug::FirstSettlerFrees))
    });
    assert!(d.what.starts_with("spec"), "{d}");
}
