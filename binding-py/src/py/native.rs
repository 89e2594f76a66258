//! The native side: native objects, their values, and moving values across the boundary.

use core::any::TypeId;
use core::ffi::{CStr, c_int, c_void};
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

use binding_core::{ObjectArc, ObjectRef};
use pyo3::ffi;

use super::capi::{CApi, CPYTHON, CPython};
use super::types;
use crate::adapter::{AllocFailed, PyRef, WrapperObj};
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

/// The `T`-independent head of every native object of this extension: what a wrapper needs to
/// know about a native object whose Rust type it does not know (its class, how to traverse it).
#[repr(C)]
pub struct Meta {
    /// What the native object's value is, and how to reach into it.
    pub(crate) vtable: &'static NativeVTable,
    /// The Python class its wrappers have, when it is not the class registered for the value
    /// (a Python subclass instantiated from Python, or a `tether.Object` class): a strong
    /// reference, so the class (and every cached block's type) outlives the object. Set at
    /// construction, never changed.
    pub(crate) class: Option<Py>,
}

/// Per-`T` operations on a native object reached through its [`Meta`].
pub struct NativeVTable {
    /// `TypeId::of::<T>()`: checked before any typed access.
    pub(crate) type_id: TypeId,
    /// The registered class of the value's fresh wrappers (see `Class::class_name`), or a
    /// raised `TypeError`.
    pub(crate) class: unsafe fn(NonNull<Meta>) -> Result<NonNull<ffi::PyTypeObject>, Raised>,
    /// Visits the Python objects the value holds (`tp_traverse`).
    pub(crate) traverse: unsafe fn(NonNull<Meta>, &Visit<'_>) -> c_int,
    /// Drops the Python objects the value holds (`tp_clear`).
    pub(crate) clear: unsafe fn(NonNull<Meta>),
}

/// A native object of this extension: the [`Meta`] head, then the value. `repr(C)`, so the
/// head sits at offset 0 of every `Native<T>`, and (the value being at most 8-aligned, checked
/// at compile time by [`Native::new`]) every `Native<T>` sits at one offset from the kernel's
/// header: [`meta_of`] reaches the head of any native object without knowing `T`.
#[repr(C)]
pub struct Native<T> {
    pub(crate) meta: Meta,
    pub(crate) value: T,
}

/// How the Python side sees a native value type: implemented for every [`Class`] and for
/// tether's own native types.
pub trait NativeValue: Send + Sync + Sized + 'static {
    /// The registered class of the value's fresh wrappers, or a raised `TypeError`.
    fn registered_class(&self) -> Result<NonNull<ffi::PyTypeObject>, Raised>;
    /// `tp_traverse` of a wrapper holding the only strong reference to this value.
    fn traverse_value(&self, visit: &Visit<'_>) -> c_int;
    /// `tp_clear` of such a wrapper.
    fn clear_value(&self);
}

impl<T: NativeValue> Native<T> {
    const VTABLE: NativeVTable = NativeVTable {
        type_id: TypeId::of::<T>(),
        class: Self::class,
        traverse: Self::traverse,
        clear: Self::clear,
    };

    /// A new native object holding `value`, whose wrappers have class `class` (or the class
    /// registered for the value when `None`).
    pub fn new(value: T, class: Option<Py>) -> ObjectArc<Native<T>, CPython> {
        const {
            assert!(
                core::mem::align_of::<Native<T>>() == core::mem::align_of::<Native<()>>(),
                "a tied value must be at most 8-aligned (box it)"
            );
        };
        // Never serialized: the matching decrement may run on a foreign thread.
        Stats::add(&CApi.state().stats.native_alive, 1, false);
        ObjectArc::new(
            Native {
                meta: Meta {
                    vtable: &Self::VTABLE,
                    class,
                },
                value,
            },
            CPYTHON,
        )
    }

    /// # Safety
    /// `meta` heads a live `Native<T>` and carries the provenance of the whole block (it comes
    /// from the kernel's header pointer, never from a `&Meta`, whose provenance covers only the
    /// head: writing to the value through it would be undefined behaviour).
    unsafe fn value_of<'a>(meta: NonNull<Meta>) -> &'a T {
        // SAFETY: `Native<T>` is repr(C) with the meta first (caller).
        unsafe { &(*meta.as_ptr().cast::<Native<T>>()).value }
    }

    unsafe fn class(meta: NonNull<Meta>) -> Result<NonNull<ffi::PyTypeObject>, Raised> {
        // SAFETY: the vtable is only ever installed on a `Native<T>`.
        unsafe { Self::value_of(meta) }.registered_class()
    }

    unsafe fn traverse(meta: NonNull<Meta>, visit: &Visit<'_>) -> c_int {
        // SAFETY: as above.
        unsafe { Self::value_of(meta) }.traverse_value(visit)
    }

