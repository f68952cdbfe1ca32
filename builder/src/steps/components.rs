//! One layer per platform component: its image as an OCI image layout (the upstream
//! blobs byte for byte, so its digests stay the pinned ones), its rendered config and
//! the service entry that runs `harmony-agent component run NAME` under the base's init.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::agent::{detect_init, InitSystem, AGENT_PATH};
use super::StepOutput;
use crate::components::COMPONENTS_DIR;
use crate::oci::digest::{blob_path, sha256_digest};
use crate::oci::SourceImage;
use crate::recipe::ComponentItem;
use crate::tree::layer::LayerChanges;
use crate::tree::{Entry, Kind, Meta, Tree};

#[derive(Debug, thiserror::Error)]
pub enum ComponentStepError {
    #[error("component {name}: the base image has no init system to run it (systemd, OpenRC, busybox init)")]
    NoInitSystem { name: String },
    #[error("component {name}: reading blob {path}: {source}")]
    Blob {
        name: String,
        path: String,
        source: std::io::Error,
    },
    #[error("component {name}: blob {path} does not have digest {digest}")]
    Digest {
        name: String,
        path: String,
        digest: String,
    },
    #[error("component {name}: the image has no layers")]
    NoLayers { name: String },
    #[error(transparent)]
    InittabNotText(#[from] super::inittab::InittabNotText),
}

pub fn service_command(name: &str) -> String {
    format!("{AGENT_PATH} component run {name}")
}

pub fn component_step(
    tree: &Tree,
    item: &ComponentItem,
    image: &SourceImage,
) -> Result<StepOutput, ComponentStepError> {
    let name = &item.name;
    let init =
        detect_init(tree).ok_or_else(|| ComponentStepError::NoInitSystem { name: name.clone() })?;
    let first = image
        .layers
        .first()
        .ok_or_else(|| ComponentStepError::NoLayers { name: name.clone() })?;
    // Every blob of an opened image sits in one store: STORE/blobs/sha256/HEX.
    let store = first
        .path
        .ancestors()
        .nth(3)
        .unwrap_or(Path::new("/"))
        .to_path_buf();
    let dir = format!("{COMPONENTS_DIR}/{name}");
    let mut changes = LayerChanges::default();
    let mut digest = Sha256::new();
    digest.update(format!(
        "{name}\n{init:?}\n{}\n{:?}\n{:?}\n{:?}\n{}\n{:?}\n{}\n",
        item.config_mount,
        item.command,
        item.env,
        item.rendered.secrets,
        item.user,
        item.capabilities,
        item.data_mount
    ));

    let mut blob = |d: &str| -> Result<Vec<u8>, ComponentStepError> {
        let path = blob_path(&store, d);
        let bytes = std::fs::read(&path).map_err(|source| ComponentStepError::Blob {
            name: name.clone(),
            path: path.display().to_string(),
            source,
        })?;
        if sha256_digest(&bytes) != d {
            return Err(ComponentStepError::Digest {
                name: name.clone(),
                path: path.display().to_string(),
                digest: d.to_string(),
            });
        }
        digest.update(d.as_bytes());
        Ok(bytes)
    };
    let manifest = blob(&image.manifest_digest)?;
    let media_type = serde_json::from_slice::<serde_json::Value>(&manifest)
        .ok()
        .and_then(|m| m["mediaType"].as_str().map(str::to_string))
        .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": media_type,
            "digest": image.manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }]
    });
    let put_blob = |changes: &mut LayerChanges, d: &str, bytes: Vec<u8>| {
        let hex = d.trim_start_matches("sha256:");
        changes.put(
            &format!("{dir}/blobs/sha256/{hex}"),
            Entry::file(bytes, 0o444),
        );
    };
    let config = blob(&image.config_digest)?;
    put_blob(&mut changes, &image.manifest_digest, manifest);
    put_blob(&mut changes, &image.config_digest, config);
    for l in &image.layers {
        let bytes = blob(&l.digest)?;
        put_blob(&mut changes, &l.digest, bytes);
    }
    changes.put(
        &format!("{dir}/oci-layout"),
        Entry::file(br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(), 0o444),
    );
    changes.put(
        &format!("{dir}/index.json"),
        Entry::file(serde_json::to_vec(&index).expect("json"), 0o444),
    );
    let described = serde_json::json!({
        "name": name,
        "image": item.image.to_string(),
        "manifest_digest": image.manifest_digest,
        "config_mount": item.config_mount,
        "command": item.command,
        "env": item.env.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        "user": item.user,
        "capabilities": item.capabilities,
        "data_mount": item.data_mount,
        // Names of node secrets and how they reach the process; never their values.
        "secrets": item.rendered.secrets,
    });
    changes.put(
        &format!("{dir}/component.json"),
        Entry::file(serde_json::to_vec_pretty(&described).expect("json"), 0o444),
    );
    let rendered = [
        ("config", &item.rendered.files),
        ("resources", &item.rendered.resources),
    ];
    for (subdir, files) in rendered {
        for (path, text) in files {
            digest.update(format!("{subdir}/{path}\n{text}\n"));
            changes.put(
                &format!("{dir}/{subdir}/{path}"),
                Entry::file(text.as_bytes().to_vec(), 0o444),
            );
        }
    }

    let command = service_command(name);
    match init {
        InitSystem::BusyboxInit => {
            let line = format!("::respawn:{command}");
            let updated = super::inittab::edit(tree, &mut changes, |current| {
                let mut updated = current.to_string();
                if !current.lines().any(|l| l.trim() == line) {
                    if !updated.is_empty() && !updated.ends_with('\n') {
                        updated.push('\n');
                    }
                    updated += &line;
                    updated.push('\n');
                }
                updated
            })?;
            digest.update(updated.as_bytes());
        }
        InitSystem::Systemd => {
            let unit_name = format!("harmony-component-{name}.service");
            let unit = format!(
                "[Unit]\nDescription=Harmony platform component {name}\n\
                 After=network-online.target harmony-firstboot.service\nWants=network-online.target\n\n\
                 [Service]\nExecStart={command}\nRestart=always\nRestartSec=5\n\n\
                 [Install]\nWantedBy=multi-user.target\n"
            );
            digest.update(unit.as_bytes());
            let path = format!("/usr/lib/systemd/system/{unit_name}");
            changes.put(&path, Entry::file(unit.into_bytes(), 0o644));
            changes.put(
                &format!("/etc/systemd/system/multi-user.target.wants/{unit_name}"),
                Entry {
                    kind: Kind::Symlink(path),
                    meta: Meta::new(0o777),
                },
            );
        }
        InitSystem::OpenRc => {
            let script_name = format!("harmony-component-{name}");
            let script = format!(
                "#!/sbin/openrc-run\ndescription=\"Harmony platform component {name}\"\n\
                 supervisor=supervise-daemon\ncommand={AGENT_PATH}\ncommand_args=\"component run {name}\"\n\n\
                 depend() {{\n\tneed net\n\tafter harmony-firstboot\n}}\n"
            );
            digest.update(script.as_bytes());
            let path = format!("/etc/init.d/{script_name}");
            changes.put(&path, Entry::file(script.into_bytes(), 0o755));
            changes.put(
                &format!("/etc/runlevels/default/{script_name}"),
                Entry {
                    kind: Kind::Symlink(path),
                    meta: Meta::new(0o777),
                },
            );
        }
    }
    Ok(StepOutput {
        name: "component",
        description: format!(
            "harmony component {name}: {} at {dir}, run by {init:?} ({command})",
            item.image
        ),
        inputs_digest: hex::encode(digest.finalize()),
        changes,
    })
}
