//! The model's object systems: the kernel's own objects ([`Own`], an [`ObjectArc`]) and a
//! foreign one ([`Foreign`]) with its own count, as a C or C++ object system embedding the
//! binding word would have. The suites run their scenarios against both, so the kernel's
//! contract with object systems ([`NativeObject`], [`reclaim`](crate::reclaim())) is checked,
//! not only its own implementation of it.

use core::alloc::Layout;
use core::mem::ManuallyDrop;
use core::ptr::{self, NonNull};

use crate::native::{NativeObject, NativeRef, WrapperOf};
use crate::sync::atomic::Ordering;
use crate::sync::kernel_atomic::AtomicUsize;
use crate::{BindingWord, Header, NativeAllocator, ObjectArc, Reclaimed, reclaim};

use super::{ModelAlloc, ModelFrontend, Payload};

/// An object system the model's native objects live in.
pub trait System: Sized + Send + Sync + 'static {
    /// The object (or its header) the kernel points to.
    type Native<const FLAW: u8, const GIL: bool>: NativeObject<
        Frontend = ModelFrontend<FLAW, GIL, Self>,
    >;

    /// A new object holding `payload`, on the model's shadow heap; the caller owns the strong
    /// reference.
    fn new_object<const FLAW: u8, const GIL: bool>(
        rt: &ModelFrontend<FLAW, GIL, Self>,
        payload: Payload<FLAW, GIL, Self>,
    ) -> NativeRef<Self::Native<FLAW, GIL>>;

    /// The object's strong count (a snapshot, for tests).
    fn strong_count<const FLAW: u8, const GIL: bool>(object: &Self::Native<FLAW, GIL>) -> usize;

    /// The object's weak count beyond the one its strong references share (a snapshot, for
    /// tests); `None` for a system without weak references.
    fn weak_count<const FLAW: u8, const GIL: bool>(
        object: &Self::Native<FLAW, GIL>,
    ) -> Option<usize>;

    /// The value of an object made by [`new_object`](Self::new_object), read through a strong
    /// reference (as a native attribute read would).
    fn payload<const FLAW: u8, const GIL: bool>(
        object: &NativeRef<Self::Native<FLAW, GIL>>,
    ) -> &Payload<FLAW, GIL, Self>;
}

/// The kernel's own objects: [`ObjectArc`] with strong and weak counts.
#[derive(Debug)]
pub struct Own;

impl System for Own {
    type Native<const FLAW: u8, const GIL: bool> = Header<ModelFrontend<FLAW, GIL, Own>>;

    fn new_object<const FLAW: u8, const GIL: bool>(
        rt: &ModelFrontend<FLAW, GIL, Own>,
        payload: Payload<FLAW, GIL, Own>,
    ) -> NativeRef<Self::Native<FLAW, GIL>> {
        ObjectArc::new_in(payload, rt.clone(), ModelAlloc::new(rt.clone())).erase()
    }

    fn strong_count<const FLAW: u8, const GIL: bool>(object: &Self::Native<FLAW, GIL>) -> usize {
        object.strong_count()
    }

    fn weak_count<const FLAW: u8, const GIL: bool>(
        object: &Self::Native<FLAW, GIL>,
    ) -> Option<usize> {
        Some(object.weak_count())
    }

    fn payload<const FLAW: u8, const GIL: bool>(
        object: &NativeRef<Self::Native<FLAW, GIL>>,
    ) -> &Payload<FLAW, GIL, Self> {
        object
            .downcast_ref::<Payload<FLAW, GIL>, ModelAlloc<FLAW, GIL>>()
            .expect("made by `Own::new_object`")
    }
}

/// A foreign object system: one strong count and no weak references (COM, nanobind's intrusive
/// counter), the binding word in its header. At strong → 0 it drops the value and then calls
/// [`reclaim`] itself, freeing the block only when told to.
#[derive(Debug)]
pub struct Foreign;

/// The header of a [`Foreign`] object (count, binding word, frontend): what the kernel points
/// to. The value lives beside it in the block (`ForeignBlock`), not in it: the kernel makes
/// shared references to the header even where it holds no strong reference (a settle racing
/// the last release), and a reference to a value being dropped would be a data race (miri found
/// exactly that when the value was a field of this type).
#[repr(C)]
pub struct ForeignObject<const FLAW: u8, const GIL: bool> {
    strong: AtomicUsize,
    word: BindingWord<WrapperOf<Self>>,
    frontend: ModelFrontend<FLAW, GIL, Foreign>,
}

/// A [`Foreign`] object's block: the header first, then the value.
#[repr(C)]
struct ForeignBlock<const FLAW: u8, const GIL: bool> {
    header: ForeignObject<FLAW, GIL>,
    payload: ManuallyDrop<Payload<FLAW, GIL, Foreign>>,
}

impl<const FLAW: u8, const GIL: bool> ForeignObject<FLAW, GIL> {
    const LAYOUT: Layout = Layout::new::<ForeignBlock<FLAW, GIL>>();

