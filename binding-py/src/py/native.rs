//! The native side: native objects, their values, and moving values across the boundary.

use core::ffi::CStr;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use binding_core::{Global, ObjectArc, ObjectRef};
use pyo3::ffi;

use super::capi::{CApi, CPYTHON, CPython};
use super::types;
use crate::adapter::{PyRef, WrapperObj};
use crate::runtime::Runtime;
use crate::state::Stats;

/// A strong native reference, as a wrapper or a field holds it.
pub type Handle = ObjectRef<CPython>;

/// A Python reference owned by native code.
pub type Py = PyRef<CApi>;

/// "A Python exception is set": the C-API convention, carried through `Result`.
#[derive(Clone, Copy, Debug)]
pub struct Raised;

/// Sets a Python exception of type `exc` with `msg` and returns [`Raised`].
pub fn raise(exc: *mut ffi::PyObject, msg: &str) -> Raised {
    let text = std::ffi::CString::new(msg.replace('\0', "?")).unwrap_or_default();
    // SAFETY: `exc` is an exception type, `text` a valid C string; we are attached.
    unsafe { ffi::PyErr_SetString(exc, text.as_ptr()) };
    Raised
}

/// The class name of an object, for messages.
pub fn type_name(o: *mut ffi::PyObject) -> String {
    // SAFETY: `o` is live; `tp_name` is a valid C string for every type.
    unsafe { CStr::from_ptr((*ffi::Py_TYPE(o)).tp_name) }
        .to_string_lossy()
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A native object: its Python class (the type of its wrappers) and its contents.
pub struct Native {
    /// The wrapper type (a strong reference: it keeps the class, and so every cached block's
    /// type, alive while the object lives).
    pub class: Py,
    /// What it holds.
    pub kind: Kind,
}

/// What a native object holds.
pub enum Kind {
    /// A `tether.Object`: one cell per declared field.
    Object(Box<[Field]>),
    /// A `tether.Array`: immutable elements.
    Array(Box<[Value]>),
    /// A `tether.Function`: the Python callable it calls back into.
    Function(Py),
}

impl Native {
    /// A new native object of wrapper type `class`.
    pub fn new_object(class: Py, kind: Kind) -> Handle {
        // Never serialized: the matching decrement may run on a foreign thread.
        Stats::add(&CApi.state().stats.native_alive, 1, false);
        ObjectArc::new(Native { class, kind }, CPYTHON).erase()
    }

    /// The wrapper type.
    pub fn class_ptr(&self) -> NonNull<ffi::PyTypeObject> {
        self.class.as_ptr().cast()
    }
}

impl Drop for Native {
    fn drop(&mut self) {
        // Possibly on a foreign thread: the fields drop after this, each attaching as needed.
        Stats::add(&CApi.state().stats.native_alive, -1, false);
        // The native references this object holds are released iteratively (see `defer_drop`),
        // so a long chain of objects does not recurse once per link.
        let mut children = Vec::new();
        match &mut self.kind {
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
        defer_drop(children);
    }
}

std::thread_local! {
    /// Native references whose release was deferred by a `Native` being dropped further up
    /// this thread's stack (the native side's trashcan).
    static DEFERRED: core::cell::RefCell<Vec<Handle>> = const { core::cell::RefCell::new(Vec::new()) };
    /// Whether this thread is draining `DEFERRED`.
    static DRAINING: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Releases `handles`: at once if no `Native` drop is running further up this thread's stack,
/// else after it (the outermost drop drains the queue in a loop). Dropping a handle can drop a
/// `Native`, whose children land here again: the stack stays flat however long the chain.
fn defer_drop(handles: Vec<Handle>) {
    if handles.is_empty() {
        return;
    }
    // `try_with`: during thread teardown the thread-locals may be gone: drop recursively then.
    let queued = DEFERRED
        .try_with(|d| d.borrow_mut().extend(handles))
        .is_ok();
    if !queued || DRAINING.try_with(|d| d.replace(true)).unwrap_or(true) {
        return;
    }
    loop {
        let next = DEFERRED.with(|d| d.borrow_mut().pop());
        match next {
            Some(h) => drop(h),
            None => break,
        }
    }
    DRAINING.with(|d| d.set(false));
}

/// Where a native object's value sits, from its header (0 until [`measure_layout`] ran).
static NATIVE_OFFSET: AtomicUsize = AtomicUsize::new(0);

/// Measures, on a real native object, where the value of an `ObjectArc<Native, CPython>` sits
/// relative to its header (module init). The kernel's block is `repr(C)`, so the offset is one
/// constant for this monomorphisation; measuring it keeps this code independent of the
/// kernel's private layout.
pub fn measure_layout(class: Py) {
    let probe = ObjectArc::new(
        Native {
            class,
            kind: Kind::Array(Box::new([])),
        },
        CPYTHON,
    );
    let value = core::ptr::from_ref::<Native>(&probe).addr();
    let header = core::ptr::from_ref(probe.header()).addr();
    // Relaxed: written once at module init, before any native object reaches Python; every
    // later reader was ordered after it by the import (which happens-before any use).
    NATIVE_OFFSET.store(value - header, Relaxed);
    // `Native::new_object` was bypassed: balance the drop's decrement.
    Stats::add(&CApi.state().stats.native_alive, 1, false);
}

/// The native value behind a handle.
///
/// Every native object of this module is an `ObjectArc<Native, CPython>` (`Native::new_object`
/// is the only way one is made, and handles only come from there), so the value is at the
/// measured offset from the header: this skips the checked downcast's type-id call on the hot
/// path. Debug builds check it against the checked downcast.
#[inline]
pub fn native_of(h: &Handle) -> &Native {
    // Relaxed: see `measure_layout`.
    let offset = NATIVE_OFFSET.load(Relaxed);
    debug_assert!(offset != 0, "tether._core's layout was not measured");
    // SAFETY: the header heads an `ObjectArc<Native, CPython>` block whose value sits at
    // `offset` (see above); our strong reference keeps the value alive while `h` is borrowed.
    let native = unsafe {
        &*h.as_ptr()
            .as_ptr()
            .cast::<u8>()
            .add(offset)
            .cast::<Native>()
    };
    debug_assert!(core::ptr::eq(
        native,
        h.downcast_ref::<Native, Global>()
            .expect("every native object of tether._core holds a Native")
    ));
    native
}

/// A value stored natively: a native reference for a tied object, a Python reference otherwise.
pub enum Value {
    /// A `tether` object, held by its native object.
    Native(Handle),
    /// Any other Python object.
    Py(Py),
}

impl Value {
    /// The native form of a borrowed Python object.
    ///
    /// # Safety
    ///
    /// `o` is live and the calling thread is attached.
    pub unsafe fn from_py(o: *mut ffi::PyObject) -> Result<Value, Raised> {
        // SAFETY: `o` is live.
        if unsafe { types::is_tied(ffi::Py_TYPE(o)) } {
            // SAFETY: `o` is a wrapper.
            unsafe { types::handle_of(o) }.map(Value::Native)
        } else {
            // SAFETY: `o` is live; attached.
            Ok(Value::Py(unsafe {
                PyRef::from_borrowed(CApi, NonNull::new_unchecked(o))
            }))
        }
    }

    /// A new Python reference to the value (the canonical wrapper for a native object).
    ///
    /// # Safety
    ///
    /// The calling thread is attached.
    pub unsafe fn into_py(self) -> Result<*mut ffi::PyObject, Raised> {
        match self {
            // SAFETY: attached (caller).
            Value::Native(h) => unsafe { wrap(&h) },
            Value::Py(p) => Ok(p.into_ptr().as_ptr()),
        }
    }

    /// Another reference to the same value.
    ///
    /// # Safety
    ///
    /// The calling thread is attached.
    pub unsafe fn clone_value(&self) -> Value {
        match self {
            Value::Native(h) => Value::Native(h.clone()),
            // SAFETY: attached (caller).
            Value::Py(p) => Value::Py(unsafe { p.clone_ref() }),
        }
    }
}

/// A value read from native storage.
pub enum Read {
    /// A field that was never set (or was deleted).
    Unset,
    /// A new reference to the Python object to return.
    Ready(*mut ffi::PyObject),
    /// A native reference whose canonical wrapper the caller looks up, after leaving the
    /// serialised section (the lookup may allocate, run code and back off).
    Wrap(Handle),
    /// A lookup in place failed (exception set). Lookups run in place only with a GIL.
    #[cfg_attr(Py_GIL_DISABLED, allow(dead_code))]
    Failed(Raised),
}

impl Value {
    /// Reads the value for returning it to Python.
    ///
    /// With a GIL, a native reference whose binding word is Active or Inactive is looked up in
    /// place, through the borrowed reference: from those states the lookup is a hit or a
    /// revival, neither of which lets the GIL go (no back-off can happen: every holder of a
    /// binding word's lock, and every dealloc between its count reaching zero and its
    /// transition, holds the GIL and runs no Python code meanwhile), so nothing can replace or
    /// drop the stored reference during the lookup. Any other state (and every state on a
    /// free-threaded build) returns a new native reference for the caller to look up outside.
    /// This saves the hit path an atomic increment and decrement.
    ///
    /// # Safety
    ///
    /// The calling thread is attached and holds the storage's serialisation (the GIL, or the
    /// field's lock); with a GIL it does not let the GIL go until this returns.
    pub unsafe fn read(&self) -> Read {
        match self {
            // SAFETY: attached (caller).
            Value::Py(p) => Read::Ready(unsafe { p.new_ref() }.as_ptr()),
            Value::Native(h) => {
                #[cfg(not(Py_GIL_DISABLED))]
                {
                    use binding_core::StateKind::{Active, Inactive};
                    if matches!(h.header().binding_state(), Active | Inactive) {
                        // SAFETY: attached; see above for why the borrow stays valid.
                        return match unsafe { wrap(h) } {
                            Ok(o) => Read::Ready(o),
                            Err(e) => Read::Failed(e),
                        };
                    }
                }
                Read::Wrap(h.clone())
            }
        }
    }
}

impl Read {
    /// Finishes the read outside the serialised section: a new reference, `None` if unset.
    ///
    /// # Safety
    ///
    /// The calling thread is attached.
    pub unsafe fn finish(self) -> Result<Option<*mut ffi::PyObject>, Raised> {
        match self {
            Read::Unset => Ok(None),
            Read::Ready(o) => Ok(Some(o)),
            // SAFETY: attached (caller).
            Read::Wrap(h) => unsafe { wrap(&h) }.map(Some),
            Read::Failed(e) => Err(e),
        }
    }
}

/// The canonical wrapper of a native object (a new reference).
///
/// # Safety
///
/// The calling thread is attached.
pub unsafe fn wrap(h: &Handle) -> Result<*mut ffi::PyObject, Raised> {
    let ty = native_of(h).class_ptr();
    // SAFETY: attached (caller); `ty` is the object's wrapper type, kept alive by the object.
    match unsafe { CPYTHON.wrap(h, ty) } {
        Ok((o, _)) => Ok(o.as_ptr()),
        Err(_) => Err(Raised),
    }
}

/// One field of a `tether.Object`.
///
/// With a GIL, every access happens with the GIL held (or exclusively, when the object is
/// dropped), so the cell needs no lock. Free-threaded, a reader clones and a writer swaps under a
/// small mutex whose critical sections never block, allocate or run Python code.
pub struct Field {
    #[cfg(not(Py_GIL_DISABLED))]
    cell: core::cell::UnsafeCell<Option<Value>>,
    #[cfg(Py_GIL_DISABLED)]
    cell: std::sync::Mutex<Option<Value>>,
}

// SAFETY: GIL builds: shared access only happens with the GIL held (see above), which
// serialises it. Free-threaded builds: the cell is a mutex.
#[cfg(not(Py_GIL_DISABLED))]
unsafe impl Sync for Field {}

impl Field {
    /// An unset field.
    pub fn empty() -> Self {
        Self {
            #[cfg(not(Py_GIL_DISABLED))]
            cell: core::cell::UnsafeCell::new(None),
            #[cfg(Py_GIL_DISABLED)]
            cell: std::sync::Mutex::new(None),
        }
    }

    /// Takes the value out of a field nobody else can reach (the object is being dropped).
    pub fn take_exclusive(&mut self) -> Option<Value> {
        #[cfg(not(Py_GIL_DISABLED))]
        let v = self.cell.get_mut().take();
        #[cfg(Py_GIL_DISABLED)]
        let v = self
            .cell
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        v
    }

    /// Reads the field: its Python object, or the native reference to wrap.
    ///
    /// # Safety
    ///
    /// The calling thread is attached, and serialised with `_move()` of the wrapper the field
    /// was reached through (see [`with_native`]).
    pub unsafe fn read(&self) -> Read {
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
            let cell = self.cell.lock().unwrap_or_else(|e| e.into_inner());
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
    pub unsafe fn replace(&self, value: Option<Value>) -> Option<Value> {
        #[cfg(not(Py_GIL_DISABLED))]
        // SAFETY: the GIL serialises every access; nothing here runs Python code.
        unsafe {
            core::ptr::replace(self.cell.get(), value)
        }
        #[cfg(Py_GIL_DISABLED)]
        {
            let mut cell = self.cell.lock().unwrap_or_else(|e| e.into_inner());
            core::mem::replace(&mut *cell, value)
        }
    }
}

/// Runs `f` on the native object behind wrapper `o`, serialised with `_move()` of `o`.
///
/// `f` must not detach the thread state, block or run Python code: on GIL builds the GIL is
/// what keeps `o`'s handle in place, free-threaded the critical section on `o`.
///
/// # Safety
///
/// `o` is a live wrapper and the calling thread is attached.
pub unsafe fn with_native<T>(
    o: *mut ffi::PyObject,
    f: impl FnOnce(&Handle, &Native) -> T,
) -> Result<T, Raised> {
    // SAFETY: `o` is a live wrapper (caller).
    let w = unsafe { WrapperObj::<CApi>::of(NonNull::new_unchecked(o)) };
    let out = types::locked(o, || {
        let header = w.slot.header()?;
        // SAFETY: the slot owns a reference that cannot be released while we are serialised
        // with `_move()` (the only thing that empties a live wrapper's slot).
        let h = ManuallyDrop::new(unsafe { ObjectRef::from_raw(header) });
        Some(f(&h, native_of(&h)))
    });
    out.ok_or_else(|| types::moved_error(o))
}
