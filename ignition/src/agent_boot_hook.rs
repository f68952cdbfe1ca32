//! How harmony-agent is run at boot on each init system: the one definition the builder
//! bakes into images (`steps::agent`) and `harmony-agent install` puts on a running host.
//! systemd: a unit wanted by sysinit.target; OpenRC: a script in the boot runlevel;
//! busybox init: a `::sysinit:` line in /etc/inittab.

/// Where the agent binary lives in an image or on an installed host.
pub const AGENT_PATH: &str = "/usr/bin/harmony-agent";
/// The command every hook runs.
pub const FIRSTBOOT: &str = "/usr/bin/harmony-agent firstboot";

pub const SYSTEMD_UNIT_PATH: &str = "/usr/lib/systemd/system/harmony-firstboot.service";
pub const SYSTEMD_WANTS_LINK: &str =
    "/etc/systemd/system/sysinit.target.wants/harmony-firstboot.service";
pub const SYSTEMD_UNIT: &str = "\
[Unit]
Description=Harmony first-boot configuration
Documentation=file:/usr/share/doc/harmony/boot-flow.md
DefaultDependencies=no
After=local-fs.target systemd-modules-load.service
Before=sysinit.target shutdown.target
Conflicts=shutdown.target

[Service]
# READY=1 once the node's files are written and systemd has reloaded: sysinit.target
# waits for that, and no longer, so the agent can then wait for the units it enabled
# (ordered after basic.target) and report their state (docs/boot-flow.md).
Type=notify
NotifyAccess=main
TimeoutStartSec=infinity
RemainAfterExit=yes
ExecStart=/usr/bin/harmony-agent firstboot
StandardOutput=journal+console

[Install]
WantedBy=sysinit.target
";

pub const OPENRC_SCRIPT_PATH: &str = "/etc/init.d/harmony-firstboot";
pub const OPENRC_RUNLEVEL_LINK: &str = "/etc/runlevels/boot/harmony-firstboot";
pub const OPENRC_SCRIPT: &str = "\
#!/sbin/openrc-run
description=\"Harmony first-boot configuration\"

depend() {
\tneed localmount
\tbefore net
}

start() {
\tebegin \"Harmony first boot\"
\t/usr/bin/harmony-agent firstboot
\teend $?
}
";

pub const INITTAB_PATH: &str = "/etc/inittab";
pub const INITTAB_LINE: &str = "::sysinit:/usr/bin/harmony-agent firstboot";

/// Run the agent right after the base's own sysinit actions (busybox init runs `sysinit`
/// entries in file order, before any `respawn` shell on the console); added once.
pub fn hook_inittab(inittab: &str) -> String {
    if inittab.lines().any(|l| l.trim() == INITTAB_LINE) {
        return inittab.to_string();
    }
    let lines: Vec<&str> = inittab.lines().collect();
    let after = lines
        .iter()
        .rposition(|l| l.contains(":sysinit:"))
        .map_or(0, |i| i + 1);
    let mut out: Vec<&str> = lines[..after].to_vec();
    out.push(INITTAB_LINE);
    out.extend_from_slice(&lines[after..]);
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inittab_hook_goes_after_the_last_sysinit_and_is_added_once() {
        let base = "::sysinit:/etc/init.d/rcS\n::respawn:-/bin/sh\n";
        let hooked = hook_inittab(base);
        assert_eq!(
            hooked,
            format!("::sysinit:/etc/init.d/rcS\n{INITTAB_LINE}\n::respawn:-/bin/sh\n")
        );
        assert_eq!(hook_inittab(&hooked), hooked);
    }

    #[test]
    fn every_hook_runs_firstboot() {
        assert!(SYSTEMD_UNIT.contains(&format!("\nExecStart={FIRSTBOOT}\n")));
        assert!(OPENRC_SCRIPT.contains(&format!("\n\t{FIRSTBOOT}\n")));
        assert!(INITTAB_LINE.ends_with(FIRSTBOOT));
        assert!(FIRSTBOOT.starts_with(AGENT_PATH));
    }
}
