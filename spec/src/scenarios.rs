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

const ALL_WITNESSES: &[usize] = &[0, 1, 2, 3, 4, 5, 6];

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

/// Three Python threads with two operations each on one object, plus the foreign thread that
/// holds the object and may drop it (reclaim on a foreign thread).
pub fn three_threads() -> Scenario {
    Scenario {
        name: "one object, 3 threads x 2 ops",
        cfg: Config::one_object(3, 2),
        witnesses: ALL_WITNESSES,
    }
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

/// The scenarios the default test run checks.
pub fn default_scenarios() -> Vec<Scenario> {
    vec![
        three_threads(),
        three_threads_all_options(),
        two_threads_all_options(),
        outer_inner(),
        outer_inner_all_options(),
        finalizer(),
        legacy(),
    ]
}

/// A deep run, too big for CI (tens of millions of states, several GiB): outer/inner with three
/// threads of two operations each.
pub fn deep() -> Scenario {
    Scenario {
        name: "outer holds inner, 3 threads x 2 ops",
        cfg: Config::outer_inner(3, 2),
        witnesses: ALL_WITNESSES,
    }
}

/// The configuration a bug (or requirement) switch is checked in, and the property its
/// counterexample breaks. The same configuration with the switch off must pass everything.
pub fn bug_scenario(bug: crate::config::Bug) -> (Config, &'static str) {
    use crate::config::Bug;
    let base = Config::one_object(2, 2);
    match bug {
        Bug::BumpBeforeTransition => (base, "S1 memory safety"),
        Bug::ReviveWithoutRearm => (base, "L1 progress"),
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
    }
}
