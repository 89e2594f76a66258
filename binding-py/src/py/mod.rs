//! The extension module `tether._core`: the real C-API runtime and the Python types.

mod array;
mod capi;
pub mod cell;
pub mod class;
mod field;
mod function;
mod kind;
pub mod member;
mod module;
pub mod native;
mod object;
mod shield;
mod testing;
pub mod tied;
mod types;

pub use capi::{CApi, CPYTHON, CPython};
