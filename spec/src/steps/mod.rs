//! The transition relation: which atomic steps are enabled, and what each one does.
//!
//! One [`Action`] is one atomic step of one thread: a load, store or compare-exchange of a binding
//! word, one reference-count operation, one free. Starting an operation is fused with its first
//! atomic step when nothing can observe the difference (e.g. `Drop` is the decrement itself).
//! Each submodule holds the steps of one operation.

mod dealloc;
mod lookup;
mod native;
mod rebind;

use crate::config::{Bug, Config};
use crate::refcount::{Decref, RefCount};
use crate::state::{
    ActorId, DeallocPc, DetachPc, DropPc, Frame, LookupPc, Mem, MovePc, ObjId, ReclaimPc, State,
    Wait, WrapId, Wrapper,
};
use crate::word::Word;

/// An operation an idle thread may start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Native code hands `obj` to the frontend (make-return).
    Lookup(ObjId),
    /// Drop one frontend reference to a held wrapper.
    Drop(WrapId),
    /// Move a held wrapper's handle to a new wrapper (rebind).
    Move(WrapId),
    /// Eagerly detach a held wrapper and move its handle out.
    Detach(WrapId),
    /// Create a weak reference to a held wrapper.
    Weakref(WrapId),
    /// The foreign thread drops its reference to `obj`.
    DropRoot(ObjId),
}

/// One atomic step of the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The thread's innermost frame takes its next step.
    Step(ActorId),
    /// The thread's fresh-wrapper allocation fails.
    AllocFails(ActorId),
    /// The thread's lookup, backed off after a miss on a dying wrapper, stops waiting for that
    /// wrapper's dealloc (its bounded wait ran out, and the frontend says to replace it): it
    /// makes a spare and retries, due to replace the wrapper at the next miss.
    TakeOver(ActorId),
    /// The trashcan parks the dealloc the thread is about to run (its delete-later list).
    Park(ActorId),
    /// The idle thread unwinds: its last parked dealloc runs.
    Unwind(ActorId),
    /// An idle thread starts an operation.
    Start(ActorId, Op),
    /// A stop-the-world garbage collection runs (all threads at safe points).
    Gc,
    /// The interpreter begins shutting down.
    Shutdown,
}

/// A write of a binding word (or the free of its allocation), for the state diagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WordEvent {
    /// The word before.
    pub from: Word,
    /// The word after; `None` when the allocation holding it was freed.
    pub to: Option<Word>,
    /// The protocol step.
    pub label: &'static str,
}

/// Lists the enabled actions of `s`, in a deterministic order.
pub fn actions(cfg: &Config, s: &State, out: &mut Vec<Action>) {
    if s.violation.is_some() {
        return;
    }
    for a in 0..s.actors.len() as ActorId {
        let actor = &s.actors[usize::from(a)];
        match actor.top() {
            Some(frame) => {
                if step_enabled(cfg, s, a, frame) {
                    out.push(Action::Step(a));
                }
                if cfg.alloc_failure
                    && matches!(
                        frame,
                        Frame::Lookup {
                            pc: LookupPc::Allocate | LookupPc::AllocateSpare,
                            ..
                        }
                    )
                {
                    out.push(Action::AllocFails(a));
                }
                if takeover_enabled(cfg, s, frame) {
                    out.push(Action::TakeOver(a));
                }
                if parkable(cfg, a, frame) && gil_free_for(cfg, s, a) {
                    out.push(Action::Park(a));
                }
            }
            None if a == cfg.native_actor() => {
                for (obj, o) in s.objects.iter().enumerate() {
                    if o.rooted {
                        out.push(Action::Start(a, Op::DropRoot(obj as ObjId)));
                    }
                }
            }
            None => {
                if !actor.parked.is_empty() {
                    out.push(Action::Unwind(a));
                }
                idle_ops(cfg, s, a, out);
            }
        }
    }
    if gc_finds_corpse(cfg, s) {
        out.push(Action::Gc);
    }
    if cfg.shutdown && !s.shutdown && !s.actors[usize::from(cfg.native_actor())].attached {
        out.push(Action::Shutdown);
    }
}

