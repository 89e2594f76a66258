//! Concurrency scenarios shared by the loom and shuttle suites.
//!
//! Each scenario builds its own model runtime, runs its actors on facade threads (loom, shuttle
//! or std), and ends by checking the properties: S1, S3 and S6 are asserted by the model at every
//! step, S4 and S5 by the scenario, S2 by `assert_quiescent`, L1 by the model's spin bound and by
//! the checker's deadlock detection. `FLAW` selects a broken kernel (0 = the correct one).
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use binding_core::model::{Config, ModelFrontend, Own, System, WrapperRef};
use binding_core::sync::thread;
use binding_core::{NativeObject, NativeRef, StateKind};

/// A wrapper address handed to another thread (only compared, never dereferenced there).
struct SendPtr<T>(std::ptr::NonNull<T>);
// SAFETY: the pointer is only passed to `detach`, which compares it with the word.
unsafe impl<T> Send for SendPtr<T> {}

/// A scenario: a name and a body generic over the kernel variant.
pub type Scenario = (&'static str, fn());

/// A runtime with a small spin bound: under a model checker every wait yields to the thread it
/// waits on, so a correct kernel never spins long.
pub fn runtime<const FLAW: u8, const GIL: bool, S: System>() -> ModelFrontend<FLAW, GIL, S> {
    // On real threads the awaited thread may be descheduled for a while: the spin bound is only
    // meaningful under a checker's fair waiting.
    let default = if cfg!(any(loom, feature = "shuttle")) {
        24
    } else {
        1_000_000
    };
    runtime_with_spins::<FLAW, GIL, S>(
        std::env::var("TETHER_MAX_SPINS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

/// A runtime whose operations may wait `max_spins` times: with many actors on one object a
/// waiter is legitimately overtaken by every other actor's lock and unlock (the word's spin-lock
/// is not fair), so the bound scales with the actors; a real livelock is still reported by the
/// checker (deadlock or step limit).
pub fn runtime_with_spins<const FLAW: u8, const GIL: bool, S: System>(
    max_spins: u32,
) -> ModelFrontend<FLAW, GIL, S> {
    ModelFrontend::new(Config {
        max_spins,
        yield_after: 4,
        ..Config::default()
    })
}

type Rt<const F: u8, const G: bool, S> = ModelFrontend<F, G, S>;
type Obj<const F: u8, const G: bool, S> = NativeRef<<S as System>::Native<F, G>>;

fn object<const F: u8, const G: bool, S: System>(rt: &Rt<F, G, S>) -> Obj<F, G, S> {
    rt.native(1, None)
}

/// An object whose wrapper died and is cached (Inactive).
fn cached_object<const F: u8, const G: bool, S: System>(rt: &Rt<F, G, S>) -> (Obj<F, G, S>, usize) {
    let obj = object(rt);
    let w = rt.lookup(obj.clone());
    let addr = w.addr();
    drop(w);
    (obj, addr)
}

fn finish<const F: u8, const G: bool, S: System>(rt: Rt<F, G, S>) {
    rt.assert_quiescent();
}

/// S5: a re-fetch while the object lives has the first wrapper's address, unless a lookup
/// replaced a dying wrapper whose dealloc did not come in time (the model asserts, at the
/// replacement, that the replaced wrapper was dead, S4).
fn assert_stable<const F: u8, const G: bool, S: System>(
    rt: &Rt<F, G, S>,
    found: usize,
    first: usize,
    what: &str,
) {
    assert!(
        found == first || rt.stats.replaced.load(Relaxed) > 0,
        "S5 violated: {what}"
    );
}

/// S4 for two wrappers of one object held at once by different actors (no move between).
fn assert_one_wrapper<const F: u8, const G: bool, S: System>(rt: &Rt<F, G, S>, a: usize, b: usize) {
    assert!(
        a == b || rt.stats.replaced.load(Relaxed) > 0,
        "S4 violated: two wrappers for one object"
    );
}

// ---------------------------------------------------------------- two-actor cells

/// lookup × lookup: two first lookups of a fresh object converge on one wrapper (S4).
pub fn lookup_lookup<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let spawn_lookup = |o: Obj<F, G, S>, rt: Rt<F, G, S>| thread::spawn(move || rt.lookup(o));
    let a = spawn_lookup(obj.clone(), rt.clone());
    let b = spawn_lookup(obj.clone(), rt.clone());
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(
        a.addr(),
        b.addr(),
        "S4 violated: two first lookups returned two wrappers"
    );
    drop((a, b, obj));
    finish(rt);
}

/// lookup × dealloc: the live wrapper dies while another thread looks the object up; the lookup
/// returns the same address (hit before, wait during, revival after) (S4, S5).
pub fn lookup_dealloc<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let w = rt.lookup(obj.clone());
    let addr = w.addr();
    let dealloc = thread::spawn(move || drop(w));
    let (rt2, o2) = (rt.clone(), obj.clone());
    let lookup = thread::spawn(move || rt2.lookup(o2));
    dealloc.join().unwrap();
    let found = lookup.join().unwrap();
    assert_stable(
        &rt,
        found.addr(),
        addr,
        "identity changed while the object lived",
    );
    drop((found, obj));
    finish(rt);
}

/// lookup × reclaim: one thread revives a cached wrapper while another drops a native reference;
/// whoever is last reclaims (possibly re-entrantly inside the wrapper's dealloc).
pub fn lookup_reclaim<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let (obj, addr) = cached_object(&rt);
    let other = obj.clone();
    let dropper = thread::spawn(move || drop(other));
    let rt2 = rt.clone();
    let looker = thread::spawn(move || {
        let w = rt2.lookup(obj);
        assert_eq!(w.addr(), addr, "S5 violated: revival moved the wrapper");
    });
    dropper.join().unwrap();
    looker.join().unwrap();
    finish(rt);
}

/// lookup × move: a lookup races `x._move()`; whatever it returns has this object's handle (S3)
/// and afterwards the binding belongs to the move target.
pub fn lookup_move<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let x = rt.lookup(obj.clone());
    let mover = thread::spawn(move || {
        let y = x.take_over().expect("x holds a handle");
        drop(x);
        y
    });
    let (rt2, o2) = (rt.clone(), obj.clone());
    let looker = thread::spawn(move || rt2.lookup(o2));
    let y = mover.join().unwrap();
    let seen = looker.join().unwrap();
    drop(seen);
    assert_eq!(
        rt.lookup(obj.clone()).addr(),
        y.addr(),
        "the binding must follow the move"
    );
    drop((y, obj));
    finish(rt);
}

