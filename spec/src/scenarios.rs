//! The named configurations the test suite checks exhaustively (and `docs/spec.md` reports).

use crate::config::{Config, ObjSpec};
use crate::properties::WITNESSES;

/// A configuration with a name and the witnesses it must reach.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Short name.
    pub name: &'static str,
    /// The bounds.
    pub cfg: Config,
    /// Witness properties this scenario must reach (indices into [`WITNESSES`]).
    pub witnesses: &'static [usize],
}

impl Scenario {
    /// The names of the witnesses it must reach.
    pub fn witness_names(&self) -> Vec<&'static str> {
        self.witnesses.iter().map(|&i| WITNESSES[i].name).collect()
    }
}

/// The witnesses of the protocol without the takeover (indices 0 to 6).
const NO_TAKEOVER_WITNESSES: &[usize] = &[0, 1, 2, 3, 4, 5, 6];

/// Every witness but the parked-dealloc one (which needs the trashcan).
const ALL_WITNESSES: &[usize] = &[0, 1, 2, 3, 4, 5, 6, 7, 9];

/// Every witness of the protocol without the GIL.
const TRASHCAN_WITNESSES: &[usize] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9];

/// GIL mode: no word lock (so no dealloc backs off on one), and without the trashcan no lookup
/// ever misses (a wrapper's count reaches zero and its transition follows under one hold of the
/// GIL), so no takeover either; a thread waits for the GIL, and a settle races a foreign
/// reclaim.
const GIL_WITNESSES: &[usize] = &[0, 3, 4, 5, 6, 10, 11];

/// GIL mode with the trashcan: the parked dealloc brings the miss and the takeover back.
const GIL_TRASHCAN_WITNESSES: &[usize] = &[0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11];

/// Every option on: rebind (move, detach), weak references (with callbacks that re-fetch),
/// allocation failure, shutdown.
pub fn with_all_options(cfg: Config) -> Config {
    Config {
        rebind: true,
        weakrefs: true,
        alloc_failure: true,
        shutdown: true,
        ..cfg
    }
}

/// The same run without the takeover: a frontend that never replaces a dying wrapper (allowed
/// for a runtime that never parks a dealloc). The two largest runs are checked this way by
/// default; with the takeover they are the deep runs.
fn without_takeover(sc: Scenario) -> Scenario {
    Scenario {
        name: match sc.name {
            "one object, 3 threads x 2 ops" => "one object, 3 threads x 2 ops, no takeover",
            "outer holds inner, 2 threads x 3 ops" => {
                "outer holds inner, 2 threads x 3 ops, no takeover"
            }
            "outer holds inner, 3 threads x 2 ops" => {
                "outer holds inner, 3 threads x 2 ops, no takeover"
            }
            other => other,
        },
        cfg: Config {
            takeover: false,
            ..sc.cfg
        },
        witnesses: NO_TAKEOVER_WITNESSES,
    }
}

/// Three Python threads with two operations each on one object, plus the foreign thread that
/// holds the object and may drop it (reclaim on a foreign thread).
pub fn three_threads() -> Scenario {
    Scenario {
        name: "one object, 3 threads x 2 ops",
        cfg: Config::one_object(3, 2),
        witnesses: ALL_WITNESSES,
    }
}

/// [`three_threads`] without the takeover (the takeover makes it a deep run: tens of millions
/// of states).
pub fn three_threads_no_takeover() -> Scenario {
    without_takeover(three_threads())
}

/// Three Python threads with one operation each, every option on.
pub fn three_threads_all_options() -> Scenario {
    Scenario {
        name: "one object, 3 threads x 1 op, all options",
        cfg: with_all_options(Config::one_object(3, 1)),
        witnesses: ALL_WITNESSES,
    }
}

/// Two Python threads with two operations each, every option on.
pub fn two_threads_all_options() -> Scenario {
    Scenario {
        name: "one object, 2 threads x 2 ops, all options",
        cfg: with_all_options(Config::one_object(2, 2)),
        witnesses: ALL_WITNESSES,
    }
}

/// Outer object (rooted) whose value holds the inner one; inner is reachable only through an
/// outer wrapper (an attribute read). Two threads with three operations each.
pub fn outer_inner() -> Scenario {
    Scenario {
        name: "outer holds inner, 2 threads x 3 ops",
        cfg: Config::outer_inner(2, 3),
        witnesses: ALL_WITNESSES,
    }
}

/// [`outer_inner`] without the takeover.
pub fn outer_inner_no_takeover() -> Scenario {
    without_takeover(outer_inner())
}

