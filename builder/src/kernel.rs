//! The kernel inside an image: where it is, and the modules boot needs.
//!
//! Distribution kernels build almost every driver as a module and container images ship
//! no `modules.dep`, so the dependency closure is read from each module's `.modinfo`
//! ELF section (`depends=a,b`), as `depmod` itself does.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use object::{Object, ObjectSection};

use crate::tree::{Contents, Kind, Tree, TreeError};

/// The one kernel of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// `KVER`, e.g. `6.1.0-56-cloud-amd64`.
    pub version: String,
    pub vmlinuz: Contents,
    /// Tree path of the module directory, symlinks resolved (`usr/lib/modules/KVER`).
    pub modules_dir: String,
}

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("no kernel in the image: looked for usr/lib/modules/*/vmlinuz and boot/vmlinuz-*")]
    NotFound,
    #[error(
        "{kernel}: no module directory for kernel flavour `{flavour}`: looked for \
         /lib/modules/*-{flavour} and /usr/lib/modules/*-{flavour}; found {}",
        if found.is_empty() { "none".to_string() } else { found.join(", ") }
    )]
    FlavourWithoutModules {
        kernel: String,
        flavour: String,
        found: Vec<String>,
    },
    #[error(
        "{kernel}: more than one module directory for kernel flavour `{flavour}`, expected \
         one: {}",
        found.join(", ")
    )]
    FlavourAmbiguous {
        kernel: String,
        flavour: String,
        found: Vec<String>,
    },
    #[error("more than one kernel in the image, expected exactly one: {}", found.join(", "))]
    Ambiguous { found: Vec<String> },
    #[error("{path}: kernel is not a regular file (after following symlinks)")]
    NotAFile { path: String },
    #[error("{path}: {source}")]
    Tree { path: String, source: TreeError },
    #[error("kernel module `{name}` not found under /{modules_dir} (nor built in)")]
    UnknownModule { name: String, modules_dir: String },
    #[error("{path}: cannot decompress kernel module: {source}")]
    Decompress {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a kernel module: {reason}")]
    BadModule { path: String, reason: String },
    #[error("kernel modules depend on each other in a cycle: {}", chain.join(" -> "))]
    Cycle { chain: Vec<String> },
}

/// Find the image's kernel, in any of three layouts:
/// - bootc: `usr/lib/modules/KVER/vmlinuz` (or `lib/modules/KVER/vmlinuz`, unmerged /usr);
/// - Debian, RPM: `boot/vmlinuz-KVER`, modules in `(usr/)lib/modules/KVER`;
/// - Alpine: `boot/vmlinuz-FLAVOUR` (`virt`, `lts`), modules in the one
///   `(usr/)lib/modules/KVER` whose name ends in `-FLAVOUR` (`6.6.58-0-virt`).
///
/// Paths naming the same KVER count as one kernel (the bootc copy preferred).
pub fn find_kernel(tree: &Tree) -> Result<Kernel, KernelError> {
    let module_dirs = module_dir_names(tree);
    // KVER -> (path as found, contents); BTreeMap keeps the error listing sorted.
    let mut found: BTreeMap<String, Vec<(String, Contents)>> = BTreeMap::new();
    for (path, _) in tree.iter() {
        let version = if let Some(version) = bootc_version_of(path) {
            version.to_string()
        } else if let Some(suffix) = boot_suffix_of(path) {
            version_of_boot_kernel(path, suffix, &module_dirs)?
        } else {
            continue;
        };
        let contents = file_contents(tree, path)?;
        found
            .entry(version)
            .or_default()
            .push((path.to_string(), contents));
    }
    if found.len() > 1 {
        let found = found
            .values()
            .flatten()
            .map(|(p, _)| format!("/{p}"))
            .collect();
        return Err(KernelError::Ambiguous { found });
    }
    let Some((version, mut paths)) = found.pop_first() else {
        return Err(KernelError::NotFound);
    };
    // Prefer the bootc location when both exist; iteration order put `boot/` first.
    paths.sort_by_key(|(p, _)| !p.starts_with("boot/"));
    let (_, vmlinuz) = paths.pop().expect("a found version has at least one path");
    let modules_dir = modules_dir_of(tree, &version);
    Ok(Kernel {
        version,
        vmlinuz,
        modules_dir,
    })
}

