//! The loom suite: every cell of the concurrency matrix and the three-actor flows, explored
//! exhaustively up to a preemption bound, plus the broken-variant teeth.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom` (see `ci/loom.sh`).
//! `TETHER_LOOM_BOUND2` / `TETHER_LOOM_BOUND3` override the bounds of two- and three-actor runs.
#![cfg(loom)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use binding_core::flaw::Flaw;
use binding_core::model::{Foreign, Own};
use common::Scenario;

fn bound(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Explores `body` exhaustively at `bound` preemptions; returns the number of executions.
fn explore(name: &str, bound: usize, body: fn()) -> usize {
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = executions.clone();
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(bound);
    builder.check(move || {
        counter.fetch_add(1, Relaxed);
        body();
    });
    let n = executions.load(Relaxed);
    println!("loom {name}: bound {bound}, {n} executions");
    n
}

/// The 16 cells (every pair of the six actors, and lookup × lookup), named once: calls
/// `$m!($($args)* <the cells>)`.
macro_rules! with_the_cells {
    ($m:ident!($($args:tt)*)) => {
        $m!($($args)*
            lookup_lookup,
            lookup_dealloc,
            lookup_reclaim,
            lookup_move,
            lookup_detach,
            lookup_shutdown,
            dealloc_reclaim,
            dealloc_move,
            dealloc_detach,
            dealloc_shutdown,
            reclaim_move,
            reclaim_detach,
            reclaim_shutdown,
            move_detach,
            move_shutdown,
            detach_shutdown,
        );
    };
}

/// The 7 flows (larger scenarios), named once, as [`with_the_cells`].
macro_rules! with_the_flows {
    ($m:ident!($($args:tt)*)) => {
        $m!($($args)*
            two_lookups_one_dealloc,
            revive_vs_reclaim,
            three_first_lookups,
            revive_then_hit_elsewhere,
            missed_lookup_sees_revival,
            parked_dealloc_lookup,
            dealloc_reclaim_nested,
        );
    };
}

macro_rules! cell_tests {
    ($($name:ident),* $(,)?) => { cell_tests!(gil = false, Own; $($name),*); };
    (gil = $gil:literal, $sys:ident; $($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let b = bound("TETHER_LOOM_BOUND2", 3);
            assert!(explore(stringify!($name), b, common::$name::<0, $gil, $sys>) > 1);
        }
    )*};
}

with_the_cells!(cell_tests!(gil = false, Own;));

// Weak references: an upgrade racing the last strong drop; a weak drop racing reclaim.
cell_tests!(upgrade_last_drop, weak_drop_reclaim);

macro_rules! flow_tests {
    ($($name:ident),* $(,)?) => {
        flow_tests!(gil = false, Own, "TETHER_LOOM_BOUND3", 2; $($name),*);
    };
    (gil = $gil:literal, $sys:ident, $var:literal, $default:literal; $($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let b = bound($var, $default);
            assert!(explore(stringify!($name), b, common::$name::<0, $gil, $sys>) > 1);
        }
    )*};
}

flow_tests!(
    two_lookups_one_dealloc,
    revive_vs_reclaim,
    three_first_lookups,
    revive_then_hit_elsewhere,
    missed_lookup_sees_revival,
    parked_dealloc_lookup,
);

// Two actors, but a flow's shape (a parked dealloc, a takeover): bound 3 reaches the takeover
// before the late dealloc (502 executions).
cell_tests!(takeover_vs_late_dealloc);

/// Dealloc on one thread, the last native reference on another: loom must reach both settle
/// orders (first settler defers, second frees), and the nested object flow on top.
#[test]
fn both_settle_orders_are_explored() {
    assert_both_settle_orders("", common::dealloc_reclaim::<0, false, Own>);
    let b = bound("TETHER_LOOM_BOUND3", 2);
    explore(
        "dealloc_reclaim_nested",
        b,
        common::dealloc_reclaim_nested::<0, false, Own>,
    );
}

