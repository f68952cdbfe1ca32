//! The shipped flavour recipes, built for real from Debian-built fixture bases of the
//! same shape (neither CentOS nor Alpine can be downloaded here):
//!
//! - centos-shaped: systemd (the host's /usr/lib/systemd/systemd and systemd-sysctl),
//!   glibc (the host's ld-linux and libc, running the host's dash as /bin/sh inside the
//!   root), os-release saying CentOS, and a stand-in `dnf` script that answers dnf's
//!   command line by writing what the packages would (sshd_config, auditd, nft).
//! - alpine-shaped: busybox (Debian's static build; musl is NOT installed here, so this
//!   is glibc-static) as /bin/sh, a stand-in `apk`, and stand-in OpenRC files (OpenRC is
//!   NOT installed here: /sbin/openrc is never executed, only detected). Its `linux-virt`
//!   is laid out as Alpine's package is (/boot/vmlinuz-virt, /lib/modules/KVER-virt as a
//!   real directory) but holds the Debian cloud kernel and the recipe's boot modules.
//!
//! Each recipe is read from image-recipes/ with only `base:` (→ the fixture) and
//! `outputs:` replaced, so its packages, run steps, agent hook and hardening are exactly
//! what ships. The packages step runs the stand-in manager inside the root in a user
//! namespace; the built image must pass `harmony verify`. The alpine image's PXE files
//! are booted up to the initramfs loading its boot modules.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use harmony::build::default_base::ensure_default_base;
use harmony::build::{build, BuildOptions};
use harmony::harden::Outcome;
use harmony::kernel::{find_kernel, module_closure};
use harmony::oci::{ImageDetails, LayoutWriter};
use harmony::run::{Vm, VmOptions};
use harmony::tree::diff::diff;
use harmony::tree::layer::encode_layer;
use harmony::tree::{Entry, Kind, Meta, Tree};
use harmony::verify::{image_tree, verify};
use harmony_vm_tests::{cache_dir, openscap};
use std::time::Duration;

fn put(t: &mut Tree, path: &str, bytes: &[u8], mode: u32) {
    if let Some((parent, _)) = path.rsplit_once('/') {
        t.mkdir_all(parent, &Meta::new(0o755)).unwrap();
    }
    t.insert(
        path,
        Entry {
            kind: Kind::File(Arc::new(bytes.to_vec())),
            meta: Meta::new(mode),
        },
    )
    .unwrap();
}

fn link(t: &mut Tree, path: &str, target: &str) {
    if let Some((parent, _)) = path.rsplit_once('/') {
        t.mkdir_all(parent, &Meta::new(0o755)).unwrap();
    }
    t.insert(
        path,
        Entry {
            kind: Kind::Symlink(target.into()),
            meta: Meta::new(0o777),
        },
    )
    .unwrap();
}

fn host(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{path} on the host: {e}"))
}

fn common(t: &mut Tree) {
    for d in [
        "root", "tmp", "var/log", "var/lib", "dev", "proc", "sys", "run",
    ] {
        t.mkdir_all(d, &Meta::new(0o755)).unwrap();
    }
    t.get_mut("tmp").unwrap().meta.mode = 0o1777;
    put(t, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644);
    put(t, "var/log/messages", b"", 0o644);
}

