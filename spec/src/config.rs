//! What a model run contains: the objects, the threads, their budgets, the optional behaviours and
//! the historical bugs switched back on.

/// One native object of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjSpec {
    /// The object's type owns a binding word. `false` models an object built by an older
    /// allocator, without the header (tvm-ffi #696).
    pub header: bool,
    /// Wrappers of this object have a finalizer (`__del__`): never cacheable.
    pub finalizer: bool,
    /// The foreign (native) thread holds a strong reference to it at the start.
    pub rooted: bool,
    /// This object's value holds a strong reference to that object (dropped with the value).
    pub holds: Option<u8>,
}

impl ObjSpec {
    /// An ordinary object with a header, rooted by the foreign thread.
    pub const PLAIN: ObjSpec = ObjSpec {
        header: true,
        finalizer: false,
        rooted: true,
        holds: None,
    };
}

/// A historical bug the model can re-introduce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bug {
    /// cython#7769: dealloc bumps the refcount (resurrection bump) before the binding transition,
    /// so a concurrent `try_incref` succeeds on a corpse.
    BumpBeforeTransition,
    /// Revival without `PyUnstable_EnableTryIncRef`: a later lookup from another thread is refused
    /// by `try_incref` on a live wrapper and backs off forever.
    ReviveWithoutRearm,
    /// CPython gh-135909: dealloc backs off (detaching its thread state) before untracking the
    /// object from the GC, and a stop-the-world collection deallocates it a second time.
    BackoffBeforeUntrack,
    /// tvm-ffi #696: header detection by probing the memory before the object.
    ProbeHeader,
    /// A fresh wrapper published by a blind store instead of a compare-exchange from Detached
    /// (GIL mode: stored without loading the word again after `make_fresh`, which let the GIL
    /// go).
    BlindPublish,
    /// The first settler of InTransit frees instead of deferring to the second.
    FirstSettlerFrees,
    /// Not historical, a requirement the model found: two threads move (or detach) the handle of
    /// one wrapper at the same time, without the wrapper's critical section.
    UnserializedMove,
    /// Not historical, a requirement: weak-reference callbacks (user code) run before the binding
    /// transition, as CPython's `subtype_dealloc` does for a weak-reference list that a Python
    /// subclass added; a callback that re-fetches the object waits on its own thread.
    CallbackBeforeTransition,
    /// Not historical, a requirement: a wrapper that has weak references at death is treated as
    /// cacheable; a callback that re-fetches the object waits for a settle on its own thread.
    CacheWithWeakrefs,
    /// The protocol before the takeover: a lookup that missed on a dying wrapper waits for that
    /// wrapper's dealloc however long it takes, though the runtime may have parked it (CPython
    /// 3.14's trashcan) until this very thread unwinds.
    WaitForParkedDealloc,
    /// The takeover without its re-check: a lookup due to replace a wrapper it missed on stores
    /// Active(spare) as soon as it holds the lock, without a failing `try_incref` under it, so a
    /// wrapper revived meanwhile loses the binding while alive.
    TakeoverWithoutTryIncref,
    /// GIL mode (`Config::gil`): reclaim on the foreign thread clears IN_TRANSIT without taking
    /// the GIL (the general mode's compare-exchange, no attach first), while the settle is a
    /// plain load and store under the GIL: the clear lands between them, the settler caches W,
    /// nobody frees the allocation.
    ReclaimWithoutGil,
    /// GIL mode's word operations (plain loads and stores, a hit without the per-word lock) on a
    /// runtime that has no GIL (a free-threaded runtime wrongly declaring itself serialized):
    /// nothing serializes the load and the store of two threads.
    SerializedWithoutGil,
    /// GIL mode with a reclaim that takes the GIL (attaches) but acts on the word it loaded
    /// before: the settler cached W in between, and reclaim's store of W|INACTIVE defers to a
    /// settler that is gone.
    ReclaimStaleWord,
    /// GIL mode with a wait that keeps the GIL (a spin or back-off without
    /// `Py_BEGIN_ALLOW_THREADS`): the thread it waits for needs the GIL to make the change.
    WaitHoldingGil,
}

impl Bug {
    /// The historical bugs, in the order of the project's list.
    pub const HISTORICAL: [Bug; 6] = [
        Bug::BumpBeforeTransition,
        Bug::ReviveWithoutRearm,
        Bug::BackoffBeforeUntrack,
        Bug::ProbeHeader,
        Bug::BlindPublish,
        Bug::FirstSettlerFrees,
    ];

    /// Rules of the design the model shows to be load-bearing.
    pub const REQUIREMENTS: [Bug; 3] = [
        Bug::UnserializedMove,
        Bug::CallbackBeforeTransition,
        Bug::CacheWithWeakrefs,
    ];

    /// The two halves of the takeover rule (parked deallocs), each removed.
    pub const TAKEOVER: [Bug; 2] = [Bug::WaitForParkedDealloc, Bug::TakeoverWithoutTryIncref];

    /// Ways to get GIL mode wrong.
    pub const GIL: [Bug; 4] = [
        Bug::ReclaimWithoutGil,
        Bug::SerializedWithoutGil,
        Bug::ReclaimStaleWord,
        Bug::WaitHoldingGil,
    ];

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of re-introduced bugs (empty: the design as built).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bugs(u16);

impl Bugs {
    /// The design as built.
    pub const NONE: Bugs = Bugs(0);

