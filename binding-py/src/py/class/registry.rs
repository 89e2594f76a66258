//! The classes registered in this extension library, by Rust type and class name.

use core::any::TypeId;
use core::ptr::NonNull;
use std::sync::{Arc, RwLock};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::py::native::{Raised, no_class};

use super::Class;

/// Builds a `T` from the arguments of a Python-side construction (`Node(1, 2)`).
pub(super) type Constructor<T> =
    dyn Fn(&Bound<'_, PyTuple>, Option<&Bound<'_, PyDict>>) -> PyResult<T> + Send + Sync;

/// One registered class.
pub(super) struct Registered {
    pub(super) type_id: TypeId,
    /// The Python class name, as [`Class::class_name`] returns it.
    pub(super) name: &'static str,
    /// The class (a strong reference, kept for the process's life).
    pub(super) ty: NonNull<ffi::PyTypeObject>,
    /// The erased `Arc<Constructor<T>>`, if the class can be instantiated from Python.
    pub(super) constructor: Option<Arc<dyn core::any::Any + Send + Sync>>,
}

// SAFETY: the type pointer is an immortal-for-us strong reference, only used attached.
unsafe impl Send for Registered {}
// SAFETY: as above.
unsafe impl Sync for Registered {}

/// Every class registered in this extension.
pub(super) static REGISTRY: RwLock<Vec<Registered>> = RwLock::new(Vec::new());

pub(super) fn registered() -> std::sync::RwLockReadGuard<'static, Vec<Registered>> {
    REGISTRY.read().unwrap_or_else(|e| e.into_inner())
}

/// The class registered for `T` under `name` (for a fresh wrapper); `TypeError` when none is.
pub(super) fn registered_class<T: Class>(name: &str) -> Result<NonNull<ffi::PyTypeObject>, Raised> {
    if let Some(r) = registered()
        .iter()
        .find(|r| r.type_id == TypeId::of::<T>() && r.name == name)
    {
        return Ok(r.ty);
    }
    let rust = core::any::type_name::<T>();
    Err(no_class(&format!(
        "a {rust} whose class is '{name}': call tether_py::add_class::<{rust}>(module) in the \
         module's init (and declare '{name}' with ClassDef::subclass if it is a subclass)"
    )))
}