const FAKE_DNF: &str = r#"#!/bin/sh
# Stand-in for dnf: checks the command line Harmony gives and writes what the packages
# would, so the step's layer has real content.
case "$*" in
*" install "*) ;;
"clean all") exit 0 ;;
*) echo "fake dnf: unexpected: $*" >&2; exit 2 ;;
esac
for p in "$@"; do
    case "$p" in
    nftables) printf 'nft\n' > /usr/sbin/nft; chmod 755 /usr/sbin/nft ;;
    audit)
        printf 'auditd\n' > /usr/sbin/auditd; chmod 755 /usr/sbin/auditd; mkdir -p /etc/audit/rules.d
        # As CentOS Stream 9's audit package ships them: rules.d/audit.rules, and an
        # audit.rules generated from it alone (stale once other rules are added).
        printf '## First rule - delete all\n-D\n\n-b 8192\n\n--backlog_wait_time 60000\n\n-f 1\n' > /etc/audit/rules.d/audit.rules
        printf -- '-D\n-b 8192\n-f 1\n--backlog_wait_time 60000\n\n' > /etc/audit/audit.rules ;;
    sudo)
        printf 'sudo\n' > /usr/bin/sudo; chmod 4111 /usr/bin/sudo; mkdir -p /etc/sudoers.d
        printf 'root\tALL=(ALL)\tALL\n%%wheel\tALL=(ALL)\tALL\n#includedir /etc/sudoers.d\n' > /etc/sudoers
        chmod 440 /etc/sudoers ;;
    openssh-server)
        printf 'sshd\n' > /usr/sbin/sshd; chmod 755 /usr/sbin/sshd
        mkdir -p /etc/ssh/sshd_config.d
        printf 'PermitRootLogin yes\nSubsystem sftp /usr/libexec/openssh/sftp-server\n' > /etc/ssh/sshd_config
        chmod 600 /etc/ssh/sshd_config ;;
    # From pkgs.k8s.io and Docker's repository: the repositories must be in place.
    kubelet)
        [ -f /etc/yum.repos.d/kubernetes.repo ] || { echo "fake dnf: no kubernetes.repo" >&2; exit 3; }
        printf 'kubelet\n' > /usr/bin/kubelet; chmod 755 /usr/bin/kubelet
        mkdir -p /usr/lib/systemd/system/kubelet.service.d
        printf '[Service]\nExecStart=/usr/bin/kubelet\n' > /usr/lib/systemd/system/kubelet.service
        printf '[Service]\nEnvironment="KUBELET_KUBECONFIG_ARGS=--kubeconfig=/etc/kubernetes/kubelet.conf"\n' > /usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf ;;
    containerd.io)
        [ -f /etc/yum.repos.d/docker-ce.repo ] || { echo "fake dnf: no docker-ce.repo" >&2; exit 3; }
        printf 'containerd\n' > /usr/bin/containerd; chmod 755 /usr/bin/containerd
        printf '[Service]\nExecStart=/usr/bin/containerd\n' > /usr/lib/systemd/system/containerd.service
        mkdir -p /etc/containerd; printf 'disabled_plugins = ["cri"]\n' > /etc/containerd/config.toml ;;
    esac
done
echo "$*" >> /var/log/fake-dnf.log
"#;

