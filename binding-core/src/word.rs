//! The binding word: one atomic pointer to the canonical wrapper plus three tag bits.
//!
//! | state        | word                          |
//! |--------------|-------------------------------|
//! | Detached     | `null`                        |
//! | Active(W)    | `W`                           |
//! | Inactive(W)  | `W \| INACTIVE`               |
//! | InTransit(W) | `W \| INACTIVE \| IN_TRANSIT` |
//!
//! `LOCKED` overlays Active and Inactive. Tags are set and cleared with strict-provenance
//! `map_addr`, so the word keeps the wrapper's provenance and miri can check every access.

use core::fmt;
use core::ptr::{self, NonNull};

use crate::sync::atomic::Ordering;
use crate::sync::kernel_atomic::AtomicPtr;

/// Tag: the wrapper is dead and its memory is cached (owned by the word).
pub(crate) const INACTIVE: usize = 0b001;
/// Tag: the wrapper is between its binding transition and its free (the baton).
pub(crate) const IN_TRANSIT: usize = 0b010;
/// Tag: the per-word spin-lock (held only across a try-incref or an in-place revival).
pub(crate) const LOCKED: usize = 0b100;
/// All tag bits.
pub(crate) const TAGS: usize = INACTIVE | IN_TRANSIT | LOCKED;

/// The wrapper alignment the tag bits need: the low three address bits must be free.
pub const MIN_WRAPPER_ALIGN: usize = TAGS + 1;

/// Compile-time check that a wrapper type leaves the three tag bits free.
pub(crate) const fn assert_wrapper_align<W>() {
    assert!(
        core::mem::align_of::<W>() >= MIN_WRAPPER_ALIGN,
        "wrapper types must be at least 8-byte aligned: the binding word uses the low 3 bits"
    );
}

/// What the binding word says about a native object's wrapper (the `LOCKED` overlay removed).
pub enum State<W> {
    /// No canonical wrapper.
    Detached,
    /// `W` is alive, canonical and owns one strong reference.
    Active(NonNull<W>),
    /// `W` died while the native object lived on; its memory is cached for revival.
    Inactive(NonNull<W>),
    /// `W` is being torn down; the first settler defers, the second frees.
    InTransit(NonNull<W>),
}

impl<W> Clone for State<W> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<W> Copy for State<W> {}
impl<W> PartialEq for State<W> {
    fn eq(&self, other: &Self) -> bool {
        Raw::encode(*self).0 == Raw::encode(*other).0
    }
}
impl<W> Eq for State<W> {}

impl<W> fmt::Debug for State<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Detached => f.write_str("Detached"),
            Self::Active(w) => write!(f, "Active({w:p})"),
            Self::Inactive(w) => write!(f, "Inactive({w:p})"),
            Self::InTransit(w) => write!(f, "InTransit({w:p})"),
        }
    }
}

impl<W> State<W> {
    /// The state's name without the wrapper address.
    pub fn kind(&self) -> StateKind {
        match self {
            Self::Detached => StateKind::Detached,
            Self::Active(_) => StateKind::Active,
            Self::Inactive(_) => StateKind::Inactive,
            Self::InTransit(_) => StateKind::InTransit,
        }
    }
}

/// The four states by name (what `tether.testing.binding_state` reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StateKind {
    /// No canonical wrapper.
    Detached,
    /// A live canonical wrapper.
    Active,
    /// A cached dead wrapper.
    Inactive,
    /// A wrapper mid-teardown.
    InTransit,
}

impl StateKind {
    /// Lower-case name: `"detached"`, `"active"`, `"inactive"` or `"in_transit"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Detached => "detached",
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::InTransit => "in_transit",
        }
    }
}

/// A raw word value: a possibly tagged wrapper pointer.
pub(crate) struct Raw<W>(pub(crate) *mut W);

impl<W> Clone for Raw<W> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<W> Copy for Raw<W> {}
impl<W> PartialEq for Raw<W> {
    fn eq(&self, other: &Self) -> bool {
        ptr::eq(self.0, other.0)
    }
}

impl<W> Raw<W> {
    pub(crate) const DETACHED: Self = Self(ptr::null_mut());

    fn tags(self) -> usize {
        self.0.addr() & TAGS
    }

    /// Whether the lock bit is set.
    pub(crate) fn is_locked(self) -> bool {
        self.tags() & LOCKED != 0
    }

    /// The same word with the lock bit set.
    pub(crate) fn locked(self) -> Self {
        Self(self.0.map_addr(|a| a | LOCKED))
    }

    pub(crate) fn encode(state: State<W>) -> Self {
        let tag = |w: NonNull<W>, t: usize| Self(w.as_ptr().map_addr(|a| a | t));
        match state {
            State::Detached => Self::DETACHED,
            State::Active(w) => tag(w, 0),
            State::Inactive(w) => tag(w, INACTIVE),
            State::InTransit(w) => tag(w, INACTIVE | IN_TRANSIT),
        }
    }

