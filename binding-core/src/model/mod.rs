//! A model frontend that behaves like CPython where the kernel cares, and checks S1–S6.
//!
//! * Wrappers ([`ModelWrapper`]) have a reference count with free-threaded try-incref rules:
//!   try-incref refuses once the count reached zero and fails (deterministically, which is
//!   stricter than CPython's "may fail") unless enable-try-incref was called since the memory was
//!   last (re)initialised.
//! * A GC-tracked flag, and a stop-the-world check at every back-off: a thread that backs off
//!   while its own dying wrapper is still tracked is CPython gh-135909 (double dealloc).
//! * A shadow heap: wrapper blocks and native blocks are quarantined, never reused, and every
//!   access checks their state, so use after free, double free and leaks are reported instead of
//!   corrupting memory. [`ModelFrontend::assert_quiescent`] checks S2 at the end of a test.
//! * An attach / shutdown protocol for reclaims on foreign threads (lesson 5).
//! * GIL mode (`GIL = true`): the frontend declares [`Frontend::SERIALIZED`] and holds a global
//!   lock where a GIL build of CPython holds the GIL (see the `gil` module), so the suites check
//!   the kernel's plain-store transitions under the schedules a GIL allows, and only those.
//!
//! Violations panic with a message naming the property, so loom and shuttle report the schedule.

mod factory;
mod gil;
mod heap;
mod system;
mod wrapper;

use std::sync::Arc;
use std::sync::atomic::{
    AtomicU64 as StdAtomicU64, AtomicUsize as StdAtomicUsize, Ordering::Relaxed,
};
use std::vec::Vec;

use core::ptr::NonNull;

use crate::native::NativeRef;
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering, fence};
use crate::{Frontend, ObjectArc};

pub mod minimal;

pub use factory::{FreshFailed, ModelFactory};
pub use heap::ModelAlloc;
pub use system::{Foreign, ForeignObject, Own, System};
pub use wrapper::{ModelWrapper, Parked, WrapperRef};

/// The native payload used by the suites: an id and an optional reference to another object.
#[derive(Debug)]
pub struct Payload<const FLAW: u8 = 0, const GIL: bool = false, S: System = Own> {
    /// A label for assertions.
    pub id: u32,
    /// A native reference to another object ("one object references the other").
    pub child: Option<NativeRef<S::Native<FLAW, GIL>>>,
    /// Cleared by the first drop: a second drop of the same value (a resurrected object) is
    /// reported instead of passing silently.
    live: AtomicBool,
    /// The runtime's native event log, when [`Config::log_natives`] is on.
    log: Option<Arc<NativeLog>>,
}

impl<const FLAW: u8, const GIL: bool, S: System> Payload<FLAW, GIL, S> {
    fn new(
        id: u32,
        child: Option<NativeRef<S::Native<FLAW, GIL>>>,
        log: Option<Arc<NativeLog>>,
    ) -> Self {
        Self {
            id,
            child,
            live: AtomicBool::new(true),
            log,
        }
    }

    /// Whether the value was not dropped yet (a resurrected object reads `false`).
    pub fn is_live(&self) -> bool {
        // Relaxed: a diagnostic read by the thread that holds the value.
        self.live.load(Ordering::Relaxed)
    }
}

impl<const FLAW: u8, const GIL: bool, S: System> Drop for Payload<FLAW, GIL, S> {
    fn drop(&mut self) {
        // Relaxed: the drop is exclusive (`&mut self`); this only detects a second one.
        let first = self.live.swap(false, Ordering::Relaxed);
        // Not while unwinding from an earlier report (a second panic would abort the checker).
        assert!(
            first || std::thread::panicking(),
            "S1 violated: native value {} dropped twice (a dead object was resurrected)",
            self.id
        );
        // Before the fields drop: the child's own effects (if this was its last reference)
        // come after this value's, as a value's destructor runs before its fields'.
        if let Some(log) = &self.log {
            log.push(NativeEvent::ValueDropped(self.id));
        }
    }
}

/// Something that happened to a native object, as the runtime's log records it
/// ([`Config::log_natives`], [`ModelFrontend::take_native_events`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NativeEvent {
    /// The value with this [`Payload::id`] was dropped (its object's strong count reached 0).
    ValueDropped(u32),
    /// The native block at this address was freed (blocks are quarantined, never reused, so an
    /// address names one object for the runtime's life).
    Freed(usize),
}