/// lookup × detach: a lookup races an eager detach (before a handle is moved out).
pub fn lookup_detach<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let x = rt.lookup(obj.clone());
    let detacher = thread::spawn(move || {
        let handle = x.handle().expect("x holds a handle");
        let taken = x.with_gil(|| {
            let _ = binding_core::detach(handle.object(), x.as_ptr());
            x.wrapper().slot().take()
        });
        drop((x, handle));
        taken
    });
    let (rt2, o2) = (rt.clone(), obj.clone());
    let looker = thread::spawn(move || rt2.lookup(o2));
    let taken = detacher.join().unwrap();
    let seen = looker.join().unwrap();
    drop((seen, taken, obj));
    finish(rt);
}

/// lookup × shutdown: shutdown only changes what reclaim may do.
pub fn lookup_shutdown<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let (obj, addr) = cached_object(&rt);
    let rt2 = rt.clone();
    let stopper = thread::spawn(move || rt2.shutdown());
    let rt3 = rt.clone();
    let looker = thread::spawn(move || {
        let w = rt3.lookup(obj);
        assert_eq!(w.addr(), addr);
    });
    stopper.join().unwrap();
    looker.join().unwrap();
    finish(rt);
}

/// dealloc × reclaim: the wrapper dies on one thread while another drops the last other native
/// reference. Both settle orders: the wrapper's free first (reclaim frees the cached wrapper) or
/// reclaim first (it defers and the free frees both) (S6).
pub fn dealloc_reclaim<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let w = rt.lookup(obj.clone());
    let a = thread::spawn(move || drop(w));
    let b = thread::spawn(move || drop(obj));
    a.join().unwrap();
    b.join().unwrap();
    record_settle_order(&rt);
    finish(rt);
}