fn idle_ops(cfg: &Config, s: &State, a: ActorId, out: &mut Vec<Action>) {
    // Every operation of a Python thread starts by taking the GIL (GIL mode).
    if !gil_free_for(cfg, s, a) {
        return;
    }
    let actor = &s.actors[usize::from(a)];
    if actor.budget > 0 {
        for obj in 0..s.objects.len() as ObjId {
            if reachable(cfg, s, a, obj) {
                out.push(Action::Start(a, Op::Lookup(obj)));
            }
        }
    }
    let mut last = None;
    for &w in &actor.held {
        if last == Some(w) {
            continue;
        }
        last = Some(w);
        out.push(Action::Start(a, Op::Drop(w)));
        let wr = &s.wrappers[usize::from(w)];
        let header = cfg.objects[usize::from(wr.obj)].header;
        // Moving a handle out of a wrapper holds that wrapper's critical section
        // (`Py_BEGIN_CRITICAL_SECTION` on free-threaded builds): one mover at a time.
        if actor.budget > 0
            && cfg.rebind
            && header
            && wr.handle
            && wr.mem == Mem::Live
            && (cfg.has(Bug::UnserializedMove) || !being_moved(s, w))
        {
            out.push(Action::Start(a, Op::Move(w)));
            out.push(Action::Start(a, Op::Detach(w)));
        }
        if actor.budget > 0 && cfg.weakrefs && !wr.weakrefs && wr.mem == Mem::Live {
            out.push(Action::Start(a, Op::Weakref(w)));
        }
    }
}

/// Whether some thread is moving the handle out of `w` (holds its critical section).
fn being_moved(s: &State, w: WrapId) -> bool {
    s.actors.iter().flat_map(|a| a.stack.iter()).any(
        |f| matches!(*f, Frame::Move { from, .. } | Frame::Detach { w: from, .. } if from == w),
    )
}

/// Whether thread `a` can get hold of `obj` to hand it to the frontend: the foreign thread's
/// reference, a wrapper of it that `a` holds (a method returning `self`), or a wrapper of the
/// object whose value holds it (an attribute read).
pub fn reachable(cfg: &Config, s: &State, a: ActorId, obj: ObjId) -> bool {
    let o = &s.objects[usize::from(obj)];
    if o.freed || o.strong == 0 {
        return false;
    }
    let holds_wrapper_of = |target: ObjId| {
        s.actors[usize::from(a)].held.iter().any(|&w| {
            let wr = &s.wrappers[usize::from(w)];
            wr.obj == target && wr.handle && wr.mem == Mem::Live
        })
    };
    o.rooted
        || holds_wrapper_of(obj)
        || cfg.holder_of(obj).is_some_and(|outer| {
            s.objects[usize::from(outer)].value_alive && holds_wrapper_of(outer)
        })
}

/// The object whose word a frame watches while it backs off.
fn frame_obj(s: &State, frame: &Frame) -> ObjId {
    match *frame {
        Frame::Lookup { obj, .. } | Frame::DropNative { obj, .. } | Frame::Reclaim { obj, .. } => {
            obj
        }
        Frame::Merge { w }
        | Frame::Dealloc { w, .. }
        | Frame::Move { from: w, .. }
        | Frame::Detach { w, .. } => s.wrappers[usize::from(w)].obj,
    }
}

/// The wait a frame is backed off on, if it is.
pub fn frame_wait(frame: &Frame) -> Option<Wait> {
    match *frame {
        Frame::Lookup {
            pc: LookupPc::Backoff(w),
            ..
        }
        | Frame::Dealloc {
            pc: DeallocPc::Backoff(w),
            ..
        }
        | Frame::Move {
            pc: MovePc::Backoff(w),
            ..
        }
        | Frame::Detach {
            pc: DetachPc::Backoff(w),
            ..
        } => Some(w),
        _ => None,
    }
}

