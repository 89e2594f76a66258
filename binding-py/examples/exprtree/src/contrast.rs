//! The same tree behind plain PyO3 `#[pyclass]` types, as bindings are usually written: the
//! native tree is Rust data (`Arc` nodes), and every getter builds a new Python wrapper. The
//! tests use it to check where identity-dependent idioms break without tether.

use std::sync::{Arc, Mutex, Weak};

use pyo3::prelude::*;

/// A native node.
struct Node {
    value: Mutex<f64>,
    children: Vec<Arc<Node>>,
    parent: Mutex<Weak<Node>>,
}

/// A PyO3 wrapper around a native node: a new one per read.
#[pyclass(module = "exprtree._native.contrast", frozen)]
struct PyNode {
    node: Arc<Node>,
}

#[pymethods]
impl PyNode {
    /// The number stored in the node.
    #[getter]
    fn value(&self) -> f64 {
        *self.node.value.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[setter]
    fn set_value(&self, v: f64) {
        *self.node.value.lock().unwrap_or_else(|e| e.into_inner()) = v;
    }

    /// The children: a new wrapper per child per read.
    #[getter]
    fn children(&self) -> Vec<PyNode> {
        self.node
            .children
            .iter()
            .map(|c| PyNode { node: c.clone() })
            .collect()
    }

    /// The first child: a new wrapper per read (the benchmark's "fresh PyO3 wrapper").
    #[getter]
    fn first(&self) -> Option<PyNode> {
        self.node
            .children
            .first()
            .map(|c| PyNode { node: c.clone() })
    }

    /// The parent: a new wrapper per read.
    #[getter]
    fn parent(&self) -> Option<PyNode> {
        let p = self.node.parent.lock().unwrap_or_else(|e| e.into_inner());
        p.upgrade().map(|node| PyNode { node })
    }
}

/// A `#[pyclass]` holding its child by value with `#[pyo3(get, set)]`: reads clone.
#[pyclass(module = "exprtree._native.contrast", get_all, set_all, from_py_object)]
#[derive(Clone)]
struct Leaf {
    value: f64,
}

/// A pair of leaves held by value (PyO3's `get` clones a `Clone` field).
#[pyclass(module = "exprtree._native.contrast", get_all, set_all)]
struct Pair {
    left: Leaf,
    right: Leaf,
}

/// A `#[pyclass]` holding a Python object, returned as stored (the benchmark's "PyO3 getter
/// returning a stored `Py<T>`").
#[pyclass(module = "exprtree._native.contrast", frozen)]
struct Holder {
    #[pyo3(get)]
    child: Py<PyAny>,
}

/// `holder()`: a Holder whose child is a fresh object.
#[pyfunction]
fn holder(py: Python<'_>) -> PyResult<Holder> {
    Ok(Holder {
        child: py.import("builtins")?.getattr("object")?.call0()?.unbind(),
    })
}

/// `tree(depth)`: a complete binary tree of native nodes.
#[pyfunction]
fn tree(depth: u32) -> PyNode {
    fn build(depth: u32, v: &mut f64) -> Arc<Node> {
        let children = if depth == 0 {
            Vec::new()
        } else {
            vec![build(depth - 1, v), build(depth - 1, v)]
        };
        *v += 1.0;
        let node = Arc::new(Node {
            value: Mutex::new(*v),
            children,
            parent: Mutex::new(Weak::new()),
        });
        for c in &node.children {
            *c.parent.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(&node);
        }
        node
    }
    PyNode {
        node: build(depth, &mut 0.0),
    }
}

/// `pair(a, b)`.
#[pyfunction]
fn pair(a: f64, b: f64) -> Pair {
    Pair {
        left: Leaf { value: a },
        right: Leaf { value: b },
    }
}

/// The `contrast` submodule.
pub fn module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let m = PyModule::new(py, "contrast")?;
    m.add_class::<PyNode>()?;
    m.add_class::<Leaf>()?;
    m.add_class::<Pair>()?;
    m.add_function(wrap_pyfunction!(tree, &m)?)?;
    m.add_function(wrap_pyfunction!(pair, &m)?)?;
    m.add_class::<Holder>()?;
    m.add_function(wrap_pyfunction!(holder, &m)?)?;
    Ok(m)
}