    /// The wrapper of an unlocked Active word, else `None`: the hit's test, one mask and one
    /// null check (no dispatch on the tags, which `decode` compiles to).
    #[inline]
    pub(crate) fn active_unlocked(self) -> Option<NonNull<W>> {
        if self.tags() != 0 {
            return None;
        }
        NonNull::new(self.0)
    }

    /// The wrapper of an unlocked Inactive word (the cached block a revival takes), else `None`.
    #[inline]
    pub(crate) fn inactive_unlocked(self) -> Option<NonNull<W>> {
        if self.tags() != INACTIVE {
            return None;
        }
        NonNull::new(self.0.map_addr(|a| a & !TAGS))
    }

    /// Decodes the state, ignoring the lock bit.
    pub(crate) fn decode(self) -> State<W> {
        let tags = self.tags() & !LOCKED;
        let Some(w) = NonNull::new(self.0.map_addr(|a| a & !TAGS)) else {
            debug_assert_eq!(tags, 0, "tag bits on a null binding word");
            return State::Detached;
        };
        match tags {
            0 => State::Active(w),
            INACTIVE => State::Inactive(w),
            t if t == INACTIVE | IN_TRANSIT => State::InTransit(w),
            _ => unreachable!("IN_TRANSIT without INACTIVE is not an encoding"),
        }
    }
}

/// The atomic binding word stored in every native object's header.
///
/// One pointer wide and laid out as one (`repr(transparent)` over an atomic pointer), so object
/// systems in other languages can reserve it in their headers (the C ABI's `TetherWord`).
#[repr(transparent)]
pub struct BindingWord<W> {
    word: AtomicPtr<W>,
}