/// Outer/inner with two operations per thread and every option on.
pub fn outer_inner_all_options() -> Scenario {
    Scenario {
        name: "outer holds inner, 2 threads x 2 ops, all options",
        cfg: with_all_options(Config::outer_inner(2, 2)),
        witnesses: ALL_WITNESSES,
    }
}

/// An object whose wrappers have a finalizer (never cacheable: the word goes Active → Detached).
pub fn finalizer() -> Scenario {
    Scenario {
        name: "finalizer type, 2 threads x 2 ops, rebind, alloc failure",
        cfg: Config {
            objects: vec![ObjSpec {
                finalizer: true,
                ..ObjSpec::PLAIN
            }],
            rebind: true,
            alloc_failure: true,
            ..Config::one_object(2, 2)
        },
        // No revival, no baton: only the refusal, the back-off, the race and the cleanup.
        witnesses: &[1, 2, 3, 6],
    }
}

/// An object built by an older allocator, without a header: wrappers are plain, unbound.
pub fn legacy() -> Scenario {
    Scenario {
        name: "object without header, 2 threads x 2 ops",
        cfg: Config {
            objects: vec![ObjSpec {
                header: false,
                ..ObjSpec::PLAIN
            }],
            ..Config::one_object(2, 2)
        },
        witnesses: &[6],
    }
}

/// CPython 3.14's trashcan: deallocs may be parked until their thread unwinds, and the thread
/// meanwhile looks the object up again (through the foreign thread's registry). One object, two
/// threads with two operations each.
pub fn trashcan() -> Scenario {
    Scenario {
        name: "one object, 2 threads x 2 ops, trashcan",
        cfg: Config {
            trashcan: true,
            ..Config::one_object(2, 2)
        },
        witnesses: TRASHCAN_WITNESSES,
    }
}

/// The trashcan with every other option on.
pub fn trashcan_all_options() -> Scenario {
    Scenario {
        name: "one object, 2 threads x 2 ops, trashcan, all options",
        cfg: with_all_options(trashcan().cfg),
        witnesses: TRASHCAN_WITNESSES,
    }
}

/// The trashcan with the inner object reachable only through its outer wrapper: one Python
/// thread reads the attribute, drops the result (parked), reads it again; every other option
/// on, and the foreign thread may drop the outer object meanwhile.
pub fn trashcan_outer_inner() -> Scenario {
    Scenario {
        name: "outer holds inner, 1 thread x 4 ops, trashcan, all options",
        cfg: with_all_options(Config {
            trashcan: true,
            ..Config::outer_inner(1, 4)
        }),
        // One Python thread: nobody else locks a word or races a publish.
        witnesses: &[0, 1, 4, 5, 6, 7, 8, 9],
    }
}

/// The same run in GIL mode (`Config::gil`): a serialized frontend on a runtime with a GIL.
pub fn gil(cfg: Config) -> Config {
    Config { gil: true, ..cfg }
}

/// GIL mode, one object, three Python threads with two operations each: drop and re-fetch with
/// the foreign thread's reclaim of the last reference, lookups racing a dealloc, the fresh
/// publication race.
pub fn gil_three_threads() -> Scenario {
    Scenario {
        name: "GIL, one object, 3 threads x 2 ops",
        cfg: gil(Config::one_object(3, 2)),
        witnesses: GIL_WITNESSES,
    }
}

/// GIL mode, one object, three Python threads with one operation each, every option on.
pub fn gil_three_threads_all_options() -> Scenario {
    Scenario {
        name: "GIL, one object, 3 threads x 1 op, all options",
        cfg: gil(three_threads_all_options().cfg),
        witnesses: GIL_WITNESSES,
    }
}

/// GIL mode, one object, two Python threads with two operations each, every option on.
pub fn gil_two_threads_all_options() -> Scenario {
    Scenario {
        name: "GIL, one object, 2 threads x 2 ops, all options",
        cfg: gil(two_threads_all_options().cfg),
        witnesses: GIL_WITNESSES,
    }
}

/// GIL mode, outer holds inner, two threads with two operations each, every option on.
pub fn gil_outer_inner_all_options() -> Scenario {
    Scenario {
        name: "GIL, outer holds inner, 2 threads x 2 ops, all options",
        cfg: gil(outer_inner_all_options().cfg),
        witnesses: GIL_WITNESSES,
    }
}

/// GIL mode, outer holds inner (reachable only through an outer wrapper), two threads with
/// three operations each.
pub fn gil_outer_inner() -> Scenario {
    Scenario {
        name: "GIL, outer holds inner, 2 threads x 3 ops",
        cfg: gil(Config::outer_inner(2, 3)),
        witnesses: GIL_WITNESSES,
    }
}

