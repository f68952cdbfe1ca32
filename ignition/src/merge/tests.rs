//! Merge rules (cases from upstream's config/merge/merge_test.go, in JSON) and whole
//! documents rendered through data URLs.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;

use serde_json::{json, Value};

use super::json_merge::merge;
use super::*;
use crate::{node_config, NoRemoteFetcher, NodeConfig};

// ---- merge rules ----

/// upstream TestMerge case 3 without `disks` (a section Harmony refuses): the files,
/// directories and links share one key space, `append` is appended, ssh keys are a union.
#[test]
fn upstream_nodes_append_and_ssh_keys() {
    let parent = json!({
        "storage": {"files": [
            {"path": "/foo", "append": [{"source": "source1"}]},
            {"path": "/bar", "contents": {"compression": "gzip"}}
        ]},
        "passwd": {"users": [{"name": "bovik", "sshAuthorizedKeys": ["one", "two"]}]}
    });
    let child = json!({
        "storage": {
            "files": [{"path": "/foo", "append": [{"source": "source1"}, {"source": "source2"}]}],
            "directories": [{"path": "/bar"}],
            "links": [{"path": "/baz"}]
        },
        "passwd": {"users": [{"name": "bovik", "sshAuthorizedKeys": ["three", "two"]}]}
    });
    assert_eq!(
        merge(&parent, &child),
        json!({
            "storage": {
                "files": [{"path": "/foo", "append": [
                    {"source": "source1"}, {"source": "source1"}, {"source": "source2"}
                ]}],
                "directories": [{"path": "/bar"}],
                "links": [{"path": "/baz"}]
            },
            "passwd": {"users": [{"name": "bovik", "sshAuthorizedKeys": ["one", "two", "three"]}]}
        })
    );
}

/// upstream's header cases: same name merged, a child header without value removes the
/// parent's, new names appended; in `append` lists nothing is merged.
#[test]
fn upstream_http_headers() {
    let old = json!([
        {"name": "old-header", "value": "old-value"},
        {"name": "same-header", "value": "old-value"},
        {"name": "to-remove-header", "value": "some-value"}
    ]);
    let new = json!([
        {"name": "to-remove-header"},
        {"name": "new-header", "value": "new-value"},
        {"name": "same-header", "value": "new-value"}
    ]);
    let want = json!([
        {"name": "old-header", "value": "old-value"},
        {"name": "same-header", "value": "new-value"},
        {"name": "new-header", "value": "new-value"}
    ]);
    let url = "http://example.com/myconf.ign";
    let in_merge =
        |h: &Value| json!({"ignition": {"config": {"merge": [{"source": url, "httpHeaders": h}]}}});
    assert_eq!(merge(&in_merge(&old), &in_merge(&new)), in_merge(&want));
    let in_replace =
        |h: &Value| json!({"ignition": {"config": {"replace": {"source": url, "httpHeaders": h}}}});
    assert_eq!(
        merge(&in_replace(&old), &in_replace(&new)),
        in_replace(&want)
    );
    let in_file = |h: &Value| json!({"storage": {"files": [{"path": "/f", "contents": {"source": url, "httpHeaders": h}}]}});
    assert_eq!(merge(&in_file(&old), &in_file(&new)), in_file(&want));
    let in_append = |h: &Value| json!({"storage": {"files": [{"path": "/f", "append": [{"source": url, "httpHeaders": h}]}]}});
    let appended = merge(&in_append(&old), &in_append(&new));
    assert_eq!(
        appended["storage"]["files"][0]["append"],
        json!([{"source": url, "httpHeaders": old}, {"source": url, "httpHeaders": new}])
    );
}

#[test]
fn child_fields_win_unless_null_or_absent() {
    let parent = json!({"storage": {"files": [
        {"path": "/a", "mode": 384, "overwrite": true, "contents": {"source": "data:,x"}, "user": {"name": "core"}}
    ]}});
    let child = json!({"storage": {"files": [{"path": "/a", "mode": 420, "overwrite": null, "user": {"id": 7}}]}});
    assert_eq!(
        merge(&parent, &child),
        json!({"storage": {"files": [
            {"path": "/a", "mode": 420, "overwrite": true, "contents": {"source": "data:,x"}, "user": {"name": "core", "id": 7}}
        ]}})
    );
}

