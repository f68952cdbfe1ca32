//! Records, at compile time, the Rust crates linked into harmony-agent and harmony-init
//! for the one target they are built for, so every SBOM can list them with versions and
//! the `.crate` checksums of Cargo.lock (`cargo metadata` resolves features and target
//! filters; Cargo.lock alone would also list dev-only and Windows crates).

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::path::PathBuf;
use std::process::Command;

/// The target scripts/build.sh builds the static binaries for.
const TARGET: &str = "x86_64-unknown-linux-gnu";
const BINARIES: [&str; 2] = ["harmony-agent", "harmony-init"];

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let workspace = manifest_dir.parent().ok_or("builder/ has no parent")?;
    for watched in [
        "Cargo.lock",
        "Cargo.toml",
        "agent/Cargo.toml",
        "init/Cargo.toml",
    ] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let metadata = |offline: bool| {
        let mut cmd = Command::new(&cargo);
        cmd.args([
            "metadata",
            "--format-version",
            "1",
            "--filter-platform",
            TARGET,
        ])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"));
        if offline {
            cmd.arg("--offline");
        }
        cmd.output()
    };
    // Offline first: the sources are there when this builder's own dependencies were
    // fetched. A fresh machine may lack other members' dev-dependencies (cargo metadata
    // reads every member's manifest): then cargo fetches them, as a build would.
    let mut output = metadata(true)?;
    if !output.status.success() {
        output = metadata(false)?;
    }
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let checksums = lock_checksums(&std::fs::read_to_string(workspace.join("Cargo.lock"))?)?;

    let packages: BTreeMap<&str, &serde_json::Value> = metadata["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let nodes: BTreeMap<&str, &serde_json::Value> = metadata["resolve"]["nodes"]
        .as_array()
        .ok_or("cargo metadata: no resolve")?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();

    let mut crates = serde_json::Map::new();
    for binary in BINARIES {
        let root = packages
            .iter()
            .find(|(_, p)| p["name"] == binary && p["source"].is_null())
            .map(|(id, _)| *id)
            .ok_or_else(|| format!("cargo metadata: no workspace package {binary}"))?;
        // Normal dependencies only: build and dev dependencies are not linked in.
        let mut seen = BTreeSet::new();
        let mut todo = vec![root];
        while let Some(id) = todo.pop() {
            if !seen.insert(id) {
                continue;
            }
            let deps = nodes[id]["deps"]
                .as_array()
                .ok_or("resolve node without deps")?;
            for dep in deps {
                let normal = dep["dep_kinds"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()));
                if normal {
                    todo.push(dep["pkg"].as_str().ok_or("dep without pkg")?);
                }
            }
        }
        let mut list: Vec<serde_json::Value> = seen
            .iter()
            .map(|id| {
                let p = packages[id];
                let name = p["name"].as_str().unwrap_or_default();
                let version = p["version"].as_str().unwrap_or_default();
                serde_json::json!({
                    "name": name,
                    "version": version,
                    "registry": p["source"].as_str().is_some_and(|s| s.starts_with("registry+")),
                    "sha256": checksums.get(&(name.to_string(), version.to_string())),
                })
            })
            .collect();
        list.sort_by_key(|c| (c["name"].to_string(), c["version"].to_string()));
        crates.insert(binary.to_string(), serde_json::Value::Array(list));
    }
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("linked_crates.json");
    std::fs::write(out, serde_json::to_vec_pretty(&crates)?)?;
    Ok(())
}

/// (name, version) → the sha256 of the `.crate` file, from Cargo.lock.
fn lock_checksums(lock: &str) -> Result<BTreeMap<(String, String), String>, Box<dyn Error>> {
    let lock: toml::Table = lock.parse()?;
    let mut out = BTreeMap::new();
    for p in lock
        .get("package")
        .and_then(|p| p.as_array())
        .ok_or("Cargo.lock: no [[package]]")?
    {
        if let (Some(name), Some(version), Some(sum)) = (
            p.get("name").and_then(|v| v.as_str()),
            p.get("version").and_then(|v| v.as_str()),
            p.get("checksum").and_then(|v| v.as_str()),
        ) {
            out.insert((name.to_string(), version.to_string()), sum.to_string());
        }
    }
    Ok(out)
}