/// Explores `dealloc_reclaim` (bound 3) and asserts that loom reached both settle orders: the
/// wrapper's free second (reclaim deferred to it) and reclaim second.
fn assert_both_settle_orders(label: &str, dealloc_reclaim: fn()) {
    common::SETTLED_BY_FREE.store(0, Relaxed);
    common::SETTLED_BY_RECLAIM.store(0, Relaxed);
    explore(
        &format!("{label}dealloc_reclaim (settle orders)"),
        3,
        dealloc_reclaim,
    );
    let (by_free, by_reclaim) = (
        common::SETTLED_BY_FREE.load(Relaxed),
        common::SETTLED_BY_RECLAIM.load(Relaxed),
    );
    println!("{label}settle orders: free second {by_free}, reclaim second {by_reclaim}");
    assert!(
        by_free > 0 && by_reclaim > 0,
        "{label}one settle order was never explored"
    );
}

/// GIL mode (`Frontend::SERIALIZED`): the model holds a global lock where CPython's GIL is held
/// and lets it go where CPython can (back-offs, allocation, between a dealloc and its free); the
/// kernel's transitions are plain loads and stores except the settle and reclaim, which race
/// across the lock. Every cell and flow again.
mod gil_mode {
    use super::*;

    with_the_cells!(cell_tests!(gil = true, Own;));

    // Bound 1 by default: the lock's hand-overs are scheduling points of their own, and at
    // bound 2 the largest flow explores 3.5 M executions (about 15 minutes here; run them with
    // TETHER_LOOM_GIL_BOUND3=2). shuttle runs every flow in GIL mode with many more preemptions.
    with_the_flows!(flow_tests!(gil = true, Own, "TETHER_LOOM_GIL_BOUND3", 1;));

    cell_tests!(gil = true, Own; takeover_vs_late_dealloc);

    /// A dealloc's settle against a reclaim on a thread without the lock (which attaches, taking
    /// it, before it touches the word). Both orders must be reached.
    #[test]
    fn both_settle_orders_are_explored() {
        assert_both_settle_orders("gil ", common::dealloc_reclaim::<0, true, Own>);
    }

    // The same race while the runtime starts finalising: a refused attach leaves the word to
    // the settler (the block leaks with its cached wrapper, on purpose); nothing is freed twice.
    flow_tests!(gil = true, Own, "TETHER_LOOM_GIL_BOUND3", 1; dealloc_reclaim_shutdown);
}

/// A foreign object system ([`Foreign`]: one count of its own, no weak references, `reclaim`
/// called by the object system at strong → 0): every cell and flow again, so the kernel's
/// contract with object systems is checked, not only its own objects.
mod foreign_objects {
    use super::*;

    with_the_cells!(cell_tests!(gil = false, Foreign;));

    with_the_flows!(flow_tests!(gil = false, Foreign, "TETHER_LOOM_BOUND3", 2;));

    cell_tests!(gil = false, Foreign; takeover_vs_late_dealloc);

    /// Both hand-offs of the object system's block: reclaim frees it (no wrapper dying), or
    /// reclaim defers and the settler frees it through `NativeObject::free`.
    #[test]
    fn both_settle_orders_are_explored() {
        assert_both_settle_orders("foreign ", common::dealloc_reclaim::<0, false, Foreign>);
    }
}

#[test]
fn matrix_is_complete() {
    // 15 distinct pairs of the six actors plus lookup × lookup.
    let cells: Vec<Scenario> = common::cells::<0, false, Own>();
    assert_eq!(cells.len(), 16);
    assert_eq!(common::flows::<0, false, Own>().len(), 8);
}

// ---------------------------------------------------------------- teeth

/// Runs `body` for the broken variant and returns the checker's failure message.
fn must_fail(flaw: Flaw, bound: usize, body: fn()) -> String {
    let result = std::panic::catch_unwind(|| explore(&format!("{flaw:?}"), bound, body));
    let err = result.expect_err("loom did not find the bug of a broken variant");
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    println!("loom found {flaw:?}: {msg}");
    msg
}

macro_rules! flaw {
    ($f:ident) => {
        Flaw::$f as u8
    };
}

/// The object system a tooth runs on: the kernel's own objects unless `on Foreign` says so.
macro_rules! system {
    () => {
        Own
    };
    ($sys:ident) => {
        $sys
    };
}

macro_rules! teeth {
    ($($test:ident: $flaw:ident in $scenario:ident $(gil $gil:literal)? $(on $sys:ident)? at $bound:literal
        finds $($needle:literal)|+;)*) => {$(
        #[test]
        fn $test() {
            const GIL: bool = false $(|| $gil)?;
            let msg = must_fail(Flaw::$flaw, $bound, common::$scenario::<{ flaw!($flaw) }, GIL, system!($($sys)?)>);
            assert!([$($needle),+].iter().any(|n| msg.contains(n)), "{msg}");
        }
    )*};
}