#[test]
fn units_dropins_users_groups_by_name() {
    let parent = json!({
        "systemd": {"units": [
            {"name": "a.service", "enabled": true, "dropins": [{"name": "x.conf", "contents": "[Service]\n"}]},
            {"name": "b.service", "mask": true}
        ]},
        "passwd": {
            "users": [{"name": "core", "groups": ["wheel", "docker"], "shell": "/bin/sh"}],
            "groups": [{"name": "ops", "gid": 900}]
        }
    });
    let child = json!({
        "systemd": {"units": [
            {"name": "a.service", "enabled": false, "dropins": [{"name": "y.conf"}, {"name": "x.conf", "contents": ""}]},
            {"name": "c.service"}
        ]},
        "passwd": {
            "users": [{"name": "core", "groups": ["docker", "adm"]}, {"name": "new"}],
            "groups": [{"name": "ops", "system": true}]
        }
    });
    assert_eq!(
        merge(&parent, &child),
        json!({
            "systemd": {"units": [
                {"name": "a.service", "enabled": false, "dropins": [{"name": "x.conf", "contents": ""}, {"name": "y.conf"}]},
                {"name": "b.service", "mask": true},
                {"name": "c.service"}
            ]},
            "passwd": {
                "users": [{"name": "core", "groups": ["wheel", "docker", "adm"], "shell": "/bin/sh"}, {"name": "new"}],
                "groups": [{"name": "ops", "gid": 900, "system": true}]
            }
        })
    );
}

/// A child's node of another kind replaces the parent's at that path (operator notes:
/// "a file in a child config can replace a link in the parent"), even when the child has
/// no list of the parent's kind at all.
#[test]
fn a_node_changes_kind() {
    let parent = json!({"storage": {"links": [{"path": "/l", "target": "/t"}], "files": [{"path": "/d"}, {"path": "/keep"}]}});
    let child = json!({"storage": {"files": [{"path": "/l"}], "directories": [{"path": "/d"}]}});
    assert_eq!(
        merge(&parent, &child),
        json!({"storage": {
            "links": [],
            "files": [{"path": "/keep"}, {"path": "/l"}],
            "directories": [{"path": "/d"}]
        }})
    );
}

// ---- whole documents ----

fn data_url(doc: &str) -> String {
    let mut out = String::from("data:,");
    for b in doc.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn with_refs(version: &str, config: Value, rest: &str) -> String {
    format!(r#"{{"ignition":{{"version":"{version}","config":{config}}}{rest}}}"#)
}

fn ok(doc: &str) -> NodeConfig {
    node_config(doc.as_bytes(), &NoRemoteFetcher).unwrap_or_else(|e| panic!("{e}"))
}

fn err(doc: &str) -> String {
    match node_config(doc.as_bytes(), &NoRemoteFetcher) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn file<'a>(cfg: &'a NodeConfig, path: &str) -> &'a crate::FileEntry {
    cfg.files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("no file {path} in {cfg:?}"))
}

/// The case checked against Ignition 2.14's merged config cache: a 3.3.0 child merged into
/// a 3.0.0 parent overrides the mode and keeps the parent's contents and overwrite.
#[test]
fn merge_overrides_field_by_field_across_versions() {
    let child = data_url(
        r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/a","mode":420}]}}"#,
    );
    let cfg = ok(&with_refs(
        "3.0.0",
        json!({"merge": [{"source": child}]}),
        r#","storage":{"files":[{"path":"/a","mode":384,"overwrite":true,"contents":{"source":"data:,x"}}]}"#,
    ));
    assert_eq!(cfg.files.len(), 1);
    assert_eq!(file(&cfg, "/a").mode, Some(0o644));
    assert_eq!(
        file(&cfg, "/a").contents,
        Some(crate::Contents::from(&b"x"[..]))
    );
    assert!(file(&cfg, "/a").overwrite);
}

