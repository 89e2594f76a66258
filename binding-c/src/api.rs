//! The exported functions. Each checks what it can (null pointers, alignment, a baton's state)
//! and returns a [`TetherStatus`]; a panic inside aborts with a message ([`guard`]).

use core::ptr::{self, NonNull};

use binding_core::{HandleSlot, NativeRef, StateKind};

use crate::direct;
use crate::guard::guard;
use crate::runtime::{Binding, CFrontend, is_complete};
use crate::types::{
    TetherBaton, TetherBinding, TetherDeallocOutcome, TetherFactory, TetherFound, TetherRebound,
    TetherReclaimed, TetherRuntime, TetherSettled, TetherSlot, TetherStatus, TetherWrapper,
};

/// The version of this ABI; a change that breaks callers increments it.
pub const TETHER_ABI_VERSION: u32 = 1;
/// `sizeof(TetherWord)` (this ABI is for 64-bit targets).
pub const TETHER_WORD_SIZE: usize = 8;
/// `_Alignof(TetherWord)`.
pub const TETHER_WORD_ALIGN: usize = 8;
/// Wrappers must be aligned to at least this (the word keeps its tags in the low bits).
pub const TETHER_WRAPPER_ALIGN: usize = 8;

static_assertions::const_assert_eq!(TETHER_WORD_SIZE, size_of::<crate::types::TetherWord>());
static_assertions::const_assert_eq!(TETHER_WORD_ALIGN, align_of::<crate::types::TetherWord>());
static_assertions::const_assert_eq!(TETHER_WRAPPER_ALIGN, binding_core::MIN_WRAPPER_ALIGN);
static_assertions::assert_eq_size!(HandleSlot<Binding<false>>, TetherSlot);

/// The state of a binding word, for diagnostics and tests.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TetherState {
    /// No wrapper.
    Detached = 0,
    /// A live canonical wrapper.
    Active = 1,
    /// A cached wrapper (its memory owned by the word).
    Inactive = 2,
    /// A canonical wrapper is dying (a baton is pending).
    InTransit = 3,
}

/// `?` for pointer checks.
macro_rules! non_null {
    ($p:expr) => {
        match NonNull::new($p) {
            Some(p) => p,
            None => return TetherStatus::NullArgument,
        }
    };
}

/// A wrapper pointer: non-null and aligned.
fn wrapper(w: *mut TetherWrapper) -> Result<NonNull<TetherWrapper>, TetherStatus> {
    let w = NonNull::new(w).ok_or(TetherStatus::NullArgument)?;
    if w.as_ptr().addr() % TETHER_WRAPPER_ALIGN != 0 {
        return Err(TetherStatus::Misaligned);
    }
    Ok(w)
}

macro_rules! wrapper {
    ($w:expr) => {
        match wrapper($w) {
            Ok(w) => w,
            Err(e) => return e,
        }
    };
}

/// Writes `value` through `out` unless `out` is null (an optional out-parameter).
///
/// # Safety
///
/// `out` is null or valid for a write.
unsafe fn put<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-null and valid for writes (caller).
        unsafe { out.write(value) }
    }
}

/// Whether `runtime` declared GIL mode.
///
/// # Safety
///
/// `runtime` is a valid table.
unsafe fn serialized(runtime: NonNull<TetherRuntime>) -> bool {
    // SAFETY: valid (caller).
    unsafe { runtime.as_ref() }.serialized
}

/// Whether `object`'s runtime declared GIL mode.
///
/// # Safety
///
/// `object` is an initialised binding.
unsafe fn object_serialized(object: NonNull<TetherBinding>) -> bool {
    // Only the `runtime` field is read, through the raw pointer: a reference to the whole
    // `TetherBinding` would also read its word, which other threads change atomically (miri
    // reports that as a data race).
    // SAFETY: initialised (caller), so its runtime pointer is a valid table.
    unsafe {
        serialized(NonNull::new_unchecked(
            (*object.as_ptr()).runtime.cast_mut(),
        ))
    }
}

/// Calls `direct::$f` in the mode `$serial` says (the kernel's mode is a compile-time choice;
/// each entry point carries both).
macro_rules! dispatch {
    ($serial:expr, $f:ident($($arg:expr),* $(,)?)) => {
        if $serial {
            direct::$f::<true>($($arg),*)
        } else {
            direct::$f::<false>($($arg),*)
        }
    };
}

/// The slot as the kernel's type. The mode does not matter to a slot (it never releases what
/// it holds here), so slots are always seen in the general mode's type.
///
/// # Safety
///
/// `slot` was initialised by `tether_slot_init` and outlives the call.
unsafe fn slot<'a>(slot: NonNull<TetherSlot>) -> &'a HandleSlot<Binding<false>> {
    // SAFETY: `HandleSlot` is `repr(transparent)` over one atomic pointer, the slot's layout.
    unsafe { slot.cast::<HandleSlot<Binding<false>>>().as_ref() }
}