/// Whether what a backed-off thread observed has changed (it would now take another branch).
fn woken(s: &State, obj: ObjId, wait: &Wait) -> bool {
    let o = &s.objects[usize::from(obj)];
    let (now, then) = if wait.ignore_lock {
        (o.word.unlocked(), wait.word.unlocked())
    } else {
        (o.word, wait.word)
    };
    o.freed
        || now != then
        || wait
            .rc
            .is_some_and(|(w, rc)| s.wrappers[usize::from(w)].rc != rc)
}

/// Whether `frame` is not waiting, or what it waits for has changed (ignoring the GIL).
fn ready(s: &State, frame: &Frame) -> bool {
    frame_wait(frame).is_none_or(|w| woken(s, frame_obj(s, frame), &w))
}

/// Whether thread `a`'s innermost frame `frame` can take a step: it is not waiting (or what it
/// waits for changed), and in GIL mode, if the step needs the GIL, nobody else holds it.
pub fn step_enabled(cfg: &Config, s: &State, a: ActorId, frame: &Frame) -> bool {
    ready(s, frame) && (!needs_gil(cfg, s, a, frame) || gil_free_for(cfg, s, a))
}

/// Whether the GIL does not stop thread `a`: no GIL in this run, or it is free, or `a` holds it.
pub fn gil_free_for(cfg: &Config, s: &State, a: ActorId) -> bool {
    !cfg.has_gil() || s.gil.is_none_or(|h| h == a)
}

/// GIL mode: whether the next step of thread `a`'s `frame` runs with the GIL held. Everything a
/// Python thread does in a kernel operation does, except: `make_fresh` (allocation, which may
/// collect and run user code, lets the GIL go: the allocation, the clone of the +1 into the new
/// wrapper and its arming are private to the thread), native reference drops (they may run
/// arbitrary code) and reclaim's first load (reclaim runs on any thread). A wait's wake-up
/// re-acquires it. Reclaim takes it (a Python thread takes it back, the foreign thread
/// attaches; refused without waiting after shutdown) to write a word that is not Detached,
/// and to free a cached wrapper, until the foreign thread's release. With `ReclaimWithoutGil`
/// reclaim's word steps run without it, as in the general mode.
fn needs_gil(cfg: &Config, s: &State, a: ActorId, frame: &Frame) -> bool {
    if !cfg.has_gil() {
        return false;
    }
    match *frame {
        Frame::Lookup { pc, .. } => !matches!(
            pc,
            LookupPc::Allocate
                | LookupPc::AllocateSpare
                | LookupPc::Clone(_)
                | LookupPc::ArmFresh(_)
                | LookupPc::Return(_)
                | LookupPc::Fail
        ),
        Frame::Merge { .. } | Frame::Dealloc { .. } | Frame::Move { .. } | Frame::Detach { .. } => {
            true
        }
        Frame::DropNative { .. } => false,
        Frame::Reclaim { pc, .. } => {
            let native = a == cfg.native_actor();
            let serial = cfg.serialized() && !cfg.has(Bug::ReclaimWithoutGil);
            match pc {
                ReclaimPc::Lock(_) => !(native && s.shutdown),
                ReclaimPc::ClearTransitStore(_) => true,
                ReclaimPc::Detach(_) => serial && (!native || s.actors[usize::from(a)].attached),
                ReclaimPc::Attach(_) => !s.shutdown,
                ReclaimPc::FreeWrapper(_) | ReclaimPc::Release => true,
                ReclaimPc::Load | ReclaimPc::ClearTransit(_) | ReclaimPc::FreeAlloc => false,
            }
        }
    }
}

/// GIL mode: whether thread `a` is busy and could take its next step but for the GIL, which
/// another thread holds.
pub fn blocked_on_gil(cfg: &Config, s: &State, a: ActorId) -> bool {
    s.actors[usize::from(a)]
        .top()
        .is_some_and(|f| ready(s, f) && needs_gil(cfg, s, a, f) && !gil_free_for(cfg, s, a))
}

