//! The adapter proper: an interpreter (through [`Runtime`]) as a kernel [`Frontend`], and the
//! whole life of a wrapper object: construction, lookup (hit, revival, fresh), `_move`, dealloc,
//! free, reclaim of a cached block, shutdown, and Python references dropped on any thread.
//!
//! Everything here is generic over the runtime, so the code the extension module runs is the
//! code the model-checked tests run.

use core::cell::UnsafeCell;
use core::ffi::c_void;
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};

use binding_core::sync::atomic::{Ordering::SeqCst, fence};
use binding_core::{
    Caching, Dealloc, Found, Frontend, HandleSlot, Header, InTransit, ObjectRef, Rebound, Settled,
    WrapperFactory,
};

use crate::runtime::{Runtime, flawed};
use crate::state::Stats;

/// Consecutive spins of one operation before a back-off detaches the thread state (on a
/// free-threaded interpreter; with a GIL every back-off detaches at once).
pub const SPINS_BEFORE_DETACH: u32 = 8;

/// How long a lookup waits for a dying wrapper's dealloc before it replaces the wrapper (see
/// `Frontend::replace_dying`).
pub const TAKEOVER_PATIENCE: std::time::Duration = std::time::Duration::from_millis(5);

/// The per-thread clock of `Interp::replace_dying` (a lookup runs on one thread; under a checker
/// there is no time, only the kernel's count of misses).
mod patience {
    #[cfg(not(any(loom, feature = "shuttle")))]
    std::thread_local! {
        static SINCE: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
    }

    /// The first miss of a lookup on a wrapper. Out of line, like [`exhausted`]: inlined into
    /// the kernel's lookup, the thread-local's address was computed in its prologue, on every
    /// revival and fresh wrapper (a `__tls_get_addr` call), not only on a miss.
    #[cold]
    #[inline(never)]
    pub(super) fn start() {
        #[cfg(not(any(loom, feature = "shuttle")))]
        let _ = SINCE.try_with(|s| s.set(Some(std::time::Instant::now())));
    }

    /// Whether `patience` passed since `start` (always, under a checker).
    #[cold]
    #[inline(never)]
    pub(super) fn exhausted(patience: core::time::Duration) -> bool {
        #[cfg(not(any(loom, feature = "shuttle")))]
        return SINCE
            .try_with(|s| s.get().is_none_or(|t| t.elapsed() >= patience))
            .unwrap_or(true);
        #[cfg(any(loom, feature = "shuttle"))]
        {
            let _ = patience;
            true
        }
    }
}

/// An interpreter as a kernel frontend. For CPython the runtime is a zero-sized type, so a
/// native object's header stores nothing for it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Interp<R>(pub R);

/// The memory layout of every wrapper object: the object header, then the adapter's fields.
///
/// Every wrapper type (`tether.Object` and its subclasses, `tether.Array`, `tether.Function`)
/// has exactly this instance size, forever: a cached block is revived as the same type, so its
/// size can never grow (lesson 6).
#[repr(C)]
pub struct WrapperObj<R: Runtime> {
    /// `PyObject_HEAD`.
    pub head: R::Object,
    /// The native object this wrapper stands for; empty once moved from.
    pub slot: HandleSlot<Header<Interp<R>>>,
    /// CPython's weak reference list (`tp_weaklistoffset` points here); only CPython touches it.
    pub weaklist: *mut c_void,
    /// The InTransit baton, handed from the dealloc to the free of the same dying wrapper on the
    /// same thread.
    baton: UnsafeCell<Option<InTransit<Header<Interp<R>>>>>,
}

impl<R: Runtime> WrapperObj<R> {
    /// Initialises the adapter's fields of freshly allocated (zeroed) wrapper memory.
    ///
    /// # Safety
    ///
    /// `o` points to a fresh block laid out as `WrapperObj<R>` that nobody else uses yet.
    pub unsafe fn init_fields(o: NonNull<R::Object>) {
        let w = o.cast::<Self>().as_ptr();
        // SAFETY: the block is ours and large enough (caller); the fields are written, not read.
        unsafe {
            ptr::write(&raw mut (*w).slot, HandleSlot::empty());
            ptr::write(&raw mut (*w).weaklist, ptr::null_mut());
            ptr::write(&raw mut (*w).baton, UnsafeCell::new(None));
        }
    }

