//! Running the checker: exhaustive runs with their statistics, counterexample searches, and
//! readable traces.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use stateright::{Checker, HasDiscoveries, Model, Path};

use crate::config::Config;
use crate::model::TetherModel;
use crate::state::{Frame, State};
use crate::steps::{Action, Op};

/// The outcome of one exhaustive breadth-first run.
#[derive(Debug)]
pub struct Report {
    /// Distinct states reached.
    pub unique_states: usize,
    /// States generated, counting repeats (= transitions explored).
    pub generated: usize,
    /// Longest shortest path (BFS depth).
    pub max_depth: usize,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// Invariants with a counterexample, and the counterexample.
    pub failures: Vec<(&'static str, Path<State, Action>)>,
    /// Witness properties never reached.
    pub missing_witnesses: Vec<&'static str>,
}

impl Report {
    /// One line of statistics.
    pub fn summary(&self) -> String {
        format!(
            "{} states ({} generated), depth {}, {:.2?}",
            self.unique_states, self.generated, self.max_depth, self.elapsed
        )
    }
}

/// Explores every reachable state of `cfg` breadth first with `threads` checker threads.
pub fn exhaustive(cfg: Config, threads: usize) -> Report {
    let model = TetherModel::new(cfg);
    let props = model.properties();
    let start = Instant::now();
    let checker = model.checker().threads(threads).spawn_bfs().join();
    let elapsed = start.elapsed();
    let found = checker.discoveries();
    let mut failures = Vec::new();
    let mut missing_witnesses = Vec::new();
    for p in &props {
        let hit = found.get(p.name);
        match (p.expectation.discovery_is_failure(), hit) {
            (true, Some(path)) => failures.push((p.name, path.clone())),
            (false, None) => missing_witnesses.push(p.name),
            _ => {}
        }
    }
    Report {
        unique_states: checker.unique_state_count(),
        generated: checker.state_count(),
        max_depth: checker.max_depth(),
        elapsed,
        failures,
        missing_witnesses,
    }
}

/// A counterexample search: whether the checker found one, and the shortest one.
#[derive(Debug)]
pub struct Counterexample {
    /// The first counterexample an unbounded breadth-first run reported.
    pub first: Path<State, Action>,
    /// A shortest counterexample.
    pub shortest: Path<State, Action>,
    /// Distinct states the unbounded run explored before it stopped.
    pub states: usize,
}

fn bounded(
    cfg: &Config,
    property: &'static str,
    depth: Option<usize>,
) -> (Option<Path<State, Action>>, usize) {
    let model = TetherModel::new(cfg.clone());
    let mut builder = model
        .checker()
        .finish_when(HasDiscoveries::AnyOf(BTreeSet::from([property])));
    if let Some(d) = depth {
        builder = builder.target_max_depth(d);
    }
    let checker = builder.spawn_bfs().join();
    (checker.discovery(property), checker.unique_state_count())
}

/// Searches `cfg` for a counterexample to `property`.
///
/// stateright's breadth-first search stops after the block of states in which it found a
/// discovery, and a later state of the same block may overwrite it, so the path it reports can be
/// a few steps longer than necessary. The shortest one is found by bisecting the depth bound:
/// with the smallest bound that still yields a counterexample, every state the run checks lies
/// at most that deep and none shallower violates the property.
pub fn counterexample(cfg: &Config, property: &'static str) -> Option<Counterexample> {
    let (first, states) = bounded(cfg, property, None);
    let first = first?;
    // A path of n actions ends in a state of depth n + 1, checked when the bound is n + 2.
    let (mut lo, mut hi) = (1, first.clone().into_actions().len() + 2);
    let mut shortest = first.clone();
    while lo + 1 < hi {
        let mid = (lo + hi) / 2;
        match bounded(cfg, property, Some(mid)).0 {
            Some(p) => {
                hi = mid;
                shortest = p;
            }
            None => lo = mid,
        }
    }
    Some(Counterexample {
        first,
        shortest,
        states,
    })
}

/// Renders a path as numbered steps with the binding words after each one.
pub fn trace(cfg: &Config, path: &Path<State, Action>) -> String {
    let mut out = String::new();
    let steps = path.clone().into_vec();
    for (i, (state, action)) in steps.iter().enumerate() {
        let words: Vec<String> = state
            .objects
            .iter()
            .enumerate()
            .map(|(o, n)| {
                if n.freed {
                    format!("o{o}=freed")
                } else if cfg.objects[o].header {
                    format!("o{o}={:?}", n.word)
                } else {
                    format!("o{o}=(no word)")
                }
            })
            .collect();
        let what = match i {
            0 => "initial".to_string(),
            _ => describe(cfg, &steps[i - 1].0, &steps[i - 1].1),
        };
        let _ = write!(out, "{i:>3}. {what:<58} | {}", words.join(" "));
        if cfg.has_gil() {
            let holder = state.gil.map_or("-".to_string(), |a| who(cfg, a));
            let _ = write!(out, " gil={holder}");
        }
        if let Some(v) = state.violation {
            let _ = write!(out, "  !! {v}");
        }
        out.push('\n');
        if action.is_none() {
            break;
        }
    }
    out
}

fn who(cfg: &Config, a: u8) -> String {
    if a == cfg.native_actor() {
        "foreign".to_string()
    } else {
        format!("T{a}")
    }
}

/// A one-line description of `action` taken in `before`.
fn describe(cfg: &Config, before: &State, action: &Option<Action>) -> String {
    let Some(action) = action else {
        return String::new();
    };
    match *action {
        Action::Step(a) => {
            let frame = before.actors[usize::from(a)].top();
            let what = match frame {
                Some(Frame::Lookup { obj, pc, .. }) => format!("lookup(o{obj}) {pc:?}"),
                Some(Frame::Merge { w }) => format!("merge refcount of w{w}"),
                Some(Frame::Dealloc { w, pc }) => format!("dealloc(w{w}) {pc:?}"),
                Some(Frame::DropNative { obj, pc }) => format!("drop native ref o{obj} {pc:?}"),
                Some(Frame::Reclaim { obj, pc }) => format!("reclaim(o{obj}) {pc:?}"),
                Some(Frame::Move { from, to, pc }) => format!("move(w{from}→w{to}) {pc:?}"),
                Some(Frame::Detach { w, pc }) => format!("detach(w{w}) {pc:?}"),
                None => "?".to_string(),
            };
            let what = compact(&what);
            format!("{}: {what}", who(cfg, a))
        }
        Action::AllocFails(a) => format!("{}: allocation fails", who(cfg, a)),
        Action::TakeOver(a) => format!(
            "{}: lookup stops waiting, due to replace the dying wrapper",
            who(cfg, a)
        ),
        Action::Park(a) => match before.actors[usize::from(a)].top() {
            Some(Frame::Dealloc { w, .. }) => {
                format!("{}: trashcan parks dealloc(w{w})", who(cfg, a))
            }
            _ => format!("{}: trashcan parks a dealloc", who(cfg, a)),
        },
        Action::Unwind(a) => match before.actors[usize::from(a)].parked.last() {
            Some(w) => format!("{}: unwinds, runs parked dealloc(w{w})", who(cfg, a)),
            None => format!("{}: unwinds", who(cfg, a)),
        },
        Action::Start(a, op) => {
            let what = match op {
                Op::Lookup(o) => format!("start lookup(o{o})"),
                Op::Drop(w) => format!("drop ref to w{w}"),
                Op::Move(w) => format!("start move(w{w})"),
                Op::Detach(w) => format!("start detach(w{w})"),
                Op::Weakref(w) => format!("weakref to w{w}"),
                Op::DropRoot(o) => format!("drop root ref o{o}"),
            };
            format!("{}: {what}", who(cfg, a))
        }
        Action::Gc => "GC: stop-the-world collection".to_string(),
        Action::Shutdown => "interpreter: shutdown flag set".to_string(),
    }
}

/// Shortens the Debug form of a wait (the observed word is what matters).
fn compact(s: &str) -> String {
    match s.find("Backoff(") {
        Some(i) => format!("{}Backoff", &s[..i]),
        None => s.to_string(),
    }
}
