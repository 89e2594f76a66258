//! The model's state: native objects, wrappers, threads and their call stacks.
//!
//! Every field a real implementation keeps in shared memory is here, plus a few *ghost* fields
//! (marked so) that only the properties read: they never influence a step.

use crate::config::Config;
use crate::refcount::RefCount;
use crate::word::Word;

/// Index of a native object.
pub type ObjId = u8;
/// Index of a wrapper (its "address"; addresses are never reused, see `docs/spec.md`).
pub type WrapId = u8;
/// Index of a thread: Python threads first, then the foreign thread.
pub type ActorId = u8;

/// A native object: counts, binding word, allocation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Native {
    /// Strong count.
    pub strong: u8,
    /// Weak count (holds one reference for the whole strong group).
    pub weak: u8,
    /// The binding word (meaningless for an object without a header).
    pub word: Word,
    /// The value (and any reference it holds) has not been dropped yet.
    pub value_alive: bool,
    /// The allocation was freed.
    pub freed: bool,
    /// The foreign thread still holds its reference.
    pub rooted: bool,
    /// Ghost (S5): the wrapper the last lookup returned while no rebind or non-cacheable death
    /// changed the identity since.
    pub identity: Option<WrapId>,
    /// GIL mode, after shutdown: reclaim was refused its attach while a wrapper of this object
    /// was between its dealloc and its free, and left the allocation to a settler that will
    /// cache the wrapper instead (leaked on purpose).
    pub leaked: bool,
}

/// Where a wrapper's memory is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mem {
    /// A frontend object (alive, or dying inside its dealloc).
    Live,
    /// Dead; its memory is owned by the binding word for revival in place.
    Cached,
    /// Given back to the allocator.
    Freed,
    /// Leaked on purpose because the frontend was shutting down.
    Leaked,
}

/// A wrapper: a frontend object standing for one native object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Wrapper {
    /// The native object it stands for.
    pub obj: ObjId,
    /// Where its memory is.
    pub mem: Mem,
    /// Its frontend reference count.
    pub rc: RefCount,
    /// Tracked by the frontend's garbage collector.
    pub tracked: bool,
    /// Its handle owns +1 strong on `obj`.
    pub handle: bool,
    /// It has (had) weak references: not cacheable at death.
    pub weakrefs: bool,
    /// Ghost: its deallocation has begun (its count reached zero for good).
    pub dying: bool,
    /// Ghost (S4): a lookup returned it and no rebind displaced it since.
    pub claimed: bool,
    /// Ghost: a lookup's takeover replaced it as the canonical wrapper (its dealloc had not come).
    pub replaced: bool,
}

/// What a thread that backs off waits for: it retries once what it observed changed.
///
/// A retry that observes exactly the same word (and the same reference count) takes exactly the
/// same branch again, so the model blocks the thread instead of letting it spin (see
/// `docs/spec.md`, "spin-waits").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Wait {
    /// The word it saw.
    pub word: Word,
    /// Lock flicker does not count as a change (a lookup refused by `try_incref`).
    pub ignore_lock: bool,
    /// The wrapper whose count it also watches, and the count it saw.
    pub rc: Option<(WrapId, RefCount)>,
}

/// The settle token a dealloc carries after its binding transition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Token {
    /// Active(W) → InTransit(W): the baton.
    InTransit,
    /// Detached by a non-cacheable death, or W was not canonical: W is simply freed.
    Plain,
}

/// Program counter of a lookup (make-return).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LookupPc {
    /// Bug 4 only: probe the memory before the object for a header.
    Probe,
    /// Load the word.
    Load,
    /// Backed off (thread state detached) until the observation changes.
    Backoff(Wait),
    /// CAS Active(W) → Active(W)|LOCKED.
    LockActive(WrapId),
    /// Holding the lock: `try_incref(W)`.
    TryIncref(WrapId),
    /// Store Active(W) (unlock); then return W or back off.
    Unlock(WrapId, bool),
    /// Holding the lock after `try_incref(W)` failed once more on the W the lookup is due to
    /// replace: store Active(spare) (the takeover: unlock and publish in one store).
    Replace(WrapId),
    /// CAS Inactive(W) → Inactive(W)|LOCKED.
    LockInactive(WrapId),
    /// Holding the lock: re-initialise W in place with the caller's +1 as its handle.
    Revive(WrapId),
    /// Holding the lock: `enable_try_incref(W)`.
    Rearm(WrapId),
    /// Store Active(W) (publish and unlock).
    PublishRevived(WrapId),
    /// Allocate a fresh wrapper, outside the lock (may fail).
    Allocate,
    /// The lookup stopped waiting for a dying wrapper's dealloc: allocate the spare that will
    /// replace it, outside the lock (may fail), clone the caller's +1 into it and arm it (one
    /// step: nobody else can see an unpublished wrapper), then load again.
    AllocateSpare,
    /// Clone the caller's +1 into the fresh wrapper's handle.
    Clone(WrapId),
    /// `enable_try_incref` on the fresh wrapper.
    ArmFresh(WrapId),
    /// CAS Detached → Active(W); if it loses, W is kept as the lookup's spare. GIL mode: the
    /// re-load after `make_fresh` (Detached: store next; else W is kept as the spare).
    PublishFresh(WrapId),
    /// GIL mode: store Active(W) over the Detached word the previous load saw.
    StoreFresh(WrapId),
    /// The caller's +1 is being dropped; then W is returned.
    Return(WrapId),
    /// The caller's +1 is being dropped; then the allocation error is returned.
    Fail,
}

