//! Layout facts, checked at compile time.
//!
//! For a zero-sized frontend (CPython's case) the header is four words: strong, weak, binding,
//! vtable. The binding word is one pointer, and the three tag bits fit below the wrapper
//! alignment the frontend promises (`MIN_WRAPPER_ALIGN`, enforced per frontend by a `const`
//! assertion in `BindingWord::new`).

use core::ptr::NonNull;

use static_assertions::{assert_eq_align, assert_eq_size, const_assert, const_assert_eq};

use crate::word::{IN_TRANSIT, INACTIVE, LOCKED, TAGS};
use crate::{BindingWord, Frontend, HandleSlot, Header};

/// A stand-in with CPython's shape: a zero-sized frontend and an 8-aligned 16-byte wrapper.
#[derive(Clone, Copy)]
struct ZeroSized;

#[repr(C, align(8))]
struct PyObjectShape {
    _refcnt: usize,
    _type: usize,
}

// SAFETY: never instantiated at run time; only its layout is used.
unsafe impl Frontend for ZeroSized {
    type Wrapper = PyObjectShape;
    type Attachment = ();
    unsafe fn try_incref(&self, _: NonNull<PyObjectShape>) -> bool {
        false
    }
    unsafe fn enable_try_incref(&self, _: NonNull<PyObjectShape>) {}
    unsafe fn untrack(&self, _: NonNull<PyObjectShape>) {}
    fn backoff(&self, _: u32) {}
    fn is_alive(&self) -> bool {
        false
    }
    fn attach(&self) -> Option<()> {
        None
    }
    unsafe fn free_cached(&self, _: NonNull<PyObjectShape>, _: &()) {}
}

// Three distinct tag bits, all below the promised wrapper alignment.
const_assert_eq!(TAGS, INACTIVE | IN_TRANSIT | LOCKED);
const_assert_eq!(INACTIVE & IN_TRANSIT, 0);
const_assert_eq!((INACTIVE | IN_TRANSIT) & LOCKED, 0);
const_assert!(TAGS < crate::MIN_WRAPPER_ALIGN);
const_assert!(crate::MIN_WRAPPER_ALIGN.is_power_of_two());
const_assert!(core::mem::align_of::<PyObjectShape>() >= crate::MIN_WRAPPER_ALIGN);

// The binding word and a wrapper's handle slot are one pointer each.
assert_eq_size!(BindingWord<PyObjectShape>, usize);
assert_eq_size!(HandleSlot<Header<ZeroSized>>, usize);
// The header is four words and word-aligned for a zero-sized frontend.
assert_eq_size!(Header<ZeroSized>, [usize; 4]);
assert_eq_align!(Header<ZeroSized>, usize);
