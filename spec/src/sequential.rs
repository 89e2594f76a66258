//! The model's sequential semantics: one operation at a time, each run to completion by the
//! model's own atomic steps ([`crate::steps::apply`]).
//!
//! This is the spec side of the conformance check (`docs/spec.md`, "Conformance"). Its
//! vocabulary, [`Op`], is what a program of the frontend does: look an object up, drop a wrapper
//! reference, move or detach a wrapper's handle, clone, keep or drop a native reference, shut the
//! interpreter down. An operation is started only when the model enables it (the same
//! [`crate::steps::actions`] the exhaustive checker uses) and then stepped until the thread that
//! started it is idle again; nothing else runs meanwhile. What happened on the way — values
//! dropped, allocations and wrappers freed, wrappers cached, revived or leaked — is reported as
//! [`Effect`]s, in order.
//!
//! Every step is checked as in the exhaustive runs: the step's own violation, a stop-the-world
//! collection that would find a corpse, and the invariants S1–S6 and L1 of
//! [`crate::properties`]. At every operation boundary the model's bookkeeping is checked too.
//! A sequential operation that cannot finish (a wait nobody else will end) is an L1 failure.
//!
//! Two operations go beyond the exhaustive model's actions, and only here: the foreign thread may
//! hold several references to one object ([`Op::CloneNative`]) and may keep a clone of a
//! wrapper's handle ([`Op::StashHandle`]). Both are plain strong increments by a thread that
//! already holds a reference.

use std::fmt;

use crate::config::{Bugs, Config, ObjSpec};
use crate::properties::{INVARIANTS, accounting};
use crate::state::{ActorId, DeallocPc, Frame, LookupPc, Mem, ObjId, State, WrapId};
use crate::steps::{self, Action};

/// How many wrappers one sequential run may allocate (the model encodes at most 31 per run).
pub const MAX_WRAPPERS: usize = 30;

/// Atomic steps one operation may take before it counts as running away (a livelock).
const MAX_STEPS: usize = 1_000;

/// One operation of the shared conformance vocabulary.
///
/// Indices are taken modulo what exists, so every sequence of operations is meaningful: `thread`
/// modulo the Python threads, `obj` modulo the objects, `nth` modulo the wrapper references the
/// thread holds (sorted by wrapper). An operation the model does not enable in the current state
/// (e.g. a lookup of an object the thread cannot reach) is skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Native code returns `obj` to Python thread `thread` (make-return): the caller's +1 comes
    /// from any reference the thread can reach. If the lookup has to allocate a fresh wrapper
    /// and `alloc_fails`, that allocation fails.
    Lookup {
        /// Python thread.
        thread: u8,
        /// Object.
        obj: u8,
        /// Fail the fresh allocation, if there is one.
        alloc_fails: bool,
    },
    /// The thread drops one of its wrapper references (`Py_DECREF`); at zero the wrapper's
    /// dealloc and free run on this thread.
    DropWrapper {
        /// Python thread.
        thread: u8,
        /// Which held reference.
        nth: u8,
    },
    /// The thread drops one of its wrapper references on a deep stack: if it was the last one,
    /// CPython 3.14's trashcan parks the wrapper's dealloc on the thread (count zero, binding
    /// untouched) until [`Op::Unwind`].
    DropParked {
        /// Python thread.
        thread: u8,
        /// Which held reference.
        nth: u8,
    },
    /// The thread's stack unwinds: its most recently parked dealloc runs.
    Unwind {
        /// Python thread.
        thread: u8,
    },
    /// The thread moves a held wrapper's handle to a new wrapper (`x._move()`, rebind).
    Move {
        /// Python thread.
        thread: u8,
        /// Which held reference.
        nth: u8,
    },
    /// The thread detaches a held wrapper and moves its handle out to native code, which drops
    /// it.
    Detach {
        /// Python thread.
        thread: u8,
        /// Which held reference.
        nth: u8,
    },
    /// Native code (the foreign thread) clones one of its references to `obj`.
    CloneNative {
        /// Object.
        obj: u8,
    },
    /// Native code keeps a clone of the handle of a wrapper the thread passes to it.
    StashHandle {
        /// Python thread.
        thread: u8,
        /// Which held reference.
        nth: u8,
    },
    /// The foreign thread drops one of its references to `obj`; the last reference runs
    /// reclaim on that thread (which attaches to free a cached wrapper).
    DropNative {
        /// Object.
        obj: u8,
    },
    /// The interpreter starts finalising: attach is refused from now on.
    Shutdown,
}

