//! `tether.Object`: native-backed classes with declared fields.
//!
//! The C base `ObjectBase` is made with `PyType_FromSpec`; `tether.Object` and every subclass
//! are made by the Python metaclass (`tether/__init__.py`), which forces `__slots__ = ()` and
//! calls [`register_class`]: that installs the wrapper lifecycle slots on the new class and one
//! raw getset descriptor per new field (the hot path: no PyO3 trampoline).

use core::ffi::{c_int, c_void};
use core::ptr::{self, NonNull};
use std::sync::{Arc, OnceLock};

use pyo3::exceptions::PyTypeError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple, PyType};
use pyo3::{PyTraverseError, PyVisit};

use super::capi::{CApi, CPYTHON};
use super::class::{Class, ClassDef};
use super::field::{Accessors, new_field_descriptor};
use super::kind::{Fields, INLINE_FIELDS, new_native};
use super::member::{MemberAccess, MemberCheck, member_accessors, projection};
use super::native::{Raised, Value, Visit, raise, type_name, with_value};
use super::types::{self, OBJECT_BASE};
use crate::adapter::PyRef;

/// How assignments to a field are type-checked.
enum Check {
    /// Any value.
    Any,
    /// `isinstance(value, types)`, or `None` when nullable; `expected` names the types.
    Types(Spec),
    /// A forward reference, resolved on first use by calling the resolver (see
    /// `tether/__init__.py`): it returns a `(types, nullable, expected)` tuple, `False` for
    /// "no check", or `None` for "not resolvable yet" (checked again next time).
    Lazy(Py<PyAny>, OnceLock<Option<Spec>>),
}

impl Check {
    /// Visits the Python objects the check holds (they may refer back to the class).
    fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        match self {
            Check::Any => Ok(()),
            Check::Types(spec) => visit.call(&spec.types),
            Check::Lazy(resolver, resolved) => {
                visit.call(resolver)?;
                match resolved.get() {
                    Some(Some(spec)) => visit.call(&spec.types),
                    _ => Ok(()),
                }
            }
        }
    }
}

struct Spec {
    types: Py<PyAny>,
    nullable: bool,
    expected: String,
}

/// One field: its index in the native object and its names. Shared by the field's descriptor
/// (its check) and the schemas of the class and its subclasses; freed with the last of them. It
/// holds no Python object (the check lives in the class's schema, where the collector sees it),
/// so a class is freed like any Python class.
pub struct FieldDef {
    index: usize,
    name: String,
    owner: String,
}

/// A class's fields in construction order (inherited first), stored on the class as
/// `__tether_schema__`.
#[pyclass(frozen, module = "tether._core")]
pub struct Schema {
    ty: usize,
    fields: Vec<Entry>,
}

struct Entry {
    name: Py<PyString>,
    key: String,
    default: Option<Py<PyAny>>,
    def: Arc<FieldDef>,
    check: Arc<Check>,
}

#[pymethods]
impl Schema {
    /// The collector's view: defaults and checks may refer back to the class (a forward
    /// reference's resolver does), which would otherwise keep every such class alive.
    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        for e in &self.fields {
            visit.call(&e.name)?;
            if let Some(d) = &e.default {
                visit.call(d)?;
            }
            e.check.traverse(&visit)?;
        }
        Ok(())
    }

    /// The field names, in order.
    fn names<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.fields.iter().map(|e| e.name.bind(py)))
    }
}

/// The schema registered for exactly `ty` (not inherited from a base), or `TypeError`.
fn schema_of<'py>(py: Python<'py>, ty: *mut ffi::PyTypeObject) -> PyResult<Bound<'py, Schema>> {
    // SAFETY: `ty` is a live type; we are attached.
    let ty = unsafe { Bound::from_borrowed_ptr(py, ty.cast()) };
    let schema = ty
        .getattr(pyo3::intern!(py, "__tether_schema__"))
        .ok()
        .and_then(|s| s.cast_into::<Schema>().ok());
    match schema {
        Some(s) if s.get().ty == ty.as_ptr() as usize => Ok(s),
        _ => Err(PyTypeError::new_err(format!(
            "{} is not a registered tether class (subclass tether.Object)",
            ty.str()?
        ))),
    }
}

