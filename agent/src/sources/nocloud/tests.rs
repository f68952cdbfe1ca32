//! Seeds made by the real tools (cloud-localds, genisoimage) read by our readers.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;

const USER_DATA: &str = "#cloud-config\nhostname: seeded\nruncmd: [[touch, /tmp/x]]\n";
const META_DATA: &str = "instance-id: iid-seed-1\nlocal-hostname: seed-host.lab\n";
const NETWORK_CONFIG: &str = "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n";

fn inputs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (u, m, n) = (
        dir.join("user-data"),
        dir.join("meta-data"),
        dir.join("network-config"),
    );
    std::fs::write(&u, USER_DATA).unwrap();
    std::fs::write(&m, META_DATA).unwrap();
    std::fs::write(&n, NETWORK_CONFIG).unwrap();
    (u, m, n)
}

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/setup-host.sh installs it)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `cloud-localds [-f vfat] -N network-config seed.img user-data meta-data`.
fn cloud_localds(dir: &Path, vfat: bool) -> PathBuf {
    let (u, m, n) = inputs(dir);
    let img = dir.join(if vfat { "seed.vfat" } else { "seed.iso" });
    let mut c = Command::new("cloud-localds");
    if vfat {
        c.args(["-f", "vfat"]);
    }
    run(c.arg("-N").arg(&n).arg(&img).arg(&u).arg(&m));
    img
}

fn assert_seed(seed: &Seed, location: &str) {
    assert_eq!(seed.location, location);
    assert_eq!(seed.user_data, USER_DATA.as_bytes());
    assert_eq!(
        seed.meta_data,
        MetaData {
            instance_id: Some("iid-seed-1".into()),
            local_hostname: Some("seed-host.lab".into())
        }
    );
    assert_eq!(
        seed.network_config,
        Some(NetworkConfig {
            version: 2,
            text: NETWORK_CONFIG.into()
        })
    );
}

fn read(img: &Path) -> Result<Option<Seed>, SourceError> {
    read_volume(std::fs::File::open(img).unwrap(), "/dev/vdb")
}

#[test]
fn cloud_localds_vfat_seed() {
    let dir = tempfile::tempdir().unwrap();
    let img = cloud_localds(dir.path(), true);
    assert_seed(&read(&img).unwrap().unwrap(), "cidata:/dev/vdb (vfat)");
    // The short names mtools wrote beside the long ones are what a reader without VFAT
    // long names would see.
    let out = Command::new("mdir")
        .args(["-i"])
        .arg(&img)
        .arg("::/")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("USER-D~1"));
}

#[test]
fn cloud_localds_iso9660_seed_rock_ridge_and_joliet() {
    let dir = tempfile::tempdir().unwrap();
    let img = cloud_localds(dir.path(), false);
    assert_seed(&read(&img).unwrap().unwrap(), "cidata:/dev/vdb (iso9660)");
}

/// genisoimage with only Rock Ridge, only Joliet, or neither (8.3 names only).
fn genisoimage(dir: &Path, flags: &[&str], label: &str) -> PathBuf {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    inputs(&src);
    let img = dir.join(format!("seed{}.iso", flags.concat()));
    run(Command::new("genisoimage")
        .args(["-quiet", "-V", label])
        .args(flags)
        .arg("-o")
        .arg(&img)
        .arg(&src));
    img
}

#[test]
fn iso9660_name_flavours() {
    let dir = tempfile::tempdir().unwrap();
    for flags in [&["-r"][..], &["-J"][..]] {
        let img = genisoimage(dir.path(), flags, "cidata");
        assert_seed(&read(&img).unwrap().unwrap(), "cidata:/dev/vdb (iso9660)");
    }
    let plain = genisoimage(dir.path(), &[], "CIDATA");
    assert_eq!(
        read(&plain).unwrap_err().to_string(),
        "cidata:/dev/vdb (iso9660): no user-data in the seed (it holds: META_DAT.;1, NETWORK_.;1, USER_DAT.;1)"
    );
    let other = genisoimage(dir.path(), &["-r", "-J"], "config-2");
    assert_eq!(read(&other).unwrap(), None);
}