/// GIL mode with the trashcan (CPython 3.14 GIL builds park deallocs too) and every other
/// option on: the takeover.
pub fn gil_trashcan_all_options() -> Scenario {
    Scenario {
        name: "GIL, one object, 2 threads x 2 ops, trashcan, all options",
        cfg: gil(trashcan_all_options().cfg),
        witnesses: GIL_TRASHCAN_WITNESSES,
    }
}

/// The GIL-mode scenarios the default test run checks.
pub fn gil_scenarios() -> Vec<Scenario> {
    vec![
        gil_three_threads(),
        gil_three_threads_all_options(),
        gil_two_threads_all_options(),
        gil_outer_inner_all_options(),
        gil_outer_inner(),
        gil_trashcan_all_options(),
    ]
}

/// GIL-mode deep runs (`--ignored`, a minute or so each): three threads with two operations each,
/// with rebind, with weak references, and on outer/inner. (With every option on, or with the
/// trashcan, three threads do not finish in ten minutes and 14 GiB.)
pub fn gil_deep_scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "GIL, one object, 3 threads x 2 ops, rebind",
            cfg: gil(Config {
                rebind: true,
                ..Config::one_object(3, 2)
            }),
            witnesses: GIL_WITNESSES,
        },
        Scenario {
            name: "GIL, one object, 3 threads x 2 ops, weak references",
            cfg: gil(Config {
                weakrefs: true,
                ..Config::one_object(3, 2)
            }),
            witnesses: GIL_WITNESSES,
        },
        Scenario {
            name: "GIL, outer holds inner, 3 threads x 2 ops",
            cfg: gil(Config::outer_inner(3, 2)),
            witnesses: GIL_WITNESSES,
        },
    ]
}

/// The scenarios the default test run checks.
pub fn default_scenarios() -> Vec<Scenario> {
    vec![
        three_threads_no_takeover(),
        three_threads_all_options(),
        two_threads_all_options(),
        outer_inner_no_takeover(),
        outer_inner_all_options(),
        finalizer(),
        legacy(),
        trashcan(),
        trashcan_all_options(),
        trashcan_outer_inner(),
    ]
}

/// A deep run, too big for CI (tens of millions of states, several GiB): outer/inner with three
/// threads of two operations each, without the takeover (with it, the run would grow several
/// times over; not attempted). [`three_threads`] and [`outer_inner`], with the takeover, are the
/// other deep runs.
pub fn deep() -> Scenario {
    without_takeover(Scenario {
        name: "outer holds inner, 3 threads x 2 ops",
        cfg: Config::outer_inner(3, 2),
        witnesses: ALL_WITNESSES,
    })
}

/// The configuration a bug (or requirement) switch is checked in, and the property its
/// counterexample breaks. The same configuration with the switch off must pass everything.
pub fn bug_scenario(bug: crate::config::Bug) -> (Config, &'static str) {
    use crate::config::Bug;
    let base = Config::one_object(2, 2);
    match bug {
        Bug::BumpBeforeTransition => (base, "S1 memory safety"),
        // A lookup refused by the live, unarmed wrapper stops waiting and replaces it.
        Bug::ReviveWithoutRearm => (base, "S4 one wrapper"),
        Bug::BackoffBeforeUntrack => (base, "S1 memory safety"),
        Bug::ProbeHeader => (legacy().cfg, "S1 memory safety"),
        Bug::BlindPublish => (base, "S4 one wrapper"),
        Bug::FirstSettlerFrees => (base, "S6 baton"),
        Bug::UnserializedMove => (
            Config {
                rebind: true,
                ..base
            },
            "S1 memory safety",
        ),
        Bug::CallbackBeforeTransition | Bug::CacheWithWeakrefs => (
            Config {
                weakrefs: true,
                ..base
            },
            "L1 progress",
        ),
        Bug::WaitForParkedDealloc => (trashcan().cfg, "L1 progress"),
        Bug::TakeoverWithoutTryIncref => (base, "S4 one wrapper"),
        // A foreign reclaim without the GIL clears IN_TRANSIT between the settler's load and
        // store: W is cached over a dead object whose allocation nobody frees.
        Bug::ReclaimWithoutGil => (gil(base), "S2 no leak"),
        // Two lookups each load Detached and each store their fresh wrapper.
        Bug::SerializedWithoutGil => (gil(base), "S4 one wrapper"),
        // The settler caches W between reclaim's first load and its taking the GIL; reclaim
        // stores W|INACTIVE as if it had seen InTransit.
        Bug::ReclaimStaleWord => (gil(base), "S2 no leak"),
        // A lookup waits for the settle with the GIL the settler needs.
        Bug::WaitHoldingGil => (gil(base), "L1 progress"),
    }
}
