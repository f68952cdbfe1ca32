//! The docker-credential-helpers protocol, reading side: `docker-credential-NAME get`
//! with the server URL on stdin answers `{"ServerURL", "Username", "Secret"}` on stdout,
//! or exits non-zero saying "credentials not found in native keychain" (anonymous).

use std::io::Write;
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::oci::client::Credentials;

/// No Debug: it holds the secret.
#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// The program a helper name stands for.
pub fn program(name: &str) -> String {
    format!("docker-credential-{name}")
}

/// What docker passes for a registry host: the URL `docker login` stores Docker Hub under,
/// the host for every other registry.
pub fn server_url(host: &str) -> String {
    match crate::oci::reference::canonical_host(host) {
        "docker.io" => "https://index.docker.io/v1/".into(),
        other => other.into(),
    }
}

/// Ask helper `name` for `server_url`'s credentials; `Ok(None)` when it has none.
/// Problems quote the helper's own message, never its answer.
pub fn get(name: &str, server_url: &str) -> Result<Option<Credentials>, String> {
    if name.is_empty() || name.contains('/') {
        return Err(format!("{name:?} is not a helper name"));
    }
    let program = program(name);
    let mut get = Command::new(&program);
    get.arg("get");
    ask(get, &program, server_url)
}

/// The protocol itself, with `get` (a helper's `get` command) shown as `program`.
fn ask(mut get: Command, program: &str, server_url: &str) -> Result<Option<Credentials>, String> {
    let mut child = get
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("{program} is not on PATH"),
            _ => format!("running {program}: {e}"),
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading closes the pipe: its exit status tells.
        let _ = stdin.write_all(format!("{server_url}\n").as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("running {program}: {e}"))?;
    if !out.status.success() {
        // Go helpers print their error on stdout; others may use stderr.
        let said = [&out.stdout, &out.stderr]
            .iter()
            .map(|b| String::from_utf8_lossy(b).trim().to_string())
            .find(|s| !s.is_empty())
            .unwrap_or_default();
        if said.to_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        let first: String = said
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        return Err(format!(
            "`{program} get` for {server_url} failed ({}): {first}",
            out.status
        ));
    }
    let answer: Answer = serde_json::from_slice(&out.stdout).map_err(|_| {
        format!("`{program} get` for {server_url} did not answer JSON {{\"Username\", \"Secret\"}}")
    })?;
    if answer.username.is_empty() && answer.secret.is_empty() {
        return Ok(None);
    }
    if answer.username == "<token>" {
        return Err(format!(
            "`{program} get` for {server_url} gave an identity token (Username \"<token>\"); \
             harmony takes a user name and password only"
        ));
    }
    Ok(Some(Credentials {
        username: answer.username,
        password: answer.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_is_asked_for_by_its_v1_url() {
        assert_eq!(
            server_url("registry-1.docker.io"),
            "https://index.docker.io/v1/"
        );
        assert_eq!(server_url("reg.lan:5000"), "reg.lan:5000");
    }

    #[test]
    fn a_missing_helper_and_a_bad_name_are_errors() {
        let err = get("harmony-test-no-such-helper", "reg").err().unwrap();
        assert_eq!(
            err,
            "docker-credential-harmony-test-no-such-helper is not on PATH"
        );
        assert!(get("../x", "reg").is_err());
    }

    /// A helper: a shell script in a temp dir that answers `body` (a shell snippet) to
    /// `get`. Run by sh, not executed itself: a file just written may still be open in a
    /// child another test thread forked (ETXTBSY).
    fn script(dir: &std::path::Path, name: &str, body: &str) -> Command {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("[ \"$1\" = get ] || exit 9\nread -r url\n{body}\n"),
        )
        .unwrap();
        let mut sh = Command::new("/bin/sh");
        sh.arg(path).arg("get");
        sh
    }

    fn ask(get: Command, url: &str) -> Result<Option<Credentials>, String> {
        super::ask(get, "docker-credential-test", url)
    }

    #[test]
    fn the_protocol_with_real_processes() {
        let dir = tempfile::tempdir().unwrap();
        let answers = script(
            dir.path(),
            "answers",
            r#"printf '{"ServerURL":"%s","Username":"ci","Secret":"s3cret-%s"}' "$url" "$url""#,
        );
        let c = ask(answers, "reg.lan:5000").unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("ci", "s3cret-reg.lan:5000")
        );

        let none = script(
            dir.path(),
            "none",
            "echo 'credentials not found in native keychain'; exit 1",
        );
        assert!(ask(none, "reg").unwrap().is_none());
        let empty = script(dir.path(), "empty", r#"echo '{"Username":"","Secret":""}'"#);
        assert!(ask(empty, "reg").unwrap().is_none());

        let broken = script(dir.path(), "broken", "echo 'keychain locked' >&2; exit 3");
        let err = ask(broken, "reg").err().unwrap();
        assert!(
            err.contains("failed") && err.contains("keychain locked"),
            "{err}"
        );
        let garbage = script(dir.path(), "garbage", "echo 'Secret=s3cret'");
        let err = ask(garbage, "reg").err().unwrap();
        assert!(
            err.contains("did not answer JSON") && !err.contains("s3cret"),
            "{err}"
        );
        let token = script(
            dir.path(),
            "token",
            r#"echo '{"Username":"<token>","Secret":"s3cret"}'"#,
        );
        let err = ask(token, "reg").err().unwrap();
        assert!(
            err.contains("identity token") && !err.contains("s3cret"),
            "{err}"
        );
    }
}
