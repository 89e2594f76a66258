//! The contract between the kernel and an object system: where the binding word lives, and the
//! object system's own strong count.
//!
//! The kernel ties wrappers to native objects of *any* reference-counted object system. The
//! object system keeps its own counts and owns a [`BindingWord`] in its objects' header, by
//! construction; it tells the kernel three things through [`NativeObject`]: how to take and drop
//! a strong reference, and how to free a block whose reclaim the kernel deferred. In return it
//! calls [`reclaim`](crate::reclaim()) at its own weak → 0 edge (or, without weak references,
//! after the value is dropped at strong → 0) and frees the block only when told to.
//!
//! The kernel's own objects ([`ObjectArc`](crate::ObjectArc), headed by [`Header`](crate::Header))
//! are one implementation of this contract; `docs/embedding.md` shows another.

use core::fmt;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

use crate::{BindingWord, Frontend};

/// The wrapper type of the frontend that `N`'s objects are tied to.
pub type WrapperOf<N> = <<N as NativeObject>::Frontend as Frontend>::Wrapper;

/// A native object of some object system (or the header at its start) that carries a binding
/// word by construction. The kernel only ever holds `NonNull<Self>` pointers to it.
///
/// # Safety
///
/// The kernel's memory safety (S1) and its no-leak property (S2) rest on these promises:
///
/// * [`binding`](Self::binding) and [`frontend`](Self::frontend) return the same word and
///   frontend for the block's whole life, and the word is used by nothing but the kernel.
/// * [`retain`](Self::retain) and [`release`](Self::release) are a strong count: the object and
///   its block stay alive while a strong reference exists.
/// * The block stays alive after the last strong reference too, until the object system's
///   reclaim edge: there it must call [`reclaim`](crate::reclaim()) exactly once, after its last
///   access to the value, and free the block itself only if that returns
///   [`Reclaimed::Free`](crate::Reclaimed::Free). Otherwise the kernel calls
///   [`free`](Self::free) exactly once, later, possibly on another thread.
/// * Nothing else frees the block, and no strong reference is made after the reclaim edge.
/// * `Self` holds nothing that is written while the block lives, except through atomics or
///   other interior mutability: make it the object's *header* and keep the value beside it. The
///   kernel makes shared references to `Self` where it holds no strong reference (a settle may
///   run while another thread drops the value), and a shared reference to memory another thread
///   writes is a data race (miri reports it).
pub unsafe trait NativeObject: Send + Sync + 'static {
    /// The runtime whose wrappers stand for these objects.
    type Frontend: Frontend;

    /// The object's binding word.
    fn binding(&self) -> &BindingWord<WrapperOf<Self>>;

    /// The frontend the object is tied to.
    fn frontend(&self) -> &Self::Frontend;

    /// Adds a strong reference.
    ///
    /// # Safety
    ///
    /// `this` is live and the caller owns a strong reference to it.
    unsafe fn retain(this: NonNull<Self>);

    /// Gives up a strong reference. At zero the object system drops the value and (at once, or
    /// when its last weak reference goes) reaches its reclaim edge.
    ///
    /// # Safety
    ///
    /// The caller owns a strong reference to `this` and gives it up.
    unsafe fn release(this: NonNull<Self>);

    /// Frees the block of an object whose [`reclaim`](crate::reclaim()) returned
    /// [`Reclaimed::Deferred`](crate::Reclaimed::Deferred): called once, by the settle of the
    /// wrapper that was dying meanwhile.
    ///
    /// # Safety
    ///
    /// Reclaim ran for `this` and deferred; nothing references the block any more.
    unsafe fn free(this: NonNull<Self>);
}

/// An owning strong reference to a native object of any object system: what a wrapper holds in
/// its [`HandleSlot`](crate::HandleSlot), and what lookups start from.
///
/// For the kernel's own objects it is [`ObjectRef`](crate::ObjectRef).
pub struct NativeRef<N: NativeObject> {
    object: NonNull<N>,
}

// SAFETY: the object system's objects are `Send + Sync` (the trait's bound) and their counts
// are safe to change from any thread (its contract).
unsafe impl<N: NativeObject> Send for NativeRef<N> {}
// SAFETY: as above.
unsafe impl<N: NativeObject> Sync for NativeRef<N> {}

impl<N: NativeObject> NativeRef<N> {
    /// Takes over a strong reference the caller owns (pair with [`into_raw`](Self::into_raw), or
    /// adopt one an object system handed out).
    ///
    /// # Safety
    ///
    /// The caller owns one strong reference to the live `object` and gives it to the result.
    #[inline]
    pub unsafe fn from_raw(object: NonNull<N>) -> Self {
        Self { object }
    }

    /// Gives up ownership without dropping: pair with [`from_raw`](Self::from_raw).
    #[inline]
    pub fn into_raw(self) -> NonNull<N> {
        ManuallyDrop::new(self).object
    }

    /// The object's address (stable for its whole life).
    #[inline]
    pub fn as_ptr(&self) -> NonNull<N> {
        self.object
    }

    /// The object.
    #[inline]
    pub fn object(&self) -> &N {
        // SAFETY: our strong reference keeps the object alive.
        unsafe { self.object.as_ref() }
    }
}

impl<N: NativeObject> Clone for NativeRef<N> {
    #[inline]
    fn clone(&self) -> Self {
        // SAFETY: we own a strong reference, so the object is live.
        unsafe { N::retain(self.object) };
        Self {
            object: self.object,
        }
    }
}

impl<N: NativeObject> Drop for NativeRef<N> {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own one strong reference and give it up.
        unsafe { N::release(self.object) }
    }
}

impl<N: NativeObject> PartialEq for NativeRef<N> {
    fn eq(&self, other: &Self) -> bool {
        self.object == other.object
    }
}
impl<N: NativeObject> Eq for NativeRef<N> {}

impl<N: NativeObject> fmt::Debug for NativeRef<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeRef")
            .field("object", &self.object)
            .field("binding", self.object().binding())
            .finish()
    }
}