/// An [`Op`] with its indices resolved against the current state; only enabled operations are
/// resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resolved {
    /// [`Op::Lookup`].
    Lookup {
        /// Python thread.
        thread: ActorId,
        /// Object.
        obj: ObjId,
        /// Fail the fresh allocation, if there is one.
        alloc_fails: bool,
    },
    /// [`Op::DropWrapper`].
    DropWrapper {
        /// Python thread.
        thread: ActorId,
        /// The wrapper.
        w: WrapId,
    },
    /// [`Op::DropParked`].
    DropParked {
        /// Python thread.
        thread: ActorId,
        /// The wrapper.
        w: WrapId,
    },
    /// [`Op::Unwind`].
    Unwind {
        /// Python thread.
        thread: ActorId,
    },
    /// [`Op::Move`].
    Move {
        /// Python thread.
        thread: ActorId,
        /// The source wrapper.
        w: WrapId,
        /// Its object.
        obj: ObjId,
    },
    /// [`Op::Detach`].
    Detach {
        /// Python thread.
        thread: ActorId,
        /// The wrapper.
        w: WrapId,
    },
    /// [`Op::CloneNative`].
    CloneNative {
        /// Object.
        obj: ObjId,
    },
    /// [`Op::StashHandle`].
    StashHandle {
        /// Python thread.
        thread: ActorId,
        /// The wrapper.
        w: WrapId,
        /// Its object.
        obj: ObjId,
    },
    /// [`Op::DropNative`].
    DropNative {
        /// Object.
        obj: ObjId,
    },
    /// [`Op::Shutdown`].
    Shutdown,
}

/// How a lookup ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Found {
    /// The live canonical wrapper (try-incref under the lock).
    Hit(WrapId),
    /// The cached wrapper, revived in place.
    Revived(WrapId),
    /// A fresh wrapper, published from Detached.
    Fresh(WrapId),
    /// A fresh wrapper that took the binding over from a dying wrapper whose dealloc did not
    /// come (the takeover; S5's one exception).
    Replaced(WrapId),
    /// The fresh allocation failed; the word is untouched.
    Failed,
}

/// What an operation returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A lookup.
    Lookup(Found),
    /// A move: the new wrapper the thread now holds.
    Moved(WrapId),
    /// Any other operation.
    Done,
}

/// One observable effect, in the order the steps made them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    /// An object's last strong reference went: its value (and what the value holds) dropped.
    ValueDropped(ObjId),
    /// An object's allocation was freed.
    NativeFreed(ObjId),
    /// A wrapper's memory was given back to the allocator by its own free.
    WrapperFreed(WrapId),
    /// Reclaim gave a cached wrapper's memory back to the allocator.
    ReclaimedCached(WrapId),
    /// A dead wrapper's memory was kept for revival (settle: InTransit → Inactive).
    WrapperCached(WrapId),
    /// A cached wrapper was re-initialised in place.
    WrapperRevived(WrapId),
    /// A cached wrapper was leaked on purpose (reclaim after shutdown).
    WrapperLeaked(WrapId),
    /// A wrapper free found that reclaim had deferred to it and freed the allocation itself
    /// (the second settler).
    DeferredSettle(WrapId),
}

/// The result of one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    /// The operation as resolved.
    pub op: Resolved,
    /// What it returned.
    pub outcome: Outcome,
    /// What happened, in order.
    pub effects: Vec<Effect>,
}

/// Why the model could not run an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpecError {
    /// A step committed a violation (the message names the property).
    Violation(&'static str),
    /// A state broke this invariant.
    Invariant(&'static str),
    /// The operation waits for something no other thread will do (L1, sequentially).
    Stuck(Frame),
    /// The operation took more than a thousand steps.
    Runaway,
    /// The run's setup is not one the model can express.
    Setup(&'static str),
    /// The operation may allocate a wrapper and the run has [`MAX_WRAPPERS`] already.
    Full,
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Violation(v) => write!(f, "spec violation: {v}"),
            Self::Invariant(p) => write!(f, "spec invariant broken: {p}"),
            Self::Stuck(frame) => write!(
                f,
                "L1 (sequential): the operation waits forever at {frame:?}"
            ),
            Self::Runaway => write!(f, "L1 (sequential): the operation never finishes"),
            Self::Setup(why) => write!(f, "setup: {why}"),
            Self::Full => write!(f, "the run's wrapper budget ({MAX_WRAPPERS}) is used up"),
        }
    }
}