    /// Exactly one bug switched on.
    pub fn only(bug: Bug) -> Bugs {
        Bugs(bug.bit())
    }

    /// Whether `bug` is switched on.
    pub fn has(self, bug: Bug) -> bool {
        self.0 & bug.bit() != 0
    }

    /// This set with `bug` switched on as well.
    pub fn with(self, bug: Bug) -> Bugs {
        Bugs(self.0 | bug.bit())
    }
}

/// The bounds and switches of one model run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The native objects.
    pub objects: Vec<ObjSpec>,
    /// How many Python (frontend) threads run.
    pub threads: u8,
    /// How many operations (lookup, move, detach, weak reference) each Python thread may start.
    /// Dropping a reference it holds is free.
    pub budget: u8,
    /// Threads may rebind: move the handle to a new wrapper, or detach it eagerly.
    pub rebind: bool,
    /// Threads may create weak references to wrappers they hold (making them non-cacheable).
    pub weakrefs: bool,
    /// Allocating a fresh wrapper may fail.
    pub alloc_failure: bool,
    /// The interpreter may begin shutting down at any moment.
    pub shutdown: bool,
    /// A lookup that missed on a dying wrapper may stop waiting for its dealloc and replace it
    /// (the takeover; the frontend's `replace_dying` says yes after some misses). `false`: the
    /// frontend never says yes, which only a runtime that never parks a dealloc may do.
    pub takeover: bool,
    /// CPython 3.14's trashcan: a wrapper's dealloc may be parked on its thread's delete-later
    /// list when its count reaches zero, and runs only when that thread unwinds (its call stack
    /// is empty), after whatever the thread does meanwhile.
    pub trashcan: bool,
    /// GIL mode (the kernel's `Frontend::SERIALIZED`): the runtime has one global lock, held by
    /// every Python thread for every kernel step except reclaim's, and let go only inside waits,
    /// inside `make_fresh`, inside native drops and user code, and between operations. The kernel
    /// then replaces each compare-exchange on the word by a plain load and store (two steps
    /// here), and a hit takes no per-word lock. Reclaim loads the word without the GIL, and
    /// writes one that is not Detached only holding it (a Python thread takes it back, the
    /// foreign thread attaches, which takes it), after loading the word again; so the settle
    /// and reclaim's InTransit → Inactive are plain loads and stores too. After shutdown the
    /// foreign thread's attach is refused: it leaves an InTransit word alone (the allocation is
    /// leaked with the wrapper the settler caches in it). Reference counts are the GIL build's:
    /// one plain count, `try_incref` fails exactly at zero.
    pub gil: bool,
    /// Re-introduced historical bugs.
    pub bugs: Bugs,
}

impl Config {
    /// One rooted object, `threads` Python threads with `budget` operations each, no options.
    pub fn one_object(threads: u8, budget: u8) -> Config {
        Config {
            objects: vec![ObjSpec::PLAIN],
            threads,
            budget,
            rebind: false,
            weakrefs: false,
            alloc_failure: false,
            shutdown: false,
            takeover: true,
            trashcan: false,
            gil: false,
            bugs: Bugs::NONE,
        }
    }

    /// Two objects: a rooted outer object whose value holds the (unrooted) inner object.
    pub fn outer_inner(threads: u8, budget: u8) -> Config {
        let outer = ObjSpec {
            holds: Some(1),
            ..ObjSpec::PLAIN
        };
        let inner = ObjSpec {
            rooted: false,
            ..ObjSpec::PLAIN
        };
        Config {
            objects: vec![outer, inner],
            ..Config::one_object(threads, budget)
        }
    }

    /// The same run with `bug` switched on (as well as any already on).
    pub fn with_bug(mut self, bug: Bug) -> Config {
        self.bugs = self.bugs.with(bug);
        self
    }

    /// Whether `bug` is switched on.
    pub fn has(&self, bug: Bug) -> bool {
        self.bugs.has(bug)
    }

    /// Whether a lookup may replace a dying wrapper it missed on.
    pub fn takes_over(&self) -> bool {
        self.takeover && !self.has(Bug::WaitForParkedDealloc)
    }

    /// Whether the kernel runs in GIL mode: plain loads and stores on the word, no word lock.
    pub fn serialized(&self) -> bool {
        self.gil
    }

    /// Whether the runtime really has a GIL (and the GIL build's reference counts): GIL mode,
    /// unless the runtime only claims it (`SerializedWithoutGil`, free-threaded underneath).
    pub fn has_gil(&self) -> bool {
        self.gil && !self.has(Bug::SerializedWithoutGil)
    }

    /// The index of the foreign (native) thread: it comes after the Python threads.
    pub fn native_actor(&self) -> u8 {
        self.threads
    }

    /// Whether the object this object's value holds is `inner`.
    pub fn holder_of(&self, inner: u8) -> Option<u8> {
        self.objects
            .iter()
            .position(|o| o.holds == Some(inner))
            .map(|i| i as u8)
    }
}
