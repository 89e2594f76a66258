//! The C-visible types: what an object system reserves in its headers and wrappers, the
//! runtime's table of callbacks, and the result codes. `tether.h` is generated from this module.

use core::ffi::c_void;

/// Every function's result.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TetherStatus {
    /// Done; the out-parameters are written.
    Ok = 0,
    /// A pointer argument that must not be null was null.
    NullArgument = 1,
    /// A wrapper pointer is not 8-byte aligned (the binding word keeps tags in its low bits).
    Misaligned = 2,
    /// `tether_binding_init`: the runtime lacks a required callback.
    IncompleteRuntime = 3,
    /// The factory's `make_fresh` returned null: no wrapper was made (nothing changed).
    FactoryFailed = 4,
    /// `tether_settle` on a baton that was already settled.
    AlreadySettled = 5,
    /// `tether_settle` on a baton that `tether_dealloc` never filled (or garbage).
    InvalidBaton = 6,
    /// A `TetherRuntime` or `TetherFactory` whose `abi_version` is not this library's
    /// `TETHER_ABI_VERSION` (built against another `tether.h`, or not initialised).
    AbiMismatch = 7,
    /// `tether_lookup`: the factory lacks a required callback.
    IncompleteFactory = 8,
}

/// How a lookup found its wrapper.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TetherFound {
    /// The live canonical wrapper.
    Hit = 0,
    /// The cached wrapper, revived in place (same address as before).
    Revived = 1,
    /// A new wrapper.
    Fresh = 2,
    /// A new wrapper that replaced a canonical wrapper whose count reached zero but whose
    /// dealloc did not come (`replace_dying` said yes).
    Replaced = 3,
}

/// What `tether_dealloc` decided for a dying wrapper.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TetherDeallocOutcome {
    /// Canonical and cached: the baton is filled; settle it in the wrapper's free.
    Cached = 0,
    /// Canonical, not cached: the word is Detached; free the wrapper's memory.
    Detached = 1,
    /// Not canonical: free the wrapper's memory.
    NotCanonical = 2,
}

/// What the wrapper's free does after `tether_settle`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TetherSettled {
    /// The object lives on: the wrapper's memory now belongs to the word. Do not touch it.
    Cached = 0,
    /// The object was reclaimed meanwhile and its block freed (through the runtime's
    /// `free_object`): free the wrapper's memory now.
    FreeWrapper = 1,
}

/// What the object system does with an object's block after `tether_reclaim`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TetherReclaimed {
    /// Free the block now.
    Free = 0,
    /// A wrapper of the object is dying: its settle frees the block through the runtime's
    /// `free_object`. Do not touch the block again.
    Deferred = 1,
}

/// Whether a rebind found the state it expected.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TetherRebound {
    /// The word moved to the new state.
    Done = 0,
    /// The word held something else and is unchanged.
    Unchanged = 1,
}

/// An object system's wrapper, as the kernel sees it: an opaque, 8-byte-aligned address (an
/// incomplete type in C: cast your wrapper pointers).
///
/// cbindgen:no-export
#[repr(C, align(8))]
pub struct TetherWrapper {
    _opaque: [u64; 0],
}

/// The binding word: one pointer-sized atomic word. Never read or write it yourself (from Rust:
/// never make a reference to a shared `TetherBinding` or to an object containing one; other
/// threads change the word atomically, so use raw pointers and field places).
#[repr(C)]
pub struct TetherWord {
    _bits: *mut c_void,
}

/// What an object system puts in the header of every object it lets the kernel tie: the binding
/// word and the runtime the object's wrappers belong to. Initialise it with
/// `tether_binding_init` before the object is shared; it must not move while the object lives.
/// Every other function takes a pointer to it and the runtime's callbacks get that pointer back
/// (find your object with `offsetof`).
#[repr(C)]
pub struct TetherBinding {
    /// The binding word.
    pub word: TetherWord,
    /// The runtime (set by `tether_binding_init`; must outlive the object).
    pub runtime: *const TetherRuntime,
}

/// What a wrapper holds: one strong reference to its object, or nothing. Pointer-sized; zero
/// (all bits clear) is empty. Initialise with `tether_slot_init`.
#[repr(C)]
pub struct TetherSlot {
    _object: *mut c_void,
}

/// A dying cached wrapper's proof that the word is in transit (`tether_dealloc` fills it): it must
/// be settled exactly once, with `tether_settle`, in the wrapper's free. A second settle of the
/// same baton is reported (`TETHER_STATUS_ALREADY_SETTLED`). Never copy a baton: the settled mark
/// lives in its memory, so settling a stale copy cannot be detected and frees a live object.
#[repr(C)]
pub struct TetherBaton {
    /// The object (for diagnostics; do not use).
    pub object: *mut TetherBinding,
    /// The dying wrapper.
    pub wrapper: *mut TetherWrapper,
    /// `TETHER_BATON_PENDING` after `tether_dealloc`, `TETHER_BATON_SETTLED` after the settle.
    pub state: u32,
}

/// A baton `tether_dealloc` filled and nobody settled yet.
pub const TETHER_BATON_PENDING: u32 = 0x7e7b_a701;
/// A baton that was settled.
pub const TETHER_BATON_SETTLED: u32 = 0x7e7b_a702;