    /// The wrapper fields of object `o`.
    ///
    /// # Safety
    ///
    /// `o` is an instance of a wrapper type (laid out as `WrapperObj<R>`) whose memory stays
    /// valid for `'a`.
    pub unsafe fn of<'a>(o: NonNull<R::Object>) -> &'a Self {
        // SAFETY: caller.
        unsafe { o.cast::<Self>().as_ref() }
    }
}

/// A fresh wrapper could not be allocated (the runtime has set an exception).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocFailed;

/// A Python reference owned by native code: dropping it decrefs on any thread, attaching first
/// when needed, and leaks it once the interpreter is finalising (lesson 5).
pub struct PyRef<R: Runtime> {
    rt: R,
    ptr: NonNull<R::Object>,
}

// SAFETY: a Python object may be referenced from any thread; the only operation on the pointer
// from an arbitrary thread is the decref in `Drop`, which attaches first.
unsafe impl<R: Runtime> Send for PyRef<R> {}
// SAFETY: `&PyRef` only exposes the pointer; using it needs an attached thread (unsafe API).
unsafe impl<R: Runtime> Sync for PyRef<R> {}

impl<R: Runtime> PyRef<R> {
    /// Takes over a reference the caller owns.
    ///
    /// # Safety
    ///
    /// The caller owns one reference to `ptr` and gives it up.
    pub unsafe fn from_owned(rt: R, ptr: NonNull<R::Object>) -> Self {
        Self { rt, ptr }
    }

    /// A new reference to a borrowed object.
    ///
    /// # Safety
    ///
    /// The calling thread is attached and `ptr` is live.
    pub unsafe fn from_borrowed(rt: R, ptr: NonNull<R::Object>) -> Self {
        // SAFETY: caller.
        unsafe { rt.incref(ptr) };
        Self { rt, ptr }
    }

    /// The object (borrowed).
    pub fn as_ptr(&self) -> NonNull<R::Object> {
        self.ptr
    }

    /// A new owned reference to the object, for returning to Python.
    ///
    /// # Safety
    ///
    /// The calling thread is attached.
    pub unsafe fn new_ref(&self) -> NonNull<R::Object> {
        // SAFETY: we own a reference, so the object is live; the caller is attached.
        unsafe { self.rt.incref(self.ptr) };
        self.ptr
    }

    /// Another `PyRef` to the same object.
    ///
    /// # Safety
    ///
    /// The calling thread is attached.
    pub unsafe fn clone_ref(&self) -> Self {
        // SAFETY: caller.
        unsafe { Self::from_borrowed(self.rt.clone(), self.ptr) }
    }

    /// Gives up ownership without a decref.
    pub fn into_ptr(self) -> NonNull<R::Object> {
        ManuallyDrop::new(self).ptr
    }
}

impl<R: Runtime> Drop for PyRef<R> {
    fn drop(&mut self) {
        Interp(self.rt.clone()).release_object(self.ptr);
    }
}

impl<R: Runtime> core::fmt::Debug for PyRef<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("PyRef").field(&self.ptr).finish()
    }
}

/// Proof that the calling thread was attached by [`Frontend::attach`]; dropping it detaches
/// (if it attached) and leaves the count of attached reclaimers.
pub struct Attached<R: Runtime> {
    rt: R,
    gil: Option<R::Gil>,
}

impl<R: Runtime> Drop for Attached<R> {
    fn drop(&mut self) {
        if flawed!(self.rt, LeaveCountBeforeRelease) {
            // SeqCst: as below (the broken variant's bug is the order).
            self.rt.state().attached.fetch_sub(1, SeqCst);
            if let Some(gil) = self.gil.take() {
                self.rt.release(gil);
            }
            return;
        }
        // The thread state goes first: once the count reads zero, shutdown lets the interpreter
        // finalise, and nothing of this thread may touch it after that (lesson 5).
        if let Some(gil) = self.gil.take() {
            self.rt.release(gil);
        }
        // SeqCst: pairs with `Interp::shutdown`, which waits for this count to reach zero.
        self.rt.state().attached.fetch_sub(1, SeqCst);
    }
}

impl<R: Runtime> core::fmt::Debug for Attached<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Attached")
            .field("ensured", &self.gil.is_some())
            .finish()
    }
}

