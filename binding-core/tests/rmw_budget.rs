//! The kernel's atomic-operation budget per transition, counted (feature `count-rmw`), not timed.
//!
//! Every read-modify-write on a binding word, handle slot or native count is a locked instruction
//! (a full fence on x86), and on the machines we run on they dominate a transition's cost. These
//! counts are deterministic: a change that adds one fails here, whatever the machine's load. The
//! frontend is the minimal one (`model::minimal`), whose own atomics are not counted. The table
//! in docs/design.md ("Atomic operations per transition") is this test's expectation.

use binding_core::model::minimal::{Owned, lookup, lookup_borrowed, object};
use binding_core::sync::counted::{Counts, take};

fn counts(f: impl FnOnce()) -> Counts {
    take();
    f();
    take()
}

fn rmw(f: impl FnOnce()) -> u32 {
    counts(f).rmw
}

#[test]
fn hit_with_a_borrowed_handle() {
    let o = object();
    let live = lookup_borrowed(&o);
    let mut hit = None;
    let c = counts(|| hit = Some(lookup_borrowed(&o)));
    // The word's lock (compare-exchange); the unlock is a plain store.
    assert_eq!(
        c,
        Counts {
            rmw: 1,
            loads: 1,
            stores: 1
        },
        "hit"
    );
    assert_eq!(hit.as_ref().unwrap().0, live.0);
}

#[test]
fn hit_handing_over_a_reference() {
    let o = object();
    let _live = lookup_borrowed(&o);
    let extra = o.clone();
    // As above, plus the strong decrement of the +1 the caller handed over (the wrapper's own
    // reference count is the frontend's, not counted).
    assert_eq!(rmw(|| drop(lookup(extra))), 2, "make-return hit");
}

#[test]
fn dealloc_and_free_into_the_cache() {
    let o = object();
    let w = lookup_borrowed(&o);
    // InTransit compare-exchange, strong decrement, settle compare-exchange (the dying
    // wrapper's slot is emptied by a load and a store: only its dealloc can reach it).
    assert_eq!(rmw(|| drop(w)), 3, "dealloc + settle");
}

#[test]
fn revival() {
    let o = object();
    drop(lookup_borrowed(&o));
    let mut w: Option<Owned> = None;
    // The lock (compare-exchange) and the handle's strong increment (the cached block's slot
    // is filled by a store: the locked word makes it ours).
    assert_eq!(rmw(|| w = Some(lookup_borrowed(&o))), 2, "revival");
}

#[test]
fn drop_and_refetch() {
    let o = object();
    let w = lookup_borrowed(&o);
    // While a wrapper is kept, a refetch and its release: the lock only.
    assert_eq!(rmw(|| drop(lookup_borrowed(&o))), 1, "hit + release");
    drop(w);
    // None kept: the revival (2) and the dealloc (3), the loop a Python `o.x` read pays.
    assert_eq!(
        rmw(|| drop(lookup_borrowed(&o))),
        2 + 3,
        "revival + dealloc"
    );
}

#[test]
fn fresh_wrapper() {
    let o = object();
    let mut w: Option<Owned> = None;
    // The handle's strong increment and the publication compare-exchange from Detached.
    assert_eq!(rmw(|| w = Some(lookup_borrowed(&o))), 2, "fresh");
}

#[test]
fn dealloc_of_the_last_reference() {
    let o = object();
    let w = lookup_borrowed(&o);
    drop(o);
    // The wrapper holds the last reference: Active → InTransit, the strong and the weak
    // decrement, reclaim's deferral (a compare-exchange), and the settle's compare-exchange,
    // which fails and frees the block.
    assert_eq!(rmw(|| drop(w)), 5, "dealloc + reclaim + settle");
}

#[test]
fn reclaim_of_a_cached_wrapper() {
    let o = object();
    drop(lookup_borrowed(&o));
    // The last strong decrement, the weak decrement, nothing on the word (nobody else can
    // reach it: a plain store detaches it).
    assert_eq!(rmw(|| drop(o)), 2, "reclaim");
}

