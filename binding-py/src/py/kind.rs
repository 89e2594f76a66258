//! The native values of tether's own classes: `tether.Object` (fields), `Array`, `Function`.

use core::ffi::c_int;
use core::ptr::NonNull;

use pyo3::ffi;

use super::member::Member;
use super::native::{Handle, Native, NativeValue, Py, Raised, Value, Visit, no_class, release_all};

/// What a native object of tether's own classes (`tether.Object`, `Array`, `Function`) holds.
pub enum Kind {
    /// A `tether.Object`: one cell per declared field.
    Object(Box<[Member]>),
    /// A `tether.Array`: immutable elements.
    Array(Box<[Value]>),
    /// A `tether.Function`: the Python callable it calls back into.
    Function(Py),
}

impl NativeValue for Kind {
    fn registered_class(&self) -> Result<NonNull<ffi::PyTypeObject>, Raised> {
        // tether's own objects always record their class (see `new_kind`).
        Err(no_class("a tether object without a class"))
    }

    fn traverse_value(&self, visit: &Visit<'_>) -> c_int {
        match self {
            Kind::Object(fields) => {
                for f in fields.iter() {
                    f.visit(visit);
                }
            }
            Kind::Array(values) => {
                for v in values.iter() {
                    if let Value::Py(p) = v {
                        visit.call_ptr(p.as_ptr().as_ptr());
                    }
                }
            }
            Kind::Function(f) => visit.call_ptr(f.as_ptr().as_ptr()),
        }
        visit.result()
    }

    fn clear_value(&self) {
        // Array and Function are immutable: only fields can be cleared (their values are
        // dropped here, outside every lock; dropping may run arbitrary code).
        if let Kind::Object(fields) = self {
            for f in fields.iter() {
                // SAFETY: tp_clear runs attached.
                drop(unsafe { f.replace(None) });
            }
        }
    }
}

impl Drop for Kind {
    fn drop(&mut self) {
        // The native references this object holds are released iteratively (see `release_all`),
        // so a long chain of objects does not recurse once per link.
        let mut children = Vec::new();
        match self {
            Kind::Object(fields) => {
                for f in fields.iter_mut() {
                    if let Some(Value::Native(h)) = f.take_exclusive() {
                        children.push(h);
                    }
                }
            }
            Kind::Array(values) => {
                for v in core::mem::take(values).into_vec() {
                    match v {
                        Value::Native(h) => children.push(h),
                        Value::Py(p) => drop(p),
                    }
                }
            }
            Kind::Function(_) => {}
        }
        release_all(children);
    }
}

/// A new native object of one of tether's own classes, with wrapper type `class`.
pub fn new_kind(class: Py, kind: Kind) -> Handle {
    Native::new(kind, Some(class)).erase()
}
