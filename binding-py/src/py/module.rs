//! The module `tether._core`.

use pyo3::prelude::*;

use super::class::{self, add_class};
use super::kind::{Fields, Items, Target};
use super::native::Raised;
use super::types::{FUNCTION, expect_tied};
use super::{function as func, object, testing};

/// `function(callable) -> Function`: a native function object that calls `callable`; arguments
/// and results cross the native side, so `function(lambda v: v)(x) is x`.
#[pyfunction]
#[pyo3(signature = (callable, /))]
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
#[pyo3(signature = (obj, /))]
fn handle(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    // SAFETY: attached; `obj` is live.
    let h = unsafe { expect_tied(obj.as_ptr(), "tether.handle()") }
        .map_err(|Raised| PyErr::fetch(obj.py()))?;
    Ok(h.as_ptr().as_ptr().addr())
}

/// `tether._core`.
#[pymodule(gil_used = false)]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    class::refuse_subinterpreter()?;
    // tether's own classes, registered through the extension API like any binding's.
    add_class::<Fields>(m)?;
    add_class::<Items>(m)?;
    add_class::<Target>(m)?;
    object::finish_object_base(&m.getattr("ObjectBase")?.cast_into()?)?;
    FUNCTION.set(m.getattr("Function")?.as_ptr().cast());
    m.add("TiedType", class::metaclass(py)?.bind(py))?;
    m.add_class::<object::Schema>()?;
    m.add_function(wrap_pyfunction!(function, m)?)?;
    m.add_function(wrap_pyfunction!(handle, m)?)?;
    m.add_function(wrap_pyfunction!(object::_register_class, m)?)?;
    m.add_submodule(&testing::module(py)?)?;
    Ok(())
}
