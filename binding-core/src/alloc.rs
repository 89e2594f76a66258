//! Pluggable allocators for native objects.

use core::alloc::Layout;
use core::ptr::NonNull;

/// Allocates and frees native object blocks (header + allocator + value).
///
/// # Safety
///
/// `allocate` returns either `None` or a block valid for `layout` that stays valid until passed to
/// `deallocate` with the same layout.
pub unsafe trait NativeAllocator: Send + Sync + 'static {
    /// Allocates a block for `layout` (non-zero size), or `None` when out of memory.
    fn allocate(&self, layout: Layout) -> Option<NonNull<u8>>;

    /// Frees a block.
    ///
    /// # Safety
    ///
    /// `ptr` came from `allocate` on this allocator (or a clone of it) with `layout`, and is
    /// freed only once.
    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout);
}

/// The global Rust allocator. Without the `alloc` feature there is no global heap and every
/// allocation fails with [`AllocError`]: pass your own [`NativeAllocator`] instead.
#[derive(Clone, Copy, Debug, Default)]
pub struct Global;

#[cfg(feature = "alloc")]
// SAFETY: forwards to the global allocator, which upholds the contract.
unsafe impl NativeAllocator for Global {
    fn allocate(&self, layout: Layout) -> Option<NonNull<u8>> {
        debug_assert!(layout.size() > 0);
        // SAFETY: native blocks always contain a header, so the layout is never zero-sized.
        NonNull::new(unsafe { crate::alloc_impl::alloc::alloc(layout) })
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        // SAFETY: the caller passes a block from `allocate` with its layout, once.
        unsafe { crate::alloc_impl::alloc::dealloc(ptr.as_ptr(), layout) }
    }
}

/// Returned when an allocator has no memory for a native object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocError;

impl core::fmt::Display for AllocError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("out of memory allocating a native object")
    }
}

#[cfg(not(feature = "alloc"))]
// SAFETY: never hands out memory, so there is nothing to free.
unsafe impl NativeAllocator for Global {
    fn allocate(&self, _layout: Layout) -> Option<NonNull<u8>> {
        None
    }

    unsafe fn deallocate(&self, _ptr: NonNull<u8>, _layout: Layout) {
        unreachable!("the alloc-less Global never allocates")
    }
}