/// `boot/vmlinuz-X` → `X` (a KVER, or an Alpine flavour).
fn boot_suffix_of(path: &str) -> Option<&str> {
    let suffix = path.strip_prefix("boot/vmlinuz-")?;
    (!suffix.contains('/') && !suffix.is_empty()).then_some(suffix)
}

/// Module directory name → its paths as found (`/lib/modules/6.6.58-0-virt`); a merged
/// /usr reaches one directory by both prefixes, listed once.
fn module_dir_names(tree: &Tree) -> BTreeMap<String, Vec<String>> {
    let mut names: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for parent in ["lib/modules", "usr/lib/modules"] {
        let Ok(resolved) = tree.resolve_all(parent) else {
            continue;
        };
        if !seen.insert(resolved.clone()) {
            continue;
        }
        for (name, _) in tree.children(&resolved) {
            let child = format!("{resolved}/{name}");
            let is_dir = tree
                .resolve_all(&child)
                .ok()
                .and_then(|p| tree.get(&p))
                .is_some_and(|e| matches!(e.kind, Kind::Dir));
            if is_dir {
                names
                    .entry(name.to_string())
                    .or_default()
                    .push(format!("/{parent}/{name}"));
            }
        }
    }
    names
}

/// The KVER of `boot/vmlinuz-SUFFIX`: SUFFIX itself when a module directory has that
/// name or none ends in `-SUFFIX` and SUFFIX reads as a version (Debian, RPM; modules
/// may be absent); else the one module directory named `*-SUFFIX` (Alpine's flavours).
fn version_of_boot_kernel(
    path: &str,
    suffix: &str,
    module_dirs: &BTreeMap<String, Vec<String>>,
) -> Result<String, KernelError> {
    if module_dirs.contains_key(suffix) {
        return Ok(suffix.to_string());
    }
    let ending = format!("-{suffix}");
    let flavoured: Vec<&String> = module_dirs
        .keys()
        .filter(|name| name.ends_with(&ending))
        .collect();
    match flavoured.as_slice() {
        [one] => Ok((*one).clone()),
        [] if suffix.starts_with(|c: char| c.is_ascii_digit()) => Ok(suffix.to_string()),
        [] => Err(KernelError::FlavourWithoutModules {
            kernel: format!("/{path}"),
            flavour: suffix.to_string(),
            found: module_dirs.values().flatten().cloned().collect(),
        }),
        many => Err(KernelError::FlavourAmbiguous {
            kernel: format!("/{path}"),
            flavour: suffix.to_string(),
            found: many
                .iter()
                .flat_map(|name| module_dirs[*name].iter().cloned())
                .collect(),
        }),
    }
}

/// `usr/lib/modules/KVER/vmlinuz` or `lib/modules/KVER/vmlinuz` (unmerged /usr) → `KVER`.
fn bootc_version_of(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("usr/lib/modules/")
        .or_else(|| path.strip_prefix("lib/modules/"))?;
    let version = rest.strip_suffix("/vmlinuz")?;
    (!version.contains('/') && !version.is_empty()).then_some(version)
}

fn file_contents(tree: &Tree, path: &str) -> Result<Contents, KernelError> {
    let resolved = tree.resolve_all(path).map_err(|source| KernelError::Tree {
        path: format!("/{path}"),
        source,
    })?;
    match tree.get(&resolved).map(|e| &e.kind) {
        Some(Kind::File(contents)) => Ok(contents.clone()),
        _ => Err(KernelError::NotAFile {
            path: format!("/{path}"),
        }),
    }
}

