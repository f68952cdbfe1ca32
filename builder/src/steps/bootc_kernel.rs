//! The kernel where bootc looks for it: `/usr/lib/modules/KVER/vmlinuz`.
//!
//! A base whose kernel package left it only as `/boot/vmlinuz-KVER` (most RPM and many
//! container-built images) gets one layer that puts a copy in the bootc place, so the OCI
//! image Harmony pushes boots with bootc-style tooling as its PXE files do.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::StepOutput;
use crate::kernel::{find_kernel, KernelError};
use crate::tree::layer::LayerChanges;
use crate::tree::{Entry, Kind, Meta, Tree};

/// None when the image has its kernel in the bootc place already (or has no kernel: the
/// build reports that itself when it looks for one).
pub fn bootc_kernel_step(tree: &Tree) -> Result<Option<StepOutput>, KernelError> {
    let kernel = match find_kernel(tree) {
        Ok(k) => k,
        Err(KernelError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    let wanted = format!("usr/lib/modules/{}/vmlinuz", kernel.version);
    let present = tree
        .resolve_all(&wanted)
        .ok()
        .and_then(|p| tree.get(&p).map(|e| matches!(e.kind, Kind::File(_))))
        .unwrap_or(false);
    if present {
        return Ok(None);
    }
    let mut changes = LayerChanges::default();
    let mut dir = String::new();
    for component in ["usr", "lib", "modules", kernel.version.as_str()] {
        dir = if dir.is_empty() {
            component.to_string()
        } else {
            format!("{dir}/{component}")
        };
        if tree
            .resolve_all(&dir)
            .ok()
            .and_then(|p| tree.get(&p))
            .is_none()
        {
            changes.put(
                &dir,
                Entry {
                    kind: Kind::Dir,
                    meta: Meta::new(0o755),
                },
            );
        }
    }
    changes.put(
        &wanted,
        Entry {
            kind: Kind::File(Arc::new(kernel.vmlinuz.to_vec())),
            meta: Meta::new(0o644),
        },
    );
    let mut digest = Sha256::new();
    digest.update(wanted.as_bytes());
    digest.update(kernel.vmlinuz.as_slice());
    Ok(Some(StepOutput {
        name: "bootc-kernel",
        description: format!("harmony: kernel {} at /{wanted} (bootc)", kernel.version),
        inputs_digest: hex::encode(digest.finalize()),
        changes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: &[u8]) -> Entry {
        Entry {
            kind: Kind::File(Arc::new(bytes.to_vec())),
            meta: Meta::new(0o644),
        }
    }

    #[test]
    fn a_kernel_only_in_boot_is_copied_to_usr_lib_modules() {
        let mut t = Tree::new();
        t.mkdir_all("boot", &Meta::new(0o755)).unwrap();
        t.insert("boot/vmlinuz-6.1.0-9-amd64", file(b"bzImage"))
            .unwrap();
        let step = bootc_kernel_step(&t).unwrap().expect("a layer");
        let put = step
            .changes
            .0
            .get("usr/lib/modules/6.1.0-9-amd64/vmlinuz")
            .expect("vmlinuz in the bootc place");
        assert_eq!(
            *put,
            crate::tree::layer::Change::Put(file(b"bzImage")),
            "same bytes"
        );
        for dir in [
            "usr",
            "usr/lib",
            "usr/lib/modules",
            "usr/lib/modules/6.1.0-9-amd64",
        ] {
            assert!(step.changes.0.contains_key(dir), "{dir}");
        }
    }

    #[test]
    fn nothing_to_do_when_the_kernel_is_there_or_absent() {
        let mut t = Tree::new();
        assert!(bootc_kernel_step(&t).unwrap().is_none());
        t.mkdir_all("usr/lib/modules/6.1.0", &Meta::new(0o755))
            .unwrap();
        t.insert("usr/lib/modules/6.1.0/vmlinuz", file(b"k"))
            .unwrap();
        assert!(bootc_kernel_step(&t).unwrap().is_none());
    }
}