#[test]
fn replace_drops_the_parent_and_its_merges() {
    let replacing =
        data_url(r#"{"ignition":{"version":"3.1.0"},"storage":{"files":[{"path":"/r"}]}}"#);
    let merged =
        data_url(r#"{"ignition":{"version":"3.1.0"},"storage":{"files":[{"path":"/m"}]}}"#);
    let cfg = ok(&with_refs(
        "3.3.0",
        json!({"replace": {"source": replacing}, "merge": [{"source": merged}]}),
        r#","storage":{"files":[{"path":"/p"}]}"#,
    ));
    let paths: Vec<&str> = cfg.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["/r"]);
    // An empty replace source replaces nothing, as in Ignition 2.14.
    let cfg = ok(&with_refs(
        "3.3.0",
        json!({"replace": {"source": ""}}),
        r#","storage":{"files":[{"path":"/p"}]}"#,
    ));
    assert_eq!(cfg.files[0].path, "/p");
}

/// Children are rendered before they are merged (depth first), then merged in list order.
#[test]
fn depth_first_then_in_order() {
    let grandchild = data_url(
        r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/f","contents":{"source":"data:,c"}}]}}"#,
    );
    let first = data_url(&with_refs(
        "3.4.0",
        json!({"merge": [{"source": grandchild}]}),
        r#","storage":{"files":[{"path":"/f","contents":{"source":"data:,a"}},{"path":"/g","contents":{"source":"data:,a"}}]}"#,
    ));
    let second = data_url(
        r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/g","contents":{"source":"data:,b"}}]}}"#,
    );
    let cfg = ok(&with_refs(
        "3.4.0",
        json!({"merge": [{"source": first}, {"source": second}]}),
        r#","storage":{"files":[{"path":"/f","contents":{"source":"data:,root"}}]}"#,
    ));
    assert_eq!(
        file(&cfg, "/f").contents,
        Some(crate::Contents::from(&b"c"[..]))
    );
    assert_eq!(
        file(&cfg, "/g").contents,
        Some(crate::Contents::from(&b"b"[..]))
    );
}

/// Translation up: a pre-3.4 config's setuid/setgid/sticky bits are dropped before the
/// merge (Ignition 2.14's cache shows 2541 → 493); a 3.4.0 child's are kept, whatever the
/// parent's version.
#[test]
fn older_children_lose_special_mode_bits_newer_keep_them() {
    let old = data_url(
        r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/old","mode":2541}]}}"#,
    );
    let new = data_url(
        r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/new","mode":2541}]}}"#,
    );
    let cfg = ok(&with_refs(
        "3.0.0",
        json!({"merge": [{"source": old}, {"source": new}]}),
        "",
    ));
    assert_eq!(file(&cfg, "/old").mode, Some(0o755));
    assert_eq!(file(&cfg, "/new").mode, Some(0o4755));
}

#[test]
fn hash_and_compression_of_a_reference() {
    let child = br#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/z"}]}}"#;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(child).unwrap();
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        gz.finish().unwrap(),
    );
    let sha = hex::encode(<sha2::Sha512 as sha2::Digest>::digest(child));
    let source = format!("data:;base64,{b64}");
    let good = json!({"merge": [{"source": source, "compression": "gzip", "verification": {"hash": format!("sha512-{sha}")}}]});
    assert_eq!(ok(&with_refs("3.4.0", good, "")).files[0].path, "/z");
    let bad = json!({"merge": [{"source": source, "compression": "gzip", "verification": {"hash": format!("sha512-{}", "0".repeat(128))}}]});
    assert!(err(&with_refs("3.4.0", bad, ""))
        .starts_with("ignition.config.merge[0].verification.hash: hash mismatch: expected "));
}

#[test]
fn errors_name_the_reference_then_the_path_inside() {
    let fine = data_url(r#"{"ignition":{"version":"3.4.0"}}"#);
    let broken =
        data_url(r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"etc/x"}]}}"#);
    assert_eq!(
        err(&with_refs(
            "3.4.0",
            json!({"merge": [{"source": fine}, {"source": broken}]}),
            ""
        )),
        "ignition.config.merge[1].source: storage.files[0].path: path \"etc/x\" is not absolute"
    );
    let nested = data_url(&with_refs(
        "3.2.0",
        json!({"replace": {"source": broken}}),
        "",
    ));
    assert_eq!(
        err(&with_refs("3.4.0", json!({"merge": [{"source": nested}]}), "")),
        "ignition.config.merge[0].source: ignition.config.replace.source: storage.files[0].path: path \"etc/x\" is not absolute"
    );
    assert_eq!(
        err(&with_refs("3.4.0", json!({"merge": [{"source": data_url("{\"ignition\":{\"version\":\"3.5.0\"}}")}]}), "")),
        "ignition.config.merge[0].source: ignition.version: unsupported spec version \"3.5.0\" (supported: 3.0.0, 3.1.0, 3.2.0, 3.3.0, 3.4.0)"
    );
    assert_eq!(
        err(&with_refs("3.4.0", json!({"merge": [{"source": "https://example.com/c.ign"}]}), "")),
        "ignition.config.merge[0].source: cannot fetch \"https://example.com/c.ign\": https sources are not supported yet"
    );
}

