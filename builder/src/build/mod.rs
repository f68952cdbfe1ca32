//! `harmony build`: recipe → base image + step layers → root tree → artifacts.
//!
//! Every output is a function of the resolved inputs (the lock file): entries sorted,
//! timestamps from SOURCE_DATE_EPOCH, ownership from metadata, never from the build user.

mod artifact_cache;
pub mod default_base;
pub mod eviction;
mod layer_cache;
pub mod lock;
pub mod output_dir;
pub mod packages_base;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::binaries;
use crate::emit::disk_formats::{emit_ova, emit_qcow2, emit_vmdk, DiskFormatInputs};
use crate::emit::disk_image::{emit_disk_image, DiskInputs, DISK_KIND};
use crate::emit::pxe::{boot_images, emit_pxe, BootFiles, PxeInputs};
use crate::emit::squashfs::earlier::EarlierBlocks;
use crate::kernel::find_kernel;
use crate::manifest::{Artifact, Manifest, MANIFEST_FILE};
use crate::oci::client::RegistryOptions;
use crate::oci::reference::ImageRef;
use crate::oci::sigstore::require_signature;
use crate::oci::{open_image_with, ImageDetails, LayerBlob, LayoutWriter, SourceImage};
use crate::recipe::{self, Output, Recipe};
use crate::steps::{self, StepOutput};
use crate::tree::layer::encode_layer;
use crate::tree::unpack::apply_layer;
use crate::tree::Tree;
use artifact_cache::{ArtifactCache, InputKey, Source};
use layer_cache::LayerCache;
use lock::{BinaryLock, ImageLock, KernelLock, Lock, RecipeLock, SecureBootLock, StepLock};

pub struct BuildOptions {
    /// None: the embedded default recipe.
    pub recipe: Option<PathBuf>,
    pub out: PathBuf,
    pub cache: PathBuf,
    pub agent_bin: Option<PathBuf>,
    pub init_bin: Option<PathBuf>,
    pub source_date_epoch: i64,
}

pub struct BuildReport {
    pub out: PathBuf,
    pub manifest: Manifest,
    /// Wall time of each phase, in order.
    pub phases: Vec<(String, Duration)>,
    /// Step layers taken from the cache.
    pub cached_steps: usize,
    /// Artifact groups (boot files, disk, disk formats) copied from the cache.
    pub cached_artifacts: usize,
}

impl BuildReport {
    pub fn summary(&self) -> String {
        let mut s = format!(
            "built {} {} into {}\n",
            self.manifest.name,
            self.manifest.version,
            self.out.display()
        );
        s += &crate::artifact_table::artifact_table(&self.manifest.artifacts);
        let total: Duration = self.phases.iter().map(|(_, d)| *d).sum();
        let phases: Vec<String> = self
            .phases
            .iter()
            .map(|(n, d)| format!("{n} {:.2}s", d.as_secs_f64()))
            .collect();
        s += &format!(
            "  time {:.2}s ({}); {} step layer(s) and {} artifact group(s) from cache\n",
            total.as_secs_f64(),
            phases.join(", "),
            self.cached_steps,
            self.cached_artifacts
        );
        s
    }
}

struct Phases(Vec<(String, Duration)>, Instant);

impl Phases {
    /// A phase that may have been a cache hit says so in its name.
    fn done_from(&mut self, name: &str, source: Source) {
        match source {
            Source::Made => self.done(name),
            Source::Cache => self.done(&format!("{name} (cached)")),
        }
    }

    fn done(&mut self, name: &str) {
        let now = Instant::now();
        crate::progress::step_done(name, now - self.1);
        self.0.push((name.to_string(), now - self.1));
        self.1 = now;
    }
}

/// A layer of the final image and the history line that says where it came from.
struct ImageLayer {
    blob: LayerBlob,
    created_by: String,
}

pub fn build(opts: &BuildOptions) -> anyhow::Result<BuildReport> {
    build_with(opts, &RegistryOptions::default())
}