/// dealloc × reclaim × shutdown: the wrapper dies on one thread, the last other native
/// reference is dropped on another, and the runtime starts finalising on a third. In GIL mode a
/// reclaim whose attach is refused while the wrapper is between its dealloc and its free leaves
/// the word to the settler (the block is then leaked with the wrapper cached in it, the one
/// native leak `assert_quiescent` excuses after shutdown); never a double free.
pub fn dealloc_reclaim_shutdown<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let w = rt.lookup(obj.clone());
    let a = thread::spawn(move || drop(w));
    let b = thread::spawn(move || drop(obj));
    let rt2 = rt.clone();
    let c = thread::spawn(move || rt2.shutdown());
    a.join().unwrap();
    b.join().unwrap();
    c.join().unwrap();
    finish(rt);
}

/// dealloc × move: `x` dies (its last reference dropped on one thread) racing a move of `x`
/// on another thread that still holds a reference.
pub fn dealloc_move<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let x = rt.lookup(obj.clone());
    let x2 = x.clone();
    let mover = thread::spawn(move || {
        let y = x.take_over().expect("x holds a handle");
        drop(x);
        y
    });
    let dropper = thread::spawn(move || drop(x2));
    let y = mover.join().unwrap();
    dropper.join().unwrap();
    assert_eq!(
        obj.object().binding().snapshot().kind(),
        StateKind::Active,
        "y is canonical"
    );
    drop(y);
    drop(obj);
    finish(rt);
}

/// dealloc × detach: `x` dies racing an eager detach of `x`.
pub fn dealloc_detach<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let x = rt.lookup(obj.clone());
    let x2 = x.clone();
    let detacher = thread::spawn(move || {
        let taken = x.with_gil(|| {
            let _ = binding_core::detach(obj.object(), x.as_ptr());
            x.wrapper().slot().take()
        });
        drop(x);
        (taken, obj)
    });
    let dropper = thread::spawn(move || drop(x2));
    let (taken, obj) = detacher.join().unwrap();
    dropper.join().unwrap();
    assert_eq!(
        obj.object().binding().snapshot().kind(),
        StateKind::Detached
    );
    drop((taken, obj));
    finish(rt);
}

/// dealloc × shutdown: a wrapper dies while the runtime starts finalising.
pub fn dealloc_shutdown<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let w = rt.lookup(object(&rt));
    let a = thread::spawn(move || drop(w));
    let rt2 = rt.clone();
    let b = thread::spawn(move || rt2.shutdown());
    a.join().unwrap();
    b.join().unwrap();
    finish(rt);
}

/// reclaim × move: the last other native reference is dropped while `x` moves to `y`.
pub fn reclaim_move<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let x = rt.lookup(obj.clone());
    let mover = thread::spawn(move || {
        let y = x.take_over().expect("x holds a handle");
        drop(x);
        drop(y);
    });
    let dropper = thread::spawn(move || drop(obj));
    mover.join().unwrap();
    dropper.join().unwrap();
    finish(rt);
}

/// reclaim × detach: the last other native reference is dropped while `x` detaches.
pub fn reclaim_detach<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let x = rt.lookup(obj.clone());
    let keep = obj.clone();
    let detacher = thread::spawn(move || {
        let taken = x.with_gil(|| {
            let _ = binding_core::detach(keep.object(), x.as_ptr());
            x.wrapper().slot().take()
        });
        drop((x, keep, taken));
    });
    let dropper = thread::spawn(move || drop(obj));
    detacher.join().unwrap();
    dropper.join().unwrap();
    finish(rt);
}

/// reclaim × shutdown: a reclaim on a foreign thread races the runtime's shutdown: it either
/// frees the cached wrapper (attached before) or leaks it on purpose (after), never both.
pub fn reclaim_shutdown<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let (obj, _) = cached_object(&rt);
    let dropper = thread::spawn(move || drop(obj));
    let rt2 = rt.clone();
    let stopper = thread::spawn(move || rt2.shutdown());
    dropper.join().unwrap();
    stopper.join().unwrap();
    finish(rt);
}

