//! [`Tied<T>`] and [`WeakTied<T>`]: Rust handles to native objects whose Python wrapper is
//! canonical, and their PyO3 conversions.

use core::fmt;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;
use core::ops::Deref;

use binding_core::WeakRef;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::{Borrowed, ffi};

use super::capi::CPython;
use super::class::Class;
use super::native::{Handle, Native, Raised, release, type_name, value_of, wrap};
use super::types::{handle_of, is_tied};

/// A strong reference to a native object holding a `T`: what native code holds, and what
/// crosses into Python as the object's one canonical wrapper.
///
/// * `Tied::new(value)` makes a native object (no Python involved; any thread).
/// * Handing it to Python (return it from a `#[pyfunction]`, a getter or a method, or call
///   [`IntoPyObject::into_pyobject`]) gives the canonical wrapper: the live one if there is one
///   (`a.x is a.x`), else the dead one revived in place (same `id()`), else a fresh one of the
///   class registered for the value ([`Class::class_name`]) or of the Python subclass it was
///   created as.
/// * Taking it as an argument (`fn f(node: Tied<Node>)`) borrows the native object behind the
///   wrapper: a wrong type is a `TypeError` naming `T`'s class, a moved-from wrapper a
///   `RuntimeError`.
///
/// `Tied<T>` derefs to `&T`: mutation goes through `T`'s own interior mutability (a `Mutex`, an
/// atomic, …), which is what makes `tree.left.value = 3` change the node `tree.left` is.
pub struct Tied<T: Class> {
    /// Invariant: the object is a `Native<T>`. Released in `Drop` (iteratively: a long chain of
    /// `Tied` values drops without recursing once per link).
    handle: ManuallyDrop<Handle>,
    _value: PhantomData<T>,
}

impl<T: Class> Tied<T> {
    /// A new native object holding `value` (its wrappers get the class registered for the
    /// value).
    pub fn new(value: T) -> Self {
        Self {
            handle: ManuallyDrop::new(Native::new(value, None).erase()),
            _value: PhantomData,
        }
    }

    /// A new native object whose wrappers have class `class` (a Python subclass of `T`'s class).
    pub(crate) fn with_class(value: T, class: Option<super::native::Py>) -> Self {
        Self {
            handle: ManuallyDrop::new(Native::new(value, class).erase()),
            _value: PhantomData,
        }
    }

    /// Wraps an erased handle, if its object holds a `T`.
    pub(crate) fn from_handle(handle: Handle) -> Option<Self> {
        value_of::<T>(&handle)?;
        Some(Self {
            handle: ManuallyDrop::new(handle),
            _value: PhantomData,
        })
    }

    /// Gives up the typed handle.
    pub(crate) fn into_handle(self) -> Handle {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped, so the handle is taken exactly once.
        unsafe { ManuallyDrop::take(&mut this.handle) }
    }

    /// A weak reference: does not keep the value alive (parent back-references in a tree).
    pub fn downgrade(this: &Self) -> WeakTied<T> {
        WeakTied {
            weak: this.handle.downgrade(),
            _value: PhantomData,
        }
    }

    /// Whether two handles refer to the same native object.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.handle == b.handle
    }

    /// The native object's address: stable for its whole life (what `tether.handle()` returns
    /// for tether's own objects).
    pub fn addr(this: &Self) -> usize {
        this.handle.as_ptr().as_ptr().addr()
    }

    /// Strong references to the native object (this one included).
    pub fn strong_count(this: &Self) -> usize {
        this.handle.header().strong_count()
    }

    /// The canonical wrapper (hit, revival or fresh).
    pub fn to_object<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: attached (we hold `py`); a new reference on success.
        match unsafe { wrap(&self.handle) } {
            // SAFETY: a new reference.
            Ok(o) => Ok(unsafe { Bound::from_owned_ptr(py, o) }),
            Err(Raised) => Err(PyErr::fetch(py)),
        }
    }
}

impl<T: Class> Deref for Tied<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        match value_of::<T>(&self.handle) {
            Some(v) => v,
            // The invariant (checked when made) says it is a `T`.
            None => unreachable!("a Tied<T> holds a T"),
        }
    }
}

impl<T: Class> Drop for Tied<T> {
    fn drop(&mut self) {
        // SAFETY: dropped once; the field is not used after this.
        release(unsafe { ManuallyDrop::take(&mut self.handle) });
    }
}

impl<T: Class> Clone for Tied<T> {
    fn clone(&self) -> Self {
        Self {
            handle: ManuallyDrop::new((*self.handle).clone()),
            _value: PhantomData,
        }
    }
}

impl<T: Class> PartialEq for Tied<T> {
    /// Identity: the same native object.
    fn eq(&self, other: &Self) -> bool {
        self.handle == other.handle
    }
}
impl<T: Class> Eq for Tied<T> {}

impl<T: Class> core::hash::Hash for Tied<T> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.handle.as_ptr().hash(state);
    }
}

impl<T: Class + fmt::Debug> fmt::Debug for Tied<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Tied").field(&**self).finish()
    }
}

/// A weak reference to a native object holding a `T`.
pub struct WeakTied<T: Class> {
    weak: WeakRef<CPython>,
    _value: PhantomData<T>,
}

impl<T: Class> WeakTied<T> {
    /// A strong reference, unless the native object is gone.
    pub fn upgrade(&self) -> Option<Tied<T>> {
        self.weak.upgrade().map(|handle| Tied {
            handle: ManuallyDrop::new(handle),
            _value: PhantomData,
        })
    }
}

impl<T: Class> Clone for WeakTied<T> {
    fn clone(&self) -> Self {
        Self {
            weak: self.weak.clone(),
            _value: PhantomData,
        }
    }
}

impl<T: Class> fmt::Debug for WeakTied<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WeakTied").field(&self.weak).finish()
    }
}

impl<'py, T: Class> IntoPyObject<'py> for Tied<T> {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.to_object(py)
    }
}

impl<'py, T: Class> IntoPyObject<'py> for &Tied<T> {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.to_object(py)
    }
}

/// The native object behind `obj`, if `obj` is a wrapper of this extension holding a `T`;
/// `TypeError` naming `T`'s class otherwise, `RuntimeError` if `obj` was moved from.
pub(crate) fn extract_tied<T: Class>(obj: &Bound<'_, PyAny>) -> PyResult<Tied<T>> {
    let py = obj.py();
    let o = obj.as_ptr();
    // SAFETY: `obj` is live.
    if unsafe { is_tied(ffi::Py_TYPE(o)) } {
        // SAFETY: `o` is a live wrapper; attached.
        let handle = unsafe { handle_of(o) }.map_err(|Raised| PyErr::fetch(py))?;
        if let Some(t) = Tied::from_handle(handle) {
            return Ok(t);
        }
    }
    Err(PyTypeError::new_err(format!(
        "expected {}.{}, not {}",
        T::MODULE,
        T::NAME,
        type_name(o)
    )))
}

impl<'a, 'py, T: Class> FromPyObject<'a, 'py> for Tied<T> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        extract_tied(&obj)
    }
}