fn centos_shaped() -> Tree {
    let mut t = Tree::new();
    for top in ["bin", "sbin", "lib", "lib64"] {
        t.mkdir_all(&format!("usr/{top}"), &Meta::new(0o755))
            .unwrap();
        link(&mut t, top, &format!("usr/{top}"));
    }
    common(&mut t);
    put(&mut t, "etc/os-release", b"NAME=\"CentOS Stream\"\nVERSION=\"9\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"9\"\n", 0o644);
    put(&mut t, "etc/group", b"root:x:0:\nwheel:x:10:\n", 0o644);
    put(&mut t, "etc/shadow", b"root:!!:19000:0:99999:7:::\n", 0o644);
    put(&mut t, "etc/login.defs", b"UMASK 022\n", 0o644);
    put(
        &mut t,
        "usr/lib/systemd/systemd",
        &host("/usr/lib/systemd/systemd"),
        0o755,
    );
    put(
        &mut t,
        "usr/lib/systemd/systemd-sysctl",
        &host("/usr/lib/systemd/systemd-sysctl"),
        0o755,
    );
    // glibc, so the host's dynamically linked dash runs as /bin/sh inside the root.
    put(
        &mut t,
        "usr/lib/x86_64-linux-gnu/libc.so.6",
        &host("/lib/x86_64-linux-gnu/libc.so.6"),
        0o755,
    );
    put(
        &mut t,
        "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        &host("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
        0o755,
    );
    link(
        &mut t,
        "usr/lib64/ld-linux-x86-64.so.2",
        "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    );
    put(&mut t, "usr/bin/dash", &host("/usr/bin/dash"), 0o755);
    link(&mut t, "usr/bin/sh", "dash");
    // Coreutils the stand-in uses, from the host's static busybox.
    put(&mut t, "usr/bin/busybox", &host("/bin/busybox"), 0o755);
    for applet in ["mkdir", "chmod", "rm"] {
        link(&mut t, &format!("usr/bin/{applet}"), "busybox");
    }
    put(&mut t, "usr/bin/dnf", FAKE_DNF.as_bytes(), 0o755);
    centos_base_files(&mut t);
    // A setuid binary CentOS ships that a node does not need.
    put(&mut t, "usr/bin/chage", b"chage", 0o4755);
    // bootc-style placeholder kernel (outputs: [oci] only; never booted).
    put(
        &mut t,
        "usr/lib/modules/5.14.0-fixture.el9.x86_64/vmlinuz",
        b"placeholder",
        0o644,
    );
    t
}

/// Files every CentOS Stream 9 image has from its base packages (systemd, setup,
/// util-linux, crypto-policies), as those packages ship them: what the hardening profile
/// and OpenSCAP judge in a real image.
fn centos_base_files(t: &mut Tree) {
    for (unit, text) in [
        ("emergency.service", "[Unit]\nDescription=Emergency Shell\nDefaultDependencies=no\nConflicts=shutdown.target\nBefore=shutdown.target\n\n[Service]\nEnvironment=HOME=/root\nWorkingDirectory=-/root\nExecStart=-/usr/lib/systemd/systemd-sulogin-shell emergency\nType=idle\nStandardInput=tty-force\nStandardOutput=inherit\nStandardError=inherit\nKillMode=process\nIgnoreSIGPIPE=no\nSendSIGHUP=yes\n"),
        ("emergency.target", "[Unit]\nDescription=Emergency Mode\nDocumentation=man:systemd.special(7)\nRequires=emergency.service\nAfter=emergency.service\nAllowIsolate=yes\n"),
        ("rescue.service", "[Unit]\nDescription=Rescue Shell\nDefaultDependencies=no\nConflicts=shutdown.target\nAfter=sysinit.target plymouth-start.service\nBefore=shutdown.target\n\n[Service]\nEnvironment=HOME=/root\nWorkingDirectory=-/root\nExecStart=-/usr/lib/systemd/systemd-sulogin-shell rescue\nType=idle\nStandardInput=tty-force\nStandardOutput=inherit\nStandardError=inherit\nKillMode=process\nIgnoreSIGPIPE=no\nSendSIGHUP=yes\n"),
        ("rescue.target", "[Unit]\nDescription=Rescue Mode\nDocumentation=man:systemd.special(7)\nRequires=sysinit.target rescue.service\nAfter=sysinit.target rescue.service\nAllowIsolate=yes\n"),
    ] {
        put(t, &format!("usr/lib/systemd/system/{unit}"), text.as_bytes(), 0o644);
    }
    link(
        t,
        "usr/lib/systemd/system/runlevel1.target",
        "rescue.target",
    );
    put(t, "etc/bashrc", b"# /etc/bashrc\nif [ \"$PS1\" ]; then\n  if [ $UID -gt 199 ] && [ \"`/usr/bin/id -gn`\" = \"`/usr/bin/id -un`\" ]; then\n       umask 002\n    else\n       umask 022\n    fi\nfi\n", 0o644);
    put(t, "etc/pam.d/su", b"#%PAM-1.0\nauth\t\trequired\tpam_env.so\nauth\t\tsufficient\tpam_rootok.so\n# Uncomment the following line to implicitly trust users in the \"wheel\" group.\n#auth\t\tsufficient\tpam_wheel.so trust use_uid\n# Uncomment the following line to require a user to be in the \"wheel\" group.\n#auth\t\trequired\tpam_wheel.so use_uid\nauth\t\tsubstack\tsystem-auth\nauth\t\tinclude\t\tpostlogin\naccount\t\tsufficient\tpam_succeed_if.so uid = 0 use_uid quiet\naccount\t\tinclude\t\tsystem-auth\npassword\tinclude\t\tsystem-auth\nsession\t\tinclude\t\tsystem-auth\nsession\t\tinclude\t\tpostlogin\nsession\t\toptional\tpam_xauth.so\n", 0o644);
    put(t, "etc/issue", b"\\S\nKernel \\r on an \\m\n\n", 0o644);
    put(t, "etc/crypto-policies/config", b"DEFAULT\n", 0o644);
    put(t, "etc/crypto-policies/state/current", b"DEFAULT\n", 0o644);
    put(t, "etc/crypto-policies/back-ends/nss.config", b"library=\nname=Policy\nNSS=flags=policyOnly,moduleDB\nconfig=\"disallow=ALL allow=HMAC-SHA256:HMAC-SHA1:HMAC-SHA384:HMAC-SHA512\"\n", 0o644);
}

const FAKE_APK: &str = r#"#!/bin/sh
# Stand-in for apk add --no-cache: writes what the packages would. linux-virt's files
# wait in /var/cache/fake-apk/linux-virt, laid out as Alpine's package lays them out.
[ "$1 $2" = "add --no-cache" ] || { echo "fake apk: unexpected: $*" >&2; exit 2; }
shift 2
mkdir -p /etc/apk
for p in "$@"; do
    case "$p" in
    linux-virt)
        cp -a /var/cache/fake-apk/linux-virt/. / && rm -rf /var/cache/fake-apk/linux-virt ;;
    openrc)
        printf 'openrc\n' > /sbin/openrc; chmod 755 /sbin/openrc
        mkdir -p /etc/init.d /etc/runlevels/boot
        printf '#!/sbin/openrc-run\n' > /etc/init.d/sysctl; chmod 755 /etc/init.d/sysctl ;;
    nftables) mkdir -p /usr/sbin; printf 'nft\n' > /usr/sbin/nft; chmod 755 /usr/sbin/nft ;;
    kubelet~*) printf 'kubelet\n' > /usr/bin/kubelet; chmod 755 /usr/bin/kubelet ;;
    kubelet-openrc) printf '#!/sbin/openrc-run\n' > /etc/init.d/kubelet; chmod 755 /etc/init.d/kubelet ;;
    containerd) printf 'containerd\n' > /usr/bin/containerd; chmod 755 /usr/bin/containerd ;;
    containerd-openrc) printf '#!/sbin/openrc-run\n' > /etc/init.d/containerd; chmod 755 /etc/init.d/containerd ;;
    esac
    echo "$p" >> /etc/apk/world
