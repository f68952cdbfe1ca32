//! `OUT/vaquero/`: the image's part of a Vaquero configuration tree (v0.14 data model).
//!
//! ```text
//! vaquero/os/NAME-VERSION.yml               kernel + initrds under {{.env.agentURL}}/files/…, command line
//! vaquero/boot/harmony-ROLE.yml             the image with the role's Ignition template
//! vaquero/workflows/harmony-ROLE.yml        one boot per role
//! vaquero/assets/ignition/harmony-ROLE.ign  the node's Ignition as a Go template
//! vaquero/files/harmony/NAME/VERSION/       vmlinuz, initramfs.img, rootfs.img, SHA256SUMS
//! ```
//! The boot files are hard links to `pxe/` (copies across file systems).

use std::path::Path;

use sha2::{Digest, Sha256};

use super::EmitError;
use crate::manifest::Artifact;
use crate::vaquero::{
    boot_doc, files_prefix, ignition_template, os_doc, os_id, role_id, workflow_doc, ROLES,
};

const BOOT_FILES: [&str; 3] = ["vmlinuz", "initramfs.img", "rootfs.img"];
const INITRDS: [&str; 2] = ["initramfs.img", "rootfs.img"];

/// Write `out_dir/vaquero/` from `out_dir/pxe/` (emitted first). `cmdline` is the
/// PXE command line (the recipe's plus `harmony.root=`).
pub fn emit_vaquero(
    out_dir: &Path,
    name: &str,
    version: &str,
    cmdline: &[String],
) -> Result<Vec<Artifact>, EmitError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| EmitError::Io { path, source }
    };
    let root = out_dir.join("vaquero");
    let mut artifacts = Vec::new();
    let mut docs: Vec<(String, String)> = vec![(
        format!("os/{}.yml", os_id(name, version)),
        os_doc(name, version, cmdline, &INITRDS),
    )];
    for role in ROLES {
        let id = role_id(role);
        docs.push((format!("boot/{id}.yml"), boot_doc(role, name, version)));
        docs.push((format!("workflows/{id}.yml"), workflow_doc(role)));
        docs.push((format!("assets/ignition/{id}.ign"), ignition_template(role)));
    }
    for (rel, text) in &docs {
        let path = root.join(rel);
        let dir = path.parent().expect("a file in a directory");
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        std::fs::write(&path, text).map_err(io(&path))?;
        artifacts.push(Artifact::of_bytes(
            &format!("vaquero/{rel}"),
            "vaquero",
            text.as_bytes(),
        ));
    }

    let prefix = files_prefix(name, version);
    let files = root.join("files").join(&prefix);
    std::fs::create_dir_all(&files).map_err(io(&files))?;
    let mut sums = String::new();
    for f in BOOT_FILES {
        let src = out_dir.join("pxe").join(f);
        let dest = files.join(f);
        if std::fs::hard_link(&src, &dest).is_err() {
            std::fs::copy(&src, &dest).map_err(io(&src))?;
        }
        let bytes = std::fs::read(&dest).map_err(io(&dest))?;
        sums += &format!("{}  {f}\n", hex::encode(Sha256::digest(&bytes)));
        artifacts.push(Artifact::of_bytes(
            &format!("vaquero/files/{prefix}/{f}"),
            "vaquero-file",
            &bytes,
        ));
    }
    let sums_path = files.join("SHA256SUMS");
    std::fs::write(&sums_path, &sums).map_err(io(&sums_path))?;
    artifacts.push(Artifact::of_bytes(
        &format!("vaquero/files/{prefix}/SHA256SUMS"),
        "vaquero-file",
        sums.as_bytes(),
    ));
    Ok(artifacts)
}