/// GIL mode: whether `action` is a step that runs with the GIL held (taken first if free).
fn action_needs_gil(cfg: &Config, s: &State, action: Action) -> bool {
    if !cfg.has_gil() {
        return false;
    }
    match action {
        Action::Step(a) => s.actors[usize::from(a)]
            .top()
            .is_some_and(|f| needs_gil(cfg, s, a, f)),
        Action::Park(_) => true,
        Action::Start(_, op) => !matches!(op, Op::DropRoot(_)),
        Action::AllocFails(_)
        | Action::TakeOver(_)
        | Action::Unwind(_)
        | Action::Gc
        | Action::Shutdown => false,
    }
}

/// GIL mode: whether a thread that holds the GIL lets it go after the step it just took, which
/// left `top` as its innermost frame: its operation ended (between operations), it waits
/// (every wait lets the GIL go), its next step runs without the GIL (`make_fresh`, a native
/// drop, reclaim), or the step ran user code (a weak-reference callback).
fn releases_gil(
    cfg: &Config,
    s: &State,
    a: ActorId,
    top: Option<&Frame>,
    ran_user_code: bool,
) -> bool {
    match top {
        None => true,
        Some(f) => {
            ran_user_code
                || (frame_wait(f).is_some() && !cfg.has(Bug::WaitHoldingGil))
                || !needs_gil(cfg, s, a, f)
        }
    }
}

/// Whether `frame` is a lookup backed off after a miss (refused by `try_incref`) on a wrapper
/// that has not changed since, which may stop waiting for the dying wrapper and replace it (its
/// wait is bounded). Once the word or the count changed, the lookup retries instead: taking over
/// then too would only add a spare to paths that already exist without it (the spare is private
/// until published).
pub fn takeover_enabled(cfg: &Config, s: &State, frame: &Frame) -> bool {
    cfg.takes_over()
        && matches!(
            frame,
            Frame::Lookup {
                pc: LookupPc::Backoff(Wait { rc: Some(_), .. }),
                ..
            }
        )
        && !ready(s, frame)
}

/// Whether the trashcan may park the dealloc `frame` is about to run on Python thread `a`: at its
/// very start (`_Py_Dealloc` deposits the object instead of calling `tp_dealloc`). A dealloc
/// that runs from the delete-later list starts past this point and is never parked again.
fn parkable(cfg: &Config, a: ActorId, frame: &Frame) -> bool {
    cfg.trashcan
        && a != cfg.native_actor()
        && matches!(
            frame,
            Frame::Dealloc {
                pc: DeallocPc::Untrack,
                ..
            }
        )
}

/// Whether thread `a`'s in-flight work (its innermost frame, or with an empty stack its parked
/// deallocs) can move without help from anyone: a step, the end of a bounded wait, an unwind.
pub fn in_flight_can_move(cfg: &Config, s: &State, a: ActorId) -> bool {
    let actor = &s.actors[usize::from(a)];
    match actor.top() {
        Some(f) => step_enabled(cfg, s, a, f) || takeover_enabled(cfg, s, f),
        None => !actor.parked.is_empty(),
    }
}

/// Whether thread `a` is at a point where a stop-the-world collection may run: idle, backed off
/// (thread state detached), allocating (the allocation itself may collect), or a foreign thread
/// without an attached thread state.
pub fn at_safe_point(cfg: &Config, s: &State, a: ActorId) -> bool {
    let actor = &s.actors[usize::from(a)];
    if a == cfg.native_actor() {
        return !actor.attached;
    }
    match actor.top() {
        None => true,
        Some(frame) => {
            frame_wait(frame).is_some()
                || matches!(
                    frame,
                    Frame::Lookup {
                        pc: LookupPc::Allocate | LookupPc::AllocateSpare,
                        ..
                    }
                )
        }
    }
}