/// move × detach: `x → y` races a detach of `x`; exactly one wins, the word stays consistent.
pub fn move_detach<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let x = rt.lookup(obj.clone());
    let xp = SendPtr(x.as_ptr());
    let mover = thread::spawn(move || {
        let y = x.take_over().expect("x holds a handle");
        drop(x);
        y
    });
    let (o2, rt2) = (obj.clone(), rt.clone());
    let detacher = thread::spawn(move || {
        let xp = xp;
        rt2.with_gil(|| binding_core::detach(o2.object(), xp.0)) == binding_core::Rebound::Done
    });
    let y = mover.join().unwrap();
    let detached = detacher.join().unwrap();
    let next = rt.lookup(obj.clone());
    assert_eq!(
        next.addr() == y.addr(),
        !detached,
        "the binding follows the move unless the detach won"
    );
    drop((next, y, obj));
    finish(rt);
}

/// move × shutdown.
pub fn move_shutdown<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let x = rt.lookup(obj.clone());
    let mover = thread::spawn(move || {
        let y = x.take_over().expect("x holds a handle");
        drop((x, y));
    });
    let rt2 = rt.clone();
    let stopper = thread::spawn(move || rt2.shutdown());
    mover.join().unwrap();
    stopper.join().unwrap();
    drop(obj);
    finish(rt);
}

/// detach × shutdown.
pub fn detach_shutdown<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let x = rt.lookup(obj.clone());
    let detacher = thread::spawn(move || {
        let _ = x.with_gil(|| binding_core::detach(obj.object(), x.as_ptr()));
        drop((x, obj));
    });
    let rt2 = rt.clone();
    let stopper = thread::spawn(move || rt2.shutdown());
    detacher.join().unwrap();
    stopper.join().unwrap();
    finish(rt);
}

// ---------------------------------------------------------------- three-actor flows

/// Two lookups race one dealloc of the live wrapper: both return the original address.
pub fn two_lookups_one_dealloc<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let w = rt.lookup(obj.clone());
    let addr = w.addr();
    let dealloc = thread::spawn(move || drop(w));
    let spawn_lookup =
        |o: Obj<F, G, S>, rt: Rt<F, G, S>| thread::spawn(move || rt.lookup(o).addr());
    let a = spawn_lookup(obj.clone(), rt.clone());
    let b = spawn_lookup(obj.clone(), rt.clone());
    dealloc.join().unwrap();
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert_stable(&rt, a, addr, "the first lookup moved");
    assert_stable(&rt, b, addr, "the second lookup moved");
    drop(obj);
    finish(rt);
}

/// A revival races the reclaim of the object: two other threads drop native references while
/// one revives and drops the wrapper.
pub fn revive_vs_reclaim<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let (obj, addr) = cached_object(&rt);
    let (o1, o2) = (obj.clone(), obj.clone());
    let rt2 = rt.clone();
    let reviver = thread::spawn(move || assert_eq!(rt2.lookup(obj).addr(), addr));
    let d1 = thread::spawn(move || drop(o1));
    let d2 = thread::spawn(move || drop(o2));
    reviver.join().unwrap();
    d1.join().unwrap();
    d2.join().unwrap();
    finish(rt);
}

/// Lesson 3: a wrapper revived (and kept alive) on one thread must be hit by a lookup on
/// another; without re-arming try-incref after the revival that lookup waits forever.
pub fn revive_then_hit_elsewhere<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let (obj, addr) = cached_object(&rt);
    let revived = rt.lookup(obj.clone());
    assert_eq!(revived.addr(), addr, "S5 violated");
    let (rt2, o2) = (rt.clone(), obj.clone());
    let other = thread::spawn(move || rt2.lookup(o2).addr());
    let (rt3, o3) = (rt.clone(), obj.clone());
    let third = thread::spawn(move || rt3.lookup(o3).addr());
    assert_eq!(other.join().unwrap(), addr, "S4 violated");
    assert_eq!(third.join().unwrap(), addr, "S4 violated");
    drop((revived, obj));
    finish(rt);
}