// SAFETY: `try_incref` forwards to the runtime's, which refuses objects whose count reached zero;
// `attach` fails once the at-exit flag is set, atomically with respect to it (the Dekker pair
// with `shutdown`); wrappers are `PyObject`s, 8-aligned (checked by the kernel at compile time).
unsafe impl<R: Runtime> Frontend for Interp<R> {
    type Wrapper = R::Object;
    type Attachment = Attached<R>;

    const SERIALIZED: bool = R::SERIALIZED;
    // `attach` is `PyGILState_Ensure` (after the shutdown check), which takes the GIL on GIL
    // builds and holds it until the attachment's `PyGILState_Release`.
    const ATTACH_LOCKS: bool = R::SERIALIZED;

    #[inline]
    unsafe fn try_incref(&self, w: NonNull<R::Object>) -> bool {
        // SAFETY: the kernel holds the word's lock, so `w` is live (contract of the trait).
        unsafe { self.0.try_incref(w) }
    }

    #[inline]
    unsafe fn enable_try_incref(&self, w: NonNull<R::Object>) {
        // SAFETY: `w` is live and owned or being published (contract of the trait).
        unsafe { self.0.enable_try_incref(w) }
    }

    #[inline]
    unsafe fn untrack(&self, w: NonNull<R::Object>) {
        // SAFETY: `w` is dying on this thread (contract of the trait); untracking an untracked
        // object does nothing (`PyObject_GC_UnTrack` checks).
        unsafe { self.0.untrack(w) }
    }

    fn backoff(&self, spins: u32) {
        let rt = &self.0;
        rt.note_backoff(spins);
        if flawed!(rt, BackoffWithoutDetach) || (!rt.has_gil() && spins <= rt.spins_before_detach())
        {
            core::hint::spin_loop();
            return;
        }
        // Let the thread we wait on run: with a GIL it needs the GIL; without one it may be
        // waiting for a stop-the-world that needs every thread detached. Every wrapper dying on
        // this thread was GC-untracked before any back-off (lesson 4).
        if rt.is_attached() {
            let saved = rt.save_thread();
            rt.yield_thread();
            rt.restore_thread(saved);
        } else {
            rt.yield_thread();
        }
    }

    fn replace_dying(&self, misses: u32) -> bool {
        // After the kernel's count of misses (each watching the word through back-offs that let
        // the GIL go or detach), also a few milliseconds: the dealloc's thread may merely be
        // descheduled (or, with a GIL, not yet back in line for it), and then keeps its
        // wrapper's address (S5); only a dealloc that cannot come (parked by the trashcan until
        // this or another thread unwinds) is replaced.
        if misses == 1 {
            patience::start();
        }
        if flawed!(self.0, NeverReplace) {
            return false;
        }
        misses >= binding_core::MISSES_BEFORE_TAKEOVER
            && patience::exhausted(self.0.takeover_patience())
    }

    unsafe fn replaced(&self, old: NonNull<R::Object>) {
        let rt = &self.0;
        // SAFETY: the kernel holds the word's lock, so `old`'s memory is live.
        unsafe { rt.note_replaced(old) };
        Stats::add(&rt.state().stats.replaced, 1, rt.has_gil());
    }

    #[inline]
    fn holds_lock(&self) -> bool {
        // GIL mode is declared only on GIL builds, where a thread with an attached thread state
        // holds the GIL (`Runtime::is_attached`: a thread-local read from 3.12). The kernel asks
        // only when `SERIALIZED`; the runtime's answer is then exact (never true for a thread
        // that does not hold the GIL, false once the runtime is finalised).
        R::SERIALIZED && self.0.is_attached()
    }

    fn is_alive(&self) -> bool {
        !self.0.state().is_shutting_down()
    }

    fn attach(&self) -> Option<Attached<R>> {
        let st = self.0.state();
        if flawed!(self.0, AttachWithoutCount) {
            // SeqCst: as below (the broken variant's bug is the missing count).
            if st.shutting_down.load(SeqCst) {
                return None;
            }
            let gil = self.0.ensure();
            st.attached.fetch_add(1, SeqCst);
            return Some(Attached {
                rt: self.0.clone(),
                gil: Some(gil),
            });
        }
        // SeqCst: a Dekker pair with `shutdown` (count then flag here, flag then count there):
        // either we see the flag and stay away, or shutdown sees our count and waits for us.
        st.attached.fetch_add(1, SeqCst);
        let mut guard = Attached {
            rt: self.0.clone(),
            gil: None,
        };
        // SeqCst fence between our store and our load (the C11 fence form of the Dekker pair,
        // which loom checks exactly; it models SeqCst accesses alone as AcqRel).
        fence(SeqCst);
        // SeqCst: the other half of the Dekker pair.
        if st.shutting_down.load(SeqCst) {
            return None;
        }
        guard.gil = Some(self.0.ensure());
        Some(guard)
    }