/// The ordered log of [`NativeEvent`]s: one lock, so value drops and frees on any thread keep
/// the order in which they happened.
#[derive(Debug, Default)]
pub(crate) struct NativeLog(std::sync::Mutex<Vec<NativeEvent>>);

impl NativeLog {
    fn push(&self, e: NativeEvent) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(e);
    }

    fn take(&self) -> Vec<NativeEvent> {
        core::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A native object of the model.
pub type ModelObject<const FLAW: u8 = 0, const GIL: bool = false> =
    ObjectArc<Payload<FLAW, GIL>, ModelFrontend<FLAW, GIL>, ModelAlloc<FLAW, GIL>>;

impl<const FLAW: u8, const GIL: bool> ModelFrontend<FLAW, GIL, Own> {
    /// A native object of the kernel's own system, typed (for weak references and downcasts).
    pub fn object(&self, id: u32, child: Option<crate::ObjectRef<Self>>) -> ModelObject<FLAW, GIL> {
        ObjectArc::new_in(
            Payload::new(id, child, self.log.clone()),
            self.clone(),
            ModelAlloc::new(self.clone()),
        )
    }
}

/// Counters of what happened (all Relaxed bookkeeping, invisible to loom).
#[derive(Debug, Default)]
pub struct Stats {
    /// Lookups that hit the live wrapper.
    pub hits: StdAtomicUsize,
    /// Lookups that revived a cached wrapper.
    pub revivals: StdAtomicUsize,
    /// Fresh wrappers published.
    pub fresh: StdAtomicUsize,
    /// Fresh wrappers that lost the publication race.
    pub discarded: StdAtomicUsize,
    /// Wrapper blocks ever allocated.
    pub wrapper_blocks: StdAtomicUsize,
    /// Wrapper blocks freed.
    pub wrappers_freed: StdAtomicUsize,
    /// Wrapper frees that found reclaim had already run and freed the native block themselves.
    pub deferred_settles: StdAtomicUsize,
    /// Native blocks allocated.
    pub native_blocks: StdAtomicUsize,
    /// Native blocks freed.
    pub natives_freed: StdAtomicUsize,
    /// Lookups that replaced a canonical wrapper whose dealloc did not come.
    pub replaced: StdAtomicUsize,
}

/// Tunables of a model run.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Consecutive back-offs of one operation after which the model reports an L1 violation.
    pub max_spins: u32,
    /// Whether `std` back-offs yield the OS thread (stress tests) after a few spins.
    pub yield_after: u32,
    /// On std threads, how long a lookup waits for a dying wrapper's dealloc, beyond the kernel's
    /// count of misses, before it replaces the wrapper (as the CPython adapter does): long enough
    /// that a dealloc merely descheduled by the OS keeps its wrapper's address in the stress
    /// tests; zero for single-threaded drivers (conformance, fuzzing), where no dealloc can be
    /// slow, only parked. Under a checker there is no time: the count alone decides.
    pub takeover_patience: core::time::Duration,
    /// Record value drops and native frees, in order, for
    /// [`ModelFrontend::take_native_events`] (the conformance driver compares them with the
    /// spec's effects). Off by default: stress runs would grow the log without bound.
    pub log_natives: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_spins: 64,
            yield_after: 4,
            takeover_patience: core::time::Duration::from_millis(20),
            log_natives: false,
        }
    }
}

/// Per-thread wall clocks for the std-thread model's time-based decisions.
#[cfg(not(any(loom, feature = "shuttle")))]
mod clock {
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    /// How long a run of back-offs beyond the spin bound may last before it counts as an L1
    /// violation.
    pub(super) const L1_GRACE: Duration = Duration::from_secs(2);

    std::thread_local! {
        pub(super) static PATIENCE: Cell<Option<Instant>> = const { Cell::new(None) };
        pub(super) static STALL: Cell<Option<Instant>> = const { Cell::new(None) };
    }

    pub(super) fn start(clock: &'static std::thread::LocalKey<Cell<Option<Instant>>>) {
        clock.with(|c| c.set(Some(Instant::now())));
    }

