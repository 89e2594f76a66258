//! [`Member`]: a property cell in a native value, with tether's fastest read path.

use pyo3::ffi;
use pyo3::prelude::*;

use super::class::Class;
use super::native::{Raised, Read, Value, Visit, raise, type_name, with_value};
use super::tied::Tied;

/// A property cell inside a native value, exposed with [`ClassDef::member`]: it holds any Python
/// object, and an object of one of this extension's tied classes as a *native* reference (so
/// storing a node keeps the node alive natively and reading it back returns the node itself,
/// `o.x = i; o.x is i`). Reading it from Python is tether's fastest path: with a GIL the stored
/// reference is looked up in place, without touching its reference count. The fields of
/// `tether.Object` are `Member`s.
///
/// Every access takes a [`Python`] token: with a GIL, the GIL is what serialises the cell (it
/// needs no lock); free-threaded, a reader clones and a writer swaps under a small spin lock
/// whose critical sections never block, allocate or run Python code (so a waiter only yields its
/// time slice, and the unlock is a plain store: one read-modify-write per access, not a mutex's
/// two). Values are dropped outside it.
///
/// [`ClassDef::member`]: super::class::ClassDef::member
pub struct Member {
    #[cfg(not(Py_GIL_DISABLED))]
    cell: core::cell::UnsafeCell<Option<Value>>,
    #[cfg(Py_GIL_DISABLED)]
    cell: spin::mutex::SpinMutex<Option<Value>, spin::relax::Yield>,
}

// SAFETY: GIL builds: shared access only happens with the GIL held (every method takes a
// `Python` token or `&mut self`), which serialises it. Free-threaded builds: the cell is a mutex.
#[cfg(not(Py_GIL_DISABLED))]
unsafe impl Sync for Member {}

impl Default for Member {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Member {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Member")
    }
}

impl Member {
    /// An unset member (reading it from Python is an `AttributeError`).
    pub const fn new() -> Self {
        Self {
            #[cfg(not(Py_GIL_DISABLED))]
            cell: core::cell::UnsafeCell::new(None),
            #[cfg(Py_GIL_DISABLED)]
            cell: spin::mutex::SpinMutex::new(None),
        }
    }

    /// A member holding `value` (as a native reference).
    pub fn with_tied<U: Class>(value: Tied<U>) -> Self {
        let m = Self::new();
        #[cfg(not(Py_GIL_DISABLED))]
        // SAFETY: nobody else can reach the new cell.
        unsafe {
            *m.cell.get() = Some(Value::Native(value.into_handle()));
        }
        #[cfg(Py_GIL_DISABLED)]
        {
            *m.cell.lock() = Some(Value::Native(value.into_handle()));
        }
        m
    }

    /// The value, if it is a `U` (a native object of class `U`).
    pub fn get_tied<U: Class>(&self, _py: Python<'_>) -> Option<Tied<U>> {
        // SAFETY: the token proves we are attached (so, with a GIL, we hold it).
        let handle = unsafe {
            self.with_value(|v| match v {
                Some(Value::Native(h)) => Some(h.clone()),
                _ => None,
            })
        }?;
        Tied::from_handle(handle)
    }

    /// Stores `value` (a native reference; `None` unsets the member).
    pub fn set_tied<U: Class>(&self, _py: Python<'_>, value: Option<Tied<U>>) {
        // SAFETY: attached (the token).
        let old = unsafe { self.replace(value.map(|t| Value::Native(t.into_handle()))) };
        drop(old); // outside the cell's lock: may run arbitrary code
    }