    unsafe fn free_cached(&self, w: NonNull<R::Object>, _attached: &Attached<R>) {
        let rt = &self.0;
        // SAFETY: `w` is a cached block the kernel just detached; it kept its type alive.
        let ty = unsafe { rt.type_of(w) };
        // SAFETY: the block is dead, untracked and ours; we are attached.
        unsafe { rt.free(w) };
        // SAFETY: the block's reference to its type, given up with the block.
        unsafe { rt.decref_type(ty) };
        Stats::add(&rt.state().stats.wrappers_cached, -1, rt.has_gil());
    }
}

/// How lookups make wrappers: `class` names the Python type of a fresh wrapper (asked only when
/// one is needed, so a hit never resolves it); a revival keeps the cached block's own type.
pub struct Factory<'a, R: Runtime, C> {
    interp: &'a Interp<R>,
    class: C,
}

impl<R: Runtime, C> WrapperFactory<Header<Interp<R>>> for Factory<'_, R, C>
where
    C: Fn() -> Result<NonNull<R::Type>, AllocFailed>,
{
    type Error = AllocFailed;

    fn make_fresh(&self, handle: ObjectRef<Interp<R>>) -> Result<NonNull<R::Object>, AllocFailed> {
        let ty = (self.class)()?;
        // Outside the word's lock: allocation may collect garbage and run user code.
        // SAFETY: lookups run on attached threads; `ty` is a live wrapper type (the native
        // object or the class registry holds it).
        let o = unsafe { self.interp.alloc_wrapper(ty) }?;
        // SAFETY: `o` is a fresh wrapper only we can reach.
        let displaced = unsafe { WrapperObj::<R>::of(o).slot.put_exclusive(handle) };
        debug_assert!(displaced.is_none(), "a fresh wrapper already had a handle");
        Ok(o)
    }

    unsafe fn revive(&self, w: NonNull<R::Object>, handle: ObjectRef<Interp<R>>) {
        let rt = &self.interp.0;
        // Under the word's lock: nothing here allocates, blocks or runs user code.
        // The block is revived as its own type, whose reference it kept while cached: what the
        // block's memory and reference count were made for, whatever class a fresh wrapper of
        // this object would get (`__class__` assignment can make the two differ).
        // SAFETY: `w` is this object's cached block and the kernel holds the lock.
        unsafe {
            let ty = rt.type_of(w);
            rt.reinit(w, ty);
        }
        // SAFETY: `w` is live again and ours until published.
        let wrapper = unsafe { WrapperObj::<R>::of(w) };
        // SAFETY: the cached block is reached only through the word, which we hold locked.
        let displaced = unsafe { wrapper.slot.put_exclusive(handle) };
        debug_assert!(displaced.is_none(), "a cached wrapper still had a handle");
        // SAFETY: re-initialised objects start untracked; `w` is ours.
        unsafe { rt.track(w) };
        let (stats, serialized) = (&rt.state().stats, rt.has_gil());
        Stats::add(&stats.revivals, 1, serialized);
        Stats::add(&stats.wrappers_alive, 1, serialized);
        Stats::add(&stats.wrappers_cached, -1, serialized);
    }

    unsafe fn discard(&self, w: NonNull<R::Object>) {
        let rt = &self.interp.0;
        Stats::add(&rt.state().stats.discarded, 1, rt.has_gil());
        // SAFETY: `w` was never published and we own its only reference: it dies as an ordinary
        // non-canonical wrapper.
        unsafe { rt.decref(w) };
    }
}

impl<R: Runtime> Interp<R> {
    /// The runtime.
    pub fn runtime(&self) -> &R {
        &self.0
    }