    /// Frees the block (after the value was dropped and reclaim ran).
    ///
    /// # Safety
    ///
    /// Nothing references the block; this is its only free.
    unsafe fn free_block(this: NonNull<Self>) {
        // SAFETY: nobody else references the block (caller); the frontend is dropped once.
        let frontend = unsafe { ptr::read(&raw const (*this.as_ptr()).frontend) };
        let alloc = ModelAlloc::new(frontend.clone());
        drop(frontend);
        // SAFETY: allocated by a `ModelAlloc` of the same model with this layout.
        unsafe { alloc.deallocate(this.cast(), Self::LAYOUT) };
    }
}

// SAFETY: the word and frontend are fields fixed for the block's life; `strong` is a strong
// count; at zero `release` drops the value, calls `reclaim` once and frees only on `Free`, and
// `free` is the block's only other free.
unsafe impl<const FLAW: u8, const GIL: bool> NativeObject for ForeignObject<FLAW, GIL> {
    type Frontend = ModelFrontend<FLAW, GIL, Foreign>;

    fn binding(&self) -> &BindingWord<WrapperOf<Self>> {
        &self.word
    }

    fn frontend(&self) -> &Self::Frontend {
        &self.frontend
    }

    unsafe fn retain(this: NonNull<Self>) {
        // Relaxed: a new reference comes from an existing one (as `Arc::clone`).
        // SAFETY: the caller owns a strong reference, so the block is live.
        unsafe { this.as_ref() }
            .strong
            .fetch_add(1, Ordering::Relaxed);
    }

    unsafe fn release(this: NonNull<Self>) {
        // SAFETY: the caller's strong reference keeps the block alive.
        let o = unsafe { this.as_ref() };
        // Release: our uses of the value happen before whoever drops it.
        if o.strong.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Acquire: every other owner's uses happen before the drop (a load for TSan, as `Arc`).
        o.strong.load(Ordering::Acquire);
        // SAFETY: the last strong reference is gone; the value is dropped once, here. The header
        // heads a `ForeignBlock` (repr(C)), and only the value's own place is borrowed mutably.
        unsafe {
            ManuallyDrop::drop(&mut (*this.cast::<ForeignBlock<FLAW, GIL>>().as_ptr()).payload)
        };
        // SAFETY: no reference remains (no weak references in this system); the only reclaim.
        if unsafe { reclaim(this) } == Reclaimed::Free {
            // SAFETY: reclaim left the block to us and nothing references it.
            unsafe { Self::free_block(this) };
        }
    }

    unsafe fn free(this: NonNull<Self>) {
        // SAFETY: reclaim deferred to the settler, which calls this once (caller).
        unsafe { Self::free_block(this) }
    }
}

impl System for Foreign {
    type Native<const FLAW: u8, const GIL: bool> = ForeignObject<FLAW, GIL>;

    fn new_object<const FLAW: u8, const GIL: bool>(
        rt: &ModelFrontend<FLAW, GIL, Foreign>,
        payload: Payload<FLAW, GIL, Foreign>,
    ) -> NativeRef<ForeignObject<FLAW, GIL>> {
        let layout = ForeignObject::<FLAW, GIL>::LAYOUT;
        let block = ModelAlloc::new(rt.clone())
            .allocate(layout)
            .expect("the model's heap never runs out")
            .cast::<ForeignBlock<FLAW, GIL>>();
        // SAFETY: a fresh block, valid and aligned for the layout.
        unsafe {
            block.as_ptr().write(ForeignBlock {
                header: ForeignObject {
                    strong: AtomicUsize::new(1),
                    word: BindingWord::new(),
                    frontend: rt.clone(),
                },
                payload: ManuallyDrop::new(payload),
            })
        };
        // SAFETY: the count of 1 just written is the caller's; the header is the block's first
        // field.
        unsafe { NativeRef::from_raw(block.cast::<ForeignObject<FLAW, GIL>>()) }
    }

    fn strong_count<const FLAW: u8, const GIL: bool>(object: &ForeignObject<FLAW, GIL>) -> usize {
        // Relaxed: a diagnostic snapshot.
        object.strong.load(Ordering::Relaxed)
    }

    fn weak_count<const FLAW: u8, const GIL: bool>(_: &ForeignObject<FLAW, GIL>) -> Option<usize> {
        None
    }

    fn payload<const FLAW: u8, const GIL: bool>(
        object: &NativeRef<ForeignObject<FLAW, GIL>>,
    ) -> &Payload<FLAW, GIL, Foreign> {
        let block = object.as_ptr().cast::<ForeignBlock<FLAW, GIL>>();
        // SAFETY: every `ForeignObject` heads a `ForeignBlock` (`new_object`, repr(C)); the
        // strong reference keeps the value alive (it is dropped at strong → 0) for as long as
        // the returned borrow of `object`; only the value's own place is borrowed.
        unsafe { &(*block.as_ptr()).payload }
    }
}