/// Applies a field's type check to `value`.
///
/// # Safety
///
/// `value` is live; attached.
unsafe fn check(def: &FieldDef, rule: &Check, value: *mut ffi::PyObject) -> Result<(), Raised> {
    let resolved;
    let spec = match rule {
        Check::Any => return Ok(()),
        Check::Types(spec) => spec,
        Check::Lazy(resolver, cell) => match cell.get() {
            Some(Some(spec)) => spec,
            Some(None) => return Ok(()),
            // SAFETY: attached (caller).
            None => match unsafe { resolve(resolver) }? {
                Resolution::Later => return Ok(()),
                Resolution::Done(spec) => {
                    // Racing resolvers compute the same answer; the first one is kept.
                    let _ = cell.set(spec);
                    resolved = cell.get().and_then(Option::as_ref);
                    match resolved {
                        Some(spec) => spec,
                        None => return Ok(()),
                    }
                }
            },
        },
    };
    // SAFETY: attached; `value` is live.
    unsafe {
        if value == ffi::Py_None() {
            if spec.nullable {
                return Ok(());
            }
        } else {
            match ffi::PyObject_IsInstance(value, spec.types.as_ptr()) {
                1 => return Ok(()),
                0 => {}
                _ => return Err(Raised),
            }
        }
    }
    Err(raise(
        // SAFETY: reading an exception type object.
        unsafe { ffi::PyExc_TypeError },
        &format!(
            "{}.{} must be {}, not {}",
            def.owner,
            def.name,
            spec.expected,
            type_name(value)
        ),
    ))
}

enum Resolution {
    Later,
    Done(Option<Spec>),
}

/// Calls a lazy field check's resolver.
///
/// # Safety
///
/// Attached.
unsafe fn resolve(resolver: &Py<PyAny>) -> Result<Resolution, Raised> {
    // SAFETY: attached (caller).
    let py = unsafe { Python::assume_attached() };
    let f = resolver.bind(py);
    let out = f.call0().map_err(|e| {
        e.restore(py);
        Raised
    })?;
    if out.is_none() {
        return Ok(Resolution::Later);
    }
    spec_from(&out).map(Resolution::Done).map_err(|e| {
        e.restore(py);
        Raised
    })
}

