//! No panic crosses the C ABI: every entry point runs inside [`guard`], which turns a panic (a
//! broken invariant the kernel detected, or a broken contract) into a message and an abort.

use std::panic::{AssertUnwindSafe, catch_unwind};

/// Runs `body`; on a panic prints what happened and aborts the process.
pub(crate) fn guard<R>(entry: &str, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            eprintln!(
                "tether: {entry}: {msg}; aborting (a broken invariant or a broken contract: see \
                 docs/c-abi.md)"
            );
            std::process::abort()
        }
    }
}
