//! Registry credentials for every registry access, against a real registry on loopback
//! that asks for a password (Debian's `docker-registry`, htpasswd with bcrypt), with the
//! auth file written by the real `skopeo login`: a recipe whose base and component image
//! live there builds with `--authfile`, and fails clearly without it, with wrong
//! credentials, or with credentials for the base's repository only; `harmony push` takes
//! the same file, also when `$REGISTRY_AUTH_FILE` names it; a docker `config.json` naming a
//! credential store is answered by a docker-credential-helper (a script speaking the
//! protocol) found on PATH.

// Test code: an unwrap here is an assertion (clippy's allow-unwrap-in-tests covers only
// #[test] functions, not the helpers beside them).
#![allow(clippy::unwrap_used)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use base64::Engine;
use harmony::build::default_base::{ensure_default_base, DEFAULT_BASE_TAG};
use harmony::oci::{ImageDetails, LayoutWriter};
use harmony::tree::layer::{encode_layer, LayerChanges};
use harmony::tree::{Entry, Kind, Meta};
use support::*;

const USER: &str = "ci";
const PASSWORD: &str = "s3cret-pw";

/// A one-file image layout (the component image); returns its manifest digest.
fn marker_image(dir: &Path) -> String {
    let mut changes = LayerChanges::default();
    changes.put(
        "/etc/marker",
        Entry {
            kind: Kind::File(Arc::new(b"private component\n".to_vec())),
            meta: Meta::new(0o644),
        },
    );
    let mut writer = LayoutWriter::create(dir, 0).unwrap();
    writer
        .add_layer(&encode_layer(&changes, 0).unwrap(), "marker")
        .unwrap();
    writer
        .finish(&ImageDetails {
            tag: "marker".into(),
            labels: Default::default(),
            annotations: Default::default(),
        })
        .unwrap()
}

/// Every path in every layer of the one image in layout `dir`.
fn image_paths(dir: &Path) -> Vec<String> {
    let r: harmony::oci::ImageRef = format!("oci-layout:{}", dir.display()).parse().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let image = harmony::oci::open_image(&r, cache.path()).expect("a valid image");
    let mut paths = Vec::new();
    for layer in &image.layers {
        let mut archive = tar::Archive::new(layer.open_tar().unwrap());
        for entry in archive.entries().unwrap() {
            paths.push(entry.unwrap().path().unwrap().display().to_string());
        }
    }
    paths
}

fn skopeo_push(from: &str, to: &str) {
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false", "--dest-creds"])
        .arg(format!("{USER}:{PASSWORD}"))
        .arg(from)
        .arg(format!("docker://{to}")));
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `harmony build RECIPE` into `out` with a fresh cache, credentials only from `home`.
fn build(recipe: &Path, out: &Path, cache: &Path, home: &Path, extra: &[&str]) -> Command {
    let mut cmd = harmony();
    cmd.arg("build")
        .arg(recipe)
        .arg("--out")
        .arg(out)
        .arg("--cache")
        .arg(cache)
        .args(extra);
    isolated(&mut cmd, home);
    cmd
}

/// A program on PATH made by a child process, so no file this test process has open for
/// writing is executed (ETXTBSY when another test thread forks meanwhile).
fn install_helper(bin: &Path, name: &str, script: &str) {
    std::fs::create_dir_all(bin).unwrap();
    let path = bin.join(name);
    run(Command::new("sh")
        .arg("-c")
        .arg("cat > \"$1\" && chmod 755 \"$1\"")
        .arg("sh")
        .arg(&path)
        .stdin(std::fs::File::open(write_temp(script)).unwrap()));
}

fn write_temp(text: &str) -> PathBuf {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    f.into_temp_path().keep().unwrap()
}