/// Upstream's validation of the references themselves (each confirmed with Ignition 2.14).
#[test]
fn reference_validation() {
    let fine = data_url(r#"{"ignition":{"version":"3.4.0"}}"#);
    let cases = [
        (json!({"merge": [{}]}), "ignition.config.merge[0].source: source is required"),
        (json!({"merge": [{"source": ""}]}), "ignition.config.merge[0].source: source is required"),
        (
            json!({"merge": [{"source": fine}, {"source": fine}]}),
            &*format!("ignition.config.merge[1].source: duplicate source {fine:?}"),
        ),
        (
            json!({"merge": [{"source": fine, "verification": {"hash": "sha512-00"}}]}),
            "ignition.config.merge[0].verification.hash: malformed hash \"sha512-00\": expected sha256-<64 hex> or sha512-<128 hex>",
        ),
        (
            json!({"merge": [{"source": fine, "httpHeaders": [{"name": "A", "value": "b"}]}]}),
            "ignition.config.merge[0].httpHeaders: HTTP headers need an http or https source, not \"data\"",
        ),
        (json!({"replace": {"source": "ftp://h/c"}}), "ignition.config.replace.source: unsupported scheme \"ftp\""),
        (json!({"merge": {}}), "ignition.config.merge: invalid type: map, expected a sequence"),
    ];
    for (refs, want) in cases {
        assert_eq!(err(&with_refs("3.4.0", refs.clone(), "")), want, "{refs}");
    }
}

#[test]
fn the_merged_result_is_validated_again() {
    let child =
        data_url(r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/a/b"}]}}"#);
    assert_eq!(
        err(&with_refs(
            "3.4.0",
            json!({"merge": [{"source": child}]}),
            r#","storage":{"files":[{"path":"/a"}]}"#
        )),
        "ignition.config: merging the referenced configs gives an invalid config: storage.files[1].path: path \"/a/b\" lies under storage.files[0], which is not a directory"
    );
}

/// The fuzz target ignition_config's finding: a directory at "/" (clean as path.Clean
/// sees it) came out of a merged data: URL config as a node at the root itself. Refused in
/// the referenced config, in the merged result, and in a config without references.
#[test]
fn a_node_at_the_root_path_is_refused_merged_or_not() {
    let refused =
        "path \"/\" is the root directory itself; a file, directory or link needs a name under it";
    let child = data_url(
        r#"{"ignition":{"version":"3.4.0"},"storage":{"directories":[{"path":"/","mode":511}]}}"#,
    );
    assert_eq!(
        err(&with_refs(
            "3.4.0",
            json!({"merge": [{"source": child}]}),
            ""
        )),
        format!("ignition.config.merge[0].source: storage.directories[0].path: {refused}")
    );
    let empty = data_url(r#"{"ignition":{"version":"3.0.0"}}"#);
    for node in [
        r#""files":[{"path":"/"}]"#,
        r#""directories":[{"path":"/"}]"#,
        r#""links":[{"path":"/","target":"/etc"}]"#,
    ] {
        let kind = node[1..node.find("\":").unwrap()].to_string();
        assert_eq!(
            err(&with_refs(
                "3.4.0",
                json!({"merge": [{"source": empty}]}),
                &format!(r#","storage":{{{node}}}"#)
            )),
            format!("storage.{kind}[0].path: {refused}")
        );
        assert_eq!(
            err(&format!(
                r#"{{"ignition":{{"version":"3.4.0"}},"storage":{{{node}}}}}"#
            )),
            format!("storage.{kind}[0].path: {refused}")
        );
    }
}

/// Each document's unused keys are warned about once, a referenced one's behind its
/// reference; what a document did not use is not merged either.
#[test]
fn warnings_of_every_document_and_unused_keys_stay_unused() {
    let child = data_url(
        r#"{"ignition":{"version":"3.0.0"},"passwd":{"users":[{"name":"a","shouldExist":false,"colour":1}]}}"#,
    );
    let cfg = ok(&with_refs(
        "3.4.0",
        json!({"merge": [{"source": child}], "append": []}),
        "",
    ));
    let w: Vec<String> = cfg.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        w,
        [
            "ignition.config.append: Unused key append".to_string(),
            "ignition.config.merge[0].source: passwd.users[0].colour: Unused key colour"
                .to_string(),
            "ignition.config.merge[0].source: passwd.users[0].shouldExist: Unused key shouldExist"
                .to_string(),
        ]
    );
    assert!(
        cfg.users[0].should_exist,
        "a 3.0.0 config cannot remove a user"
    );
}

/// Data URLs cannot form a cycle, but they can nest without end: the depth limit stops it.
#[test]
fn nesting_stops_at_the_depth_limit() {
    let mut doc = r#"{"ignition":{"version":"3.4.0"}}"#.to_string();
    for _ in 0..MAX_DEPTH {
        doc = with_refs("3.4.0", json!({"merge": [{"source": data_url(&doc)}]}), "");
    }
    ok(&doc);
    let too_deep = with_refs("3.4.0", json!({"merge": [{"source": data_url(&doc)}]}), "");
    let e = err(&too_deep);
    assert!(
        e.starts_with("ignition.config.merge[0].source: ignition.config.merge[0].source: "),
        "{e}"
    );
    assert!(
        e.ends_with(&format!(
            "configs reference each other more than {MAX_DEPTH} levels deep"
        )),
        "{e}"
    );
}

/// Configs served by URL, recording the headers each request carried: the network seam
/// the agent's fetcher fills (that one is tested against a real server in the agent).
#[derive(Default)]
struct Served {
    configs: BTreeMap<&'static str, String>,
    requests: RefCell<Vec<Request>>,
}

/// A URL and the headers sent with it.
type Request = (String, Vec<(String, String)>);

impl Fetcher for Served {
    fn fetch(&self, url: &str) -> std::result::Result<Vec<u8>, String> {
        self.fetch_with_headers(url, &[])
    }

    fn fetch_with_headers(
        &self,
        url: &str,
        headers: &[(String, String)],
    ) -> std::result::Result<Vec<u8>, String> {
        self.requests
            .borrow_mut()
            .push((url.to_string(), headers.to_vec()));
        self.configs
            .get(url)
            .map(|c| c.as_bytes().to_vec())
            .ok_or_else(|| "404".to_string())
    }
}

#[test]
fn a_config_that_merges_itself_is_a_cycle() {
    let mut served = Served::default();
    served.configs.insert(
        "http://h/a.ign",
        with_refs(
            "3.4.0",
            json!({"merge": [{"source": "http://h/b.ign"}]}),
            "",
        ),
    );
    served.configs.insert(
        "http://h/b.ign",
        with_refs(
            "3.4.0",
            json!({"replace": {"source": "http://h/a.ign"}}),
            "",
        ),
    );
    let root = with_refs(
        "3.4.0",
        json!({"merge": [{"source": "http://h/a.ign"}]}),
        "",
    );
    let e = node_config(root.as_bytes(), &served)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "ignition.config.merge[0].source: ignition.config.merge[0].source: ignition.config.replace.source: \"http://h/a.ign\" is already being merged further up (a reference cycle)"
    );
    // The same config twice side by side is no cycle.
    served.configs.insert(
        "http://h/leaf.ign",
        r#"{"ignition":{"version":"3.4.0"}}"#.into(),
    );
    served.configs.insert(
        "http://h/twice.ign",
        with_refs(
            "3.4.0",
            json!({"merge": [{"source": "http://h/leaf.ign"}]}),
            "",
        ),
    );
    let root = with_refs(
        "3.4.0",
        json!({"merge": [{"source": "http://h/leaf.ign"}, {"source": "http://h/twice.ign"}]}),
        "",
    );
    node_config(root.as_bytes(), &served).unwrap();
}

#[test]
fn headers_reach_the_fetcher_for_references_and_contents() {
    let mut served = Served::default();
    served.configs.insert(
        "https://h/c.ign",
        r#"{"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/f","contents":{"source":"https://h/f","httpHeaders":[{"name":"X-F","value":"2"}]}}]}}"#.into(),
    );
    served.configs.insert("https://h/f", "file".into());
    let root = with_refs(
        "3.4.0",
        json!({"merge": [{"source": "https://h/c.ign", "httpHeaders": [{"name": "Authorization", "value": "Bearer t"}]}]}),
        "",
    );
    let cfg = node_config(root.as_bytes(), &served).unwrap();
    assert_eq!(
        file(&cfg, "/f").contents,
        Some(crate::Contents::from(&b"file"[..]))
    );
    let pair = |n: &str, v: &str| (n.to_string(), v.to_string());
    assert_eq!(
        *served.requests.borrow(),
        vec![
            (
                "https://h/c.ign".to_string(),
                vec![pair("Authorization", "Bearer t")]
            ),
            ("https://h/f".to_string(), vec![pair("X-F", "2")]),
        ]
    );
    // A fetcher without header support refuses rather than fetching without them.
    assert_eq!(
        err(&root),
        "ignition.config.merge[0].source: cannot fetch \"https://h/c.ign\": this fetcher cannot send HTTP headers"
    );
}