/// A lookup misses on a dying wrapper; the wrapper is cached and revived at the same address by
/// another thread, which keeps it alive while it waits for the lookup. The word reads Active(W)
/// again (A-B-A): the lookup must retry and hit, not wait for a change that never comes (L1;
/// found by binding-py's model).
pub fn missed_lookup_sees_revival<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let w = rt.lookup(obj.clone());
    let addr = w.addr();
    let dying = thread::spawn(move || drop(w));
    let (rt2, o2) = (rt.clone(), obj.clone());
    let looker = thread::spawn(move || rt2.lookup(o2).addr());
    dying.join().unwrap();
    let revived = rt.lookup(obj.clone());
    assert_stable(&rt, revived.addr(), addr, "the revival moved");
    let looked = looker.join().unwrap();
    assert_stable(&rt, looked, addr, "the missed lookup moved");
    drop((revived, obj));
    finish(rt);
}

/// CPython 3.14's trashcan: the last reference to a wrapper is dropped on a deep C stack, so its
/// dealloc is parked until this thread unwinds, and this thread looks the object up meanwhile
/// (another thread does too). The lookups must not wait for the parked dealloc (L1): one
/// replaces the dead wrapper (the model asserts it was dead, S4), both then agree on the
/// replacement, and the late dealloc finds itself not canonical; nothing leaks (S2).
pub fn parked_dealloc_lookup<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let w = rt.lookup(obj.clone());
    let first = w.addr();
    let (rt2, o2) = (rt.clone(), obj.clone());
    let other = thread::spawn(move || rt2.lookup(o2));
    let parked = w.drop_parked();
    let again = rt.lookup(obj.clone());
    let theirs = other.join().unwrap();
    assert_eq!(again.addr(), rt.lookup(obj.clone()).addr(), "S4 violated");
    assert_one_wrapper(&rt, again.addr(), theirs.addr());
    if parked.is_some() {
        // Our reference was the last: the dealloc is parked, so nobody could have revived the
        // wrapper at its address.
        assert_ne!(again.addr(), first, "a parked wrapper was handed out again");
    }
    drop(parked);
    drop((again, theirs, obj));
    finish(rt);
}

/// A takeover and the replaced wrapper's late dealloc on two threads that do not join: this
/// thread parks its wrapper's dealloc (CPython's trashcan), another thread's lookup misses it
/// and replaces it, and the late dealloc runs meanwhile and frees the wrapper, which must happen
/// after the replacing lookup's try-incref read of it (the dealloc's compare-exchange acquires
/// the replacement's publication).
pub fn takeover_vs_late_dealloc<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let w = rt.lookup(obj.clone());
    let parked = w.drop_parked();
    let (rt2, o2) = (rt.clone(), obj.clone());
    let other = thread::spawn(move || {
        let found = rt2.lookup(o2);
        let addr = found.addr();
        drop(found);
        addr
    });
    drop(parked);
    other.join().unwrap();
    drop(obj);
    finish(rt);
}

/// Three first lookups of a fresh object converge on one wrapper.
pub fn three_first_lookups<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let obj = object(&rt);
    let spawn_lookup = |o: Obj<F, G, S>, rt: Rt<F, G, S>| thread::spawn(move || rt.lookup(o));
    let hs = [
        spawn_lookup(obj.clone(), rt.clone()),
        spawn_lookup(obj.clone(), rt.clone()),
        spawn_lookup(obj.clone(), rt.clone()),
    ];
    let ws: Vec<WrapperRef<F, G, S>> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        ws.iter().all(|w| w.addr() == ws[0].addr()),
        "S4 violated: concurrent first lookups returned different wrappers"
    );
    drop((ws, obj));
    finish(rt);
}

