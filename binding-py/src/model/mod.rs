//! A model of free-threaded CPython 3.14t, standing in for the C-API so the adapter's own code
//! (dealloc, free, lookup, revival, reclaim, shutdown, foreign-thread drops) runs under loom and
//! shuttle. No free-threaded interpreter can be installed in CI; this is how the
//! `Py_GIL_DISABLED` paths get checked.
//!
//! What is modelled, and checked at every step (violations panic, naming the property):
//!
//! * **biased reference counting** ([`object`]): owner-local and shared counts, the
//!   `MAYBE_WEAKREF` / `QUEUED` / `MERGED` states, queued decrefs merged by the owner
//!   ([`ModelRt::eval_breaker`]) or at once when the owner is gone, `PyUnstable_TryIncRef`
//!   (fails spuriously for a non-owner unless armed, lesson 3), a revival's `_Py_NewReference`;
//! * **object memory**: every block is quarantined with a shadow state (live, dying, in its
//!   finalizer, cached, freed); any use of a dead block, any double free, any revival of a block
//!   that is not cached is reported (S1); [`ModelRt::assert_quiescent`] reports leaks (S2);
//! * **lesson 2**: try-incref must never succeed on a dying object (including during its
//!   finalizer's temporary resurrection);
//! * **lesson 4**: a thread that detaches (a back-off) while one of its dying objects is still
//!   GC-tracked would let the stop-the-world collector deallocate it twice;
//! * **lesson 5**: `PyGILState_Ensure` after finalisation began; freeing memory unattached;
//! * **L1**: an operation that backs off more than `max_spins` times in a row;
//! * finalizers (`__del__`, with resurrection), weak reference callbacks, allocation running
//!   user code (a hook), heap type reference counts.
//!
//! The model is free-threaded (no GIL): [`Runtime::has_gil`] is `false`, so every stats update
//! and every back-off takes the free-threaded path.
//!
//! Orderings: the reference count fields and the finalisation flag are checker-visible atomics
//! with CPython's orderings (commented where used). The shadow bookkeeping (`life`, `tracked`,
//! `dying_on`, `finalized`, `ty`, type counts, counters) uses `std` atomics with `Relaxed`
//! throughout: it only feeds the model's own assertions, is invisible to loom and shuttle, and
//! must not add synchronisation the code under test would otherwise lack.
//!
//! The registries (`threads`, `objects`, ...) are `std` mutexes, invisible to the checkers too,
//! so no code may hold one across a checker-visible operation (a model atomic, a lock of the
//! code under test): under loom and shuttle every model thread runs on one OS thread, and a thread
//! switched in there that takes the same `std` lock blocks them all for good.

mod native;
pub mod object;

use core::ptr::NonNull;
use std::boxed::Box;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicIsize as StdIsize, AtomicU64 as StdU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex as StdMutex};
use std::vec::Vec;

use crate::adapter::{Interp, WrapperObj};
use crate::runtime::{AdapterFlaw, Runtime};
use crate::state::AdapterState;

pub use native::{ModelAlloc, ModelObject, Payload, WrapperRef};
pub use object::ObjHead;
use object::{CACHED, DYING, FREED, LIVE, ObjPtr, RESURRECTING, WeakCallback, life_name};

/// The model as a kernel frontend.
pub type ModelInterp = Interp<ModelRt>;

/// A finalizer (`__del__`): gets the runtime and the object being finalised.
pub type Finalizer = Arc<dyn Fn(&ModelRt, NonNull<ObjHead>) + Send + Sync>;

/// A heap type of the model (`PyTypeObject`).
pub struct ModelType {
    name: &'static str,
    refcnt: StdIsize,
    finalizer: Option<Finalizer>,
    /// Not a wrapper type: instances are plain Python objects freed by their dealloc.
    plain: bool,
}

impl ModelType {
    /// The type's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its reference count (a snapshot).
    pub fn refcount(&self) -> isize {
        self.refcnt.load(Relaxed)
    }
}

/// A model type handed around by tests (quarantined for the model's life).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeRef(pub NonNull<ModelType>);

// SAFETY: types are quarantined for the model's life; their count is atomic.
unsafe impl Send for TypeRef {}
// SAFETY: as above.
unsafe impl Sync for TypeRef {}

/// Tunables.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Consecutive back-offs of one operation before an L1 violation is reported.
    pub max_spins: u32,
    /// The broken adapter variant to run.
    pub flaw: AdapterFlaw,
    /// Model a GIL-ful interpreter (std threads only): attached threads hold one real lock,
    /// which only a detach (`PyEval_SaveThread`, a back-off) or a thread's exit lets go; a wait
    /// for it longer than `max_spins` seconds is an L1 violation.
    pub gil: bool,
    /// How long a lookup waits for a dying wrapper's dealloc before replacing it (std threads;
    /// the adapter's default unless a test needs more slack for a loaded machine).
    pub takeover_patience: core::time::Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_spins: 64,
            flaw: AdapterFlaw::None,
            gil: false,
            takeover_patience: crate::adapter::TAKEOVER_PATIENCE,
        }
    }
}

#[derive(Default)]
struct GateState {
    closed: bool,
    waiting: usize,
}