    /// A fresh wrapper of type `ty` with an empty handle slot, one reference for the caller.
    ///
    /// # Safety
    ///
    /// The calling thread is attached; `ty` is a live wrapper type.
    pub unsafe fn alloc_wrapper(
        &self,
        ty: NonNull<R::Type>,
    ) -> Result<NonNull<R::Object>, AllocFailed> {
        let rt = &self.0;
        // SAFETY: caller. The runtime's allocation initialises the wrapper fields.
        let o = unsafe { rt.alloc(ty) }.ok_or(AllocFailed)?;
        let (stats, serialized) = (&rt.state().stats, rt.has_gil());
        Stats::add(&stats.fresh_wrappers, 1, serialized);
        Stats::add(&stats.wrappers_alive, 1, serialized);
        Ok(o)
    }

    /// The canonical wrapper of `handle`'s object (one new reference): hit, revival in place, or
    /// a fresh wrapper of type `ty`.
    ///
    /// # Safety
    ///
    /// The calling thread is attached; `ty` is the object's wrapper type and stays alive while
    /// the object does.
    pub unsafe fn wrap(
        &self,
        handle: &ObjectRef<Self>,
        ty: NonNull<R::Type>,
    ) -> Result<(NonNull<R::Object>, Found), AllocFailed> {
        // SAFETY: caller.
        unsafe { self.wrap_with(handle, || Ok(ty)) }
    }

    /// As [`wrap`](Self::wrap), with the type of a fresh wrapper resolved by `class` only when a
    /// fresh wrapper is needed (it sets an exception when it fails).
    ///
    /// # Safety
    ///
    /// The calling thread is attached; `class` returns a live wrapper type for the object that
    /// stays alive while the object does.
    pub unsafe fn wrap_with(
        &self,
        handle: &ObjectRef<Self>,
        class: impl Fn() -> Result<NonNull<R::Type>, AllocFailed>,
    ) -> Result<(NonNull<R::Object>, Found), AllocFailed> {
        handle.lookup(&Factory {
            interp: self,
            class,
        })
    }

    /// Construction: a fresh wrapper of type `ty` bound to a brand-new native object.
    ///
    /// # Safety
    ///
    /// As [`alloc_wrapper`](Self::alloc_wrapper); `handle`'s object has never been bound.
    pub unsafe fn construct(
        &self,
        ty: NonNull<R::Type>,
        handle: ObjectRef<Self>,
    ) -> Result<NonNull<R::Object>, AllocFailed> {
        // SAFETY: caller.
        let o = unsafe { self.alloc_wrapper(ty) }?;
        let header = handle.as_ptr();
        // SAFETY: `o` is fresh and only we can reach it.
        let displaced = unsafe { WrapperObj::<R>::of(o).slot.put_exclusive(handle) };
        debug_assert!(displaced.is_none());
        // SAFETY: the slot now holds a reference, keeping the header alive; `o` is live and ours.
        let bound = unsafe { binding_core::bind(header.as_ref(), o) };
        debug_assert_eq!(
            bound,
            Rebound::Done,
            "a new native object was already bound"
        );
        Ok(o)
    }

    /// `from._move()`: `to` (a fresh wrapper with an empty slot) takes over `from`'s native
    /// reference and, if `from` is canonical, the binding. Returns `false` (and changes nothing)
    /// if `from` was already moved from.
    ///
    /// # Safety
    ///
    /// Both are live wrappers the caller holds references to; no other thread reads `from`'s
    /// handle concurrently (the caller serialises: the GIL, or `from`'s critical section).
    pub unsafe fn move_into(&self, from: NonNull<R::Object>, to: NonNull<R::Object>) -> bool {
        // SAFETY: both live (caller).
        let (f, t) = unsafe { (WrapperObj::<R>::of(from), WrapperObj::<R>::of(to)) };
        // SAFETY: caller; `to`'s slot is empty.
        unsafe { binding_core::move_binding(self, from, &f.slot, to, &t.slot) }.is_some()
    }

