//! The kernel's public API on the minimal frontend and the global allocator, one thread: what the
//! model-frontend suites do not reach (found by `ci/mutants.sh`: mutants of these paths survived).

use binding_core::model::minimal::{FastFactory, lookup_borrowed, object, park};
use binding_core::{Found, HandleSlot, ObjectArc, State, StateKind};

#[test]
fn a_lookup_replaces_a_wrapper_whose_dealloc_is_parked() {
    let o = object();
    let w = lookup_borrowed(&o);
    let first = w.0;
    // The last reference goes, but the dealloc does not run (CPython 3.14's trashcan).
    let parked = park(w);
    assert_eq!(
        o.header().binding_state(),
        StateKind::Active,
        "still canonical"
    );
    // On the very thread that would run the dealloc: it must not wait for it (L1).
    let (w2, how) = o.lookup(&FastFactory).unwrap();
    assert_eq!(how, Found::Replaced);
    assert_ne!(w2, first, "a parked wrapper is never handed out again");
    // The wrapper's +1 native reference is still held by the parked wrapper, the replacement
    // holds another.
    assert_eq!(o.header().strong_count(), 3);
    // The late dealloc finds itself not canonical: frees the wrapper, drops its reference.
    drop(parked);
    assert_eq!(o.header().strong_count(), 2);
    let (w3, how) = o.lookup(&FastFactory).unwrap();
    assert_eq!((w3, how), (w2, Found::Hit));
    // SAFETY: two references owned (the replacement's and the hit's).
    unsafe {
        binding_core::model::minimal::release(w3);
        binding_core::model::minimal::release(w2);
    }
    // The replacement is cached, and goes with the object.
    assert_eq!(o.header().binding_state(), StateKind::Inactive);
    assert_eq!(o.header().strong_count(), 1);
    assert_eq!(o.header().weak_count(), 0);
}

#[test]
fn a_handle_slot_releases_its_handle_when_dropped() {
    let o = object();
    let slot = HandleSlot::new(o.clone());
    assert_eq!(o.header().strong_count(), 2);
    assert_eq!(slot.header(), Some(o.as_ptr()));
    drop(slot);
    assert_eq!(o.header().strong_count(), 1);
}

#[test]
fn identity_and_downcasts_of_native_references() {
    let a = ObjectArc::new(7u64, binding_core::model::minimal::Fast::<false>);
    let b = ObjectArc::new(7u64, binding_core::model::minimal::Fast::<false>);
    assert!(ObjectArc::ptr_eq(&a, &a.clone()));
    assert!(!ObjectArc::ptr_eq(&a, &b), "equal values, two objects");
    let (ra, rb) = (a.clone().erase(), b.clone().erase());
    assert_eq!(ra, a.clone().erase());
    assert_ne!(ra, rb);
    assert_eq!(ra.downcast_ref::<u64, binding_core::Global>(), Some(&7));
    assert_eq!(
        ra.downcast_ref::<u32, binding_core::Global>(),
        None,
        "wrong type"
    );
    let (wa, wb) = (ra.downgrade(), rb.downgrade());
    assert!(wa.ptr_eq(&wa.clone()));
    assert!(!wa.ptr_eq(&wb));
    assert_eq!(ra.header().weak_count(), 1);
    drop((a, ra));
    // Every strong reference gone: the weak count is the weak references alone.
    assert!(wa.upgrade().is_none());
    // SAFETY: none; the header stays allocated while `wa` lives (the weak reference).
    let _ = &wa;
}

#[test]
fn states_compare_by_kind_and_wrapper() {
    let mut x = 0u64;
    let mut y = 0u64;
    let p = core::ptr::NonNull::from(&mut x);
    let q = core::ptr::NonNull::from(&mut y);
    assert_eq!(State::Active(p), State::Active(p));
    assert_ne!(State::Active(p), State::Active(q));
    assert_ne!(State::Active(p), State::Inactive(p));
    assert_ne!(State::<u64>::Detached, State::Active(p));
}

#[test]
fn debug_and_display_name_what_they_show() {
    let o = object();
    let w = lookup_borrowed(&o);
    let weak = o.downgrade();
    let arc = ObjectArc::new(5u64, binding_core::model::minimal::Fast::<false>);
    let slot = HandleSlot::new(o.clone());
    for (text, needle) in [
        (format!("{o:?}"), "NativeRef"),
        (format!("{weak:?}"), "WeakRef"),
        (format!("{arc:?}"), "5"),
        (format!("{slot:?}"), "HandleSlot"),
        (format!("{:?}", o.header().binding().snapshot()), "Active"),
        (format!("{}", binding_core::AllocError), "alloc"),
        (format!("{:?}", o.header().binding()), "Active"),
        (
            format!(
                "{:?}",
                binding_core::Dealloc::<binding_core::Header<binding_core::model::minimal::Fast>>::Detached
            ),
            "Detached",
        ),
    ] {
        assert!(text.contains(needle), "{text:?} should mention {needle}");
    }
    drop((slot, w));
}