/// The version of the ABI this library implements ([`TETHER_ABI_VERSION`]).
#[unsafe(no_mangle)]
pub extern "C" fn tether_abi_version() -> u32 {
    TETHER_ABI_VERSION
}

/// Initialises the binding in a new object's header: a Detached word and its runtime. Call it
/// once, before the object is shared.
///
/// # Safety
///
/// `binding` is valid for writes; `runtime` outlives the object.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_binding_init(
    binding: *mut TetherBinding,
    runtime: *const TetherRuntime,
) -> TetherStatus {
    guard("tether_binding_init", || {
        let b = non_null!(binding);
        let rt = non_null!(runtime.cast_mut());
        // SAFETY: valid for reads (caller).
        let table = unsafe { rt.as_ref() };
        if table.abi_version != TETHER_ABI_VERSION {
            return TetherStatus::AbiMismatch;
        }
        if !is_complete(table) {
            return TetherStatus::IncompleteRuntime;
        }
        // SAFETY: valid for writes (caller); `Binding` has `TetherBinding`'s layout.
        unsafe {
            b.cast::<Binding<false>>().write(Binding {
                word: binding_core::BindingWord::new(),
                runtime: rt.as_ptr().cast::<CFrontend<false>>(),
            })
        };
        TetherStatus::Ok
    })
}

/// The word's state (a snapshot, for diagnostics and tests); `out_state` may be null.
///
/// # Safety
///
/// `object` is an initialised binding the caller holds a reference to.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_binding_state(
    object: *mut TetherBinding,
    out_state: *mut TetherState,
) -> TetherStatus {
    guard("tether_binding_state", || {
        let o = non_null!(object);
        // SAFETY: initialised and alive (caller).
        let kind = unsafe { o.cast::<Binding<false>>().as_ref() }
            .word
            .snapshot()
            .kind();
        let state = match kind {
            StateKind::Detached => TetherState::Detached,
            StateKind::Active => TetherState::Active,
            StateKind::Inactive => TetherState::Inactive,
            StateKind::InTransit => TetherState::InTransit,
        };
        // SAFETY: null or valid (caller).
        unsafe { put(out_state, state) };
        TetherStatus::Ok
    })
}

/// The canonical wrapper of `object`, with one new reference for the caller: hits the live one,
/// revives the cached one in place (same address), or publishes a fresh one made by `factory`.
/// The caller's reference to `object` is only borrowed.
///
/// # Safety
///
/// `object` is an initialised binding the caller holds a strong reference to; `factory` is valid;
/// `out_wrapper` is valid for a write; `out_found` is null or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_lookup(
    object: *mut TetherBinding,
    factory: *const TetherFactory,
    out_wrapper: *mut *mut TetherWrapper,
    out_found: *mut TetherFound,
) -> TetherStatus {
    guard("tether_lookup", || {
        let o = non_null!(object);
        let f = non_null!(factory.cast_mut());
        let out = non_null!(out_wrapper);
        // SAFETY: valid for reads (caller).
        let f = unsafe { f.as_ref() };
        if f.abi_version != TETHER_ABI_VERSION {
            return TetherStatus::AbiMismatch;
        }
        if f.make_fresh.is_none() || f.revive.is_none() || f.discard.is_none() {
            return TetherStatus::IncompleteFactory;
        }
        // SAFETY: the caller holds a strong reference; the factory is complete.
        match unsafe { dispatch!(object_serialized(o), lookup(o, f)) } {
            Ok((w, found)) => {
                // SAFETY: valid for writes (caller).
                unsafe {
                    out.write(w.as_ptr());
                    put(out_found, found);
                }
                TetherStatus::Ok
            }
            Err(e) => e,
        }
    })
}

/// The common case of `tether_lookup` alone: the live canonical wrapper with one new reference,
/// or null in `*out_wrapper` (then call `tether_lookup`). Never waits, allocates or calls the
/// factory.
///
/// # Safety
///
/// As `tether_lookup`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_hit(
    object: *mut TetherBinding,
    out_wrapper: *mut *mut TetherWrapper,
) -> TetherStatus {
    guard("tether_hit", || {
        let o = non_null!(object);
        let out = non_null!(out_wrapper);
        // SAFETY: the caller holds a strong reference.
        let w = unsafe { dispatch!(object_serialized(o), hit(o)) };
        // SAFETY: valid for writes (caller).
        unsafe { out.write(w) };
        TetherStatus::Ok
    })
}