/// The model's GIL: who holds it, and CPython's forced switching (a thread that let it go does
/// not take it back while another thread waits for it).
#[derive(Default)]
struct GilState {
    /// The key of the thread holding it, or 0.
    owner: usize,
    /// Threads waiting for it.
    waiting: usize,
    /// The thread that let it go last, while it is not taken again.
    dropped_by: usize,
}

#[derive(Default)]
struct ThreadState {
    attached: bool,
    /// Objects other threads queued for this owner to merge (`brc.objects_to_merge`).
    queue: Vec<ObjPtr>,
    /// Inside [`ModelRt::deep_stack`]: CPython 3.14's `_Py_Dealloc` parks GC objects' deallocs.
    deep: bool,
    /// The parked deallocs (`tstate->delete_later`), drained last-in first-out.
    delete_later: Vec<ObjPtr>,
}

/// How a thread got attached by `PyGILState_Ensure`.
#[derive(Debug)]
pub enum Gil {
    /// It already was.
    Nested,
    /// It had a detached thread state.
    Reattached,
    /// It is a foreign thread: a thread state was created (and is deleted by the release).
    Created,
}

/// The model interpreter's shared state.
pub struct Model {
    config: Config,
    state: AdapterState,
    /// Set by the test after the at-exit hook returned: `Py_FinalizeEx` proper. A checker-visible
    /// atomic: a thread may be preempted between deciding to attach and attaching.
    finalizing: binding_core::sync::atomic::AtomicBool,
    threads: StdMutex<HashMap<usize, ThreadState>>,
    objects: StdMutex<Vec<ObjPtr>>,
    types: StdMutex<Vec<NonNull<ModelType>>>,
    next_id: StdU64,
    /// Runs (once, then cleared) inside the next allocation: user code a collection may run.
    alloc_hook: StdMutex<Option<Box<dyn FnOnce() + Send>>>,
    /// Runs (once, then cleared) when a dying object is next GC-untracked: inside its dealloc,
    /// after its count reached zero and before its binding transition (a test's window).
    untrack_hook: StdMutex<Option<Box<dyn FnOnce() + Send>>>,
    /// While closed, every back-off parks at the gate (tests that need a waiter to stay put).
    gate: (StdMutex<GateState>, std::sync::Condvar),
    pub(crate) natives_live: StdIsize,
    /// The GIL (`gil` mode).
    gil: (StdMutex<GilState>, std::sync::Condvar),
    /// A stop-the-world in progress (free-threaded mode): attaching threads wait for its end.
    stw: (StdMutex<bool>, std::sync::Condvar),
    /// How many stop-the-worlds were asked for so far.
    stw_requests: std::sync::atomic::AtomicUsize,
    /// The last failed try-incref (object id, state), for violation messages.
    last_miss: StdMutex<Option<(u64, u8)>>,
    debug: StdMutex<Option<Arc<dyn Fn() -> String + Send + Sync>>>,
}

/// The model runtime handle (cheap to clone).
#[derive(Clone)]
pub struct ModelRt(Arc<Model>);

// SAFETY: the raw pointers in the registries are quarantined blocks, only reached through the
// checked accessors; the registries are behind mutexes.
unsafe impl Send for Model {}
// SAFETY: as above.
unsafe impl Sync for Model {}

impl core::ops::Deref for ModelRt {
    type Target = Model;
    fn deref(&self) -> &Model {
        &self.0
    }
}

impl core::fmt::Debug for ModelRt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ModelRt")
            .field("flaw", &self.config.flaw)
            .finish()
    }
}

/// A stable non-zero key for the current (loom, shuttle or std) thread: CPython's
/// `_Py_ThreadId()`.
pub fn thread_key() -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    binding_core::sync::thread::current().id().hash(&mut h);
    (h.finish() as usize) | 1
}

/// Marks the current thread as a Python thread (attached) until dropped; the drop merges what
/// other threads queued for it and deletes its thread state.
#[must_use]
pub struct PythonThread(ModelRt);

impl Drop for PythonThread {
    fn drop(&mut self) {
        self.0.exit_thread();
    }
}

impl ModelRt {
    /// A fresh interpreter.
    pub fn new(config: Config) -> Self {
        Self(Arc::new(Model {
            config,
            state: AdapterState::new(),
            finalizing: binding_core::sync::atomic::AtomicBool::new(false),
            threads: StdMutex::new(HashMap::new()),
            objects: StdMutex::new(Vec::new()),
            types: StdMutex::new(Vec::new()),
            next_id: StdU64::new(1),
            alloc_hook: StdMutex::new(None),
            untrack_hook: StdMutex::new(None),
            gate: (
                StdMutex::new(GateState::default()),
                std::sync::Condvar::new(),
            ),
            natives_live: StdIsize::new(0),
            gil: (
                StdMutex::new(GilState::default()),
                std::sync::Condvar::new(),
            ),
            stw: (StdMutex::new(false), std::sync::Condvar::new()),
            stw_requests: std::sync::atomic::AtomicUsize::new(0),
            last_miss: StdMutex::new(None),
            debug: StdMutex::new(None),
        }))
    }

    /// The adapter on this runtime.
    pub fn interp(&self) -> ModelInterp {
        Interp(self.clone())
    }