    /// The value as Python sees it (a tied object as its canonical wrapper); `None` if unset.
    pub fn get<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        // SAFETY: attached (the token); the cell is read through `read`, which serialises.
        let read = unsafe { self.read() };
        // SAFETY: attached.
        match unsafe { read.finish() } {
            // SAFETY: a new reference.
            Ok(Some(o)) => Ok(Some(unsafe { Bound::from_owned_ptr(py, o) })),
            Ok(None) => Ok(None),
            Err(Raised) => Err(PyErr::fetch(py)),
        }
    }

    /// Stores a Python object (`None`: unsets the member). A wrapper of this extension's tied
    /// classes is stored as a native reference (`RuntimeError` if it was moved from).
    pub fn set(&self, value: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let new = match value {
            Some(v) => {
                // SAFETY: `v` is live; attached (we hold a `Bound`).
                let native = unsafe { Value::from_py(v.as_ptr()) };
                Some(native.map_err(|Raised| PyErr::fetch(v.py()))?)
            }
            None => None,
        };
        // SAFETY: attached.
        let old = unsafe { self.replace(new) };
        drop(old);
        Ok(())
    }

    /// Visits the Python object the member holds, if any (from [`Class::traverse`]).
    pub fn traverse(&self, visit: &Visit<'_>) {
        self.visit(visit);
    }

    /// Unsets the member (from [`Class::clear`]).
    pub fn clear(&self, _py: Python<'_>) {
        // SAFETY: attached (the token).
        let old = unsafe { self.replace(None) };
        drop(old);
    }

    /// Runs `f` on the cell's content.
    ///
    /// # Safety
    ///
    /// Attached; `f` runs no Python code.
    unsafe fn with_value<R>(&self, f: impl FnOnce(Option<&Value>) -> R) -> R {
        #[cfg(not(Py_GIL_DISABLED))]
        // SAFETY: the GIL serialises every access to the cell (caller: attached).
        unsafe {
            f((*self.cell.get()).as_ref())
        }
        #[cfg(Py_GIL_DISABLED)]
        {
            let cell = self.cell.lock();
            f(cell.as_ref())
        }
    }

    /// Visits the Python object the field holds, if any (`tp_traverse`: the collector stopped
    /// the world, or holds the GIL, so nobody writes the cell meanwhile; free-threaded, a cell
    /// that is locked anyway is skipped, which can only keep garbage alive, never free a live
    /// object).
    pub(crate) fn visit(&self, visit: &Visit<'_>) {
        #[cfg(not(Py_GIL_DISABLED))]
        // SAFETY: the GIL serialises every access to the cell; nothing here runs Python code.
        let cell = unsafe { &*self.cell.get() };
        #[cfg(Py_GIL_DISABLED)]
        let Some(cell) = self.cell.try_lock() else {
            return;
        };
        if let Some(Value::Py(p)) = cell.as_ref() {
            visit.call_ptr(p.as_ptr().as_ptr());
        }
    }

    /// Takes the value out of a member nobody else can reach (the object is being dropped).
    pub(crate) fn take_exclusive(&mut self) -> Option<Value> {
        #[cfg(not(Py_GIL_DISABLED))]
        let v = self.cell.get_mut().take();
        #[cfg(Py_GIL_DISABLED)]
        let v = self.cell.get_mut().take();
        v
    }

    /// Reads the field: its Python object, or the native reference to wrap.
    ///
    /// # Safety
    ///
    /// The calling thread is attached, and serialised with `_move()` of the wrapper the field
    /// was reached through (see `with_native`).
    // Inline: the hit path of every member getter, which an extension crate instantiates (a
    // non-generic function of this crate is not inlined across crates without it: exprtree's
    // getters called it out of line on every read).
    #[inline]
    pub(crate) unsafe fn read(&self) -> Read {
        #[cfg(not(Py_GIL_DISABLED))]
        // SAFETY: the GIL serialises every access to the cell, and `Value::read` keeps it (see
        // there); attached (caller).
        unsafe {
            match &*self.cell.get() {
                None => Read::Unset,
                Some(v) => v.read(),
            }
        }
        #[cfg(Py_GIL_DISABLED)]
        {
            let cell = self.cell.lock();
            match cell.as_ref() {
                None => Read::Unset,
                // SAFETY: attached (caller).
                Some(v) => unsafe { v.read() },
            }
        }
    }

    /// Replaces the value, returning the previous one; the caller drops it (outside any lock:
    /// dropping may run arbitrary code).
    ///
    /// # Safety
    ///
    /// The calling thread is attached.
    pub(crate) unsafe fn replace(&self, value: Option<Value>) -> Option<Value> {
        #[cfg(not(Py_GIL_DISABLED))]
        // SAFETY: the GIL serialises every access; nothing here runs Python code.
        unsafe {
            core::ptr::replace(self.cell.get(), value)
        }
        #[cfg(Py_GIL_DISABLED)]
        {
            let mut cell = self.cell.lock();
            core::mem::replace(&mut *cell, value)
        }
    }
}

