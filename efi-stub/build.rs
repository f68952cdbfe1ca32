//! Link the stub as a freestanding, self-contained shared object: no C runtime, no
//! libraries, every reference resolved inside it (-z defs), entry point `efi_main`.
//! The builder converts it to PE32+; its only dynamic relocations are R_X86_64_RELATIVE.

fn main() {
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
    println!("cargo:rerun-if-changed=build.rs");
}
