//! The metaclass every tied class has, and the process hooks installed with it (exit, fork,
//! sub-interpreters).

use core::ffi::CStr;
use std::sync::OnceLock;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyType};

use crate::py::capi::{CApi, CPYTHON};
use crate::py::native::{Raised, measure_layout};
use crate::py::types::patch_subclass;

/// The metaclass of every class made here, and of their Python subclasses: forces
/// `__slots__ = ()` (instances have exactly the wrapper layout, so a dead wrapper can be revived
/// in place) and installs the wrapper lifecycle on each new class.
pub(super) static METACLASS: OnceLock<Py<PyType>> = OnceLock::new();

pub(super) const METACLASS_SOURCE: &CStr = cr#"
import sys

_INTERNAL = ("tether_py_support", "tether")


class TiedType(type):
    """Metaclass of tied classes: instances keep all their state in the native object."""

    def __new__(mcls, name, bases, namespace, **kwargs):
        if "__slots__" in namespace:
            raise TypeError(
                f"{name}: subclasses of tied classes cannot declare __slots__ (their state "
                "lives in the native object; add properties in Rust instead)"
            )
        namespace = dict(namespace)
        namespace["__slots__"] = ()
        if "__module__" not in namespace:
            # A class made by calling the metaclass (a class statement always sets it): the
            # caller's module, as `type(name, bases, namespace)` gives, not this support
            # module's nor tether's own metaclass's.
            frame = sys._getframe(1)
            while frame is not None and frame.f_globals.get("__name__") in _INTERNAL:
                frame = frame.f_back
            if frame is not None:
                namespace["__module__"] = frame.f_globals.get("__name__", "__main__")
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        _patch(cls)
        return cls
"#;

/// `ImportError` unless the calling thread runs the main interpreter: the adapter's state (the
/// class registry, the at-exit flag, the metaclass) is process-wide, and Python objects must not
/// cross interpreters.
pub(crate) fn refuse_subinterpreter() -> PyResult<()> {
    // SAFETY: attached (callers hold a `Python` token); both calls only read interpreter state.
    let main = unsafe { ffi::PyInterpreterState_Get() == ffi::PyInterpreterState_Main() };
    if main {
        Ok(())
    } else {
        Err(pyo3::exceptions::PyImportError::new_err(
            "tether does not support sub-interpreters: import it in the main interpreter only \
             (its native state is shared by the whole process)",
        ))
    }
}

/// `_patch(cls)`: the metaclass's hook (see [`METACLASS`]).
#[pyfunction]
pub(super) fn _patch(cls: &Bound<'_, PyType>) -> PyResult<()> {
    // SAFETY: attached; `cls` was just created by `type.__new__` (no instances yet).
    unsafe { patch_subclass(cls.as_ptr().cast()) }.map_err(|Raised| PyErr::fetch(cls.py()))
}

pub(crate) fn metaclass(py: Python<'_>) -> PyResult<&'static Py<PyType>> {
    refuse_subinterpreter()?;
    if let Some(m) = METACLASS.get() {
        return Ok(m);
    }
    measure_layout().map_err(pyo3::exceptions::PyImportError::new_err)?;
    let module = PyModule::from_code(
        py,
        METACLASS_SOURCE,
        c"<tether_py class support>",
        c"tether_py_support",
    )?;
    module.add_function(wrap_pyfunction!(_patch, &module)?)?;
    let meta = module.getattr("TiedType")?.cast_into::<PyType>()?.unbind();
    // The at-exit hook of this extension's adapter (its state is per extension library), and
    // its reset in a forked child. The hook runs where the interpreter really begins to exit:
    // `threading._shutdown()`, which `Py_FinalizeEx` calls before `atexit`'s callbacks (the
    // module is imported here, so it is always called). An `atexit` callback could be run
    // early (`atexit._run_exitfuncs()`, a library clearing atexit), after which every reclaim
    // would leak its cached wrapper for the rest of the process.
    let hook = wrap_pyfunction!(at_exit, &module)?;
    let threading = py.import("threading")?;
    match threading.getattr("_register_atexit") {
        Ok(register) => register.call1((hook,))?,
        Err(_) => py.import("atexit")?.call_method1("register", (hook,))?,
    };
    let kwargs = PyDict::new(py);
    kwargs.set_item(
        "after_in_child",
        wrap_pyfunction!(after_fork_in_child, &module)?,
    )?;
    py.import("os")?
        .call_method("register_at_fork", (), Some(&kwargs))?;
    // A racing initialiser (free-threaded) made one too: keep the first.
    Ok(METACLASS.get_or_init(|| meta))
}

/// Registered with `os.register_at_fork(after_in_child=...)`.
#[pyfunction]
pub(super) fn after_fork_in_child() {
    use crate::runtime::Runtime;
    CApi.state().after_fork_in_child();
}

/// Registered with `atexit`: from now on nothing attaches to the interpreter.
#[pyfunction]
pub(super) fn at_exit() {
    CPYTHON.shutdown();
}
