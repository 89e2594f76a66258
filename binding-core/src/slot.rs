//! The handle slot inside a wrapper: which native object the wrapper stands for.

use core::ptr::{self, NonNull};

use crate::sync::atomic::Ordering;
use crate::sync::kernel_atomic::AtomicPtr;
use crate::{Frontend, Header, ObjectRef};

/// An atomic, optionally empty strong reference held by a wrapper.
///
/// Empty means the wrapper was moved from (or never bound). The slot is atomic so that a reader
/// on another thread sees either the handle or empty, never a torn value; keeping the *object*
/// alive while reading through a borrowed handle is the frontend's job (a wrapper is only
/// emptied by its own `move`, which a frontend serialises with reads of that wrapper).
pub struct HandleSlot<F: Frontend> {
    header: AtomicPtr<Header<F>>,
}

impl<F: Frontend> HandleSlot<F> {
    /// An empty slot.
    pub fn empty() -> Self {
        Self {
            header: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// A slot holding `handle`.
    pub fn new(handle: ObjectRef<F>) -> Self {
        Self {
            header: AtomicPtr::new(handle.into_raw().as_ptr()),
        }
    }

    /// The held object's header, if any.
    pub fn header(&self) -> Option<NonNull<Header<F>>> {
        // Acquire: pairs with the Release in `put`, so the handle's object is visible.
        NonNull::new(self.header.load(Ordering::Acquire))
    }

    /// A new strong reference to the held object, if any.
    ///
    /// # Safety
    ///
    /// No other thread empties this slot concurrently (the frontend serialises `take` and
    /// `clone_handle` on one wrapper).
    pub unsafe fn clone_handle(&self) -> Option<ObjectRef<F>> {
        let header = self.header()?;
        // SAFETY: the slot owns a strong reference that nobody releases concurrently (caller).
        let borrowed = core::mem::ManuallyDrop::new(unsafe { ObjectRef::from_raw(header) });
        Some((*borrowed).clone())
    }

    /// Takes the handle out, leaving the slot empty.
    pub fn take(&self) -> Option<ObjectRef<F>> {
        // AcqRel: acquire the handle's object from `put`; release our prior reads of it.
        let header = NonNull::new(self.header.swap(ptr::null_mut(), Ordering::AcqRel))?;
        // SAFETY: the slot owned this strong reference; the swap made us its only owner.
        Some(unsafe { ObjectRef::from_raw(header) })
    }

    /// [`take`](Self::take) by the slot's only user: a load and a store, no read-modify-write.
    ///
    /// # Safety
    ///
    /// No other thread reads or writes this slot concurrently (the wrapper is dying on this
    /// thread, or is a block only this thread can reach).
    pub unsafe fn take_exclusive(&self) -> Option<ObjectRef<F>> {
        // Acquire: as `take` (the handle's object, from whoever put it).
        let header = NonNull::new(self.header.load(Ordering::Acquire))?;
        // Relaxed: nobody else reads the slot (caller); later readers synchronise through the
        // binding word or the wrapper's reference count.
        self.header.store(ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: the slot owned this strong reference; it is empty now and only we saw it.
        Some(unsafe { ObjectRef::from_raw(header) })
    }

    /// [`put`](Self::put) by the slot's only user: a load and a store, no read-modify-write.
    ///
    /// # Safety
    ///
    /// As [`take_exclusive`](Self::take_exclusive): a fresh wrapper, or a cached block revived
    /// under the binding word's lock.
    pub unsafe fn put_exclusive(&self, handle: ObjectRef<F>) -> Option<ObjectRef<F>> {
        // Acquire: as `put` (an old handle's object).
        let old = self.header.load(Ordering::Acquire);
        // Release: the handle's object before the slot's later readers (who also synchronise
        // through the word's publication or the wrapper's reference count).
        self.header
            .store(handle.into_raw().as_ptr(), Ordering::Release);
        // SAFETY: the slot owned `old`; only we saw it.
        NonNull::new(old).map(|h| unsafe { ObjectRef::from_raw(h) })
    }

    /// Puts a handle into the slot, returning the one it held.
    pub fn put(&self, handle: ObjectRef<F>) -> Option<ObjectRef<F>> {
        // AcqRel: publish the new handle; acquire the old one (as `take`).
        let old = self
            .header
            .swap(handle.into_raw().as_ptr(), Ordering::AcqRel);
        // SAFETY: the slot owned `old`; the swap made us its only owner.
        NonNull::new(old).map(|h| unsafe { ObjectRef::from_raw(h) })
    }
}

impl<F: Frontend> Drop for HandleSlot<F> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: nobody else can reach the slot.
        drop(unsafe { self.take_exclusive() });
    }
}

impl<F: Frontend> Default for HandleSlot<F> {
    fn default() -> Self {
        Self::empty()
    }
}

impl<F: Frontend> core::fmt::Debug for HandleSlot<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("HandleSlot").field(&self.header()).finish()
    }
}
