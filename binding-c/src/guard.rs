//! No panic crosses the C ABI: every entry point runs inside [`guard`], which turns a panic (a
//! broken invariant the kernel detected, or a broken contract) into a message and an abort.
//!
//! A drop guard rather than `catch_unwind`: it costs nothing until a panic unwinds (only a
//! landing pad), where `catch_unwind` calls the body through a function pointer at every entry,
//! which measured about 30 instructions per crossing. The panic's own message (with the kernel's
//! location) is printed by the panic hook before unwinding starts; the guard adds which entry
//! point it came through and aborts before the unwind reaches the boundary. (An `extern "C"`
//! function would abort there anyway, since Rust 1.81; the guard makes the message say why.)

/// Aborts the process if dropped, which happens only while a panic unwinds out of its scope.
struct AbortOnUnwind(&'static str);

impl Drop for AbortOnUnwind {
    #[cold]
    fn drop(&mut self) {
        eprintln!(
            "tether: {}: panicked (message above); aborting (a broken invariant or a broken \
             contract: see docs/c-abi.md)",
            self.0
        );
        std::process::abort()
    }
}

/// Runs `body`; on a panic prints which entry point it came through and aborts the process.
#[inline(always)]
pub(crate) fn guard<R>(entry: &'static str, body: impl FnOnce() -> R) -> R {
    let bomb = AbortOnUnwind(entry);
    let r = body();
    core::mem::forget(bomb);
    r
}