#[test]
fn private_base_and_component_pull_with_the_skopeo_login_auth_file() {
    if !tools_present() {
        return;
    }
    let Some(htpasswd) = htpasswd_line(USER, PASSWORD) else {
        harmony_test_support::skip(
            "/usr/bin/python3 crypt module not available: cannot write a bcrypt htpasswd",
        );
        return;
    };
    let registry = Registry::start(Some(&htpasswd));
    let host = registry.host();
    let work = tempfile::tempdir().unwrap();
    let home = work.path().join("home");

    // The base and a component image, put there by skopeo with the password.
    let base_dir = ensure_default_base(&cache_dir(), 0).expect("default base");
    let base_digest = layout_digest(&base_dir);
    skopeo_push(
        &format!("oci:{}:{DEFAULT_BASE_TAG}", base_dir.display()),
        &registry.at("harmony/private-base:12"),
    );
    let marker_dir = work.path().join("marker");
    let marker_digest = marker_image(&marker_dir);
    skopeo_push(
        &format!("oci:{}:marker", marker_dir.display()),
        &registry.at("harmony/private-component:1"),
    );
    let recipe = work.path().join("private.yaml");
    std::fs::write(
        &recipe,
        format!(
            "name: private-node\nversion: 1.0.0\n\
             base: docker://{base}@{base_digest}\n\
             components:\n  - name: haproxy\n    image: docker://{component}@{marker_digest}\n    \
             values:\n      stats_port: 8404\n\
             outputs: [oci]\n",
            base = registry.at("harmony/private-base"),
            component = registry.at("harmony/private-component"),
        ),
    )
    .unwrap();
    let out = work.path().join("out");

    // No credentials anywhere: the pull of the base says which registry and how to log in.
    let anonymous = build(&recipe, &out, &work.path().join("c1"), &home, &[])
        .output()
        .unwrap();
    let message = stderr(&anonymous);
    assert!(!anonymous.status.success(), "{message}");
    assert!(
        message.contains("opening the base image")
            && message.contains(&format!(
                "registry {host}: harmony/private-base needs credentials and none were found"
            ))
            && message.contains(&format!("skopeo login {host}"))
            && message.contains("--authfile FILE"),
        "{message}"
    );
    assert!(!out.exists(), "a failed build left {}", out.display());

    // Wrong credentials in docker's config.json (a default file; a URL key, as old
    // `docker login` wrote them): refused, naming user and file, not the password.
    let docker = home.join(".docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(
            r#"{{"auths": {{"http://{host}/v2/": {{"auth": "{}"}}}}}}"#,
            b64(&format!("{USER}:not-the-password"))
        ),
    )
    .unwrap();
    let wrong = build(&recipe, &out, &work.path().join("c2"), &home, &[])
        .output()
        .unwrap();
    let message = stderr(&wrong);
    assert!(!wrong.status.success(), "{message}");
    assert!(
        message.contains(&format!(
            "registry {host}: refused the credentials of user {USER} (from auth file {}",
            docker.join("config.json").display()
        )) && !message.contains("not-the-password"),
        "{message}"
    );
    std::fs::remove_dir_all(&docker).unwrap();

    // The real `skopeo login` writes the auth file harmony reads.
    let authfile = work.path().join("auth.json");
    run(Command::new("skopeo")
        .args(["login", "--tls-verify=false", "--authfile"])
        .arg(&authfile)
        .args(["--username", USER, "--password-stdin"])
        .arg(&host)
        .stdin(std::fs::File::open(write_temp(PASSWORD)).unwrap()));
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&authfile).unwrap()).unwrap();
    assert!(written["auths"][&host]["auth"].is_string(), "{written}");

    // A file with credentials for the base's repository only (the most specific key
    // wins; nothing matches the component's): the component's pull fails the same way.
    let base_only = work.path().join("base-only.json");
    std::fs::write(
        &base_only,
        format!(
            r#"{{"auths": {{"{}": {{"auth": "{}"}}}}}}"#,
            registry.at("harmony/private-base"),
            b64(&format!("{USER}:{PASSWORD}"))
        ),
    )
    .unwrap();
    let component = build(
        &recipe,
        &out,
        &work.path().join("c3"),
        &home,
        &["--authfile", base_only.to_str().unwrap()],
    )
    .output()
    .unwrap();
    let message = stderr(&component);
    assert!(!component.status.success(), "{message}");
    assert!(
        message.contains("opening component haproxy's image")
            && message.contains(&format!(
                "registry {host}: harmony/private-component needs credentials and none were \
                 found (looked in {} (from --authfile))",
                base_only.display()
            )),
        "{message}"
    );

    // With skopeo's file: base and component are pulled, and the image is built.
    let cache = work.path().join("c4");
    let built = run(&mut build(
        &recipe,
        &out,
        &cache,
        &home,
        &["--authfile", authfile.to_str().unwrap()],
    ));
    assert!(!stderr(&built).contains(PASSWORD));
    let lock: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("harmony.lock.json")).unwrap()).unwrap();
    assert_eq!(lock["base"]["manifest_digest"], base_digest.as_str());
    let marker_blob = format!(
        "/blobs/sha256/{}",
        marker_digest.trim_start_matches("sha256:")
    );
    assert!(
        image_paths(&out.join("oci"))
            .iter()
            .any(|p| p.starts_with("usr/share/harmony/components/haproxy/")
                && p.ends_with(&marker_blob)),
        "the component image {marker_digest} is not in the built image"
    );

    // `harmony push --authfile`: the same file for the push, which skopeo reads back.
    let target = registry.at("harmony/private-node:1.0.0");
    run(isolated(
        harmony()
            .arg("push")
            .arg(&out)
            .arg(&target)
            .arg("--authfile")
            .arg(&authfile),
        &home,
    ));
    assert_eq!(
        skopeo_digest(
            &format!("docker://{target}"),
            &["--creds", &format!("{USER}:{PASSWORD}")]
        ),
        layout_digest(&out.join("oci"))
    );

    // $REGISTRY_AUTH_FILE names the file when --authfile does not (a second push: every
    // blob is there, but the registry still asks).
    let again = run(
        isolated(harmony().arg("push").arg(&out).arg(&target), &home)
            .env("REGISTRY_AUTH_FILE", &authfile),
    );
    assert!(
        stderr(&again).contains("(0 blob(s) uploaded"),
        "{}",
        stderr(&again)
    );

    // docker's way: `{}` under auths and the secret in a credential store, answered by a
    // docker-credential-helper on PATH that records what it is asked for. (The cache has
    // the blobs now, but each build fetches the manifests again, so the registry asks.)
    let asked = work.path().join("asked");
    let bin = work.path().join("bin");
    install_helper(
        &bin,
        "docker-credential-harmonytest",
        &format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread -r url\necho \"$url\" >> {asked}\n\
             if [ \"$url\" = \"{host}\" ]; then\n  \
             printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$url\"\n\
             else\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
            asked = asked.display()
        ),
    );
    install_helper(
        &bin,
        "docker-credential-harmonyempty",
        "#!/bin/sh\necho 'credentials not found in native keychain'\nexit 1\n",
    );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let docker = work.path().join("docker-config");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"auths": {{"{host}": {{}}}}, "credsStore": "harmonytest"}}"#),
    )
    .unwrap();
    run(
        build(&recipe, &work.path().join("out-helper"), &cache, &home, &[])
            .env("DOCKER_CONFIG", &docker)
            .env("PATH", &path),
    );
    // Asked once for the base's registry and once for the component's.
    let asked_for = std::fs::read_to_string(&asked).unwrap();
    assert_eq!(asked_for.lines().collect::<Vec<_>>(), [host.as_str(); 2]);

    // A helper that has nothing for the registry ("credentials not found") means
    // anonymous: the registry's refusal is what the user sees, with how to log in.
    std::fs::write(
        docker.join("config.json"),
        format!(r#"{{"credHelpers": {{"{host}": "harmonyempty"}}}}"#),
    )
    .unwrap();
    let empty = build(&recipe, &work.path().join("out-empty"), &cache, &home, &[])
        .env("DOCKER_CONFIG", &docker)
        .env("PATH", &path)
        .output()
        .unwrap();
    let message = stderr(&empty);
    assert!(!empty.status.success(), "{message}");
    assert!(
        message.contains(&format!(
            "registry {host}: harmony/private-base needs credentials and none were found"
        )),
        "{message}"
    );
}
