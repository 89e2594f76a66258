//! The generated binding-word diagram has exactly the design's transitions, and `docs/spec.md`
//! embeds the current output.

use spec::diagram::{diagram_config, mermaid};
use spec::explore::explore;

#[test]
fn diagram_has_the_designed_transitions_only() {
    let walk = explore(&diagram_config());
    assert!(walk.cycle.is_none());
    let pairs: std::collections::BTreeSet<(&str, &str)> =
        walk.word_edges.iter().map(|&(f, t, _)| (f, t)).collect();
    let expected = [
        ("Detached", "Active"),
        ("Active", "ActiveLocked"),
        ("ActiveLocked", "Active"),
        ("Active", "InTransit"),
        ("Active", "Detached"),
        ("Active", "Active"),
        ("InTransit", "Inactive"),
        ("Inactive", "InactiveLocked"),
        ("InactiveLocked", "Active"),
        ("Inactive", "Detached"),
        ("Inactive", "Freed"),
        ("Detached", "Freed"),
    ];
    for e in expected {
        assert!(pairs.contains(&e), "missing transition {e:?}");
    }
    // The takeover: a lookup holding the lock on Active(W) publishes its spare in the unlock.
    assert!(
        walk.word_edges
            .iter()
            .any(|&(f, t, l)| (f, t) == ("ActiveLocked", "Active") && l.contains("takeover")),
        "the takeover never happened"
    );
    // Nothing else: in particular never InTransit → Active, never a malformed word, and a
    // locked word is only ever unlocked by its holder's publish.
    assert_eq!(
        pairs.len(),
        expected.len(),
        "unexpected transitions: {pairs:?}"
    );

    let text = mermaid(walk.word_edges);
    println!("{text}");
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/spec.md"))
        .expect("docs/spec.md");
    assert!(
        doc.contains(&text),
        "docs/spec.md does not embed the current diagram; regenerate it with \
         `cargo run --release -p spec --bin spec-diagram`"
    );
}
