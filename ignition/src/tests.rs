//! Parsing, validation and resolution of whole documents, checked by their error text.

use super::*;
use std::io::Write;

fn err(json: &str) -> String {
    match node_config(json.as_bytes(), &NoRemoteFetcher) {
        Ok(cfg) => panic!("expected an error, got {cfg:?}"),
        Err(e) => e.to_string(),
    }
}

fn ok(json: &str) -> NodeConfig {
    node_config(json.as_bytes(), &NoRemoteFetcher).unwrap_or_else(|e| panic!("{e}"))
}

/// A 3.4.0 document with `body` spliced in after the ignition section.
fn doc(body: &str) -> String {
    format!(r#"{{"ignition":{{"version":"3.4.0"}}{body}}}"#)
}

#[test]
fn every_supported_version_parses() {
    for v in ["3.0.0", "3.1.0", "3.2.0", "3.3.0", "3.4.0"] {
        let cfg = ok(&format!(r#"{{"ignition":{{"version":"{v}"}}}}"#));
        assert_eq!(cfg, NodeConfig::default());
    }
}

#[test]
fn version_errors() {
    assert_eq!(err("{}"), "ignition.version: missing ignition.version");
    assert_eq!(
        err(r#"{"ignition":{"version":"2.2.0"},"storage":{"files":[{"filesystem":"root"}]}}"#),
        "ignition.version: unsupported spec version \"2.2.0\" (supported: 3.0.0, 3.1.0, 3.2.0, 3.3.0, 3.4.0)"
    );
    assert!(err(r#"{"ignition":{"version":"3.4.0-experimental"}}"#).contains("unsupported"));
    assert!(err("{not json").starts_with("not valid JSON"));
}

#[test]
fn unknown_and_miscased_keys_are_warnings() {
    let cfg = ok(&doc(
        r#","storage":{"files":[{"path":"/a"},{"path":"/b","overwite":true}]}"#,
    ));
    assert!(!cfg.files[1].overwrite);
    assert_eq!(
        cfg.warnings[0].to_string(),
        "storage.files[1].overwite: Unused key overwite"
    );
    let cfg = ok(&doc(r#","Storage":{"files":[{"path":"/a"}]}"#));
    assert_eq!(cfg.files[0].path, "/a");
    assert_eq!(cfg.warnings[0].to_string(), "Storage: Unused key Storage");
    assert_eq!(
        err(&doc(r#","storage":{"files":[{"mode":420}]}"#)),
        "storage.files[0]: missing field `path`"
    );
}

#[test]
fn fields_newer_than_the_declared_version_are_unused_keys() {
    let cfg = ok(
        r#"{"ignition":{"version":"3.1.0"},"passwd":{"users":[{"name":"a","shouldExist":false}]}}"#,
    );
    assert!(
        cfg.users[0].should_exist,
        "3.1.0 has no shouldExist: the user stays"
    );
    assert_eq!(
        cfg.warnings[0].to_string(),
        "passwd.users[0].shouldExist: Unused key shouldExist"
    );
    let cfg = ok(r#"{"ignition":{"version":"3.2.0"},"kernelArguments":{"shouldExist":["a"]}}"#);
    assert_eq!(
        cfg.warnings[0].to_string(),
        "kernelArguments: Unused key kernelArguments"
    );
}

#[test]
fn unsupported_sections_only_when_non_empty() {
    ok(&doc(
        r#","storage":{"disks":[],"filesystems":null},"kernelArguments":{"shouldExist":[]}"#,
    ));
    assert_eq!(
        err(&doc(r#","storage":{"disks":[{"device":"/dev/vda"}]}"#)),
        "storage.disks: not supported by Harmony yet: disk partitioning"
    );
}

#[test]
fn files_resolve_contents() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"zipped\n").unwrap();
    let gz = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        gz.finish().unwrap(),
    );
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"zipped\n"));
    let cfg = ok(&doc(&format!(
        r#","storage":{{"files":[
        {{"path":"/etc/motd","mode":420,"contents":{{"source":"data:,hello%0A"}},"user":{{"name":"core"}},"group":{{"id":10}}}},
        {{"path":"/etc/z/f","contents":{{"source":"data:;base64,{gz}","compression":"gzip","verification":{{"hash":"sha256-{sha}"}}}},"append":[{{"source":"data:,more"}}]}},
        {{"path":"/empty","overwrite":true,"contents":{{"source":""}}}}]}}"#
    )));
    assert_eq!(
        cfg.files[0].contents,
        Some(crate::Contents::from(&b"hello\n"[..]))
    );
    assert_eq!(cfg.files[0].mode, Some(0o644));
    assert_eq!(cfg.files[0].user, Some(Owner::Name("core".into())));
    assert_eq!(cfg.files[0].group, Some(Owner::Id(10)));
    assert_eq!(cfg.files[1].path, "/etc/z/f");
    assert_eq!(
        cfg.files[1].contents,
        Some(crate::Contents::from(&b"zipped\n"[..]))
    );
    assert_eq!(cfg.files[1].append, vec![crate::Contents::from("more")]);
    assert_eq!(cfg.files[2].contents, Some(crate::Contents::from(&b""[..])));
    assert!(cfg.files[2].overwrite);
}

#[test]
fn file_errors_name_the_field() {
    let cases = [
        (r#"{"path":"etc/motd"}"#, "storage.files[0].path: path \"etc/motd\" is not absolute"),
        (r#"{"path":"/a","mode":4096}"#, "storage.files[0].mode: mode 4096 is out of range (0..=4095, octal 0..=0o7777)"),
        (r#"{"path":"/a","mode":-1}"#, "storage.files[0].mode: mode -1 is out of range (0..=4095, octal 0..=0o7777)"),
        (r#"{"path":"/a","overwrite":true}"#, "storage.files[0].overwrite: overwrite is true but contents.source is not set"),
        (r#"{"path":"/a","contents":{"source":"ftp://x/y"}}"#, "storage.files[0].contents.source: unsupported scheme \"ftp\""),
        (r#"{"path":"/a","contents":{"source":"data:,x","compression":"xz"}}"#, "storage.files[0].contents.compression: unsupported compression \"xz\" (only \"gzip\")"),
        (r#"{"path":"/a","contents":{"source":"data:,x","verification":{"hash":"md5-00"}}}"#, "storage.files[0].contents.verification.hash: malformed hash \"md5-00\": expected sha256-<64 hex> or sha512-<128 hex>"),
        (r#"{"path":"/a","contents":{"source":"data:,a b"}}"#, "storage.files[0].contents.source: invalid data URL: character ' ' at offset 1 of the data is not allowed in a URL (percent-encode it)"),
        (r#"{"path":"/a","contents":{"source":"data:,x","compression":"gzip"}}"#, "storage.files[0].contents.source: invalid gzip data: unexpected end of file"),
        (r#"{"path":"/a","contents":{"source":"https://example.com/x"}}"#, "storage.files[0].contents.source: cannot fetch \"https://example.com/x\": https sources are not supported yet"),
        (r#"{"path":"/a","user":{"id":1,"name":"x"}}"#, "storage.files[0].user: id and name are both set; give one"),
        (r#"{"path":"/a","group":{"id":-5}}"#, "storage.files[0].group.id: -5 is out of range for an id (0..=4294967295)"),
    ];
    for (file, want) in cases {
        assert_eq!(
            err(&doc(&format!(r#","storage":{{"files":[{file}]}}"#))),
            want,
            "{file}"
        );
    }
    let e = err(&doc(
        r#","storage":{"files":[{"path":"/a","contents":{"source":"data:,x","verification":{"hash":"sha256-0000000000000000000000000000000000000000000000000000000000000000"}}}]}"#,
    ));
    assert!(
        e.starts_with(
            "storage.files[0].contents.verification.hash: hash mismatch: expected sha256-0000"
        ),
        "{e}"
    );
}

#[test]
fn duplicate_and_nested_paths() {
    assert_eq!(
        err(&doc(
            r#","storage":{"files":[{"path":"/etc/a"}],"links":[{"path":"/etc/a","target":"/x"}]}"#
        )),
        "storage.links[0].path: duplicate path \"/etc/a\", already used by storage.files[0]"
    );
    // Upstream refuses a path that path.Clean would change (the differential corpus checks it).
    assert_eq!(
        err(&doc(
            r#","storage":{"links":[{"path":"/etc/./a","target":"/x"}]}"#
        )),
        "storage.links[0].path: path \"/etc/./a\" is not fully simplified (write \"/etc/a\")"
    );
    assert_eq!(
        err(&doc(r#","storage":{"files":[{"path":"/etc/a/b"}],"links":[{"path":"/etc/a","target":"/x"}]}"#)),
        "storage.files[0].path: path \"/etc/a/b\" lies under storage.links[0], which is not a directory"
    );
    ok(&doc(
        r#","storage":{"files":[{"path":"/etc/a/b"}],"directories":[{"path":"/etc/a","mode":488}]}"#,
    ));
}

#[test]
fn links() {
    let cfg = ok(&doc(
        r#","storage":{"links":[{"path":"/etc/localtime","target":"../usr/share/zoneinfo/UTC"},{"path":"/h","target":"/etc/a","hard":true}]}"#,
    ));
    assert_eq!(cfg.links[0].target, "../usr/share/zoneinfo/UTC");
    assert!(cfg.links[1].hard);
    assert_eq!(
        err(&doc(r#","storage":{"links":[{"path":"/l"}]}"#)),
        "storage.links[0].target: link target is required"
    );
    assert_eq!(
        err(&doc(
            r#","storage":{"links":[{"path":"/l","target":"a","hard":true}]}"#
        )),
        "storage.links[0].target: hard link target \"a\" is not absolute"
    );
}

/// What Ignition 2.14 accepts about units with a warning, Harmony accepts with one too.
#[test]
fn unit_warnings() {
    let cases = [
        (r#"{"name":"a.service","mask":true,"contents":"[Unit]\n"}"#, "systemd.units[0].contents: unit \"a.service\" is masked: its contents are not written, the unit is a link to /dev/null"),
        (r#"{"name":"a.service","mask":true,"enabled":true}"#, "systemd.units[0].enabled: unit \"a.service\" is masked: enabling it is written to the preset file only, systemd will not start it"),
        (r#"{"name":"a.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true\n"}"#, "systemd.units[0].contents: unit \"a.service\" is enabled, but has no install section so enable does nothing"),
    ];
    for (unit, want) in cases {
        let cfg = ok(&doc(&format!(r#","systemd":{{"units":[{unit}]}}"#)));
        let w: Vec<String> = cfg.warnings.iter().map(|w| w.to_string()).collect();
        assert_eq!(w, [want], "{unit}");
    }
    // Masking wins over contents; an empty drop-in is still written.
    let cfg = ok(&doc(
        r#","systemd":{"units":[{"name":"a.service","mask":true,"contents":"[Unit]\n","dropins":[{"name":"e.conf","contents":""},{"name":"n.conf"}]}]}"#,
    ));
    assert_eq!(cfg.units[0].contents, None);
    assert_eq!(cfg.units[0].dropins[0].contents.as_deref(), Some(""));
    assert_eq!(cfg.units[0].dropins[1].contents, None);
}

#[test]
fn units() {
    let cfg = ok(&doc(r#","systemd":{"units":[
        {"name":"hello.service","enabled":true,"contents":"[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n","dropins":[{"name":"10-x.conf","contents":"[Service]\nNice=5\n"}]},
        {"name":"bad.service","mask":true},
        {"name":"sshd.service","enabled":false}]}"#));
    assert_eq!(cfg.units.len(), 3);
    assert!(cfg.units[1].mask);
    assert_eq!(cfg.units[2].enabled, Some(false));
    let cases = [
        (r#"{"name":"hello"}"#, "systemd.units[0].name: unit name \"hello\" does not end in a unit suffix (.service, .socket, .device, .mount, .automount, .swap, .target, .path, .timer, .snapshot, .slice, .scope)"),
        (r#"{"name":"a.service","dropins":[{"name":"x.txt"}]}"#, "systemd.units[0].dropins[0].name: drop-in name \"x.txt\" does not end in .conf"),
        (r#"{"name":"../a.service"}"#, "systemd.units[0].name: unit name \"../a.service\" contains '/': it would be written outside /etc/systemd/system"),
        (r#"{"name":"a.service","contents":"ExecStart=/x\n"}"#, "systemd.units[0].contents: invalid unit file, line 1: \"ExecStart=/x\" comes before any [Section]"),
    ];
    for (unit, want) in cases {
        assert_eq!(
            err(&doc(&format!(r#","systemd":{{"units":[{unit}]}}"#))),
            want,
            "{unit}"
        );
    }
    assert_eq!(
        err(&doc(
            r#","systemd":{"units":[{"name":"a.service"},{"name":"a.service"}]}"#
        )),
        "systemd.units[1].name: duplicate name \"a.service\""
    );
    assert_eq!(
        err(&doc(r#","storage":{"files":[{"path":"/etc/systemd/system/a.service"}]},"systemd":{"units":[{"name":"a.service","contents":"[Unit]\n"}]}"#)),
        "storage.files[0].path: path \"/etc/systemd/system/a.service\" conflicts with systemd unit \"a.service\", which writes it"
    );
}

#[test]
fn users_and_groups() {
    let cfg = ok(&doc(
        r#","passwd":{"users":[{"name":"core","uid":1000,"sshAuthorizedKeys":["ssh-ed25519 AAAA"],"groups":["wheel"]}],"groups":[{"name":"ops","gid":2000}]}"#,
    ));
    assert_eq!(cfg.users[0].uid, Some(1000));
    assert_eq!(cfg.users[0].ssh_authorized_keys, ["ssh-ed25519 AAAA"]);
    assert!(cfg.users[0].should_exist);
    assert_eq!(cfg.groups[0].gid, Some(2000));
    assert_eq!(
        err(&doc(r#","passwd":{"users":[{"name":"a"},{"name":"a"}]}"#)),
        "passwd.users[1].name: duplicate name \"a\""
    );
    assert_eq!(
        err(&doc(r#","passwd":{"groups":[{"name":"a:b"}]}"#)),
        "passwd.groups[0].name: invalid name \"a:b\": no ':', '/', or whitespace allowed"
    );
    assert_eq!(
        err(&doc(
            r#","passwd":{"users":[{"name":"a","homeDir":"home/a"}]}"#
        )),
        "passwd.users[0].homeDir: path \"home/a\" is not absolute"
    );
}

/// `len` zero bytes, gzipped and base64'd into a data URL: a small config, a large file.
fn gzip_bomb_url(len: u64) -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        gz.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        gz.finish().unwrap(),
    );
    format!("data:;base64,{b64}")
}

#[test]
fn a_file_decompressing_past_its_cap_is_refused_naming_the_field() {
    let at_cap = gzip_bomb_url(crate::limits::MAX_FILE_BYTES);
    let over = gzip_bomb_url(crate::limits::MAX_FILE_BYTES + 1);
    let file = |path: &str, url: &str| {
        format!(r#"{{"path":"{path}","contents":{{"source":"{url}","compression":"gzip"}}}}"#)
    };
    let cfg = ok(&doc(&format!(
        r#","storage":{{"files":[{}]}}"#,
        file("/at-cap", &at_cap)
    )));
    assert_eq!(
        cfg.files[0].contents.as_ref().map(crate::Contents::len),
        Some(crate::limits::MAX_FILE_BYTES)
    );
    let files = ["/a", "/b", "/c"]
        .map(|p| format!(r#"{{"path":"{p}","contents":{{"source":"data:,x"}}}}"#))
        .join(",");
    assert_eq!(
        err(&doc(&format!(
            r#","storage":{{"files":[{files},{}]}}"#,
            file("/bomb", &over)
        ))),
        format!(
            "storage.files[3].contents: decompressed size exceeds {} bytes",
            crate::limits::MAX_FILE_BYTES
        )
    );
    assert_eq!(
        err(&doc(&format!(
            r#","storage":{{"files":[{{"path":"/a","append":[{{"source":"{over}","compression":"gzip"}}]}}]}}"#
        ))),
        format!(
            "storage.files[0].append[0]: decompressed size exceeds {} bytes",
            crate::limits::MAX_FILE_BYTES
        )
    );
}

#[test]
fn files_together_past_the_config_cap_are_refused() {
    let per_file = crate::limits::MAX_CONFIG_BYTES / 3 + 1;
    let url = gzip_bomb_url(per_file);
    let files = ["/a", "/b", "/c"]
        .map(|p| {
            format!(r#"{{"path":"{p}","contents":{{"source":"{url}","compression":"gzip"}}}}"#)
        })
        .join(",");
    assert_eq!(
        err(&doc(&format!(r#","storage":{{"files":[{files}]}}"#))),
        format!(
            "storage.files[2].contents: the config's file contents together exceed {} bytes",
            crate::limits::MAX_CONFIG_BYTES
        )
    );
}

#[test]
fn proxy_and_certificate_authorities_are_checked_as_upstream_checks_them() {
    let with = |ignition: &str| format!(r#"{{"ignition":{{"version":"3.4.0",{ignition}}}}}"#);
    // Accepted: an inline CA, proxies, noProxy; a plaintext proxy for https is warned about.
    let cfg = ok(&with(
        r#""security":{"tls":{"certificateAuthorities":[{"source":"data:,-----BEGIN"}]}},
           "proxy":{"httpProxy":"http://p:3128","httpsProxy":"http://p:3128","noProxy":[".lan"]}"#,
    ));
    assert_eq!(
        cfg.warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["ignition.proxy.httpsProxy: insecure plaintext HTTP proxy specified for HTTPS resources"]
    );
    assert_eq!(
        err(&with(r#""proxy":{"httpProxy":"p:3128"}"#)),
        "ignition.proxy.httpProxy: proxy \"p:3128\" is not an http:// or https:// URL"
    );
    assert_eq!(
        err(&with(
            r#""security":{"tls":{"certificateAuthorities":[{}]}}"#
        )),
        "ignition.security.tls.certificateAuthorities[0].source: source is required"
    );
    assert_eq!(
        err(&with(
            r#""security":{"tls":{"certificateAuthorities":[{"source":"http://a/ca"},{"source":"http://a/ca"}]}}"#
        )),
        "ignition.security.tls.certificateAuthorities[1].source: duplicate source \"http://a/ca\""
    );
    assert_eq!(
        err(&with(
            r#""security":{"tls":{"certificateAuthorities":[{"source":"ftp://a/ca"}]}}"#
        )),
        "ignition.security.tls.certificateAuthorities[0].source: unsupported scheme \"ftp\""
    );
    // A remote CA with a fetcher that has no network: the CA's path and the reason.
    assert_eq!(
        err(&with(
            r#""security":{"tls":{"certificateAuthorities":[{"source":"https://a/ca"}]}}"#
        )),
        "ignition.security.tls.certificateAuthorities[0].source: cannot fetch \"https://a/ca\": https sources are not supported yet"
    );
}