/// Where KVER's modules live; `usr/lib/modules/KVER` when there are none at all. Where
/// both `usr/lib/modules/KVER` and a separate `lib/modules/KVER` exist (unmerged /usr),
/// the one holding more than a `vmlinuz` wins.
fn modules_dir_of(tree: &Tree, version: &str) -> String {
    let existing: Vec<String> = [
        format!("usr/lib/modules/{version}"),
        format!("lib/modules/{version}"),
    ]
    .into_iter()
    .filter_map(|candidate| tree.resolve_all(&candidate).ok())
    .filter(|resolved| matches!(tree.get(resolved).map(|e| &e.kind), Some(Kind::Dir)))
    .collect();
    let has_modules = |dir: &String| tree.children(dir).any(|(name, _)| name != "vmlinuz");
    existing
        .iter()
        .find(|d| has_modules(d))
        .or(existing.first())
        .cloned()
        .unwrap_or_else(|| format!("usr/lib/modules/{version}"))
}

/// Module names treat `-` and `_` alike; the kernel reports them with `_`.
fn module_name(name: &str) -> String {
    name.replace('-', "_")
}

const MODULE_SUFFIXES: [&str; 4] = [".ko", ".ko.xz", ".ko.zst", ".ko.gz"];

/// `drivers/block/virtio_blk.ko.xz` → `virtio_blk`.
fn module_name_of_path(path: &str) -> Option<String> {
    let file = path.rsplit('/').next()?;
    MODULE_SUFFIXES
        .iter()
        .find_map(|suffix| file.strip_suffix(suffix))
        .map(module_name)
}

/// The tree paths of `names` and everything they depend on, dependencies first, each once.
/// Modules built into the kernel (`modules.builtin`) are skipped.
pub fn module_closure(
    tree: &Tree,
    kernel: &Kernel,
    names: &[String],
) -> Result<Vec<String>, KernelError> {
    let prefix = format!("{}/", kernel.modules_dir);
    let mut index: BTreeMap<String, String> = BTreeMap::new();
    for (path, entry) in tree.iter() {
        if !path.starts_with(&prefix) || !matches!(entry.kind, Kind::File(_)) {
            continue;
        }
        if let Some(name) = module_name_of_path(path) {
            // Several files for one name (a stray .ko next to .ko.xz): the first in path order wins.
            index.entry(name).or_insert_with(|| path.to_string());
        }
    }
    let builtin = builtin_modules(tree, kernel);
    let mut walk = Walk {
        tree,
        kernel,
        index: &index,
        builtin: &builtin,
        done: BTreeSet::new(),
        order: Vec::new(),
    };
    for name in names {
        walk.visit(&module_name(name), &mut Vec::new())?;
    }
    Ok(walk.order)
}

fn builtin_modules(tree: &Tree, kernel: &Kernel) -> BTreeSet<String> {
    let path = format!("{}/modules.builtin", kernel.modules_dir);
    let Ok(contents) = file_contents(tree, &path) else {
        return BTreeSet::new();
    };
    String::from_utf8_lossy(&contents)
        .lines()
        .filter_map(module_name_of_path)
        .collect()
}

struct Walk<'a> {
    tree: &'a Tree,
    kernel: &'a Kernel,
    index: &'a BTreeMap<String, String>,
    builtin: &'a BTreeSet<String>,
    done: BTreeSet<String>,
    order: Vec<String>,
}

impl Walk<'_> {
    /// Depth-first, emitting a module after its dependencies; `stack` catches cycles.
    fn visit(&mut self, name: &str, stack: &mut Vec<String>) -> Result<(), KernelError> {
        if self.done.contains(name) {
            return Ok(());
        }
        if stack.iter().any(|n| n == name) {
            let mut chain = stack.clone();
            chain.push(name.to_string());
            return Err(KernelError::Cycle { chain });
        }
        let Some(path) = self.index.get(name) else {
            if self.builtin.contains(name) {
                self.done.insert(name.to_string());
                return Ok(());
            }
            return Err(KernelError::UnknownModule {
                name: name.to_string(),
                modules_dir: self.kernel.modules_dir.clone(),
            });
        };
        let contents = file_contents(self.tree, path)?;
        let depends = module_depends(path, &contents)?;
        stack.push(name.to_string());
        for dep in depends {
            self.visit(&module_name(&dep), stack)?;
        }
        stack.pop();
        self.done.insert(name.to_string());
        self.order.push(path.clone());
        Ok(())
    }
}

