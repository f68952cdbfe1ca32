//! The kernel where bootc looks for it: `/usr/lib/modules/KVER/vmlinuz`.
//!
//! A base whose kernel package left it only as `/boot/vmlinuz-KVER` (most RPM and many
//! container-built images) gets one layer that puts a copy in the bootc place, so the OCI
//! image Harmony pushes boots with bootc-style tooling as its PXE files do.
//!
//! Not for an unmerged /usr whose modules are in a real `/lib/modules/KVER` (Alpine's
//! `/boot/vmlinuz-virt` + `/lib/modules/6.6.58-0-virt`): a `/usr/lib/modules/KVER`
//! holding only the kernel would split it from its modules, and bootc needs a merged
//! /usr anyway. Such a kernel stays where its package put it; the builder finds it there.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::StepOutput;
use crate::kernel::{find_kernel, KernelError};
use crate::tree::layer::LayerChanges;
use crate::tree::{Entry, Kind, Meta, Tree};

/// None when the image has its kernel in the bootc place already, keeps its modules
/// outside /usr, or has no kernel (the build reports that itself when it looks for one).
pub fn bootc_kernel_step(tree: &Tree) -> Result<Option<StepOutput>, KernelError> {
    let kernel = match find_kernel(tree) {
        Ok(k) => k,
        Err(KernelError::NotFound) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !kernel.modules_dir.starts_with("usr/lib/modules/") {
        return Ok(None);
    }
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
        Entry::file(bytes, 0o644)
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
    fn an_alpine_kernel_stays_beside_its_modules_in_unmerged_lib() {
        let mut t = Tree::new();
        t.mkdir_all("boot", &Meta::new(0o755)).unwrap();
        t.mkdir_all("usr/lib", &Meta::new(0o755)).unwrap();
        t.mkdir_all("lib/modules/6.6.58-0-virt/kernel", &Meta::new(0o755))
            .unwrap();
        t.insert("boot/vmlinuz-virt", file(b"bzImage")).unwrap();
        assert!(bootc_kernel_step(&t).unwrap().is_none());
        // A merged /usr gets the copy, found through the /lib link.
        let mut merged = Tree::new();
        merged.mkdir_all("boot", &Meta::new(0o755)).unwrap();
        merged
            .mkdir_all("usr/lib/modules/6.6.58-0-virt/kernel", &Meta::new(0o755))
            .unwrap();
        merged
            .insert(
                "lib",
                Entry {
                    kind: Kind::Symlink("usr/lib".into()),
                    meta: Meta::new(0o777),
                },
            )
            .unwrap();
        merged
            .insert("boot/vmlinuz-virt", file(b"bzImage"))
            .unwrap();
        let step = bootc_kernel_step(&merged).unwrap().expect("a layer");
        assert!(step
            .changes
            .0
            .contains_key("usr/lib/modules/6.6.58-0-virt/vmlinuz"));
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
