//! `harmony build --progress=json` and plain progress, on real builds of the default
//! recipe: every JSON line parses, the long phases (squashfs and VMDK compression) and the
//! build steps are there, and each long phase ends with done == total; plain lines carry
//! no escape codes. The recipe adds a file of its own to the default recipe, so the root,
//! the disk and the VMDK are made anew (and compressed) even with a warm cache; the plain
//! build then rebuilds it from the cache (the plain renderer's lines for long phases are
//! checked in builder/src/progress/plain.rs), which keeps this to one compression.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use harmony_vm_tests::{cache_dir, harmony_cli};

/// The default recipe with its base named by absolute path and a file no earlier build
/// had, so nothing after the steps comes from the artifact cache.
fn fresh_default_recipe(dir: &Path) -> PathBuf {
    let cache = cache_dir();
    harmony::build::default_base::ensure_default_base(&cache, 0).expect("the default base");
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let text = harmony::recipe::DEFAULT_RECIPE
        .replace(
            "base: oci-layout:bases/",
            &format!("base: oci-layout:{}/bases/", cache.display()),
        )
        .replacen(
            "files:\n",
            &format!(
                "files:\n  - path: /etc/harmony-progress-test\n    contents: \"{nonce}\\n\"\n    mode: \"0644\"\n"
            ),
            1,
        );
    assert!(text.contains("harmony-progress-test"), "{text}");
    let recipe = dir.join("recipe.yaml");
    std::fs::write(&recipe, text).unwrap();
    recipe
}

fn build(recipe: &Path, out: &Path, extra: &[&str]) -> Output {
    let output = Command::new(harmony_cli())
        .arg("build")
        .arg(recipe)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("HARMONY_CACHE", cache_dir())
        .output()
        .expect("running harmony build");
    assert!(
        output.status.success(),
        "harmony build {extra:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn json_progress_then_plain_progress_on_real_builds() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = fresh_default_recipe(dir.path());
    json_progress_is_one_object_per_line_and_every_long_phase_ends_done(&recipe, dir.path());
    progress_off_a_terminal_is_plain_lines_without_escape_codes(&recipe, dir.path());
}

fn json_progress_is_one_object_per_line_and_every_long_phase_ends_done(recipe: &Path, dir: &Path) {
    let output = build(recipe, &dir.join("json"), &["--progress=json"]);
    let stderr = String::from_utf8(output.stderr).expect("UTF-8 stderr");
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(!events.is_empty());
    for e in &events {
        assert!(
            e["type"].is_string() && e["phase"].is_string(),
            "an event without type or phase: {e}"
        );
    }
    // Long phases (start .. end) by phase and id: their events in order.
    let mut long: BTreeMap<(String, String), Vec<&serde_json::Value>> = BTreeMap::new();
    let mut steps = BTreeSet::new();
    for e in &events {
        let phase = e["phase"].as_str().unwrap().to_string();
        match e["type"].as_str().unwrap() {
            "start" | "progress" | "end" | "abandoned" => {
                let id = e["id"].as_str().unwrap_or_default().to_string();
                long.entry((phase, id)).or_default().push(e);
            }
            "step" => {
                assert_eq!(
                    (e["done"].as_u64(), e["total"].as_u64()),
                    (Some(1), Some(1)),
                    "{e}"
                );
                assert!(e["seconds"].as_f64().is_some(), "{e}");
                steps.insert(phase);
            }
            "log" | "message" => assert!(e["text"].is_string(), "{e}"),
            other => panic!("unknown event type {other}: {e}"),
        }
    }
    for step in [
        "recipe",
        "unpack base",
        "steps",
        "initrds",
        "disk",
        "vmdk",
        "commit",
    ] {
        assert!(steps.contains(step), "no step {step}: {steps:?}\n{stderr}");
    }
    for phase in ["squashfs", "vmdk"] {
        assert!(
            long.keys().any(|(p, _)| p == phase),
            "no {phase} phase: {:?}",
            long.keys()
        );
    }
    for ((phase, id), seq) in &long {
        let first = seq.first().unwrap();
        let last = seq.last().unwrap();
        assert_eq!(first["type"], "start", "{phase} {id}: {seq:?}");
        assert_eq!(last["type"], "end", "{phase} {id}: {seq:?}");
        assert_eq!(first["done"], 0, "{first}");
        let total = last["total"].as_u64().expect("total");
        assert!(total > 0, "{last}");
        assert_eq!(last["done"].as_u64(), Some(total), "{phase} {id}: {last}");
        assert_eq!(last["unit"], "blocks", "{last}");
        let done: Vec<u64> = seq.iter().map(|e| e["done"].as_u64().unwrap()).collect();
        assert!(
            done.windows(2).all(|w| w[0] <= w[1]) && done.iter().all(|&d| d <= total),
            "{phase} {id}: {done:?} of {total}"
        );
    }
    // The artifact table is stdout's, and stays there.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("disk.vmdk"), "{stdout}");
}

fn progress_off_a_terminal_is_plain_lines_without_escape_codes(recipe: &Path, dir: &Path) {
    // No --progress: auto, and stderr is a pipe here.
    let output = build(recipe, &dir.join("plain"), &[]);
    for (name, bytes) in [("stderr", &output.stderr), ("stdout", &output.stdout)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains('\x1b'), "an escape code on {name}:\n{text}");
        assert!(!text.contains('\r'), "a carriage return on {name}:\n{text}");
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    for step in ["recipe: ", "initrds (cached): ", "commit: "] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(step) && l.ends_with('s')),
            "no line {step:?}:\n{stderr}"
        );
    }
    // Log lines are plain too: a level word, no colour codes around it.
    assert!(
        stderr.contains(" INFO building harmony-default"),
        "{stderr}"
    );
}
