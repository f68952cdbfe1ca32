use std::path::Path;

use super::*;

fn parse_ok(text: &str) -> Recipe {
    parse(text, "r.yaml", Path::new("/nonexistent")).unwrap_or_else(|e| panic!("{e}"))
}

fn parse_err(text: &str) -> Vec<String> {
    parse(text, "r.yaml", Path::new("/nonexistent"))
        .unwrap_err()
        .0
        .iter()
        .map(|e| e.to_string())
        .collect()
}

const MINIMAL: &str = "name: n\nversion: '1'\nbase: oci-layout:base:latest\n";

#[test]
fn default_recipe_is_valid() {
    let r = load_default(Path::new("/cache")).unwrap();
    assert_eq!(r.name, "harmony-default");
    assert!(r.agent);
    assert_eq!(
        r.outputs,
        vec![
            Output::Pxe,
            Output::Oci,
            Output::Disk,
            Output::Qcow2,
            Output::Vmdk,
            Output::Ova,
            Output::Vaquero
        ]
    );
    assert_eq!(r.files[0].mode, Some(0o644));
}

#[test]
fn disk_is_an_output() {
    let r = parse_ok(&format!("{MINIMAL}outputs: [disk, pxe]\n"));
    assert_eq!(r.outputs, vec![Output::Disk, Output::Pxe]);
}

#[test]
fn minimal_recipe_gets_defaults() {
    let r = parse_ok(MINIMAL);
    assert_eq!(r.cmdline, DEFAULT_CMDLINE);
    assert_eq!(r.boot_modules, DEFAULT_BOOT_MODULES);
    assert!(r.agent);
}

#[test]
fn modes_are_octal_as_written() {
    let r = parse_ok(&format!(
        "{MINIMAL}files:\n  - {{path: /a, contents: x, mode: 0644}}\n  - {{path: /b, contents: x, mode: \"0600\"}}\n  - {{path: /c, contents: x, mode: 0o4755}}\n"
    ));
    let modes: Vec<_> = r.files.iter().map(|f| f.mode).collect();
    assert_eq!(modes, vec![Some(0o644), Some(0o600), Some(0o4755)]);
}

#[test]
fn a_decimal_mode_is_refused_with_file_line_and_field() {
    let errs = parse_err(&format!(
        "{MINIMAL}files:\n  - path: /a\n    contents: x\n    mode: 420\n"
    ));
    assert_eq!(errs, vec!["r.yaml:7: files[0].mode: mode `420` must be written in octal with a leading 0, e.g. \"0644\""]);
}

#[test]
fn unknown_fields_name_line_and_field() {
    let errs = parse_err(&format!("{MINIMAL}files:\n  - path: /a\n    contnts: x\n"));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("r.yaml:6: files[0].contnts: unknown field `contnts`"),
        "{}",
        errs[0]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let errs = parse_err(
        "name: Bad Name\nversion: '1'\nbase: ftp://x\nfiles:\n  - {path: rel, contents: x}\n  - {path: /dup, contents: x}\nlinks:\n  - {path: /dup, target: /x}\noutputs: [pxe, floppy]\n",
    );
    let joined = errs.join("\n");
    assert!(joined.contains("r.yaml:1: name:"), "{joined}");
    assert!(joined.contains("r.yaml:3: base:"), "{joined}");
    assert!(
        joined.contains("r.yaml:5: files[0].path: `rel` is not absolute"),
        "{joined}"
    );
    assert!(
        joined.contains("r.yaml:8: links[0].path: `/dup` is already given by files[1].path"),
        "{joined}"
    );
    assert!(
        joined.contains("outputs[1]: unknown output `floppy`"),
        "{joined}"
    );
    assert_eq!(errs.len(), 5, "{joined}");
}

#[test]
fn missing_source_file_is_named() {
    let errs = parse_err(&format!(
        "{MINIMAL}files:\n  - {{path: /a, source: files/a.conf}}\n"
    ));
    assert_eq!(
        errs,
        vec!["r.yaml:5: files[0].source: /nonexistent/files/a.conf does not exist"]
    );
}