    unsafe fn clear(meta: NonNull<Meta>) {
        // SAFETY: as above.
        unsafe { Self::value_of(meta) }.clear_value()
    }
}

impl Drop for Meta {
    fn drop(&mut self) {
        // Possibly on a foreign thread: the class reference and the value's fields are released
        // after this, each attaching as needed.
        Stats::add(&CApi.state().stats.native_alive, -1, false);
    }
}

/// The visitor a wrapper's `tp_traverse` hands to a native value: call it on every Python
/// object the value owns.
pub struct Visit<'a> {
    visit: ffi::visitproc,
    arg: *mut c_void,
    /// The first non-zero result of `visit` (the collector asks to stop).
    stop: core::cell::Cell<c_int>,
    _borrow: core::marker::PhantomData<&'a ()>,
}

impl Visit<'_> {
    /// # Safety
    /// `visit` and `arg` are what CPython passed to `tp_traverse`.
    pub(crate) unsafe fn new(visit: ffi::visitproc, arg: *mut c_void) -> Self {
        Self {
            visit,
            arg,
            stop: core::cell::Cell::new(0),
            _borrow: core::marker::PhantomData,
        }
    }

    /// Visits one Python object the value owns a reference to.
    pub(crate) fn call_ptr(&self, o: *mut ffi::PyObject) {
        if self.stop.get() != 0 || o.is_null() {
            return;
        }
        // SAFETY: CPython's visitor, called during tp_traverse on an object we own a reference
        // to (caller's promise through the safe wrappers below).
        let r = unsafe { (self.visit)(o, self.arg) };
        self.stop.set(r);
    }

    /// Visits a Python object the value owns (a `Py<U>` it holds).
    pub fn call<U>(&self, obj: &pyo3::Py<U>) {
        self.call_ptr(obj.as_ptr());
    }

    /// Visits an optional one.
    pub fn call_opt<U>(&self, obj: Option<&pyo3::Py<U>>) {
        if let Some(o) = obj {
            self.call(o);
        }
    }

    /// What `tp_traverse` returns.
    pub(crate) fn result(&self) -> c_int {
        self.stop.get()
    }
}

/// Where a `Native<T>` sits, from the kernel's header: right after the header (the kernel's
/// block is `repr(C)`: header, then the zero-sized global allocator, then the value), rounded up
/// to `Native<T>`'s alignment, which is the same for every `T` (see [`Native::new`]).
/// [`measure_layout`] checks it on a real object at module init.
const NATIVE_OFFSET: usize = core::mem::size_of::<binding_core::Header<CPython>>()
    .next_multiple_of(core::mem::align_of::<Native<()>>());

/// Checks [`NATIVE_OFFSET`] on a real native object (module init); `Err` names the mismatch,
/// which would mean the kernel's block layout changed under this adapter.
pub fn measure_layout() -> Result<(), String> {
    let probe = Native::new((), None);
    let value = core::ptr::from_ref::<Native<()>>(&probe).addr();
    let header = core::ptr::from_ref(probe.header()).addr();
    if value - header == NATIVE_OFFSET {
        Ok(())
    } else {
        Err(format!(
            "tether: a native value sits {} bytes after its header, not {NATIVE_OFFSET}: the \
             kernel's block layout changed",
            value - header
        ))
    }
}

impl NativeValue for () {
    fn registered_class(&self) -> Result<NonNull<ffi::PyTypeObject>, Raised> {
        Err(no_class("()"))
    }
    fn traverse_value(&self, _visit: &Visit<'_>) -> c_int {
        0
    }
    fn clear_value(&self) {}
}

/// The head of the native object behind a handle, as a pointer with the provenance of the whole
/// block (derived from the kernel's header pointer).
///
/// Every native object of this extension is an `ObjectArc<Native<T>, CPython>` for some `T`
/// (`Native::new` is the only way one is made, and handles only come from there), so the head
/// is at a fixed offset from the header.
#[inline]
pub fn meta_ptr(h: &Handle) -> NonNull<Meta> {
    // SAFETY: the header heads an `ObjectArc<Native<T>, CPython>` block whose `Native<T>` (and
    // so its meta, at offset 0) sits at `NATIVE_OFFSET`: the result is in bounds and non-null.
    unsafe { NonNull::new_unchecked(h.as_ptr().as_ptr().cast::<u8>().add(NATIVE_OFFSET).cast()) }
}

/// The head of the native object behind a handle (to read its vtable and class only: the value
/// is reached with [`value_of`], never through a `&Meta`).
#[inline]
pub fn meta_of(h: &Handle) -> &Meta {
    // SAFETY: our strong reference keeps the meta alive while `h` is borrowed.
    unsafe { meta_ptr(h).as_ref() }
}

