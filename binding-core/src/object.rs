//! Owning handles to native objects: typed [`ObjectArc`], erased [`ObjectRef`], weak [`WeakArc`].

use core::any::TypeId;
use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::Deref;
use core::ptr::{self, NonNull};

use core::alloc::Layout;

use crate::Frontend;
use crate::alloc::{AllocError, NativeAllocator};
use crate::header::{Header, VTable, release_strong, release_weak};
use crate::native::NativeRef;

/// The block behind every native object: header first, so a header pointer is a block pointer.
#[repr(C)]
struct NativeBox<T, F: Frontend, A> {
    header: Header<F>,
    alloc: ManuallyDrop<A>,
    value: ManuallyDrop<T>,
}

impl<T: Send + Sync + 'static, F: Frontend, A: NativeAllocator> NativeBox<T, F, A> {
    const VTABLE: VTable<F> = VTable {
        drop_value: Self::drop_value,
        free_block: Self::free_block,
        type_id: TypeId::of::<(T, A)>,
    };

    /// # Safety
    /// `header` heads a `NativeBox<T, F, A>` whose value is live; it is dropped once.
    unsafe fn drop_value(header: NonNull<Header<F>>) {
        let this = header.cast::<Self>();
        // SAFETY: the header is the first field of the repr(C) box; the value is dropped once.
        unsafe { ManuallyDrop::drop(&mut (*this.as_ptr()).value) }
    }

    /// # Safety
    /// `header` heads a `NativeBox<T, F, A>` whose value was dropped and which nobody references.
    unsafe fn free_block(header: NonNull<Header<F>>) {
        let this = header.cast::<Self>();
        // SAFETY: nobody else references the block; each field is taken or dropped once.
        unsafe {
            let alloc = ManuallyDrop::take(&mut (*this.as_ptr()).alloc);
            ptr::drop_in_place(&raw mut (*this.as_ptr()).header.frontend);
            alloc.deallocate(this.cast(), Layout::new::<Self>());
        }
    }
}

/// An owning, typed strong reference to a native object holding a `T`.
pub struct ObjectArc<T, F: Frontend, A: NativeAllocator = crate::alloc::Global> {
    ptr: NonNull<NativeBox<T, F, A>>,
    _owns: PhantomData<NativeBox<T, F, A>>,
}

// SAFETY: like `Arc<T>`: the value is shared across threads, so `T` must be `Send + Sync`; the
// header is all atomics and the frontend is `Send + Sync`.
unsafe impl<T: Send + Sync, F: Frontend, A: NativeAllocator> Send for ObjectArc<T, F, A> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync, F: Frontend, A: NativeAllocator> Sync for ObjectArc<T, F, A> {}

#[cfg(feature = "alloc")]
impl<T: Send + Sync + 'static, F: Frontend> ObjectArc<T, F> {
    /// Allocates a native object with the global allocator.
    pub fn new(value: T, frontend: F) -> Self {
        Self::new_in(value, frontend, crate::alloc::Global)
    }
}

impl<T: Send + Sync + 'static, F: Frontend, A: NativeAllocator> ObjectArc<T, F, A> {
    /// Allocates a native object with `alloc`; panics when it is out of memory.
    pub fn new_in(value: T, frontend: F, alloc: A) -> Self {
        match Self::try_new_in(value, frontend, alloc) {
            Ok(this) => this,
            Err(_) => panic!("{}", AllocError),
        }
    }

    /// Allocates a native object with `alloc`, giving the value back when out of memory.
    pub fn try_new_in(value: T, frontend: F, alloc: A) -> Result<Self, (T, AllocError)> {
        let layout = Layout::new::<NativeBox<T, F, A>>();
        let Some(block) = alloc.allocate(layout) else {
            return Err((value, AllocError));
        };
        let ptr = block.cast::<NativeBox<T, F, A>>();
        let boxed = NativeBox {
            header: Header::new(&NativeBox::<T, F, A>::VTABLE, frontend),
            alloc: ManuallyDrop::new(alloc),
            value: ManuallyDrop::new(value),
        };
        // SAFETY: `block` is fresh, valid for the layout and suitably aligned.
        unsafe { ptr.as_ptr().write(boxed) };
        Ok(Self {
            ptr,
            _owns: PhantomData,
        })
    }
}

impl<T, F: Frontend, A: NativeAllocator> ObjectArc<T, F, A> {
    /// The header.
    pub fn header(&self) -> &Header<F> {
        // SAFETY: our strong reference keeps the block alive; the header is its first field.
        unsafe { &self.ptr.as_ref().header }
    }

    /// Forgets the type: an erased strong reference to the same object.
    pub fn erase(self) -> ObjectRef<F> {
        let this = ManuallyDrop::new(self);
        // SAFETY: our strong reference moves into the erased handle.
        unsafe { ObjectRef::from_raw(this.ptr.cast()) }
    }

    /// A new weak reference.
    pub fn downgrade(&self) -> WeakArc<T, F, A> {
        self.header().acquire_weak();
        WeakArc {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }

    /// Whether two handles refer to the same native object.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.ptr == b.ptr
    }
}

impl<T, F: Frontend, A: NativeAllocator> Deref for ObjectArc<T, F, A> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the value lives while any strong reference does.
        unsafe { &self.ptr.as_ref().value }
    }
}