/// The binding transition of wrapper `w`, whose count reached zero: call it first in `w`'s
/// dealloc. `cache` keeps `w`'s memory for revival while the object lives (pass false for
/// wrappers whose teardown runs user code). Fills `*baton` when the outcome is
/// `TETHER_DEALLOC_OUTCOME_CACHED`; then settle it in `w`'s free (`baton` may be null when `cache`
/// is false). Drops the slot's reference.
///
/// # Safety
///
/// `runtime` is `w`'s runtime; `w`'s count reached zero and this is its only dealloc; `slot` is
/// `w`'s initialised slot; `baton` and `out_outcome` are valid for writes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_dealloc(
    runtime: *const TetherRuntime,
    w: *mut TetherWrapper,
    w_slot: *mut TetherSlot,
    cache: bool,
    baton: *mut TetherBaton,
    out_outcome: *mut TetherDeallocOutcome,
) -> TetherStatus {
    guard("tether_dealloc", || {
        let rt = non_null!(runtime.cast_mut());
        let w = wrapper!(w);
        let s = non_null!(w_slot);
        let b = NonNull::new(baton);
        if cache && b.is_none() {
            return TetherStatus::NullArgument;
        }
        let out = non_null!(out_outcome);
        // SAFETY: the caller's contract is the kernel's; the pointers are valid (caller).
        let outcome = unsafe { dispatch!(serialized(rt), dealloc(rt, w, s, cache, b)) };
        // SAFETY: valid for writes (caller).
        unsafe { out.write(outcome) };
        TetherStatus::Ok
    })
}

/// Settles a baton in the dying wrapper's free, after every write to the wrapper's memory:
/// `TETHER_SETTLED_CACHED` (the memory now belongs to the word: do not touch it) or
/// `TETHER_SETTLED_FREE_WRAPPER` (the object was reclaimed meanwhile; free the memory). A
/// second settle of one baton returns `TETHER_STATUS_ALREADY_SETTLED`.
///
/// # Safety
///
/// `baton` is valid for reads and writes and not settled concurrently; `out_settled` is valid
/// for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_settle(
    baton: *mut TetherBaton,
    out_settled: *mut TetherSettled,
) -> TetherStatus {
    guard("tether_settle", || {
        let b = non_null!(baton);
        let out = non_null!(out_settled);
        // The mode of the baton's object, when the baton looks filled (`settle` checks the rest).
        // SAFETY: valid for reads (caller); a pending baton's object is live until the settle.
        let serial = unsafe {
            let b = b.as_ref();
            b.state == crate::types::TETHER_BATON_PENDING
                && NonNull::new(b.object).is_some_and(|o| object_serialized(o))
        };
        // SAFETY: valid and not settled concurrently (caller).
        let settled = match unsafe { dispatch!(serial, settle(b)) } {
            Ok(settled) => settled,
            Err(e) => return e,
        };
        // SAFETY: valid for writes (caller).
        unsafe { out.write(settled) };
        TetherStatus::Ok
    })
}

/// The object system's reclaim edge: call it once per object, when no reference to it remains
/// (after its value is dropped), on any thread. Frees its cached wrapper if any (or leaks it
/// once the runtime is shutting down). Free the block only on `TETHER_RECLAIMED_FREE`; on
/// `TETHER_RECLAIMED_DEFERRED` a settle will call the runtime's `free_object`.
///
/// # Safety
///
/// `object` is an initialised binding with no references left, reclaimed once; `out_reclaimed`
/// is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_reclaim(
    object: *mut TetherBinding,
    out_reclaimed: *mut TetherReclaimed,
) -> TetherStatus {
    guard("tether_reclaim", || {
        let o = non_null!(object);
        let out = non_null!(out_reclaimed);
        // SAFETY: the caller's contract is the kernel's.
        let reclaimed = unsafe { dispatch!(object_serialized(o), reclaim(o)) };
        // SAFETY: valid for writes (caller).
        unsafe { out.write(reclaimed) };
        TetherStatus::Ok
    })
}

/// Initialises a wrapper's slot to hold `object` (a strong reference given to the slot), or
/// empty when `object` is null.
///
/// # Safety
///
/// `slot` is valid for writes and not yet initialised (or emptied); `object` is null or a strong
/// reference the caller gives up.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_slot_init(
    w_slot: *mut TetherSlot,
    object: *mut TetherBinding,
) -> TetherStatus {
    guard("tether_slot_init", || {
        let s = non_null!(w_slot);
        let value = match NonNull::new(object) {
            // SAFETY: the caller gives its strong reference to the slot.
            Some(o) => HandleSlot::new(unsafe { NativeRef::from_raw(o.cast::<Binding<false>>()) }),
            None => HandleSlot::empty(),
        };
        // SAFETY: valid for writes (caller); `HandleSlot` is `repr(transparent)`.
        unsafe { s.cast::<HandleSlot<Binding<false>>>().write(value) };
        TetherStatus::Ok
    })
}

