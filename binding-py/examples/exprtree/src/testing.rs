//! `exprtree._native._testing`: hooks for the tests of tether's extension API at its edges
//! (a class registered twice, a native type without a registered class, a panic in a getter or a
//! method). Not part of the example's API.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use tether_py::prelude::*;

use crate::Expr;

/// A type that is never registered: handing one to Python must be a clear `TypeError`.
pub struct Unregistered;

impl Class for Unregistered {
    const NAME: &'static str = "Unregistered";
    const MODULE: &'static str = "exprtree._native._testing";
    fn define(_c: &mut ClassDef<'_, Self>) -> PyResult<()> {
        Ok(())
    }
}

/// A class whose getter and method panic.
pub struct Faulty;

impl Class for Faulty {
    const NAME: &'static str = "Faulty";
    const MODULE: &'static str = "exprtree._native._testing";
    fn define(c: &mut ClassDef<'_, Self>) -> PyResult<()> {
        c.constructor(|(): ()| Ok(Faulty))
            .getter("boom", |_: &Tied<Faulty>| -> PyResult<i64> {
                panic!("a getter panicked")
            })
            .property(
                "fine",
                |_: &Tied<Faulty>| Ok(1),
                |_: &Tied<Faulty>, _v: i64| -> PyResult<()> { panic!("a setter panicked") },
            );
        c.method(wrap_pyfunction!(explode, c.py())?)?;
        Ok(())
    }
}

/// explode(self): panics.
#[pyfunction]
fn explode(_this: Tied<Faulty>) -> i64 {
    panic!("a method panicked")
}

/// A box with two members: `item` (any object) and `node` (an `Expr` or `None`).
pub struct Holder {
    item: Member,
    node: Member,
}

impl Class for Holder {
    const NAME: &'static str = "Holder";
    const MODULE: &'static str = "exprtree._native._testing";
    fn define(c: &mut ClassDef<'_, Self>) -> PyResult<()> {
        c.constructor(|(): ()| {
            Ok(Holder {
                item: Member::new(),
                node: Member::new(),
            })
        })
        .member("item", |h: &Holder| &h.item)
        .member_of::<Expr, _>("node", true, |h: &Holder| &h.node);
        c.method(wrap_pyfunction!(node_from_rust, c.py())?)?;
        Ok(())
    }
    fn traverse(&self, visit: &Visit<'_>) {
        self.item.traverse(visit);
        self.node.traverse(visit);
    }
    fn clear(&self, py: Python<'_>) {
        self.item.clear(py);
        self.node.clear(py);
    }
}

/// node_from_rust(self) -> Expr | None: the `node` member read on the Rust side.
#[pyfunction]
fn node_from_rust(py: Python<'_>, this: Tied<Holder>) -> Option<Tied<Expr>> {
    this.node.get_tied::<Expr>(py)
}

/// A value type: equality and hash by value, static and class methods, a class attribute, and
/// pickling through its own `__reduce__`.
pub struct Point {
    x: i64,
    y: i64,
}

impl Class for Point {
    const NAME: &'static str = "Point";
    const MODULE: &'static str = "exprtree._native._testing";
    const DOC: &'static str = "Point(x, y): an immutable point compared by value.";
    fn define(c: &mut ClassDef<'_, Self>) -> PyResult<()> {
        let py = c.py();
        c.constructor(|(x, y): (i64, i64)| Ok(Point { x, y }))
            .getter("x", |p: &Tied<Point>| Ok(p.x))
            .getter("y", |p: &Tied<Point>| Ok(p.y));
        c.eq_hash(
            |a: &Point, b: &Point| (a.x, a.y) == (b.x, b.y),
            |p: &Point| (p.x as u64).wrapping_mul(31).wrapping_add(p.y as u64),
        )?
        .repr(|p: &Point| Ok(format!("Point({}, {})", p.x, p.y)))?
        .staticmethod(wrap_pyfunction!(origin, py)?)?
        .classmethod(wrap_pyfunction!(from_pair, py)?)?
        .method(wrap_pyfunction!(point_reduce, py)?)?
        .attr("DIMENSIONS", 2)?;
        Ok(())
    }
}