#[test]
fn yaml_syntax_errors_carry_the_line() {
    let errs = parse_err("name: n\nversion: [\n");
    assert!(errs[0].starts_with("r.yaml:"), "{}", errs[0]);
}

#[test]
fn converted_disks_need_the_disk_output() {
    let r = parse_ok(&format!("{MINIMAL}outputs: [disk, qcow2, vmdk, ova]\n"));
    assert_eq!(
        r.outputs,
        vec![Output::Disk, Output::Qcow2, Output::Vmdk, Output::Ova]
    );
    let errors = parse_err(&format!("{MINIMAL}outputs: [pxe, ova]\n"));
    assert_eq!(
        errors,
        ["r.yaml:4: outputs[1]: `ova` is converted from the disk image: add `disk` to outputs"]
    );
}

#[test]
fn vaquero_needs_pxe() {
    let text = format!("{MINIMAL}outputs: [oci, vaquero]\n");
    let err = parse(&text, "r.yaml", Path::new("/"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "r.yaml:4: outputs: `vaquero` serves the PXE boot files: list `pxe` too"
    );
}

#[test]
fn hardening_profile_and_exclusions_are_checked() {
    let r = parse_ok(&format!(
        "{MINIMAL}hardening:\n  profile: cis\n  exclude: [firewall-default-deny]\n"
    ));
    assert_eq!(
        r.hardening,
        Some(Hardening {
            profile: "cis".into(),
            exclude: vec!["firewall-default-deny".into()]
        })
    );
    assert_eq!(parse_ok(MINIMAL).hardening, None);
    let errs = parse_err(&format!(
        "{MINIMAL}hardening:\n  profile: stig\n  exclude: [no-such-rule, umask, umask]\n"
    ));
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(
        errs[0].starts_with("r.yaml:5: hardening.profile: unknown profile `stig`"),
        "{errs:?}"
    );
    assert!(
        errs[1]
            .contains("hardening.exclude[0]: unknown rule `no-such-rule` (rules: sysctl-network,"),
        "{errs:?}"
    );
    assert!(
        errs[2].ends_with("hardening.exclude[2]: `umask` is listed twice"),
        "{errs:?}"
    );
}

/// The shipped flavour recipes: every field valid, bases pinned by digest, the profile on.
/// (They cannot be built here: no registry is reachable. The same code paths are built
/// from Debian fixtures in vm-tests/tests/flavours.rs.)
#[test]
fn shipped_flavour_recipes_are_valid_and_pinned() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../image-recipes");
    for (file, packages, kubernetes) in [
        (
            "centos-hardened.yaml",
            vec!["nftables", "audit", "openssh-server", "sudo"],
            "1.31",
        ),
        (
            "alpine-minimal.yaml",
            vec!["linux-virt", "openrc", "nftables"],
            "1.30",
        ),
    ] {
        let r = load(&dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        match &r.base {
            ImageRef::Registry {
                digest: Some(d), ..
            } => assert!(d.starts_with("sha256:") && d.len() == 71, "{file}"),
            other => panic!("{file}: base {other} is not pinned by digest"),
        }
        assert_eq!(r.packages, packages, "{file}");
        assert_eq!(
            r.kubernetes.map(|k| k.to_string()).as_deref(),
            Some(kubernetes),
            "{file}"
        );
        for output in [Output::Disk, Output::Qcow2, Output::Ova] {
            assert!(r.wants(&output), "{file}: {output:?}");
        }
        assert_eq!(
            r.hardening
                .as_ref()
                .map(|h| (h.profile.as_str(), h.exclude.len())),
            Some(("cis", 0)),
            "{file}"
        );
        assert!(r.agent);
    }
}

#[test]
fn package_names_are_checked() {
    let errs = parse_err(&format!(
        "{MINIMAL}packages: [nftables, 'a b', '-x', 'x;rm']\nrun: ['']\n"
    ));
    assert_eq!(errs.len(), 4, "{errs:?}");
    assert!(
        errs[0].contains("packages[1]: `a b` is not a package name"),
        "{errs:?}"
    );
    assert!(errs[3].contains("run[0]: must not be empty"), "{errs:?}");
}

#[test]
fn a_kernel_argument_split_at_its_comma_is_refused_naming_its_line() {
    let errs = parse_err(&format!(
        "{MINIMAL}kernel:\n  cmdline: [console=ttyS0,115200, quiet]\n"
    ));
    assert_eq!(
        errs,
        [
            "r.yaml:5: kernel.cmdline[1]: `115200` was split off `console=ttyS0` by a comma \
          (YAML separates flow-sequence items at commas): quote the whole argument, e.g. \
          \"console=ttyS0,115200\""
        ]
    );
    // A space after the comma still leaves a console's speed on its own.
    let errs = parse_err(&format!(
        "{MINIMAL}kernel:\n  cmdline: [quiet, console=ttyS0, 115200n8]\n"
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0]
            .starts_with("r.yaml:5: kernel.cmdline[2]: `115200n8` was split off `console=ttyS0`"),
        "{errs:?}"
    );
    // Any key=value value cut at its comma.
    let errs = parse_err(&format!(
        "{MINIMAL}kernel:\n  cmdline:\n    [quiet,\n     modprobe.blacklist=floppy,pcspkr]\n"
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "r.yaml:7: kernel.cmdline[2]: `pcspkr` was split off `modprobe.blacklist=floppy`"
        ),
        "{errs:?}"
    );
}

#[test]
fn kernel_arguments_with_commas_written_whole_are_kept() {
    for cmdline in [
        "[\"console=ttyS0,115200\", quiet]",
        "['console=ttyS0,115200', quiet, console=tty0]",
        "\n    - console=ttyS0,115200\n    - quiet",
    ] {
        let r = parse_ok(&format!("{MINIMAL}kernel:\n  cmdline: {cmdline}\n"));
        assert_eq!(
            r.cmdline[..2],
            ["console=ttyS0,115200", "quiet"],
            "{cmdline}"
        );
    }
}

/// Every recipe we ship boots with its serial console at 115200 baud: one argument.
#[test]
fn shipped_recipes_keep_the_console_argument_whole() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../image-recipes");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let r = load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            r.cmdline.iter().any(|a| a == "console=ttyS0,115200"),
            "{}: {:?}",
            path.display(),
            r.cmdline
        );
        checked += 1;
    }
    assert!(checked >= 3, "{checked} recipes");
    let r = load_default(Path::new("/cache")).unwrap();
    assert_eq!(r.cmdline, DEFAULT_CMDLINE);
}

