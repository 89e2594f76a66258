//! The tying kernel behind a C ABI.
//!
//! An object system written in C or C++ (its own objects, its own reference counts) puts a
//! [`TetherBinding`] in its objects' header, by construction, and describes its runtime's
//! wrappers and its own counts in a [`TetherRuntime`] table of callbacks. It then gets exactly
//! one canonical wrapper per object, revived at the same address while the object lives, from
//! `tether_lookup`, `tether_dealloc` + `tether_settle` and `tether_reclaim`: the same protocol,
//! checked by the same suites, as the Rust API (`binding_core::NativeObject`).
//!
//! `include/tether.h` is generated from this crate by cbindgen and checked for drift by
//! `cargo test -p binding-c`. The contract, threading rules and versioning: `docs/c-abi.md`.
//!
//! No panic crosses the ABI: misuse the library can detect returns a [`TetherStatus`], and a
//! broken invariant aborts the process with a message.

mod api;
#[doc(hidden)]
pub mod direct;
mod guard;
mod runtime;
mod types;

pub use api::*;
pub use types::*;