/// The model run one operation at a time.
#[derive(Clone, Debug)]
pub struct Sequential {
    cfg: Config,
    state: State,
    /// References the foreign thread holds, per object.
    roots: Vec<u8>,
    /// Revivals per wrapper.
    revivals: Vec<u32>,
}

impl Sequential {
    /// A run of `objects` with `threads` Python threads and the foreign thread; rebind,
    /// allocation failure, shutdown and parked deallocs (the trashcan) are enabled, weak
    /// references are not (see `docs/spec.md`). Each object must be rooted or held by the value
    /// of exactly one other.
    pub fn new(objects: Vec<ObjSpec>, threads: u8, bugs: Bugs) -> Result<Self, SpecError> {
        if threads == 0 {
            return Err(SpecError::Setup("no Python thread"));
        }
        for (i, o) in objects.iter().enumerate() {
            let holders = objects
                .iter()
                .filter(|h| h.holds == Some(i as ObjId))
                .count();
            if holders > 1 {
                return Err(SpecError::Setup("an object held by two values"));
            }
            if !o.rooted && holders == 0 {
                return Err(SpecError::Setup("an object nobody references"));
            }
            if o.holds.is_some_and(|j| usize::from(j) >= objects.len()) {
                return Err(SpecError::Setup(
                    "a value holds an object that does not exist",
                ));
            }
        }
        let cfg = Config {
            objects,
            threads,
            budget: u8::MAX,
            rebind: true,
            weakrefs: false,
            alloc_failure: true,
            shutdown: true,
            takeover: true,
            trashcan: true,
            gil: false,
            bugs,
        };
        let state = State::initial(&cfg);
        let roots = cfg.objects.iter().map(|o| u8::from(o.rooted)).collect();
        Ok(Sequential {
            cfg,
            state,
            roots,
            revivals: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The current state (every thread idle).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// How many references the foreign thread holds to `obj`.
    pub fn roots(&self, obj: ObjId) -> u8 {
        self.roots[usize::from(obj)]
    }

    /// How many times wrapper `w` was revived in place.
    pub fn revivals(&self, w: WrapId) -> u32 {
        self.revivals.get(usize::from(w)).copied().unwrap_or(0)
    }

    /// Whether another wrapper may not fit in the run (operations that may allocate one should
    /// not be started).
    pub fn full(&self) -> bool {
        self.state.wrappers.len() >= MAX_WRAPPERS
    }

    fn thread(&self, thread: u8) -> ActorId {
        thread % self.cfg.threads
    }

    fn held(&self, thread: u8, nth: u8) -> Option<(ActorId, WrapId)> {
        let a = self.thread(thread);
        let held = &self.state.actors[usize::from(a)].held;
        (!held.is_empty()).then(|| (a, held[usize::from(nth) % held.len()]))
    }

    fn enabled(&self, action: Action) -> bool {
        let mut acts = Vec::new();
        steps::actions(&self.cfg, &self.state, &mut acts);
        acts.contains(&action)
    }

    /// Resolves `op` against the current state; `None` if the model does not enable it.
    pub fn resolve(&self, op: Op) -> Option<Resolved> {
        let n = self.cfg.objects.len() as ObjId;
        let native = self.cfg.native_actor();
        let resolved = match op {
            Op::Lookup {
                thread,
                obj,
                alloc_fails,
            } => {
                let (thread, obj) = (self.thread(thread), obj % n);
                self.enabled(Action::Start(thread, steps::Op::Lookup(obj)))
                    .then_some(Resolved::Lookup {
                        thread,
                        obj,
                        alloc_fails,
                    })?
            }
            Op::DropWrapper { thread, nth } => {
                let (thread, w) = self.held(thread, nth)?;
                self.enabled(Action::Start(thread, steps::Op::Drop(w)))
                    .then_some(Resolved::DropWrapper { thread, w })?
            }
            Op::DropParked { thread, nth } => {
                let (thread, w) = self.held(thread, nth)?;
                self.enabled(Action::Start(thread, steps::Op::Drop(w)))
                    .then_some(Resolved::DropParked { thread, w })?
            }
            Op::Unwind { thread } => {
                let thread = self.thread(thread);
                self.enabled(Action::Unwind(thread))
                    .then_some(Resolved::Unwind { thread })?
            }
            Op::Move { thread, nth } => {
                let (thread, w) = self.held(thread, nth)?;
                let obj = self.state.wrappers[usize::from(w)].obj;
                self.enabled(Action::Start(thread, steps::Op::Move(w)))
                    .then_some(Resolved::Move { thread, w, obj })?
            }
            Op::Detach { thread, nth } => {
                let (thread, w) = self.held(thread, nth)?;
                self.enabled(Action::Start(thread, steps::Op::Detach(w)))
                    .then_some(Resolved::Detach { thread, w })?
            }
            Op::CloneNative { obj } => {
                let obj = obj % n;
                (self.roots(obj) > 0).then_some(Resolved::CloneNative { obj })?
            }
            Op::StashHandle { thread, nth } => {
                let (thread, w) = self.held(thread, nth)?;
                let wr = &self.state.wrappers[usize::from(w)];
                (wr.handle && wr.mem == Mem::Live).then_some(Resolved::StashHandle {
                    thread,
                    w,
                    obj: wr.obj,
                })?
            }
            Op::DropNative { obj } => {
                let obj = obj % n;
                (self.roots(obj) > 0
                    && self.enabled(Action::Start(native, steps::Op::DropRoot(obj))))
                .then_some(Resolved::DropNative { obj })?
            }
            Op::Shutdown => self
                .enabled(Action::Shutdown)
                .then_some(Resolved::Shutdown)?,
        };
        Some(resolved)
    }

    /// `op` with its indices reduced modulo what exists now (the same operation, as it would
    /// be written by hand).
    pub fn canonical(&self, op: Op) -> Op {
        let n = self.cfg.objects.len() as u8;
        let thread = |t: u8| self.thread(t);
        let nth = |t: u8, k: u8| {
            let len = self.state.actors[usize::from(self.thread(t))].held.len();
            if len == 0 {
                k
            } else {
                (usize::from(k) % len) as u8
            }
        };
        match op {
            Op::Lookup {
                thread: t,
                obj,
                alloc_fails,
            } => Op::Lookup {
                thread: thread(t),
                obj: obj % n,
                alloc_fails,
            },
            Op::DropWrapper { thread: t, nth: k } => Op::DropWrapper {
                thread: thread(t),
                nth: nth(t, k),
            },
            Op::DropParked { thread: t, nth: k } => Op::DropParked {
                thread: thread(t),
                nth: nth(t, k),
            },
            Op::Unwind { thread: t } => Op::Unwind { thread: thread(t) },
            Op::Move { thread: t, nth: k } => Op::Move {
                thread: thread(t),
                nth: nth(t, k),
            },
            Op::Detach { thread: t, nth: k } => Op::Detach {
                thread: thread(t),
                nth: nth(t, k),
            },
            Op::StashHandle { thread: t, nth: k } => Op::StashHandle {
                thread: thread(t),
                nth: nth(t, k),
            },
            Op::CloneNative { obj } => Op::CloneNative { obj: obj % n },
            Op::DropNative { obj } => Op::DropNative { obj: obj % n },
            Op::Shutdown => Op::Shutdown,
        }
    }

    /// Applies `op` if the model enables it (`Ok(None)` if not), running it to completion.
    pub fn apply(&mut self, op: Op) -> Result<Option<Applied>, SpecError> {
        match self.resolve(op) {
            None => Ok(None),
            Some(r) => self.apply_resolved(r).map(Some),
        }
    }

    /// Runs a resolved operation to completion. `op` must come from [`resolve`](Self::resolve)
    /// on the current state.
    pub fn apply_resolved(&mut self, op: Resolved) -> Result<Applied, SpecError> {
        if self.full() && matches!(op, Resolved::Lookup { .. } | Resolved::Move { .. }) {
            return Err(SpecError::Full);
        }
        for a in 0..self.cfg.threads {
            self.state.actors[usize::from(a)].budget = u8::MAX;
        }
        let mut run = Run::default();
        let outcome = match op {
            Resolved::Lookup {
                thread,
                obj,
                alloc_fails,
            } => {
                let before = self.state.actors[usize::from(thread)].held.clone();
                self.run(
                    thread,
                    Action::Start(thread, steps::Op::Lookup(obj)),
                    alloc_fails,
                    &mut run,
                )?;
                let after = &self.state.actors[usize::from(thread)].held;
                Outcome::Lookup(match (added(&before, after), run.kind) {
                    (None, _) if run.failed => Found::Failed,
                    (Some(w), LookupKind::Revived) => Found::Revived(w),
                    (Some(w), LookupKind::Fresh) => Found::Fresh(w),
                    (Some(w), LookupKind::Replaced) => Found::Replaced(w),
                    (Some(w), LookupKind::Hit) => Found::Hit(w),
                    _ => return Err(SpecError::Violation("model: a lookup returned nothing")),
                })
            }
            Resolved::DropWrapper { thread, w } => {
                self.run(
                    thread,
                    Action::Start(thread, steps::Op::Drop(w)),
                    false,
                    &mut run,
                )?;
                Outcome::Done
            }
            Resolved::DropParked { thread, w } => {
                run.park = true;
                self.run(
                    thread,
                    Action::Start(thread, steps::Op::Drop(w)),
                    false,
                    &mut run,
                )?;
                Outcome::Done
            }
            Resolved::Unwind { thread } => {
                self.run(thread, Action::Unwind(thread), false, &mut run)?;
                Outcome::Done
            }
            Resolved::Move { thread, w, .. } => {
                let before = self.state.actors[usize::from(thread)].held.clone();
                self.run(
                    thread,
                    Action::Start(thread, steps::Op::Move(w)),
                    false,
                    &mut run,
                )?;
                let after = &self.state.actors[usize::from(thread)].held;
                let to = added(&before, after)
                    .ok_or(SpecError::Violation("model: a move returned nothing"))?;
                Outcome::Moved(to)
            }
            Resolved::Detach { thread, w } => {
                self.run(
                    thread,
                    Action::Start(thread, steps::Op::Detach(w)),
                    false,
                    &mut run,
                )?;
                Outcome::Done
            }
            Resolved::CloneNative { obj } | Resolved::StashHandle { obj, .. } => {
                // A strong increment by a thread that holds a reference (the foreign thread's
                // own, or the wrapper's handle it was passed).
                let o = &mut self.state.objects[usize::from(obj)];
                o.strong = o
                    .strong
                    .checked_add(1)
                    .ok_or(SpecError::Violation("model: strong count overflow"))?;
                o.rooted = true;
                self.roots[usize::from(obj)] += 1;
                Outcome::Done
            }
            Resolved::DropNative { obj } => {
                let native = self.cfg.native_actor();
                self.roots[usize::from(obj)] -= 1;
                let left = self.roots(obj) > 0;
                self.run_with(
                    native,
                    Action::Start(native, steps::Op::DropRoot(obj)),
                    false,
                    &mut run,
                    // `DropRoot` gives up the foreign thread's only reference in the exhaustive
                    // model; here it may hold more.
                    |s| s.objects[usize::from(obj)].rooted = left,
                )?;
                Outcome::Done
            }
            Resolved::Shutdown => {
                self.exec(Action::Shutdown, &mut run)?;
                Outcome::Done
            }
        };
        self.check_boundary()?;
        Ok(Applied {
            op,
            outcome,
            effects: run.effects,
        })
    }

    /// An operation that drops something still held (or runs a parked dealloc), or `None` once
    /// nothing is: applied until `None`, it tears the run down (every object and wrapper must
    /// then be freed, or leaked after shutdown).
    pub fn teardown_op(&self) -> Option<Op> {
        for (a, actor) in self.state.actors[..usize::from(self.cfg.threads)]
            .iter()
            .enumerate()
        {
            if !actor.held.is_empty() {
                return Some(Op::DropWrapper {
                    thread: a as u8,
                    nth: 0,
                });
            }
            if !actor.parked.is_empty() {
                return Some(Op::Unwind { thread: a as u8 });
            }
        }
        (0..self.roots.len())
            .find(|&o| self.roots[o] > 0)
            .map(|o| Op::DropNative { obj: o as u8 })
    }

    /// Whether everything was given back: every allocation freed, every wrapper freed (or
    /// leaked after shutdown).
    pub fn all_freed(&self) -> bool {
        self.state.objects.iter().all(|o| o.freed)
            && self
                .state
                .wrappers
                .iter()
                .all(|w| w.mem == Mem::Freed || (w.mem == Mem::Leaked && self.state.shutdown))
    }

    fn run(
        &mut self,
        a: ActorId,
        start: Action,
        alloc_fails: bool,
        run: &mut Run,
    ) -> Result<(), SpecError> {
        self.run_with(a, start, alloc_fails, run, |_| {})
    }

    /// Starts an operation on thread `a` (then `fixup` the state) and steps that thread until it
    /// is idle again.
    fn run_with(
        &mut self,
        a: ActorId,
        start: Action,
        alloc_fails: bool,
        run: &mut Run,
        fixup: impl FnOnce(&mut State),
    ) -> Result<(), SpecError> {
        self.exec(start, run)?;
        fixup(&mut self.state);
        for _ in 0..MAX_STEPS {
            let Some(&frame) = self.state.actors[usize::from(a)].top() else {
                return Ok(());
            };
            let outermost = self.state.actors[usize::from(a)].stack.len() == 1;
            let allocating = matches!(
                frame,
                Frame::Lookup {
                    pc: LookupPc::Allocate | LookupPc::AllocateSpare,
                    ..
                }
            );
            let parking = matches!(
                frame,
                Frame::Dealloc {
                    pc: DeallocPc::Untrack,
                    ..
                }
            );
            let action = if alloc_fails && outermost && allocating {
                run.failed = true;
                Action::AllocFails(a)
            } else if run.park && outermost && parking {
                Action::Park(a)
            } else if steps::step_enabled(&self.cfg, &self.state, a, &frame) {
                Action::Step(a)
            } else if steps::takeover_enabled(&self.cfg, &self.state, &frame) {
                // Nobody else runs: the awaited dealloc is parked. The bounded wait ends.
                Action::TakeOver(a)
            } else {
                return Err(SpecError::Stuck(frame));
            };
            if outermost && let Frame::Lookup { pc, .. } = frame {
                match pc {
                    LookupPc::Revive(_) => run.kind = LookupKind::Revived,
                    LookupPc::PublishFresh(_) => run.kind = LookupKind::Fresh,
                    LookupPc::Replace(_) => run.kind = LookupKind::Replaced,
                    _ => {}
                }
            }
            if let Frame::Dealloc {
                w,
                pc: DeallocPc::FreeAlloc,
            } = frame
            {
                run.effects.push(Effect::DeferredSettle(w));
            }
            self.exec(action, run)?;
        }
        Err(SpecError::Runaway)
    }

    /// Applies one atomic step, records its effects and checks the state it leads to.
    fn exec(&mut self, action: Action, run: &mut Run) -> Result<(), SpecError> {
        let (next, _) = steps::apply(&self.cfg, &self.state, action);
        let first = run.effects.len();
        effects(&self.state, &next, &mut run.effects);
        for e in &run.effects[first..] {
            if let Effect::WrapperRevived(w) = *e {
                let w = usize::from(w);
                if self.revivals.len() <= w {
                    self.revivals.resize(w + 1, 0);
                }
                self.revivals[w] += 1;
            }
        }
        self.state = next;
        if let Some(v) = self.state.violation {
            return Err(SpecError::Violation(v));
        }
        // A stop-the-world collection may run whenever every thread is at a safe point.
        if self.enabled(Action::Gc) {
            let (next, _) = steps::apply(&self.cfg, &self.state, Action::Gc);
            self.state = next;
            return Err(SpecError::Violation(
                self.state.violation.unwrap_or("S1: collection"),
            ));
        }
        // The model's own accounting counts the foreign thread's single root; it is checked at
        // operation boundaries instead (`check_boundary`).
        for p in INVARIANTS.iter().filter(|p| p.name != "model accounting") {
            if !(p.holds)(&self.cfg, &self.state) {
                return Err(SpecError::Invariant(p.name));
            }
        }
        Ok(())
    }

    /// Every thread is idle: each strong count equals its holders (the foreign thread's
    /// references, the holder's value, the wrappers' handles) and each live wrapper's count
    /// equals the references threads hold.
    fn check_boundary(&self) -> Result<(), SpecError> {
        let s = &self.state;
        // Parked deallocs wait for their thread to unwind; nothing else may be in flight.
        if s.actors.iter().any(|a| !a.stack.is_empty()) {
            return Err(SpecError::Violation(
                "model: a thread is busy between operations",
            ));
        }
        if s.objects.iter().any(|o| !o.freed && o.word.locked()) {
            return Err(SpecError::Invariant("S6: a lock outlived its operation"));
        }
        // With at most one root, the model's own accounting applies as it is.
        if self.roots.iter().all(|&r| r <= 1) && !accounting(&self.cfg, s) {
            return Err(SpecError::Invariant("model accounting"));
        }
        for (i, o) in s.objects.iter().enumerate() {
            if o.freed {
                continue;
            }
            let by_value = self
                .cfg
                .holder_of(i as ObjId)
                .is_some_and(|h| s.objects[usize::from(h)].value_alive);
            let handles = s
                .wrappers
                .iter()
                .filter(|w| usize::from(w.obj) == i && w.handle)
                .count();
            let holders = usize::from(self.roots[i]) + usize::from(by_value) + handles;
            if usize::from(o.strong) != holders {
                return Err(SpecError::Invariant("model accounting (strong count)"));
            }
        }
        Ok(())
    }
}

/// What one operation's steps observed.
#[derive(Default)]
struct Run {
    effects: Vec<Effect>,
    kind: LookupKind,
    failed: bool,
    /// The operation's own dealloc, if the drop starts one, is parked.
    park: bool,
}

#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum LookupKind {
    #[default]
    Hit,
    Revived,
    Fresh,
    Replaced,
}

/// The wrapper `after` holds once more than `before` (both sorted).
fn added(before: &[WrapId], after: &[WrapId]) -> Option<WrapId> {
    if after.len() != before.len() + 1 {
        return None;
    }
    let i = before
        .iter()
        .zip(after)
        .position(|(b, a)| b != a)
        .unwrap_or(before.len());
    Some(after[i])
}

/// The effects of one step: what changed between `s` and `next`.
fn effects(s: &State, next: &State, out: &mut Vec<Effect>) {
    for (i, (o, n)) in s.objects.iter().zip(&next.objects).enumerate() {
        if o.value_alive && !n.value_alive {
            out.push(Effect::ValueDropped(i as ObjId));
        }
        if !o.freed && n.freed {
            out.push(Effect::NativeFreed(i as ObjId));
        }
    }
    for (i, n) in next.wrappers.iter().enumerate() {
        let w = i as WrapId;
        let was = s.wrappers.get(i).map(|o| o.mem);
        let effect = match (was, n.mem) {
            (Some(a), b) if a == b => None,
            (Some(Mem::Cached), Mem::Freed) => Some(Effect::ReclaimedCached(w)),
            (_, Mem::Freed) => Some(Effect::WrapperFreed(w)),
            (_, Mem::Cached) => Some(Effect::WrapperCached(w)),
            (Some(Mem::Cached), Mem::Live) => Some(Effect::WrapperRevived(w)),
            (_, Mem::Leaked) => Some(Effect::WrapperLeaked(w)),
            _ => None,
        };
        out.extend(effect);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Bug;
    use crate::word::Kind;

    fn one() -> Sequential {
        Sequential::new(vec![ObjSpec::PLAIN], 2, Bugs::NONE).unwrap()
    }

    fn lookup(thread: u8) -> Op {
        Op::Lookup {
            thread,
            obj: 0,
            alloc_fails: false,
        }
    }

    #[test]
    fn fresh_hit_cache_revive_reclaim() {
        let mut s = one();
        let a = s.apply(lookup(0)).unwrap().unwrap();
        assert_eq!(a.outcome, Outcome::Lookup(Found::Fresh(0)));
        let b = s.apply(lookup(1)).unwrap().unwrap();
        assert_eq!(b.outcome, Outcome::Lookup(Found::Hit(0)));
        assert_eq!(s.state().objects[0].strong, 2);
        // Thread 0 drops its reference: the count merges, thread 1 still holds one.
        let c = s
            .apply(Op::DropWrapper { thread: 0, nth: 0 })
            .unwrap()
            .unwrap();
        assert!(c.effects.is_empty());
        let d = s
            .apply(Op::DropWrapper { thread: 1, nth: 0 })
            .unwrap()
            .unwrap();
        assert_eq!(d.effects, vec![Effect::WrapperCached(0)]);
        assert_eq!(s.state().objects[0].word.kind(), Kind::Inactive(0));
        let e = s.apply(lookup(1)).unwrap().unwrap();
        assert_eq!(e.outcome, Outcome::Lookup(Found::Revived(0)));
        assert_eq!(e.effects, vec![Effect::WrapperRevived(0)]);
        assert_eq!(s.revivals(0), 1);
        // The root goes while the wrapper lives; the wrapper's death frees everything, reclaim
        // deferring to the settler.
        s.apply(Op::DropNative { obj: 0 }).unwrap().unwrap();
        let f = s
            .apply(Op::DropWrapper { thread: 1, nth: 0 })
            .unwrap()
            .unwrap();
        assert_eq!(
            f.effects,
            vec![
                Effect::ValueDropped(0),
                Effect::DeferredSettle(0),
                Effect::NativeFreed(0),
                Effect::WrapperFreed(0)
            ]
        );
        assert!(s.all_freed());
        assert_eq!(s.teardown_op(), None);
    }

    #[test]
    fn reclaim_on_the_foreign_thread_frees_the_cached_wrapper_or_leaks_it() {
        for shutdown in [false, true] {
            let mut s = one();
            s.apply(lookup(0)).unwrap().unwrap();
            s.apply(Op::DropWrapper { thread: 0, nth: 0 })
                .unwrap()
                .unwrap();
            if shutdown {
                s.apply(Op::Shutdown).unwrap().unwrap();
            }
            let r = s.apply(Op::DropNative { obj: 0 }).unwrap().unwrap();
            let wrapper = if shutdown {
                Effect::WrapperLeaked(0)
            } else {
                Effect::ReclaimedCached(0)
            };
            assert_eq!(
                r.effects,
                vec![Effect::ValueDropped(0), wrapper, Effect::NativeFreed(0)]
            );
            assert!(s.all_freed());
        }
    }

    #[test]
    fn skipped_failed_moved_detached_and_extra_roots() {
        let mut s = one();
        assert_eq!(s.apply(Op::DropWrapper { thread: 0, nth: 3 }), Ok(None));
        let f = s
            .apply(Op::Lookup {
                thread: 0,
                obj: 0,
                alloc_fails: true,
            })
            .unwrap()
            .unwrap();
        assert_eq!(f.outcome, Outcome::Lookup(Found::Failed));
        s.apply(lookup(0)).unwrap().unwrap();
        s.apply(Op::StashHandle { thread: 0, nth: 0 })
            .unwrap()
            .unwrap();
        s.apply(Op::CloneNative { obj: 0 }).unwrap().unwrap();
        assert_eq!(s.roots(0), 3);
        let m = s.apply(Op::Move { thread: 0, nth: 0 }).unwrap().unwrap();
        assert_eq!(m.outcome, Outcome::Moved(1));
        assert_eq!(s.state().objects[0].word.kind(), Kind::Active(1));
        s.apply(Op::Detach { thread: 0, nth: 1 }).unwrap().unwrap();
        assert_eq!(s.state().objects[0].word.kind(), Kind::Detached);
        while let Some(op) = s.teardown_op() {
            s.apply(op).unwrap().unwrap();
        }
        assert!(s.all_freed());
    }

    #[test]
    fn a_lookup_replaces_a_wrapper_parked_on_its_own_thread() {
        let mut s = one();
        s.apply(lookup(0)).unwrap().unwrap();
        let p = s
            .apply(Op::DropParked { thread: 0, nth: 0 })
            .unwrap()
            .unwrap();
        assert!(p.effects.is_empty());
        assert_eq!(s.state().actors[0].parked, vec![0]);
        assert_eq!(s.state().objects[0].word.kind(), Kind::Active(0));
        // The same thread looks the object up again: it misses on the parked wrapper, stops
        // waiting, and publishes a new one.
        let r = s.apply(lookup(0)).unwrap().unwrap();
        assert_eq!(r.outcome, Outcome::Lookup(Found::Replaced(1)));
        assert_eq!(s.state().objects[0].word.kind(), Kind::Active(1));
        // The late dealloc finds itself not canonical: the word stays, the memory goes.
        let u = s.apply(Op::Unwind { thread: 0 }).unwrap().unwrap();
        assert_eq!(u.effects, vec![Effect::WrapperFreed(0)]);
        assert_eq!(s.state().objects[0].word.kind(), Kind::Active(1));
        while let Some(op) = s.teardown_op() {
            s.apply(op).unwrap().unwrap();
        }
        assert!(s.all_freed());
    }

    #[test]
    fn the_first_settler_freeing_is_a_violation_sequentially() {
        let mut s =
            Sequential::new(vec![ObjSpec::PLAIN], 1, Bugs::only(Bug::FirstSettlerFrees)).unwrap();
        s.apply(lookup(0)).unwrap().unwrap();
        s.apply(Op::DropNative { obj: 0 }).unwrap().unwrap();
        let e = s.apply(Op::DropWrapper { thread: 0, nth: 0 }).unwrap_err();
        // Reclaim freed the allocation while the dealloc still holds the baton.
        assert_eq!(e, SpecError::Invariant("S6 baton"));
    }
}
