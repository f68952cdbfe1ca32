//! The two static binaries a build bakes in: harmony-agent (into the root) and
//! harmony-init (the initramfs's /init). They are built for the gnu target with
//! `crt-static`, so they run in a bare initramfs and on any distribution's root.

use std::path::{Path, PathBuf};

use object::Object;

pub const BUILD_HINT: &str = "RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release \
--target x86_64-unknown-linux-gnu -p harmony-agent -p harmony-init";

/// How to build harmony-efi-stub (scripts/build.sh does it).
pub const EFI_STUB_BUILD_HINT: &str = "cargo rustc --profile efi-stub -p harmony-efi-stub --lib \
--crate-type cdylib -- -C no-redzone=yes";
/// What cargo names the stub's shared object, in `target/efi-stub/`.
pub const EFI_STUB_FILE: &str = "libharmony_efi_stub.so";
pub const EFI_STUB_ENV: &str = "HARMONY_EFI_STUB";

#[derive(Debug, thiserror::Error)]
pub enum BinaryError {
    #[error("the EFI stub (for disk images) was not found (looked at: {looked}); build it with: {EFI_STUB_BUILD_HINT} (or set {EFI_STUB_ENV})")]
    EfiStubNotFound { looked: String },
    #[error("{name} not found (looked at: {looked}); build it with: {BUILD_HINT} (or set {env})")]
    NotFound {
        name: String,
        looked: String,
        env: String,
    },
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a static x86_64 ELF executable ({why}); build it with: {BUILD_HINT}")]
    NotStatic { path: String, why: String },
}

#[derive(Debug, Clone)]
pub struct StaticBinary {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
}

/// Find `name` (harmony-agent or harmony-init): `explicit`, else `$HARMONY_AGENT_BIN` /
/// `$HARMONY_INIT_BIN`, else beside this executable in cargo's static-target directory.
pub fn locate(name: &str, explicit: Option<&Path>) -> Result<StaticBinary, BinaryError> {
    let env = format!("{}_BIN", name.to_uppercase().replace('-', "_"));
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = explicit {
        candidates.push(p.to_path_buf());
    } else if let Some(p) = std::env::var_os(&env) {
        candidates.push(PathBuf::from(p));
    } else {
        candidates.extend(default_candidates(name));
    }
    // cargo also leaves a dynamically linked build of the same name in target/release
    // (tests need it): skip those and take the first static one.
    let mut dynamic = None;
    for path in &candidates {
        if path.is_file() {
            match load(path) {
                Ok(found) => return Ok(found),
                Err(e @ BinaryError::NotStatic { .. }) if explicit.is_none() => {
                    dynamic.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
    }
    if let Some(e) = dynamic {
        return Err(e);
    }
    Err(BinaryError::NotFound {
        name: name.to_string(),
        looked: candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        env,
    })
}

/// Find harmony-efi-stub's shared object: `$HARMONY_EFI_STUB`, else cargo's
/// `target/efi-stub/` above this executable (or in CARGO_TARGET_DIR). It is checked
/// when it is converted to PE (emit::efi_stub).
pub fn locate_efi_stub() -> Result<StaticBinary, BinaryError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os(EFI_STUB_ENV) {
        candidates.push(PathBuf::from(p));
    } else {
        let in_profile = Path::new("efi-stub").join(EFI_STUB_FILE);
        if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
            candidates.push(PathBuf::from(dir).join(&in_profile));
        }
        if let Ok(exe) = std::env::current_exe() {
            candidates.extend(
                exe.ancestors()
                    .skip(1)
                    .take(4)
                    .map(|up| up.join(&in_profile)),
            );
        }
        candidates.dedup();
    }
    for path in &candidates {
        if path.is_file() {
            let bytes = std::fs::read(path).map_err(|source| BinaryError::Read {
                path: path.display().to_string(),
                source,
            })?;
            return Ok(StaticBinary {
                path: path.clone(),
                bytes,
            });
        }
    }
    Err(BinaryError::EfiStubNotFound {
        looked: candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// `target/release/harmony` → `target/x86_64-unknown-linux-gnu/release/NAME`; also works
/// from `target/*/deps/` (tests, benches) and from a CARGO_TARGET_DIR.
fn default_candidates(name: &str) -> Vec<PathBuf> {
    let triple_release = Path::new("x86_64-unknown-linux-gnu")
        .join("release")
        .join(name);
    let mut out = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        out.push(PathBuf::from(dir).join(&triple_release));
    }
    if let Ok(exe) = std::env::current_exe() {
        let ups: Vec<&Path> = exe.ancestors().skip(1).take(4).collect();
        out.extend(ups.iter().map(|up| up.join(&triple_release)));
        out.extend(ups.iter().map(|up| up.join(name)));
    }
    out.dedup();
    out
}

pub fn load(path: &Path) -> Result<StaticBinary, BinaryError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| BinaryError::Read {
        path: shown.clone(),
        source,
    })?;
    check_static(&bytes).map_err(|why| BinaryError::NotStatic { path: shown, why })?;
    Ok(StaticBinary {
        path: path.to_path_buf(),
        bytes,
    })
}

/// A dynamically linked binary has an interpreter (PT_INTERP, e.g. ld-linux) and would
/// fail in a bare initramfs or on a musl root with "not found".
fn check_static(bytes: &[u8]) -> Result<(), String> {
    use object::read::elf::{ElfFile64, ProgramHeader};
    let file = ElfFile64::<object::Endianness>::parse(bytes)
        .map_err(|e| format!("not a 64-bit ELF file: {e}"))?;
    if file.architecture() != object::Architecture::X86_64 {
        return Err(format!("architecture is {:?}", file.architecture()));
    }
    let endian = file.endian();
    let interp = file
        .elf_program_headers()
        .iter()
        .any(|ph| ph.p_type(endian) == object::elf::PT_INTERP);
    if interp {
        return Err("dynamically linked: it has an ELF interpreter".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_binary_is_refused_with_the_build_hint() {
        // The test binary itself is dynamically linked.
        let me = std::env::current_exe().unwrap();
        let err = load(&me).unwrap_err().to_string();
        assert!(err.contains("dynamically linked"), "{err}");
        assert!(err.contains("crt-static"), "{err}");
    }

    #[test]
    fn missing_binary_names_where_it_looked() {
        let err = locate(
            "harmony-agent",
            Some(Path::new("/nonexistent/harmony-agent")),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("/nonexistent/harmony-agent"), "{err}");
    }
}