    /// A heap type (`finalizer`: a `__del__`; `plain`: not a wrapper type). The caller's
    /// reference is the returned type's first (it is never freed before the model).
    pub fn new_type(
        &self,
        name: &'static str,
        finalizer: Option<Finalizer>,
        plain: bool,
    ) -> TypeRef {
        let ty = NonNull::from(Box::leak(Box::new(ModelType {
            name,
            refcnt: StdIsize::new(1),
            finalizer,
            plain,
        })));
        self.types.lock().unwrap().push(ty);
        TypeRef(ty)
    }

    /// The current thread becomes a Python thread (attached) until the guard drops.
    pub fn python_thread(&self) -> PythonThread {
        let me = thread_key();
        self.take_gil();
        self.wait_for_the_world();
        self.threads.lock().unwrap().entry(me).or_default().attached = true;
        PythonThread(self.clone())
    }

    /// Runs `f` detached (`Py_BEGIN_ALLOW_THREADS`): with a GIL, another thread may take it.
    pub fn allow_threads<T>(&self, f: impl FnOnce() -> T) -> T {
        Runtime::save_thread(self);
        let out = f();
        Runtime::restore_thread(self, ());
        out
    }

    /// A free-threaded interpreter's stop-the-world, requested by this attached thread (the
    /// collector's): waits until every other thread is detached (each must get there by itself:
    /// a thread that waits without detaching stalls it), then lets the world run again. Waiting
    /// longer than `max_spins` seconds is an L1 violation.
    pub fn stop_the_world(&self) {
        let me = thread_key();
        *self.stw.0.lock().unwrap() = true;
        // Relaxed: a counter for scenarios to wait on; the stop itself is under the mutex.
        self.stw_requests.fetch_add(1, Relaxed);
        let deadline = std::time::Instant::now()
            + std::time::Duration::from_secs(self.config.max_spins.into());
        loop {
            let attached_others = self
                .threads
                .lock()
                .unwrap()
                .iter()
                .filter(|(k, t)| **k != me && t.attached)
                .count();
            if attached_others == 0 {
                break;
            }
            if std::time::Instant::now() >= deadline {
                *self.stw.0.lock().unwrap() = false;
                self.stw.1.notify_all();
                panic!(
                    "L1 violated: a stop-the-world waited {} s for {attached_others} thread(s) \
                     that never detached (a wait that does not detach?); objects: {}",
                    self.config.max_spins,
                    self.describe()
                );
            }
            let guard = self.stw.0.lock().unwrap();
            drop(
                self.stw
                    .1
                    .wait_timeout(guard, std::time::Duration::from_millis(1))
                    .unwrap(),
            );
        }
        *self.stw.0.lock().unwrap() = false;
        self.stw.1.notify_all();
    }

    /// How many [`stop_the_world`](Self::stop_the_world)s have been asked for so far (a
    /// scenario waits for one, so a detached thread re-attaches only once the world is asked to
    /// stop).
    pub fn stops_requested(&self) -> usize {
        // Relaxed: see `stop_the_world`.
        self.stw_requests.load(Relaxed)
    }

    /// Attaching waits while a stop-the-world is in progress (free-threaded mode).
    fn wait_for_the_world(&self) {
        if self.config.gil {
            return;
        }
        let mut stopped = self.stw.0.lock().unwrap();
        while *stopped {
            stopped = self.stw.1.wait(stopped).unwrap();
        }
    }

