//! The CPython adapter of tether: tied wrappers for CPython 3.11–3.14, GIL and free-threaded.
//!
//! * [`runtime`]: the C-API calls the adapter makes, behind a trait;
//! * [`adapter`]: the interpreter as a kernel frontend and the whole wrapper lifecycle, generic
//!   over the runtime;
//! * `py` (feature `python`): the real runtime, the extension module `tether._core`, and the
//!   **extension API** re-exported at the crate root: [`Class`], [`ClassDef`], [`add_class`],
//!   [`Tied`], [`WeakTied`], [`Visit`] (see `docs/extending.md`);
//! * `model` (feature `model`): a model of free-threaded CPython's reference counting, so the
//!   adapter's dealloc / free / lookup / reclaim paths run under loom and shuttle.
//!
//! `docs/python.md` describes the Python API and what it guarantees.

#[cfg(all(feature = "python", any(loom, feature = "shuttle")))]
compile_error!("the extension module is built without loom or shuttle");

pub mod adapter;
pub mod runtime;
pub mod state;

#[cfg(feature = "model")]
pub mod model;

#[cfg(all(feature = "python", not(any(loom, feature = "shuttle"))))]
mod py;

#[cfg(all(feature = "python", not(any(loom, feature = "shuttle"))))]
pub use py::{CApi, CPYTHON, CPython};

#[cfg(all(feature = "python", not(any(loom, feature = "shuttle"))))]
pub use py::{
    cell::FieldCell,
    class::{Args, Class, ClassDef, add_class, stats},
    member::Member,
    native::Visit,
    tied::{Tied, WeakTied},
};

/// `#[derive(Class)]`: implements [`Class`] from attributes (`#[tether(module = "…")]` on the
/// struct, `#[tether(get, set)]` on its fields); see `docs/extending.md`. The derive and the
/// trait share the name, as serde's `Serialize` does.
#[cfg(all(feature = "python", not(any(loom, feature = "shuttle"))))]
pub use binding_py_macros::Class;

/// Everything a binding crate needs: `use tether_py::prelude::*;`.
#[cfg(all(feature = "python", not(any(loom, feature = "shuttle"))))]
pub mod prelude {
    // `Class` is both the trait and its derive.
    pub use crate::{Class, ClassDef, FieldCell, Member, Tied, Visit, WeakTied, add_class};
}
