//! The adapter's shared state: the at-exit flag, the count of attached reclaimers, statistics.

use std::sync::atomic::{AtomicIsize, AtomicUsize as StdAtomicUsize, Ordering, Ordering::Relaxed};

use binding_core::sync::atomic::{AtomicBool, AtomicUsize};

/// Counters behind `tether.testing.stats()`.
///
/// Plain bookkeeping: every update is `Relaxed` because nothing is published through them; a
/// reader gets a snapshot that is exact once the threads that updated them are quiet.
#[derive(Debug, Default)]
pub struct Stats {
    /// Native objects whose value has not been dropped yet.
    pub native_alive: Counter,
    /// Live wrapper objects (fresh, constructed or revived, not yet dead).
    pub wrappers_alive: Counter,
    /// Dead wrapper blocks kept for revival (Inactive).
    pub wrappers_cached: Counter,
    /// Lookups that revived a cached wrapper in place.
    pub revivals: Counter,
    /// Wrapper objects allocated (lookups' fresh wrappers, constructors, `_move` targets).
    pub fresh_wrappers: Counter,
    /// Fresh lookup candidates that lost the publication race and were discarded.
    pub discarded: Counter,
    /// Wrapper deaths that could not be cached (finalizer type, weak references).
    pub uncached_deaths: Counter,
    /// Lookups that replaced a canonical wrapper whose dealloc did not come (parked by CPython
    /// 3.14's trashcan): the one case where a re-fetch gets a new address.
    pub replaced: Counter,
    /// Live field descriptors of `tether.Object` classes (each owns its field's accessors;
    /// freed with its class).
    pub field_descriptors: Counter,
}

impl Stats {
    /// All counters zero.
    pub const fn new() -> Self {
        Self {
            native_alive: Counter::new(),
            wrappers_alive: Counter::new(),
            wrappers_cached: Counter::new(),
            revivals: Counter::new(),
            fresh_wrappers: Counter::new(),
            discarded: Counter::new(),
            uncached_deaths: Counter::new(),
            replaced: Counter::new(),
            field_descriptors: Counter::new(),
        }
    }

    /// Adds `delta` to `counter`.
    ///
    /// `serialized` says that every update of this counter happens with the GIL held, so a plain
    /// load and store cannot lose an update (and costs no locked instruction on the hot path).
    /// Otherwise the update is an atomic read-modify-write.
    #[inline]
    pub fn add(counter: &Counter, delta: isize, serialized: bool) {
        counter.add(delta, serialized);
    }

    /// The counters as `(name, value)` pairs, in a stable order.
    pub fn snapshot(&self) -> [(&'static str, isize); 9] {
        // Relaxed: a diagnostic snapshot.
        [
            ("native_alive", self.native_alive.load(Relaxed)),
            ("wrappers_alive", self.wrappers_alive.load(Relaxed)),
            ("wrappers_cached", self.wrappers_cached.load(Relaxed)),
            ("revivals", self.revivals.load(Relaxed)),
            ("fresh_wrappers", self.fresh_wrappers.load(Relaxed)),
            ("discarded", self.discarded.load(Relaxed)),
            ("uncached_deaths", self.uncached_deaths.load(Relaxed)),
            ("replaced", self.replaced.load(Relaxed)),
            ("field_descriptors", self.field_descriptors.load(Relaxed)),
        ]
    }
}

/// How many cache lines a [`Counter`] is spread over.
const STRIPES: usize = 16;

/// One cache line of a [`Counter`].
#[derive(Debug)]
#[repr(align(128))]
struct Stripe(AtomicIsize);

/// A statistics counter spread over cache lines, one per thread (modulo 16): a
/// free-threaded revival and death update several counters, and on one shared line every
/// thread's update would contend with every other's (measured: half of a drop + refetch's
/// samples with two threads). Reads sum the stripes.
#[derive(Debug)]
pub struct Counter {
    stripes: [Stripe; STRIPES],
}

impl Counter {
    /// Zero.
    pub const fn new() -> Self {
        Self {
            stripes: [const { Stripe(AtomicIsize::new(0)) }; STRIPES],
        }
    }

