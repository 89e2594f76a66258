//! [`FieldCell`]: how `#[derive(Class)]` reads and writes a `#[tether(get, set)]` field.

use std::sync::atomic::{
    AtomicBool, AtomicI8, AtomicI16, AtomicI32, AtomicI64, AtomicIsize, AtomicU8, AtomicU16,
    AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
use std::sync::{Mutex, RwLock};

/// A field with interior mutability that a Python property reads and writes by value.
///
/// `#[derive(Class)]` exposes a field marked `#[tether(get)]` as a read-only property whose
/// getter returns [`load`](Self::load), and a field marked `#[tether(get, set)]` as a read-write
/// property whose setter calls [`store`](Self::store) with the assigned value extracted as
/// [`Value`](Self::Value) (a wrong type is a `TypeError` naming the property). Fields of type
/// [`Member`](crate::Member) are exposed as members instead, and do not use this trait.
///
/// Implemented for `Mutex<V>` and `RwLock<V>` (`V: Clone`: `load` clones the value; a poisoned
/// lock is recovered, as the value is replaced whole) and for the atomics of `std` (`load` is
/// `Acquire`, `store` is `Release`). For a getter, `Value` must convert to Python
/// (`for<'p> IntoPyObject<'p>`); for a setter it must also be extracted from Python
/// (`for<'a> FromPyObjectOwned<'a> + 'static`), as for [`ClassDef::getter`] and
/// [`ClassDef::property`].
///
/// Your own cell types can implement it (a field that validates what it stores, one that
/// converts units, ...):
///
/// ```ignore
/// struct Percent(AtomicU8);
///
/// impl FieldCell for Percent {
///     type Value = u8;
///     fn load(&self) -> u8 {
///         self.0.load(Ordering::Acquire)
///     }
///     fn store(&self, v: u8) {
///         self.0.store(v.min(100), Ordering::Release)
///     }
/// }
/// ```
///
/// [`ClassDef::getter`]: crate::ClassDef::getter
/// [`ClassDef::property`]: crate::ClassDef::property
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot back a `#[tether(get)]` / `#[tether(get, set)]` property",
    label = "not a `FieldCell`",
    note = "put the value in a `Mutex`, a `RwLock` or an atomic, use a `Member`, or implement \
            `tether_py::FieldCell` for the field's type"
)]
pub trait FieldCell {
    /// The value a property reads and assigns.
    type Value;

    /// The current value (the property's getter).
    fn load(&self) -> Self::Value;

    /// Replaces the value (the property's setter).
    fn store(&self, v: Self::Value);
}

impl<V: Clone> FieldCell for Mutex<V> {
    type Value = V;

    fn load(&self) -> V {
        self.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn store(&self, v: V) {
        let old = {
            let mut guard = self.lock().unwrap_or_else(|e| e.into_inner());
            core::mem::replace(&mut *guard, v)
        };
        drop(old); // outside the lock: dropping may run arbitrary code (a Python object's)
    }
}

impl<V: Clone> FieldCell for RwLock<V> {
    type Value = V;

    fn load(&self) -> V {
        self.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn store(&self, v: V) {
        let old = {
            let mut guard = self.write().unwrap_or_else(|e| e.into_inner());
            core::mem::replace(&mut *guard, v)
        };
        drop(old); // outside the lock, as for `Mutex`
    }
}

macro_rules! atomic_cell {
    ($($atomic:ty => $value:ty),+ $(,)?) => {$(
        impl FieldCell for $atomic {
            type Value = $value;

            fn load(&self) -> $value {
                // Acquire: pairs with the Release of `store`, so a thread that reads the
                // property also sees what the writing thread did before assigning it (the
                // property publishes the value to other threads).
                <$atomic>::load(self, Ordering::Acquire)
            }

            fn store(&self, v: $value) {
                // Release: publishes the value, and everything this thread wrote before, to the
                // threads that read the property with `load`'s Acquire.
                <$atomic>::store(self, v, Ordering::Release)
            }
        }
    )+};
}

atomic_cell! {
    AtomicBool => bool,
    AtomicI8 => i8,
    AtomicI16 => i16,
    AtomicI32 => i32,
    AtomicI64 => i64,
    AtomicIsize => isize,
    AtomicU8 => u8,
    AtomicU16 => u16,
    AtomicU32 => u32,
    AtomicU64 => u64,
    AtomicUsize => usize,
}
