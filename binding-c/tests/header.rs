//! `include/tether.h` is generated from the crate by cbindgen; this test fails when the committed
//! header differs from what the sources generate. Regenerate with
//! `TETHER_BLESS=1 cargo test -p binding-c --test header`.

use std::path::Path;

#[test]
fn header_matches_the_sources() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("binding-c/cbindgen.toml parses");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");
    let path = crate_dir.join("include/tether.h");
    if std::env::var_os("TETHER_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/tether.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "binding-c/include/tether.h is out of date with binding-c/src: regenerate it with \
         `TETHER_BLESS=1 cargo test -p binding-c --test header` and commit it"
    );
}