/// A collection can run now and would find a wrapper that is being deallocated but is still
/// tracked (and would deallocate it a second time).
///
/// With a GIL, a collection runs on whichever thread takes the GIL and allocates: whenever the
/// GIL is free (a thread that allocates inside a kernel operation has let it go).
fn gc_finds_corpse(cfg: &Config, s: &State) -> bool {
    let can_collect = if cfg.has_gil() {
        s.gil.is_none()
    } else {
        (0..s.actors.len() as ActorId).all(|a| at_safe_point(cfg, s, a))
    };
    can_collect
        && s.wrappers
            .iter()
            .any(|w| w.mem == Mem::Live && w.dying && w.tracked)
}

/// Applies `action`, which must be one of [`actions`]`(cfg, s)`, to `s`. Returns the next state
/// and the word writes it made.
pub fn apply(cfg: &Config, s: &State, action: Action) -> (State, Vec<WordEvent>) {
    debug_assert!({
        let mut acts = Vec::new();
        actions(cfg, s, &mut acts);
        acts.contains(&action)
    });
    let (me, s2) = match action {
        Action::Step(a)
        | Action::AllocFails(a)
        | Action::TakeOver(a)
        | Action::Park(a)
        | Action::Unwind(a)
        | Action::Start(a, _) => (a, s.clone()),
        Action::Gc | Action::Shutdown => (cfg.native_actor(), s.clone()),
    };
    let takes_gil = action_needs_gil(cfg, s, action);
    let ran_user_code = matches!(action, Action::Step(_))
        && matches!(
            s.actors[usize::from(me)].top(),
            Some(Frame::Dealloc {
                pc: DeallocPc::Callback(_) | DeallocPc::EarlyCallback,
                ..
            })
        );
    let mut x = Exec {
        cfg,
        s: s2,
        me,
        events: Vec::new(),
    };
    if takes_gil {
        debug_assert!(gil_free_for(cfg, s, me));
        x.s.gil = Some(me);
    }
    match action {
        Action::Step(_) => x.step(false),
        Action::AllocFails(_) => x.step(true),
        Action::TakeOver(_) => x.take_over(),
        Action::Park(_) => x.park(),
        Action::Unwind(_) => x.unwind(),
        Action::Start(_, op) => x.start(op),
        Action::Gc => x.violate(
            "S1: a stop-the-world collection found a dying wrapper still tracked and \
             deallocated it a second time (gh-135909)",
        ),
        Action::Shutdown => x.s.shutdown = true,
    }
    if cfg.has_gil() && x.s.gil == Some(me) {
        let top = x.s.actors[usize::from(me)].top();
        if releases_gil(cfg, &x.s, me, top, ran_user_code) {
            x.s.gil = None;
        }
    }
    (x.s, x.events)
}

/// The executing thread's view of one step.
pub(crate) struct Exec<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) s: State,
    pub(crate) me: ActorId,
    pub(crate) events: Vec<WordEvent>,
}

