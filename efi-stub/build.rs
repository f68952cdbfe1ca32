//! Link the stub as a freestanding, self-contained shared object: no C runtime, no
//! libraries, every reference resolved inside it (-z defs), entry point `efi_main`.
//! The builder converts it to PE32+; its only dynamic relocations are R_X86_64_RELATIVE.
//!
//! Only in the `efi-stub` profile (scripts/build.sh): `cargo test` links the host test
//! binary of the pure parsers as an ordinary program. Cargo tells a build script its
//! profile only through OUT_DIR (`<target>/<profile>/build/<pkg>-<hash>/out`);
//! `rustc-link-arg-cdylib` would do without that, but cargo warns on every other build
//! that the package declares no cdylib.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    let profile = Path::new(&out_dir)
        .ancestors()
        .nth(3)
        .and_then(Path::file_name);
    if profile != Some("efi-stub".as_ref()) {
        return;
    }
    for arg in [
        "-nostdlib",
        "-nostartfiles",
        "-Wl,-Bsymbolic",
        "-Wl,-e,efi_main",
        "-Wl,--gc-sections",
        "-Wl,-z,defs",
        "-Wl,-z,norelro",
        "-Wl,--hash-style=gnu",
        "-Wl,--build-id=none",
    ] {
        println!("cargo:rustc-link-arg={arg}");
    }
}
