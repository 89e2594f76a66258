//! A second, independent walk of the reachable state graph: depth first, looking at every edge.
//!
//! stateright checks state predicates; two things need the edges themselves:
//!
//! * **no livelock**: the reachable graph has no cycle. With every back-off modelled as a wait for
//!   a change, a cycle would be a loop of steps that makes no progress. Acyclic plus
//!   [`crate::properties::l1_progress`] means every run is finite, and one that only lets
//!   in-flight operations step ends with none in flight: every lookup returns.
//! * **the state diagram**: the binding-word transitions that actually occur, with their steps.
//!
//! States are remembered by a 64-bit fingerprint (as stateright does), so a walk needs a few
//! bytes per state rather than the state itself.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};

use crate::config::Config;
use crate::state::State;
use crate::steps::{self, Action};

/// One observed binding-word transition: from shape, to shape (`Freed` for the allocation's
/// free), protocol step.
pub type Edge = (&'static str, &'static str, &'static str);

/// What the walk found.
#[derive(Debug, Default)]
pub struct Exploration {
    /// Distinct reachable states.
    pub states: usize,
    /// Transitions.
    pub edges: usize,
    /// States without successors.
    pub terminal: usize,
    /// A cycle, as the actions around it, if the graph has one.
    pub cycle: Option<Vec<Action>>,
    /// Every binding-word transition observed.
    pub word_edges: BTreeSet<Edge>,
}

fn fingerprint(s: &State) -> u64 {
    let mut h = DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}

/// Whether a state is on the current DFS path or finished.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    OnPath,
    Done,
}

/// Walks every reachable state of `cfg`.
pub fn explore(cfg: &Config) -> Exploration {
    let mut out = Exploration::default();
    let mut mark: HashMap<u64, Mark> = HashMap::new();
    let init = State::initial(cfg);
    mark.insert(fingerprint(&init), Mark::OnPath);
    let first = successors(cfg, &init, &mut out);
    // (fingerprint, successors, next successor to visit)
    let mut stack = vec![(fingerprint(&init), first, 0usize)];
    // path[i] is the action from stack[i] to stack[i + 1].
    let mut path: Vec<Action> = Vec::new();
    while let Some((fp, succ, next)) = stack.last_mut() {
        if *next == succ.len() {
            if succ.is_empty() {
                out.terminal += 1;
            }
            mark.insert(*fp, Mark::Done);
            stack.pop();
            path.pop();
            continue;
        }
        let (action, child) = std::mem::replace(&mut succ[*next], (Action::Gc, None));
        *next += 1;
        out.edges += 1;
        let child = child.expect("each successor is visited once");
        let cfp = fingerprint(&child);
        match mark.get(&cfp) {
            Some(Mark::OnPath) => {
                if out.cycle.is_none() {
                    let pos = stack.iter().position(|(f, _, _)| *f == cfp).unwrap_or(0);
                    let mut c: Vec<Action> = path[pos..].to_vec();
                    c.push(action);
                    out.cycle = Some(c);
                }
            }
            Some(Mark::Done) => {}
            None => {
                mark.insert(cfp, Mark::OnPath);
                let succ = successors(cfg, &child, &mut out);
                path.push(action);
                stack.push((cfp, succ, 0));
            }
        }
    }
    out.states = mark.len();
    out
}

fn successors(cfg: &Config, s: &State, out: &mut Exploration) -> Vec<(Action, Option<State>)> {
    let mut acts = Vec::new();
    steps::actions(cfg, s, &mut acts);
    acts.into_iter()
        .map(|a| {
            let (next, events) = steps::apply(cfg, s, a);
            for e in events {
                let to = e.to.map_or("Freed", |w| w.shape());
                out.word_edges.insert((e.from.shape(), to, e.label));
            }
            (a, Some(next))
        })
        .collect()
}
