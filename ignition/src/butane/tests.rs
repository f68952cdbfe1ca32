//! Butane's own documentation examples (coreos/butane docs/getting-started.md and
//! docs/examples.md), translated as Butane translates them.

use super::*;
use serde_json::json;

fn tr(yaml: &str) -> Value {
    translate(yaml.as_bytes(), &TranslateOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn tr_in(yaml: &str, dir: &Path) -> Value {
    let opts = TranslateOptions {
        files_dir: Some(dir.to_path_buf()),
    };
    translate(yaml.as_bytes(), &opts).unwrap_or_else(|e| panic!("{e}"))
}

fn err(yaml: &str) -> String {
    translate(yaml.as_bytes(), &TranslateOptions::default())
        .unwrap_err()
        .to_string()
}

#[test]
fn getting_started_core_ssh_key() {
    assert_eq!(
        tr("variant: fcos\nversion: 1.0.0\npasswd:\n  users:\n    - name: core\n      ssh_authorized_keys:\n        - ssh-rsa AAAAB3NzaC1yc...\n"),
        json!({"ignition": {"version": "3.0.0"},
               "passwd": {"users": [{"name": "core", "sshAuthorizedKeys": ["ssh-rsa AAAAB3NzaC1yc..."]}]}})
    );
}

#[test]
fn users_and_groups() {
    let out = tr(r#"variant: fcos
version: 1.1.0
passwd:
  users:
    - name: user1
      ssh_authorized_keys:
        - key1
      password_hash: $y$j9T$aUmgEDoFIDPhGxEe2FUjc/$C5A...
      home_dir: /home/user1
      no_create_home: true
      groups:
        - wheel
        - plugdev
      shell: /bin/bash
"#);
    assert_eq!(
        out,
        json!({"ignition": {"version": "3.1.0"},
               "passwd": {"users": [{"name": "user1", "sshAuthorizedKeys": ["key1"],
                   "passwordHash": "$y$j9T$aUmgEDoFIDPhGxEe2FUjc/$C5A...",
                   "homeDir": "/home/user1", "noCreateHome": true,
                   "groups": ["wheel", "plugdev"], "shell": "/bin/bash"}]}})
    );
}

#[test]
fn files_inline_remote_and_local() {
    let out = tr("variant: fcos\nversion: 1.1.0\nstorage:\n  files:\n    - path: /opt/file\n      contents:\n        inline: Hello, world!\n      mode: 0644\n      user:\n        id: 500\n      group:\n        id: 501\n");
    assert_eq!(
        out,
        json!({"ignition": {"version": "3.1.0"},
               "storage": {"files": [{"path": "/opt/file",
                   "contents": {"compression": "", "source": "data:,Hello%2C%20world!"},
                   "mode": 420, "user": {"id": 500}, "group": {"id": 501}}]}})
    );
    let hash = "sha512-4ee6a9d20cc0e6c7ee187daffa6822bdef7f4cebe109eff44b235f97e45dc3d7a5bb932efc841192e46618f48a6f4f5bc0d15fd74b1038abf46bf4b4fd409f2e";
    let out = tr(&format!("variant: fcos\nversion: 1.1.0\nstorage:\n  files:\n    - path: /opt/file2\n      contents:\n        source: http://example.com/file2\n        compression: gzip\n        verification:\n          hash: {hash}\n      mode: 0644\n"));
    assert_eq!(
        out["storage"]["files"][0],
        json!({"path": "/opt/file2", "mode": 420,
               "contents": {"source": "http://example.com/file2", "compression": "gzip",
                            "verification": {"hash": hash}}})
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("local-file3"), "local\n").unwrap();
    let yaml = "variant: fcos\nversion: 1.1.0\nstorage:\n  files:\n    - path: /opt/file3\n      contents:\n        local: local-file3\n      mode: 0644\n";
    assert_eq!(
        tr_in(yaml, dir.path())["storage"]["files"][0],
        json!({"path": "/opt/file3", "mode": 420,
               "contents": {"compression": "", "source": "data:,local%0A"}})
    );
    assert_eq!(
        err(yaml),
        "storage.files[0].contents.local: Butane: local files need --files-dir"
    );
    let escape = yaml.replace("local-file3", "../etc/passwd");
    assert!(translate(
        escape.as_bytes(),
        &TranslateOptions {
            files_dir: Some(dir.path().into())
        }
    )
    .unwrap_err()
    .to_string()
    .contains("is not a relative path inside --files-dir"));
}

/// Large compressible contents are gzipped when that is shorter, as Butane does; the bytes
/// decode back to the input.
#[test]
fn compressible_contents_are_gzipped() {
    let text = "line of text\n".repeat(200);
    let (source, compression) = make_data_url(text.as_bytes(), "");
    assert_eq!(compression, Some("gzip"));
    let raw = crate::data_url::decode(&source).unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out).unwrap();
    assert_eq!(out, text);
    // Already compressed by the user: not again, and no compression value is written.
    let (_, compression) = make_data_url(b"x", "gzip");
    assert_eq!(compression, None);
    // Binary data: base64 when shorter than escaping.
    let (source, _) = make_data_url(&[0xff; 30], "");
    assert!(source.starts_with("data:;base64,"), "{source}");
}

#[test]
fn directory_trees() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("directory")).unwrap();
    std::fs::write(tree.join("file"), "f\n").unwrap();
    std::fs::write(tree.join("overridden-file"), "o\n").unwrap();
    std::fs::write(tree.join("directory/file"), "d\n").unwrap();
    std::os::unix::fs::symlink("../file", tree.join("directory/symlink")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(tree.join("file"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = tr_in(
        "variant: fcos\nversion: 1.1.0\nstorage:\n  trees:\n    - local: tree\n      path: /etc/files\n  files:\n    - path: /etc/files/overridden-file\n      mode: 0600\n      user:\n        id: 500\n      group:\n        id: 501\n",
        dir.path(),
    );
    let data = |t: &str| json!({"compression": "", "source": format!("data:,{t}%0A")});
    assert_eq!(
        out["storage"],
        json!({
            "files": [
                {"path": "/etc/files/overridden-file", "mode": 384, "user": {"id": 500}, "group": {"id": 501}, "contents": data("o")},
                {"path": "/etc/files/directory/file", "mode": 420, "contents": data("d")},
                {"path": "/etc/files/file", "mode": 493, "contents": data("f")}
            ],
            "links": [{"path": "/etc/files/directory/symlink", "target": "../file"}]
        })
    );
    assert!(
        err("variant: fcos\nversion: 1.0.0\nstorage:\n  trees:\n    - local: tree\n")
            .contains("needs variant fcos version 1.1.0 or later")
    );
}

#[test]
fn systemd_units_and_dropins() {
    let out = tr("variant: fcos\nversion: 1.1.0\nsystemd:\n  units:\n    - name: serial-getty@ttyS0.service\n      dropins:\n        - name: autologin.conf\n          contents: |\n            [Service]\n            TTYVTDisallocate=no\n            ExecStart=\n            ExecStart=-/usr/sbin/agetty --autologin core --noclear %I $TERM\n");
    assert_eq!(
        out,
        json!({"ignition": {"version": "3.1.0"},
               "systemd": {"units": [{"name": "serial-getty@ttyS0.service",
                   "dropins": [{"name": "autologin.conf",
                       "contents": "[Service]\nTTYVTDisallocate=no\nExecStart=\nExecStart=-/usr/sbin/agetty --autologin core --noclear %I $TERM\n"}]}]}})
    );
    let out = tr("variant: fcos\nversion: 1.1.0\nsystemd:\n  units:\n    - name: hello.service\n      enabled: true\n      contents: |\n        [Unit]\n        Description=A hello world unit!\n        [Service]\n        Type=oneshot\n        RemainAfterExit=yes\n        ExecStart=/usr/bin/echo \"Hello, World!\"\n        [Install]\n        WantedBy=multi-user.target\n");
    assert_eq!(out["systemd"]["units"][0]["enabled"], json!(true));
    assert!(out["systemd"]["units"][0]["contents"]
        .as_str()
        .unwrap()
        .ends_with("[Install]\nWantedBy=multi-user.target\n"));
}

#[test]
fn versions_map_to_their_ignition_spec() {
    for (v, spec) in [
        ("1.0.0", "3.0.0"),
        ("1.1.0", "3.1.0"),
        ("1.2.0", "3.2.0"),
        ("1.3.0", "3.2.0"),
        ("1.4.0", "3.3.0"),
        ("1.5.0", "3.4.0"),
    ] {
        assert_eq!(
            tr(&format!("variant: fcos\nversion: {v}\n")),
            json!({"ignition": {"version": spec}})
        );
    }
    assert_eq!(
        err("variant: fcos\nversion: 1.6.0\n"),
        "version: Butane: unsupported Butane variant \"fcos\" version \"1.6.0\" (supported: fcos 1.0.0-1.5.0, harmony 1.0.0)"
    );
    assert_eq!(
        err("variant: fcos\nversion: 1.1.0\nstorage:\n  filesystems:\n    - path: /var\n      device: /dev/disk/by-partlabel/var\n      format: btrfs\n      with_mount_unit: true\n"),
        "storage.filesystems[0].with_mount_unit: not supported by Harmony yet: filesystems and mount units"
    );
}

#[test]
fn harmony_variant_carries_node_settings() {
    let out = tr("variant: harmony\nversion: 1.0.0\nharmony:\n  role: worker\nstorage:\n  files:\n    - path: /etc/motd\n      contents:\n        inline: hi\n");
    let files = out["storage"]["files"].as_array().unwrap();
    assert_eq!(out["ignition"]["version"], json!("3.4.0"));
    assert_eq!(files[1]["path"], json!("/etc/harmony/node.yaml"));
    assert_eq!(files[1]["mode"], json!(0o600));
    let cfg =
        crate::node_config(&serde_json::to_vec(&out).unwrap(), &crate::NoRemoteFetcher).unwrap();
    assert_eq!(
        cfg.files[1].contents,
        Some(crate::Contents::from(&b"role: worker\n"[..]))
    );
    assert!(
        err("variant: harmony\nversion: 1.0.0\nharmony:\n  role: boss\n").starts_with("Butane: ")
    );
}

#[test]
fn butane_is_told_by_content() {
    assert!(is_butane(b"variant: fcos\nversion: 1.5.0\n"));
    assert!(!is_butane(br#"{"variant": "fcos"}"#));
    assert!(!is_butane(b"#cloud-config\nhostname: x\n"));
}
