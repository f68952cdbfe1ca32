//! The userland skeleton of a busybox image: merged-/usr symlinks, the standard
//! directories, busybox applet links, and the few /etc files busybox init and login need.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use super::placement::{usrmerge, MERGED_DIRS};
use crate::tree::{Entry, Kind, Meta, Tree, TreeError};

pub const HOSTNAME: &str = "harmony";

const INITTAB: &str = "::sysinit:/etc/init.d/rcS
::respawn:-/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/umount -a -r
";

/// harmony-init has mounted /proc, /sys, /dev already; a plain boot has not.
const RCS: &str = r#"#!/bin/sh
# Early userspace for busybox init. Mount only what is not mounted yet.
mounted() { grep -q " $1 " /proc/mounts 2>/dev/null; }
[ -e /proc/self ] || mount -t proc -o nodev,nosuid,noexec proc /proc
mounted /sys || mount -t sysfs -o nodev,nosuid,noexec sysfs /sys
mounted /dev || mount -t devtmpfs -o nosuid devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mounted /dev/pts || mount -t devpts -o nosuid,noexec,gid=5,mode=620 devpts /dev/pts
mounted /dev/shm || mount -t tmpfs -o nodev,nosuid,noexec,mode=1777 tmpfs /dev/shm
mounted /tmp || mount -t tmpfs -o nodev,nosuid,mode=1777 tmpfs /tmp
[ -s /etc/hostname ] && hostname -F /etc/hostname
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
# DHCP on the first NIC when the kernel command line asks for it (ip=dhcp) or the config
# is to be fetched from a URL (ignition.config.url=). "First" is the first device-backed
# interface in name order; a node with no lease still boots (the agent retries its fetch).
case " $(cat /proc/cmdline 2>/dev/null) " in
*" ip=dhcp "* | *" ignition.config.url="*)
    for dev in /sys/class/net/*; do
        [ -e "$dev/device" ] || continue
        iface=${dev##*/}
        ip link set "$iface" up
        udhcpc -i "$iface" -s /etc/udhcpc/default.script -n -q -t 5 -T 2 ||
            echo "rcS: no DHCP lease on $iface"
        break
    done
    ;;
esac
"#;

/// busybox's udhcpc calls this on each lease event (Debian's busybox-static ships none).
/// It sets the address, default route and resolv.conf from udhcpc's environment
/// (`$ip`, `$mask` as a prefix length, `$router`, `$dns`, `$domain`).
const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
# udhcpc event script: apply the lease to $interface.
RESOLV_CONF=${RESOLV_CONF:-/etc/resolv.conf}
case "$1" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound | renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast "$broadcast"} dev "$interface"
    if [ -n "$router" ]; then
        while ip route del default dev "$interface" 2>/dev/null; do :; done
        for r in $router; do
            ip route add default via "$r" dev "$interface" && break
        done
    fi
    {
        [ -n "$domain" ] && echo "search $domain"
        for s in $dns; do echo "nameserver $s"; done
    } >"$RESOLV_CONF"
    ;;
esac
exit 0
"#;

fn meta(mode: u32, gid: u32, epoch: i64) -> Meta {
    Meta {
        mode,
        uid: 0,
        gid,
        mtime: epoch,
        xattrs: BTreeMap::new(),
    }
}

/// The merged-/usr links, made before any package is placed.
pub fn add_usrmerge_links(tree: &mut Tree, epoch: i64) -> Result<(), TreeError> {
    for top in MERGED_DIRS {
        tree.mkdir_all(&format!("usr/{top}"), &meta(0o755, 0, epoch))?;
        tree.insert(
            top,
            Entry {
                kind: Kind::Symlink(format!("usr/{top}")),
                meta: meta(0o777, 0, epoch),
            },
        )?;
    }
    Ok(())
}

