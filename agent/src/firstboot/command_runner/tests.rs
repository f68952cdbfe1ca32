//! Real commands through the real /bin/sh: exit codes, signals, timeouts, output tails.

use std::time::{Duration, Instant};

use ignition::CommandStage;

use super::*;

fn cmd(name: &str, script: &str) -> PlannedCommand {
    PlannedCommand {
        name: name.to_string(),
        stage: CommandStage::Late,
        script: script.as_bytes().to_vec(),
        env: vec![("INSTANCE_ID".to_string(), "iid-7".to_string())],
    }
}

fn opts(dir: &Path, timeout: Duration) -> RunOptions {
    RunOptions {
        script_dir: dir.join("scripts"),
        timeout,
        echo: false,
    }
}

#[test]
fn a_script_runs_with_a_fixed_environment_and_its_output_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        &cmd(
            "runcmd",
            "echo \"path=$PATH home=$HOME id=$INSTANCE_ID pwd=$(pwd) user=${USER-unset}\"\nread line || echo stdin-empty\necho to-stderr >&2\nexit 3\n",
        ),
        0,
        &opts(dir.path(), Duration::from_secs(30)),
    );
    assert_eq!(r.outcome, CommandOutcome::Exited);
    assert_eq!(r.exit_code, Some(3));
    assert!(!r.succeeded());
    assert_eq!(r.failure(), "command runcmd (late) exited with status 3");
    assert_eq!(
        r.output_tail,
        format!("path={PATH} home=/root id=iid-7 pwd=/ user=unset\nstdin-empty\nto-stderr\n")
    );
    assert_eq!(r.output_bytes, r.output_tail.len() as u64);
    // The script stays where it ran from, private.
    let script = dir.path().join("scripts/00-runcmd");
    let mode = std::fs::metadata(&script).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o700
    );
}

#[test]
fn a_shebang_script_runs_under_its_interpreter() {
    let dir = tempfile::tempdir().unwrap();
    let r = run(
        &cmd(
            "part-001.py",
            "#!/usr/bin/env python3\nimport sys\nprint('py', sys.version_info[0])\n",
        ),
        4,
        &opts(dir.path(), Duration::from_secs(30)),
    );
    assert_eq!(
        (r.outcome, r.exit_code),
        (CommandOutcome::Exited, Some(0)),
        "{r:?}"
    );
    assert!(r.succeeded());
    assert_eq!(r.output_tail, "py 3\n");
    assert!(dir.path().join("scripts/04-part-001.py").exists());
}

#[test]
fn only_the_tail_of_a_long_output_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    // 20000 numbered lines: far more than the tail holds.
    let r = run(
        &cmd(
            "long",
            "i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done\n",
        ),
        0,
        &opts(dir.path(), Duration::from_secs(60)),
    );
    assert_eq!(r.exit_code, Some(0));
    let expected: String = (0..20000).map(|i| format!("line-{i}\n")).collect();
    assert_eq!(r.output_bytes, expected.len() as u64);
    assert_eq!(r.output_tail.len(), OUTPUT_TAIL_BYTES);
    assert!(expected.ends_with(&r.output_tail));
}

/// Whether `pid` is a live process (not gone, not a zombie awaiting its reaper).
fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let state = stat.rsplit_once(") ")?.1.chars().next()?;
            Some(!matches!(state, 'Z' | 'X'))
        })
        .unwrap_or(false)
}

/// The pid a script wrote to `path`.
fn pid_in(path: &Path) -> u32 {
    let text = std::fs::read_to_string(path).unwrap();
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// Wait for `done`, polling; the bound only keeps a broken build from hanging.
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let bound = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < bound, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_command_past_its_timeout_is_killed_with_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    // The timeout leaves ample time to reach `sleep 30` even on a loaded machine; the
    // script would then exit 0 after 30 s, so TimedOut can only come from the kill.
    let script = format!(
        "echo started\nsleep 300 &\necho $! > {p}\nsleep 30\n",
        p = pidfile.display()
    );
    let r = run(
        &cmd("hang", &script),
        0,
        &opts(dir.path(), Duration::from_secs(3)),
    );
    assert_eq!(r.outcome, CommandOutcome::TimedOut);
    assert_eq!(r.exit_code, None);
    assert_eq!(
        r.failure(),
        "command hang (late) timed out after 3 s and was killed"
    );
    assert_eq!(r.output_tail, "started\n");
    let child = pid_in(&pidfile);
    wait_until("the background child's death", || !running(child));
}

#[test]
fn a_signal_and_a_missing_interpreter_are_failures_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path(), Duration::from_secs(30));
    let r = run(&cmd("selfkill", "kill -TERM $$\n"), 0, &o);
    assert_eq!((r.outcome, r.signal), (CommandOutcome::Signalled, Some(15)));
    assert_eq!(
        r.failure(),
        "command selfkill (late) was killed by signal 15"
    );

    let r = run(&cmd("nointerp", "#!/no/such/interpreter\n"), 1, &o);
    assert_eq!(r.outcome, CommandOutcome::NotStarted);
    assert!(
        r.failure()
            .starts_with("command nointerp (late) could not be started: "),
        "{}",
        r.failure()
    );
}

#[test]
fn a_background_process_holding_the_output_does_not_hold_up_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("daemon.pid");
    // setsid: the daemon leaves the command's process group, so it outlives the command
    // while holding its output open.
    let script = format!(
        "echo up\nsetsid sleep 300 &\necho $! > {p}\nexit 0\n",
        p = pidfile.display()
    );
    let r = run(
        &cmd("daemon", &script),
        0,
        &opts(dir.path(), Duration::from_secs(30)),
    );
    let daemon = pid_in(&pidfile);
    // Still running: the agent returned without waiting for the pipe's last holder.
    let still_running = running(daemon);
    let _cleanup = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon as i32),
        nix::sys::signal::SIGKILL,
    );
    assert_eq!(r.exit_code, Some(0));
    assert_eq!(r.output_tail, "up\n");
    assert!(still_running, "run() returned only after the daemon ended");
}