/// Program counter of a wrapper's dealloc and free.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeallocPc {
    /// Untrack from the GC (first: lesson 4).
    Untrack,
    /// Bug 1 only: resurrection bump before the binding transition.
    Bump,
    /// Requirement switch only: weak-reference callbacks before the transition.
    EarlyCallback,
    /// The binding transition (CAS from Active(W); GIL mode: the load).
    Transition,
    /// GIL mode: the transition's store, InTransit(W) (the baton) or Detached (plain).
    TransitionStore(Token),
    /// Backed off on a locked word.
    Backoff(Wait),
    /// Bug 1 only: undo the bump.
    Unbump(Token),
    /// Bug 3 only: untrack after the transition loop.
    UntrackLate(Token),
    /// Weak-reference callbacks run (user code; it may re-fetch the object).
    Callback(Token),
    /// `tp_free` with the baton: CAS InTransit(W) → Inactive(W) (GIL mode: the load).
    Settle,
    /// GIL mode: the settle's store of Inactive(W) after its load saw InTransit(W).
    SettleStore,
    /// Reclaim deferred to us: free the native allocation.
    FreeAlloc,
    /// Free W's memory.
    FreeWrapper,
}

/// Program counter of dropping one native strong reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropPc {
    /// `strong.fetch_sub(1)`; at zero the value is dropped (with any reference it holds).
    Strong,
    /// `weak.fetch_sub(1)`; at zero reclaim runs here, on this thread.
    Weak,
}

/// Program counter of reclaim (weak → 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReclaimPc {
    /// Load the word.
    Load,
    /// GIL mode: take the GIL (the foreign thread attaches; refused after shutdown) and load
    /// the word again; carries the word the first load saw.
    Lock(Word),
    /// CAS InTransit(W) → W|INACTIVE (defer to the settler).
    ClearTransit(WrapId),
    /// GIL mode: the store of W|INACTIVE under the GIL after the load saw InTransit(W) (the
    /// foreign thread then detaches its thread state).
    ClearTransitStore(WrapId),
    /// CAS Inactive(W) → Detached (GIL mode: a plain store; nobody else can reach the word).
    Detach(WrapId),
    /// Attach a frontend thread state (refused after shutdown: leak W).
    Attach(WrapId),
    /// Free W's cached memory.
    FreeWrapper(WrapId),
    /// Detach the thread state again (foreign thread only).
    Release,
    /// Free the native allocation.
    FreeAlloc,
}

/// Program counter of a move of a handle from a wrapper to a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MovePc {
    /// `enable_try_incref` on the new wrapper.
    Arm,
    /// Copy the handle into the new wrapper (ownership moves at `ClearSource`).
    Handle,
    /// CAS Active(from) → Active(to) (GIL mode: the load).
    Rebind,
    /// GIL mode: store Active(to) after the load saw Active(from).
    RebindStore,
    /// Backed off on a locked word.
    Backoff(Wait),
    /// Clear the source's handle; the thread now holds the new wrapper.
    ClearSource,
}

/// Program counter of an eager detach before a handle is moved out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DetachPc {
    /// CAS Active(W) → Detached (GIL mode: the load).
    Cas,
    /// GIL mode: store Detached after the load saw Active(W).
    Store,
    /// Backed off on a locked word.
    Backoff(Wait),
    /// Move the handle out (native code then drops it).
    Take,
}