/// The runtime that owns wrappers, as a table of callbacks; each gets `ctx` first. The table
/// must outlive every object bound to it. Threading: every callback may be called on any
/// thread, concurrently with any other, unless its line says otherwise.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TetherRuntime {
    /// Must be `TETHER_ABI_VERSION`: `tether_binding_init` refuses another
    /// (`TETHER_STATUS_ABI_MISMATCH`), which catches a table built against another header.
    pub abi_version: u32,
    /// GIL mode: true when the runtime runs every tether call on its objects (lookups, deallocs,
    /// settles, rebinds; not `tether_reclaim`) while the calling thread holds one runtime-wide
    /// lock, let go only inside `backoff` and `make_fresh`. The kernel then uses plain loads and
    /// stores where it would compare-exchange (docs/design.md, "GIL mode"). False: any thread,
    /// any time (free-threaded runtimes). Breaking the promise breaks identity and memory safety.
    pub serialized: bool,
    /// Passed to every callback.
    pub ctx: *mut c_void,
    /// Required. A new reference to wrapper `w` unless its count already reached zero; never
    /// succeeds on a dying wrapper once armed. Must not block, allocate or call into tether
    /// (the kernel holds the word's lock).
    pub try_incref: Option<unsafe extern "C" fn(ctx: *mut c_void, w: *mut TetherWrapper) -> bool>,
    /// Optional. Arms `try_incref` for `w` after its (re)initialisation.
    pub enable_try_incref: Option<unsafe extern "C" fn(ctx: *mut c_void, w: *mut TetherWrapper)>,
    /// Optional. Removes a dying `w` from your garbage collector; called first in every dealloc.
    pub untrack: Option<unsafe extern "C" fn(ctx: *mut c_void, w: *mut TetherWrapper)>,
    /// Optional. Waits a little because another thread holds what this one needs; release any
    /// global lock here. `spins` counts this operation's waits. Null: yield the thread.
    pub backoff: Option<unsafe extern "C" fn(ctx: *mut c_void, spins: u32)>,
    /// Optional. Whether a lookup that missed `misses` times in a row on one dying wrapper (its
    /// count is zero, its dealloc has not come) stops waiting and replaces it
    /// (`TETHER_FOUND_REPLACED`). A runtime that can park a dealloc until the looking-up thread
    /// unwinds must say yes eventually; saying yes early is safe but gives up the wrapper's
    /// address, so a free-threaded runtime may add a time floor. Null: yes after a few misses
    /// (tens of microseconds of waiting).
    pub replace_dying: Option<unsafe extern "C" fn(ctx: *mut c_void, misses: u32) -> bool>,
    /// Optional. Told that a lookup is about to replace `old` (count zero, dealloc not yet
    /// come); for statistics. Must not block, allocate or call tether.
    pub replaced: Option<unsafe extern "C" fn(ctx: *mut c_void, old: *mut TetherWrapper)>,
    /// Optional. Whether the runtime still runs (not shutting down). Null: always.
    pub is_alive: Option<unsafe extern "C" fn(ctx: *mut c_void) -> bool>,
    /// Optional. Attaches the calling thread so it may free a cached wrapper; false once
    /// shutdown began (atomically with it: then cached wrappers are leaked on purpose). Null:
    /// always attached.
    pub attach: Option<unsafe extern "C" fn(ctx: *mut c_void) -> bool>,
    /// Optional. Undoes a successful `attach`.
    pub detach: Option<unsafe extern "C" fn(ctx: *mut c_void)>,
    /// Required. Frees the memory of a cached wrapper whose object is reclaimed (the thread is
    /// attached).
    pub free_cached: Option<unsafe extern "C" fn(ctx: *mut c_void, w: *mut TetherWrapper)>,
    /// Required. The object system's strong increment (the caller owns a reference).
    pub retain: Option<unsafe extern "C" fn(ctx: *mut c_void, object: *mut TetherBinding)>,
    /// Required. The object system's strong decrement; at zero it drops the value and reaches its
    /// reclaim edge, where it calls `tether_reclaim`.
    pub release: Option<unsafe extern "C" fn(ctx: *mut c_void, object: *mut TetherBinding)>,
    /// Required. Frees the block of an object whose `tether_reclaim` said
    /// `TETHER_RECLAIMED_DEFERRED`; called once, by a settle, on any thread.
    pub free_object: Option<unsafe extern "C" fn(ctx: *mut c_void, object: *mut TetherBinding)>,
}

/// How a lookup makes wrappers for one kind of object; each callback gets `ctx` first.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TetherFactory {
    /// Must be `TETHER_ABI_VERSION` (`tether_lookup` returns `TETHER_STATUS_ABI_MISMATCH`
    /// otherwise).
    pub abi_version: u32,
    /// Passed to every callback.
    pub ctx: *mut c_void,
    /// Required. A fresh wrapper (8-byte aligned, count 1 for the caller) that owns `handle`,
    /// a strong reference given to it (put it in the wrapper's slot with `tether_slot_init`).
    /// Runs outside any lock: may allocate and call tether, including lookups of this object.
    /// Return null on failure, without keeping `handle`: tether releases it.
    pub make_fresh: Option<
        unsafe extern "C" fn(ctx: *mut c_void, handle: *mut TetherBinding) -> *mut TetherWrapper,
    >,
    /// Required. Re-initialises cached wrapper memory `w` in place (count 1 for the caller) to
    /// own `handle` (put it in the slot with `tether_slot_put`). Runs under the word's lock:
    /// must not block or allocate, and of tether may call only the `tether_slot_*` functions;
    /// cannot fail.
    pub revive: Option<
        unsafe extern "C" fn(ctx: *mut c_void, w: *mut TetherWrapper, handle: *mut TetherBinding),
    >,
    /// Required. Disposes of a fresh wrapper that lost the publication race: drop its reference
    /// as usual (its dealloc finds it not canonical).
    pub discard: Option<unsafe extern "C" fn(ctx: *mut c_void, w: *mut TetherWrapper)>,
}
