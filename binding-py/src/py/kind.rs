//! The native values of tether's own classes: `tether.Object` ([`Fields`]), `tether.Array`
//! ([`Items`]) and `tether.Function` ([`Target`]). Each is a [`Class`](super::class::Class)
//! registered with `add_class`, like any binding author's type (their `impl Class` live in
//! `object.rs`, `array.rs` and `function.rs`).

use super::member::Member;
use super::native::{Handle, Native, Py, Value, Visit, release_all, release_py};

/// The fields of a `tether.Object`: one member per declared field.
pub struct Fields(pub Box<[Member]>);

/// The elements of a `tether.Array` (immutable).
pub struct Items(pub Box<[Value]>);

/// The Python callable a `tether.Function` calls back into (released iteratively, see
/// `release_py`).
pub struct Target(pub core::mem::ManuallyDrop<Py>);

impl Drop for Target {
    fn drop(&mut self) {
        // SAFETY: dropped once; the field is not used after this.
        release_py(unsafe { core::mem::ManuallyDrop::take(&mut self.0) });
    }
}

impl Fields {
    /// Visits the Python objects the fields hold.
    pub fn visit(&self, visit: &Visit<'_>) {
        for f in self.0.iter() {
            f.visit(visit);
        }
    }

    /// Unsets every field (the values are dropped outside every lock).
    pub fn clear_all(&self) {
        for f in self.0.iter() {
            // SAFETY: tp_clear runs attached.
            drop(unsafe { f.replace(None) });
        }
    }
}

impl Items {
    /// Visits the Python objects among the elements.
    pub fn visit(&self, visit: &Visit<'_>) {
        for v in self.0.iter() {
            if let Value::Py(p) = v {
                visit.call_ptr(p.as_ptr().as_ptr());
            }
        }
    }
}

impl Target {
    /// Visits the callable.
    pub fn visit(&self, visit: &Visit<'_>) {
        visit.call_ptr(self.0.as_ptr().as_ptr());
    }
}

// The native references these objects hold are released iteratively (see `release_all`), so a
// long chain of objects does not recurse once per link.

impl Drop for Fields {
    fn drop(&mut self) {
        let children = self
            .0
            .iter_mut()
            .filter_map(|f| match f.take_exclusive() {
                Some(Value::Native(h)) => Some(h),
                _ => None,
            })
            .collect();
        release_all(children);
    }
}

impl Drop for Items {
    fn drop(&mut self) {
        let mut children = Vec::new();
        for v in core::mem::take(&mut self.0).into_vec() {
            match v {
                Value::Native(h) => children.push(h),
                Value::Py(p) => drop(p),
            }
        }
        release_all(children);
    }
}

/// A new native object of one of tether's own classes, whose wrappers have type `class`.
pub fn new_native<T: super::native::NativeValue>(class: Py, value: T) -> Handle {
    Native::new(value, Some(class)).erase()
}
