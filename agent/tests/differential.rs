//! Differential test against the real Ignition 2.14: every config in `tests/corpus/` is
//! applied by Ignition (stages fetch-offline + files) and by `harmony-agent apply` to two
//! fresh copies of the same scratch root. Both must accept or both reject; for accepted
//! configs the normalised trees must be equal (paths, types, modes, owners, contents, link
//! targets, hard links, account files, unit files, the set of enabled units).
//!
//! The corpus states what upstream does: a `v*` case must be accepted by Ignition, an
//! `x*` case refused. Where Harmony deliberately or for now behaves otherwise, the case is
//! listed in `corpus/known_differences.json` with the kind of difference and why; the test
//! checks the difference is still exactly that kind, and fails once it is gone, so the
//! list cannot go stale. Needs root; fails (never skips) without it or without Ignition.

mod oracle;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use oracle::{real_ignition, scratch_root, tree};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
enum DifferenceKind {
    /// Ignition accepts, Harmony refuses.
    HarmonyRejects,
    /// Ignition refuses, Harmony accepts.
    HarmonyAccepts,
    /// Both accept; the trees differ.
    TreesDiffer,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KnownDifference {
    kind: DifferenceKind,
    /// Who is expected to close it ("by design" when Harmony means to differ).
    owner: String,
    why: String,
}

#[derive(Debug)]
enum Outcome {
    Equal {
        accepted: bool,
    },
    Different {
        kind: DifferenceKind,
        detail: String,
    },
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn run_case(config: &Path) -> Result<Outcome, String> {
    let bytes = fs::read(config).map_err(|e| format!("reading {}: {e}", config.display()))?;
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let ign_root = work.path().join("ignition-root");
    let agent_root = work.path().join("harmony-root");
    let ign_work = work.path().join("ignition-work");
    for d in [&ign_root, &agent_root, &ign_work] {
        fs::create_dir(d).map_err(|e| format!("{}: {e}", d.display()))?;
        scratch_root::build(d).map_err(|e| format!("building {}: {e}", d.display()))?;
    }
    // Ignition writes ssh keys as the new user: every parent of the root must be traversable.
    fs::set_permissions(
        work.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .map_err(|e| e.to_string())?;
    let fixture = tree::read(&agent_root);

    let ignition = real_ignition::apply(&bytes, &ign_root, &ign_work);
    let harmony = oracle::agent_apply(&agent_root, config);
    if harmony.is_err() {
        let after = tree::read(&agent_root);
        if after != fixture {
            let changed: Vec<&String> = after
                .keys()
                .chain(fixture.keys())
                .filter(|p| after.get(*p) != fixture.get(*p))
                .collect();
            return Err(format!(
                "harmony-agent refused the config but changed the root: {changed:?}"
            ));
        }
    }
    Ok(match (ignition, harmony) {
        (Ok(()), Ok(())) => {
            let a = tree::normalise(tree::read(&ign_root), &fixture);
            let b = tree::normalise(tree::read(&agent_root), &fixture);
            let diffs = tree::differences(&a, &b);
            if diffs.is_empty() {
                Outcome::Equal { accepted: true }
            } else {
                Outcome::Different {
                    kind: DifferenceKind::TreesDiffer,
                    detail: diffs.join("\n      "),
                }
            }
        }
        (Err(_), Err(_)) => Outcome::Equal { accepted: false },
        (Ok(()), Err(e)) => Outcome::Different {
            kind: DifferenceKind::HarmonyRejects,
            detail: format!("ignition accepts; harmony-agent: {e}"),
        },
        (Err(e), Ok(())) => Outcome::Different {
            kind: DifferenceKind::HarmonyAccepts,
            detail: format!("harmony-agent accepts; ignition: {e}"),
        },
    })
}

#[test]
fn harmony_agent_agrees_with_real_ignition_2_14() {
    oracle::require_root("the differential test");
    real_ignition::require();
    let dir = corpus_dir();
    let known_path = dir.join("known_differences.json");
    let known: BTreeMap<String, KnownDifference> = serde_json::from_slice(
        &fs::read(&known_path).unwrap_or_else(|e| panic!("{}: {e}", known_path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", known_path.display()));
    let mut cases: Vec<PathBuf> = fs::read_dir(&dir)
        .expect("reading the corpus")
        .map(|e| e.expect("a corpus entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ign"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 40,
        "the corpus has {} configs, the issue asks for at least 40",
        cases.len()
    );

    let mut failures = Vec::new();
    let (mut equal, mut both_accept, mut both_reject, mut known_seen, mut v34) = (0, 0, 0, 0, 0);
    for case in &cases {
        let name = case.file_stem().unwrap().to_string_lossy().into_owned();
        if fs::read(case).is_ok_and(|b| real_ignition::as_understood_by_2_14(&b) != b) {
            v34 += 1;
        }
        let outcome = match run_case(case) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let ignition_accepted = match &outcome {
            Outcome::Equal { accepted } => *accepted,
            Outcome::Different { kind, .. } => *kind != DifferenceKind::HarmonyAccepts,
        };
        // The corpus's own claim about upstream, checked so that a case cannot drift.
        let expect_accept = name.starts_with('v');
        if ignition_accepted != expect_accept {
            failures.push(format!(
                "{name}: Ignition 2.14 {} it, but the case's prefix says it {}",
                if ignition_accepted {
                    "accepts"
                } else {
                    "refuses"
                },
                if expect_accept {
                    "should accept"
                } else {
                    "should refuse"
                },
            ));
        }
        match (&outcome, known.get(&name)) {
            (Outcome::Equal { accepted }, None) => {
                equal += 1;
                if *accepted {
                    both_accept += 1
                } else {
                    both_reject += 1
                }
                println!("  {name}: equal ({})", if *accepted { "both accept" } else { "both reject" });
            }
            (Outcome::Equal { .. }, Some(k)) => failures.push(format!(
                "{name}: now agrees with Ignition, but known_differences.json still lists it ({:?}, {}): remove the entry",
                k.kind, k.why
            )),
            (Outcome::Different { kind, detail }, Some(k)) if *kind == k.kind => {
                known_seen += 1;
                println!("  {name}: known difference ({kind:?}, owner {}): {}\n      {detail}", k.owner, k.why);
            }
            (Outcome::Different { kind, detail }, Some(k)) => failures.push(format!(
                "{name}: differs as {kind:?}, but known_differences.json says {:?}:\n      {detail}",
                k.kind
            )),
            (Outcome::Different { kind, detail }, None) => {
                failures.push(format!("{name}: {kind:?}:\n      {detail}"))
            }
        }
    }
    for name in known.keys() {
        if !cases
            .iter()
            .any(|c| c.file_stem().is_some_and(|s| s.to_string_lossy() == *name))
        {
            failures.push(format!(
                "known_differences.json lists {name}, which is not in the corpus"
            ));
        }
    }
    println!(
        "note: Ignition 2.14 lacks the final spec 3.4.0 (it knows only 3.4.0-experimental); \
         the {v34} configs declaring 3.4.0 were handed to it as 3.4.0-experimental"
    );
    println!(
        "differential: {} configs, {equal} equal ({both_accept} both accept, {both_reject} both reject), \
         {known_seen} known differences, {} different",
        cases.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