/// How assignments to a member are checked (before anything is stored): called with the
/// instance and the value.
pub(crate) type MemberCheck =
    Box<dyn Fn(&Bound<'_, PyAny>, &Bound<'_, PyAny>) -> PyResult<()> + Send + Sync>;

/// A member property's projection, names and check (leaked: the getset descriptor points to it
/// for the life of the class).
pub(crate) struct MemberAccess<T, P> {
    pub(crate) name: String,
    pub(crate) project: P,
    pub(crate) check: Option<MemberCheck>,
    pub(crate) _value: core::marker::PhantomData<fn(&T)>,
}

/// `getset` getter of a member: the canonical wrapper for a native reference (looked up in
/// place with a GIL), the object itself for a Python reference; `AttributeError` when unset (or
/// when the projection finds no member: a `tether.Object` whose class was changed to one with
/// more fields).
pub(crate) unsafe extern "C" fn member_get<T, P>(
    o: *mut ffi::PyObject,
    closure: *mut core::ffi::c_void,
) -> *mut ffi::PyObject
where
    T: 'static,
    P: Fn(&T) -> Option<&Member>,
{
    // SAFETY: the closure is this member's leaked access.
    let access = unsafe { &*closure.cast::<MemberAccess<T, P>>() };
    // SAFETY: CPython calls getters attached, on a live instance. The projection only borrows
    // (it runs no Python code), and `read` holds no borrow past a point where the GIL or the
    // critical section could be let go.
    let read = unsafe {
        with_value::<T, _>(o, |_, v| {
            (access.project)(v).map_or(Read::Unset, |m| m.read())
        })
    };
    // The hit (and a Python object) returns here; every other case is out of line, so the
    // getter stays small (no spills of registers that only the rare cases need).
    if let Ok(Read::Ready(v)) = read {
        return v;
    }
    // SAFETY: attached (CPython calls getters attached); `o` is the live instance.
    unsafe { member_get_rest(o, &access.name, read) }
}

/// [`member_get`] for every read but a ready object: a lookup to finish, an unset member, an
/// error.
///
/// # Safety
///
/// The calling thread is attached; `o` is a live instance.
#[cold]
#[inline(never)]
unsafe fn member_get_rest(
    o: *mut ffi::PyObject,
    name: &str,
    read: Result<Read, Raised>,
) -> *mut ffi::PyObject {
    // SAFETY: attached (caller).
    match read.and_then(|r| unsafe { r.finish() }) {
        Ok(Some(v)) => v,
        Ok(None) => {
            unset_error(o, name);
            core::ptr::null_mut()
        }
        Err(Raised) => core::ptr::null_mut(),
    }
}

/// The `AttributeError` for reading or deleting an unset member `name` of `o`.
fn unset_error(o: *mut ffi::PyObject, name: &str) -> Raised {
    raise(
        // SAFETY: reading an exception type object.
        unsafe { ffi::PyExc_AttributeError },
        &format!(
            "'{}' object has no attribute '{name}' (it is not set)",
            type_name(o)
        ),
    )
}