/// One activation record of a thread's call stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Frame {
    /// A lookup of `obj`; from its start until `Revive` or `Return`/`Fail` it owns the caller's +1.
    Lookup {
        /// The object.
        obj: ObjId,
        /// Where it is.
        pc: LookupPc,
        /// A fresh, armed, unpublished wrapper the lookup owns (+1 frontend reference): made to
        /// replace a dying wrapper, or a candidate that lost the publish race. Published from
        /// Detached or by the takeover, else discarded when the lookup returns.
        spare: Option<WrapId>,
        /// The dying wrapper this lookup has given up waiting for: the next failing `try_incref`
        /// on it (with a spare in hand) replaces it.
        due: Option<WrapId>,
    },
    /// The owner's local count of `w` reached zero: `_Py_MergeZeroLocalRefcount` is next.
    Merge {
        /// The wrapper.
        w: WrapId,
    },
    /// `w`'s dealloc and free.
    Dealloc {
        /// The dying wrapper.
        w: WrapId,
        /// Where it is.
        pc: DeallocPc,
    },
    /// Dropping one strong reference to `obj` (owned by this frame).
    DropNative {
        /// The object.
        obj: ObjId,
        /// Where it is.
        pc: DropPc,
    },
    /// Reclaim of `obj`.
    Reclaim {
        /// The object.
        obj: ObjId,
        /// Where it is.
        pc: ReclaimPc,
    },
    /// Moving the handle of `from` (held by this thread) to the new wrapper `to`.
    Move {
        /// The source wrapper.
        from: WrapId,
        /// The new wrapper.
        to: WrapId,
        /// Where it is.
        pc: MovePc,
    },
    /// Eagerly detaching `w` (held by this thread) before moving its handle out.
    Detach {
        /// The wrapper.
        w: WrapId,
        /// Where it is.
        pc: DetachPc,
    },
}

/// One thread.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Actor {
    /// Frontend references this thread holds (a sorted multiset of wrappers).
    pub held: Vec<WrapId>,
    /// Operations it may still start.
    pub budget: u8,
    /// Its call stack; empty when idle.
    pub stack: Vec<Frame>,
    /// Deallocs the trashcan parked on this thread (its delete-later list, last in first out):
    /// each wrapper's count is zero; its dealloc runs when the thread unwinds.
    pub parked: Vec<WrapId>,
    /// Foreign thread only: a frontend thread state is attached.
    pub attached: bool,
}

impl Actor {
    /// The innermost frame, if any.
    pub fn top(&self) -> Option<&Frame> {
        self.stack.last()
    }

    /// Whether an operation is in flight (a parked dealloc counts: it has yet to run).
    pub fn busy(&self) -> bool {
        !self.stack.is_empty() || !self.parked.is_empty()
    }
}

/// The whole system.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    /// Native objects.
    pub objects: Vec<Native>,
    /// Every wrapper ever allocated (freed ones stay, as tombstones).
    pub wrappers: Vec<Wrapper>,
    /// Python threads, then the foreign thread.
    pub actors: Vec<Actor>,
    /// The interpreter began shutting down: attach is refused.
    pub shutdown: bool,
    /// GIL mode: the thread holding the global interpreter lock (always `None` otherwise).
    pub gil: Option<ActorId>,
    /// The first safety violation committed, by the step that committed it.
    pub violation: Option<&'static str>,
}

impl State {
    /// The initial state of a run.
    pub fn initial(cfg: &Config) -> State {
        let held_by_values = |i: usize| {
            cfg.objects
                .iter()
                .filter(|o| o.holds == Some(i as u8))
                .count() as u8
        };
        let objects = cfg
            .objects
            .iter()
            .enumerate()
            .map(|(i, o)| Native {
                strong: u8::from(o.rooted) + held_by_values(i),
                weak: 1,
                word: Word::DETACHED,
                value_alive: true,
                freed: false,
                rooted: o.rooted,
                identity: None,
                leaked: false,
            })
            .collect();
        let python = Actor {
            held: Vec::new(),
            budget: cfg.budget,
            stack: Vec::new(),
            parked: Vec::new(),
            attached: false,
        };
        let mut actors = vec![python; usize::from(cfg.threads)];
        actors.push(Actor {
            held: Vec::new(),
            budget: 0,
            stack: Vec::new(),
            parked: Vec::new(),
            attached: false,
        });
        State {
            objects,
            wrappers: Vec::new(),
            actors,
            shutdown: false,
            gil: None,
            violation: None,
        }
    }

    /// Whether any thread has an operation in flight.
    pub fn any_busy(&self) -> bool {
        self.actors.iter().any(Actor::busy)
    }

    /// Whether some thread holds a frontend reference to `w`.
    pub fn is_held(&self, w: WrapId) -> bool {
        self.actors.iter().any(|a| a.held.contains(&w))
    }
}
