//! Concurrency scenarios for the adapter on the model of free-threaded CPython, shared by the
//! std-thread, shuttle and loom suites.
//!
//! Each scenario builds its own interpreter model, runs Python threads (attached, with biased
//! reference counting: objects are owned by the thread that made or revived them) and foreign
//! threads (never attached unless the adapter attaches them), and ends by checking S2 with
//! `assert_quiescent`. The model checks S1, S3, lessons 2–5 and L1 at every step; the scenarios
//! check S4 (one wrapper) and S5 (same address while the object lives).
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use binding_core::ObjectRef;
use binding_core::sync::thread;
use tether_py::model::{Config, ModelInterp, ModelRt, TypeRef};
use tether_py::runtime::AdapterFlaw;

#[cfg(loom)]
type Join<T> = loom::thread::JoinHandle<T>;
#[cfg(all(not(loom), feature = "shuttle"))]
type Join<T> = shuttle::thread::JoinHandle<T>;
#[cfg(all(not(loom), not(feature = "shuttle")))]
type Join<T> = std::thread::JoinHandle<T>;

/// A scenario: a name and a body taking the adapter variant to run.
pub type Scenario = (&'static str, fn(AdapterFlaw));

/// Calls `$m!` with the name of every scenario: the one list behind [`ALL`] and the loom and
/// shuttle suites' per-scenario tests, so they cannot drift apart.
macro_rules! for_each_scenario {
    ($m:ident) => {
        $m!(
            first_lookups_converge,
            hit_vs_queued_last_drop,
            revive_vs_foreign_reclaim,
            reclaim_vs_shutdown,
            move_vs_lookup,
            finalizer_refetch,
            weakref_callback_refetch,
            fresh_allocation_runs_user_code,
            dealloc_vs_revive_elsewhere,
            parked_dealloc_refetch,
        );
    };
}
#[allow(unused_imports)]
pub(crate) use for_each_scenario;

macro_rules! scenario_table {
    ($($name:ident),* $(,)?) => {
        /// Every scenario, for the suites to iterate.
        pub const ALL: &[Scenario] = &[$((stringify!($name), $name)),*];
    };
}
for_each_scenario!(scenario_table);

/// An interpreter with a wrapper type, a finalizer type and a plain type.
pub struct World {
    pub rt: ModelRt,
    pub class: TypeRef,
    pub plain: TypeRef,
}

pub fn world(flaw: AdapterFlaw) -> World {
    let rt = ModelRt::new(Config {
        max_spins: std::env::var("TETHER_MAX_SPINS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(32),
        flaw,
        gil: false,
        ..Config::default()
    });
    let class = rt.new_type("Inner", None, false);
    let plain = rt.new_type("payload", None, true);
    World { rt, class, plain }
}

type Obj = ObjectRef<ModelInterp>;

/// A native object whose wrapper died and is cached (Inactive); returns its address.
fn cached(w: &World, py: bool) -> (Obj, usize) {
    let payload = py.then(|| w.rt.py_object(w.plain));
    let x = w.rt.construct(1, w.class, payload);
    let h = x.handle().expect("fresh wrapper has a handle");
    let addr = x.addr();
    drop(x);
    (h, addr)
}

/// Spawns a Python thread (attached for its whole life).
fn python<T: Send + 'static>(
    rt: &ModelRt,
    f: impl FnOnce(&ModelRt) -> T + Send + 'static,
) -> Join<T> {
    let rt = rt.clone();
    thread::spawn(move || {
        let _py = rt.python_thread();
        f(&rt)
    })
}

/// Spawns a foreign thread (never attached by itself).
fn foreign<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Join<T> {
    thread::spawn(f)
}

/// S5 (and S4 for wrappers not held at the same time): `found` is the first wrapper's address,
/// unless a lookup replaced a wrapper whose dealloc did not come in time (under a checker that is
/// a count of misses, so any slow dealloc; the kernel checks, at the replacement, that the
/// replaced wrapper was dead).
fn assert_stable(w: &World, found: usize, first: usize, what: &str) {
    assert!(
        found == first || w.rt.stats().replaced.load(Relaxed) > 0,
        "{what} violated: {found:#x} != {first:#x} without a replacement"
    );
}

fn finish(w: World, main: tether_py::model::PythonThread) {
    drop(main);
    w.rt.assert_quiescent();
}

/// Two first lookups of a never-wrapped object converge on one wrapper (S4); the loser's fresh
/// candidate is discarded as an ordinary non-canonical wrapper.
pub fn first_lookups_converge(flaw: AdapterFlaw) {
    let w = world(flaw);
    let main = w.rt.python_thread();
    let h = w.rt.object(1, w.class, None, None);
    let a = python(&w.rt, {
        let h = h.clone();
        move |rt| rt.lookup(&h)
    });
    let b = python(&w.rt, {
        let h = h.clone();
        move |rt| rt.lookup(&h)
    });
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    assert_eq!(
        a.addr(),
        b.addr(),
        "S4 violated: two first lookups, two wrappers"
    );
    drop((a, b, h));
    finish(w, main);
}

/// The owner made the wrapper; another thread drops the last reference (a non-owner: the object
/// is queued to its owner) while a third looks it up (its try-incref must succeed on the queued
/// object, or wait for the merge and revive). Same address throughout (S5).
pub fn hit_vs_queued_last_drop(flaw: AdapterFlaw) {
    let w = world(flaw);
    let main = w.rt.python_thread();
    let x = w.rt.construct(1, w.class, None);
    let addr = x.addr();
    let h = x.handle().unwrap();
    let dropper = python(&w.rt, move |_| drop(x));
    let looker = python(&w.rt, {
        let h = h.clone();
        move |rt| rt.lookup(&h).addr()
    });
    w.rt.eval_breaker();
    dropper.join().unwrap();
    assert_stable(&w, looker.join().unwrap(), addr, "S5");
    w.rt.eval_breaker();
    assert_stable(&w, w.rt.lookup(&h).addr(), addr, "S5");
    drop(h);
    finish(w, main);
}

/// A cached wrapper is revived on a Python thread while a foreign thread drops another native
/// reference: whoever is last reclaims; on the foreign thread the adapter attaches to free the
/// cached wrapper and to drop the payload's Python reference.
pub fn revive_vs_foreign_reclaim(flaw: AdapterFlaw) {
    let w = world(flaw);
    let main = w.rt.python_thread();
    let (h, addr) = cached(&w, true);
    let h2 = h.clone();
    let f = foreign(move || drop(h2));
    let p = python(&w.rt, move |rt| {
        let x = rt.lookup(&h);
        assert_eq!(x.addr(), addr, "S5 violated: revival moved the wrapper");
        drop(x);
        drop(h);
    });
    f.join().unwrap();
    p.join().unwrap();
    finish(w, main);
}

/// The last native reference (with a cached wrapper and a Python payload) is dropped on a
/// foreign thread while the interpreter runs its at-exit hook and then finalises: the foreign
/// thread either attaches before the hook (which waits for it) or leaks; it never attaches to
/// a finalising interpreter (lesson 5).
pub fn reclaim_vs_shutdown(flaw: AdapterFlaw) {
    let w = world(flaw);
    let main = w.rt.python_thread();
    let (h, _) = cached(&w, true);
    let f = foreign(move || drop(h));
    w.rt.interp().shutdown();
    w.rt.finalize();
    f.join().unwrap();
    drop(main);
    // Cached wrappers and payloads may be leaked on purpose after shutdown; native blocks never.
    w.rt.assert_quiescent_after_shutdown();
}

/// `x._move()` races a lookup: the lookup returns `x` or the move target (never a wrapper of
/// another object, S3); afterwards the binding belongs to the move target.
pub fn move_vs_lookup(flaw: AdapterFlaw) {
    let w = world(flaw);
    let main = w.rt.python_thread();
    let x = w.rt.construct(1, w.class, None);
    let h = x.handle().unwrap();
    let mover = python(&w.rt, move |_| {
        let y = x.take_over().expect("x holds a handle");
        drop(x);
        y
    });
    let looker = python(&w.rt, {
        let h = h.clone();
        move |rt| drop(rt.lookup(&h))
    });
    let y = mover.join().unwrap();
    looker.join().unwrap();
    assert_eq!(
        w.rt.lookup(&h).addr(),
        y.addr(),
        "the binding must follow the move"
    );
    drop((y, h));
    finish(w, main);
}

/// A type with `__del__` whose finalizer fetches the same object (as `self.x` elsewhere would):
/// the word let go of the dying wrapper first, so the fetch builds a fresh wrapper and never
/// sees the dying one alive (lesson 2) or waits for it (lesson 7). Another thread looks the
/// object up meanwhile.
pub fn finalizer_refetch(flaw: AdapterFlaw) {
    let w = world(flaw);
    let main = w.rt.python_thread();
    let refetched = Arc::new(AtomicBool::new(false));
    let flag = refetched.clone();
    let fin_class = w.rt.new_type(
        "Finalized",
        Some(Arc::new(move |rt: &ModelRt, o| {
            if flag.swap(true, Relaxed) {
                return; // the fresh wrapper's own death runs __del__ again: fetch once
            }
            // SAFETY: `o` is the object being finalised; its slot still holds its handle.
            let h = unsafe { tether_py::adapter::WrapperObj::<ModelRt>::of(o) }
                .slot
                .header()
                .map(|hd| {
                    // SAFETY: the slot's reference keeps the header alive.
                    let b = std::mem::ManuallyDrop::new(unsafe { Obj::from_raw(hd) });
                    (*b).clone()
                })
                .expect("the dying wrapper keeps its handle during __del__");
            let again = rt.lookup(&h);
            assert_ne!(
                again.as_ptr(),
                o,
                "lesson 2 violated: __del__ fetched its own corpse"
            );
            drop((again, h));
        })),
        false,
    );
    let x = w.rt.construct(1, fin_class, None);
    let h = x.handle().unwrap();
    let looker = python(&w.rt, {
        let h = h.clone();
        move |rt| drop(rt.lookup(&h))
    });
    drop(x);
    looker.join().unwrap();
    let a = w.rt.lookup(&h);
    assert_eq!(a.addr(), w.rt.lookup(&h).addr(), "S4 violated");
    drop((a, h));
    finish(w, main);
}

/// A wrapper with a weak reference dies; the callback fetches the same object during the
/// teardown (lesson 7): it gets a fresh wrapper, never the dying one, and does not wait for it.
pub fn weakref_callback_refetch(flaw: AdapterFlaw) {
    let w = world(flaw);
    let main = w.rt.python_thread();
    let x = w.rt.construct(1, w.class, None);
    let h = x.handle().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    {
        let (rt, h, seen, dying) = (w.rt.clone(), h.clone(), seen.clone(), x.addr());
        w.rt.add_weakref(x.as_ptr(), move || {
            let again = rt.lookup(&h);
            assert_ne!(
                again.addr(),
                dying,
                "a weakref callback got the dying wrapper"
            );
            seen.fetch_add(1, Relaxed);
        });
    }
    let looker = python(&w.rt, {
        let h = h.clone();
        move |rt| drop(rt.lookup(&h))
    });
    drop(x);
    looker.join().unwrap();
    w.rt.eval_breaker();
    assert_eq!(seen.load(Relaxed), 1, "the weakref callback ran once");
    drop(h);
    finish(w, main);
}

/// A fresh wrapper's allocation runs user code (a collection's finalizer) that looks up the same
/// object: fresh wrappers are built outside the word's lock, so this neither deadlocks nor
/// leaves two wrappers (lesson 7, S4). Another thread looks the object up too.
///
/// The wrapper the user code fetched is kept until the end: were it dropped at once, the object
/// would die and be revived while the other thread may be waiting after a missed try-incref on
/// the dying wrapper, and the kernel's hit-miss wait does not survive that A-B-A (a known kernel
/// L1 bug: `binding-py/KERNEL_REQUESTS.md`, item 1, reproduced by the ignored test in
/// `tests/model_threads.rs`).
pub fn fresh_allocation_runs_user_code(flaw: AdapterFlaw) {
    let w = world(flaw);
    let main = w.rt.python_thread();
    let h = w.rt.object(1, w.class, None, None);
    let fetched = Arc::new(std::sync::Mutex::new(None));
    {
        let (rt, h, fetched) = (w.rt.clone(), h.clone(), fetched.clone());
        w.rt.on_next_alloc(move || *fetched.lock().unwrap() = Some(rt.lookup(&h)));
    }
    let other = python(&w.rt, {
        let h = h.clone();
        move |rt| rt.lookup(&h).addr()
    });
    let a = w.rt.lookup(&h);
    let b = other.join().unwrap();
    let c = w.rt.lookup(&h);
    assert_eq!(a.addr(), c.addr(), "S4 violated");
    assert_stable(&w, b, a.addr(), "S4");
    let inner = fetched.lock().unwrap().take();
    if let Some(inner) = inner {
        assert_eq!(
            inner.addr(),
            a.addr(),
            "S4 violated: the nested fetch got another wrapper"
        );
    }
    drop((a, c, h));
    finish(w, main);
}

/// The owner drops the wrapper (dealloc, cache) while another thread revives it and a third
/// drops a native reference: every interleaving of settle, revival and reclaim keeps one
/// address.
pub fn dealloc_vs_revive_elsewhere(flaw: AdapterFlaw) {
    let w = world(flaw);
    let main = w.rt.python_thread();
    let x = w.rt.construct(1, w.class, None);
    let addr = x.addr();
    let h = x.handle().unwrap();
    let h2 = h.clone();
    let looker = python(&w.rt, {
        let h = h.clone();
        move |rt| {
            let y = rt.lookup(&h);
            assert_stable_rt(rt, y.addr(), addr);
        }
    });
    let f = foreign(move || drop(h2));
    drop(x);
    looker.join().unwrap();
    f.join().unwrap();
    assert_stable(&w, w.rt.lookup(&h).addr(), addr, "S5");
    drop(h);
    finish(w, main);
}

fn assert_stable_rt(rt: &ModelRt, found: usize, first: usize) {
    assert!(
        found == first || rt.stats().replaced.load(Relaxed) > 0,
        "S5 violated: {found:#x} != {first:#x} without a replacement"
    );
}

/// CPython 3.14's trashcan: the owner drops the last reference to a wrapper on a deep C stack,
/// so its dealloc is parked (count zero, GC-untracked, the word still Active) until the stack
/// unwinds, and on that stack it fetches the object again, while another thread fetches it too.
/// Neither may wait for the parked dealloc (L1): the dead wrapper is replaced (the adapter counts
/// it), both agree on the replacement (S4), and the late dealloc, finding itself not canonical,
/// frees its wrapper and drops its native reference (S2).
pub fn parked_dealloc_refetch(flaw: AdapterFlaw) {
    let w = world(flaw);
    let main = w.rt.python_thread();
    let x = w.rt.construct(1, w.class, None);
    let addr = x.addr();
    let h = x.handle().unwrap();
    let other = python(&w.rt, {
        let h = h.clone();
        move |rt| rt.lookup(&h)
    });
    let again = w.rt.deep_stack(|| {
        drop(x);
        let again = w.rt.lookup(&h);
        assert_eq!(again.addr(), w.rt.lookup(&h).addr(), "S4 violated");
        again
    });
    let theirs = other.join().unwrap();
    assert!(
        again.addr() == theirs.addr() || w.rt.stats().replaced.load(Relaxed) > 0,
        "S4 violated: two wrappers"
    );
    if again.addr() != addr {
        assert!(
            w.rt.stats().replaced.load(Relaxed) > 0,
            "S5 violated without a replacement"
        );
    }
    drop((again, theirs, h));
    finish(w, main);
}