    pub(super) fn elapsed(
        clock: &'static std::thread::LocalKey<Cell<Option<Instant>>>,
    ) -> Duration {
        clock.with(|c| c.get().map_or(Duration::ZERO, |t| t.elapsed()))
    }
}

/// The shared state of one model runtime.
pub struct Model<const FLAW: u8 = 0, const GIL: bool = false, S: System = Own> {
    config: Config,
    /// Set when the runtime starts finalising (loom-visible: raced by reclaims).
    shutting_down: AtomicBool,
    /// Threads attached for a reclaim (loom-visible).
    attached: AtomicUsize,
    /// The global lock of GIL mode (unused otherwise).
    gil: gil::Gil,
    wrappers: std::sync::Mutex<Vec<NonNull<ModelWrapper<FLAW, GIL, S>>>>,
    natives: heap::NativeHeap,
    /// Value drops and native frees, when [`Config::log_natives`] is on.
    log: Option<Arc<NativeLog>>,
    /// What happened.
    pub stats: Stats,
    next_id: StdAtomicU64,
}

// SAFETY: the raw pointers are quarantined blocks owned by the model and only accessed through
// atomics; the registry is behind a mutex.
unsafe impl<const FLAW: u8, const GIL: bool, S: System> Send for Model<FLAW, GIL, S> {}
// SAFETY: as above.
unsafe impl<const FLAW: u8, const GIL: bool, S: System> Sync for Model<FLAW, GIL, S> {}

/// The frontend handle: a shared pointer to the model. `FLAW` selects a broken kernel variant
/// (`binding_core::flaw::Flaw as u8`, teeth feature), `0` is the correct kernel; `GIL` selects
/// GIL mode (a serialized frontend holding a global lock).
pub struct ModelFrontend<const FLAW: u8 = 0, const GIL: bool = false, S: System = Own>(
    Arc<Model<FLAW, GIL, S>>,
);

impl<const FLAW: u8, const GIL: bool, S: System> Clone for ModelFrontend<FLAW, GIL, S> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<const FLAW: u8, const GIL: bool, S: System> core::fmt::Debug for ModelFrontend<FLAW, GIL, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ModelFrontend")
            .field("flaw", &FLAW)
            .field("gil", &GIL)
            .finish()
    }
}

impl<const FLAW: u8, const GIL: bool, S: System> core::ops::Deref for ModelFrontend<FLAW, GIL, S> {
    type Target = Model<FLAW, GIL, S>;
    fn deref(&self) -> &Model<FLAW, GIL, S> {
        &self.0
    }
}

impl<const FLAW: u8, const GIL: bool, S: System> ModelFrontend<FLAW, GIL, S> {
    /// A fresh runtime.
    pub fn new(config: Config) -> Self {
        Self(Arc::new(Model {
            config,
            shutting_down: AtomicBool::new(false),
            attached: AtomicUsize::new(0),
            gil: gil::Gil::default(),
            wrappers: std::sync::Mutex::new(Vec::new()),
            natives: heap::NativeHeap::default(),
            log: config.log_natives.then(Arc::default),
            stats: Stats::default(),
            next_id: StdAtomicU64::new(1),
        }))
    }

    /// A native object of the runtime's object system `S`, on the model's shadow heap.
    pub fn native(
        &self,
        id: u32,
        child: Option<NativeRef<S::Native<FLAW, GIL>>>,
    ) -> NativeRef<S::Native<FLAW, GIL>> {
        S::new_object(self, Payload::new(id, child, self.log.clone()))
    }

    /// The lookup a frontend runs when native code returns `handle`: the canonical wrapper, with
    /// one reference for the caller. Checks S3 on the result.
    pub fn lookup(&self, handle: NativeRef<S::Native<FLAW, GIL>>) -> WrapperRef<FLAW, GIL, S> {
        self.lookup_with(handle, &ModelFactory::new(self.clone()))
            .unwrap_or_else(|e| panic!("unexpected {e}"))
    }