/// GIL mode (`Frontend::SERIALIZED`, with `Frontend::ATTACH_LOCKS`): the runtime's global lock
/// excludes every other writer of the word, reclaim included (it holds the lock or attaches,
/// taking it, before it writes a word that is not Detached), so every transition is a load and a
/// store; only the native counts stay read-modify-writes.
mod gil_mode {
    use super::*;
    use binding_core::model::minimal::object_gil;

    #[test]
    fn hit() {
        let o = object_gil();
        let live = lookup_borrowed(&o);
        let mut hit = None;
        let c = counts(|| hit = Some(lookup_borrowed(&o)));
        // One load of the word; no lock, no unlock.
        assert_eq!(
            c,
            Counts {
                rmw: 0,
                loads: 1,
                stores: 0
            },
            "hit"
        );
        assert_eq!(hit.as_ref().unwrap().0, live.0);
    }

    #[test]
    fn hit_handing_over_a_reference() {
        let o = object_gil();
        let _live = lookup_borrowed(&o);
        let extra = o.clone();
        // Only the strong decrement of the reference handed over.
        assert_eq!(rmw(|| drop(lookup(extra))), 1, "make-return hit");
    }

    #[test]
    fn dealloc_and_free_into_the_cache() {
        let o = object_gil();
        let w = lookup_borrowed(&o);
        // The strong decrement only; the InTransit transition and the settle are each a load
        // and a store.
        assert_eq!(rmw(|| drop(w)), 1, "dealloc + settle");
    }

    #[test]
    fn revival() {
        let o = object_gil();
        drop(lookup_borrowed(&o));
        let mut w: Option<Owned<true>> = None;
        // The handle's strong increment only.
        assert_eq!(rmw(|| w = Some(lookup_borrowed(&o))), 1, "revival");
    }

    #[test]
    fn drop_and_refetch() {
        let o = object_gil();
        let w = lookup_borrowed(&o);
        assert_eq!(rmw(|| drop(lookup_borrowed(&o))), 0, "hit + release");
        drop(w);
        // The revival (1) and the dealloc (1): 2, from 5 in the general mode.
        assert_eq!(
            rmw(|| drop(lookup_borrowed(&o))),
            1 + 1,
            "revival + dealloc"
        );
    }

    #[test]
    fn fresh_wrapper() {
        let o = object_gil();
        let mut w: Option<Owned<true>> = None;
        // The handle's strong increment; the publication is a load and a store.
        assert_eq!(rmw(|| w = Some(lookup_borrowed(&o))), 1, "fresh");
    }

    #[test]
    fn reclaim_of_a_cached_wrapper() {
        let o = object_gil();
        drop(lookup_borrowed(&o));
        // As in the general mode: the last strong and weak decrements; the word is detached by
        // a store (this thread holds the lock: no attach for the word; `Fast`'s attach, which
        // frees the cached block, counts nothing).
        assert_eq!(rmw(|| drop(o)), 2, "reclaim");
    }

    #[test]
    fn dealloc_of_the_last_reference() {
        let o = object_gil();
        let w = lookup_borrowed(&o);
        drop(o);
        // The wrapper holds the last reference: its strong and weak decrements; the transition,
        // reclaim's deferral (re-entrant, under the lock) and the settle (which then frees the
        // block) are loads and stores.
        assert_eq!(rmw(|| drop(w)), 2, "dealloc + reclaim + settle");
    }
}

#[test]
fn weak_reference_round_trip() {
    let o = object();
    let mut weak = None;
    // The weak increment.
    assert_eq!(rmw(|| weak = Some(o.downgrade())), 1, "downgrade");
    let weak = weak.unwrap();
    let mut strong = None;
    // One compare-exchange on the strong count (an upgrade never increments blindly: the
    // broken variant `UpgradeBlindIncrement` does, and resurrects a dropped value).
    assert_eq!(rmw(|| strong = weak.upgrade()), 1, "upgrade");
    assert!(strong.is_some());
    // Their drops: the strong and the weak decrement.
    assert_eq!(rmw(|| drop((strong, weak))), 2, "drops");
}

#[test]
fn weak_upgrade_of_a_dead_object() {
    let o = object();
    let weak = o.downgrade();
    drop(o);
    // The failed upgrade only reads the strong count.
    let c = counts(|| assert!(weak.upgrade().is_none()));
    assert_eq!(c.rmw, 0, "failed upgrade");
}