    /// Takes the GIL (`gil` mode), waiting at most `max_spins` seconds (L1).
    fn take_gil(&self) {
        if !self.config.gil {
            return;
        }
        let me = thread_key();
        let deadline = std::time::Instant::now()
            + std::time::Duration::from_secs(self.config.max_spins.into());
        let mut st = self.gil.0.lock().unwrap();
        assert_ne!(st.owner, me, "the GIL taken twice by one thread");
        st.waiting += 1;
        while st.owner != 0 || (st.dropped_by == me && st.waiting > 1) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                st.waiting -= 1;
                drop(st);
                panic!(
                    "L1 violated: a thread waited {} s for the GIL, held by a thread that never \
                     lets it go (a wait that does not detach?); objects: {}",
                    self.config.max_spins,
                    self.describe()
                );
            }
            st = self.gil.1.wait_timeout(st, left).unwrap().0;
        }
        st.waiting -= 1;
        st.owner = me;
        st.dropped_by = 0;
    }

    /// Lets the GIL go (`gil` mode).
    fn drop_gil(&self) {
        if !self.config.gil {
            return;
        }
        let mut st = self.gil.0.lock().unwrap();
        let me = thread_key();
        assert_eq!(
            st.owner, me,
            "the GIL let go by a thread that does not hold it"
        );
        st.owner = 0;
        st.dropped_by = me;
        self.gil.1.notify_all();
    }

    fn exit_thread(&self) {
        self.eval_breaker();
        let me = thread_key();
        // Merge anything queued meanwhile, then forget the thread state.
        loop {
            let mut threads = self.threads.lock().unwrap();
            let queued = threads.get_mut(&me).map(|t| core::mem::take(&mut t.queue));
            match queued {
                Some(q) if !q.is_empty() => {
                    drop(threads);
                    self.merge_all(q);
                }
                _ => {
                    let attached = threads.remove(&me).is_some_and(|t| t.attached);
                    drop(threads);
                    if attached {
                        self.drop_gil();
                    }
                    return;
                }
            }
        }
    }

    /// The owner's eval-breaker: merges the objects other threads queued for this thread
    /// (`_Py_brc_merge_refcounts`), deallocating those whose count reaches zero.
    pub fn eval_breaker(&self) {
        let me = thread_key();
        let q = self
            .threads
            .lock()
            .unwrap()
            .get_mut(&me)
            .map(|t| core::mem::take(&mut t.queue))
            .unwrap_or_default();
        self.merge_all(q);
    }

    fn merge_all(&self, q: Vec<ObjPtr>) {
        for o in q {
            // SAFETY: quarantined.
            let h = unsafe { o.0.as_ref() };
            if h.explicit_merge(-1) == 0 {
                self.dealloc(o.0);
            }
        }
    }

    /// Simulates `Py_FinalizeEx` after the at-exit hook: from now on `PyGILState_Ensure` is a
    /// lesson 5 violation.
    pub fn finalize(&self) {
        // SeqCst: a ghost flag of the model; the strongest ordering hides nothing.
        self.finalizing
            .store(true, binding_core::sync::atomic::Ordering::SeqCst);
    }

    /// Installs user code that the next allocation runs (a collection running a finalizer or a
    /// weak reference callback).
    pub fn on_next_alloc(&self, hook: impl FnOnce() + Send + 'static) {
        *self.alloc_hook.lock().unwrap() = Some(Box::new(hook));
    }

    /// Installs code that runs the next time a dying object is GC-untracked (inside its dealloc,
    /// between its count reaching zero and its binding transition). Real threads only.
    pub fn on_next_untrack(&self, hook: impl FnOnce() + Send + 'static) {
        *self.untrack_hook.lock().unwrap() = Some(Box::new(hook));
    }

    /// Closes the back-off gate: every back-off then parks until [`open_gate`](Self::open_gate).
    /// Real threads only.
    pub fn close_gate(&self) {
        self.gate.0.lock().unwrap().closed = true;
    }

    /// Opens the back-off gate.
    pub fn open_gate(&self) {
        self.gate.0.lock().unwrap().closed = false;
        self.gate.1.notify_all();
    }

    /// Waits until a thread is parked at the closed gate.
    pub fn wait_for_gate(&self) {
        let mut g = self.gate.0.lock().unwrap();
        while g.waiting == 0 {
            g = self.gate.1.wait(g).unwrap();
        }
    }

    fn fresh_id(&self) -> u64 {
        self.next_id.fetch_add(1, Relaxed)
    }

    fn attached(&self) -> bool {
        let me = thread_key();
        self.threads
            .lock()
            .unwrap()
            .get(&me)
            .is_some_and(|t| t.attached)
    }

    /// A plain Python object of type `ty` (one reference for the caller, owned by this thread).
    pub fn new_plain(&self, ty: TypeRef) -> NonNull<ObjHead> {
        // SAFETY: attached (caller); `ty` is a live model type.
        unsafe { self.alloc(ty.0) }.expect("model allocations do not fail")
    }

    /// Adds a weak reference with a callback to live object `o`.
    pub fn add_weakref(&self, o: NonNull<ObjHead>, callback: impl FnOnce() + Send + 'static) {
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        h.assert_life("weakref creation", &[LIVE]);
        h.weakrefs.lock().unwrap().push(Box::new(callback));
        // Creating a weak reference arms try-incref (CPython does the same).
        h.set_maybe_weakref();
    }

    /// `Py_DECREF` from the current thread (which must be attached).
    ///
    /// # Safety
    ///
    /// The caller owns the reference.
    pub unsafe fn release(&self, o: NonNull<ObjHead>) {
        // SAFETY: forwarded.
        unsafe { self.decref(o) }
    }

    /// A new reference (`Py_INCREF`).
    ///
    /// # Safety
    ///
    /// The caller owns or borrows a reference.
    pub unsafe fn retain(&self, o: NonNull<ObjHead>) {
        // SAFETY: forwarded.
        unsafe { self.incref(o) }
    }

    /// Runs `f` as on a C stack near its limit on CPython 3.14: every wrapper (GC object) whose
    /// count reaches zero on this thread meanwhile is GC-untracked and its dealloc parked on the
    /// thread's delete-later list (`_PyTrash_thread_deposit_object`); the parked deallocs run
    /// when `f` returns (`_PyTrash_thread_destroy_chain`), last parked first.
    pub fn deep_stack<T>(&self, f: impl FnOnce() -> T) -> T {
        let me = thread_key();
        let was = core::mem::replace(
            &mut self.threads.lock().unwrap().entry(me).or_default().deep,
            true,
        );
        let out = f();
        let mut threads = self.threads.lock().unwrap();
        let t = threads
            .get_mut(&me)
            .expect("the thread state outlives deep_stack");
        t.deep = was;
        if !was {
            while let Some(o) = threads.get_mut(&me).and_then(|t| t.delete_later.pop()) {
                drop(threads);
                self.dealloc_now(o.0);
                threads = self.threads.lock().unwrap();
            }
        }
        out
    }

    /// `_Py_Dealloc`: the count reached zero on this thread.
    fn dealloc(&self, o: NonNull<ObjHead>) {
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        // SAFETY: every object has a live type (it holds a reference).
        let gc = !unsafe { &*h.ty.load(Relaxed) }.plain;
        let me = thread_key();
        let mut threads = self.threads.lock().unwrap();
        if let Some(t) = threads.get_mut(&me).filter(|t| t.deep && gc) {
            // The deposit untracks the object; its count stays zero until the drain.
            h.tracked.store(false, Relaxed);
            t.delete_later.push(ObjPtr(o));
            return;
        }
        drop(threads);
        self.dealloc_now(o);
    }

    /// The type's dealloc proper.
    fn dealloc_now(&self, o: NonNull<ObjHead>) {
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        let prev = h.life.swap(DYING, Relaxed);
        assert!(
            prev == LIVE,
            "S1 violated: object #{} reached refcount zero while {}",
            h.id,
            life_name(prev)
        );
        h.dying_on.store(thread_key() as u64, Relaxed);
        // SAFETY: every object has a live type (it holds a reference).
        let ty = unsafe { &*h.ty.load(Relaxed) };
        if ty.plain {
            // A plain object's dealloc: untrack, free, drop the type reference.
            h.tracked.store(false, Relaxed);
            // SAFETY: dying on this thread, ours.
            unsafe {
                self.free(o);
                self.decref_type(NonNull::from(ty));
            }
            return;
        }
        // SAFETY: the count reached zero on this thread; wrapper types use the adapter's
        // tp_dealloc, as the extension module installs it.
        unsafe { self.interp().dealloc_wrapper(o) };
    }

    fn queue_to_owner(&self, o: NonNull<ObjHead>) {
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        // SeqCst: `_Py_atomic_load_uintptr(&ob->ob_tid)`.
        let owner = h.tid.load(binding_core::sync::atomic::Ordering::SeqCst);
        if owner == 0 {
            // The owner merged concurrently: decref again, now as a non-owner of a merged object.
            // SAFETY: we still own the reference we were dropping.
            unsafe { self.decref(o) };
            return;
        }
        let mut threads = self.threads.lock().unwrap();
        if let Some(t) = threads.get_mut(&owner) {
            t.queue.push(ObjPtr(o));
            return;
        }
        drop(threads);
        // The owner exited: merge now, stealing the reference we were dropping.
        if h.explicit_merge(-1) == 0 {
            self.dealloc(o);
        }
    }

    /// S2 at the end of a test: every object freed (except cached wrappers leaked on purpose
    /// after shutdown), every native block freed, every type back to the test's one reference.
    pub fn assert_quiescent(&self) {
        let natives = self.natives_live.load(Relaxed);
        assert_eq!(natives, 0, "S2 violated: {natives} native object(s) leaked");
        let shutdown = self.state.is_shutting_down();
        let mut leaked = Vec::new();
        for o in self.objects.lock().unwrap().iter() {
            // SAFETY: quarantined.
            let h = unsafe { o.0.as_ref() };
            let life = h.life();
            if !(life == FREED || (shutdown && life == CACHED)) {
                leaked.push((h.id, life_name(life)));
            }
        }
        assert!(
            leaked.is_empty(),
            "S2 violated: object(s) not freed: {leaked:?} (shutdown started: {shutdown})"
        );
        if !shutdown {
            for ty in self.types.lock().unwrap().iter() {
                // SAFETY: quarantined.
                let ty = unsafe { ty.as_ref() };
                assert_eq!(
                    ty.refcount(),
                    1,
                    "S2 violated: type {} has {} references left (instances leaked or freed twice)",
                    ty.name,
                    ty.refcount()
                );
            }
        }
    }

    /// S2 after the at-exit hook ran: native blocks are all freed (reclaim never needs the
    /// interpreter to free them); cached wrappers, Python objects owned by native values and
    /// type references may have been leaked on purpose, but nothing was freed twice (checked
    /// as it happened).
    pub fn assert_quiescent_after_shutdown(&self) {
        assert!(
            self.state.is_shutting_down(),
            "the at-exit hook did not run"
        );
        let natives = self.natives_live.load(Relaxed);
        assert_eq!(natives, 0, "S2 violated: {natives} native object(s) leaked");
    }

    /// Live objects of the model (a snapshot).
    pub fn live_objects(&self) -> usize {
        self.objects
            .lock()
            .unwrap()
            .iter()
            // SAFETY: quarantined.
            .filter(|o| unsafe { o.0.as_ref() }.life() == LIVE)
            .count()
    }

    /// Every object's state, for violation messages.
    pub fn describe(&self) -> String {
        let me = thread_key();
        // A copy of the list, so that no std lock is held across the loads below: under shuttle
        // they are scheduling points, and another model thread locking `objects` meanwhile
        // would block the one OS thread every model thread runs on (seen: the NeverReplace
        // tooth hung in `stop_the_world_check` while its violation message was being built).
        let all: Vec<ObjPtr> = self.objects.lock().unwrap().clone();
        let objects: Vec<String> = all
            .iter()
            .map(|o| {
                // SAFETY: quarantined.
                let h = unsafe { o.0.as_ref() };
                // Relaxed: a diagnostic snapshot.
                let (tid, local, shared) = (
                    h.tid.load(binding_core::sync::atomic::Ordering::Relaxed),
                    h.local.load(binding_core::sync::atomic::Ordering::Relaxed),
                    h.shared.load(binding_core::sync::atomic::Ordering::Relaxed) as isize,
                );
                format!(
                    "#{} {} owner={} local={local} shared={}|{} tracked={}",
                    h.id,
                    life_name(h.life()),
                    if tid == 0 {
                        "none"
                    } else if tid == me {
                        "me"
                    } else {
                        "other"
                    },
                    shared >> 2,
                    shared & 3,
                    h.tracked.load(Relaxed)
                )
            })
            .collect();
        // Called outside the lock, as above (the test's closure may load model atomics).
        let describe_more = self.debug.lock().unwrap().clone();
        let extra = describe_more.map(|f| f()).unwrap_or_default();
        let miss = match *self.last_miss.lock().unwrap() {
            Some((id, life)) => format!("last try-incref miss on #{id} ({})", life_name(life)),
            None => String::from("no try-incref miss"),
        };
        format!("{}; {miss}; {extra}", objects.join("; "))
    }

    /// Adds `describe` output to violation messages (a test's view of its native objects).
    pub fn on_violation(&self, describe: impl Fn() -> String + Send + Sync + 'static) {
        *self.debug.lock().unwrap() = Some(Arc::new(describe));
    }

    /// The adapter's counters.
    pub fn stats(&self) -> &crate::state::Stats {
        &self.state.stats
    }

    /// The stop-the-world check at a detach (lesson 4, CPython gh-135909).
    fn stop_the_world_check(&self) {
        let me = thread_key() as u64;
        for o in self.objects.lock().unwrap().iter() {
            // SAFETY: quarantined.
            let h = unsafe { o.0.as_ref() };
            // An object in its finalizer (RESURRECTING) holds the finalizer's reference, so
            // the collector sees it as referenced from outside: tracking it then is what
            // CPython's subtype_dealloc does, and safe.
            assert!(
                !(h.dying_on.load(Relaxed) == me && h.tracked.load(Relaxed) && h.life() == DYING),
                "gh-135909 (lesson 4): a thread detached while its dying object #{} was still \
                 GC-tracked; a stop-the-world collection would deallocate it twice",
                h.id
            );
        }
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        for o in self.objects.get_mut().unwrap().drain(..) {
            // SAFETY: every registered block came from `Box::into_raw` of a WrapperObj and is
            // dropped once, here. Its slot and baton are empty for every freed or cached block.
            drop(unsafe { Box::from_raw(o.0.as_ptr().cast::<WrapperObj<ModelRt>>()) });
        }
        for ty in self.types.get_mut().unwrap().drain(..) {
            // SAFETY: as above, from `Box::leak`.
            drop(unsafe { Box::from_raw(ty.as_ptr()) });
        }
    }
}