/// [`build`], pulling `docker://` bases and component images as `registry` says
/// (`--authfile`); credentials are looked up per image, when its registry asks.
pub fn build_with(opts: &BuildOptions, registry: &RegistryOptions) -> anyhow::Result<BuildReport> {
    let mut phases = Phases(Vec::new(), Instant::now());
    let max = eviction::max_from_env()?;
    let recipe = match &opts.recipe {
        Some(path) => recipe::load(path)?,
        None => {
            default_base::ensure_default_base(&opts.cache, opts.source_date_epoch)?;
            recipe::load_default(&opts.cache)?
        }
    };
    tracing::info!(
        "building {} {} from {}",
        recipe.name,
        recipe.version,
        recipe.label
    );
    let init = binaries::locate("harmony-init", opts.init_bin.as_deref())?;
    let agent = if recipe.agent {
        Some(binaries::locate(
            "harmony-agent",
            opts.agent_bin.as_deref(),
        )?)
    } else {
        None
    };
    if let Some(sb) = &recipe.secure_boot {
        if sb.signer.algorithm() == crate::emit::uki_signer::SignatureAlgorithm::EcdsaP256 {
            tracing::warn!(
                "{}: an ECDSA P-256 key: sbverify accepts its signature, but Debian 12's OVMF \
                 refuses it (Access Denied); use an RSA key for `harmony run --secure-boot`",
                sb.key.display()
            );
        }
    }
    let efi_stub = if recipe.wants(&Output::Disk) {
        Some(binaries::locate_efi_stub()?)
    } else {
        None
    };
    let staged = output_dir::StagedOutput::new(&opts.out)?;
    phases.done("recipe");

    // Base (and kernel image) layers, verified as they are opened.
    let base =
        open_resolved(&recipe.base, &recipe, opts, registry).context("opening the base image")?;
    if let Some(key) = &recipe.base_verify {
        require_signature(&recipe.base, &base.manifest_digest, key, registry)
            .context("verifying the base image's signature")?;
    }
    let kernel_image = match &recipe.kernel_from {
        Some(r) => Some(
            open_resolved(r, &recipe, opts, registry)
                .context("opening the kernel image (kernel.from)")?,
        ),
        None => None,
    };
    let mut tree = Tree::new();
    let mut layers: Vec<ImageLayer> = Vec::new();
    // History names each source as the recipe wrote it: a resolved path would put the
    // build machine's directories into the image digest.
    let sources = std::iter::once((&base, "base", recipe.base.to_string())).chain(
        kernel_image
            .iter()
            .zip(recipe.kernel_from.iter())
            .map(|(k, r)| (k, "kernel", r.to_string())),
    );
    for (image, what, written) in sources {
        for blob in &image.layers {
            let tar = blob
                .open_tar()
                .with_context(|| format!("reading {what} layer {}", blob.digest))?;
            apply_layer(&mut tree, tar)
                .with_context(|| format!("unpacking {what} layer {}", blob.digest))?;
            layers.push(ImageLayer {
                blob: blob.clone(),
                created_by: format!("{what} {written}"),
            });
        }
    }
    phases.done("unpack base");

    // Steps: one layer each, cached by inputs chained to everything below.
    let cache = LayerCache::new(&opts.cache);
    let mut step_locks = Vec::new();
    let mut cached_steps = 0;
    let mut chain = Sha256::new();
    for l in &layers {
        chain.update(l.blob.diff_id.as_bytes());
    }
    // Platform components: pulled and verified like the base, one layer each.
    let component_images = recipe
        .components
        .iter()
        .map(|c| {
            let image = open_resolved(&c.image, &recipe, opts, registry)
                .with_context(|| format!("opening component {}'s image {}", c.name, c.image))?;
            if let Some(key) = &c.verify {
                require_signature(&c.image, &image.manifest_digest, key, registry)
                    .with_context(|| format!("verifying component {}'s image signature", c.name))?;
            }
            Ok(image)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    /// A step made once the tree it edits is known.
    type PendingStep<'a> = Box<dyn Fn(&Tree) -> anyhow::Result<Option<StepOutput>> + 'a>;
    let mut pending: Vec<PendingStep<'_>> = Vec::new();
    // Package and run steps come first: they run the base's own tools on its root
    // (a kernel package installs where its distribution puts kernels).
    if !recipe.packages.is_empty() {
        pending.push(Box::new(|t: &Tree| {
            Ok(Some(steps::packages::packages_step(t, &recipe.packages)?))
        }));
    }
    if !recipe.run.is_empty() {
        pending.push(Box::new(|t: &Tree| {
            Ok(Some(steps::packages::run_step(t, &recipe.run)?))
        }));
    }
    // Kubernetes after them: it needs the init system they may have installed (OpenRC).
    if let Some(version) = &recipe.kubernetes {
        pending.push(Box::new(move |t: &Tree| {
            Ok(Some(steps::kubernetes::kubernetes_step(t, version)?))
        }));
    }
    // Then the kernel in the bootc place, so the OCI image carries it there.
    pending.push(Box::new(|t: &Tree| {
        Ok(steps::bootc_kernel::bootc_kernel_step(t)?)
    }));
    pending.push(Box::new(|_: &Tree| Ok(steps::files::files_step(&recipe)?)));
    if let Some(agent) = &agent {
        pending.push(Box::new(move |t: &Tree| {
            Ok(Some(steps::agent::agent_step(t, &agent.bytes)?))
        }));
    }
    for (item, image) in recipe.components.iter().zip(&component_images) {
        pending.push(Box::new(move |t: &Tree| {
            Ok(Some(steps::components::component_step(t, item, image)?))
        }));
    }
    // Last, so it sees (and checks) everything the other steps put in the image.
    if let Some(h) = &recipe.hardening {
        pending.push(Box::new(move |t: &Tree| {
            Ok(Some(steps::hardening::hardening_step(t, h)?))
        }));
    }
    for make in pending {
        let Some(step) = make(&tree)? else { continue };
        chain.update(step.name.as_bytes());
        chain.update(step.inputs_digest.as_bytes());
        let key = hex::encode(chain.clone().finalize());
        let layer = match cache.get(&key) {
            Some(hit) => {
                cached_steps += 1;
                hit
            }
            None => {
                let encoded = encode_layer(&step.changes, opts.source_date_epoch)
                    .with_context(|| format!("encoding the {} layer", step.name))?;
                cache.put(&key, &encoded)?
            }
        };
        let blob = LayerBlob {
            digest: layer.digest.clone(),
            diff_id: layer.diff_id.clone(),
            media_type: GZIP_LAYER.to_string(),
            size: layer.size,
            path: layer.path.clone(),
        };
        // Applied from the encoded blob, so the root we emit is exactly the OCI image's.
        apply_layer(&mut tree, blob.open_tar()?)
            .with_context(|| format!("applying the {} layer", step.name))?;
        chain.update(layer.diff_id.as_bytes());
        step_locks.push(StepLock {
            name: step.name.to_string(),
            cache_key: key,
            layer_digest: layer.digest.clone(),
            diff_id: layer.diff_id.clone(),
        });
        layers.push(ImageLayer {
            blob,
            created_by: step.description,
        });
    }
    phases.done("steps");
    // Everything below reads the tree these layers make: this names it.
    let tree_digest = hex::encode(chain.finalize());

    let out = staged.path();
    let mut artifacts: Vec<Artifact> = Vec::new();
    // The OCI image is the layers alone; what follows changes only the root the node boots.
    let mut manifest_digest = None;
    if recipe.wants(&Output::Oci) {
        let oci = write_oci(out, &recipe, &layers, opts.source_date_epoch)?;
        manifest_digest = Some(format!("sha256:{}", oci.sha256));
        artifacts.push(oci);
        phases.done("oci");
    }
    let image_identity = bake_image_identity(&mut tree, &recipe, manifest_digest)?;

    // SELinux labels from the image's own policy, on the root the node boots (the OCI
    // layers stay unlabelled, as bootc images are).
    if let Some(labelled) = crate::selinux::label_tree(&mut tree)? {
        tracing::info!(
            policy = labelled.policy,
            specs = labelled.specs,
            entries = labelled.entries,
            "SELinux labels set from the image's file_contexts"
        );
        phases.done("selinux labels");
    }

    let kernel = find_kernel(&tree)?;
    let lock = Lock {
        recipe: RecipeLock {
            name: recipe.name.clone(),
            version: recipe.version.clone(),
            source: recipe.label.clone(),
            sha256: hex::encode(Sha256::digest(recipe.text.as_bytes())),
        },
        base: image_lock(&recipe.base, &base),
        kernel_image: recipe
            .kernel_from
            .as_ref()
            .zip(kernel_image.as_ref())
            .map(|(r, i)| image_lock(r, i)),
        steps: step_locks,
        kernel: KernelLock {
            version: kernel.version.clone(),
            vmlinuz_sha256: hex::encode(Sha256::digest(kernel.vmlinuz.as_slice())),
            boot_modules: recipe.boot_modules.clone(),
        },
        agent: agent.as_ref().map(|a| binary_lock(&a.bytes)),
        init: binary_lock(&init.bytes),
        efi_stub: efi_stub.as_ref().map(|s| binary_lock(&s.bytes)),
        secure_boot: recipe.secure_boot.as_ref().map(|s| SecureBootLock {
            cert_sha256: hex::encode(Sha256::digest(s.cert_pem.as_bytes())),
        }),
        source_date_epoch: opts.source_date_epoch,
    };

    let artifact_cache = ArtifactCache::new(&opts.cache);
    let mut cached_artifacts = 0;
    let mut count = |source: Source| cached_artifacts += usize::from(source == Source::Cache);
    let cmdline = recipe.cmdline.join(" ");
    let recipe_sha256 = &lock.recipe.sha256;
    if recipe.wants(&Output::Pxe) || recipe.wants(&Output::Disk) {
        let inputs = PxeInputs {
            tree: &tree,
            kernel: &kernel,
            init_binary: &init.bytes,
            boot_modules: &recipe.boot_modules,
            cmdline: &cmdline,
            source_date_epoch: opts.source_date_epoch,
        };
        let key = InputKey::new("boot-files").map(|k| {
            k.with("tree", &tree_digest)
                .with("image_identity", &image_identity)
                .with("init", &lock.init.sha256)
                .with("boot_modules", recipe.boot_modules.join("\0"))
                .with("source_date_epoch", opts.source_date_epoch.to_le_bytes())
                .finish()
        });
        let (parts, source) = artifact_cache.bytes(key.clone(), || {
            // The last build of this recipe: its unchanged blocks need no compressing.
            let previous = artifact_cache.recall(&recipe.name).unwrap_or_default();
            let earlier = match previous.as_slice() {
                [image, _, list] => EarlierBlocks::parse(image, list),
                _ => EarlierBlocks::default(),
            };
            let made = boot_images(&inputs, &earlier)?;
            Ok(vec![made.root_image, made.initramfs, made.block_list])
        })?;
        if let Some(key) = &key {
            artifact_cache.remember(&recipe.name, key);
        }
        let [root_image, initramfs, _]: [Vec<u8>; 3] = parts
            .try_into()
            .map_err(|_| anyhow::anyhow!("the boot files' cache record has the wrong shape"))?;
        let boot = BootFiles::new(initramfs, root_image, opts.source_date_epoch)?;
        count(source);
        phases.done_from("initrds", source);
        if recipe.wants(&Output::Pxe) {
            artifacts.extend(emit_pxe(&inputs, &boot, out)?);
            phases.done("pxe");
        }
        if let Some(stub) = &efi_stub {
            let disk = DiskInputs {
                tree: &tree,
                kernel: &kernel,
                boot: &boot,
                cmdline: &cmdline,
                efi_stub: &stub.bytes,
                efi_stub_path: &stub.path.display().to_string(),
                name: &recipe.name,
                version: &recipe.version,
                source_date_epoch: opts.source_date_epoch,
                signer: recipe.secure_boot.as_ref().map(|s| &*s.signer),
            };
            // The recipe's digest stands for every setting the disk reads from it.
            let key = InputKey::new("disk").map(|k| {
                k.with("root_image", Sha256::digest(boot.root_image.as_slice()))
                    .with("initramfs", Sha256::digest(&boot.initramfs))
                    .with("vmlinuz", &lock.kernel.vmlinuz_sha256)
                    .with("cmdline", &cmdline)
                    .with("efi_stub", Sha256::digest(&stub.bytes))
                    .with("recipe", recipe_sha256)
                    .with(
                        "secure_boot_cert",
                        lock.secure_boot
                            .as_ref()
                            .map_or("", |s| s.cert_sha256.as_str()),
                    )
                    .with("source_date_epoch", opts.source_date_epoch.to_le_bytes())
                    .finish()
            });
            let (disk, source) =
                artifact_cache.files(key, out, || Ok(vec![emit_disk_image(&disk, out)?]))?;
            artifacts.extend(disk);
            if let Some(secure_boot) = &recipe.secure_boot {
                artifacts.push(write_secure_boot_cert(out, secure_boot)?);
            }
            count(source);
            phases.done_from("disk", source);
        }
    }
    if let Some(raw) = artifacts.iter().find(|a| a.kind == DISK_KIND).cloned() {
        let key = InputKey::new("disk-formats").map(|k| {
            k.with("raw", &raw.sha256)
                .with("recipe", recipe_sha256)
                .with("source_date_epoch", opts.source_date_epoch.to_le_bytes())
                .finish()
        });
        let (formats, source) = artifact_cache.files(key, out, || {
            emit_disk_formats(&recipe, &raw, out, opts, &mut phases)
        })?;
        artifacts.extend(formats);
        count(source);
        if source == Source::Cache {
            phases.done("disk formats (cached)");
        }
    }
    if recipe.wants(&Output::Vaquero) {
        let pxe_args: Vec<String> = crate::emit::pxe::pxe_cmdline(&cmdline)
            .split_whitespace()
            .map(String::from)
            .collect();
        artifacts.extend(crate::emit::vaquero::emit_vaquero(
            out,
            &recipe.name,
            &recipe.version,
            &pxe_args,
        )?);
        phases.done("vaquero");
    }

    artifacts.push(write_sbom(
        out,
        &recipe,
        &tree,
        &kernel,
        (&base, kernel_image.as_ref(), &component_images),
        (agent.as_ref(), &init),
        &artifacts,
        opts.source_date_epoch,
    )?);
    phases.done("sbom");

    let inputs = serde_json::to_value(&lock)?;
    let lock_bytes = serde_json::to_vec_pretty(&lock)?;
    std::fs::write(out.join(lock::LOCK_FILE), &lock_bytes)?;
    artifacts.push(Artifact::of_bytes(lock::LOCK_FILE, "lock", &lock_bytes));
    let manifest = Manifest {
        name: recipe.name.clone(),
        version: recipe.version.clone(),
        cmdline,
        artifacts,
        inputs,
    };
    std::fs::write(
        out.join(MANIFEST_FILE),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    let out = staged.commit()?;
    phases.done("commit");
    let mut keep = artifact_cache.used();
    keep.extend(cache.used());
    match eviction::evict(&opts.cache, max, &keep) {
        Ok(e) if e.removed > 0 => tracing::info!(
            "cache over {max} bytes: removed {} least recently used entries ({} -> {} bytes)",
            e.removed,
            e.before,
            e.after
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cache eviction failed: {e:#}"),
    }
    Ok(BuildReport {
        out,
        manifest,
        phases: phases.0,
        cached_steps,
        cached_artifacts,
    })
}

/// `NAME.spdx.json`: what the image holds, with the source images by digest.
#[allow(clippy::too_many_arguments)]
fn write_sbom(
    out: &Path,
    recipe: &Recipe,
    tree: &Tree,
    kernel: &crate::kernel::Kernel,
    (base, kernel_image, components): (&SourceImage, Option<&SourceImage>, &[SourceImage]),
    (agent, init): (Option<&binaries::StaticBinary>, &binaries::StaticBinary),
    artifacts: &[Artifact],
    source_date_epoch: i64,
) -> anyhow::Result<Artifact> {
    use crate::sbom::{BinaryInput, SbomInputs, SourceImageInput};
    let image_digest = artifacts
        .iter()
        .find(|a| a.kind == "oci-layout")
        .map(|a| format!("sha256:{}", a.sha256));
    let mut images: Vec<SourceImageInput<'_>> = recipe
        .kernel_from
        .iter()
        .zip(kernel_image)
        .map(|(reference, image)| SourceImageInput {
            name: "kernel-image",
            reference,
            manifest_digest: &image.manifest_digest,
        })
        .collect();
    images.extend(
        recipe
            .components
            .iter()
            .zip(components)
            .map(|(c, image)| SourceImageInput {
                name: &c.name,
                reference: &c.image,
                manifest_digest: &image.manifest_digest,
            }),
    );
    let binaries = agent
        .map(|a| ("harmony-agent", a))
        .into_iter()
        .chain(std::iter::once(("harmony-init", init)))
        .map(|(name, b)| BinaryInput {
            name,
            bytes: &b.bytes,
        })
        .collect();
    let inputs = SbomInputs {
        name: &recipe.name,
        version: &recipe.version,
        tree,
        kernel,
        base: SourceImageInput {
            name: "base",
            reference: &recipe.base,
            manifest_digest: &base.manifest_digest,
        },
        components: images,
        binaries,
        image_digest: image_digest.as_deref(),
        source_date_epoch,
    };
    crate::sbom::write_sbom(&inputs, out).context("writing the SBOM")
}

/// `/usr/lib/harmony/image.json` in the booted root: the image's name, version and OCI
/// manifest digest, which harmony-agent reports (agent/src/provenance.rs). Returns its
/// bytes: the layers' digest does not cover them, so the boot files' cache key adds them.
fn bake_image_identity(
    tree: &mut Tree,
    recipe: &Recipe,
    manifest_digest: Option<String>,
) -> anyhow::Result<Vec<u8>> {
    use crate::tree::{Entry, Kind, Meta};
    use ignition::image_identity::{ImageIdentity, IMAGE_IDENTITY_PATH};
    let identity = ImageIdentity {
        name: recipe.name.clone(),
        version: recipe.version.clone(),
        manifest_digest,
    };
    let path = IMAGE_IDENTITY_PATH.trim_start_matches('/');
    let parent = path.rsplit_once('/').map_or("", |(dir, _)| dir);
    tree.mkdir_all(parent, &Meta::new(0o755))
        .with_context(|| format!("creating /{parent} for the image identity"))?;
    let mut bytes = serde_json::to_vec_pretty(&identity)?;
    bytes.push(b'\n');
    tree.insert(
        path,
        Entry {
            kind: Kind::File(std::sync::Arc::new(bytes.clone())),
            meta: Meta::new(0o644),
        },
    )
    .with_context(|| format!("writing {IMAGE_IDENTITY_PATH}"))?;
    Ok(bytes)
}

/// `OUT/secure-boot.crt`: the certificate that signed the UKI, for the firmware's db
/// (`harmony run --secure-boot` enrolls it; README, "Secure Boot").
fn write_secure_boot_cert(
    out: &Path,
    secure_boot: &recipe::SecureBoot,
) -> anyhow::Result<Artifact> {
    let bytes = secure_boot.cert_pem.as_bytes();
    let path = out.join(crate::run::secure_boot::CERT_FILE);
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(Artifact::of_bytes(
        crate::run::secure_boot::CERT_FILE,
        crate::run::secure_boot::CERT_KIND,
        bytes,
    ))
}

/// disk.qcow2, disk.vmdk and NAME.ova, as the recipe asks, converted from disk.raw.
fn emit_disk_formats(
    recipe: &Recipe,
    raw: &Artifact,
    out: &Path,
    opts: &BuildOptions,
    phases: &mut Phases,
) -> anyhow::Result<Vec<Artifact>> {
    let inputs = DiskFormatInputs {
        out_dir: out,
        raw: &raw.path,
        raw_sha256: &raw.sha256,
        name: &recipe.name,
        version: &recipe.version,
        source_date_epoch: opts.source_date_epoch,
        secure_boot: recipe.secure_boot.is_some(),
    };
    let mut artifacts = Vec::new();
    if recipe.wants(&Output::Qcow2) {
        artifacts.push(emit_qcow2(&inputs)?);
        phases.done("qcow2");
    }
    let mut vmdk = None;
    if recipe.wants(&Output::Vmdk) {
        let (artifact, summary) = emit_vmdk(&inputs)?;
        artifacts.push(artifact);
        vmdk = Some(summary);
        phases.done("vmdk");
    }
    if recipe.wants(&Output::Ova) {
        artifacts.push(emit_ova(&inputs, vmdk.as_ref())?);
        phases.done("ova");
    }
    Ok(artifacts)
}

const GZIP_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Layout and archive paths in a recipe are relative to the recipe's directory.
fn open_resolved(
    r: &ImageRef,
    recipe: &Recipe,
    opts: &BuildOptions,
    registry: &RegistryOptions,
) -> anyhow::Result<SourceImage> {
    let cache = &opts.cache;
    let resolved = match r {
        ImageRef::DebianPackages { list } => {
            let dir = packages_base::ensure_packages_base(
                cache,
                &recipe.dir.join(list),
                opts.source_date_epoch,
            )?;
            ImageRef::Layout {
                dir,
                tag: Some(packages_base::TAG.to_string()),
                digest: None,
            }
        }
        ImageRef::Layout { dir, tag, digest } if dir.is_relative() => ImageRef::Layout {
            dir: recipe.dir.join(dir),
            tag: tag.clone(),
            digest: digest.clone(),
        },
        ImageRef::Archive { file, tag } if file.is_relative() => ImageRef::Archive {
            file: recipe.dir.join(file),
            tag: tag.clone(),
        },
        other => other.clone(),
    };
    Ok(open_image_with(&resolved, cache, registry)?)
}

/// The reference as written, pinned to the manifest digest it resolved to.
fn pinned(r: &ImageRef, manifest_digest: &str) -> String {
    match r {
        ImageRef::Registry {
            registry,
            repository,
            ..
        } => format!("docker://{registry}/{repository}@{manifest_digest}"),
        ImageRef::Layout { dir, .. } => format!("oci-layout:{}@{manifest_digest}", dir.display()),
        ImageRef::Archive { .. } | ImageRef::DebianPackages { .. } => {
            format!("{r}@{manifest_digest}")
        }
    }
}

fn image_lock(reference: &ImageRef, image: &SourceImage) -> ImageLock {
    ImageLock {
        reference: reference.to_string(),
        pinned: pinned(reference, &image.manifest_digest),
        manifest_digest: image.manifest_digest.clone(),
        config_digest: image.config_digest.clone(),
        layers: image.layers.iter().map(|l| l.digest.clone()).collect(),
    }
}

fn binary_lock(bytes: &[u8]) -> BinaryLock {
    BinaryLock {
        sha256: hex::encode(Sha256::digest(bytes)),
        size: bytes.len() as u64,
    }
}

/// The built OS image itself, bootc style: base layers, then one layer per step.
fn write_oci(
    out: &Path,
    recipe: &Recipe,
    layers: &[ImageLayer],
    source_date_epoch: i64,
) -> anyhow::Result<Artifact> {
    let dir = out.join("oci");
    let mut writer =
        LayoutWriter::create(&dir, source_date_epoch).context("creating the OCI layout")?;
    for l in layers {
        writer.add_source_layer(&l.blob, &l.created_by)?;
    }
    let labels = [
        ("org.opencontainers.image.title", recipe.name.as_str()),
        ("org.opencontainers.image.version", recipe.version.as_str()),
        ("containers.bootc", "1"),
    ];
    let details = ImageDetails {
        tag: recipe.version.clone(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        annotations: Default::default(),
    };
    let manifest_digest = writer.finish(&details).context("writing the OCI layout")?;
    let index = std::fs::read(dir.join("index.json"))?;
    let mut a = Artifact::of_bytes("oci", "oci-layout", &index);
    // The layout is named by its image manifest, the digest a registry would show.
    a.sha256 = manifest_digest.trim_start_matches("sha256:").to_string();
    a.size = dir_size(&dir)?;
    Ok(a)
}

fn dir_size(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let md = entry.metadata()?;
        total += if md.is_dir() {
            dir_size(&entry.path())?
        } else {
            md.len()
        };
    }
    Ok(total)
}