impl<W> BindingWord<W> {
    /// A Detached word.
    pub fn new() -> Self {
        const { assert_wrapper_align::<W>() };
        Self {
            word: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// A snapshot of the state (the lock bit ignored). For diagnostics and tests: by the time the
    /// caller looks at it, it may have changed.
    pub fn snapshot(&self) -> State<W> {
        // Acquire: a caller that sees Inactive/Active may inspect the wrapper's published memory.
        self.load(Ordering::Acquire).decode()
    }

    pub(crate) fn load(&self, order: Ordering) -> Raw<W> {
        Raw(self.word.load(order))
    }

    /// Stores `value` (under a checker, waking the threads that wait for this word to change).
    pub(crate) fn store(&self, value: Raw<W>, order: Ordering) {
        self.word.store(value.0, order);
        #[cfg(any(loom, feature = "shuttle"))]
        crate::sync::park::wake_all();
    }

    /// One compare-exchange; on failure returns the value seen.
    pub(crate) fn cas(
        &self,
        current: Raw<W>,
        new: Raw<W>,
        success: Ordering,
        failure: Ordering,
    ) -> Result<(), Raw<W>> {
        let result = self
            .word
            .compare_exchange(current.0, new.0, success, failure)
            .map(drop)
            .map_err(Raw);
        #[cfg(any(loom, feature = "shuttle"))]
        if result.is_ok() {
            crate::sync::park::wake_all();
        }
        result
    }

    /// A compare-exchange of a transition that frontend `F` may serialize: with
    /// [`Frontend::SERIALIZED`](crate::Frontend::SERIALIZED), the runtime's global lock already
    /// excludes every other writer of this word, so a load and a store do (no read-modify-write;
    /// the pair is atomic because no thread lets that lock go between them). Otherwise `cas`.
    pub(crate) fn cas_serial<F: crate::Frontend<Wrapper = W>>(
        &self,
        current: Raw<W>,
        new: Raw<W>,
        success: Ordering,
        failure: Ordering,
    ) -> Result<(), Raw<W>> {
        if !F::SERIALIZED {
            return self.cas(current, new, success, failure);
        }
        // Acquire / Release, whatever the caller asked for (free on x86 and on ARM's
        // load-acquire/store-release): the global lock orders the serialized writers, but
        // reclaim reads the word before it takes the lock (and, after a refused attach at
        // shutdown, without it), and it reads what these stores publish.
        let seen = self.load(Ordering::Acquire);
        if seen != current {
            return Err(seen);
        }
        self.store(new, Ordering::Release);
        Ok(())
    }

    /// Waits until another thread moves the word away from `seen`.
    ///
    /// Watching with plain loads (not re-locking) matters for progress: a lookup refused by a
    /// dying wrapper that kept re-locking could, under unlucky scheduling, keep beating that
    /// wrapper's dealloc to the word (found by the spec, docs/spec.md). Every wait goes through
    /// the frontend's back-off, which lets the awaited thread run.
    pub(crate) fn wait_for_change<F: crate::Frontend<Wrapper = W>>(
        &self,
        seen: Raw<W>,
        backoff: &mut crate::backoff::Backoff<'_, F>,
    ) {
        backoff.wait();
        // Under a checker: sleep until a write wakes us (fair waiting, see `sync::park`), with a
        // serialized frontend's global lock let go (the thread we wait for may need it).
        #[cfg(any(loom, feature = "shuttle"))]
        // Relaxed: only decides whether to sleep; the caller re-reads with its own ordering.
        backoff.sleep(&|| crate::sync::park::wait_while(|| self.load(Ordering::Relaxed) == seen));
        #[cfg(not(any(loom, feature = "shuttle")))]
        // Relaxed: only decides when to retry; the caller re-reads with its own ordering.
        while self.load(Ordering::Relaxed) == seen {
            backoff.wait();
        }
    }
}

/// How many back-offs a lookup that missed a dying wrapper watches its word before it retries
/// anyway (see `BindingWord::wait_after_miss`).
#[cfg(not(any(loom, feature = "shuttle")))]
const MISS_WATCH: u32 = 32;

impl<W> BindingWord<W> {
    /// Waits after a lookup's try-incref missed on the dying wrapper in `seen` (= Active(W)).
    ///
    /// Unlike the other waits, the awaited state may never come: W may be cached and revived at
    /// the same address by another thread and then stay alive, so the word reads `seen` again
    /// (A-B-A; found by binding-py's model), or W's dealloc may be parked by the runtime (CPython
    /// 3.14's trashcan) until this very thread unwinds. So the wait is bounded, the same code
    /// under the checkers (where each watch yields, so the awaited thread runs first) and in
    /// production: watch for a change for a bounded number of back-offs, giving the dealloc its
    /// window to win the word (the spec's progress finding), then retry regardless; after
    /// `MISSES_BEFORE_TAKEOVER` misses the lookup replaces W (`Found::Replaced`).
    pub(crate) fn wait_after_miss<F: crate::Frontend<Wrapper = W>>(
        &self,
        seen: Raw<W>,
        backoff: &mut crate::backoff::Backoff<'_, F>,
    ) {
        // Under a checker: one yield (the awaited thread runs first); the retry re-reads.
        #[cfg(any(loom, feature = "shuttle"))]
        {
            let _ = seen;
            backoff.wait();
            crate::sync::spin_loop();
        }
        // Relaxed: only decides when to retry; the retry locks with Acquire.
        #[cfg(not(any(loom, feature = "shuttle")))]
        for _ in 0..MISS_WATCH {
            backoff.wait();
            if self.load(Ordering::Relaxed) != seen {
                break;
            }
        }
    }
}

impl<W> Default for BindingWord<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W> fmt::Debug for BindingWord<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Relaxed: a debug print promises nothing about the wrapper's memory.
        let raw = self.load(Ordering::Relaxed);
        f.debug_struct("BindingWord")
            .field("state", &raw.decode())
            .field("locked", &raw.is_locked())
            .finish()
    }
}

#[cfg(all(test, not(loom), not(feature = "shuttle")))]
mod tests {
    use super::*;

    #[repr(align(8))]
    struct W8(#[allow(dead_code)] u64);

    #[test]
    fn encoding_round_trips_and_keeps_the_lock_separate() {
        let mut a = W8(1);
        let w = NonNull::from(&mut a);
        for s in [
            State::Detached,
            State::Active(w),
            State::Inactive(w),
            State::InTransit(w),
        ] {
            let raw = Raw::encode(s);
            assert!(!raw.is_locked());
            assert_eq!(raw.decode(), s);
            assert_eq!(raw.locked().decode(), s);
            assert!(raw.locked().is_locked());
            let active = match s {
                State::Active(w) => Some(w),
                _ => None,
            };
            assert_eq!(raw.active_unlocked(), active);
            assert_eq!(raw.locked().active_unlocked(), None);
        }
        assert_eq!(Raw::encode(State::Active(w)).0.addr(), w.as_ptr().addr());
        assert_eq!(Raw::encode(State::Inactive(w)).0.addr() & TAGS, INACTIVE);
        assert_eq!(
            Raw::encode(State::InTransit(w)).0.addr() & TAGS,
            INACTIVE | IN_TRANSIT
        );
    }

    #[test]
    fn state_names() {
        let kinds = [
            StateKind::Detached,
            StateKind::Active,
            StateKind::Inactive,
            StateKind::InTransit,
        ];
        let names: [&str; 4] = kinds.map(StateKind::as_str);
        assert_eq!(names, ["detached", "active", "inactive", "in_transit"]);
    }
}
