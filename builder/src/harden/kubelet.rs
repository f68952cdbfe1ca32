//! Kubernetes node files (CIS Kubernetes Benchmark 4.1.x): kubeconfigs and the kubelet
//! config 0600 root:root, kubelet unit drop-ins at most 0644, private keys 0600. Most of
//! them are written at first boot (the agent writes bootstrap-kubelet.conf 0600); the
//! build tightens those the image already carries, and verify checks them.

use super::flavour::Flavour;
use super::{looser_than, tighten, Outcome, Rule};
use crate::tree::{Kind, Tree, TreeError};

pub const FILES: Rule = Rule {
    id: "kubelet-file-permissions",
    title:
        "kubeconfigs, kubelet config and keys 0600 root:root; kubelet unit drop-ins at most 0644",
    cis: "Kubernetes 4.1.1-4.1.10",
    apply,
    check,
};

/// (path prefix or exact path, most permissive mode).
fn limit(path: &str) -> Option<u32> {
    let exact_0600 = [
        "etc/kubernetes/kubelet.conf",
        "etc/kubernetes/bootstrap-kubelet.conf",
        "etc/kubernetes/admin.conf",
        "var/lib/kubelet/config.yaml",
    ];
    if exact_0600.contains(&path) {
        return Some(0o600);
    }
    if path.starts_with("etc/kubernetes/pki/") && path.ends_with(".key") {
        return Some(0o600);
    }
    if path.starts_with("etc/kubernetes/pki/") && path.ends_with(".crt") {
        return Some(0o644);
    }
    if path.starts_with("etc/systemd/system/kubelet.service.d/")
        || path.starts_with("usr/lib/systemd/system/kubelet.service.d/")
        || path == "etc/kubernetes/manifests"
        || path.starts_with("etc/kubernetes/manifests/")
    {
        return Some(0o644);
    }
    None
}

fn governed(tree: &Tree) -> Vec<(String, u32)> {
    tree.iter()
        .filter(|(_, e)| matches!(e.kind, Kind::File(_)))
        .filter_map(|(p, _)| limit(p).map(|m| (p.to_string(), m)))
        .collect()
}

fn apply(tree: &mut Tree, _: &Flavour) -> Result<(), TreeError> {
    for (path, max) in governed(tree) {
        tighten(tree, &path, max);
    }
    Ok(())
}

fn check(tree: &Tree, _: &Flavour) -> Outcome {
    let files = governed(tree);
    if files.is_empty() {
        return Outcome::NotApplicable(
            "no kubelet files in the image yet (first boot writes them)".into(),
        );
    }
    let problems = files
        .iter()
        .filter_map(|(path, max)| looser_than(path, &tree.get_exact(path)?.meta, *max))
        .collect();
    Outcome::from_problems(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::put_file;

    #[test]
    fn kubeconfigs_are_tightened() {
        let mut t = Tree::new();
        let f = Flavour::detect(&t);
        assert!(matches!(check(&t, &f), Outcome::NotApplicable(_)));
        put_file(&mut t, "etc/kubernetes/kubelet.conf", "x", 0o644).unwrap();
        put_file(&mut t, "etc/kubernetes/pki/ca.crt", "x", 0o644).unwrap();
        assert_eq!(
            check(&t, &f),
            Outcome::Fail(vec![
                "/etc/kubernetes/kubelet.conf is 0644 0:0, want at most 0600 0:0".into()
            ])
        );
        apply(&mut t, &f).unwrap();
        assert_eq!(check(&t, &f), Outcome::Pass);
        assert_eq!(t.get("etc/kubernetes/pki/ca.crt").unwrap().meta.mode, 0o644);
    }
}
