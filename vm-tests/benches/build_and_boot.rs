//! Figures for the default recipe: base from cached packages, cold build, warm rebuilds,
//! artifact sizes, and boot to HARMONY-FIRSTBOOT beside a bare kernel + busybox initramfs
//! boot in the same run. Prints; asserts nothing about time.
//!
//!     cargo bench -p harmony-vm-tests

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harmony::base::debian::{make_debian_base, BaseMode, DebianBaseOptions};
use harmony::build::default_base::{ensure_default_base, parse_package_list, DEFAULT_PACKAGES};
use harmony::build::{build, BuildOptions};
use harmony::emit::initramfs::compress_cpio;
use harmony::manifest::{Artifact, Manifest};
use harmony::recipe::DEFAULT_RECIPE;
use harmony::run::medium::{DiskFormat, Format, MediumChoice};
use harmony::run::{Vm, VmOptions};
use harmony::tree::{Entry, Kind, Meta, Tree};
use harmony_test_support::bench;
use harmony_vm_tests::{cache_dir, write_config};

const RUNS: usize = 3;

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn main() -> anyhow::Result<()> {
    let shared = cache_dir();
    let base_dir = ensure_default_base(&shared, 0)?;
    let work = tempfile::tempdir()?;

    // 1. The base, from .debs already downloaded (apt-get still resolves versions).
    let (_, base_time) = timed(|| {
        make_debian_base(&DebianBaseOptions {
            packages: parse_package_list(DEFAULT_PACKAGES),
            mode: BaseMode::Unpack,
            out: work.path().join("base"),
            tag: "latest".into(),
            cache: shared.clone(),
            source_date_epoch: 0,
        })
    });
    println!("base image from cached .debs:        {}", secs(base_time));

    // 2. Cold build: an empty layer cache (the base is shared, already made).
    let host_file = work.path().join("motd");
    std::fs::write(&host_file, "first\n")?;
    let recipe = work.path().join("bench.yaml");
    std::fs::write(
        &recipe,
        DEFAULT_RECIPE
            .replace(
                "oci-layout:bases/debian-default:latest",
                &format!("oci-layout:{}:latest", base_dir.display()),
            )
            .replace(
                "\nfiles:\n",
                &format!(
                    "\nfiles:\n  - path: /etc/bench\n    source: {}\n",
                    host_file.display()
                ),
            ),
    )?;
    let parsed = harmony::recipe::load(&recipe)?;
    assert!(
        parsed.files.iter().any(|f| f.path == "/etc/bench"),
        "bench recipe lost its file"
    );

    let cold_cache = work.path().join("cache");
    let opts = |out: &str| BuildOptions {
        recipe: Some(recipe.clone()),
        out: work.path().join(out),
        cache: cold_cache.clone(),
        agent_bin: None,
        init_bin: None,
        source_date_epoch: 0,
    };
    let (cold, cold_time) = timed(|| build(&opts("out")));
    let cold = cold?;
    println!("cold build (empty layer cache):      {}", secs(cold_time));
    for (phase, d) in &cold.phases {
        println!("    {phase:<14} {}", secs(*d));
    }

    let floor = host_tools_floor(&cold.out, work.path())?;
    println!("host tools' floor, same tree:        {}", secs(floor));
    bench::figure(
        "cold build, default recipe",
        cold_time.as_secs_f64(),
        "host floor: mksquashfs + zstd -T0",
        floor.as_secs_f64(),
        "s",
    );

    // 3. Warm rebuild, nothing changed; 4. warm rebuild with one file changed.
    let (warm, warm_time) = timed(|| build(&opts("out")));
    let warm = warm?;
    println!(
        "warm rebuild, no change:             {} ({} step layers, {} artifact groups cached)",
        secs(warm_time),
        warm.cached_steps,
        warm.cached_artifacts
    );
    // Nothing to make: the floor is copying the output.
    let (copied, copy_time) = timed(|| {
        Command::new("cp")
            .args(["-a", "--sparse=always"])
            .arg(&warm.out)
            .arg(work.path().join("copy"))
            .status()
    });
    anyhow::ensure!(copied?.success(), "cp -a of the output failed");
    bench::figure(
        "rebuild, nothing changed",
        warm_time.as_secs_f64(),
        "cp -a of the output",
        copy_time.as_secs_f64(),
        "s",
    );
    std::fs::write(&host_file, "second\n")?;
    let (changed, changed_time) = timed(|| build(&opts("out")));
    println!(
        "warm rebuild, one file changed:      {} ({} step layers cached)",
        secs(changed_time),
        changed?.cached_steps
    );
    bench::figure(
        "rebuild, one file changed",
        changed_time.as_secs_f64(),
        "cold build (this run)",
        cold_time.as_secs_f64(),
        "s",
    );

    // 5. Sizes.
    println!("artifacts:");
    for a in &cold.manifest.artifacts {
        println!(
            "    {:<22} {:<12} {:>11} bytes ({:.1} MB)",
            a.path,
            a.kind,
            a.size,
            a.size as f64 / 1e6
        );
    }

    // 6. Boot: bare kernel + busybox initramfs vs the image to HARMONY-FIRSTBOOT.
    let bare = bare_boot_dir(&cold.out, work.path())?;
    let cfg = write_config(
        work.path(),
        "bench.ign",
        &serde_json::json!({
            "ignition": {"version": "3.3.0"},
            "storage": {"files": [{"path": "/etc/bench.txt", "contents": {"source": "data:,bench"}}]}
        }),
    );
    let mut bare_times = Vec::new();
    let mut harmony_times = Vec::new();
    let mut uefi_times = Vec::new();
    for _ in 0..RUNS {
        let (uptime, wall) = boot_until(&VmOptions::new(&bare), |l| l.starts_with("BARE-BOOT"))?;
        bare_times.push((wall, uptime));
        let mut o = VmOptions::new(&cold.out);
        o.ignition = Some(cfg.clone());
        let (_, wall) = boot_until(&o, |l| l.starts_with("HARMONY-FIRSTBOOT "))?;
        harmony_times.push(wall);
        // The same image from disk.raw: OVMF, our EFI stub, the UKI.
        o.medium = MediumChoice::Format(Format::Disk(DiskFormat::Raw));
        let (_, wall) = boot_until(&o, |l| l.starts_with("HARMONY-FIRSTBOOT "))?;
        uefi_times.push(wall);
    }
    let mean = |v: &[Duration]| v.iter().sum::<Duration>() / v.len() as u32;
    let bare_wall: Vec<Duration> = bare_times.iter().map(|(w, _)| *w).collect();
    println!("boot (mean of {RUNS}, host wall time from QEMU start to the line):");
    println!(
        "    bare kernel + busybox initramfs:   {}  (guest uptimes at the line: {})",
        secs(mean(&bare_wall)),
        bare_times
            .iter()
            .map(|(_, u)| u.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "    harmony image to HARMONY-FIRSTBOOT: {}",
        secs(mean(&harmony_times))
    );
    println!(
        "    ratio harmony / bare:              {:.2}",
        mean(&harmony_times).as_secs_f64() / mean(&bare_wall).as_secs_f64()
    );
    println!(
        "    disk.raw under OVMF (UKI) to HARMONY-FIRSTBOOT: {}  (ratio to direct kernel boot {:.2})",
        secs(mean(&uefi_times)),
        mean(&uefi_times).as_secs_f64() / mean(&harmony_times).as_secs_f64()
    );
    bench::figure(
        "boot to first-boot report (PXE files)",
        mean(&harmony_times).as_secs_f64(),
        "bare kernel + busybox initramfs",
        mean(&bare_wall).as_secs_f64(),
        "s",
    );
    bench::figure(
        "boot to first-boot report (disk, OVMF + UKI)",
        mean(&uefi_times).as_secs_f64(),
        "same image, direct kernel boot",
        mean(&harmony_times).as_secs_f64(),
        "s",
    );
    Ok(())
}

/// Boot and return (the matching line, wall time to it).
fn boot_until(opts: &VmOptions, pred: impl Fn(&str) -> bool) -> anyhow::Result<(String, Duration)> {
    let start = Instant::now();
    let vm = Vm::boot(opts)?;
    let line = vm.wait_for_line(pred, Duration::from_secs(300))?;
    let wall = start.elapsed();
    vm.shutdown()?;
    Ok((
        line.split_whitespace().nth(1).unwrap_or("?").to_string(),
        wall,
    ))
}

/// An output directory whose "image" is the same kernel with a busybox initramfs whose
/// /init prints `BARE-BOOT <uptime>`: the floor any image's boot stands on.
fn bare_boot_dir(image_out: &Path, work: &Path) -> anyhow::Result<std::path::PathBuf> {
    let dir = work.join("bare");
    std::fs::create_dir_all(dir.join("pxe"))?;
    let manifest = Manifest::load(image_out)?;
    let kernel = manifest.artifact(image_out, "kernel")?;
    std::fs::copy(image_out.join(&kernel.path), dir.join("pxe/vmlinuz"))?;

    let mut tree = Tree::new();
    let file = |bytes: Vec<u8>, mode| Entry {
        kind: Kind::File(Arc::new(bytes)),
        meta: Meta::new(mode),
    };
    tree.mkdir_all("bin", &Meta::new(0o755))?;
    tree.mkdir_all("proc", &Meta::new(0o755))?;
    tree.insert("bin/busybox", file(std::fs::read("/bin/busybox")?, 0o755))?;
    tree.insert(
        "bin/sh",
        Entry {
            kind: Kind::Symlink("busybox".into()),
            meta: Meta::new(0o777),
        },
    )?;
    let init = "#!/bin/sh\n/bin/busybox mount -t proc proc /proc\n\
                echo \"BARE-BOOT $(/bin/busybox cut -d' ' -f1 /proc/uptime)\"\n/bin/busybox poweroff -f\n";
    tree.insert("init", file(init.as_bytes().to_vec(), 0o755))?;
    let initramfs = compress_cpio(&tree, 0, "bare initramfs")?;
    let empty = compress_cpio(&Tree::new(), 0, "empty")?;
    std::fs::write(dir.join("pxe/initramfs.img"), &initramfs)?;
    std::fs::write(dir.join("pxe/rootfs.img"), &empty)?;
    let bare = Manifest {
        name: "bare".into(),
        version: "0".into(),
        cmdline: "console=ttyS0,115200 quiet".into(),
        artifacts: vec![
            Artifact {
                path: "pxe/vmlinuz".into(),
                ..kernel.clone()
            },
            Artifact::of_bytes("pxe/initramfs.img", "initramfs", &initramfs),
            Artifact::of_bytes("pxe/rootfs.img", "rootfs", &empty),
        ],
        inputs: serde_json::Value::Null,
    };
    std::fs::write(dir.join("manifest.json"), serde_json::to_vec_pretty(&bare)?)?;
    Ok(dir)
}

/// What the host tools take to make the same two compressed images from the same
/// content, all cores: mksquashfs (zstd 15, 128 KiB blocks) on the root tree and
/// `zstd -T0` at the initramfs's level on its cpio. A build cannot be faster than this.
fn host_tools_floor(out: &Path, work: &Path) -> anyhow::Result<Duration> {
    let sh = |script: String| -> anyhow::Result<Duration> {
        let (status, took) = timed(|| Command::new("sh").arg("-ec").arg(&script).status());
        anyhow::ensure!(status?.success(), "failed: {script}");
        Ok(took)
    };
    let manifest = Manifest::load(out)?;
    let rootfs = out.join(&manifest.artifact(out, "rootfs")?.path);
    let initramfs = out.join(&manifest.artifact(out, "initramfs")?.path);
    let floor = work.join("floor");
    std::fs::create_dir_all(&floor)?;
    let f = floor.display();
    sh(format!(
        "cd {f} && cpio -id --quiet < '{}' && unsquashfs -q -n -no-xattrs -d tree harmony/root.squashfs \
         && zstd -q -d -c '{}' > init.cpio",
        rootfs.display(),
        initramfs.display()
    ))?;
    let squashfs = sh(format!(
        "mksquashfs {f}/tree {f}/floor.sqfs -comp zstd -Xcompression-level 15 -b 131072 \
         -noappend -no-xattrs -quiet -no-progress"
    ))?;
    let zstd = sh(format!(
        "zstd -q -T0 -19 -f {f}/init.cpio -o {f}/init.cpio.zst"
    ))?;
    Ok(squashfs + zstd)
}
