//! Loading kernel modules by name without modprobe: the image may have none (busybox)
//! and distribution kernels in images ship no modules.dep. The module files are found
//! under /lib/modules/$(uname -r), their dependencies read from each file's `.modinfo`
//! (`depends=`, as depmod reads them, and as the builder orders boot modules), and each
//! is loaded with finit_module, dependencies first. Built-in modules (modules.builtin)
//! and modules already loaded count as loaded.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;
use std::fs::File;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};
use object::{Object, ObjectSection};

/// The module directory of the running kernel (`/proc/sys/kernel/osrelease`).
pub fn running_modules_dir(root: &Path, host: &Path) -> Result<PathBuf, String> {
    let release = std::fs::read_to_string(host.join("proc/sys/kernel/osrelease"))
        .map_err(|e| format!("reading the kernel release: {e}"))?;
    let release = release.trim();
    for dir in ["usr/lib/modules", "lib/modules"] {
        let d = root.join(dir).join(release);
        if d.is_dir() {
            return Ok(d);
        }
    }
    Err(format!(
        "no module directory for the running kernel {release} (looked in /lib/modules and \
         /usr/lib/modules)"
    ))
}

/// Module names as the kernel knows them: `-` and `_` are the same.
fn normal(name: &str) -> String {
    name.replace('-', "_")
}

/// `ip_vs` from `.../ip_vs.ko` (compressed modules are not loadable by finit here).
fn name_of(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    file.strip_suffix(".ko").map(normal)
}

fn index(dir: &Path, out: &mut BTreeMap<String, PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            index(&path, out)?;
        } else if let Some(name) = name_of(&path) {
            out.entry(name).or_insert(path);
        }
    }
    Ok(())
}

fn builtin(modules_dir: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(modules_dir.join("modules.builtin"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| name_of(Path::new(l)))
        .collect()
}

/// The `depends=` list of a module file.
pub fn depends(path: &Path) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad = |why: String| format!("{}: not a kernel module: {why}", path.display());
    let elf = object::File::parse(&*bytes).map_err(|e| bad(e.to_string()))?;
    let section = elf
        .section_by_name(".modinfo")
        .ok_or_else(|| bad("no .modinfo section".into()))?;
    let data = section.data().map_err(|e| bad(e.to_string()))?;
    Ok(data
        .split(|b| *b == 0)
        .find_map(|f| f.strip_prefix(b"depends="))
        .map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .filter(|d| !d.is_empty())
                .map(normal)
                .collect()
        })
        .unwrap_or_default())
}

/// The files to load for `names`, dependencies first, each once; built-ins left out.
pub fn resolve(modules_dir: &Path, names: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut files = BTreeMap::new();
    index(&modules_dir.join("kernel"), &mut files)
        .map_err(|e| format!("reading {}: {e}", modules_dir.display()))?;
    let builtin = builtin(modules_dir);
    let mut order = Vec::new();
    let mut done = BTreeSet::new();
    fn visit(
        name: &str,
        files: &BTreeMap<String, PathBuf>,
        builtin: &BTreeSet<String>,
        done: &mut BTreeSet<String>,
        stack: &mut Vec<String>,
        order: &mut Vec<PathBuf>,
        modules_dir: &Path,
    ) -> Result<(), String> {
        if done.contains(name) {
            return Ok(());
        }
        if stack.iter().any(|s| s == name) {
            return Err(format!(
                "modules depend on each other in a cycle: {} -> {name}",
                stack.join(" -> ")
            ));
        }
        let Some(path) = files.get(name) else {
            if builtin.contains(name) {
                done.insert(name.to_string());
                return Ok(());
            }
            return Err(format!(
                "kernel module {name} is neither in {} nor built in",
                modules_dir.display()
            ));
        };
        stack.push(name.to_string());
        for dep in depends(path)? {
            visit(&dep, files, builtin, done, stack, order, modules_dir)?;
        }
        stack.pop();
        done.insert(name.to_string());
        order.push(path.clone());
        Ok(())
    }
    for name in names {
        visit(
            &normal(name),
            &files,
            &builtin,
            &mut done,
            &mut Vec::new(),
            &mut order,
            modules_dir,
        )?;
    }
    Ok(order)
}

/// Load each file in order; (loaded now, already there).
pub fn load(files: &[PathBuf]) -> Result<(usize, usize), String> {
    let (mut loaded, mut present) = (0, 0);
    for path in files {
        let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let no_params: &CStr = c"";
        match finit_module(&file, no_params, ModuleInitFlags::empty()) {
            Ok(()) => loaded += 1,
            Err(Errno::EEXIST) => present += 1,
            Err(e) => return Err(format!("finit_module {}: {e}", path.display())),
        }
    }
    Ok((loaded, present))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A relocatable ELF object with only a `.modinfo`, like a real .ko.
    fn module(dir: &Path, rel: &str, depends: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, fake_ko(depends)).unwrap();
    }

    fn fake_ko(depends: &str) -> Vec<u8> {
        use object::write::Object as ObjectWriter;
        use object::{Architecture, BinaryFormat, Endianness, SectionKind};
        let mut obj =
            ObjectWriter::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
        let section = obj.add_section(Vec::new(), b".modinfo".to_vec(), SectionKind::ReadOnlyData);
        let info = format!("license=GPL\0depends={depends}\0vermagic=6.1.0-test SMP\0");
        obj.append_section_data(section, info.as_bytes(), 1);
        obj.write().unwrap()
    }

    #[test]
    fn dependencies_first_each_once_builtins_skipped() {
        let d = tempfile::tempdir().unwrap();
        let k = d.path();
        module(
            k,
            "kernel/net/netfilter/ipvs/ip_vs.ko",
            "nf_conntrack,libcrc32c,nf_defrag_ipv6",
        );
        module(k, "kernel/net/netfilter/ipvs/ip_vs_rr.ko", "ip_vs");
        module(
            k,
            "kernel/net/netfilter/nf_conntrack.ko",
            "nf_defrag_ipv4,nf_defrag_ipv6,libcrc32c",
        );
        module(k, "kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko", "");
        module(k, "kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko", "");
        std::fs::write(k.join("modules.builtin"), "kernel/lib/libcrc32c.ko\n").unwrap();
        let names: Vec<String> = ["ip_vs_rr", "nf-conntrack"].map(String::from).to_vec();
        let order: Vec<String> = resolve(k, &names)
            .unwrap()
            .iter()
            .map(|p| name_of(p).unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "nf_defrag_ipv4",
                "nf_defrag_ipv6",
                "nf_conntrack",
                "ip_vs",
                "ip_vs_rr"
            ]
        );
        let err = resolve(k, &["ip_vs_nope".to_string()]).unwrap_err();
        assert!(
            err.contains("kernel module ip_vs_nope is neither in"),
            "{err}"
        );
        module(k, "kernel/a.ko", "b");
        module(k, "kernel/b.ko", "a");
        let err = resolve(k, &["a".to_string()]).unwrap_err();
        assert!(err.contains("cycle: a -> b -> a"), "{err}");
    }
}
