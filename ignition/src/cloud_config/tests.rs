//! Translation tests: user-data in, the exact NodeConfig out.

use super::*;
use crate::{GroupEntry, Owner, UserEntry};

fn translate(user_data: &str) -> NodeConfig {
    node_config(user_data.as_bytes(), &MetaData::default()).unwrap()
}

fn file(path: &str, contents: &str, mode: u32) -> FileEntry {
    FileEntry {
        path: path.into(),
        overwrite: true,
        contents: Some(contents.into()),
        append: Vec::new(),
        mode: Some(mode),
        user: Some(Owner::Id(0)),
        group: Some(Owner::Id(0)),
    }
}

#[test]
fn a_full_cloud_config() {
    let cfg = translate(
        "#cloud-config
hostname: node1
fqdn: node1.example.com
manage_etc_hosts: true
write_files:
  - path: /etc/motd
    content: |
      hello
    owner: root:root
    permissions: '0640'
users:
  - default
  - name: ops
    gecos: Operator
    groups: [wheel, adm]
    sudo: ALL=(ALL) ALL
    lock_passwd: false
    passwd: $6$salt$hash
    ssh_authorized_keys: [ssh-ed25519 AAAA ops@x]
    uid: 1500
    shell: /bin/sh
ssh_authorized_keys: [ssh-ed25519 BBBB me@y]
bootcmd:
  - echo early
runcmd:
  - [touch, /tmp/it's]
packages: [vim]
frobnicate: 1
",
    );
    assert_eq!(
        cfg.files,
        [
            FileEntry {
                user: Some(Owner::Name("root".into())),
                group: Some(Owner::Name("root".into())),
                ..file("/etc/motd", "hello\n", 0o640)
            },
            file("/etc/hostname", "node1\n", 0o644),
            file(
                "/etc/hosts",
                "# Written by harmony-agent from cloud-config manage_etc_hosts\n127.0.1.1 node1.example.com node1\n127.0.0.1 localhost\n\n# The following lines are desirable for IPv6 capable hosts\n::1 localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n",
                0o644
            ),
            file(
                SUDOERS_FILE,
                "# Written by harmony-agent from cloud-config users[].sudo\n\n# User rules for harmony\nharmony ALL=(ALL) NOPASSWD:ALL\n\n# User rules for ops\nops ALL=(ALL) ALL\n",
                0o440
            ),
        ]
    );
    assert_eq!(
        cfg.users,
        [
            UserEntry {
                name: "harmony".into(),
                gecos: Some("Harmony".into()),
                shell: Some("/bin/sh".into()),
                ssh_authorized_keys: vec!["ssh-ed25519 BBBB me@y".into()],
                should_exist: true,
                style: crate::AccountStyle::CloudInit,
                ..UserEntry::default()
            },
            UserEntry {
                name: "ops".into(),
                uid: Some(1500),
                password_hash: Some("$6$salt$hash".into()),
                ssh_authorized_keys: vec!["ssh-ed25519 AAAA ops@x".into()],
                gecos: Some("Operator".into()),
                groups: vec!["wheel".into(), "adm".into()],
                shell: Some("/bin/sh".into()),
                should_exist: true,
                style: crate::AccountStyle::CloudInit,
                ..UserEntry::default()
            },
        ]
    );
    assert_eq!(
        cfg.commands,
        [
            CommandEntry {
                name: "bootcmd".into(),
                stage: CommandStage::Early,
                script: b"#!/bin/sh\necho early\n".to_vec(),
                env: vec![],
            },
            CommandEntry {
                name: "runcmd".into(),
                stage: CommandStage::Late,
                script: b"#!/bin/sh\n'touch' '/tmp/it'\\''s'\n".to_vec(),
                env: vec![],
            },
        ]
    );
    let w: Vec<String> = cfg.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        w,
        [
            "packages: the image is immutable: software, repositories and disks come from the image recipe, not from first boot; ignored",
            "frobnicate: unknown key ignored",
        ]
    );
}