done
"#;

/// The module directory linux-virt makes: Alpine names it `PKGVER-PKGREL-FLAVOUR`.
const ALPINE_KVER: &str = "6.1.0-56-virt";

/// The Debian cloud kernel (from the default base) as Alpine's linux-virt package would
/// install it: /boot/{vmlinuz,config,System.map}-virt and, in /lib/modules/ALPINE_KVER,
/// modules.builtin and the closure of `boot_modules`. Returns the closure's length.
fn stage_linux_virt(t: &mut Tree, boot_modules: &[String]) -> usize {
    let base = ensure_default_base(&cache_dir(), 0).expect("default base (has the kernel)");
    let debian = image_tree(&base).unwrap();
    let kernel = find_kernel(&debian).unwrap();
    let stage = "var/cache/fake-apk/linux-virt";
    put(
        t,
        &format!("{stage}/boot/vmlinuz-virt"),
        &kernel.vmlinuz,
        0o644,
    );
    put(
        t,
        &format!("{stage}/boot/config-virt"),
        b"CONFIG_MODULES=y\n",
        0o644,
    );
    put(t, &format!("{stage}/boot/System.map-virt"), b"", 0o644);
    let closure = module_closure(&debian, &kernel, boot_modules).unwrap();
    let mut files = closure.clone();
    files.push(format!("{}/modules.builtin", kernel.modules_dir));
    for path in &files {
        let relative = path
            .strip_prefix(&format!("{}/", kernel.modules_dir))
            .unwrap();
        let Kind::File(bytes) = &debian.get(path).unwrap().kind else {
            panic!("{path} is not a file")
        };
        put(
            t,
            &format!("{stage}/lib/modules/{ALPINE_KVER}/{relative}"),
            bytes,
            0o644,
        );
    }
    closure.len()
}

