//! The exported operations without the ABI boundary (no guard, no null checks): what each
//! `tether_*` function runs once its arguments are checked. Public but hidden, for the benchmark
//! that measures what the boundary costs (`benches/abi.rs`).

use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};

use binding_core::{
    Caching, Dealloc, Found, HandleSlot, InTransit, NativeRef, Rebound, Reclaimed, Settled,
    WrapperFactory,
};

use crate::api::TETHER_WRAPPER_ALIGN;
use crate::runtime::{Binding, CFrontend};
use crate::types::{
    TETHER_BATON_PENDING, TETHER_BATON_SETTLED, TetherBaton, TetherBinding, TetherDeallocOutcome,
    TetherFactory, TetherFound, TetherRebound, TetherReclaimed, TetherRuntime, TetherSettled,
    TetherSlot, TetherStatus, TetherWrapper,
};

/// The factory's callbacks as the kernel's [`WrapperFactory`].
struct CFactory(TetherFactory);

impl<const S: bool> WrapperFactory<Binding<S>> for CFactory {
    type Error = TetherStatus;

    fn make_fresh(
        &self,
        handle: NativeRef<Binding<S>>,
    ) -> Result<NonNull<TetherWrapper>, TetherStatus> {
        let raw = handle.into_raw();
        let make = self.0.make_fresh.expect("checked by tether_lookup");
        // SAFETY: the C contract; the strong reference is given to the callback.
        let w = unsafe { make(self.0.ctx, raw.as_ptr().cast()) };
        let Some(w) = NonNull::new(w) else {
            // The contract: on failure the callback keeps nothing; the reference is ours.
            // SAFETY: the reference given above came back unused.
            drop(unsafe { NativeRef::from_raw(raw) });
            return Err(TetherStatus::FactoryFailed);
        };
        assert!(
            w.as_ptr().addr() % TETHER_WRAPPER_ALIGN == 0,
            "make_fresh returned a wrapper that is not {TETHER_WRAPPER_ALIGN}-byte aligned"
        );
        Ok(w)
    }

    unsafe fn revive(&self, w: NonNull<TetherWrapper>, handle: NativeRef<Binding<S>>) {
        let revive = self.0.revive.expect("checked by tether_lookup");
        // SAFETY: `w` is the object's cached block and the kernel holds the word's lock; the
        // strong reference is given to the callback.
        unsafe { revive(self.0.ctx, w.as_ptr(), handle.into_raw().as_ptr().cast()) }
    }

    unsafe fn discard(&self, w: NonNull<TetherWrapper>) {
        let discard = self.0.discard.expect("checked by tether_lookup");
        // SAFETY: `w` came from `make_fresh` and was never published (kernel contract).
        unsafe { discard(self.0.ctx, w.as_ptr()) }
    }
}

/// A strong reference the caller lends for the duration of a call.
///
/// # Safety
///
/// `object` is an initialised binding the caller holds a strong reference to.
unsafe fn borrowed<const S: bool>(
    object: NonNull<TetherBinding>,
) -> ManuallyDrop<NativeRef<Binding<S>>> {
    // SAFETY: the caller's reference is borrowed, never released (ManuallyDrop).
    ManuallyDrop::new(unsafe { NativeRef::from_raw(object.cast()) })
}

/// `tether_lookup` after its checks.
///
/// # Safety
///
/// `object` is an initialised binding the caller holds a strong reference to; `factory` has
/// every callback.
pub unsafe fn lookup<const S: bool>(
    object: NonNull<TetherBinding>,
    factory: &TetherFactory,
) -> Result<(NonNull<TetherWrapper>, TetherFound), TetherStatus> {
    // SAFETY: the caller holds a strong reference.
    let handle = unsafe { borrowed::<S>(object) };
    let (w, found) = handle.lookup(&CFactory(*factory))?;
    let found = match found {
        Found::Hit => TetherFound::Hit,
        Found::Revived => TetherFound::Revived,
        Found::Fresh => TetherFound::Fresh,
        Found::Replaced => TetherFound::Replaced,
    };
    Ok((w, found))
}

/// `tether_hit` after its checks: the live wrapper with a new reference, or null.
///
/// # Safety
///
/// As [`lookup`].
#[inline]
pub unsafe fn hit<const S: bool>(object: NonNull<TetherBinding>) -> *mut TetherWrapper {
    // SAFETY: the caller holds a strong reference.
    unsafe { borrowed::<S>(object) }
        .hit()
        .map_or(ptr::null_mut(), NonNull::as_ptr)
}