#[test]
fn meta_data_hostname_locked_password_and_no_users_key() {
    let meta = MetaData {
        instance_id: Some("iid-7".into()),
        local_hostname: Some("n7.lab".into()),
    };
    let cfg = node_config(
        b"#cloud-config\nusers: [{name: a, passwd: x}]\ngroups: [{ops: [a, ghost]}, 'g1, g2']\nbootcmd: [[echo, $INSTANCE_ID]]\n",
        &meta,
    )
    .unwrap();
    assert_eq!(cfg.files, [file("/etc/hostname", "n7\n", 0o644)]);
    assert_eq!(cfg.users.len(), 1);
    assert_eq!(cfg.users[0].password_hash.as_deref(), Some("!x"));
    assert_eq!(cfg.users[0].groups, ["ops"]);
    assert_eq!(
        cfg.groups
            .iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>(),
        ["ops", "g1", "g2"]
    );
    assert!(cfg.groups.iter().all(|g| *g
        == GroupEntry {
            name: g.name.clone(),
            should_exist: true,
            ..GroupEntry::default()
        }));
    assert_eq!(
        cfg.commands[0].env,
        [("INSTANCE_ID".to_string(), "iid-7".to_string())]
    );
    assert_eq!(
        cfg.warnings[0].to_string(),
        "groups[0].ops: member \"ghost\" is not a user of this config: not added"
    );
    // No users key: the default user, as cloud-init creates it.
    let d = translate("#cloud-config\npreserve_hostname: true\n");
    assert_eq!(
        d.users.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        [DEFAULT_USER]
    );
    assert!(d.files.iter().all(|f| f.path != "/etc/hostname"));
}

#[test]
fn multipart_merge_scripts_order_and_defer() {
    let ud = "Content-Type: multipart/mixed; boundary=\"B\"
MIME-Version: 1.0

--B
Content-Type: text/cloud-config

#cloud-config
hostname: first
runcmd: [one]
write_files: [{path: /etc/x, content: a, defer: true}, {path: /etc/hostname, content: mine}]
--B
Content-Type: text/x-shellscript
Content-Disposition: attachment; filename=\"zz-last.sh\"

#!/bin/sh
echo z
--B
Content-Type: text/x-shellscript

#!/bin/sh
echo p
--B
Content-Type: text/cloud-config

#cloud-config
hostname: second
ntp: {servers: [ntp.lab]}
--B--
";
    let cfg = translate(ud);
    let paths: Vec<&str> = cfg.files.iter().map(|f| f.path.as_str()).collect();
    // hostname replaces the write_files entry; the deferred file comes after users/ntp.
    assert_eq!(
        paths,
        ["/etc/hostname", SUDOERS_FILE, "/etc/ntp.conf", "/etc/x"]
    );
    assert_eq!(
        cfg.files[0].contents,
        Some(crate::Contents::from(&b"second\n"[..]))
    );
    assert_eq!(
        cfg.files[2].contents,
        Some(crate::Contents::from(
            &b"# Written by harmony-agent from cloud-config ntp\nserver ntp.lab\n"[..]
        ))
    );
    let names: Vec<&str> = cfg.commands.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["part-003", "runcmd", "zz-last.sh"]);
    assert!(cfg.commands.iter().all(|c| c.stage == CommandStage::Late));
}

#[test]
fn errors_name_the_key_path() {
    let err = |ud: &str| {
        node_config(ud.as_bytes(), &MetaData::default())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("#cloud-config\nwrite_files:\n- {path: /a}\n- {path: /b}\n- {path: /c, encoding: rot13, content: x}\n"),
        "write_files[2].encoding: unknown encoding \"rot13\" (known: b64, base64, gz, gzip, gz+base64, gzip+base64, gz+b64, gzip+b64, text/plain)"
    );
    assert_eq!(
        err("#cloud-config\nusers:\n- name: ok\n- {gecos: x}\n"),
        "users[1].name: is required"
    );
    assert_eq!(
        err("#cloud-config\nusers: [{name: a, uid: lots}]\n"),
        "users[0].uid: expected a number, found a string"
    );
    assert_eq!(
        err("#cloud-config\nruncmd: echo hi\n"),
        "runcmd: expected a list of commands, found a string"
    );
    assert!(
        err("#cloud-config\nkey: [unclosed\n").starts_with("part-001: not valid YAML"),
        "{}",
        err("#cloud-config\nkey: [unclosed\n")
    );
    assert_eq!(
        err("#cloud-config\n- a\n"),
        "part-001: expected a mapping of cloud-config keys, found a list"
    );
    assert_eq!(
        err("Content-Type: multipart/mixed; boundary=B\n\n--B\nContent-Type: text/jinja2\n\n{{ x }}\n--B--\n"),
        "user-data.parts[0]: Jinja templates (text/jinja2, \"## template: jinja\") are not supported: render the template before handing it to the node"
    );
}