#[test]
fn found_among_block_devices_and_named_on_the_cmdline() {
    let dir = tempfile::tempdir().unwrap();
    let host = HostPaths::new(dir.path().join("host"));
    let src = NoCloudSource::new(&host, Box::new(ignition::NoRemoteFetcher));
    assert_eq!(src.seed().unwrap(), None);
    assert!(!detect(&host).unwrap());
    for name in ["vda", "vda1", "vdb"] {
        std::fs::create_dir_all(host.join(&format!("/sys/class/block/{name}"))).unwrap();
    }
    std::fs::create_dir_all(host.join("/dev")).unwrap();
    // vda: not a file system at all; vda1: a vfat volume with another label; vdb: the seed.
    std::fs::write(host.join("/dev/vda"), vec![0x5a; 1 << 20]).unwrap();
    run(Command::new("mkfs.vfat")
        .args(["-C", "-n", "BOOT"])
        .arg(host.join("/dev/vda1"))
        .arg("1024"));
    std::fs::copy(cloud_localds(dir.path(), true), host.join("/dev/vdb")).unwrap();
    // loop1: unbound (size 0), and reading it fails as it does on a real one.
    std::fs::create_dir_all(host.join("/sys/class/block/loop1")).unwrap();
    std::fs::write(host.join("/sys/class/block/loop1/size"), "0\n").unwrap();
    std::fs::create_dir_all(host.join("/dev/loop1")).unwrap();
    assert!(detect(&host).unwrap());
    let fetched = src.fetch().unwrap().unwrap();
    assert_eq!(fetched.source, "nocloud:/dev/vdb (vfat)");
    assert!(fetched.meta_data.is_some_and(|m| m.instance_id.is_some()));
    assert_eq!(fetched.bytes, USER_DATA.as_bytes());

    // ds=nocloud;s=/seed/ wins over the volume, and h=/i= override meta-data.
    let seed_dir = host.join("/seed");
    std::fs::create_dir_all(&seed_dir).unwrap();
    std::fs::write(seed_dir.join("user-data"), "#!/bin/sh\necho dir\n").unwrap();
    std::fs::write(seed_dir.join("meta-data"), META_DATA).unwrap();
    std::fs::create_dir_all(host.join("/proc")).unwrap();
    std::fs::write(
        host.join("/proc/cmdline"),
        "console=ttyS0 ds=nocloud;s=/seed/;h=cmdline-host\n",
    )
    .unwrap();
    let seed = src.seed().unwrap().unwrap();
    assert_eq!(seed.location, "nocloud:/seed/");
    assert_eq!(seed.user_data, b"#!/bin/sh\necho dir\n");
    assert_eq!(
        seed.meta_data.local_hostname.as_deref(),
        Some("cmdline-host")
    );
    assert_eq!(seed.meta_data.instance_id.as_deref(), Some("iid-seed-1"));
    assert_eq!(seed.network_config, None);

    std::fs::remove_file(seed_dir.join("meta-data")).unwrap();
    assert_eq!(
        src.seed().unwrap_err().to_string(),
        "nocloud:/seed/: no meta-data in the seed (it holds: user-data)"
    );
    std::fs::write(
        host.join("/proc/cmdline"),
        "ds=nocloud-net;s=http://10.0.2.2:8000/n1/\n",
    )
    .unwrap();
    assert_eq!(
        src.seed().unwrap_err().to_string(),
        "http://10.0.2.2:8000/n1/user-data: http sources are not supported yet"
    );
}

/// A vfat seed from cloud-localds whose user-data entry is made to start at cluster 1
/// (fatfs computed `cluster - 2` unchecked on it): refused, naming the entry and cluster.
#[test]
fn a_vfat_seed_whose_entry_names_cluster_1_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let img = cloud_localds(dir.path(), true);
    let mut bytes = std::fs::read(&img).unwrap();
    let u16_at = |b: &[u8], o: usize| usize::from(u16::from_le_bytes([b[o], b[o + 1]]));
    let root =
        (u16_at(&bytes, 14) + usize::from(bytes[16]) * u16_at(&bytes, 22)) * u16_at(&bytes, 11);
    let entry = (0..u16_at(&bytes, 17))
        .map(|i| root + 32 * i)
        .find(|&e| bytes[e + 11] != 0x0F && bytes[e..e + 6] == *b"USER-D")
        .expect("user-data's short-name entry");
    bytes[entry + 26..entry + 28].copy_from_slice(&1u16.to_le_bytes());
    std::fs::write(&img, &bytes).unwrap();
    let err = read(&img).unwrap_err().to_string();
    assert!(
        err.contains("invalid FAT volume: root directory entry")
            && err.contains("leads to cluster 1, outside 2..="),
        "{err}"
    );
}

/// The FAT32 boot sector's numbers a test needs: (bytes per sector, first FAT's byte,
/// one FAT's bytes, first data byte, sectors per cluster, root cluster).
fn fat32_layout(b: &[u8]) -> (usize, usize, usize, usize, usize, usize) {
    let u16_at = |o: usize| usize::from(u16::from_le_bytes([b[o], b[o + 1]]));
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]) as usize;
    let bps = u16_at(11);
    let fat_bytes = u32_at(36) * bps;
    let fat0 = u16_at(14) * bps;
    let data = fat0 + usize::from(b[16]) * fat_bytes;
    (bps, fat0, fat_bytes, data, usize::from(b[13]), u32_at(44))
}

