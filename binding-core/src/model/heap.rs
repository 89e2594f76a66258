//! The model's native allocator: quarantined blocks, double-free and leak detection.

use core::alloc::Layout;
use core::ptr::NonNull;
use std::sync::Mutex;
use std::sync::atomic::Ordering::Relaxed;
use std::vec::Vec;

use crate::NativeAllocator;

use super::{ModelFrontend, Own, System};

/// One native block: where it is, its layout, whether it was freed.
struct Block {
    ptr: NonNull<u8>,
    layout: Layout,
    freed: bool,
}

/// Registry of every native block the model allocated.
#[derive(Default)]
pub(crate) struct NativeHeap {
    blocks: Mutex<Vec<Block>>,
}

impl NativeHeap {
    /// Whether the block at `ptr` was allocated and not yet freed.
    pub(crate) fn is_live(&self, ptr: NonNull<u8>) -> bool {
        self.blocks
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.ptr == ptr && !b.freed)
    }

    /// Blocks not yet freed.
    pub(crate) fn live(&self) -> usize {
        self.blocks
            .lock()
            .unwrap()
            .iter()
            .filter(|b| !b.freed)
            .count()
    }
}

impl Drop for NativeHeap {
    fn drop(&mut self) {
        for b in self.blocks.get_mut().unwrap().drain(..) {
            if b.freed {
                // SAFETY: allocated below with this layout; quarantined until now; freed once.
                unsafe { std::alloc::dealloc(b.ptr.as_ptr(), b.layout) };
            }
            // Blocks never freed were reported by `assert_quiescent`; leak them rather than
            // free memory that a leaked handle may still use.
        }
    }
}

/// The model's allocator for native objects: records every block in the model's shadow heap.
pub struct ModelAlloc<const FLAW: u8 = 0, const GIL: bool = false, S: System = Own> {
    frontend: ModelFrontend<FLAW, GIL, S>,
}

impl<const FLAW: u8, const GIL: bool, S: System> ModelAlloc<FLAW, GIL, S> {
    /// An allocator recording into `frontend`'s shadow heap.
    pub fn new(frontend: ModelFrontend<FLAW, GIL, S>) -> Self {
        Self { frontend }
    }
}

// SAFETY: blocks come from the global allocator with the requested layout and are quarantined
// (really freed only when the model drops), so they stay valid until `deallocate` and after.
unsafe impl<const FLAW: u8, const GIL: bool, S: System> NativeAllocator
    for ModelAlloc<FLAW, GIL, S>
{
    fn allocate(&self, layout: Layout) -> Option<NonNull<u8>> {
        // SAFETY: native blocks always contain a header, so the layout is not zero-sized.
        let ptr = NonNull::new(unsafe { std::alloc::alloc(layout) })?;
        let heap = &self.frontend.natives;
        heap.blocks.lock().unwrap().push(Block {
            ptr,
            layout,
            freed: false,
        });
        self.frontend.stats.native_blocks.fetch_add(1, Relaxed);
        Some(ptr)
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        let heap = &self.frontend.natives;
        let mut blocks = heap.blocks.lock().unwrap();
        let block = blocks
            .iter_mut()
            .find(|b| b.ptr == ptr)
            .expect("S1 violated: freed a native block the model never allocated");
        assert!(
            !block.freed,
            "S1 violated: native block {ptr:p} freed twice (double free)"
        );
        assert_eq!(
            block.layout, layout,
            "native block freed with another layout"
        );
        block.freed = true;
        drop(blocks);
        if let Some(log) = &self.frontend.log {
            log.push(super::NativeEvent::Freed(ptr.as_ptr().addr()));
        }
        // Poison the quarantined block so a use after free reads garbage and trips an assertion.
        // Not under loom/shuttle: their atomics are handles into the scheduler's state.
        #[cfg(not(any(loom, feature = "shuttle")))]
        // SAFETY: the block is ours (quarantined) and `layout.size()` bytes long.
        unsafe {
            core::ptr::write_bytes(ptr.as_ptr(), 0xA5, layout.size())
        };
        self.frontend.stats.natives_freed.fetch_add(1, Relaxed);
    }
}