/// The `depends=` list of a (possibly compressed) module file.
pub fn module_depends(path: &str, contents: &[u8]) -> Result<Vec<String>, KernelError> {
    let elf = decompress(path, contents)?;
    let bad = |reason: String| KernelError::BadModule {
        path: format!("/{path}"),
        reason,
    };
    let file = object::File::parse(&*elf).map_err(|e| bad(format!("not an ELF object: {e}")))?;
    let section = file
        .section_by_name(".modinfo")
        .ok_or_else(|| bad("no .modinfo section".into()))?;
    let data = section
        .data()
        .map_err(|e| bad(format!("unreadable .modinfo: {e}")))?;
    let depends = data
        .split(|b| *b == 0)
        .find_map(|field| field.strip_prefix(b"depends="))
        .map(|list| {
            String::from_utf8_lossy(list)
                .split(',')
                .filter(|d| !d.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Ok(depends)
}

fn decompress(path: &str, contents: &[u8]) -> Result<Vec<u8>, KernelError> {
    let err = |source| KernelError::Decompress {
        path: format!("/{path}"),
        source,
    };
    let mut out = Vec::new();
    if path.ends_with(".xz") {
        xz2::read::XzDecoder::new(contents)
            .read_to_end(&mut out)
            .map_err(err)?;
    } else if path.ends_with(".zst") {
        zstd::stream::read::Decoder::new(contents)
            .and_then(|mut d| d.read_to_end(&mut out))
            .map_err(err)?;
    } else if path.ends_with(".gz") {
        flate2::read::GzDecoder::new(contents)
            .read_to_end(&mut out)
            .map_err(err)?;
    } else {
        out = contents.to_vec();
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Write;

    use object::write::Object as ObjectWriter;
    use object::{Architecture, BinaryFormat, Endianness, SectionKind};

    use super::*;
    use crate::tree::{Entry, Meta};

    const KVER: &str = "6.1.0-test";

    /// A relocatable ELF object with just a `.modinfo` section, like a real .ko.
    pub(crate) fn fake_module(name: &str, depends: &[&str]) -> Vec<u8> {
        let mut obj =
            ObjectWriter::new(BinaryFormat::Elf, Architecture::X86_64, Endianness::Little);
        let section = obj.add_section(Vec::new(), b".modinfo".to_vec(), SectionKind::ReadOnlyData);
        let info = format!(
            "license=GPL\0depends={}\0name={name}\0vermagic={KVER} SMP\0",
            depends.join(",")
        );
        obj.append_section_data(section, info.as_bytes(), 1);
        obj.write().unwrap()
    }

    fn file(bytes: Vec<u8>) -> Entry {
        Entry::file(bytes, 0o644)
    }

    /// A merged-/usr tree with `lib -> usr/lib` and the given modules under kernel/.
    fn tree_with_modules(modules: &[(&str, Vec<u8>)]) -> Tree {
        let mut t = Tree::new();
        let dir = format!("usr/lib/modules/{KVER}");
        t.mkdir_all(&format!("{dir}/kernel/drivers"), &Meta::new(0o755))
            .unwrap();
        t.insert(
            "lib",
            Entry {
                kind: Kind::Symlink("usr/lib".into()),
                meta: Meta::new(0o777),
            },
        )
        .unwrap();
        t.insert(&format!("{dir}/vmlinuz"), file(b"kernel".to_vec()))
            .unwrap();
        t.insert(
            &format!("{dir}/modules.builtin"),
            file(b"kernel/fs/ext4/ext4.ko\n".to_vec()),
        )
        .unwrap();
        for (name, bytes) in modules {
            t.insert(&format!("{dir}/kernel/drivers/{name}"), file(bytes.clone()))
                .unwrap();
        }
        t
    }

    #[test]
    fn finds_a_bootc_style_kernel_and_its_modules_dir() {
        let t = tree_with_modules(&[]);
        let k = find_kernel(&t).unwrap();
        assert_eq!(k.version, KVER);
        assert_eq!(k.modules_dir, format!("usr/lib/modules/{KVER}"));
        assert_eq!(k.vmlinuz.as_slice(), b"kernel");
    }

    #[test]
    fn finds_boot_vmlinuz_through_a_symlink_and_modules_through_lib() {
        let mut t = Tree::new();
        t.mkdir_all(&format!("usr/lib/modules/{KVER}"), &Meta::new(0o755))
            .unwrap();
        t.mkdir_all("boot", &Meta::new(0o755)).unwrap();
        t.insert(
            "lib",
            Entry {
                kind: Kind::Symlink("/usr/lib".into()),
                meta: Meta::new(0o777),
            },
        )
        .unwrap();
        t.insert("boot/real-kernel", file(b"bzImage".to_vec()))
            .unwrap();
        let link = Entry {
            kind: Kind::Symlink("real-kernel".into()),
            meta: Meta::new(0o777),
        };
        t.insert(&format!("boot/vmlinuz-{KVER}"), link).unwrap();
        let k = find_kernel(&t).unwrap();
        assert_eq!(k.vmlinuz.as_slice(), b"bzImage");
        assert_eq!(k.modules_dir, format!("usr/lib/modules/{KVER}"));
    }

    #[test]
    fn same_version_in_both_places_is_one_kernel_preferring_usr_lib() {
        let mut t = tree_with_modules(&[]);
        t.mkdir_all("boot", &Meta::new(0o755)).unwrap();
        t.insert(
            &format!("boot/vmlinuz-{KVER}"),
            file(b"other copy".to_vec()),
        )
        .unwrap();
        assert_eq!(find_kernel(&t).unwrap().vmlinuz.as_slice(), b"kernel");
    }

    #[test]
    fn two_kernels_are_an_error_listing_both() {
        let mut t = tree_with_modules(&[]);
        t.mkdir_all("boot", &Meta::new(0o755)).unwrap();
        t.insert("boot/vmlinuz-5.14.0", file(b"old".to_vec()))
            .unwrap();
        let err = find_kernel(&t).unwrap_err().to_string();
        assert!(
            err.contains("/boot/vmlinuz-5.14.0")
                && err.contains(&format!("/usr/lib/modules/{KVER}/vmlinuz")),
            "{err}"
        );
    }

    pub(crate) const ALPINE_KVER: &str = "6.6.58-0-virt";

    /// What Alpine's linux-virt leaves: /boot/{vmlinuz,config,System.map}-virt and the
    /// modules in a real /lib/modules/KVER (no merged /usr), plus `modules`.
    pub(crate) fn alpine_tree(modules: &[(&str, Vec<u8>)]) -> Tree {
        let mut t = Tree::new();
        for d in ["boot", "usr/lib", "usr/bin", "bin", "sbin", "etc"] {
            t.mkdir_all(d, &Meta::new(0o755)).unwrap();
        }
        t.insert("boot/vmlinuz-virt", file(b"alpine bzImage".to_vec()))
            .unwrap();
        t.insert("boot/config-virt", file(b"CONFIG_VIRTIO=y\n".to_vec()))
            .unwrap();
        t.insert("boot/System.map-virt", file(b"ffff T _text\n".to_vec()))
            .unwrap();
        let dir = format!("lib/modules/{ALPINE_KVER}");
        t.mkdir_all(&format!("{dir}/kernel/drivers"), &Meta::new(0o755))
            .unwrap();
        t.insert(
            &format!("{dir}/modules.builtin"),
            file(b"kernel/drivers/virtio/virtio.ko\n".to_vec()),
        )
        .unwrap();
        for (name, bytes) in modules {
            t.insert(&format!("{dir}/kernel/drivers/{name}"), file(bytes.clone()))
                .unwrap();
        }
        t
    }

    #[test]
    fn finds_an_alpine_flavoured_kernel_and_its_modules_in_lib() {
        let t = alpine_tree(&[
            ("virtio_ring.ko.gz", {
                let mut gz =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                gz.write_all(&fake_module("virtio_ring", &[])).unwrap();
                gz.finish().unwrap()
            }),
            (
                "virtio_blk.ko",
                fake_module("virtio_blk", &["virtio", "virtio_ring"]),
            ),
        ]);
        let k = find_kernel(&t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.version, ALPINE_KVER);
        assert_eq!(k.modules_dir, format!("lib/modules/{ALPINE_KVER}"));
        assert_eq!(k.vmlinuz.as_slice(), b"alpine bzImage");
        let closure = module_closure(&t, &k, &["virtio_blk".to_string()]).unwrap();
        assert_eq!(
            closure,
            [
                format!("lib/modules/{ALPINE_KVER}/kernel/drivers/virtio_ring.ko.gz"),
                format!("lib/modules/{ALPINE_KVER}/kernel/drivers/virtio_blk.ko"),
            ],
            "virtio is built in (modules.builtin)"
        );
    }

    #[test]
    fn a_flavour_without_its_modules_names_the_kernel_and_what_is_there() {
        let mut t = alpine_tree(&[]);
        t.remove(&format!("lib/modules/{ALPINE_KVER}")).unwrap();
        t.mkdir_all("lib/modules/6.6.58-0-lts", &Meta::new(0o755))
            .unwrap();
        let err = find_kernel(&t).unwrap_err();
        assert!(
            matches!(err, KernelError::FlavourWithoutModules { .. }),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("/boot/vmlinuz-virt")
                && msg.contains("/lib/modules/*-virt")
                && msg.contains("found /lib/modules/6.6.58-0-lts"),
            "{msg}"
        );
    }

    #[test]
    fn a_flavour_matching_two_module_dirs_names_both() {
        let mut t = alpine_tree(&[]);
        t.mkdir_all("lib/modules/6.6.60-0-virt", &Meta::new(0o755))
            .unwrap();
        let msg = find_kernel(&t).unwrap_err().to_string();
        assert!(
            msg.contains("/boot/vmlinuz-virt")
                && msg.contains(&format!("/lib/modules/{ALPINE_KVER}"))
                && msg.contains("/lib/modules/6.6.60-0-virt"),
            "{msg}"
        );
    }

    #[test]
    fn two_alpine_flavours_are_two_kernels() {
        let mut t = alpine_tree(&[]);
        t.insert("boot/vmlinuz-lts", file(b"lts".to_vec())).unwrap();
        t.mkdir_all("lib/modules/6.6.58-0-lts", &Meta::new(0o755))
            .unwrap();
        let msg = find_kernel(&t).unwrap_err().to_string();
        assert!(
            msg.contains("/boot/vmlinuz-lts") && msg.contains("/boot/vmlinuz-virt"),
            "{msg}"
        );
    }

    #[test]
    fn a_bootc_copy_beside_unmerged_modules_is_the_same_kernel_modules_from_lib() {
        // usr/lib/modules/KVER holding only a vmlinuz (as an older build or a run step
        // may leave it) must not hide the modules in /lib/modules/KVER.
        let mut t = alpine_tree(&[("loop.ko", fake_module("loop", &[]))]);
        t.mkdir_all(&format!("usr/lib/modules/{ALPINE_KVER}"), &Meta::new(0o755))
            .unwrap();
        t.insert(
            &format!("usr/lib/modules/{ALPINE_KVER}/vmlinuz"),
            file(b"alpine bzImage".to_vec()),
        )
        .unwrap();
        let k = find_kernel(&t).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k.modules_dir, format!("lib/modules/{ALPINE_KVER}"));
        assert_eq!(module_closure(&t, &k, &["loop".into()]).unwrap().len(), 1);
    }

    #[test]
    fn no_kernel_is_an_error() {
        assert!(matches!(
            find_kernel(&Tree::new()),
            Err(KernelError::NotFound)
        ));
    }

    #[test]
    fn closure_is_dependencies_first_without_duplicates() {
        let t = tree_with_modules(&[
            ("virtio.ko", fake_module("virtio", &[])),
            ("virtio_ring.ko", fake_module("virtio_ring", &[])),
            (
                "virtio_pci.ko",
                fake_module(
                    "virtio_pci",
                    &["virtio_pci_modern_dev", "virtio", "virtio_ring"],
                ),
            ),
            (
                "virtio_pci_modern_dev.ko",
                fake_module("virtio_pci_modern_dev", &[]),
            ),
            (
                "virtio_blk.ko",
                fake_module("virtio_blk", &["virtio", "virtio_ring"]),
            ),
        ]);
        let k = find_kernel(&t).unwrap();
        let names = [
            "virtio-blk".to_string(),
            "virtio_pci".to_string(),
            "ext4".to_string(),
        ];
        let closure = module_closure(&t, &k, &names).unwrap();
        let short: Vec<&str> = closure
            .iter()
            .map(|p| p.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(
            short,
            [
                "virtio.ko",
                "virtio_ring.ko",
                "virtio_blk.ko",
                "virtio_pci_modern_dev.ko",
                "virtio_pci.ko"
            ]
        );
        assert!(closure[0].starts_with(&format!("usr/lib/modules/{KVER}/kernel/")));
    }

    #[test]
    fn compressed_modules_are_read() {
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&fake_module("a", &["b"])).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&fake_module("b", &["c"])).unwrap();
        let zst = zstd::encode_all(&fake_module("c", &[])[..], 3).unwrap();
        let t = tree_with_modules(&[
            ("a.ko.xz", xz.finish().unwrap()),
            ("b.ko.gz", gz.finish().unwrap()),
            ("c.ko.zst", zst),
        ]);
        let k = find_kernel(&t).unwrap();
        let closure = module_closure(&t, &k, &["a".to_string()]).unwrap();
        let short: Vec<&str> = closure
            .iter()
            .map(|p| p.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(short, ["c.ko.zst", "b.ko.gz", "a.ko.xz"]);
    }

    #[test]
    fn unknown_module_is_named_in_the_error() {
        let t = tree_with_modules(&[("a.ko", fake_module("a", &["missing_dep"]))]);
        let k = find_kernel(&t).unwrap();
        let err = module_closure(&t, &k, &["a".to_string()]).unwrap_err();
        assert!(
            matches!(&err, KernelError::UnknownModule { name, .. } if name == "missing_dep"),
            "{err}"
        );
    }

    #[test]
    fn a_cycle_is_an_error_not_a_hang() {
        let t = tree_with_modules(&[
            ("a.ko", fake_module("a", &["b"])),
            ("b.ko", fake_module("b", &["a"])),
        ]);
        let k = find_kernel(&t).unwrap();
        assert!(matches!(
            module_closure(&t, &k, &["a".to_string()]),
            Err(KernelError::Cycle { .. })
        ));
    }

    #[test]
    fn a_file_without_modinfo_is_a_bad_module() {
        let t = tree_with_modules(&[("a.ko", b"not elf".to_vec())]);
        let k = find_kernel(&t).unwrap();
        assert!(matches!(
            module_closure(&t, &k, &["a".to_string()]),
            Err(KernelError::BadModule { .. })
        ));
    }

    /// The real Debian cloud kernel of the default base: its .modinfo dependencies put
    /// virtio and virtio_ring before virtio_blk.
    #[test]
    fn real_cloud_kernel_virtio_and_squashfs_closure() {
        let t = crate::build::default_base::tests::default_base_tree();
        let k = find_kernel(t).unwrap();
        let names: Vec<String> = ["virtio_blk", "squashfs", "overlay", "loop"]
            .map(String::from)
            .to_vec();
        let closure = module_closure(t, &k, &names).unwrap();
        let short: Vec<&str> = closure
            .iter()
            .map(|p| p.rsplit('/').next().unwrap())
            .collect();
        let pos = |n: &str| {
            short
                .iter()
                .position(|s| *s == n)
                .unwrap_or_else(|| panic!("{n} missing from {short:?}"))
        };
        assert!(
            pos("virtio.ko") < pos("virtio_blk.ko") && pos("virtio_ring.ko") < pos("virtio_blk.ko"),
            "{short:?}"
        );
        assert_eq!(short.len(), 6, "{short:?}");
    }
}
