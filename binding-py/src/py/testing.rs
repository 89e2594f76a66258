//! `tether.testing`: a native registry that holds objects, and views of the kernel's state.

use std::collections::BTreeMap;
use std::sync::Mutex;

use pyo3::exceptions::{PyKeyError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::capi::CApi;
use super::function::round_trip;
use super::native::{Handle, Raised};
use super::types::expect_tied;
use crate::runtime::Runtime;

/// Objects held natively by `hold`, by key.
static HELD: Mutex<(u64, BTreeMap<u64, Handle>)> = Mutex::new((0, BTreeMap::new()));

fn held() -> std::sync::MutexGuard<'static, (u64, BTreeMap<u64, Handle>)> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

fn fetched<T>(py: Python<'_>, r: Result<T, Raised>) -> PyResult<T> {
    r.map_err(|Raised| PyErr::fetch(py))
}

/// A native strong reference to `obj`'s native object, for `obj` a tether object.
fn handle(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<Handle> {
    // SAFETY: `obj` is live; attached.
    fetched(obj.py(), unsafe { expect_tied(obj.as_ptr(), what) })
}

/// `hold(obj) -> int`: the native registry keeps a strong reference to `obj`'s native object
/// until `release(key)`.
#[pyfunction]
#[pyo3(signature = (obj, /))]
fn hold(obj: &Bound<'_, PyAny>) -> PyResult<u64> {
    let h = handle(obj, "hold()")?;
    let mut g = held();
    g.0 += 1;
    let key = g.0;
    g.1.insert(key, h);
    Ok(key)
}

/// A key as `hold()` returns them: an `int` (anything else is a `TypeError`); an `int` that no
/// `hold()` can have returned (negative, too large) is simply unknown (`KeyError`), as the docs
/// promise for every unknown key.
fn key_of(key: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
    if !key.is_instance_of::<pyo3::types::PyInt>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "a key is an int returned by hold(), not {}",
            key.get_type().name()?
        )));
    }
    Ok(key.extract::<u64>().ok())
}

fn take(key: &Bound<'_, PyAny>) -> PyResult<Handle> {
    // Removed under the lock, dropped by the caller after it: dropping may run arbitrary code,
    // including another hold() or release().
    let taken = key_of(key)?.and_then(|k| held().1.remove(&k));
    taken.ok_or_else(|| PyKeyError::new_err(key.clone().unbind()))
}

/// `release(key)`: drops the registry's reference (on this thread).
#[pyfunction]
#[pyo3(signature = (key, /))]
fn release(key: &Bound<'_, PyAny>) -> PyResult<()> {
    drop(take(key)?);
    Ok(())
}

/// `release_on_foreign_thread(key, wait=True)`: drops the registry's reference on a new
/// thread that has never touched Python (the kernel's reclaim then attaches to free a cached
/// wrapper). With `wait`, returns once that thread is done (the caller's thread state is
/// detached meanwhile, so the foreign thread can attach).
#[pyfunction]
#[pyo3(signature = (key, wait = true))]
fn release_on_foreign_thread(py: Python<'_>, key: &Bound<'_, PyAny>, wait: bool) -> PyResult<()> {
    let h = take(key)?;
    let t = std::thread::Builder::new()
        .name("tether-foreign".into())
        .spawn(move || drop(h))
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    if wait {
        py.detach(|| t.join())
            .map_err(|_| PyRuntimeError::new_err("the foreign thread panicked"))?;
    }
    Ok(())
}

/// `identity(obj)`: a native function returning its argument (through the native side).
#[pyfunction]
#[pyo3(signature = (obj, /))]
fn identity<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    // SAFETY: attached; `obj` is live; the result is a new reference.
    let out = fetched(py, unsafe { round_trip(obj.as_ptr()) })?;
    // SAFETY: a new reference.
    Ok(unsafe { Bound::from_owned_ptr(py, out) })
}

/// `binding_state(key) -> str`: the binding word's state for a held object.
#[pyfunction]
#[pyo3(signature = (key, /))]
fn binding_state(key: &Bound<'_, PyAny>) -> PyResult<&'static str> {
    let k = key_of(key)?;
    let g = held();
    let h = k
        .and_then(|k| g.1.get(&k))
        .ok_or_else(|| PyKeyError::new_err(key.clone().unbind()))?;
    Ok(h.header().binding_state().as_str())
}

/// `native_refcount(obj) -> int`: strong references to `obj`'s native object (not counting the
/// one this call takes to look).
#[pyfunction]
#[pyo3(signature = (obj, /))]
fn native_refcount(obj: &Bound<'_, PyAny>) -> PyResult<usize> {
    let h = handle(obj, "native_refcount()")?;
    Ok(h.header().strong_count() - 1)
}

/// `stats() -> dict`: the adapter's counters.
#[pyfunction]
fn stats(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    for (k, v) in CApi.state().stats.snapshot() {
        d.set_item(k, v)?;
    }
    d.set_item("held", held().1.len())?;
    Ok(d)
}

/// `set_caching(on) -> bool`: whether dying wrappers are cached for revival (default `True`);
/// returns the previous setting. With caching off every wrapper death frees the wrapper and the
/// next fetch builds a fresh one (benchmarks, and tests of the fresh path).
#[pyfunction]
#[pyo3(signature = (on, /))]
fn set_caching(on: bool) -> bool {
    CApi.state().set_caching(on)
}

/// `_fork_while_a_reclaim_attaches() -> int`: forks while the count of threads attaching for a
/// reclaim says one is (the state a reclaiming thread is in between counting itself and
/// attaching, reproduced deterministically: such a thread exists in the parent only); returns
/// `os.fork()`'s result. The child must exit normally: its at-exit hook must not wait for a
/// thread that does not exist there.
#[pyfunction]
fn _fork_while_a_reclaim_attaches(py: Python<'_>) -> PyResult<i64> {
    use std::sync::atomic::Ordering::SeqCst;
    let state = CApi.state();
    // SeqCst: as every access to the attach count (a Dekker pair with shutdown).
    state.attached.fetch_add(1, SeqCst);
    let pid = py
        .import("os")?
        .call_method0("fork")
        .and_then(|p| p.extract::<i64>());
    if !matches!(pid, Ok(0)) {
        // The parent (or a failed fork): the pretended thread is done.
        // SeqCst: as above.
        state.attached.fetch_sub(1, SeqCst);
    }
    pid
}

/// The `tether._core.testing` submodule.
pub fn module(py: Python<'_>) -> PyResult<Bound<'_, PyModule>> {
    let m = PyModule::new(py, "testing")?;
    m.add_function(wrap_pyfunction!(hold, &m)?)?;
    m.add_function(wrap_pyfunction!(release, &m)?)?;
    m.add_function(wrap_pyfunction!(release_on_foreign_thread, &m)?)?;
    m.add_function(wrap_pyfunction!(identity, &m)?)?;
    m.add_function(wrap_pyfunction!(binding_state, &m)?)?;
    m.add_function(wrap_pyfunction!(native_refcount, &m)?)?;
    m.add_function(wrap_pyfunction!(stats, &m)?)?;
    m.add_function(wrap_pyfunction!(set_caching, &m)?)?;
    m.add_function(wrap_pyfunction!(_fork_while_a_reclaim_attaches, &m)?)?;
    Ok(m)
}