    /// [`lookup`](Self::lookup) with a chosen factory (cacheability, injected failures).
    pub fn lookup_with(
        &self,
        handle: NativeRef<S::Native<FLAW, GIL>>,
        factory: &ModelFactory<FLAW, GIL, S>,
    ) -> Result<WrapperRef<FLAW, GIL, S>, FreshFailed> {
        let header = handle.as_ptr();
        let gil = self.gil();
        let (w, found) = handle.lookup(factory)?;
        drop(gil);
        if found == crate::Found::Hit {
            self.stats.hits.fetch_add(1, Relaxed);
        }
        // SAFETY: we own a reference to `w`, so it is live.
        let wrapper = unsafe { w.as_ref() };
        wrapper.assert_live("lookup result");
        // The returned wrapper may be moved from by another thread right after the lookup (S3 is
        // checked under the lock, in try_incref); it never stands for another object.
        let held = wrapper.slot().header();
        assert!(
            held.is_none() || held == Some(header),
            "S3 violated: a lookup returned a wrapper whose handle is another object"
        );
        Ok(WrapperRef::adopt(self.clone(), w))
    }

    /// Starts shutdown: no attach succeeds afterwards; waits for attached reclaimers.
    pub fn shutdown(&self) {
        // SeqCst: a Dekker pair with `attach` (flag then count here, count then flag there), so
        // either the reclaimer sees the flag or we see its count.
        self.shutting_down.store(true, Ordering::SeqCst);
        // SeqCst fence: the store-then-load Dekker pattern needs it (loom models SeqCst accesses
        // alone as acquire/release).
        fence(Ordering::SeqCst);
        let mut spins = 0;
        while self.attached.load(Ordering::SeqCst) != 0 {
            spins += 1;
            self.check_spins(spins, "shutdown waiting for attached reclaimers");
            crate::sync::spin_loop();
        }
    }