/// `tether_dealloc` after its checks.
///
/// # Safety
///
/// As `tether_dealloc`, with every pointer valid and `w` aligned.
pub unsafe fn dealloc<const S: bool>(
    runtime: NonNull<TetherRuntime>,
    w: NonNull<TetherWrapper>,
    w_slot: NonNull<TetherSlot>,
    cache: bool,
    baton: Option<NonNull<TetherBaton>>,
) -> TetherDeallocOutcome {
    let caching = if cache {
        Caching::Cache
    } else {
        Caching::Forget
    };
    // SAFETY: `CFrontend` and `HandleSlot` are `repr(transparent)` over the C types; the
    // caller's contract is the kernel's.
    let outcome = unsafe {
        binding_core::dealloc(
            runtime.cast::<CFrontend<S>>().as_ref(),
            w,
            w_slot.cast::<HandleSlot<Binding<S>>>().as_ref(),
            caching,
        )
    };
    match outcome {
        Dealloc::Cached(transit) => {
            let (object, wrapper) = transit.into_raw();
            let baton = baton.expect("checked: a cached dealloc has a baton");
            // SAFETY: valid for writes (caller).
            unsafe {
                baton.write(TetherBaton {
                    object: object.as_ptr().cast(),
                    wrapper: wrapper.as_ptr(),
                    state: TETHER_BATON_PENDING,
                })
            };
            TetherDeallocOutcome::Cached
        }
        Dealloc::Detached => TetherDeallocOutcome::Detached,
        Dealloc::NotCanonical => TetherDeallocOutcome::NotCanonical,
    }
}

/// `tether_settle` after its checks.
///
/// # Safety
///
/// `baton` is valid for reads and writes and not settled concurrently.
pub unsafe fn settle<const S: bool>(
    baton: NonNull<TetherBaton>,
) -> Result<TetherSettled, TetherStatus> {
    // SAFETY: valid (caller).
    let (object, wrapper, state) = unsafe {
        let b = baton.as_ptr();
        ((*b).object, (*b).wrapper, (*b).state)
    };
    match state {
        TETHER_BATON_PENDING => {}
        TETHER_BATON_SETTLED => return Err(TetherStatus::AlreadySettled),
        _ => return Err(TetherStatus::InvalidBaton),
    }
    let (Some(object), Some(wrapper)) = (NonNull::new(object), NonNull::new(wrapper)) else {
        return Err(TetherStatus::InvalidBaton);
    };
    // Marked before the settle: the baton may live in the wrapper's memory, which belongs to the
    // word once the settle returns `Cached`.
    // SAFETY: valid for writes (caller).
    unsafe { (*baton.as_ptr()).state = TETHER_BATON_SETTLED };
    // SAFETY: a pending baton's pointers came from `into_raw` and are re-taken once (the state
    // says so).
    let transit = unsafe { InTransit::<Binding<S>>::from_raw(object.cast(), wrapper) };
    Ok(match transit.settle() {
        Settled::Cached => TetherSettled::Cached,
        Settled::FreeWrapper => TetherSettled::FreeWrapper,
    })
}

/// `tether_reclaim` after its checks.
///
/// # Safety
///
/// As `tether_reclaim`.
pub unsafe fn reclaim<const S: bool>(object: NonNull<TetherBinding>) -> TetherReclaimed {
    // SAFETY: the caller's contract is the kernel's.
    match unsafe { binding_core::reclaim(object.cast::<Binding<S>>()) } {
        Reclaimed::Free => TetherReclaimed::Free,
        Reclaimed::Deferred => TetherReclaimed::Deferred,
    }
}

fn rebound(r: Rebound) -> TetherRebound {
    match r {
        Rebound::Done => TetherRebound::Done,
        Rebound::Unchanged => TetherRebound::Unchanged,
    }
}

/// `tether_bind` after its checks.
///
/// # Safety
///
/// As `tether_bind`.
pub unsafe fn bind<const S: bool>(
    object: NonNull<TetherBinding>,
    w: NonNull<TetherWrapper>,
) -> TetherRebound {
    // SAFETY: as the caller promises (the kernel's contract).
    rebound(unsafe { binding_core::bind(object.cast::<Binding<S>>().as_ref(), w) })
}

/// `tether_detach` after its checks.
///
/// # Safety
///
/// As `tether_detach`.
pub unsafe fn detach<const S: bool>(
    object: NonNull<TetherBinding>,
    w: NonNull<TetherWrapper>,
) -> TetherRebound {
    // SAFETY: alive (caller).
    rebound(binding_core::detach(
        unsafe { object.cast::<Binding<S>>().as_ref() },
        w,
    ))
}

/// `tether_move` after its checks.
///
/// # Safety
///
/// As `tether_move`.
pub unsafe fn move_binding<const S: bool>(
    runtime: NonNull<TetherRuntime>,
    from: NonNull<TetherWrapper>,
    from_slot: NonNull<TetherSlot>,
    to: NonNull<TetherWrapper>,
    to_slot: NonNull<TetherSlot>,
) -> TetherRebound {
    // SAFETY: `CFrontend` and `HandleSlot` are `repr(transparent)` over the C types; the
    // caller's contract is the kernel's.
    let r = unsafe {
        binding_core::move_binding(
            runtime.cast::<CFrontend<S>>().as_ref(),
            from,
            from_slot.cast::<HandleSlot<Binding<S>>>().as_ref(),
            to,
            to_slot.cast::<HandleSlot<Binding<S>>>().as_ref(),
        )
    };
    r.map_or(TetherRebound::Unchanged, rebound)
}