fn alpine_shaped() -> Tree {
    let mut t = Tree::new();
    for d in [
        "bin", "sbin", "lib", "usr/bin", "usr/sbin", "usr/lib", "etc",
    ] {
        t.mkdir_all(d, &Meta::new(0o755)).unwrap();
    }
    common(&mut t);
    put(
        &mut t,
        "etc/os-release",
        b"NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.3\n",
        0o644,
    );
    put(&mut t, "etc/group", b"root:x:0:root\nshadow:x:42:\n", 0o644);
    put(&mut t, "etc/shadow", b"root:*::0:::::\n", 0o640);
    put(&mut t, "bin/busybox", &host("/bin/busybox"), 0o755);
    for applet in [
        "sh", "mkdir", "chmod", "mv", "ls", "rmdir", "ln", "cp", "rm",
    ] {
        link(&mut t, &format!("bin/{applet}"), "/bin/busybox");
    }
    put(&mut t, "sbin/apk", FAKE_APK.as_bytes(), 0o755);
    // As the alpine image has it.
    put(
        &mut t,
        "etc/apk/repositories",
        b"https://dl-cdn.alpinelinux.org/alpine/v3.20/main\nhttps://dl-cdn.alpinelinux.org/alpine/v3.20/community\n",
        0o644,
    );
    // Alpine's /etc/profile reads profile.d with a umask 022 of its own.
    put(
        &mut t,
        "etc/profile",
        b"umask 022\nfor script in /etc/profile.d/*.sh ; do . $script; done\n",
        0o644,
    );
    t
}

fn layout_of(tree: &Tree, dir: &Path) {
    let mut w = LayoutWriter::create(dir, 0).unwrap();
    w.add_layer(
        &encode_layer(&diff(&Tree::new(), tree), 0).unwrap(),
        "fixture",
    )
    .unwrap();
    w.finish(&ImageDetails {
        tag: "latest".into(),
        labels: Default::default(),
        annotations: Default::default(),
    })
    .unwrap();
}

/// The shipped recipe's text.
fn shipped(recipe: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../image-recipes")
            .join(recipe),
    )
    .unwrap()
}