#[test]
fn kubernetes_versions_are_read_as_written() {
    let r = parse_ok(&format!("{MINIMAL}kubernetes:\n  version: 1.30\n"));
    assert_eq!(r.kubernetes.map(|k| k.to_string()).as_deref(), Some("1.30"));
    let r = parse_ok(&format!("{MINIMAL}kubernetes: {{version: \"1.31\"}}\n"));
    assert_eq!(r.kubernetes.map(|k| k.minor), Some(31));
    assert_eq!(parse_ok(MINIMAL).kubernetes, None);
    let errs = parse_err(&format!("{MINIMAL}kubernetes:\n  version: v1.31.2\n"));
    assert_eq!(
        errs,
        ["r.yaml:5: kubernetes.version: `v1.31.2` is not a Kubernetes minor version such as \"1.31\""]
    );
}

#[test]
fn base_verify_takes_a_p256_public_key_relative_to_the_recipe() {
    let dir = tempfile::tempdir().unwrap();
    // A P-256 public key as `openssl pkey -pubout` writes it.
    let key = "-----BEGIN PUBLIC KEY-----\n\
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEglQ0iXkE3tNPDnnz/AWLJBdzCpkE\n\
Kbb7veHm0apk77kTTFoEDoG1+bPKhpOx9mczW4WvkHY/9Oc5D2BvDQPICw==\n\
-----END PUBLIC KEY-----\n";
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    std::fs::write(dir.path().join("keys/base.pub"), key).unwrap();
    let text = "name: n\nversion: '1'\nbase:\n  image: docker://127.0.0.1:5000/os/base:1\n  \
                verify: {key: keys/base.pub}\n";
    let r = parse(text, "r.yaml", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.base_verify, Some(dir.path().join("keys/base.pub")));
    assert_eq!(r.base.to_string(), "docker://127.0.0.1:5000/os/base:1");
    assert_eq!(parse_ok(MINIMAL).base_verify, None);
}

