use super::*;
use crate::tree::{Entry, Meta};

fn put(t: &mut Tree, path: &str, text: &str) {
    t.insert(path, Entry::file(text.as_bytes().to_vec(), 0o644))
        .unwrap();
}

/// A CentOS-shaped root with the targeted policy's file contexts (an excerpt, in the
/// policy's own order and syntax) and the subs_dist line that maps /usr/lib64.
fn centos_shaped() -> Tree {
    let mut t = Tree::new();
    let d = Meta::new(0o755);
    for dir in [
        "etc/selinux/targeted/contexts/files",
        "usr/bin",
        "usr/lib64",
        "usr/lib/systemd",
        "var/lib/containerd",
        "proc",
    ] {
        t.mkdir_all(dir, &d).unwrap();
    }
    put(
        &mut t,
        "etc/selinux/config",
        "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
    );
    put(
        &mut t,
        "etc/selinux/targeted/contexts/files/file_contexts",
        "/.*\tsystem_u:object_r:default_t:s0\n\
         /\t-d\tsystem_u:object_r:root_t:s0\n\
         /usr(/.*)?\tsystem_u:object_r:usr_t:s0\n\
         /usr/lib(/.*)?\tsystem_u:object_r:lib_t:s0\n\
         /usr/lib/systemd/systemd\t--\tsystem_u:object_r:init_exec_t:s0\n\
         /usr/bin(/.*)?\tsystem_u:object_r:bin_t:s0\n\
         /usr/bin/ping\t--\tsystem_u:object_r:ping_exec_t:s0\n\
         /etc(/.*)?\tsystem_u:object_r:etc_t:s0\n\
         /etc/shadow.*\t--\tsystem_u:object_r:shadow_t:s0\n\
         /var/lib/containerd(/.*)?\tsystem_u:object_r:container_var_lib_t:s0\n\
         /proc(/.*)?\t<<none>>\n",
    );
    put(
        &mut t,
        "etc/selinux/targeted/contexts/files/file_contexts.local",
        "/usr/bin/kubelet\t--\tsystem_u:object_r:kubelet_exec_t:s0\n",
    );
    put(
        &mut t,
        "etc/selinux/targeted/contexts/files/file_contexts.subs_dist",
        "/usr/lib64 /usr/lib\n",
    );
    for f in [
        "usr/bin/ping",
        "usr/bin/ls",
        "usr/bin/kubelet",
        "usr/lib/systemd/systemd",
        "usr/lib64/libc.so.6",
        "etc/shadow",
    ] {
        put(&mut t, f, "x");
    }
    t
}

fn label(t: &Tree, path: &str) -> Option<String> {
    let v = t.get_exact(path).unwrap().meta.xattrs.get(XATTR)?;
    Some(String::from_utf8(v.strip_suffix(b"\0").expect("NUL-terminated").to_vec()).unwrap())
}

#[test]
fn the_tree_is_labelled_from_its_own_file_contexts() {
    let mut t = centos_shaped();
    let done = label_tree(&mut t).unwrap().unwrap();
    assert_eq!(done.policy, "targeted");
    assert_eq!(done.specs, 12);
    for (path, want) in [
        ("", "root_t"),
        ("usr", "usr_t"),
        ("usr/bin", "bin_t"),
        ("usr/bin/ls", "bin_t"),
        ("usr/bin/ping", "ping_exec_t"),
        ("usr/bin/kubelet", "kubelet_exec_t"),
        ("usr/lib/systemd/systemd", "init_exec_t"),
        ("usr/lib64/libc.so.6", "lib_t"),
        ("etc/shadow", "shadow_t"),
        ("etc/selinux/config", "etc_t"),
        ("var", "default_t"),
        ("var/lib/containerd", "container_var_lib_t"),
    ] {
        assert_eq!(
            label(&t, path),
            Some(format!("system_u:object_r:{want}:s0")),
            "/{path}"
        );
    }
    assert_eq!(label(&t, "proc"), None, "<<none>> leaves it unlabelled");
}

#[test]
fn images_without_a_policy_are_left_alone() {
    let mut t = centos_shaped();
    let before = t.clone();
    t.remove("etc/selinux/targeted/contexts/files/file_contexts")
        .unwrap();
    let without_policy = t.clone();
    assert_eq!(label_tree(&mut t).unwrap(), None);
    assert_eq!(t, without_policy);
    let mut t = before;
    put(&mut t, "etc/selinux/config", "SELINUXTYPE=mls\n");
    assert_eq!(label_tree(&mut t).unwrap(), None, "mls is not installed");
}

#[test]
fn a_bad_file_contexts_line_is_named() {
    let mut t = centos_shaped();
    put(
        &mut t,
        "etc/selinux/targeted/contexts/files/file_contexts.local",
        "/usr/bin/x -q system_u:object_r:bin_t:s0\n",
    );
    let err = label_tree(&mut t).unwrap_err().to_string();
    assert_eq!(
        err,
        "SELinux labels: /etc/selinux/targeted/contexts/files/file_contexts.local:1: unknown file type `-q` (one of -- -d -l -c -b -p -s)"
    );
}

#[test]
fn labels_reach_the_squashfs_root() {
    let mut t = centos_shaped();
    label_tree(&mut t).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("root.squashfs");
    std::fs::write(
        &image,
        crate::emit::squashfs::squashfs_image(&t, 0).unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new("rdsquashfs")
        .args(["-x", "/usr/bin/ping"])
        .arg(&image)
        .output()
        .expect("rdsquashfs (squashfs-tools-ng)");
    let text = String::from_utf8(out.stdout).unwrap();
    // (rdsquashfs prints a printable value as text, its NUL left out.)
    assert_eq!(
        text.trim(),
        "security.selinux=system_u:object_r:ping_exec_t:s0",
        "{text}"
    );
}