    /// In GIL mode, takes the global lock (re-entrantly) for a kernel operation; `None`
    /// otherwise, and for the broken frontend that declares GIL mode without holding a lock.
    pub(crate) fn gil(&self) -> Option<gil::GilGuard<'_>> {
        self.holds_gil().then(|| self.gil.enter())
    }

    /// Whether this runtime's threads hold a global lock (GIL mode, unless broken).
    fn holds_gil(&self) -> bool {
        #[cfg(feature = "teeth")]
        let lockless = FLAW == crate::flaw::Flaw::SerializedWithoutGil as u8;
        #[cfg(not(feature = "teeth"))]
        let lockless = false;
        GIL && !lockless
    }

    /// Runs `f` holding the global lock in GIL mode (as the CPython adapter holds the GIL around
    /// every kernel call but reclaim); runs it directly otherwise. For tests that call kernel
    /// operations (detach, slot moves) themselves.
    pub fn with_gil<R>(&self, f: impl FnOnce() -> R) -> R {
        let _gil = self.gil();
        f()
    }

    /// Lets the global lock go for a moment if this thread holds it (GIL mode).
    pub(crate) fn let_gil_go(&self) {
        if GIL {
            self.gil.let_go();
        }
    }

    fn register_wrapper(&self, w: NonNull<ModelWrapper<FLAW, GIL, S>>) {
        self.wrappers.lock().unwrap().push(w);
        self.stats.wrapper_blocks.fetch_add(1, Relaxed);
    }

    fn fresh_id(&self) -> u64 {
        self.next_id.fetch_add(1, Relaxed)
    }

    fn check_spins(&self, spins: u32, what: &str) {
        // On std threads the OS may deschedule the thread waited on for a while (2 cores, many
        // threads): a wait is a violation only once it is also long in time.
        #[cfg(not(any(loom, feature = "shuttle")))]
        let stalled = {
            if spins == 1 {
                clock::start(&clock::STALL);
            }
            clock::elapsed(&clock::STALL) >= clock::L1_GRACE
        };
        #[cfg(any(loom, feature = "shuttle"))]
        let stalled = true;
        assert!(
            spins <= self.config.max_spins || !stalled,
            "L1 violated: {what} backed off {spins} times in a row (livelock or deadlock)"
        );
    }

    /// The GC's stop-the-world, modelled at every back-off: a dying wrapper of this thread that
    /// is still GC-tracked would be found by the collector and deallocated a second time.
    fn stop_the_world_check(&self) {
        let me = wrapper::thread_key();
        for w in self.wrappers.lock().unwrap().iter() {
            // SAFETY: quarantined blocks are never freed before the model.
            let w = unsafe { w.as_ref() };
            assert!(
                !(w.is_dying_on(me) && w.is_gc_tracked()),
                "gh-135909: a thread backed off (detached) while its dying wrapper #{} was still \
                 GC-tracked; the stop-the-world collector would deallocate it twice",
                w.id()
            );
        }
    }

    /// S2 at the end of a test: every native block freed; every wrapper block freed, except
    /// cached ones leaked on purpose at shutdown.
    pub fn assert_quiescent(&self) {
        let natives = self.natives.live();
        // After shutdown began, reclaim leaks cached wrappers on purpose (the only exception).
        // Relaxed: the test's threads have been joined.
        let shutdown = self.shutting_down.load(Ordering::Relaxed);
        // GIL mode, after shutdown began: a reclaim whose attach was refused while a wrapper of
        // its object was between its dealloc and its free leaves the word to the settler, which
        // caches the wrapper in the block: that block leaks, never without a cached wrapper.
        let excused = if GIL && shutdown {
            self.cached_wrappers()
        } else {
            0
        };
        assert!(
            natives <= excused,
            "S2 violated: {natives} native block(s) leaked"
        );
        let live: Vec<u64> = self
            .wrappers
            .lock()
            .unwrap()
            .iter()
            // SAFETY: quarantined blocks outlive the model's registry.
            .map(|w| unsafe { w.as_ref() })
            .filter(|w| !(w.is_freed() || (shutdown && w.is_cached())))
            .map(|w| w.id())
            .collect();
        assert!(
            live.is_empty(),
            "S2 violated: wrapper block(s) {live:?} not freed (shutdown started: {shutdown})"
        );
    }

    /// The value drops and native frees since the last call, in the order they happened (empty
    /// unless [`Config::log_natives`] is on).
    pub fn take_native_events(&self) -> Vec<NativeEvent> {
        self.log.as_ref().map_or_else(Vec::new, |log| log.take())
    }

    /// Whether the native object at `object` is still allocated (the shadow heap's record): a
    /// test may then read its header through the pointer without holding a reference.
    pub fn is_native_live(&self, object: NonNull<S::Native<FLAW, GIL>>) -> bool {
        self.natives.is_live(object.cast())
    }

    /// Number of wrapper blocks that are currently cached (Inactive).
    pub fn cached_wrappers(&self) -> usize {
        self.wrappers
            .lock()
            .unwrap()
            .iter()
            // SAFETY: quarantined blocks outlive the model's registry.
            .filter(|w| unsafe { w.as_ref() }.is_cached())
            .count()
    }
}

impl<const FLAW: u8, const GIL: bool, S: System> Drop for Model<FLAW, GIL, S> {
    fn drop(&mut self) {
        for w in self.wrappers.get_mut().unwrap().drain(..) {
            // SAFETY: every registered block came from `Box::into_raw` and is dropped once, here.
            drop(unsafe { std::boxed::Box::from_raw(w.as_ptr()) });
        }
    }
}

/// Proof of attachment: dropping it detaches.
#[derive(Debug)]
pub struct Attached<const FLAW: u8, const GIL: bool = false, S: System = Own> {
    frontend: ModelFrontend<FLAW, GIL, S>,
    /// GIL mode: whether attaching took the global lock (`PyGILState_Ensure`).
    took_gil: bool,
}

impl<const FLAW: u8, const GIL: bool, S: System> Drop for Attached<FLAW, GIL, S> {
    fn drop(&mut self) {
        self.frontend.gil.exit(self.took_gil);
        // SeqCst: pairs with `shutdown`'s wait.
        self.frontend.attached.fetch_sub(1, Ordering::SeqCst);
    }
}

// SAFETY: try_incref refuses at zero; attach fails after shutdown began (Dekker with `shutdown`).
unsafe impl<const FLAW: u8, const GIL: bool, S: System> Frontend for ModelFrontend<FLAW, GIL, S> {
    type Wrapper = ModelWrapper<FLAW, GIL, S>;
    type Attachment = Attached<FLAW, GIL, S>;