#[test]
fn detection() {
    assert!(is_user_data(b"#cloud-config\n"));
    assert!(is_user_data(b"#!/bin/sh\n"));
    assert!(is_user_data(&[0x1f, 0x8b, 8]));
    assert!(!is_user_data(br#"{"ignition":{"version":"3.4.0"}}"#));
}

/// Run cloud-init's own schema check (Debian's cloud-init, scripts/setup-host.sh) on a
/// file; `Err` carries its output.
fn cloud_init_schema(path: &std::path::Path) -> Result<(), String> {
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-m", "cloudinit.cmd.main", "schema", "--config-file"])
        .arg(path)
        .output()
        .expect("running /usr/bin/python3 -m cloudinit.cmd.main (apt-get install cloud-init)");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn corpus() -> Vec<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cloud_config/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_passes_cloud_init_schema_and_translates() {
    let files = corpus();
    assert!(files.len() >= 15, "{} corpus files", files.len());
    for f in &files {
        if let Err(out) = cloud_init_schema(f) {
            panic!("cloud-init schema rejects {}:\n{out}", f.display());
        }
        let bytes = std::fs::read(f).unwrap();
        let cfg = node_config(&bytes, &MetaData::default())
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let unknown: Vec<_> = cfg
            .warnings
            .iter()
            .filter(|w| w.message == "unknown key ignored")
            .collect();
        assert!(unknown.is_empty(), "{}: {unknown:?}", f.display());
    }
}

/// Debian's cloud-init ships example user-data: every one that cloud-init's schema
/// accepts translates, or fails with the error listed here.
#[test]
fn debian_cloud_init_examples() {
    let dir = std::path::Path::new("/usr/share/doc/cloud-init/examples");
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("Debian's cloud-init examples (apt-get install cloud-init)")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    let mut outcome = Vec::new();
    for p in &names {
        let raw = std::fs::read(p).unwrap();
        // The .gz files are compressed documentation, not gzip user-data.
        let bytes = if p.extension().is_some_and(|e| e == "gz") {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out)
                .unwrap();
            out
        } else {
            raw
        };
        let tmp = std::env::temp_dir().join(format!("harmony-ci-example-{}", std::process::id()));
        std::fs::write(&tmp, &bytes).unwrap();
        let schema =
            if bytes.starts_with(b"#cloud-config\n") || bytes.starts_with(b"#cloud-config ") {
                if cloud_init_schema(&tmp).is_ok() {
                    "schema-ok"
                } else {
                    "schema-rejects"
                }
            } else {
                "not-cloud-config"
            };
        let _cleanup = std::fs::remove_file(&tmp);
        let ours = match node_config(&bytes, &MetaData::default()) {
            Ok(cfg) => format!("ok, {} warnings", cfg.warnings.len()),
            Err(e) => format!("error: {e}"),
        };
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        outcome.push(format!("{name}: {schema}: {ours}"));
    }
    // Known differences from cloud-init, on purpose or not yet closed:
    // - add-apt-repos, disk-setup: PyYAML lets a repeated key win; serde_yaml_ng refuses it.
    // - write-files: its first entry's base64 is truncated ("..."), which cloud-init's
    //   b64decode refuses too.
    // - archive, include, part-handler: user-data kinds harmony-agent does not run.
    assert_eq!(outcome.join("\n"), EXPECTED_EXAMPLES);
}

const EXPECTED_EXAMPLES: &str = "\
cloud-config-add-apt-repos.txt: schema-ok: error: part-001: not valid YAML: duplicate entry with key \"apt\" at line 37 column 1
cloud-config-ansible-controller.txt.gz: schema-ok: ok, 5 warnings
cloud-config-ansible-managed.txt: schema-ok: ok, 1 warnings
cloud-config-ansible-pull.txt: schema-ok: ok, 4 warnings
cloud-config-apt.txt.gz: schema-ok: ok, 3 warnings
cloud-config-archive-launch-index.txt: not-cloud-config: error: user-data: #cloud-config-archive user-data is not supported by harmony-agent
cloud-config-archive.txt: not-cloud-config: error: user-data: #cloud-config-archive user-data is not supported by harmony-agent
cloud-config-boot-cmds.txt: schema-ok: ok, 0 warnings
cloud-config-ca-certs.txt: schema-ok: ok, 1 warnings
cloud-config-chef-oneiric.txt: schema-ok: ok, 3 warnings
cloud-config-chef.txt.gz: schema-ok: ok, 3 warnings
cloud-config-datasources.txt: schema-ok: ok, 1 warnings
cloud-config-disk-setup.txt.gz: schema-ok: error: part-001: not valid YAML: duplicate entry with key \"disk_setup\" at line 9 column 1
cloud-config-gluster.txt: schema-ok: ok, 2 warnings
cloud-config-install-packages.txt: schema-ok: ok, 1 warnings
cloud-config-launch-index.txt: schema-ok: ok, 2 warnings
cloud-config-lxd.txt: schema-ok: ok, 1 warnings
cloud-config-mount-points.txt: schema-ok: ok, 3 warnings
cloud-config-ntp.txt: schema-ok: ok, 0 warnings
cloud-config-reporting.txt: schema-ok: ok, 1 warnings
cloud-config-run-cmds.txt: schema-ok: ok, 0 warnings
cloud-config-ssh-keys.txt: schema-ok: ok, 3 warnings
cloud-config-update-apt.txt: schema-ok: ok, 1 warnings
cloud-config-update-packages.txt: schema-ok: ok, 1 warnings
cloud-config-user-groups.txt.gz: schema-ok: ok, 9 warnings
cloud-config-wireguard.txt: schema-ok: ok, 1 warnings
cloud-config-write-files.txt: schema-ok: error: write_files[0].content: invalid base64: Invalid symbol 46, offset 56.
cloud-config-yum-repo.txt: schema-ok: ok, 1 warnings
cloud-config.txt.gz: schema-ok: ok, 28 warnings
include-once.txt: not-cloud-config: error: user-data: #include (text/x-include-url) user-data is not supported by harmony-agent
include.txt: not-cloud-config: error: user-data: #include (text/x-include-url) user-data is not supported by harmony-agent
kernel-cmdline.txt: not-cloud-config: ok, 1 warnings
part-handler-v2.txt: not-cloud-config: error: user-data: #part-handler user-data is not supported by harmony-agent
part-handler.txt: not-cloud-config: error: user-data: #part-handler user-data is not supported by harmony-agent
plain-ignored.txt: not-cloud-config: ok, 1 warnings
user-script.txt: not-cloud-config: ok, 0 warnings";

#[test]
fn harmony_key_becomes_node_yaml_with_the_same_settings() {
    let ud = "#cloud-config
harmony:
  cluster:
    api_endpoints: [\"https://api:6443\"]
    bootstrap_token: abcdef.0123456789abcdef
    ca_cert_hashes: [\"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"]
  role: worker
";
    let cfg = translate(ud);
    let f = cfg.files.iter().find(|f| f.path != SUDOERS_FILE).unwrap();
    assert_eq!(
        (f.path.as_str(), f.mode),
        ("/etc/harmony/node.yaml", Some(0o600))
    );
    let from_file = crate::node_settings::NodeSettings::from_node_config(&cfg)
        .unwrap()
        .unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(ud).unwrap();
    assert_eq!(
        from_file,
        crate::node_settings::NodeSettings::from_yaml_value(&doc["harmony"]).unwrap()
    );
    let bad = node_config(
        ud.replace("role: worker", "role: boss").as_bytes(),
        &MetaData::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(bad.starts_with("harmony.role: "), "{bad}");
}

/// `len` zero bytes, gzipped and base64'd: a few kilobytes of YAML, a large file.
fn gzip_bomb_base64(len: u64) -> String {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        gz.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        gz.finish().unwrap(),
    )
}

#[test]
fn write_files_past_the_caps_are_refused_naming_the_key() {
    use crate::limits::{MAX_CONFIG_BYTES, MAX_FILE_BYTES};
    let err = |ud: &str| {
        node_config(ud.as_bytes(), &MetaData::default())
            .unwrap_err()
            .to_string()
    };
    let over = gzip_bomb_base64(MAX_FILE_BYTES + 1);
    assert_eq!(
        err(&format!(
            "#cloud-config\nwrite_files:\n- {{path: /a, content: x}}\n- {{path: /bomb, encoding: gz+b64, content: {over}}}\n"
        )),
        format!("write_files[1].content: decompressed size exceeds {MAX_FILE_BYTES} bytes")
    );
    let third = gzip_bomb_base64(MAX_CONFIG_BYTES / 3 + 1);
    let files: String = ["/a", "/b", "/c"]
        .map(|p| format!("- {{path: {p}, encoding: gzip+base64, content: {third}}}\n"))
        .concat();
    assert_eq!(
        err(&format!("#cloud-config\nwrite_files:\n{files}")),
        format!(
            "write_files[2].content: the config's file contents together exceed {MAX_CONFIG_BYTES} bytes"
        )
    );
}

#[test]
fn vendor_data_lies_under_the_user_data_and_its_scripts_run_first() {
    let vendor = b"#cloud-config\nntp: {servers: [ntp.vendor.example]}\nruncmd: [echo vendor]\nhostname: vendor-name\n";
    let user = b"#cloud-config\nhostname: user-name\n";
    let cfg = node_config_with_vendor_data(user, Some(vendor), &MetaData::default()).unwrap();
    let hostname = cfg
        .files
        .iter()
        .find(|f| f.path == "/etc/hostname")
        .unwrap();
    assert_eq!(hostname.contents, Some("user-name\n".into()));
    // ntp and runcmd come from the vendor only: they are applied.
    assert!(cfg
        .files
        .iter()
        .any(|f| f
            .contents
            .as_ref()
            .is_some_and(
                |c| String::from_utf8_lossy(&c.to_vec().unwrap()).contains("ntp.vendor.example")
            )));
    let names: Vec<&str> = cfg.commands.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["runcmd"]);
    // A vendor script runs before the user's scripts, named as the vendor's.
    let with_script = node_config_with_vendor_data(
        b"#!/bin/sh\necho user\n",
        Some(b"#!/bin/sh\necho vendor\n"),
        &MetaData::default(),
    )
    .unwrap();
    let names: Vec<&str> = with_script
        .commands
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["vendor-data/part-001", "part-001"]);
    // The user-data can turn vendor-data off.
    let off = node_config_with_vendor_data(
        b"#cloud-config\nvendor_data: {enabled: false}\n",
        Some(vendor),
        &MetaData::default(),
    )
    .unwrap();
    assert!(off.commands.is_empty());
    // Only what user-data alone makes (the default user's sudoers): nothing of the vendor's.
    let paths: Vec<&str> = off.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [crate::cloud_config::SUDOERS_FILE],
        "{:?}",
        off.files
    );
    assert!(off.warnings.is_empty(), "{:?}", off.warnings);
    // Errors in vendor-data say so.
    let err = node_config_with_vendor_data(
        b"#cloud-config\n",
        Some(b"#cloud-config\nruncmd: {a: 1}\n"),
        &MetaData::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("runcmd"), "{err}");
}