// SAFETY: the model implements each call as CPython 3.14t does (see `object`): try-incref
// refuses a zero count, alloc returns a zeroed-then-initialised tracked block with one
// reference, reinit resets the header without touching the type's count, free and ensure check
// their preconditions.
unsafe impl Runtime for ModelRt {
    type Object = ObjHead;
    type Type = ModelType;
    type Saved = ();
    type Gil = Gil;

    fn has_gil(&self) -> bool {
        self.config.gil
    }

    fn state(&self) -> &AdapterState {
        &self.state
    }

    unsafe fn incref(&self, o: NonNull<ObjHead>) {
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        h.assert_life("incref", &[LIVE, RESURRECTING]);
        h.incref(thread_key());
    }

    unsafe fn decref(&self, o: NonNull<ObjHead>) {
        assert!(self.attached(), "decref on a detached thread");
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        h.assert_life("decref", &[LIVE, RESURRECTING]);
        if h.owned_by(thread_key()) {
            if h.decref_local() {
                self.dealloc(o);
            }
        } else {
            match h.decref_shared() {
                (true, _) => self.queue_to_owner(o),
                (false, true) => self.dealloc(o),
                (false, false) => {}
            }
        }
    }

    unsafe fn try_incref(&self, o: NonNull<ObjHead>) -> bool {
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        h.assert_life("try_incref", &[LIVE, DYING, RESURRECTING]);
        let ok = h.try_incref(thread_key());
        if !ok {
            *self.last_miss.lock().unwrap() = Some((h.id, h.life()));
        }
        if ok {
            let life = h.life();
            assert!(
                life == LIVE,
                "lesson 2 violated: try-incref succeeded on object #{} which is {} (a dying \
                 wrapper looked alive; cython#7769)",
                h.id,
                life_name(life)
            );
        }
        ok
    }

