//! The shuttle suite: the matrix, the flows and larger scenarios (3–6 threads, several objects)
//! under PCT (depth 3) and random schedulers, plus the broken-variant teeth.
//!
//! Run: `cargo test --release --features shuttle --test shuttle` (see `ci/shuttle.sh`).
//! `TETHER_SHUTTLE_ITERS` sets iterations per scenario and scheduler (CI default 10,000;
//! `ci/shuttle.sh` uses 200,000 with `TETHER_EXTENDED=1`). A failure prints the schedule to pass
//! to `shuttle::replay`.
#![cfg(all(feature = "shuttle", not(loom)))]

mod common;

use binding_core::flaw::Flaw;
use binding_core::model::{Foreign, Own};
use common::Scenario;

fn iterations() -> usize {
    std::env::var("TETHER_SHUTTLE_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn pct_and_random(name: &str, body: fn()) {
    let n = iterations();
    shuttle::check_pct(body, n, 3);
    shuttle::check_random(body, n);
    println!("shuttle {name}: {n} PCT(depth 3) + {n} random schedules");
}

#[test]
fn matrix_cells() {
    for (name, body) in common::cells::<0, false, Own>() {
        pct_and_random(name, body);
    }
}

#[test]
fn weak_reference_cells() {
    for (name, body) in common::weak_cells::<0, false>() {
        pct_and_random(name, body);
    }
}

#[test]
fn three_actor_flows() {
    for (name, body) in common::flows::<0, false, Own>() {
        pct_and_random(name, body);
    }
}

#[test]
fn many_actors() {
    let scenarios: Vec<Scenario> = vec![
        ("3 actors, 2 objects", || {
            common::many_actors::<0, false, Own>(3, 2)
        }),
        ("4 actors, 3 objects", || {
            common::many_actors::<0, false, Own>(4, 3)
        }),
        ("6 actors, 3 objects", || {
            common::many_actors::<0, false, Own>(6, 3)
        }),
        ("5 refetchers", || {
            common::many_refetchers::<0, false, Own>(5)
        }),
    ];
    for (name, body) in scenarios {
        pct_and_random(name, body);
    }
}

/// GIL mode (`Frontend::SERIALIZED`, the model's global lock held where CPython's GIL is): the
/// matrix, the flows and the larger scenarios again.
#[test]
fn gil_mode() {
    let mut scenarios: Vec<Scenario> = common::cells::<0, true, Own>();
    scenarios.extend(common::weak_cells::<0, true>());
    scenarios.extend(common::flows::<0, true, Own>());
    scenarios.extend::<[Scenario; 3]>([
        (
            "gil: dealloc x reclaim x shutdown",
            common::dealloc_reclaim_shutdown::<0, true, Own>,
        ),
        ("gil: 4 actors, 3 objects", || {
            common::many_actors::<0, true, Own>(4, 3)
        }),
        ("gil: 5 refetchers", || {
            common::many_refetchers::<0, true, Own>(5)
        }),
    ]);
    for (name, body) in scenarios {
        pct_and_random(&format!("gil {name}"), body);
    }
}

/// A foreign object system (`model::Foreign`: its own count, `reclaim` called by it): the
/// matrix, the flows and the larger scenarios again.
#[test]
fn foreign_objects() {
    let mut scenarios: Vec<Scenario> = common::cells::<0, false, Foreign>();
    scenarios.extend(common::flows::<0, false, Foreign>());
    scenarios.extend::<[Scenario; 2]>([
        ("4 actors, 3 objects", || {
            common::many_actors::<0, false, Foreign>(4, 3)
        }),
        ("5 refetchers", || {
            common::many_refetchers::<0, false, Foreign>(5)
        }),
    ]);
    for (name, body) in scenarios {
        pct_and_random(&format!("foreign {name}"), body);
    }
}

// ---------------------------------------------------------------- teeth

/// Runs the broken variant under PCT and random schedules and returns the failure message.
fn must_fail(flaw: Flaw, body: fn()) -> Option<String> {
    let n = iterations().min(20_000);
    let result = std::panic::catch_unwind(|| {
        shuttle::check_pct(body, n, 3);
        shuttle::check_random(body, n);
    });
    let err = result.err()?;
    let msg = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    println!(
        "shuttle found {flaw:?}: {}",
        msg.lines().next().unwrap_or("")
    );
    Some(msg)
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
    ($($test:ident: $flaw:ident in $scenario:ident $(gil $gil:literal)? $(on $sys:ident)?
        finds $($needle:literal)|+;)*) => {$(
        #[test]
        fn $test() {
            const GIL: bool = false $(|| $gil)?;
            let msg = must_fail(Flaw::$flaw, common::$scenario::<{ flaw!($flaw) }, GIL, system!($($sys)?)>)
                .expect(concat!("shuttle did not find ", stringify!($flaw)));
            assert!([$($needle),+].iter().any(|n| msg.contains(n)), "{msg}");
        }
    )*};
}

teeth! {
    teeth_revive_without_rearm: ReviveWithoutRearm in revive_then_hit_elsewhere finds "L1 violated" | "S4 violated";
    teeth_drop_before_transit: DropBeforeTransit in dealloc_reclaim finds "S3 violated";
    teeth_reclaim_frees_in_transit: ReclaimFreesInTransit in dealloc_reclaim finds "S1 violated" | "S2 violated";
    teeth_hit_without_try_incref: HitWithoutTryIncref in lookup_dealloc finds "S1 violated";
    teeth_move_clears_handle_first: MoveClearsHandleFirst in lookup_move finds "S3 violated";
    teeth_fresh_blind_store: FreshBlindStore in lookup_lookup finds "S4 violated";
    teeth_backoff_before_untrack: BackoffBeforeUntrack in lookup_dealloc finds "gh-135909";
    teeth_upgrade_blind_increment: UpgradeBlindIncrement in upgrade_last_drop finds "S1 violated";
    teeth_wait_for_parked_dealloc: WaitForParkedDealloc in parked_dealloc_lookup finds "L1 violated" | "deadlock";
    teeth_takeover_without_try_incref: TakeoverWithoutTryIncref in missed_lookup_sees_revival finds "S4 violated";
    teeth_reclaim_without_lock: ReclaimWithoutLock in dealloc_reclaim gil true finds "S2 violated" | "S1 violated";
    teeth_reclaim_stale_word: ReclaimStaleWord in dealloc_reclaim gil true finds "S2 violated" | "S1 violated";
    teeth_serialized_without_gil: SerializedWithoutGil in lookup_lookup gil true finds "S4 violated";
    teeth_gil_fresh_blind_store: FreshBlindStore in lookup_lookup gil true finds "S4 violated";
    teeth_foreign_reclaim_frees_in_transit: ReclaimFreesInTransit in dealloc_reclaim on Foreign finds "S1 violated" | "S2 violated";
    teeth_foreign_hit_without_try_incref: HitWithoutTryIncref in lookup_dealloc on Foreign finds "S1 violated";
}

/// shuttle runs every atomic as SeqCst, so a missing Release is invisible to it: this broken
/// variant is loom's (and miri's) to find. The test pins that documented blind spot.
#[test]
fn shuttle_misses_unlock_relaxed() {
    let found = must_fail(
        Flaw::UnlockRelaxed,
        common::two_lookups_one_dealloc::<{ flaw!(UnlockRelaxed) }, false, Own>,
    );
    assert!(
        found.is_none(),
        "shuttle is SeqCst-only; it cannot see a weakened ordering"
    );
}
