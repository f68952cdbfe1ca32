//! What harmony-agent does with each top-level cloud-config key it does not translate:
//! software and disk keys make no sense on an immutable image; others are cloud-init
//! features the agent does not have. Both are reported, never dropped silently.

/// Keys that change software or disks, which an immutable image takes from its recipe.
const IMMUTABLE: [&str; 34] = [
    "packages",
    "package_update",
    "package_upgrade",
    "package_reboot_if_required",
    "apt",
    "apt_update",
    "apt_upgrade",
    "apt_reboot_if_required",
    "apt_pipelining",
    "apt_preserve_sources_list",
    "apt_mirror",
    "apt_sources",
    "apt_proxy",
    "yum_repos",
    "yum_repo_dir",
    "zypper",
    "snap",
    "snappy",
    "apk_repos",
    "rh_subscription",
    "growpart",
    "resize_rootfs",
    "disk_setup",
    "fs_setup",
    "mounts",
    "mount_default_fields",
    "swap",
    "ubuntu_advantage",
    "ubuntu_pro",
    "puppet",
    "chef",
    "salt_minion",
    "ansible",
    "mcollective",
];

/// cloud-init features harmony-agent does not implement.
const UNSUPPORTED: [&str; 35] = [
    "ssh_pwauth",
    "chpasswd",
    "password",
    "disable_root",
    "disable_root_opts",
    "ssh_keys",
    "ssh_genkeytypes",
    "ssh_deletekeys",
    "ssh_import_id",
    "ssh_quiet_keygen",
    "ssh_publish_hostkeys",
    "allow_public_ssh_keys",
    "ca_certs",
    "ca-certs",
    "locale",
    "locale_configfile",
    "timezone",
    "keyboard",
    "phone_home",
    "power_state",
    "final_message",
    "output",
    "rsyslog",
    "resolv_conf",
    "manage_resolv_conf",
    "random_seed",
    "seed_random",
    "byobu_by_default",
    "landscape",
    "lxd",
    "write_metadata",
    "wireguard",
    "debug",
    "user",
    "updates",
];

/// Keys the translation reads.
pub const TRANSLATED: [&str; 14] = [
    "write_files",
    "users",
    "groups",
    "ssh_authorized_keys",
    "hostname",
    "fqdn",
    "preserve_hostname",
    "prefer_fqdn_over_hostname",
    "manage_etc_hosts",
    "bootcmd",
    "runcmd",
    "ntp",
    "harmony",
    "vendor_data",
];

/// The warning for a key the translation does not read.
pub fn warning_for(key: &str) -> String {
    if IMMUTABLE.contains(&key) {
        "the image is immutable: software, repositories and disks come from the image recipe, not from first boot; ignored".to_string()
    } else if UNSUPPORTED.contains(&key) {
        "not supported by harmony-agent: ignored".to_string()
    } else {
        "unknown key ignored".to_string()
    }
}
