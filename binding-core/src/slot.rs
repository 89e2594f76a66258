//! The handle slot inside a wrapper: which native object the wrapper stands for.

use core::ptr::{self, NonNull};

use crate::native::{NativeObject, NativeRef};
use crate::sync::atomic::Ordering;
use crate::sync::kernel_atomic::AtomicPtr;

/// An atomic, optionally empty strong reference held by a wrapper.
///
/// Empty means the wrapper was moved from (or never bound). The slot is atomic so that a reader
/// on another thread sees either the handle or empty, never a torn value; keeping the *object*
/// alive while reading through a borrowed handle is the frontend's job (a wrapper is only
/// emptied by its own `move`, which a frontend serialises with reads of that wrapper).
///
/// One pointer wide and laid out as one (`repr(transparent)`), so wrappers written in other
/// languages can reserve it (the C ABI's `TetherSlot`).
#[repr(transparent)]
pub struct HandleSlot<N: NativeObject> {
    header: AtomicPtr<N>,
}

impl<N: NativeObject> HandleSlot<N> {
    /// An empty slot.
    pub fn empty() -> Self {
        Self {
            header: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// A slot holding `handle`.
    pub fn new(handle: NativeRef<N>) -> Self {
        Self {
            header: AtomicPtr::new(handle.into_raw().as_ptr()),
        }
    }

    /// The held object, if any.
    pub fn header(&self) -> Option<NonNull<N>> {
        // Acquire: pairs with the Release in `put`, so the handle's object is visible.
        NonNull::new(self.header.load(Ordering::Acquire))
    }

    /// A new strong reference to the held object, if any.
    ///
    /// # Safety
    ///
    /// No other thread empties this slot concurrently (the frontend serialises `take` and
    /// `clone_handle` on one wrapper).
    pub unsafe fn clone_handle(&self) -> Option<NativeRef<N>> {
        let header = self.header()?;
        // SAFETY: the slot owns a strong reference that nobody releases concurrently (caller).
        let borrowed = core::mem::ManuallyDrop::new(unsafe { NativeRef::from_raw(header) });
        Some((*borrowed).clone())
    }

    /// Takes the handle out, leaving the slot empty.
    pub fn take(&self) -> Option<NativeRef<N>> {
        // AcqRel: acquire the handle's object from `put`; release our prior reads of it.
        let header = NonNull::new(self.header.swap(ptr::null_mut(), Ordering::AcqRel))?;
        // SAFETY: the slot owned this strong reference; the swap made us its only owner.
        Some(unsafe { NativeRef::from_raw(header) })
    }

    /// [`take`](Self::take) by the slot's only user: a load and a store, no read-modify-write.
    ///
    /// # Safety
    ///
    /// No other thread reads or writes this slot concurrently (the wrapper is dying on this
    /// thread, or is a block only this thread can reach).
    pub unsafe fn take_exclusive(&self) -> Option<NativeRef<N>> {
        // Acquire: as `take` (the handle's object, from whoever put it).
        let header = NonNull::new(self.header.load(Ordering::Acquire))?;
        // Relaxed: nobody else reads the slot (caller); later readers synchronise through the
        // binding word or the wrapper's reference count.
        self.header.store(ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: the slot owned this strong reference; it is empty now and only we saw it.
        Some(unsafe { NativeRef::from_raw(header) })
    }

    /// [`put`](Self::put) by the slot's only user: a load and a store, no read-modify-write.
    ///
    /// # Safety
    ///
    /// As [`take_exclusive`](Self::take_exclusive): a fresh wrapper, or a cached block revived
    /// under the binding word's lock.
    pub unsafe fn put_exclusive(&self, handle: NativeRef<N>) -> Option<NativeRef<N>> {
        // Acquire: as `put` (an old handle's object).
        let old = self.header.load(Ordering::Acquire);
        // Release: the handle's object before the slot's later readers (who also synchronise
        // through the word's publication or the wrapper's reference count).
        self.header
            .store(handle.into_raw().as_ptr(), Ordering::Release);
        // SAFETY: the slot owned `old`; only we saw it.
        NonNull::new(old).map(|h| unsafe { NativeRef::from_raw(h) })
    }

    /// Puts a handle into the slot, returning the one it held.
    pub fn put(&self, handle: NativeRef<N>) -> Option<NativeRef<N>> {
        // AcqRel: publish the new handle; acquire the old one (as `take`).
        let old = self
            .header
            .swap(handle.into_raw().as_ptr(), Ordering::AcqRel);
        // SAFETY: the slot owned `old`; the swap made us its only owner.
        NonNull::new(old).map(|h| unsafe { NativeRef::from_raw(h) })
    }
}

impl<N: NativeObject> Drop for HandleSlot<N> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: nobody else can reach the slot.
        drop(unsafe { self.take_exclusive() });
    }
}

impl<N: NativeObject> Default for HandleSlot<N> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<N: NativeObject> core::fmt::Debug for HandleSlot<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("HandleSlot").field(&self.header()).finish()
    }
}