/// Dealloc on A, last native reference dropped on B, while C looks up a second object that
/// references the first: the settle baton and a nested reclaim.
pub fn dealloc_reclaim_nested<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, S>();
    let inner = object(&rt);
    let outer = rt.native(2, Some(inner.clone()));
    let w = rt.lookup(inner.clone());
    let a = thread::spawn(move || drop(w));
    let b = thread::spawn(move || drop(inner));
    let rt2 = rt.clone();
    let c = thread::spawn(move || {
        let wo = rt2.lookup(outer.clone());
        drop(outer);
        drop(wo);
    });
    a.join().unwrap();
    b.join().unwrap();
    c.join().unwrap();
    record_settle_order(&rt);
    finish(rt);
}

/// Which settler freed the native block, across all executions of a checker run.
pub static SETTLED_BY_FREE: AtomicUsize = AtomicUsize::new(0);
/// Executions in which reclaim came second and freed the cached wrapper itself.
pub static SETTLED_BY_RECLAIM: AtomicUsize = AtomicUsize::new(0);

fn record_settle_order<const F: u8, const G: bool, S: System>(rt: &Rt<F, G, S>) {
    // Every freed wrapper is either freed by its own free (reclaim deferred) or by reclaim.
    let deferred = rt.stats.deferred_settles.load(Relaxed);
    if deferred > 0 {
        SETTLED_BY_FREE.fetch_add(1, Relaxed);
    } else {
        SETTLED_BY_RECLAIM.fetch_add(1, Relaxed);
    }
}

/// The two-actor matrix: every pair of {lookup, dealloc, reclaim, move, detach, shutdown}.
pub fn cells<const F: u8, const G: bool, S: System>() -> Vec<Scenario> {
    vec![
        ("lookup_lookup", lookup_lookup::<F, G, S>),
        ("lookup_dealloc", lookup_dealloc::<F, G, S>),
        ("lookup_reclaim", lookup_reclaim::<F, G, S>),
        ("lookup_move", lookup_move::<F, G, S>),
        ("lookup_detach", lookup_detach::<F, G, S>),
        ("lookup_shutdown", lookup_shutdown::<F, G, S>),
        ("dealloc_reclaim", dealloc_reclaim::<F, G, S>),
        ("dealloc_move", dealloc_move::<F, G, S>),
        ("dealloc_detach", dealloc_detach::<F, G, S>),
        ("dealloc_shutdown", dealloc_shutdown::<F, G, S>),
        ("reclaim_move", reclaim_move::<F, G, S>),
        ("reclaim_detach", reclaim_detach::<F, G, S>),
        ("reclaim_shutdown", reclaim_shutdown::<F, G, S>),
        ("move_detach", move_detach::<F, G, S>),
        ("move_shutdown", move_shutdown::<F, G, S>),
        ("detach_shutdown", detach_shutdown::<F, G, S>),
    ]
}

// ---------------------------------------------------------------- weak references
// (the kernel's own objects only: `S` is ignored)

/// weak upgrade × last strong drop: the upgrade either fails (the value is gone) or yields a
/// live value that this thread then drops; never a resurrected one (the model's payload reports
/// a second drop, its heap a double free).
#[allow(clippy::extra_unused_type_parameters)] // the scenarios' common shape (see above)
pub fn upgrade_last_drop<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, Own>();
    let obj = rt.object(1, None);
    let weak = obj.downgrade();
    let dropper = thread::spawn(move || drop(obj));
    let upgrader = thread::spawn(move || {
        if let Some(strong) = weak.upgrade() {
            assert!(strong.is_live(), "S1 violated: upgraded to a dropped value");
            assert_eq!(strong.id, 1);
        }
        drop(weak);
    });
    dropper.join().unwrap();
    upgrader.join().unwrap();
    finish(rt);
}

/// weak drop × the last strong drop of an object with a cached wrapper: whichever release is
/// last runs reclaim, which frees the cached wrapper and the block exactly once (S1, S2).
#[allow(clippy::extra_unused_type_parameters)] // the scenarios' common shape (see above)
pub fn weak_drop_reclaim<const F: u8, const G: bool, S: System>() {
    let rt = runtime::<F, G, Own>();
    let (obj, _addr) = cached_object::<F, G, Own>(&rt);
    let weak = obj.downgrade();
    let strong_dropper = thread::spawn(move || drop(obj));
    let weak_dropper = thread::spawn(move || drop(weak));
    strong_dropper.join().unwrap();
    weak_dropper.join().unwrap();
    finish(rt);
}