/// origin() -> Point: (0, 0).
#[pyfunction]
fn origin() -> Tied<Point> {
    Tied::new(Point { x: 0, y: 0 })
}

/// from_pair(cls, pair) -> Point: a class method.
#[pyfunction]
fn from_pair<'py>(
    cls: &Bound<'py, pyo3::types::PyType>,
    pair: (i64, i64),
) -> PyResult<Bound<'py, PyAny>> {
    cls.call1(pair)
}

/// __reduce__(self): `(Point, (x, y))`, the state the author chose to pickle.
#[pyfunction]
#[pyo3(name = "__reduce__")]
fn point_reduce<'py>(
    this: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, pyo3::types::PyType>, (i64, i64))> {
    let p: Tied<Point> = this.extract()?;
    Ok((this.get_type(), (p.x, p.y)))
}

/// A value whose class name names no registered subclass.
pub struct Stray;

impl Class for Stray {
    const NAME: &'static str = "Stray";
    const MODULE: &'static str = "exprtree._native._testing";
    fn class_name(&self) -> &'static str {
        "NotDeclared"
    }
    fn define(_c: &mut ClassDef<'_, Self>) -> PyResult<()> {
        Ok(())
    }
}

/// unregistered() -> never returns: a native object of a type with no registered class.
#[pyfunction]
fn unregistered() -> Tied<Unregistered> {
    Tied::new(Unregistered)
}

/// stray() -> never returns: a value of a registered type whose class name is not declared.
#[pyfunction]
fn stray() -> Tied<Stray> {
    Tied::new(Stray)
}

/// register_expr_again(module): registers `Expr` a second time.
#[pyfunction]
fn register_expr_again(m: &Bound<'_, PyModule>) -> PyResult<()> {
    add_class::<Expr>(m)
}

/// native_refcount(node) -> int: strong native references to the node (not counting this
/// call's own).
#[pyfunction]
fn native_refcount(node: Tied<Expr>) -> usize {
    Tied::strong_count(&node) - 1
}

/// hold(node) -> int, release(key): a native registry holding nodes (as a Rust owner would).
#[pyfunction]
fn hold(node: Tied<Expr>) -> u64 {
    let mut g = held();
    g.0 += 1;
    let key = g.0;
    g.1.insert(key, node);
    key
}

/// release(key): drops the registry's reference (KeyError if unknown).
#[pyfunction]
fn release(key: u64) -> PyResult<()> {
    let node = held().1.remove(&key);
    node.map(drop)
        .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(key))
}

/// release_on_thread(key): drops it on a new Rust thread that never touched Python.
#[pyfunction]
fn release_on_thread(py: Python<'_>, key: u64) -> PyResult<()> {
    let node = held()
        .1
        .remove(&key)
        .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(key))?;
    let t = std::thread::spawn(move || drop(node));
    py.detach(|| t.join())
        .map_err(|_| pyo3::exceptions::PyRuntimeError::new_err("the thread panicked"))
}

type Held = (u64, BTreeMap<u64, Tied<Expr>>);
static HELD: std::sync::Mutex<Held> = std::sync::Mutex::new((0, BTreeMap::new()));

fn held() -> std::sync::MutexGuard<'static, Held> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `_testing` submodule.
pub fn module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let m = PyModule::new(py, "_testing")?;
    add_class::<Faulty>(&m)?;
    add_class::<Stray>(&m)?;
    add_class::<Holder>(&m)?;
    add_class::<Point>(&m)?;
    m.add_function(wrap_pyfunction!(unregistered, &m)?)?;
    m.add_function(wrap_pyfunction!(stray, &m)?)?;
    m.add_function(wrap_pyfunction!(register_expr_again, &m)?)?;
    m.add_function(wrap_pyfunction!(native_refcount, &m)?)?;
    m.add_function(wrap_pyfunction!(hold, &m)?)?;
    m.add_function(wrap_pyfunction!(release, &m)?)?;
    m.add_function(wrap_pyfunction!(release_on_thread, &m)?)?;
    Ok(m)
}
