//! Deliberately broken kernel variants, compiled only with the `teeth` feature.
//!
//! Each variant re-introduces one bug the design rules out. The loom and shuttle suites contain a
//! test per variant asserting that the checker *finds* it; `docs/broken-variants.md` records which
//! tool catches which.

/// One deliberately broken variant of the kernel (selected by `Frontend::FLAW`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Flaw {
    /// The correct kernel.
    None = 0,
    /// Unlock / publish with `Relaxed` instead of `Release`.
    UnlockRelaxed = 1,
    /// Revive in place without re-arming try-incref.
    ReviveWithoutRearm = 2,
    /// Dealloc drops the wrapper's native reference before publishing InTransit.
    DropBeforeTransit = 3,
    /// Reclaim frees the allocation while IN_TRANSIT is set (both settlers free).
    ReclaimFreesInTransit = 4,
    /// A lookup hit returns the wrapper without try-incref.
    HitWithoutTryIncref = 5,
    /// A move clears the source's handle before rebinding the word.
    MoveClearsHandleFirst = 6,
    /// A fresh wrapper is published by a blind store instead of a compare-exchange from Detached.
    FreshBlindStore = 7,
    /// Dealloc backs off before untracking the dying wrapper from the GC.
    BackoffBeforeUntrack = 8,
    /// A weak upgrade checks the strong count, then increments it blindly (not one
    /// compare-exchange): racing the last strong drop, it resurrects a dropped value.
    UpgradeBlindIncrement = 9,
    /// A lookup never replaces a dying wrapper: it waits for that wrapper's dealloc however long
    /// it takes, though the runtime may have parked it until this very thread unwinds.
    WaitForParkedDealloc = 10,
    /// A lookup replaces a wrapper it missed on without re-checking, under the lock, that its
    /// count is still zero: a wrapper revived meanwhile loses the binding while alive.
    TakeoverWithoutTryIncref = 11,
    /// The settle publishes Inactive with `Relaxed` (and frees after reclaim without
    /// `Acquire`): a reviver or reclaimer reuses the block without seeing the dying thread's
    /// last writes to it.
    SettleRelaxed = 12,
    /// GIL mode: reclaim writes the word without holding the runtime's lock (the general
    /// mode's compare-exchange, on a foreign thread, without attaching first), while the settle
    /// is a plain load and store under the lock: reclaim's deferral lands between the settle's
    /// load and its store, and the native block leaks.
    ReclaimWithoutLock = 13,
    /// GIL mode: the frontend declares `SERIALIZED` but its threads do not hold a global lock
    /// (a free-threaded runtime mistaking itself for a GIL build): two lookups both publish.
    /// A frontend bug, not a kernel one; the model frontend implements it.
    SerializedWithoutGil = 14,
    /// The dealloc transition's compare-exchange fails with `Relaxed`: a dealloc that finds its
    /// wrapper replaced (a takeover) frees the wrapper without ordering after the replacing
    /// lookup's try-incref read of it (found by ThreadSanitizer through the C ABI).
    DeallocFailureRelaxed = 15,
    /// GIL mode: a reclaim on a foreign thread attaches (takes the lock) but acts on the word it
    /// read before: a settle that ran in between has cached the wrapper, and reclaim's deferral
    /// defers to a settler that is gone (the native block leaks).
    ReclaimStaleWord = 16,
}

impl Flaw {
    /// Every variant, the correct one first.
    pub const ALL: [Flaw; 17] = [
        Flaw::None,
        Flaw::UnlockRelaxed,
        Flaw::ReviveWithoutRearm,
        Flaw::DropBeforeTransit,
        Flaw::ReclaimFreesInTransit,
        Flaw::HitWithoutTryIncref,
        Flaw::MoveClearsHandleFirst,
        Flaw::FreshBlindStore,
        Flaw::BackoffBeforeUntrack,
        Flaw::UpgradeBlindIncrement,
        Flaw::WaitForParkedDealloc,
        Flaw::TakeoverWithoutTryIncref,
        Flaw::SettleRelaxed,
        Flaw::ReclaimWithoutLock,
        Flaw::SerializedWithoutGil,
        Flaw::DeallocFailureRelaxed,
        Flaw::ReclaimStaleWord,
    ];

    /// The variant with discriminant `n` (for const-generic selection).
    pub const fn from_u8(n: u8) -> Flaw {
        assert!((n as usize) < Self::ALL.len(), "no such flaw");
        Self::ALL[n as usize]
    }
}