/// The object a slot holds (borrowed: valid while the slot keeps it), or null.
///
/// # Safety
///
/// `slot` is initialised; `out_object` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_slot_get(
    w_slot: *mut TetherSlot,
    out_object: *mut *mut TetherBinding,
) -> TetherStatus {
    guard("tether_slot_get", || {
        let s = non_null!(w_slot);
        let out = non_null!(out_object);
        // SAFETY: initialised (caller).
        let o = unsafe { slot(s) }.header();
        // SAFETY: valid for writes (caller).
        unsafe { out.write(o.map_or(ptr::null_mut(), |o| o.as_ptr().cast())) };
        TetherStatus::Ok
    })
}

/// Puts `object` (a strong reference given up, or null for empty) into a slot and hands its
/// previous content (a strong reference, or null) to the caller.
///
/// # Safety
///
/// As `tether_slot_init`, on an initialised slot; `out_previous` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_slot_put(
    w_slot: *mut TetherSlot,
    object: *mut TetherBinding,
    out_previous: *mut *mut TetherBinding,
) -> TetherStatus {
    guard("tether_slot_put", || {
        let s = non_null!(w_slot);
        let out = non_null!(out_previous);
        // SAFETY: initialised (caller).
        let s = unsafe { slot(s) };
        let previous = match NonNull::new(object) {
            // SAFETY: the caller gives its strong reference to the slot.
            Some(o) => s.put(unsafe { NativeRef::from_raw(o.cast::<Binding<false>>()) }),
            None => s.take(),
        };
        let previous = previous.map_or(ptr::null_mut(), |p| p.into_raw().as_ptr().cast());
        // SAFETY: valid for writes (caller).
        unsafe { out.write(previous) };
        TetherStatus::Ok
    })
}

/// Construct: binds a wrapper constructed by the runtime (its slot already holds `object`):
/// Detached → Active(w).
///
/// # Safety
///
/// `object` is initialised and `w`'s slot holds a reference to it; `w` is live and the caller
/// owns a reference to it; `out_rebound` is null or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_bind(
    object: *mut TetherBinding,
    w: *mut TetherWrapper,
    out_rebound: *mut TetherRebound,
) -> TetherStatus {
    guard("tether_bind", || {
        let o = non_null!(object);
        let w = wrapper!(w);
        // SAFETY: as the caller promises (the kernel's contract).
        let r = unsafe { dispatch!(object_serialized(o), bind(o, w)) };
        // SAFETY: null or valid (caller).
        unsafe { put(out_rebound, r) };
        TetherStatus::Ok
    })
}

/// Detach: Active(w) → Detached (before a handle is moved out of `w`, or before code runs during
/// which `w` must not be canonical).
///
/// # Safety
///
/// `object` is initialised and the caller holds a reference to it; `out_rebound` is null or
/// valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_detach(
    object: *mut TetherBinding,
    w: *mut TetherWrapper,
    out_rebound: *mut TetherRebound,
) -> TetherStatus {
    guard("tether_detach", || {
        let o = non_null!(object);
        let w = wrapper!(w);
        // SAFETY: alive (caller).
        let r = unsafe { dispatch!(object_serialized(o), detach(o, w)) };
        // SAFETY: null or valid (caller).
        unsafe { put(out_rebound, r) };
        TetherStatus::Ok
    })
}

/// Moves the object reference (and, if `from` is canonical, the binding) from wrapper `from` to
/// wrapper `to`, whose slot must be empty. `TETHER_REBOUND_UNCHANGED` when `from` was not
/// canonical (the reference still moves) or held nothing (then nothing moves).
///
/// # Safety
///
/// `runtime` is the wrappers' runtime; both wrappers are live with initialised slots; no other
/// thread reads or empties `from`'s slot meanwhile; `out_rebound` is null or valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn tether_move(
    runtime: *const TetherRuntime,
    from: *mut TetherWrapper,
    from_slot: *mut TetherSlot,
    to: *mut TetherWrapper,
    to_slot: *mut TetherSlot,
    out_rebound: *mut TetherRebound,
) -> TetherStatus {
    guard("tether_move", || {
        let rt = non_null!(runtime.cast_mut());
        let (from, to) = (wrapper!(from), wrapper!(to));
        let (fs, ts) = (non_null!(from_slot), non_null!(to_slot));
        // SAFETY: the caller's contract is the kernel's.
        let r = unsafe { dispatch!(serialized(rt), move_binding(rt, from, fs, to, ts)) };
        // SAFETY: null or valid (caller).
        unsafe { put(out_rebound, r) };
        TetherStatus::Ok
    })
}
