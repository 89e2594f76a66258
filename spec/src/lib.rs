//! An independent formal model of tether's binding-word protocol (`docs/design.md`), checked
//! exhaustively with [stateright](https://docs.rs/stateright).
//!
//! The model is written from the design and the protocol brief, not from `binding-core`, and
//! does not depend on it. One action is one atomic step of one thread: a load, store or
//! compare-exchange of a binding word, one reference-count operation, one free. See
//! `docs/spec.md` for what is modelled, what is abstracted and why that is sound.
//!
//! * [`state`], [`word`], [`refcount`]: the state (free-threaded CPython's reference count
//!   included).
//! * [`steps`]: the transition relation, one submodule per operation.
//! * [`properties`]: S1–S6, L1 and the model's bookkeeping, as state predicates.
//! * [`config`]: bounds, options and the historical bugs the model can re-introduce.
//! * [`model`], [`check`], [`scenarios`]: the stateright model, the runs, the named bounds.
//! * [`explore`], [`diagram`]: an edge-recording walk (livelock check, state diagram).
//! * [`sequential`]: the sequential semantics (one operation at a time, run to completion) and
//!   the shared operation vocabulary of the conformance check.
//! * `conformance` (feature `conformance`, the only part that depends on `binding-core`): the
//!   driver that runs one operation sequence through the kernel and through [`sequential`] and
//!   reports the first divergence.

pub mod check;
pub mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod diagram;
pub mod explore;
pub mod model;
pub mod properties;
pub mod refcount;
pub mod scenarios;
pub mod sequential;
pub mod state;
pub mod steps;
pub mod word;

pub use config::{Bug, Bugs, Config, ObjSpec};
pub use model::TetherModel;