/// The value behind a handle, if it is a `T`.
#[inline]
pub fn value_of<T: 'static>(h: &Handle) -> Option<&T> {
    let meta = meta_ptr(h);
    // SAFETY: the meta is live (our strong reference).
    if unsafe { meta.as_ref() }.vtable.type_id != TypeId::of::<T>() {
        return None;
    }
    // SAFETY: the type id says this is a `Native<T>` (repr(C), meta first); the pointer has the
    // block's provenance; the value lives while `h` does.
    Some(unsafe { &(*meta.as_ptr().cast::<Native<T>>()).value })
}

/// The `TypeError` for a native value that has no registered class.
pub fn no_class(what: &str) -> Raised {
    raise(
        // SAFETY: reading an exception type object.
        unsafe { ffi::PyExc_TypeError },
        &format!("no Python class is registered for {what}"),
    )
}

std::thread_local! {
    /// Native references whose release was deferred by a `Native` being dropped further up
    /// this thread's stack (the native side's trashcan).
    static DEFERRED: core::cell::RefCell<Vec<Handle>> = const { core::cell::RefCell::new(Vec::new()) };
    /// Whether this thread is draining `DEFERRED`.
    static DRAINING: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Releases `handles`: at once if no native drop is running further up this thread's stack,
/// else after it (the outermost drop drains the queue in a loop). Dropping a handle can drop a
/// `Native`, whose children land here again: the stack stays flat however long the chain.
pub fn release_all(handles: Vec<Handle>) {
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

/// Releases one native reference, iteratively as [`release_all`] when it may be the last one (a
/// `Tied<T>` field of a value dropped by another `Tied<T>`'s drop does not recurse).
pub fn release(handle: Handle) {
    // Relaxed: only a hint. Another reference seen means this drop cannot free the value (only
    // a concurrent drop elsewhere could make ours the last, which then simply recurses once).
    if handle.header().strong_count() > 1 {
        drop(handle);
    } else {
        release_all(vec![handle]);
    }
}

std::thread_local! {
    /// Python references whose release was deferred by a native drop further up this thread's
    /// stack (see `release_py`).
    static DEFERRED_PY: core::cell::RefCell<Vec<Py>> = const { core::cell::RefCell::new(Vec::new()) };
    /// Whether this thread is draining `DEFERRED_PY`.
    static DRAINING_PY: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Releases a Python reference a native value owned, iteratively: a `Function` whose callable
/// is another `Function` (and so on, 100,000 deep) is released in a loop, not by a recursion
/// through each wrapper's dealloc.
pub fn release_py(p: Py) {
    let queued = DEFERRED_PY.try_with(|d| d.borrow_mut().push(p));
    if let Err(_gone) = queued {
        // Thread teardown: the thread-locals are gone, and `p` was dropped with the closure.
        return;
    }
    if DRAINING_PY.try_with(|d| d.replace(true)).unwrap_or(true) {
        return;
    }
    loop {
        let next = DEFERRED_PY.with(|d| d.borrow_mut().pop());
        match next {
            Some(p) => drop(p),
            None => break,
        }
    }
    DRAINING_PY.with(|d| d.set(false));
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
    /// A hit (the word Active, its wrapper alive) is taken in place on every build. With a GIL,
    /// a native reference whose binding word is Active (with a wrapper whose count
    /// is not zero) or Inactive is looked up in place, through the borrowed reference: from
    /// those states the lookup is a hit or a revival, neither of which lets the GIL go (no back-off can happen: every holder of a
    /// binding word's lock, and every dealloc between its count reaching zero and its
    /// transition, holds the GIL and runs no Python code meanwhile), so nothing can replace or
    /// drop the stored reference during the lookup. Any other state (and every state but the
    /// hit on a free-threaded build) returns a new native reference for the caller to look up
    /// outside. This saves the hit path an atomic increment and decrement.
    ///
    /// # Safety
    ///
    /// The calling thread is attached and holds the storage's serialisation (the GIL, or the
    /// field's lock); with a GIL it does not let the GIL go until this returns.
    #[inline]
    pub unsafe fn read(&self) -> Read {
        match self {
            // SAFETY: attached (caller).
            Value::Py(p) => Read::Ready(unsafe { p.new_ref() }.as_ptr()),
            Value::Native(h) => {
                // The common case first, in place, on every build: the kernel's hit never
                // waits, allocates or runs Python code (one try-incref, and free-threaded one
                // try of the word's lock), so the storage's serialisation (the GIL, or the
                // field's lock) is never let go meanwhile and the borrowed reference stays
                // stored; it saves the hit a clone and a drop of the stored reference, two
                // read-modify-writes on the object's shared count. (test_trashcan's 3.14t
                // outcome, once blamed on this, changes from run to run with one binary.)
                // Inlined into the getter with the hit; everything else is out of line.
                if let Some(w) = h.hit() {
                    return Read::Ready(w.as_ptr());
                }
                // SAFETY: the caller's contract, passed on.
                unsafe { read_miss(h) }
            }
        }
    }
}

/// [`Value::read`] of a native reference whose hit missed.
///
/// # Safety
///
/// As [`Value::read`].
#[inline(never)]
unsafe fn read_miss(h: &Handle) -> Read {
    #[cfg(not(Py_GIL_DISABLED))]
    {
        use binding_core::State;
        let in_place = match h.header().binding().snapshot() {
            // A wrapper whose count reached zero but whose dealloc has not run yet
            // (CPython 3.14's trashcan defers deallocs on a deep C stack) would make
            // the lookup back off, letting the GIL go while the stored reference is
            // borrowed: it is looked up through a clone instead. The memory of an
            // Active wrapper is live (its dealloc moves the word first, with the
            // GIL, which we hold).
            // SAFETY: as just said.
            State::Active(w) => (unsafe { ffi::Py_REFCNT(w.as_ptr()) }) > 0,
            State::Inactive(_) => true,
            State::Detached | State::InTransit(_) => false,
        };
        if in_place {
            // SAFETY: attached; see above for why the borrow stays valid.
            return match unsafe { wrap(h) } {
                Ok(o) => Read::Ready(o),
                Err(e) => Read::Failed(e),
            };
        }
    }
    Read::Wrap(h.clone())
}

impl Read {
    /// Finishes the read outside the serialised section: a new reference, `None` if unset.
    ///
    /// # Safety
    ///
    /// The calling thread is attached.
    #[inline]
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

/// The canonical wrapper of a native object (a new reference): a hit, a revival in place, or a
/// fresh wrapper of the object's class (its recorded class, else the class registered for its
/// value; none registered is a `TypeError`).
///
/// # Safety
///
/// The calling thread is attached.
pub unsafe fn wrap(h: &Handle) -> Result<*mut ffi::PyObject, Raised> {
    let meta = meta_of(h);
    let class = || match &meta.class {
        Some(c) => Ok(c.as_ptr().cast::<ffi::PyTypeObject>()),
        // SAFETY: the vtable belongs to the value `meta` heads.
        None => unsafe { (meta.vtable.class)(meta_ptr(h)) }.map_err(|Raised| AllocFailed),
    };
    // SAFETY: attached (caller); the class is kept alive by the object or the registry.
    match unsafe { CPYTHON.wrap_with(h, class) } {
        Ok((o, _)) => Ok(o.as_ptr()),
        Err(_) => Err(Raised),
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
#[inline]
pub unsafe fn with_native<T>(
    o: *mut ffi::PyObject,
    f: impl FnOnce(&Handle, &Meta) -> T,
) -> Result<T, Raised> {
    // SAFETY: `o` is a live wrapper (caller).
    let w = unsafe { WrapperObj::<CApi>::of(NonNull::new_unchecked(o)) };
    let out = types::locked(o, || {
        let header = w.slot.header()?;
        // SAFETY: the slot owns a reference that cannot be released while we are serialised
        // with `_move()` (the only thing that empties a live wrapper's slot).
        let h = ManuallyDrop::new(unsafe { ObjectRef::from_raw(header) });
        Some(f(&h, meta_of(&h)))
    });
    out.ok_or_else(|| types::moved_error(o))
}

/// Runs `f` on the `T` value of the native object behind wrapper `o`, as [`with_native`];
/// `TypeError` if the object holds no `T` (which a class's own descriptors never see: every
/// instance of a class registered for `T` holds a `T`).
///
/// # Safety
///
/// As [`with_native`].
#[inline]
pub unsafe fn with_value<T: 'static, R>(
    o: *mut ffi::PyObject,
    f: impl FnOnce(&Handle, &T) -> R,
) -> Result<R, Raised> {
    // SAFETY: caller.
    let out = unsafe { with_native(o, |h, _| value_of::<T>(h).map(|v| f(h, v))) }?;
    out.ok_or_else(|| not_holding(o, core::any::type_name::<T>()))
}

/// The `TypeError` of [`with_value`] (out of line: the getters inline `with_value`).
#[cold]
#[inline(never)]
fn not_holding(o: *mut ffi::PyObject, value: &str) -> Raised {
    raise(
        // SAFETY: reading an exception type object.
        unsafe { ffi::PyExc_TypeError },
        &format!(
            "this {} does not hold a {value} native object",
            type_name(o)
        ),
    )
}
