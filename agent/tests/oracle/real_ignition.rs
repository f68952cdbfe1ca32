//! The real Ignition 2.14 (Debian package `ignition`) run offline on a scratch root, the
//! way FACTS.md measured it: `-platform file`, stage fetch-offline then files, every state
//! file in a work directory, and a no-op `setfiles` first on PATH for the relabel step.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const BINARY: &str = "/usr/lib/dracut/modules.d/30ignition/ignition";

/// Fail loudly, never skip: the differential result is only worth quoting if it ran.
pub fn require() {
    assert!(
        Path::new(BINARY).is_file(),
        "real Ignition 2.14 is not installed ({BINARY} is missing): run scripts/setup-host.sh, \
         which installs the Debian package `ignition`"
    );
}

/// 2.14 predates the final 3.4.0 spec: it knows that version only as 3.4.0-experimental
/// and refuses "3.4.0" as unsupported. A config that declares 3.4.0 is handed to it as
/// 3.4.0-experimental; anything else is handed over byte for byte.
pub fn as_understood_by_2_14(config: &[u8]) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(config) else {
        return config.to_vec();
    };
    match v.pointer_mut("/ignition/version") {
        Some(version) if version == "3.4.0" => {
            *version = serde_json::Value::from("3.4.0-experimental");
            serde_json::to_vec(&v).expect("a JSON value serialises")
        }
        _ => config.to_vec(),
    }
}

/// Run both stages on `root`, with `work` (an empty directory) for the config, state and
/// a PATH holding the no-op setfiles. Ok, or Err with Ignition's CRITICAL lines.
pub fn apply(config: &[u8], root: &Path, work: &Path) -> Result<(), String> {
    let cfg = work.join("config.ign");
    fs::write(&cfg, as_understood_by_2_14(config)).expect("writing the config");
    let bin = work.join("bin");
    fs::create_dir_all(&bin).expect("creating the setfiles dir");
    let setfiles = bin.join("setfiles");
    fs::write(&setfiles, "#!/bin/sh\nexit 0\n").expect("writing setfiles");
    fs::set_permissions(&setfiles, fs::Permissions::from_mode(0o755)).expect("chmod setfiles");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/sbin:/usr/bin:/sbin:/bin".into())
    );
    let state: PathBuf = work.join("state");
    for stage in ["fetch-offline", "files"] {
        let out = Command::new(BINARY)
            .env("IGNITION_CONFIG_FILE", &cfg)
            .env("PATH", &path)
            .args(["-platform", "file", "-stage", stage, "-root"])
            .arg(root)
            .arg("-config-cache")
            .arg(work.join("cache.json"))
            .arg("-state-file")
            .arg(&state)
            .arg("-neednet")
            .arg(work.join("neednet"))
            .arg("-log-to-stdout")
            .output()
            .unwrap_or_else(|e| panic!("running {BINARY}: {e}"));
        if !out.status.success() {
            let log = String::from_utf8_lossy(&out.stdout);
            let critical: Vec<&str> = log.lines().filter(|l| l.contains("CRITICAL")).collect();
            return Err(format!("stage {stage}: {}", critical.join(" | ")));
        }
    }
    Ok(())
}