/// `False` → no check; `(types, nullable, expected)` → a check.
fn spec_from(out: &Bound<'_, PyAny>) -> PyResult<Option<Spec>> {
    if out.is_instance_of::<pyo3::types::PyBool>() && !out.is_truthy()? {
        return Ok(None);
    }
    let (types, nullable, expected): (Bound<'_, PyAny>, bool, String) = out.extract()?;
    Ok(Some(Spec {
        types: types.unbind(),
        nullable,
        expected,
    }))
}

/// Stores `value` (already checked) into field `def` of wrapper `o`.
///
/// # Safety
///
/// `o` is a live instance of the declaring class; attached.
unsafe fn store(o: *mut ffi::PyObject, def: &FieldDef, value: Option<Value>) -> Result<(), Raised> {
    // SAFETY: caller.
    let old = unsafe {
        with_value(o, |_, fields: &Fields| {
            // (`replace` needs an attached thread: the caller is.)
            fields.get(def.index).map(|f| f.replace(value))
        })
    }?;
    match old {
        Some(old) => {
            // Dropped here, outside every lock: may run arbitrary code.
            drop(old);
            Ok(())
        }
        None => Err(raise(
            // SAFETY: reading an exception type object.
            unsafe { ffi::PyExc_AttributeError },
            &format!("'{}' object has no field '{}'", type_name(o), def.name),
        )),
    }
}

/// Checks `value` for field `def` of instance `obj`, with the check its class's schema holds.
fn check_field(def: &FieldDef, obj: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
    let py = obj.py();
    let schema = obj
        .get_type()
        .getattr(pyo3::intern!(py, "__tether_schema__"))?
        .cast_into::<Schema>()?;
    let entry = schema.get().fields.get(def.index);
    match entry {
        Some(e) if core::ptr::eq(&*e.def, def) => {
            // SAFETY: `value` is live; attached (we hold a `Bound`).
            let checked = unsafe { check(def, &e.check, value.as_ptr()) };
            checked.map_err(|Raised| PyErr::fetch(py))
        }
        _ => Err(PyTypeError::new_err(format!(
            "{}.{} is not a field of {} (its class was changed)",
            def.owner,
            def.name,
            obj.get_type().name()?
        ))),
    }
}

/// The member accessors of field `index` of a `tether.Object` class: for an inline field, a
/// getter and setter of their own with the index a constant (see [`Fields::inline_field`]).
fn field_accessors(index: usize, name: String, check: MemberCheck) -> Accessors {
    fn with<P>(name: String, check: MemberCheck, project: P) -> Accessors
    where
        P: Fn(&Fields) -> Option<&super::member::Member> + Send + Sync + 'static,
    {
        member_accessors(MemberAccess {
            name,
            project,
            check: Some(check),
            _value: core::marker::PhantomData,
        })
    }
    const _: () = assert!(INLINE_FIELDS == 4, "one arm per inline field below");
    match index {
        0 => with(name, check, projection(|f: &Fields| f.inline_field::<0>())),
        1 => with(name, check, projection(|f: &Fields| f.inline_field::<1>())),
        2 => with(name, check, projection(|f: &Fields| f.inline_field::<2>())),
        3 => with(name, check, projection(|f: &Fields| f.inline_field::<3>())),
        _ => with(name, check, projection(move |f: &Fields| f.get(index))),
    }
}

/// `ObjectBase.__new__`: a fresh native object with every field unset, bound to a fresh wrapper.
/// Arguments are left to `__init__`.
unsafe extern "C" fn object_new(
    ty: *mut ffi::PyTypeObject,
    _args: *mut ffi::PyObject,
    _kwds: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    // SAFETY: attached (tp_new); `ty` is live.
    if unsafe { types::refuse_abstract(ty) }.is_err() {
        return ptr::null_mut();
    }
    // SAFETY: attached (tp_new).
    let py = unsafe { Python::assume_attached() };
    let schema = match schema_of(py, ty) {
        Ok(s) => s,
        Err(e) => {
            e.restore(py);
            return ptr::null_mut();
        }
    };
    // SAFETY: a registered class has our slots (register_class patched them).
    debug_assert!(unsafe { types::is_tied(ty) });
    let fields = Fields::new(schema.get().fields.len());
    // SAFETY: `ty` is live; attached.
    let class = unsafe { PyRef::from_borrowed(CApi, NonNull::new_unchecked(ty.cast())) };
    let handle = new_native(class, fields);
    // SAFETY: attached; `ty` is a wrapper type kept alive by the native object.
    match unsafe { CPYTHON.construct(NonNull::new_unchecked(ty), handle) } {
        Ok(o) => o.as_ptr(),
        Err(_) => ptr::null_mut(),
    }
}

/// `ObjectBase.__init__(*fields, **fields)`.
unsafe extern "C" fn object_init(
    o: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    kwds: *mut ffi::PyObject,
) -> c_int {
    // SAFETY: attached (tp_init).
    let py = unsafe { Python::assume_attached() };
    // SAFETY: `o` live, `args` a tuple, `kwds` a dict or null.
    match unsafe { init_fields(py, o, args, kwds) } {
        Ok(()) => 0,
        Err(e) => {
            e.restore(py);
            -1
        }
    }
}

unsafe fn init_fields(
    py: Python<'_>,
    o: *mut ffi::PyObject,
    args: *mut ffi::PyObject,
    kwds: *mut ffi::PyObject,
) -> PyResult<()> {
    // SAFETY: `o` is live.
    let schema = schema_of(py, unsafe { ffi::Py_TYPE(o) })?;
    let schema = schema.get();
    let class = type_name(o);
    // SAFETY: CPython passes a tuple and a dict (or null).
    let args = unsafe { Bound::from_borrowed_ptr(py, args) }.cast_into::<PyTuple>()?;
    let n = schema.fields.len();
    if args.len() > n {
        return Err(PyTypeError::new_err(format!(
            "{class}() takes at most {n} positional argument{} ({} given)",
            if n == 1 { "" } else { "s" },
            args.len()
        )));
    }
    let mut given: Vec<Option<Bound<'_, PyAny>>> = vec![None; n];
    for (slot, a) in given.iter_mut().zip(args.iter()) {
        *slot = Some(a);
    }
    if !kwds.is_null() {
        // SAFETY: as above.
        let kwds = unsafe { Bound::from_borrowed_ptr(py, kwds) }.cast_into::<PyDict>()?;
        for (k, v) in kwds.iter() {
            let k = k.cast_into::<PyString>()?;
            let k = k.to_str()?;
            let Some(i) = schema.fields.iter().position(|e| e.key == k) else {
                return Err(PyTypeError::new_err(format!(
                    "{class}() got an unexpected keyword argument '{k}'"
                )));
            };
            if given[i].is_some() {
                return Err(PyTypeError::new_err(format!(
                    "{class}() got multiple values for field '{k}'"
                )));
            }
            given[i] = Some(v);
        }
    }
    let missing: Vec<String> = schema
        .fields
        .iter()
        .zip(&given)
        .filter(|(e, g)| g.is_none() && e.default.is_none())
        .map(|(e, _)| format!("'{}'", e.name.bind(py)))
        .collect();
    if !missing.is_empty() {
        return Err(PyTypeError::new_err(format!(
            "{class}() missing required field{}: {}",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
        )));
    }
    // Check and convert everything first, so a bad argument leaves the object unchanged.
    let mut values = Vec::with_capacity(n);
    for (e, g) in schema.fields.iter().zip(given) {
        let v = g.unwrap_or_else(|| e.default.as_ref().expect("checked above").bind(py).clone());
        // SAFETY: `v` is live; attached.
        unsafe {
            check(&e.def, &e.check, v.as_ptr()).map_err(|_| PyErr::fetch(py))?;
            values.push(Value::from_py(v.as_ptr()).map_err(|_| PyErr::fetch(py))?);
        }
    }
    for (e, v) in schema.fields.iter().zip(values) {
        // SAFETY: `o` is an instance of a registered class; attached.
        unsafe { store(o, &e.def, Some(v)) }.map_err(|_| PyErr::fetch(py))?;
    }
    Ok(())
}

/// `tether._core.ObjectBase`, the base of `tether.Object`: registered like any extension
/// class; construction (`tp_new`/`tp_init` from the class's field schema) as raw slots, fields as
/// members added per Python subclass by `_register_class`.
impl Class for Fields {
    const NAME: &'static str = "ObjectBase";
    const MODULE: &'static str = "tether._core";
    const DOC: &'static str = "The base of tether.Object: a wrapper tied to a native object.";

    fn define(c: &mut ClassDef<'_, Self>) -> PyResult<()> {
        // SAFETY: both functions have the slot's signature and work on wrappers of `Fields`.
        unsafe {
            c.slot(ffi::Py_tp_new, object_new as *mut c_void)
                .slot(ffi::Py_tp_init, object_init as *mut c_void);
        }
        Ok(())
    }

    fn traverse(&self, visit: &Visit<'_>) {
        self.visit(visit);
    }

    fn clear(&self, _py: Python<'_>) {
        self.clear_all();
    }
}

/// Gives the registered `ObjectBase` its (empty) schema.
pub fn finish_object_base(ty: &Bound<'_, PyType>) -> PyResult<()> {
    let py = ty.py();
    OBJECT_BASE.set(ty.as_ptr().cast());
    let schema = Schema {
        ty: ty.as_ptr() as usize,
        fields: Vec::new(),
    };
    ty.setattr("__tether_schema__", Bound::new(py, schema)?)?;
    ty.setattr("__tether_fields__", PyTuple::empty(py))?;
    Ok(())
}

/// `_register_class(cls, fields)`: makes `cls` (a new subclass of `ObjectBase`, made by the
/// metaclass with `__slots__ = ()`) a tether class. `fields` lists its *own* new fields as
/// `(name, has_default, default, check)` tuples; `check` is `None`, a `(types, nullable,
/// expected)` tuple, or a resolver callable (see [`Check`]).
#[pyfunction]
#[pyo3(signature = (cls, fields, /))]
pub fn _register_class(cls: &Bound<'_, PyType>, fields: Vec<Bound<'_, PyTuple>>) -> PyResult<()> {
    let py = cls.py();
    let ty = cls.as_ptr().cast::<ffi::PyTypeObject>();
    // The registered bases' schemas: the one with the most fields holds the inherited fields;
    // every other one must be a prefix of it (the same fields, not just the same names), so the
    // fields come down one line of classes. Field-less mixins combine with anything.
    let mro = cls.getattr("__mro__")?.cast_into::<PyTuple>()?;
    let mut bases: Vec<(Bound<'_, Schema>, String)> = Vec::new();
    for base in mro.iter().skip(1) {
        let own = base.getattr("__dict__")?;
        if own.contains("__tether_schema__")? {
            let schema = own.get_item("__tether_schema__")?.cast_into::<Schema>()?;
            bases.push((schema, base.getattr("__name__")?.extract()?));
        }
    }
    let Some((parent, parent_name)) = bases
        .iter()
        .max_by_key(|(s, _)| s.get().fields.len())
        .cloned()
    else {
        return Err(PyTypeError::new_err(
            "tether classes must derive from tether.Object",
        ));
    };
    for (other, other_name) in &bases {
        let (long, short) = (&parent.get().fields, &other.get().fields);
        if !short
            .iter()
            .zip(long.iter())
            .all(|(a, b)| Arc::ptr_eq(&a.def, &b.def))
        {
            return Err(PyTypeError::new_err(format!(
                "{}: fields can be inherited along one line of tether classes only \
                 ({parent_name} and {other_name} both declare fields)",
                cls.name()?
            )));
        }
    }
    // SAFETY: attached; `cls` was just created (no instances yet).
    unsafe { types::patch_subclass(ty) }.map_err(|_| PyErr::fetch(py))?;
    let owner = cls.name()?.to_string();
    let mut entries: Vec<Entry> = parent
        .get()
        .fields
        .iter()
        .map(|e| Entry {
            name: e.name.clone_ref(py),
            key: e.key.clone(),
            default: e.default.as_ref().map(|d| d.clone_ref(py)),
            def: e.def.clone(),
            check: e.check.clone(),
        })
        .collect();
    for spec in fields {
        let (name, has_default, default, chk): (
            Bound<'_, PyString>,
            bool,
            Bound<'_, PyAny>,
            Bound<'_, PyAny>,
        ) = spec.extract()?;
        let name_s = name.to_string();
        if entries.iter().any(|e| e.key == name_s) {
            return Err(PyTypeError::new_err(format!(
                "{owner}.{name_s} redeclares an inherited field"
            )));
        }
        let check = if chk.is_none() {
            Check::Any
        } else if chk.is_callable() && !chk.is_instance_of::<PyTuple>() {
            Check::Lazy(chk.unbind(), OnceLock::new())
        } else {
            match spec_from(&chk)? {
                Some(s) => Check::Types(s),
                None => Check::Any,
            }
        };
        if name_s.contains('\0') {
            return Err(PyTypeError::new_err("field names cannot contain NUL"));
        }
        let def = Arc::new(FieldDef {
            index: entries.len(),
            name: name_s.clone(),
            owner: owner.clone(),
        });
        // The same member accessors every extension class uses, projecting this field, owned
        // by the field's descriptor (freed with it, so with the class).
        let index = def.index;
        let check_def = def.clone();
        let field_check: MemberCheck =
            Box::new(move |obj: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>| {
                check_field(&check_def, obj, v)
            });
        let accessors = field_accessors(index, name_s.clone(), field_check);
        // SAFETY: the member accessors of `Fields` accept instances of this class (each holds a
        // `Fields`) and own their closure.
        let descr = unsafe { new_field_descriptor(cls, &name, accessors) }?;
        cls.setattr(&name, descr)?;
        entries.push(Entry {
            name: name.unbind(),
            key: name_s,
            default: has_default.then(|| default.unbind()),
            def,
            check: Arc::new(check),
        });
    }
    let names = PyTuple::new(py, entries.iter().map(|e| e.name.bind(py)))?;
    let schema = Schema {
        ty: ty as usize,
        fields: entries,
    };
    // `type.__setattr__`: the metaclass refuses these names to everyone else.
    let set = py.get_type::<PyType>().getattr("__setattr__")?;
    set.call1((cls, "__tether_schema__", Bound::new(py, schema)?))?;
    set.call1((cls, "__tether_fields__", names))?;
    Ok(())
}