/// A FAT32 seed (mkfs.vfat -F 32 with 512-byte clusters, files by mcopy) whose boot
/// sector turns FAT mirroring off and makes the second FAT the one in use, where
/// user-data's chain goes on to cluster 1. The first FAT stays clean: the check the old
/// code ran before fatfs read that one, fatfs followed the second into its unchecked
/// `cluster - 2` (the nocloud_fat fuzz target's finding). Refused, naming the entry.
#[test]
fn a_fat32_seed_whose_active_fat_links_cluster_1_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (u, m, _) = inputs(dir.path());
    let user_data = format!("{USER_DATA}# {}\n", "x".repeat(1500));
    std::fs::write(&u, &user_data).unwrap();
    let img = dir.path().join("seed.fat32");
    run(Command::new("mkfs.vfat")
        .args(["-F", "32", "-s", "1", "-n", "CIDATA", "-C"])
        .arg(&img)
        .arg("40000"));
    run(Command::new("mcopy")
        .arg("-i")
        .arg(&img)
        .arg(&u)
        .arg(&m)
        .arg("::"));
    let seed = read(&img).unwrap().unwrap();
    assert_eq!(
        seed.user_data,
        user_data.as_bytes(),
        "a clean FAT32 seed reads"
    );

    let mut bytes = std::fs::read(&img).unwrap();
    let (bps, fat0, fat_bytes, data, spc, root_cluster) = fat32_layout(&bytes);
    let root = data + (root_cluster - 2) * spc * bps;
    let entry = (0..spc * bps / 32)
        .map(|i| root + 32 * i)
        .find(|&e| bytes[e + 11] != 0x0F && bytes[e..e + 6] == *b"USER-D")
        .expect("user-data's short-name entry");
    let lo = u16::from_le_bytes([bytes[entry + 26], bytes[entry + 27]]);
    let hi = u16::from_le_bytes([bytes[entry + 20], bytes[entry + 21]]);
    let first = (usize::from(hi) << 16) | usize::from(lo);
    bytes[40..42].copy_from_slice(&0x0081u16.to_le_bytes());
    let link = fat0 + fat_bytes + first * 4;
    bytes[link..link + 4].copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(&img, &bytes).unwrap();
    let err = read(&img).unwrap_err().to_string();
    assert!(
        err.contains("invalid FAT volume: root directory entry")
            && err.contains("(user-data) leads to cluster 1, outside 2..="),
        "{err}"
    );
}

/// A vfat seed whose user-data entry claims 100 MiB: refused by its size before anything
/// is read (fatfs read what the chain held and handed back a short file).
#[test]
fn a_vfat_seed_file_larger_than_a_config_document_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let img = cloud_localds(dir.path(), true);
    let mut bytes = std::fs::read(&img).unwrap();
    let u16_at = |b: &[u8], o: usize| usize::from(u16::from_le_bytes([b[o], b[o + 1]]));
    let root =
        (u16_at(&bytes, 14) + usize::from(bytes[16]) * u16_at(&bytes, 22)) * u16_at(&bytes, 11);
    let entry = (0..u16_at(&bytes, 17))
        .map(|i| root + 32 * i)
        .find(|&e| bytes[e + 11] != 0x0F && bytes[e..e + 6] == *b"USER-D")
        .expect("user-data's short-name entry");
    bytes[entry + 28..entry + 32].copy_from_slice(&(100u32 << 20).to_le_bytes());
    std::fs::write(&img, &bytes).unwrap();
    assert_eq!(
        read(&img).unwrap_err().to_string(),
        format!(
            "reading /dev/vdb: invalid FAT volume: user-data is 104857600 bytes, more than the {} a seed file may hold",
            ignition::limits::MAX_DOCUMENT_BYTES
        )
    );
}

/// An iso9660 seed whose user-data record claims 100 MiB: refused before anything is
/// allocated for it (the old reader allocated what the record said, up to 4 GiB).
#[test]
fn an_iso9660_seed_extent_larger_than_a_config_document_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let img = cloud_localds(dir.path(), false);
    let mut bytes = std::fs::read(&img).unwrap();
    let name = b"USER_DAT.;1";
    let at = bytes
        .windows(name.len())
        .position(|w| w == name)
        .expect("user-data's primary directory record");
    let record = at - 33;
    bytes[record + 10..record + 14].copy_from_slice(&(100u32 << 20).to_le_bytes());
    std::fs::write(&img, &bytes).unwrap();
    assert_eq!(
        read(&img).unwrap_err().to_string(),
        format!(
            "reading /dev/vdb: ISO 9660: an extent of 104857600 bytes, more than the {} a seed file may hold",
            ignition::limits::MAX_DOCUMENT_BYTES
        )
    );
}