#[test]
fn base_verify_refuses_a_missing_key_and_a_local_image_naming_the_field() {
    let err = parse_err(
        "name: n\nversion: '1'\nbase:\n  image: docker://127.0.0.1:5000/os/base:1\n  \
         verify: {key: nope.pub}\n",
    );
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with("r.yaml:5: base.verify.key: /nonexistent/nope.pub: cannot read the key"),
        "{err:?}"
    );
    let err = parse_err(
        "name: n\nversion: '1'\nbase:\n  image: oci-layout:base:latest\n  verify: {key: k.pub}\n",
    );
    assert!(
        err[0].contains(
            "base.verify.key: oci-layout:base:latest: signatures are read from a registry"
        ),
        "{err:?}"
    );
    let err = parse_err("name: n\nversion: '1'\nbase: {verify: {key: k.pub}}\n");
    assert!(
        err[0].contains("an image reference, or a map {image: REFERENCE, verify: {key: FILE}}"),
        "{err:?}"
    );
}

#[test]
fn secure_boot_reads_key_and_cert_relative_to_the_recipe() {
    let Some((key, cert)) =
        crate::emit::uki_signer::tests::openssl_key_and_cert(&["-newkey", "rsa:2048"])
    else {
        harmony_test_support::skip("tool openssl not installed: Debian package openssl");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    std::fs::write(dir.path().join("keys/db.key"), &key).unwrap();
    std::fs::write(dir.path().join("keys/db.crt"), &cert).unwrap();
    let text = format!(
        "{MINIMAL}secure_boot: {{key: keys/db.key, cert: keys/db.crt}}\noutputs: [disk, ova]\n"
    );
    let r = parse(&text, "r.yaml", dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let sb = r.secure_boot.unwrap();
    assert_eq!(sb.key, dir.path().join("keys/db.key"));
    assert_eq!(sb.cert_pem, cert);
    assert!(
        !format!("{sb:?}").contains("PRIVATE"),
        "Debug never shows the key"
    );

    // Each problem names the file, the field and what is wrong.
    let errors = |text: &str| -> Vec<String> {
        parse(text, "r.yaml", dir.path())
            .unwrap_err()
            .0
            .iter()
            .map(|e| e.to_string())
            .collect()
    };
    let e = errors(&format!(
        "{MINIMAL}secure_boot: {{key: keys/missing.key, cert: keys/missing.crt}}\noutputs: [disk]\n"
    ));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("r.yaml:4: secure_boot.key: cannot read ") && e[0].contains("missing.key"),
        "{e:?}"
    );
    assert!(
        e[1].starts_with("r.yaml:4: secure_boot.cert: cannot read ")
            && e[1].contains("missing.crt"),
        "{e:?}"
    );
    let e = errors(&format!(
        "{MINIMAL}secure_boot: {{key: keys/db.key, cert: keys/db.key}}\noutputs: [disk]\n"
    ));
    assert!(
        e[0].starts_with("r.yaml:4: secure_boot.cert: ") && e[0].contains("no CERTIFICATE block"),
        "{e:?}"
    );
    std::fs::write(dir.path().join("keys/plain.txt"), "hello").unwrap();
    let e = errors(&format!(
        "{MINIMAL}secure_boot:\n  key: keys/plain.txt\n  cert: keys/db.crt\noutputs: [disk]\n"
    ));
    assert!(
        e[0].starts_with("r.yaml:5: secure_boot.key: ") && e[0].contains("not a PEM file"),
        "{e:?}"
    );
    let e = errors(&format!(
        "{MINIMAL}secure_boot: {{key: keys/db.key, cert: keys/db.crt}}\noutputs: [pxe]\n"
    ));
    assert!(
        e[0].contains("secure_boot: signs the disk image's UKI: add `disk`"),
        "{e:?}"
    );
    let e = errors(&format!("{MINIMAL}secure_boot: {{key: keys/db.key}}\n"));
    assert!(e[0].contains("cert"), "{e:?}");
}