/// The weak-reference cells. Weak references are the kernel's own objects' (a foreign object
/// system has its own, outside the kernel): `S` is ignored, these always run on [`Own`].
pub fn weak_cells<const F: u8, const G: bool>() -> Vec<Scenario> {
    vec![
        ("upgrade_last_drop", upgrade_last_drop::<F, G, Own>),
        ("weak_drop_reclaim", weak_drop_reclaim::<F, G, Own>),
    ]
}

/// The three-actor flows.
pub fn flows<const F: u8, const G: bool, S: System>() -> Vec<Scenario> {
    vec![
        (
            "two_lookups_one_dealloc",
            two_lookups_one_dealloc::<F, G, S>,
        ),
        ("revive_vs_reclaim", revive_vs_reclaim::<F, G, S>),
        ("three_first_lookups", three_first_lookups::<F, G, S>),
        (
            "revive_then_hit_elsewhere",
            revive_then_hit_elsewhere::<F, G, S>,
        ),
        (
            "missed_lookup_sees_revival",
            missed_lookup_sees_revival::<F, G, S>,
        ),
        ("dealloc_reclaim_nested", dealloc_reclaim_nested::<F, G, S>),
        ("parked_dealloc_lookup", parked_dealloc_lookup::<F, G, S>),
        (
            "takeover_vs_late_dealloc",
            takeover_vs_late_dealloc::<F, G, S>,
        ),
    ]
}

// ---------------------------------------------------------------- many-actor scenarios (shuttle)

/// `threads` actors over `objects` objects (each referencing the previous one): each actor looks
/// objects up, drops and refetches them (checking S4/S5 while it holds a native reference), moves
/// object 0's wrappers, and finally drops its native references on whatever thread it runs on.
pub fn many_actors<const F: u8, const G: bool, S: System>(threads: usize, objects: usize) {
    let rt = runtime_with_spins::<F, G, S>(10_000);
    let mut objs: Vec<Obj<F, G, S>> = Vec::new();
    for i in 0..objects {
        let child = objs.last().cloned();
        objs.push(rt.native(i as u32, child));
    }
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (rt, objs) = (rt.clone(), objs.clone());
            thread::spawn(move || {
                for step in 0..3 {
                    let index = (t + step) % objs.len();
                    let o = &objs[index];
                    let w = rt.lookup(o.clone());
                    if index == 0 {
                        // Object 0 is the movers' object: a move hands its binding to a new
                        // wrapper, so identity is not asserted there; the model checks S1-S3.
                        if let Some(moved) = w.take_over() {
                            drop(w);
                            drop(moved);
                        }
                        continue;
                    }
                    // Nobody moves the other objects: while we hold a native reference, every
                    // lookup returns the same wrapper (S4 while it lives, S5 across its deaths).
                    let again = rt.lookup(o.clone());
                    assert_eq!(w.addr(), again.addr(), "S4 violated");
                    let addr = w.addr();
                    drop((w, again));
                    let refetched = rt.lookup(o.clone()).addr();
                    assert_stable(&rt, refetched, addr, "a refetch moved");
                }
                drop(objs);
            })
        })
        .collect();
    drop(objs);
    for h in handles {
        h.join().unwrap();
    }
    finish(rt);
}

/// Revival identity under many threads: `threads` actors refetch one object while holding a
/// native reference; nobody moves, so every refetch has the first wrapper's address (S5).
pub fn many_refetchers<const F: u8, const G: bool, S: System>(threads: usize) {
    let rt = runtime_with_spins::<F, G, S>(10_000);
    let (obj, addr) = cached_object(&rt);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (rt, o) = (rt.clone(), obj.clone());
            thread::spawn(move || {
                for _ in 0..3 {
                    let refetched = rt.lookup(o.clone()).addr();
                    assert_stable(&rt, refetched, addr, "a refetch moved");
                }
            })
        })
        .collect();
    drop(obj);
    for h in handles {
        h.join().unwrap();
    }
    finish(rt);
}