/// `getset` setter of a member: checks, converts (a tied object to a native reference), stores;
/// `del obj.name` unsets. The previous value is dropped outside every lock.
pub(crate) unsafe extern "C" fn member_set<T, P>(
    o: *mut ffi::PyObject,
    value: *mut ffi::PyObject,
    closure: *mut core::ffi::c_void,
) -> core::ffi::c_int
where
    T: 'static,
    P: Fn(&T) -> Option<&Member>,
{
    // SAFETY: the closure is this member's leaked access.
    let access = unsafe { &*closure.cast::<MemberAccess<T, P>>() };
    // SAFETY: CPython calls setters attached.
    let py = unsafe { Python::assume_attached() };
    let new = if value.is_null() {
        None
    } else {
        // SAFETY: `value` is live (borrowed from the caller).
        let v = unsafe { Bound::from_borrowed_ptr(py, value) };
        // SAFETY: `o` is live (the instance the setter was called on).
        let obj = unsafe { Bound::from_borrowed_ptr(py, o) };
        if let Some(Err(e)) = access.check.as_ref().map(|check| check(&obj, &v)) {
            e.restore(py);
            return -1;
        }
        // SAFETY: attached; `value` is live.
        match unsafe { Value::from_py(value) } {
            Ok(v) => Some(v),
            Err(Raised) => return -1,
        }
    };
    // SAFETY: attached; `o` is a live instance of the member's class.
    let old = unsafe {
        with_value::<T, _>(o, |_, v| {
            // (`replace` needs an attached thread: CPython calls setters attached.)
            (access.project)(v).map(|m| m.replace(new))
        })
    };
    match old {
        Ok(Some(None)) if value.is_null() => {
            // `del obj.name` of an unset member: as for a `__slots__` attribute.
            unset_error(o, &access.name);
            -1
        }
        Ok(Some(old)) => {
            drop(old); // outside every lock: may run arbitrary code
            0
        }
        Ok(None) => {
            raise(
                // SAFETY: reading an exception type object.
                unsafe { ffi::PyExc_AttributeError },
                &format!(
                    "'{}' object has no field '{}' (its native object was made for another class)",
                    type_name(o),
                    access.name
                ),
            );
            -1
        }
        Err(Raised) => -1,
    }
}

/// The `getset` definition of a member property (leaked, with its access).
pub(crate) fn member_getset<T, P>(
    access: MemberAccess<T, P>,
) -> (ffi::getter, ffi::setter, *mut core::ffi::c_void)
where
    T: 'static,
    P: Fn(&T) -> Option<&Member> + Send + Sync + 'static,
{
    let access = super::types::leak(access);
    (
        member_get::<T, P>,
        member_set::<T, P>,
        core::ptr::from_mut(access).cast(),
    )
}

/// A member's accessors for a [`field descriptor`](super::field::new_field_descriptor), which
/// owns (and frees) the access.
pub(crate) fn member_accessors<T, P>(access: MemberAccess<T, P>) -> super::field::Accessors
where
    T: 'static,
    P: Fn(&T) -> Option<&Member> + Send + Sync + 'static,
{
    /// # Safety
    /// `p` came from the `Box::into_raw` below and is freed once.
    unsafe fn free<T, P>(p: *mut core::ffi::c_void) {
        // SAFETY: caller.
        drop(unsafe { Box::from_raw(p.cast::<MemberAccess<T, P>>()) });
    }
    super::field::Accessors {
        get: member_get::<T, P>,
        set: member_set::<T, P>,
        closure: Box::into_raw(Box::new(access)).cast(),
        free: free::<T, P>,
    }
}

/// Gives a projection closure its higher-ranked signature
/// (`for<'a> Fn(&'a T) -> Option<&'a Member>`), which closure inference does not find on its own.
pub(crate) fn projection<T, F>(f: F) -> F
where
    F: Fn(&T) -> Option<&Member>,
{
    f
}
