//! [`Args`]: a constructor's positional arguments, extracted with PyO3.

use pyo3::conversion::FromPyObjectOwned;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// The positional arguments of a constructor: `()`, `(A,)`, `(A, B)`, … up to eight, each
/// element extracted with PyO3 (`i64`, `String`, `Option<Tied<U>>`, `Vec<f64>`, …).
pub trait Args: Sized {
    /// Extracts the arguments of `name(...)`: a wrong count or a wrong type is a `TypeError`
    /// that says which.
    fn from_args(name: &str, args: &Bound<'_, PyTuple>) -> PyResult<Self>;
}

/// An extraction error with `where_` in front of its message: a `TypeError` or `ValueError`
/// keeps its type; anything else (a moved-from object's `RuntimeError`) is returned unchanged.
pub(super) fn in_context(py: Python<'_>, e: PyErr, where_: impl FnOnce() -> String) -> PyErr {
    if e.is_instance_of::<PyTypeError>(py) {
        PyTypeError::new_err(format!("{}: {}", where_(), e.value(py)))
    } else if e.is_instance_of::<pyo3::exceptions::PyValueError>(py) {
        pyo3::exceptions::PyValueError::new_err(format!("{}: {}", where_(), e.value(py)))
    } else {
        e
    }
}

pub(super) fn arg_count(name: &str, args: &Bound<'_, PyTuple>, n: usize) -> PyResult<()> {
    if args.len() == n {
        return Ok(());
    }
    Err(PyTypeError::new_err(format!(
        "{name}() takes {n} positional argument{} ({} given)",
        if n == 1 { "" } else { "s" },
        args.len()
    )))
}

impl Args for () {
    fn from_args(name: &str, args: &Bound<'_, PyTuple>) -> PyResult<Self> {
        arg_count(name, args, 0)
    }
}

macro_rules! impl_args {
    ($n:literal; $($t:ident $i:tt),+) => {
        impl<$($t),+> Args for ($($t,)+)
        where
            $($t: for<'a> FromPyObjectOwned<'a>,)+
        {
            fn from_args(name: &str, args: &Bound<'_, PyTuple>) -> PyResult<Self> {
                arg_count(name, args, $n)?;
                Ok(($(
                    args.get_item($i)?.extract::<$t>().map_err(|e| {
                        in_context(args.py(), e.into(), || format!("{name}() argument {}", $i + 1))
                    })?,
                )+))
            }
        }
    };
}

impl_args!(1; A 0);
impl_args!(2; A 0, B 1);
impl_args!(3; A 0, B 1, C 2);
impl_args!(4; A 0, B 1, C 2, D 3);
impl_args!(5; A 0, B 1, C 2, D 3, E 4);
impl_args!(6; A 0, B 1, C 2, D 3, E 4, F 5);
impl_args!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
impl_args!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
