//! Recipes: one YAML file describes an image — base, kernel, files, agent, outputs.
//!
//! `load` parses and validates in one go and returns every problem it finds, each naming
//! the file, line and field. What comes out (`Recipe`) is fully checked: paths absolute
//! and normalised, modes parsed, references parsed, sources located.

mod cmdline;
mod components;
mod error;
pub mod locate;
mod model;
mod secure_boot;
mod signature;
mod validate;

use std::path::{Path, PathBuf};

pub use error::{RecipeError, RecipeErrors};
pub use model::{RecipeDoc, DEFAULT_BOOT_MODULES, DEFAULT_CMDLINE};
pub use secure_boot::SecureBoot;

use crate::kubernetes::KubernetesVersion;
use crate::oci::reference::ImageRef;

/// The recipe `harmony build` uses when given none: a Debian-package base made offline.
pub const DEFAULT_RECIPE: &str = include_str!("../../../image-recipes/default.yaml");
pub const DEFAULT_RECIPE_LABEL: &str = "<default recipe>";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// kernel, initramfs, rootfs and an iPXE script under `pxe/`.
    Pxe,
    /// The image itself as an OCI image layout under `oci/`.
    Oci,
    /// `disk.raw`: a GPT disk that UEFI firmware boots (ESP with a unified kernel image).
    Disk,
    /// `disk.qcow2`, from disk.raw.
    Qcow2,
    /// `disk.vmdk` (streamOptimized), from disk.raw.
    Vmdk,
    /// `NAME.ova` for vSphere (OVF + manifest + streamOptimized VMDK), from disk.raw.
    Ova,
    /// A Vaquero configuration tree under `vaquero/` (needs `pxe`).
    Vaquero,
}

impl Output {
    pub const ALL: &'static [(&'static str, Output)] = &[
        ("pxe", Output::Pxe),
        ("oci", Output::Oci),
        ("disk", Output::Disk),
        ("qcow2", Output::Qcow2),
        ("vmdk", Output::Vmdk),
        ("ova", Output::Ova),
        ("vaquero", Output::Vaquero),
    ];
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileContent {
    Inline(String),
    /// A file or directory tree on the build host.
    Host(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileItem {
    /// Absolute, normalised path in the image.
    pub path: String,
    pub content: FileContent,
    /// None: 0644 for files (0755 for directories copied from a host tree keep their host modes).
    pub mode: Option<u32>,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryItem {
    pub path: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkItem {
    pub path: String,
    pub target: String,
}

/// The hardening profile to apply and the rules left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hardening {
    pub profile: String,
    /// Rule ids (each a known rule of the profile).
    pub exclude: Vec<String>,
}

/// A validated recipe.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipe {
    /// Where it came from, for messages and the lock file.
    pub label: String,
    /// The text as read: its digest is an input of the build.
    pub text: String,
    /// Relative paths in the recipe resolve against this directory.
    pub dir: PathBuf,
    pub name: String,
    pub version: String,
    pub base: ImageRef,
    /// `base: {verify: {key}}`: the public key the base's signature must verify with.
    pub base_verify: Option<PathBuf>,
    pub kernel_from: Option<ImageRef>,
    pub cmdline: Vec<String>,
    pub boot_modules: Vec<String>,
    pub packages: Vec<String>,
    pub run: Vec<String>,
    pub files: Vec<FileItem>,
    pub directories: Vec<DirectoryItem>,
    pub links: Vec<LinkItem>,
    pub agent: bool,
    /// `kubernetes: {version}`: the Kubernetes minor version to install.
    pub kubernetes: Option<KubernetesVersion>,
    pub hardening: Option<Hardening>,
    pub components: Vec<ComponentItem>,
    /// `secure_boot`: the disk image's UKI is signed.
    pub secure_boot: Option<SecureBoot>,
    pub outputs: Vec<Output>,
}

/// A catalog component with its image pinned and its config rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentItem {
    pub name: String,
    pub image: ImageRef,
    /// `verify: {key}`: the public key the image's signature must verify with.
    pub verify: Option<PathBuf>,
    pub config_mount: String,
    /// The catalog entry's command and environment (see `CatalogEntry::command`).
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The catalog entry's isolation (see `CatalogEntry::user`, `capabilities`,
    /// `data_mount`).
    pub user: String,
    pub capabilities: Vec<String>,
    pub data_mount: String,
    pub rendered: crate::components::Rendered,
}

impl Recipe {
    pub fn wants(&self, output: &Output) -> bool {
        self.outputs.contains(output)
    }
}

/// Read and validate a recipe file.
pub fn load(path: &Path) -> Result<Recipe, RecipeErrors> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        RecipeErrors(vec![RecipeError {
            file: label.clone(),
            line: None,
            field: String::new(),
            problem: format!("cannot read: {e}"),
        }])
    })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, &label, &dir)
}

/// The embedded default recipe; its relative paths resolve against `dir`
/// (the Harmony cache, where the default base is made).
pub fn load_default(dir: &Path) -> Result<Recipe, RecipeErrors> {
    parse(DEFAULT_RECIPE, DEFAULT_RECIPE_LABEL, dir)
}

/// Parse and validate recipe text. `label` names it in errors; `dir` anchors relative paths.
pub fn parse(text: &str, label: &str, dir: &Path) -> Result<Recipe, RecipeErrors> {
    let locations = locate::FieldLocations::index(text);
    let doc: RecipeDoc = locate::deserialize_located(text, &locations).map_err(|e| {
        RecipeErrors(vec![RecipeError {
            file: label.to_string(),
            line: e.line,
            field: e.field,
            problem: e.problem,
        }])
    })?;
    validate::validate(doc, text, label, dir, &locations)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod components_tests;