    const SERIALIZED: bool = GIL;
    // Attaching enters the model GIL (`Attached::took_gil`), as `PyGILState_Ensure` takes the GIL.
    const ATTACH_LOCKS: bool = GIL;

    #[cfg(feature = "teeth")]
    const FLAW: crate::flaw::Flaw = crate::flaw::Flaw::from_u8(FLAW);

    unsafe fn try_incref(&self, w: NonNull<ModelWrapper<FLAW, GIL, S>>) -> bool {
        // SAFETY: quarantined blocks are never really freed while the model lives.
        let w = unsafe { w.as_ref() };
        w.try_incref()
    }

    unsafe fn enable_try_incref(&self, w: NonNull<ModelWrapper<FLAW, GIL, S>>) {
        // SAFETY: as above.
        unsafe { w.as_ref() }.enable_try_incref();
    }

    unsafe fn untrack(&self, w: NonNull<ModelWrapper<FLAW, GIL, S>>) {
        // SAFETY: as above.
        unsafe { w.as_ref() }.untrack();
    }

    fn backoff(&self, spins: u32) {
        self.stop_the_world_check();
        self.check_spins(spins, "an operation");
        // GIL mode: the adapter's back-off detaches the thread state, letting the GIL go.
        self.let_gil_go();
        #[cfg(not(any(loom, feature = "shuttle")))]
        if spins > self.config.yield_after {
            std::thread::yield_now();
        }
    }

    #[cfg(any(loom, feature = "shuttle"))]
    fn sleep_unlocked(&self, sleep: &dyn Fn()) {
        if GIL {
            self.gil.without(sleep);
        } else {
            sleep();
        }
    }

    fn replace_dying(&self, misses: u32) -> bool {
        // Under a checker: the kernel's count. On std threads also a time floor, as the CPython
        // adapter has on free-threaded builds: a dealloc merely descheduled by the OS keeps its
        // wrapper's address (the stress tests assert S5 strictly).
        #[cfg(not(any(loom, feature = "shuttle")))]
        {
            if misses == 1 {
                clock::start(&clock::PATIENCE);
            }
            misses >= crate::MISSES_BEFORE_TAKEOVER
                && clock::elapsed(&clock::PATIENCE) >= self.config.takeover_patience
        }
        #[cfg(any(loom, feature = "shuttle"))]
        {
            misses >= crate::MISSES_BEFORE_TAKEOVER
        }
    }

    unsafe fn replaced(&self, old: NonNull<ModelWrapper<FLAW, GIL, S>>) {
        // SAFETY: quarantined blocks are never freed before the model.
        let old = unsafe { old.as_ref() };
        assert_eq!(
            old.refcount(),
            0,
            "S4 violated: a lookup replaced wrapper #{} while it was alive",
            old.id()
        );
        self.stats.replaced.fetch_add(1, Relaxed);
    }

    fn holds_lock(&self) -> bool {
        // The broken frontend that declares GIL mode without a lock holds none.
        self.holds_gil() && self.gil.held()
    }

    fn is_alive(&self) -> bool {
        // Relaxed: a fast pre-check; `attach` decides.
        !self.shutting_down.load(Ordering::Relaxed)
    }

    fn attach(&self) -> Option<Attached<FLAW, GIL, S>> {
        // SeqCst: Dekker pair with `shutdown` (count then flag).
        self.attached.fetch_add(1, Ordering::SeqCst);
        // SeqCst fence: the other half of the Dekker pair in `shutdown`.
        fence(Ordering::SeqCst);
        let mut guard = Attached {
            frontend: self.clone(),
            took_gil: false,
        };
        if self.shutting_down.load(Ordering::SeqCst) {
            return None;
        }
        if self.holds_gil() {
            // Held for the attachment's life: `PyGILState_Ensure`.
            guard.took_gil = self.gil.enter_detached();
        }
        Some(guard)
    }

    unsafe fn free_cached(
        &self,
        w: NonNull<ModelWrapper<FLAW, GIL, S>>,
        _attached: &Attached<FLAW, GIL, S>,
    ) {
        // SAFETY: quarantined.
        unsafe { w.as_ref() }.free_cached();
        self.stats.wrappers_freed.fetch_add(1, Relaxed);
    }
}
