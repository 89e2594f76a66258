//! Emits PyO3's `Py_3_*` / `Py_GIL_DISABLED` cfgs for the interpreter being built for.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(Py_GIL_DISABLED)");
    for minor in 7..=20 {
        println!("cargo::rustc-check-cfg=cfg(Py_3_{minor})");
    }
    #[cfg(feature = "python")]
    {
        pyo3_build_config::use_pyo3_cfgs();
        // The forced-unwind shields (see src/py/shield.rs); C, no -fexceptions needed.
        if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
            cc::Build::new()
                .file("csrc/shield.c")
                .compile("tether_shield");
            println!("cargo::rerun-if-changed=csrc/shield.c");
        }
    }
}
