//! Fuzz target: bytes → an operation sequence (`spec::conformance::Program`, see its `Arbitrary`
//! implementation) → the same conformance driver as `spec/tests/conformance.rs`. A divergence
//! between `binding-core` and the spec's sequential semantics (or a violation either side
//! detects) is a crash; its report lists the objects and the operations that reproduce it.
#![no_main]

use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use spec::conformance::{self, Coverage, Divergence, Program};

/// The correct kernel, or with the `teeth` feature the broken variant `TETHER_FUZZ_FLAW` names.
fn check(program: &Program) -> Result<Coverage, Divergence> {
    #[cfg(feature = "teeth")]
    {
        use binding_core::flaw::Flaw;
        static FLAW: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
        let flaw = *FLAW.get_or_init(|| {
            std::env::var("TETHER_FUZZ_FLAW")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        });
        const HIT: u8 = Flaw::HitWithoutTryIncref as u8;
        const REARM: u8 = Flaw::ReviveWithoutRearm as u8;
        const DROP: u8 = Flaw::DropBeforeTransit as u8;
        const RECLAIM: u8 = Flaw::ReclaimFreesInTransit as u8;
        // Over both object systems, as `conformance::check` runs the correct kernel.
        match flaw {
            0 => {}
            HIT => return conformance::run_both::<HIT>(program),
            REARM => return conformance::run_both::<REARM>(program),
            DROP => return conformance::run_both::<DROP>(program),
            RECLAIM => return conformance::run_both::<RECLAIM>(program),
            n => panic!("TETHER_FUZZ_FLAW={n}: not a variant one operation at a time can show"),
        }
    }
    conformance::check(program)
}

fuzz_target!(|program: Program| {
    // libfuzzer-sys aborts at the first panic, before unwinding. The model frontend reports a
    // violation by panicking, and the driver catches that to say which operation of which
    // sequence diverged: so let panics unwind; a divergence still aborts (below), and libFuzzer
    // records the input.
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let _ = std::panic::take_hook();
        std::panic::set_hook(Box::new(|info| eprintln!("{info}")));
    });
    if let Err(d) = check(&program) {
        eprintln!("{d}");
        eprintln!("minimized: {}", conformance::minimize(d, check));
        std::process::abort();
    }
});