    unsafe fn enable_try_incref(&self, o: NonNull<ObjHead>) {
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        h.assert_life("enable_try_incref", &[LIVE]);
        h.set_maybe_weakref();
    }

    unsafe fn track(&self, o: NonNull<ObjHead>) {
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        h.assert_life("PyObject_GC_Track", &[LIVE, DYING, RESURRECTING]);
        let was = h.tracked.swap(true, Relaxed);
        assert!(!was, "object #{} tracked twice", h.id);
    }

    unsafe fn untrack(&self, o: NonNull<ObjHead>) {
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        h.assert_life("PyObject_GC_UnTrack", &[LIVE, DYING, RESURRECTING]);
        h.tracked.store(false, Relaxed);
        if h.life() == DYING {
            let hook = self.untrack_hook.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
            }
        }
    }

    unsafe fn type_of(&self, o: NonNull<ObjHead>) -> NonNull<ModelType> {
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        h.assert_life("Py_TYPE", &[LIVE, DYING, RESURRECTING, CACHED]);
        let ty = NonNull::new(h.ty.load(Relaxed)).expect("every object has a type");
        // SAFETY: quarantined.
        let t = unsafe { ty.as_ref() };
        assert!(
            t.refcount() > 0,
            "S1 violated: object #{}'s type {} was freed while the object's memory lived",
            h.id,
            t.name
        );
        ty
    }

    unsafe fn alloc(&self, ty: NonNull<ModelType>) -> Option<NonNull<ObjHead>> {
        assert!(self.attached(), "allocation on a detached thread");
        // Allocation may collect garbage, which may run user code (lesson 7).
        let hook = self.alloc_hook.lock().unwrap().take();
        if let Some(hook) = hook {
            hook();
        }
        let mut block = Box::new(core::mem::MaybeUninit::<WrapperObj<ModelRt>>::uninit());
        let o = NonNull::from(&mut *block).cast::<ObjHead>();
        // SAFETY: the header is the first field of the repr(C) block; written once.
        unsafe {
            o.as_ptr()
                .write(ObjHead::new(self.fresh_id(), thread_key(), ty))
        };
        // SAFETY: a fresh block laid out as WrapperObj.
        unsafe { WrapperObj::<ModelRt>::init_fields(o) };
        let o = NonNull::new(Box::into_raw(block))
            .expect("box")
            .cast::<ObjHead>();
        // SAFETY: a live type (caller).
        unsafe { self.incref_type(ty) };
        self.objects.lock().unwrap().push(ObjPtr(o));
        Some(o)
    }

    unsafe fn reinit(&self, o: NonNull<ObjHead>, ty: NonNull<ModelType>) {
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        h.assert_life("revival (_Py_NewReference)", &[CACHED]);
        assert!(
            h.ty.load(Relaxed) == ty.as_ptr(),
            "object #{} revived as another type",
            h.id
        );
        assert!(
            h.weakrefs.lock().unwrap().is_empty(),
            "object #{} revived with weak references from its previous life",
            h.id
        );
        assert!(
            !h.finalized.load(Relaxed),
            "object #{} revived after its finalizer ran (it would never run again)",
            h.id
        );
        h.memory.bump();
        h.new_reference(thread_key());
        h.life.store(LIVE, Relaxed);
    }

    unsafe fn free(&self, o: NonNull<ObjHead>) {
        assert!(
            self.attached(),
            "lesson 5 violated: freeing object memory on a detached thread"
        );
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        assert!(
            !h.tracked.load(Relaxed),
            "object #{} freed while GC-tracked",
            h.id
        );
        let prev = h.life.swap(FREED, Relaxed);
        assert!(
            prev == DYING || prev == CACHED,
            "S1 violated: object #{} freed while {}{}",
            h.id,
            life_name(prev),
            if prev == FREED { " (double free)" } else { "" }
        );
        h.dying_on.store(0, Relaxed);
    }

    unsafe fn incref_type(&self, ty: NonNull<ModelType>) {
        // SAFETY: quarantined.
        let t = unsafe { ty.as_ref() };
        let old = t.refcnt.fetch_add(1, Relaxed);
        assert!(old > 0, "S1 violated: type {} resurrected", t.name);
    }

    unsafe fn decref_type(&self, ty: NonNull<ModelType>) {
        // SAFETY: quarantined.
        let t = unsafe { ty.as_ref() };
        let old = t.refcnt.fetch_sub(1, Relaxed);
        assert!(old > 0, "S1 violated: type {} freed twice", t.name);
    }

    unsafe fn has_finalizer(&self, ty: NonNull<ModelType>) -> bool {
        // SAFETY: quarantined.
        unsafe { ty.as_ref() }.finalizer.is_some()
    }

    unsafe fn call_finalizer(&self, o: NonNull<ObjHead>) -> bool {
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        h.assert_life("PyObject_CallFinalizerFromDealloc", &[DYING]);
        assert_eq!(
            h.refcount(),
            0,
            "finalizer of object #{} with references",
            h.id
        );
        // SAFETY: a live type.
        let ty = unsafe { &*h.ty.load(Relaxed) };
        let me = thread_key();
        // `_PyObject_ResurrectStart`: one reference owned by this thread, shared count and
        // flags cleared (a non-owner's try-incref now fails).
        h.new_reference(me);
        h.life.store(RESURRECTING, Relaxed);
        if !h.finalized.swap(true, Relaxed)
            && let Some(f) = &ty.finalizer
        {
            f(self, o);
        }
        // `_PyObject_ResurrectEnd`.
        let resurrected = if h.owned_by(me) {
            h.explicit_merge(-1) != 0
        } else {
            let (queue, dead) = h.decref_shared();
            assert!(!queue, "a finalizer left its object queued");
            !dead
        };
        h.life
            .store(if resurrected { LIVE } else { DYING }, Relaxed);
        if resurrected {
            h.dying_on.store(0, Relaxed);
        }
        resurrected
    }

    unsafe fn has_weakrefs(&self, o: NonNull<ObjHead>) -> bool {
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        h.assert_life("weak reference list", &[DYING]);
        !h.weakrefs.lock().unwrap().is_empty()
    }

    unsafe fn clear_weakrefs(&self, o: NonNull<ObjHead>) {
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        h.assert_life("PyObject_ClearWeakRefs", &[DYING]);
        let callbacks: Vec<WeakCallback> = core::mem::take(&mut *h.weakrefs.lock().unwrap());
        for cb in callbacks {
            cb();
        }
    }

    fn is_attached(&self) -> bool {
        self.attached()
    }

    fn save_thread(&self) {
        self.stop_the_world_check();
        let me = thread_key();
        {
            let mut threads = self.threads.lock().unwrap();
            let t = threads
                .get_mut(&me)
                .expect("save_thread on a foreign thread");
            assert!(t.attached, "save_thread on a detached thread");
            t.attached = false;
        }
        self.drop_gil();
        self.stw.1.notify_all();
    }

    fn restore_thread(&self, (): ()) {
        self.take_gil();
        self.wait_for_the_world();
        let me = thread_key();
        self.threads
            .lock()
            .unwrap()
            .get_mut(&me)
            .expect("restore_thread on a foreign thread")
            .attached = true;
    }

    fn yield_thread(&self) {
        binding_core::sync::thread::yield_now();
    }

    fn ensure(&self) -> Gil {
        assert!(
            // SeqCst: as `finalize`.
            !self
                .finalizing
                .load(binding_core::sync::atomic::Ordering::SeqCst),
            "lesson 5 violated: PyGILState_Ensure after the interpreter began finalising"
        );
        let me = thread_key();
        if self
            .threads
            .lock()
            .unwrap()
            .get(&me)
            .is_some_and(|t| t.attached)
        {
            return Gil::Nested;
        }
        // Not holding the registry's lock while waiting for the GIL or the world.
        self.take_gil();
        self.wait_for_the_world();
        let mut threads = self.threads.lock().unwrap();
        match threads.get_mut(&me) {
            Some(t) => {
                t.attached = true;
                Gil::Reattached
            }
            None => {
                threads.insert(
                    me,
                    ThreadState {
                        attached: true,
                        ..ThreadState::default()
                    },
                );
                Gil::Created
            }
        }
    }

    fn release(&self, gil: Gil) {
        if !matches!(gil, Gil::Nested) {
            assert!(
                // SeqCst: as `finalize`.
                !self
                    .finalizing
                    .load(binding_core::sync::atomic::Ordering::SeqCst),
                "lesson 5 violated: PyGILState_Release after the interpreter began finalising \
                 (a reclaimer left the attached count before letting its thread state go)"
            );
        }
        match gil {
            Gil::Nested => {}
            Gil::Reattached => {
                let me = thread_key();
                if let Some(t) = self.threads.lock().unwrap().get_mut(&me) {
                    t.attached = false;
                }
                self.drop_gil();
            }
            Gil::Created => self.exit_thread(),
        }
    }

    fn note_backoff(&self, spins: u32) {
        {
            let mut g = self.gate.0.lock().unwrap();
            if g.closed {
                g.waiting += 1;
                self.gate.1.notify_all();
                while g.closed {
                    g = self.gate.1.wait(g).unwrap();
                }
                g.waiting -= 1;
            }
        }
        // Under loom and shuttle every wait parks until the awaited thread runs, so a correct
        // adapter backs off only a few times in a row. On real threads a peer may simply be
        // descheduled: there the bound also needs `max_spins` seconds of wall-clock time.
        #[cfg(not(any(loom, feature = "shuttle")))]
        let stuck = {
            std::thread_local!(static SINCE: core::cell::Cell<Option<std::time::Instant>> =
                const { core::cell::Cell::new(None) });
            let now = std::time::Instant::now();
            if spins <= 1 {
                SINCE.with(|s| s.set(Some(now)));
            }
            let since = SINCE.with(|s| s.get()).unwrap_or(now);
            spins > self.config.max_spins
                && now.duration_since(since).as_secs() >= u64::from(self.config.max_spins.min(60))
        };
        #[cfg(any(loom, feature = "shuttle"))]
        let stuck = spins > self.config.max_spins;
        assert!(
            !stuck,
            "L1 violated: an operation backed off {spins} times in a row (livelock or deadlock); \
             objects: {}",
            self.describe()
        );
    }

    fn takeover_patience(&self) -> core::time::Duration {
        self.config.takeover_patience
    }

    fn spins_before_detach(&self) -> u32 {
        0
    }

    fn flaw(&self) -> AdapterFlaw {
        self.config.flaw
    }

    unsafe fn note_replaced(&self, o: NonNull<ObjHead>) {
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        // Dead: its dealloc began (DYING: the model's dealloc bookkeeping may hold a transient
        // local count), or its count is zero with the dealloc still to come (parked, or queued
        // to its owner for the merge).
        assert!(
            h.life() != LIVE || h.refcount() <= 0,
            "S4 violated: a lookup replaced object #{} while it was alive (count {}); {}",
            h.id,
            h.refcount(),
            self.describe()
        );
    }

    unsafe fn note_cached(&self, o: NonNull<ObjHead>) {
        // SAFETY: quarantined.
        let h = unsafe { o.as_ref() };
        assert!(
            h.weakrefs.lock().unwrap().is_empty(),
            "object #{} cached with live weak references",
            h.id
        );
        assert!(
            !h.tracked.load(Relaxed),
            "object #{} cached while GC-tracked",
            h.id
        );
        let prev = h.life.swap(CACHED, Relaxed);
        assert!(
            prev == DYING,
            "S1 violated: object #{} cached while {}",
            h.id,
            life_name(prev)
        );
        h.dying_on.store(0, Relaxed);
    }
}