/// The shipped recipe with its base and outputs replaced, built from `fixture`.
fn build_flavour(recipe: &str, fixture: &Tree, work: &Path, outputs: &str) -> PathBuf {
    let base = work.join("base");
    layout_of(fixture, &base);
    let text: String = shipped(recipe)
        .lines()
        .map(|l| {
            if l.starts_with("base: ") {
                format!("base: oci-layout:{}:latest", base.display())
            } else if l.starts_with("outputs: ") {
                format!("outputs: {outputs}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let path = work.join(recipe);
    std::fs::write(&path, text).unwrap();
    let out = work.join("out");
    build(&BuildOptions {
        recipe: Some(path),
        out: out.clone(),
        cache: cache_dir(),
        agent_bin: None,
        init_bin: None,
        source_date_epoch: 0,
    })
    .unwrap_or_else(|e| panic!("building {recipe} from its fixture: {e:#}"));
    out
}

fn mode(t: &Tree, p: &str) -> (u32, u32, u32) {
    let e = t.get_resolved(p).unwrap_or_else(|| panic!("{p} missing"));
    (e.meta.mode, e.meta.uid, e.meta.gid)
}

#[test]
fn centos_hardened_builds_from_a_systemd_glibc_fixture_and_verifies_clean() {
    let work = tempfile::tempdir().unwrap();
    // The fixture's kernel is a placeholder: no PXE files.
    let out = build_flavour(
        "centos-hardened.yaml",
        &centos_shaped(),
        work.path(),
        "[oci]",
    );
    let report = verify(&out).unwrap();
    println!("{}", report.text());
    assert!(report.ok(), "{}", report.text());
    let not_applicable: Vec<&str> = report
        .rules
        .iter()
        .filter(|r| r.outcome != Outcome::Pass)
        .map(|r| r.id)
        .collect();
    // The kubelet package's unit drop-in makes the kubelet-files rule applicable.
    assert_eq!(
        not_applicable,
        ["cron-permissions"],
        "only cron (not installed) is not applicable"
    );

    let t = image_tree(&out).unwrap();
    // dnf ran inside the root (its log is in the packages layer) and its files are there.
    assert_eq!(
        t.read_text("var/log/fake-dnf.log")
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .split_whitespace()
            .last(),
        Some("sudo")
    );
    // `kubernetes:`: the repositories, containerd's config on the systemd cgroup driver
    // (replacing containerd.io's, which disables the CRI plugin), both services enabled.
    assert!(t
        .read_text("etc/yum.repos.d/kubernetes.repo")
        .unwrap()
        .contains("\nbaseurl=https://pkgs.k8s.io/core:/stable:/v1.31/rpm/\n"));
    assert!(t.read_text("etc/yum.repos.d/docker-ce.repo").is_some());
    let containerd = t.read_text("etc/containerd/config.toml").unwrap();
    assert!(
        containerd.contains("SystemdCgroup = true") && !containerd.contains("disabled_plugins"),
        "{containerd}"
    );
    for unit in ["containerd", "kubelet"] {
        assert!(t
            .get(&format!(
                "etc/systemd/system/multi-user.target.wants/{unit}.service"
            ))
            .is_some());
    }
    assert_eq!(
        mode(&t, "etc/shadow"),
        (0o000, 0, 0),
        "RHEL: shadow 0000 root:root"
    );
    assert_eq!(mode(&t, "usr/bin/chage").0, 0o755, "setuid removed");
    assert!(t
        .read_text("etc/ssh/sshd_config")
        .unwrap()
        .starts_with("# Drop-ins first"));
    assert!(t
        .get("etc/systemd/system/sysinit.target.wants/harmony-firewall.service")
        .is_some());
    assert!(t
        .get("etc/systemd/system/sysinit.target.wants/harmony-firstboot.service")
        .is_some());
    assert!(t
        .read_text("etc/audit/rules.d/99-harmony-immutable.rules")
        .unwrap()
        .contains("-e 2"));
    // audit.rules as augenrules makes it of rules.d (the package's audit.rules read
    // last, by `ls -v`): its -D first, our rules, -e 2 last; the stale one replaced.
    let merged = t.read_text("etc/audit/audit.rules").unwrap();
    let lines: Vec<&str> = merged.lines().collect();
    assert_eq!(&lines[1..4], ["-D", "-b 8192", "-f 1"], "{merged}");
    assert_eq!(
        lines[lines.len() - 2..],
        ["--backlog_wait_time 60000", "-e 2"]
    );
    assert!(lines.contains(&"-w /etc/shadow -p wa -k identity"));
    assert!(t
        .read_text("etc/login.defs")
        .unwrap()
        .contains("UMASK\t\t027"));
}

#[test]
fn alpine_minimal_builds_from_an_openrc_busybox_fixture_and_verifies_clean() {
    let work = tempfile::tempdir().unwrap();
    let recipe = harmony::recipe::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../image-recipes/alpine-minimal.yaml"),
    )
    .unwrap();
    let mut fixture = alpine_shaped();
    let boot_modules = stage_linux_virt(&mut fixture, &recipe.boot_modules);
    let out = build_flavour("alpine-minimal.yaml", &fixture, work.path(), "[pxe, oci]");
    let report = verify(&out).unwrap();
    println!("{}", report.text());
    assert!(report.ok(), "{}", report.text());

    let t = image_tree(&out).unwrap();
    assert_eq!(
        t.read_text("etc/apk/world").unwrap(),
        "linux-virt\nopenrc\nnftables\nkubelet~1.30\nkubeadm~1.30\nkubectl~1.30\ncri-tools\n\
         containerd\ncni-plugins\nkubelet-openrc\ncontainerd-openrc\n"
    );
    assert!(t
        .read_text("etc/containerd/config.toml")
        .unwrap()
        .contains("SystemdCgroup = false"));
    for svc in ["containerd", "kubelet"] {
        assert!(
            t.get(&format!("etc/runlevels/default/{svc}")).is_some(),
            "{svc} in the default runlevel"
        );
    }
    // The kernel stays where linux-virt put it: no bootc copy beside an unmerged /lib.
    let vmlinuz = &t.get("boot/vmlinuz-virt").unwrap().kind;
    assert!(matches!(t.get("lib/modules").unwrap().kind, Kind::Dir));
    assert!(t.get("usr/lib/modules").is_none());
    let Kind::File(vmlinuz) = vmlinuz else {
        panic!("/boot/vmlinuz-virt is not a file")
    };
    assert_eq!(
        std::fs::read(out.join("pxe/vmlinuz")).unwrap(),
        vmlinuz.as_slice(),
        "the PXE kernel is /boot/vmlinuz-virt"
    );
    assert_eq!(
        mode(&t, "etc/shadow"),
        (0o640, 0, 42),
        "Alpine: shadow 0640 root:shadow"
    );
    for svc in ["harmony-firewall", "harmony-firstboot", "sysctl"] {
        assert!(
            t.get(&format!("etc/runlevels/boot/{svc}")).is_some(),
            "{svc} in the boot runlevel"
        );
    }
    assert!(t
        .read_text("etc/profile")
        .unwrap()
        .starts_with("umask 027\n"));

    // The initramfs carries the boot modules it took from /lib/modules/6.1.0-56-virt and
    // loads every one. (The fixture has no init system to hand over to: that is where
    // this boot ends.)
    let vm = Vm::boot(&VmOptions::new(&out)).expect("boot the PXE files");
    let line = vm
        .wait_for_line(|l| l.contains("modules: "), Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("{e}"));
    println!("initramfs: {line}");
    assert!(
        line.contains(&format!(
            "modules: {boot_modules} loaded, 0 already loaded, 0 failed"
        )),
        "{line}\n{}",
        vm.tail().join("\n")
    );
    vm.shutdown().ok();
}

/// docs/openscap-cis-exceptions.tsv: every rule OpenSCAP's CIS profile fails on the
/// hardened centos-shaped image, with why it does not apply (rule, category, reason).
fn exceptions() -> Vec<(String, String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openscap-cis-exceptions.tsv");
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(
                f.len(),
                3,
                "{}: `{l}`: want rule<TAB>category<TAB>reason",
                path.display()
            );
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

/// OpenSCAP beside `harmony verify`: Debian's ssg-nondebian CIS profile for CentOS
/// Stream 9, run by `oscap-chroot` against the hardened centos-shaped tree. Every rule it
/// fails is in docs/openscap-cis-exceptions.tsv with the reason it does not apply, and
/// every rule there still fails: a rule the profile comes to fix must leave the table.
/// The README prints the table.
#[test]
fn openscap_cis_scan_of_the_hardened_fixture() {
    let work = tempfile::tempdir().unwrap();
    let out = build_flavour(
        "centos-hardened.yaml",
        &centos_shaped(),
        work.path(),
        "[oci]",
    );
    let root = work.path().join("rootfs");
    openscap::materialise_image(&out, &root);
    let scan = openscap::scan(
        &root,
        work.path(),
        "ssg-cs9-ds.xml",
        "xccdf_org.ssgproject.content_profile_cis",
    );
    let report = verify(&out).unwrap();
    println!(
        "OpenSCAP CIS (CentOS Stream 9) on the hardened fixture: {} pass, {} fail, {} notapplicable, {} notchecked, {} error",
        scan.count("pass"),
        scan.count("fail"),
        scan.count("notapplicable"),
        scan.count("notchecked"),
        scan.count("error"),
    );
    println!(
        "harmony verify on the same image: {} passed, {} failed, {} not applicable, {} excluded (of {})",
        report.passed,
        report.failed,
        report.not_applicable,
        report.excluded,
        report.rules.len()
    );
    assert!(report.ok(), "{}", report.text());
    assert_eq!(
        scan.count("error"),
        0,
        "OpenSCAP could not evaluate some rules"
    );
    let table = exceptions();
    let listed: std::collections::BTreeSet<String> =
        table.iter().map(|(id, _, _)| id.clone()).collect();
    assert_eq!(listed.len(), table.len(), "a rule listed twice");
    let failing = scan.with("fail");
    let unexplained: Vec<&String> = failing.difference(&listed).collect();
    let fixed: Vec<&String> = listed.difference(&failing).collect();
    assert!(
        unexplained.is_empty() && fixed.is_empty(),
        "OpenSCAP fails rules the table does not explain: {unexplained:?}; \
         the table lists rules OpenSCAP no longer fails (take them out): {fixed:?}"
    );
    // The README prints the table: each rule with its reason.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    for (id, category, reason) in &table {
        assert!(
            readme.contains(&format!("| `{id}` | {category} | {reason} |")),
            "README does not print the table row for {id}"
        );
    }
}