    /// The wrapper's `tp_dealloc`: its reference count reached zero.
    ///
    /// Order (docs/python.md, "teardown"): GC untrack; for a type with a finalizer, detach the
    /// word *before* running `__del__` (its temporary resurrection must never make a canonical
    /// wrapper look alive, lesson 2; a re-fetch inside `__del__` builds a fresh wrapper instead
    /// of waiting for this one, lesson 7); the kernel's binding transition and native drop;
    /// weak references cleared (callbacks run) only after the word let go of this wrapper; free.
    ///
    /// # Safety
    ///
    /// `o` is a wrapper whose reference count just reached zero, on this (attached) thread; this
    /// is its only dealloc.
    // Inline: its common path is small, and the runtime's `tp_dealloc` is only a call of it.
    #[inline]
    pub unsafe fn dealloc_wrapper(&self, o: NonNull<R::Object>) {
        let rt = &self.0;
        // The common death (no finalizer, no weak references, caching on: every drop of a drop
        // + refetch) on its own, small: none of the other cases' code, spills or flaw checks.
        // Serialized runtimes only: with a GIL it made a 3.14 drop + refetch ~8% faster (487 ->
        // 469 instructions); free-threaded it ran fewer instructions too (733 -> 729) but
        // timed 3-7% slower, so there every death takes the one full path, as before.
        let uncommon = !R::SERIALIZED
            // SAFETY: `o` is dying; its type is alive (it holds a reference).
            || unsafe { rt.has_finalizer(rt.type_of(o)) || rt.has_weakrefs(o) }
            || !rt.state().caching();
        if uncommon {
            // SAFETY: as called.
            return unsafe { self.dealloc_wrapper_full(o) };
        }
        // SAFETY: as called; no finalizer ran or will.
        unsafe { self.dealloc_transition_and_free(o, Caching::Cache) };
    }

    /// [`dealloc_wrapper`](Self::dealloc_wrapper) with a finalizer, weak references, or caching
    /// off (and every broken variant of its order).
    ///
    /// # Safety
    ///
    /// As `dealloc_wrapper`.
    #[inline(never)]
    unsafe fn dealloc_wrapper_full(&self, o: NonNull<R::Object>) {
        let rt = &self.0;
        // SAFETY: `o` is a wrapper (caller); its memory stays ours until we free or cache it.
        let w = unsafe { WrapperObj::<R>::of(o) };
        // SAFETY: `o` is dying; its type is alive (it holds a reference).
        let finalizer = unsafe { rt.has_finalizer(rt.type_of(o)) };
        // GC-untrack first, before anything that can back off (lesson 4). Without a finalizer
        // the kernel's dealloc below does it as its first step.
        if finalizer && !flawed!(rt, UntrackAfterDetach) {
            // SAFETY: `o` is dying on this thread.
            unsafe { Frontend::untrack(self, o) };
        }
        if finalizer && flawed!(rt, FinalizerBeforeDetach) {
            // SAFETY: as below; the broken variant's bug is the order.
            if unsafe {
                rt.track(o);
                rt.call_finalizer(o)
            } {
                return;
            }
            // SAFETY: as below.
            unsafe { Frontend::untrack(self, o) };
        }
        if finalizer {
            if let Some(header) = w.slot.header() {
                // SAFETY: the slot's reference keeps the header alive. Backing off here is safe:
                // `o` is untracked.
                let _ = binding_core::detach(unsafe { header.as_ref() }, o);
            }
            if flawed!(rt, UntrackAfterDetach) {
                // SAFETY: as above (the broken variant's bug is the order).
                unsafe { Frontend::untrack(self, o) };
            }
            // SAFETY: as CPython's subtype_dealloc: the finalizer may resurrect `o`, which must
            // then be tracked; `o` is dying on this thread.
            let resurrected = !flawed!(rt, FinalizerBeforeDetach)
                && unsafe {
                    rt.track(o);
                    rt.call_finalizer(o)
                };
            if resurrected {
                // `o` lives on as an ordinary, non-canonical wrapper that keeps its handle.
                return;
            }
            // SAFETY: as above.
            unsafe { Frontend::untrack(self, o) };
        }
        // SAFETY: `o` is dying on this thread.
        let weakrefs = unsafe { rt.has_weakrefs(o) };
        if weakrefs && flawed!(rt, WeakrefsBeforeTransition) {
            // SAFETY: as below; the broken variant's bug is the order.
            unsafe { rt.clear_weakrefs(o) };
        }
        let caching = if finalizer || weakrefs || !rt.state().caching() {
            Caching::Forget
        } else {
            Caching::Cache
        };
        // SAFETY: as called; a finalizer that ran did not resurrect `o`.
        unsafe { self.dealloc_transition_and_free(o, caching) };
    }