impl<T, F: Frontend, A: NativeAllocator> Clone for ObjectArc<T, F, A> {
    fn clone(&self) -> Self {
        self.header().acquire_strong();
        Self {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<T, F: Frontend, A: NativeAllocator> Drop for ObjectArc<T, F, A> {
    fn drop(&mut self) {
        // SAFETY: we own one strong reference and give it up.
        unsafe { release_strong(self.ptr.cast::<Header<F>>()) }
    }
}

impl<T: fmt::Debug, F: Frontend, A: NativeAllocator> fmt::Debug for ObjectArc<T, F, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectArc")
            .field("value", &**self)
            .field("binding", &self.header().binding)
            .finish()
    }
}

/// An owning strong reference to one of the kernel's own native objects, of unknown type: what
/// a wrapper holds.
pub type ObjectRef<F> = NativeRef<Header<F>>;

impl<F: Frontend> ObjectRef<F> {
    /// The header.
    #[inline]
    pub fn header(&self) -> &Header<F> {
        self.object()
    }

    /// The value, if it is a `T` allocated with an `A`.
    pub fn downcast_ref<T: 'static, A: NativeAllocator>(&self) -> Option<&T> {
        if (self.header().vtable.type_id)() != TypeId::of::<(T, A)>() {
            return None;
        }
        let block = self.as_ptr().cast::<NativeBox<T, F, A>>();
        // SAFETY: the block was made as a `NativeBox<T, F, A>` (its type id says so); the value
        // lives while our strong reference does.
        Some(unsafe { &block.as_ref().value })
    }
}

impl<F: Frontend> ObjectRef<F> {
    /// A new weak reference to the same object (what [`ObjectArc::downgrade`] is for a typed
    /// handle).
    pub fn downgrade(&self) -> WeakRef<F> {
        self.header().acquire_weak();
        WeakRef {
            header: self.as_ptr(),
        }
    }
}

/// A weak reference to a native object of unknown type: keeps the block (not the value) alive.
pub struct WeakRef<F: Frontend> {
    header: NonNull<Header<F>>,
}

// SAFETY: as `ObjectRef`.
unsafe impl<F: Frontend> Send for WeakRef<F> {}
// SAFETY: as `ObjectRef`.
unsafe impl<F: Frontend> Sync for WeakRef<F> {}

impl<F: Frontend> WeakRef<F> {
    /// A strong reference, unless the value was already dropped.
    pub fn upgrade(&self) -> Option<ObjectRef<F>> {
        // SAFETY: our weak reference keeps the block (and so the header) alive.
        let header = unsafe { self.header.as_ref() };
        // `then`, not `then_some`: the handle must only exist (and so be dropped) when the
        // upgrade succeeded.
        // SAFETY: the upgrade's strong reference moves into the handle.
        header
            .try_acquire_strong()
            .then(|| unsafe { ObjectRef::from_raw(self.header) })
    }

    /// Whether two weak references point to the same object.
    pub fn ptr_eq(&self, other: &Self) -> bool {
        self.header == other.header
    }
}

impl<F: Frontend> Clone for WeakRef<F> {
    fn clone(&self) -> Self {
        // SAFETY: our weak reference keeps the block alive.
        unsafe { self.header.as_ref() }.acquire_weak();
        Self {
            header: self.header,
        }
    }
}

impl<F: Frontend> Drop for WeakRef<F> {
    fn drop(&mut self) {
        // SAFETY: we own one weak reference and give it up.
        unsafe { release_weak(self.header) }
    }
}

impl<F: Frontend> fmt::Debug for WeakRef<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WeakRef").field(&self.header).finish()
    }
}

/// A weak reference: keeps the block (not the value) alive.
pub struct WeakArc<T, F: Frontend, A: NativeAllocator = crate::alloc::Global> {
    ptr: NonNull<NativeBox<T, F, A>>,
    _owns: PhantomData<NativeBox<T, F, A>>,
}

// SAFETY: as `ObjectArc`.
unsafe impl<T: Send + Sync, F: Frontend, A: NativeAllocator> Send for WeakArc<T, F, A> {}
// SAFETY: as `ObjectArc`.
unsafe impl<T: Send + Sync, F: Frontend, A: NativeAllocator> Sync for WeakArc<T, F, A> {}

impl<T, F: Frontend, A: NativeAllocator> WeakArc<T, F, A> {
    fn header(&self) -> &Header<F> {
        // SAFETY: our weak reference keeps the block alive.
        unsafe { &self.ptr.as_ref().header }
    }

    /// A strong reference, unless the value was already dropped.
    pub fn upgrade(&self) -> Option<ObjectArc<T, F, A>> {
        // `then`, not `then_some`: the handle must only exist (and so be dropped) when the
        // upgrade succeeded.
        self.header().try_acquire_strong().then(|| ObjectArc {
            ptr: self.ptr,
            _owns: PhantomData,
        })
    }
}

impl<T, F: Frontend, A: NativeAllocator> Clone for WeakArc<T, F, A> {
    fn clone(&self) -> Self {
        self.header().acquire_weak();
        Self {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<T, F: Frontend, A: NativeAllocator> Drop for WeakArc<T, F, A> {
    fn drop(&mut self) {
        // SAFETY: we own one weak reference and give it up.
        unsafe { release_weak(self.ptr.cast::<Header<F>>()) }
    }
}
