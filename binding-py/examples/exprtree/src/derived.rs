//! `exprtree._native._derived`: classes declared with `#[derive(Class)]`, the declarative form
//! of the extension API (compare `testing.rs`, written with the builder).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};

use pyo3::prelude::*;
use tether_py::prelude::*;

use crate::Expr;

/// A counter with a label, an expression node and a slot for any object.
///
/// Counter(label, count): a class declared with #[derive(Class)].
#[derive(Class)]
#[tether(module = "exprtree._native._derived", new = Counter::create)]
#[tether(methods(bump, settings, node_from_rust), repr = Counter::repr, gc)]
pub struct Counter {
    /// The count (an int).
    #[tether(get, set)]
    count: AtomicI64,
    /// The counter's label (a str).
    #[tether(get, set)]
    label: Mutex<String>,
    /// The counter's serial number, unique in the process (read-only).
    #[tether(get, name = "serial")]
    id: AtomicU64,
    /// An expression node, or None.
    #[tether(get, set, of = Expr)]
    node: Member,
    /// An expression node; None is refused.
    #[tether(get, set, of = Expr, required)]
    root: Member,
    /// Any Python object (reported to the collector: `c.item = [c]` is collected).
    #[tether(get, set)]
    item: Member,
    /// The counter's settings (not a property: the `settings()` method returns them).
    settings: Tied<CounterSettings>,
}

/// The serial number of the next counter.
static NEXT_SERIAL: AtomicU64 = AtomicU64::new(1);

impl Counter {
    /// `Counter(label, count)`.
    fn create((label, count): (String, i64)) -> PyResult<Counter> {
        Ok(Counter {
            count: AtomicI64::new(count),
            label: Mutex::new(label),
            // Relaxed: the serial only has to be unique, and the read-modify-write gives that
            // at any ordering; nothing else is published through it.
            id: AtomicU64::new(NEXT_SERIAL.fetch_add(1, Ordering::Relaxed)),
            node: Member::new(),
            root: Member::new(),
            item: Member::new(),
            settings: Tied::new(CounterSettings {
                enabled: AtomicBool::new(true),
                ratio: RwLock::new(1.0),
            }),
        })
    }

    /// `repr(counter)`.
    fn repr(&self) -> PyResult<String> {
        let label = self.label.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Ok(format!(
            "Counter({label:?}, {})",
            FieldCell::load(&self.count)
        ))
    }
}

/// bump(self, by=1) -> int: adds `by` to the count atomically and returns the new count.
#[pyfunction]
#[pyo3(signature = (this, by = 1))]
fn bump(this: Tied<Counter>, by: i64) -> i64 {
    // AcqRel: one indivisible step that reads the latest count (Acquire, as the property's
    // getter does) and publishes the new one (Release, as its setter does).
    this.count.fetch_add(by, Ordering::AcqRel) + by
}

/// settings(self) -> Settings: the counter's settings (the same object every time).
#[pyfunction]
fn settings(this: Tied<Counter>) -> Tied<CounterSettings> {
    this.settings.clone()
}

/// node_from_rust(self) -> Expr | None: the `node` member, read on the Rust side.
#[pyfunction]
fn node_from_rust(py: Python<'_>, this: Tied<Counter>) -> Option<Tied<Expr>> {
    this.node.get_tied::<Expr>(py)
}

/// A counter's settings: Python class `Settings` (renamed), with no constructor (only Rust
/// makes them).
#[derive(Class)]
#[tether(module = "exprtree._native._derived", name = "Settings")]
pub struct CounterSettings {
    /// Whether the counter is enabled (a bool).
    #[tether(get, set)]
    enabled: AtomicBool,
    /// A ratio (a float).
    #[tether(get, set)]
    ratio: RwLock<f64>,
}

/// The `_derived` submodule.
pub fn module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let m = PyModule::new(py, "_derived")?;
    add_class::<Counter>(&m)?;
    add_class::<CounterSettings>(&m)?;
    Ok(m)
}