    /// Both dealloc paths' end: the kernel's binding transition and native drop, the weak
    /// references of a forgotten wrapper cleared, the baton kept, the free.
    ///
    /// # Safety
    ///
    /// As `dealloc_wrapper`, after any finalizer (which did not resurrect `o`); `o` is untracked
    /// or the kernel's dealloc untracks it first.
    #[inline(always)]
    unsafe fn dealloc_transition_and_free(&self, o: NonNull<R::Object>, caching: Caching) {
        let rt = &self.0;
        // SAFETY: `o` is a wrapper (caller); its memory stays ours until we free or cache it.
        let w = unsafe { WrapperObj::<R>::of(o) };
        // SAFETY: `o`'s count reached zero, `w.slot` is its slot, and this is its only dealloc.
        let outcome = unsafe { binding_core::dealloc(self, o, &w.slot, caching) };
        let (stats, serialized) = (&rt.state().stats, rt.has_gil());
        Stats::add(&stats.wrappers_alive, -1, serialized);
        if caching == Caching::Forget {
            Stats::add(&stats.uncached_deaths, 1, serialized);
            // The word no longer names `o`: a callback that fetches the same object gets a fresh
            // wrapper and never waits for this one (lesson 7). Re-read: the native drop above
            // may have run code that dropped weak references.
            // SAFETY: `o` is dying on this thread.
            if unsafe { rt.has_weakrefs(o) } {
                // SAFETY: as above.
                unsafe { rt.clear_weakrefs(o) };
            }
        }
        if let Dealloc::Cached(baton) = outcome {
            // SAFETY: only this thread touches a dying wrapper's baton.
            unsafe { *w.baton.get() = Some(baton) };
        }
        // SAFETY: the dealloc is done; `o` is dead.
        unsafe { self.free_wrapper(o) };
    }

    /// The wrapper's `tp_free`: settles the baton (the block becomes the word's, Inactive) or
    /// frees the memory.
    ///
    /// # Safety
    ///
    /// `o` is a dead wrapper whose dealloc ran on this thread; called once.
    // Inline: called by both dealloc paths (and left out of line without this).
    #[inline]
    pub unsafe fn free_wrapper(&self, o: NonNull<R::Object>) {
        let rt = &self.0;
        // SAFETY: the block is still ours.
        let w = unsafe { WrapperObj::<R>::of(o) };
        // SAFETY: `o` is dead but its memory and type are intact.
        let ty = unsafe { rt.type_of(o) };
        // SAFETY: only this thread touches a dying wrapper's baton.
        let baton = unsafe { (*w.baton.get()).take() };
        let free = match baton {
            Some(baton) => {
                // SAFETY: `o` is dying on this thread.
                unsafe { rt.note_cached(o) };
                // Every write to the block happened above: once the word says Inactive, a
                // reviver or a reclaimer on another thread owns it. The block keeps its
                // reference to its type (freed with it, or reused by the revival).
                match baton.settle() {
                    Settled::Cached => {
                        Stats::add(&rt.state().stats.wrappers_cached, 1, rt.has_gil());
                        false
                    }
                    Settled::FreeWrapper => true,
                }
            }
            None => true,
        };
        if free {
            // SAFETY: the block is dead, untracked and ours; we are attached. The type
            // reference the instance held goes with it.
            unsafe {
                rt.free(o);
                rt.decref_type(ty);
            }
        }
    }

    /// Drops a Python reference from any thread: directly when attached, else after attaching;
    /// leaked once the interpreter is finalising (lesson 5).
    pub fn release_object(&self, o: NonNull<R::Object>) {
        let rt = &self.0;
        if rt.is_attached() {
            // SAFETY: the caller gives up a reference it owns; we are attached.
            unsafe { rt.decref(o) };
            return;
        }
        if let Some(attached) = self.attach() {
            // SAFETY: as above, now attached.
            unsafe { rt.decref(o) };
            drop(attached);
        }
    }

    /// The at-exit hook: from now on nothing attaches to the interpreter (reclaims on foreign
    /// threads leak cached wrappers and Python references instead); waits for the threads that
    /// are attached for a reclaim right now.
    pub fn shutdown(&self) {
        let st = self.0.state();
        // SeqCst: the Dekker pair with `attach` (flag then count here).
        st.shutting_down.store(true, SeqCst);
        // SeqCst fence between our store and our loads (see `attach`).
        fence(SeqCst);
        let mut spins = 0u32;
        // SeqCst: as above.
        while st.attached.load(SeqCst) != 0 {
            spins = spins.saturating_add(1);
            // Detaches, so an attaching reclaimer can take the GIL and finish.
            self.backoff(spins.max(self.0.spins_before_detach() + 1));
        }
    }
}
