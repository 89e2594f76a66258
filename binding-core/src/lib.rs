//! The tying kernel: exactly one canonical frontend wrapper per reference-counted native object.
//!
//! Every native object ([`ObjectArc`]) carries a [`Header`] with strong and weak counts and a
//! [`BindingWord`]: one atomic pointer to the object's canonical wrapper plus three tag bits that
//! encode the states Detached, Active, Inactive and InTransit (and a spin-lock overlay). The
//! operations that move between those states are:
//!
//! * **lookup** ([`ObjectRef::into_wrapper`]): hit the live wrapper, revive the cached one in
//!   place, or publish a fresh one;
//! * **dealloc** ([`dealloc()`]) and **settle** ([`InTransit::settle`]): a wrapper dies; its memory
//!   is cached while the native object lives;
//! * **reclaim** ([`reclaim()`]): the native object's last reference is gone (run by the
//!   handles' `Drop` for the kernel's own objects, by the object system otherwise);
//! * **rebind** ([`bind`], [`move_binding`], [`detach`]).
//!
//! The kernel knows nothing of any language: it talks to the runtime through [`Frontend`] and
//! [`WrapperFactory`]. Nor does it need its own objects: any reference-counted object system
//! whose header holds a [`BindingWord`] implements [`NativeObject`] and gets the same protocol
//! over its own counts ([`ObjectArc`] is the kernel's own implementation). `docs/design.md` states the protocol, its memory orderings and the
//! properties (S1–S6, L1) that the loom, shuttle, proptest, miri and spec suites check.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "alloc")]
extern crate alloc as alloc_crate;
#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "alloc")]
use alloc_crate as alloc_impl;

pub mod sync;

mod alloc;
mod backoff;
mod dealloc;
#[cfg(feature = "teeth")]
pub mod flaw;
mod frontend;
mod header;
#[cfg(not(any(loom, feature = "shuttle")))] // their atomics are scheduler handles
mod layout;
mod lookup;
mod native;
mod object;
mod rebind;
mod reclaim;
mod slot;
mod word;

#[cfg(feature = "model")]
pub mod model;

pub use crate::alloc::{AllocError, Global, NativeAllocator};
pub use dealloc::{Caching, Dealloc, InTransit, Settled, dealloc};
pub use frontend::Frontend;
pub use header::Header;
pub use lookup::{Found, MISSES_BEFORE_TAKEOVER, WrapperFactory};
pub use native::{NativeObject, NativeRef, WrapperOf};
pub use object::{ObjectArc, ObjectRef, WeakArc, WeakRef};
pub use rebind::{Rebound, bind, detach, move_binding};
pub use reclaim::{Reclaimed, reclaim};
pub use slot::HandleSlot;
pub use word::{BindingWord, MIN_WRAPPER_ALIGN, State, StateKind};
