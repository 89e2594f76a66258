//! The extension module `tether._core`: the real C-API runtime and the Python types.

mod array;
mod capi;
mod function;
mod module;
mod native;
mod object;
mod testing;
mod types;

pub use capi::{CApi, CPYTHON, CPython};