    /// The sum of the stripes (a snapshot, exact once the updating threads are quiet).
    pub fn load(&self, _order: Ordering) -> isize {
        self.stripes
            .iter()
            // Relaxed: a diagnostic snapshot.
            .fold(0isize, |sum, s| sum.wrapping_add(s.0.load(Relaxed)))
    }

    /// Adds `delta`; see [`Stats::add`].
    #[inline]
    fn add(&self, delta: isize, serialized: bool) {
        if serialized {
            let cell = &self.stripes[0].0;
            // Relaxed load + store: the GIL orders all updates; readers only want a snapshot.
            cell.store(cell.load(Relaxed).wrapping_add(delta), Relaxed);
        } else {
            // Relaxed: a counter; nothing is published through it.
            self.stripes[stripe()].0.fetch_add(delta, Relaxed);
        }
    }
}

impl Default for Counter {
    fn default() -> Self {
        Self::new()
    }
}

/// The calling thread's stripe: threads are numbered in the order they first count.
fn stripe() -> usize {
    static NEXT: StdAtomicUsize = StdAtomicUsize::new(0);
    std::thread_local! {
        static MINE: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
    }
    MINE.with(|m| {
        let mut i = m.get();
        if i == usize::MAX {
            // Relaxed: only hands out distinct numbers.
            i = NEXT.fetch_add(1, Relaxed) % STRIPES;
            m.set(i);
        }
        i
    })
}

/// The state one interpreter's adapter shares between threads.
///
/// `shutting_down` and `attached` are the two halves of a Dekker pair (see `Interp::attach` and
/// `Interp::shutdown`); they use the kernel's synchronisation facade so loom and shuttle see them.
#[derive(Debug)]
pub struct AdapterState {
    /// Set by the at-exit hook: from then on nothing attaches to the interpreter.
    pub(crate) shutting_down: AtomicBool,
    /// Threads inside `Interp::attach` (attached or about to be).
    pub(crate) attached: AtomicUsize,
    /// Whether dying wrappers may be cached for revival (`tether.testing.set_caching`).
    caching: std::sync::atomic::AtomicBool,
    /// What happened.
    pub stats: Stats,
}

impl AdapterState {
    /// A running interpreter, nothing attached.
    #[cfg(not(any(loom, feature = "shuttle")))]
    pub const fn new() -> Self {
        Self {
            shutting_down: AtomicBool::new(false),
            attached: AtomicUsize::new(0),
            caching: std::sync::atomic::AtomicBool::new(true),
            stats: Stats::new(),
        }
    }

    /// A running interpreter, nothing attached.
    #[cfg(any(loom, feature = "shuttle"))]
    pub fn new() -> Self {
        Self {
            shutting_down: AtomicBool::new(false),
            attached: AtomicUsize::new(0),
            caching: std::sync::atomic::AtomicBool::new(true),
            stats: Stats::new(),
        }
    }

    /// Threads inside `Interp::attach` right now (a diagnostic snapshot).
    pub fn attached_reclaimers(&self) -> usize {
        // SeqCst: as the Dekker pair's own loads; a test waits for a reclaimer to count itself.
        self.attached
            .load(binding_core::sync::atomic::Ordering::SeqCst)
    }

    /// Whether dying wrappers may be cached (the default), or always really freed.
    pub fn caching(&self) -> bool {
        // Relaxed: a setting; a wrapper dying concurrently with the change may go either way.
        self.caching.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Turns caching on or off; returns the previous setting.
    pub fn set_caching(&self, on: bool) -> bool {
        // Relaxed: as `caching`.
        self.caching.swap(on, std::sync::atomic::Ordering::Relaxed)
    }

    /// After `fork`, in the child: only the forking thread exists there, so no thread is attached
    /// for a reclaim, whatever the parent's count said (a child that inherited a count of one
    /// would wait for that thread at exit for ever).
    pub fn after_fork_in_child(&self) {
        // SeqCst: as every access to the Dekker pair; the child is single-threaded here anyway.
        self.attached
            .store(0, binding_core::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the at-exit hook ran.
    pub fn is_shutting_down(&self) -> bool {
        // Relaxed: a hint; `Interp::attach` decides with SeqCst.
        self.shutting_down
            .load(binding_core::sync::atomic::Ordering::Relaxed)
    }
}

impl Default for AdapterState {
    fn default() -> Self {
        Self::new()
    }
}
