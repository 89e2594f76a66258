//! The binding-word state diagram, generated from the transitions the model actually takes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::config::Config;
use crate::explore::{Edge, explore};

/// The configuration the diagram is generated from: one object, two threads with two operations
/// each, every option on (rebind, weak references, allocation failure, shutdown).
pub fn diagram_config() -> Config {
    Config {
        rebind: true,
        weakrefs: true,
        alloc_failure: true,
        shutdown: true,
        ..Config::one_object(2, 2)
    }
}

/// The bits `W|INACTIVE` that reclaim leaves for the settler are those of Inactive, but they mean
/// something else (the object is dead, only the settler can see the word): the diagram gives
/// them a state of their own, `Deferred`.
fn refine((from, to, label): Edge) -> Edge {
    let to = if label.starts_with("reclaim: clear IN_TRANSIT") {
        "Deferred"
    } else {
        to
    };
    let from = if label.starts_with("settle (second settler)") {
        "Deferred"
    } else {
        from
    };
    (from, to, label)
}

const STATES: [(&str, &str); 8] = [
    ("Deferred", "W|INACTIVE left by reclaim (settler frees)"),
    ("Detached", "Detached (0)"),
    ("Active", "Active (W)"),
    ("ActiveLocked", "Active + LOCKED"),
    ("Inactive", "Inactive (W|INACTIVE)"),
    ("InactiveLocked", "Inactive + LOCKED"),
    ("InTransit", "InTransit (W|INACTIVE|IN_TRANSIT)"),
    ("Malformed", "Malformed"),
];

/// Renders observed word transitions as a Mermaid `stateDiagram-v2`. Transitions between the
/// same two states are merged into one arrow whose label lists the steps.
pub fn mermaid(edges: impl IntoIterator<Item = Edge>) -> String {
    let mut merged: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for (from, to, label) in edges.into_iter().map(refine) {
        merged.entry((from, to)).or_default().push(label);
    }
    let used = |name: &str| merged.keys().any(|(f, t)| *f == name || *t == name);
    let mut out = String::from("stateDiagram-v2\n");
    for (id, text) in STATES {
        if used(id) {
            let _ = writeln!(out, "    state \"{text}\" as {id}");
        }
    }
    out.push_str("    [*] --> Detached\n");
    for ((from, to), labels) in &merged {
        let to = if *to == "Freed" { "[*]" } else { to };
        let text: Vec<String> = labels.iter().map(|l| l.replace(':', " -")).collect();
        let _ = writeln!(out, "    {from} --> {to}: {}", text.join("<br/>"));
    }
    out
}

/// Explores [`diagram_config`] and renders its diagram.
pub fn generate() -> String {
    mermaid(explore(&diagram_config()).word_edges)
}
