//! The module `tether._core`.

use pyo3::prelude::*;

use super::capi::CPYTHON;
use super::native::Raised;
use super::types::{FUNCTION, expect_tied};
use super::{array, function as func, native, object, testing};

/// `function(callable) -> Function`: a native function object that calls `callable`; arguments
/// and results cross the native side, so `function(lambda v: v)(x) is x`.
#[pyfunction]
fn function<'py>(callable: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = callable.py();
    // SAFETY: attached; `callable` is live; the Function type was created at module init.
    unsafe {
        let o = func::new_function(FUNCTION.get(), callable.as_ptr());
        Bound::from_owned_ptr_or_err(py, o)
    }
}

/// `handle(obj) -> int`: the address of `obj`'s native object (stable while it lives, across
/// wrapper deaths and revivals).
#[pyfunction]
fn handle(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    // SAFETY: attached; `obj` is live.
    let h = unsafe { expect_tied(obj.as_ptr(), "tether.handle()") }
        .map_err(|Raised| PyErr::fetch(obj.py()))?;
    Ok(h.as_ptr().as_ptr().addr())
}

/// Registered with `atexit` at import: from now on nothing attaches to the interpreter.
#[pyfunction]
fn _at_exit() {
    CPYTHON.shutdown();
}

/// `tether._core`.
#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let base = object::make_object_base(py)?;
    // SAFETY: attached; a new reference to a live type object.
    native::measure_layout().map_err(pyo3::exceptions::PyImportError::new_err)?;
    m.add("ObjectBase", base)?;
    // SAFETY: new references to the type objects (kept by the module for its lifetime).
    unsafe {
        m.add(
            "Array",
            Bound::from_owned_ptr(py, array::make_array(py)?.cast()),
        )?;
        m.add(
            "Function",
            Bound::from_owned_ptr(py, func::make_function(py)?.cast()),
        )?;
    }
    m.add_class::<object::Schema>()?;
    m.add_function(wrap_pyfunction!(function, m)?)?;
    m.add_function(wrap_pyfunction!(handle, m)?)?;
    m.add_function(wrap_pyfunction!(object::_register_class, m)?)?;
    m.add_function(wrap_pyfunction!(_at_exit, m)?)?;
    m.add_submodule(&testing::module(py)?)?;
    py.import("atexit")?
        .call_method1("register", (m.getattr("_at_exit")?,))?;
    Ok(())
}
