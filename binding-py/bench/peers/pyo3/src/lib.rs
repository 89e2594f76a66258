//! `peers_pyo3`: the PyO3 peer of the peers benchmark (`binding-py/bench/peers/bench.py`).
//!
//! `Outer` owns a native `Inner` (an `Arc`) and exposes it two ways, as PyO3 bindings are
//! usually written:
//!
//! * `x`: a getter returning a `Py<Inner>` stored in the `Outer`: always the same object (it
//!   never dies while the `Outer` lives), so every read is a hit;
//! * `x_fresh`: a getter building a new `Inner` wrapper per read: never the same object.

use std::sync::Arc;

use pyo3::prelude::*;

/// The native object both getters expose.
struct Native {
    value: i64,
}

/// A Python wrapper of a native object.
#[pyclass(module = "peers_pyo3", frozen)]
struct Inner {
    native: Arc<Native>,
}

#[pymethods]
impl Inner {
    /// The native object's value.
    #[getter]
    fn value(&self) -> i64 {
        self.native.value
    }
}

/// Holds a native object and a wrapper of it.
#[pyclass(module = "peers_pyo3", frozen)]
struct Outer {
    native: Arc<Native>,
    stored: Py<Inner>,
}

#[pymethods]
impl Outer {
    #[new]
    fn new(py: Python<'_>) -> PyResult<Self> {
        let native = Arc::new(Native { value: 1 });
        let stored = Py::new(
            py,
            Inner {
                native: native.clone(),
            },
        )?;
        Ok(Outer { native, stored })
    }

    /// The stored wrapper (a new reference to the same object every time).
    #[getter]
    fn x(&self, py: Python<'_>) -> Py<Inner> {
        self.stored.clone_ref(py)
    }

    /// A new wrapper of the same native object per read.
    #[getter]
    fn x_fresh(&self) -> Inner {
        Inner {
            native: self.native.clone(),
        }
    }
}

/// The module; `gil_used = false`: it holds no state the GIL would have to protect, so it runs
/// without the GIL on a free-threaded interpreter.
#[pymodule(gil_used = false)]
fn peers_pyo3(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Inner>()?;
    m.add_class::<Outer>()?;
    Ok(())
}