/// Standard directories and /etc files; existing entries from packages are kept.
pub fn add_skeleton(tree: &mut Tree, os_version: &str, epoch: i64) -> Result<(), TreeError> {
    for (dir, mode) in [
        ("dev", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("run", 0o755),
        ("tmp", 0o1777),
        ("var", 0o755),
        ("var/lib", 0o755),
        ("var/log", 0o755),
        ("var/tmp", 0o1777),
        ("etc", 0o755),
        ("etc/init.d", 0o755),
        ("etc/udhcpc", 0o755),
        ("root", 0o700),
        ("home", 0o755),
        ("mnt", 0o755),
        ("usr/sbin", 0o755),
    ] {
        if tree.get(dir).is_none() {
            tree.insert(
                dir,
                Entry {
                    kind: Kind::Dir,
                    meta: meta(mode, 0, epoch),
                },
            )?;
        }
    }
    let os_release = format!(
        "NAME=\"Harmony (Debian)\"\nID=harmony-debian\nID_LIKE=debian\nVERSION_ID=\"{os_version}\"\nPRETTY_NAME=\"Harmony (Debian {os_version})\"\n"
    );
    let files: [(&str, String, u32, u32); 9] = [
        ("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n".into(), 0o644, 0),
        ("etc/group", "root:x:0:\nshadow:x:42:\nusers:x:100:\nnogroup:x:65534:\n".into(), 0o644, 0),
        ("etc/shadow", "root:*:0:0:99999:7:::\nnobody:*:0:0:99999:7:::\n".into(), 0o640, 42),
        ("etc/hostname", format!("{HOSTNAME}\n"), 0o644, 0),
        ("etc/os-release", os_release, 0o644, 0),
        ("etc/inittab", INITTAB.into(), 0o644, 0),
        ("etc/init.d/rcS", RCS.into(), 0o755, 0),
        ("etc/udhcpc/default.script", UDHCPC_SCRIPT.into(), 0o755, 0),
        ("etc/shells", "/bin/sh\n/bin/ash\n".into(), 0o644, 0),
    ];
    for (path, text, mode, gid) in files {
        let entry = Entry {
            kind: Kind::File(Arc::new(text.into_bytes())),
            meta: meta(mode, gid, epoch),
        };
        tree.insert(path, entry)?;
    }
    Ok(())
}

/// Links every applet `busybox --list-full` names to /usr/bin/busybox, unless a real file
/// is already there. Returns how many links were made.
pub fn add_busybox_applets(tree: &mut Tree, epoch: i64) -> Result<usize, String> {
    let Some(Entry {
        kind: Kind::File(binary),
        ..
    }) = tree.get("usr/bin/busybox").cloned()
    else {
        return Ok(0);
    };
    // Run the image's own static busybox on the host to ask it for its applets.
    let mut exe = tempfile::Builder::new()
        .prefix("busybox-")
        .tempfile()
        .map_err(|e| format!("temp file: {e}"))?;
    exe.write_all(&binary)
        .map_err(|e| format!("writing busybox: {e}"))?;
    let exe = exe.into_temp_path();
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod busybox: {e}"))?;
    let output = std::process::Command::new(&exe)
        .arg("--list-full")
        .output()
        .map_err(|e| format!("running busybox --list-full: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "busybox --list-full failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut made = 0;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let path = usrmerge(line.trim().trim_start_matches('/'));
        if !(path.starts_with("usr/bin/") || path.starts_with("usr/sbin/"))
            || tree.get(&path).is_some()
        {
            continue;
        }
        tree.insert(
            &path,
            Entry {
                kind: Kind::Symlink("/usr/bin/busybox".into()),
                meta: meta(0o777, 0, epoch),
            },
        )
        .map_err(|e| e.to_string())?;
        made += 1;
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &Tree, p: &str) -> String {
        match &t.get(p).unwrap().kind {
            Kind::File(c) => String::from_utf8(c.to_vec()).unwrap(),
            k => panic!("{p}: {k:?}"),
        }
    }

    #[test]
    fn skeleton_files_and_modes() {
        let mut t = Tree::new();
        add_usrmerge_links(&mut t, 7).unwrap();
        add_skeleton(&mut t, "12", 7).unwrap();
        assert_eq!(t.get("bin").unwrap().kind, Kind::Symlink("usr/bin".into()));
        assert_eq!(t.get("tmp").unwrap().meta.mode, 0o1777);
        assert_eq!(t.get("var/tmp").unwrap().meta.mode, 0o1777);
        assert_eq!(t.get("root").unwrap().meta.mode, 0o700);
        let shadow = t.get("etc/shadow").unwrap();
        assert_eq!((shadow.meta.mode, shadow.meta.gid), (0o640, 42));
        assert!(text(&t, "etc/shadow").starts_with("root:*:"));
        assert!(text(&t, "etc/passwd").starts_with("root:x:0:0:root:/root:/bin/sh\n"));
        assert!(
            text(&t, "etc/group").contains("shadow:x:42:")
                && text(&t, "etc/group").contains("users:x:100:")
        );
        assert_eq!(text(&t, "etc/hostname"), "harmony\n");
        assert!(text(&t, "etc/os-release").contains("ID=harmony-debian\nID_LIKE=debian\n"));
        assert_eq!(
            text(&t, "etc/inittab").lines().next(),
            Some("::sysinit:/etc/init.d/rcS")
        );
        assert_eq!(t.get("etc/init.d/rcS").unwrap().meta.mode, 0o755);
        assert_eq!(t.get("etc/udhcpc/default.script").unwrap().meta.mode, 0o755);
        assert!(text(&t, "etc/init.d/rcS")
            .contains("udhcpc -i \"$iface\" -s /etc/udhcpc/default.script"));
    }

    #[test]
    fn rcs_is_valid_shell() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [("rcS", RCS), ("default.script", UDHCPC_SCRIPT)] {
            let script = dir.path().join(name);
            std::fs::write(&script, text).unwrap();
            let status = std::process::Command::new("busybox")
                .args(["sh", "-n"])
                .arg(&script)
                .status()
                .unwrap();
            assert!(status.success(), "{name}");
        }
    }

    /// Runs the lease script with a fake `ip` that logs its arguments. Under the host's
    /// sh (dash), which takes `ip` from PATH: busybox sh would run its own applet on the
    /// host. The interface name exists nowhere, so even a real `ip` would change nothing.
    #[test]
    fn udhcpc_script_applies_a_lease() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let log = dir.path().join("ip.log");
        std::fs::write(
            bin.join("ip"),
            format!(
                "#!/bin/sh\necho \"$*\" >>{}\n[ \"$2\" != del ]\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(bin.join("ip"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = dir.path().join("default.script");
        std::fs::write(&script, UDHCPC_SCRIPT).unwrap();
        let resolv = dir.path().join("resolv.conf");
        let run = |event: &str| {
            let status = std::process::Command::new("/bin/sh")
                .arg(&script)
                .arg(event)
                .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
                .env("RESOLV_CONF", &resolv)
                .env("interface", "harmonytest0")
                .env("ip", "10.0.2.15")
                .env("mask", "24")
                .env("broadcast", "10.0.2.255")
                .env("router", "10.0.2.2")
                .env("dns", "10.0.2.3 10.0.2.4")
                .env("domain", "example.test")
                .status()
                .unwrap();
            assert!(status.success(), "{event}");
        };
        run("deconfig");
        run("bound");
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "-4 addr flush dev harmonytest0\n\
             link set harmonytest0 up\n\
             -4 addr flush dev harmonytest0\n\
             addr add 10.0.2.15/24 broadcast 10.0.2.255 dev harmonytest0\n\
             route del default dev harmonytest0\n\
             route add default via 10.0.2.2 dev harmonytest0\n"
        );
        assert_eq!(
            std::fs::read_to_string(&resolv).unwrap(),
            "search example.test\nnameserver 10.0.2.3\nnameserver 10.0.2.4\n"
        );
    }

    #[test]
    fn applets_link_to_busybox_without_replacing_files() {
        let mut t = Tree::new();
        add_usrmerge_links(&mut t, 0).unwrap();
        let busybox = std::fs::read("/bin/busybox").expect("busybox-static on the host");
        t.insert(
            "usr/bin/busybox",
            Entry {
                kind: Kind::File(Arc::new(busybox)),
                meta: meta(0o755, 0, 0),
            },
        )
        .unwrap();
        t.insert(
            "usr/bin/ls",
            Entry {
                kind: Kind::File(Arc::new(b"real ls".to_vec())),
                meta: meta(0o755, 0, 0),
            },
        )
        .unwrap();
        let made = add_busybox_applets(&mut t, 0).unwrap();
        assert!(made > 100, "{made} applets");
        assert_eq!(
            t.get("usr/bin/sh").unwrap().kind,
            Kind::Symlink("/usr/bin/busybox".into())
        );
        assert!(matches!(
            t.get("usr/sbin/reboot").map(|e| &e.kind),
            Some(Kind::Symlink(_))
        ));
        assert!(matches!(t.get("usr/bin/ls").unwrap().kind, Kind::File(_)));
    }
}