impl Exec<'_> {
    fn step(&mut self, alloc_fails: bool) {
        let frame = *self.s.actors[usize::from(self.me)]
            .top()
            .expect("an enabled step has a frame");
        match frame {
            Frame::Lookup {
                obj,
                pc,
                spare,
                due,
            } => self.lookup(obj, pc, spare, due, alloc_fails),
            Frame::Merge { w } => self.merge(w),
            Frame::Dealloc { w, pc } => self.dealloc(w, pc),
            Frame::DropNative { obj, pc } => self.drop_native(obj, pc),
            Frame::Reclaim { obj, pc } => self.reclaim(obj, pc),
            Frame::Move { from, to, pc } => self.move_handle(from, to, pc),
            Frame::Detach { w, pc } => self.detach(w, pc),
        }
    }

    fn start(&mut self, op: Op) {
        let me = self.me;
        match op {
            Op::Lookup(obj) => {
                self.actor().budget -= 1;
                // The caller's +1: native code clones a reference it can reach.
                self.strong_incr(obj);
                let pc = if self.cfg.has(Bug::ProbeHeader) {
                    LookupPc::Probe
                } else if self.header(obj) {
                    LookupPc::Load
                } else {
                    LookupPc::Allocate
                };
                self.push(Frame::Lookup {
                    obj,
                    pc,
                    spare: None,
                    due: None,
                });
            }
            Op::Drop(w) => {
                let held = &mut self.actor().held;
                let i = held.iter().position(|&h| h == w).expect("held");
                held.remove(i);
                self.decref(w);
            }
            Op::Move(from) => {
                self.actor().budget -= 1;
                let obj = self.s.wrappers[usize::from(from)].obj;
                let to = self.new_wrapper(obj);
                self.push(Frame::Move {
                    from,
                    to,
                    pc: MovePc::Arm,
                });
            }
            Op::Detach(w) => {
                self.actor().budget -= 1;
                self.push(Frame::Detach {
                    w,
                    pc: DetachPc::Cas,
                });
            }
            Op::Weakref(w) => {
                self.actor().budget -= 1;
                let wr = self.wrapper(w);
                wr.weakrefs = true;
                wr.rc.enable_try_incref();
            }
            Op::DropRoot(obj) => {
                self.s.objects[usize::from(obj)].rooted = false;
                self.push(Frame::DropNative {
                    obj,
                    pc: DropPc::Strong,
                });
            }
        }
        debug_assert_eq!(me, self.me);
    }

    // ----- helpers shared by the operations -----

    pub(crate) fn actor(&mut self) -> &mut crate::state::Actor {
        &mut self.s.actors[usize::from(self.me)]
    }

    pub(crate) fn is_native(&self) -> bool {
        self.me == self.cfg.native_actor()
    }

    pub(crate) fn push(&mut self, f: Frame) {
        self.actor().stack.push(f);
    }

    pub(crate) fn pop(&mut self) {
        self.actor().stack.pop();
    }

    /// Replaces the innermost frame.
    pub(crate) fn set(&mut self, f: Frame) {
        *self.actor().stack.last_mut().expect("a frame") = f;
    }

    pub(crate) fn violate(&mut self, msg: &'static str) {
        if self.s.violation.is_none() {
            self.s.violation = Some(msg);
        }
    }

    pub(crate) fn header(&self, obj: ObjId) -> bool {
        self.cfg.objects[usize::from(obj)].header
    }

    pub(crate) fn wrapper(&mut self, w: WrapId) -> &mut Wrapper {
        &mut self.s.wrappers[usize::from(w)]
    }

    /// Reads a binding word (one load, or the read half of a compare-exchange).
    pub(crate) fn word(&mut self, obj: ObjId) -> Word {
        let o = &self.s.objects[usize::from(obj)];
        if o.freed {
            self.violate("S1: binding word accessed after its allocation was freed");
        }
        if !self.header(obj) {
            self.violate("S1: binding word accessed in an object that has none");
        }
        self.s.objects[usize::from(obj)].word
    }

    /// Writes a binding word (a store, or the write half of a successful compare-exchange).
    pub(crate) fn write(&mut self, obj: ObjId, to: Word, label: &'static str) {
        let from = self.word(obj);
        self.events.push(WordEvent {
            from,
            to: Some(to),
            label,
        });
        self.s.objects[usize::from(obj)].word = to;
    }

    /// A compare-exchange: writes `to` if the word is `expected`, else returns what it saw.
    pub(crate) fn cas(
        &mut self,
        obj: ObjId,
        expected: Word,
        to: Word,
        label: &'static str,
    ) -> Result<(), Word> {
        let seen = self.word(obj);
        if seen == expected {
            self.write(obj, to, label);
            Ok(())
        } else {
            Err(seen)
        }
    }

    /// Frees a native allocation.
    pub(crate) fn free_alloc(&mut self, obj: ObjId, label: &'static str) {
        let o = &self.s.objects[usize::from(obj)];
        if o.freed {
            self.violate("S1: native allocation freed twice");
            return;
        }
        let from = o.word;
        self.events.push(WordEvent {
            from,
            to: None,
            label,
        });
        self.s.objects[usize::from(obj)].freed = true;
    }

    /// `strong.fetch_add(1)` by someone who holds a reference.
    pub(crate) fn strong_incr(&mut self, obj: ObjId) {
        if self.s.objects[usize::from(obj)].freed {
            self.violate("S1: strong increment on a freed allocation");
            return;
        }
        self.s.objects[usize::from(obj)].strong += 1;
    }

    /// Allocates a new frontend object standing for `obj`, owned by this thread, without handle.
    pub(crate) fn new_wrapper(&mut self, obj: ObjId) -> WrapId {
        let w = self.s.wrappers.len() as WrapId;
        self.s.wrappers.push(Wrapper {
            obj,
            mem: Mem::Live,
            rc: self.new_count(),
            tracked: true,
            handle: false,
            weakrefs: false,
            dying: false,
            claimed: false,
            replaced: false,
        });
        w
    }

    /// A new (or re-initialised) object's reference count: one reference, this thread's.
    pub(crate) fn new_count(&self) -> RefCount {
        if self.cfg.has_gil() {
            RefCount::gil_build()
        } else {
            RefCount::fresh(self.me)
        }
    }

    /// `Py_DECREF(w)` by this thread; starts the merge or the dealloc when it must.
    pub(crate) fn decref(&mut self, w: WrapId) {
        if self.s.wrappers[usize::from(w)].mem != Mem::Live {
            self.violate("S1: reference count of a dead wrapper decremented");
            return;
        }
        let me = self.me;
        match self.wrapper(w).rc.decref(me) {
            Decref::Alive => {}
            Decref::MergePending => self.push(Frame::Merge { w }),
            Decref::Dealloc => self.start_dealloc(w),
            Decref::Underflow => {
                self.violate("model: a thread dropped a reference it never counted")
            }
        }
    }

    /// The count reached zero for good: the dealloc starts on this thread.
    pub(crate) fn start_dealloc(&mut self, w: WrapId) {
        self.wrapper(w).dying = true;
        let pc = if self.cfg.has(Bug::BackoffBeforeUntrack) {
            DeallocPc::Transition
        } else {
            DeallocPc::Untrack
        };
        self.push(Frame::Dealloc { w, pc });
    }

    /// The trashcan parks the dealloc about to start (`_PyTrash_thread_deposit_object`): the
    /// object is untracked, its `ob_tid` becomes the delete-later link (no thread owns it, so no
    /// `try_incref` fast path), and it waits on this thread's list, count zero.
    fn park(&mut self) {
        let Some(&Frame::Dealloc { w, .. }) = self.s.actors[usize::from(self.me)].top() else {
            unreachable!("parkable frames are dealloc starts")
        };
        self.pop();
        let wr = self.wrapper(w);
        wr.tracked = false;
        wr.rc = RefCount {
            owner: None,
            local: 0,
            shared: 0,
            maybe_weakref: false,
            merged: true,
        };
        self.actor().parked.push(w);
    }

    /// The idle thread unwinds (`_PyTrash_thread_destroy_chain`): its last parked dealloc runs,
    /// from just after the untrack the deposit already did.
    fn unwind(&mut self) {
        let w = self
            .actor()
            .parked
            .pop()
            .expect("an unwind has a parked dealloc");
        let pc = self.after_untrack(w);
        self.push(Frame::Dealloc { w, pc });
    }

    /// A lookup backed off after a miss stops waiting: it is due to replace the wrapper it missed
    /// on, and makes its spare unless it has one.
    fn take_over(&mut self) {
        let Some(&Frame::Lookup {
            obj,
            pc: LookupPc::Backoff(Wait {
                rc: Some((w, _)), ..
            }),
            spare,
            ..
        }) = self.s.actors[usize::from(self.me)].top()
        else {
            unreachable!("only a lookup backed off after a miss takes over")
        };
        let pc = if spare.is_some() {
            LookupPc::Load
        } else {
            LookupPc::AllocateSpare
        };
        self.set(Frame::Lookup {
            obj,
            pc,
            spare,
            due: Some(w),
        });
    }
}