teeth! {
    // A revival published with Relaxed: the next locker reads the re-initialised wrapper without
    // a happens-before edge (a data race, or its handle slot still empty). Only a weak-memory
    // checker can see this.
    teeth_unlock_relaxed: UnlockRelaxed in two_lookups_one_dealloc at 2
        finds "Causality violation" | "S3 violated";
    // Without the re-arm the revived wrapper's try-incref keeps failing: the lookups either
    // spin (L1) or replace a live wrapper (S4).
    teeth_revive_without_rearm: ReviveWithoutRearm in revive_then_hit_elsewhere at 2
        finds "L1 violated" | "deadlock" | "S4 violated";
    teeth_drop_before_transit: DropBeforeTransit in dealloc_reclaim at 2 finds "S3 violated";
    teeth_reclaim_frees_in_transit: ReclaimFreesInTransit in dealloc_reclaim at 2
        finds "S1 violated" | "S2 violated";
    teeth_hit_without_try_incref: HitWithoutTryIncref in lookup_dealloc at 2 finds "S1 violated";
    teeth_move_clears_handle_first: MoveClearsHandleFirst in lookup_move at 3 finds "S3 violated";
    teeth_fresh_blind_store: FreshBlindStore in lookup_lookup at 2 finds "S4 violated";
    teeth_backoff_before_untrack: BackoffBeforeUntrack in lookup_dealloc at 3 finds "gh-135909";
    // A weak upgrade that checks, then increments: the last strong drop in the window, and the
    // upgrade resurrects the dropped value.
    teeth_upgrade_blind_increment: UpgradeBlindIncrement in upgrade_last_drop at 2
        finds "S1 violated";
    // A lookup that waits for a dealloc the runtime parked until this thread unwinds.
    teeth_wait_for_parked_dealloc: WaitForParkedDealloc in parked_dealloc_lookup at 2
        finds "L1 violated" | "deadlock";
    // A takeover that does not re-check the count under the lock replaces a wrapper that was
    // revived meanwhile, while it is alive. Bound 3: the dealloc must be preempted before its
    // transition, the looker after its second miss, and before its takeover.
    teeth_takeover_without_try_incref: TakeoverWithoutTryIncref in missed_lookup_sees_revival
        at 3 finds "S4 violated";
    // A settle published with Relaxed: the reviver (or the reclaimer freeing the block) writes
    // the block's memory without a happens-before edge from the dying thread's last writes.
    teeth_settle_relaxed: SettleRelaxed in lookup_dealloc at 2 finds "Causality violation";
    // GIL mode: the settle is a plain load and store under the global lock; a reclaim on a
    // thread without it (not attaching first) slips its deferral between the two.
    teeth_reclaim_without_lock: ReclaimWithoutLock in dealloc_reclaim gil true at 2
        finds "S2 violated" | "S1 violated";
    // GIL mode: a reclaim that attaches (takes the lock) but acts on the word it read before:
    // the settle ran in between, and the deferral defers to nobody.
    teeth_reclaim_stale_word: ReclaimStaleWord in dealloc_reclaim gil true at 2
        finds "S2 violated" | "S1 violated";
    // GIL mode declared by a runtime whose threads hold no global lock: plain stores race.
    teeth_serialized_without_gil: SerializedWithoutGil in lookup_lookup gil true at 2
        finds "S4 violated";
    // GIL mode: a fresh wrapper stored blindly after an allocation that let the lock go.
    teeth_gil_fresh_blind_store: FreshBlindStore in lookup_lookup gil true at 2
        finds "S4 violated";
    // A foreign object system: a reclaim that frees a block whose wrapper is dying (ignoring the
    // deferral) is a use after free or a double free of the object system's block.
    // A dealloc that finds its wrapper replaced frees it without acquiring the replacement's
    // publication: the free races the replacing lookup's try-incref read of the wrapper.
    teeth_dealloc_failure_relaxed: DeallocFailureRelaxed in takeover_vs_late_dealloc at 3
        finds "Causality violation";
    teeth_foreign_reclaim_frees_in_transit: ReclaimFreesInTransit in dealloc_reclaim on Foreign
        at 2 finds "S1 violated" | "S2 violated";
    teeth_foreign_hit_without_try_incref: HitWithoutTryIncref in lookup_dealloc on Foreign at 2
        finds "S1 violated";
}
