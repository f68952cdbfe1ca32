//! `OUT/NAME.spdx.json`: the image's software bill of materials in SPDX 2.3 JSON.
//!
//! Lists every distribution package from the image's own package database (dpkg, apk,
//! rpm), the base and each component image by manifest digest, harmony-agent and
//! harmony-init with the Rust crates linked into them, and the kernel; SHA-256 checksums
//! where there are bytes to hash, a purl for each. Deterministic like every artifact:
//! `created` is SOURCE_DATE_EPOCH, the order is fixed, and the documentNamespace is
//! derived from the document's own content.

pub mod linked_crates;
pub mod os_packages;
pub mod rpmdb;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::kernel::Kernel;
use crate::manifest::Artifact;
use crate::oci::reference::ImageRef;
use crate::tree::Tree;
use os_packages::{Manager, OsPackage};

pub const SBOM_KIND: &str = "sbom";

/// `NAME.spdx.json`, NAME the recipe's image name.
pub fn file_name(image_name: &str) -> String {
    format!("{image_name}.spdx.json")
}

/// An image the build pulled in: the base or a component.
pub struct SourceImageInput<'a> {
    /// The component's name, or `base`.
    pub name: &'a str,
    pub reference: &'a ImageRef,
    /// `sha256:HEX` of the image manifest.
    pub manifest_digest: &'a str,
}

/// A static binary baked into the image (harmony-agent, harmony-init).
pub struct BinaryInput<'a> {
    /// The crate name, which is also the binary's name.
    pub name: &'a str,
    pub bytes: &'a [u8],
}

pub struct SbomInputs<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// The root tree the node boots.
    pub tree: &'a Tree,
    pub kernel: &'a Kernel,
    pub base: SourceImageInput<'a>,
    pub components: Vec<SourceImageInput<'a>>,
    pub binaries: Vec<BinaryInput<'a>>,
    /// The built OCI image's manifest digest, when the recipe asks for the OCI output.
    pub image_digest: Option<&'a str>,
    pub source_date_epoch: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum SbomError {
    #[error("SBOM: reading the image's package database: {0}")]
    PackageDb(#[from] os_packages::PackageDbError),
    #[error("SBOM: the crate list recorded at compile time is unreadable: {0}")]
    Crates(#[from] serde_json::Error),
    #[error("{path}: cannot write the SBOM: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Write `OUT/NAME.spdx.json` (temp file + rename) and describe it for the manifest.
pub fn write_sbom(inputs: &SbomInputs<'_>, out_dir: &Path) -> Result<Artifact, SbomError> {
    let name = file_name(inputs.name);
    let bytes = render(inputs)?;
    let path = out_dir.join(&name);
    let tmp = out_dir.join(format!(".{name}.tmp"));
    let write_err = |source| SbomError::Write {
        path: path.display().to_string(),
        source,
    };
    std::fs::write(&tmp, &bytes).map_err(write_err)?;
    std::fs::rename(&tmp, &path).map_err(write_err)?;
    Ok(Artifact::of_bytes(&name, SBOM_KIND, &bytes))
}

/// The document's bytes (pretty JSON, keys sorted, trailing newline).
pub fn render(inputs: &SbomInputs<'_>) -> Result<Vec<u8>, SbomError> {
    let mut doc = document(inputs)?;
    // The namespace names the content: the hash of the document without it.
    let digest = hex::encode(Sha256::digest(serde_json::to_vec(&doc)?));
    doc["documentNamespace"] = Value::String(format!(
        "https://spdx.org/spdxdocs/harmony-{}-{}-{digest}",
        sanitize(inputs.name),
        sanitize(inputs.version)
    ));
    let mut bytes = serde_json::to_vec_pretty(&doc)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Packages and relationships collected in a fixed order; SPDX ids made unique.
#[derive(Default)]
struct Collector {
    packages: Vec<Value>,
    relationships: Vec<Value>,
    ids: BTreeSet<String>,
}

struct Package<'a> {
    hint: String,
    name: &'a str,
    version: &'a str,
    purl: String,
    sha256: Option<&'a str>,
    purpose: &'static str,
}

impl Collector {
    fn add(&mut self, p: Package<'_>) -> String {
        let base = format!("SPDXRef-{}", sanitize(&p.hint));
        let mut id = base.clone();
        let mut n = 1;
        while !self.ids.insert(id.clone()) {
            n += 1;
            id = format!("{base}-{n}");
        }
        let mut pkg = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": p.purpose,
            "externalRefs": [{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": p.purl,
            }],
        });
        if let Some(sum) = p.sha256 {
            pkg["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": sum}]);
        }
        self.packages.push(pkg);
        id
    }

    fn relate(&mut self, from: &str, kind: &str, to: &str) {
        self.relationships.push(json!({
            "spdxElementId": from,
            "relationshipType": kind,
            "relatedSpdxElement": to,
        }));
    }
}

fn document(inputs: &SbomInputs<'_>) -> Result<Value, SbomError> {
    let tree = inputs.tree;
    let mut c = Collector::default();
    c.ids.insert("SPDXRef-DOCUMENT".to_string());

    let image_purl = match inputs.image_digest {
        Some(d) => format!("pkg:oci/{}@{d}", encode(inputs.name)),
        None => format!(
            "pkg:generic/{}@{}",
            encode(inputs.name),
            encode(inputs.version)
        ),
    };
    let image = c.add(Package {
        hint: "Image".to_string(),
        name: inputs.name,
        version: inputs.version,
        purl: image_purl,
        sha256: inputs.image_digest.map(|d| d.trim_start_matches("sha256:")),
        purpose: "OPERATING-SYSTEM",
    });
    c.relate("SPDXRef-DOCUMENT", "DESCRIBES", &image);

    let base = add_source_image(&mut c, &inputs.base, "Base");
    c.relate(&image, "DESCENDANT_OF", &base);

    let namespace = os_packages::os_release_id(tree);
    let databases = [
        (Manager::Dpkg, os_packages::dpkg_packages(tree)?),
        (Manager::Apk, os_packages::apk_packages(tree)?),
        (Manager::Rpm, rpmdb::rpm_packages(tree)?),
    ];
    for (manager, packages) in &databases {
        let ns = namespace.as_deref().unwrap_or(manager.default_namespace());
        for p in packages {
            let id = c.add(Package {
                hint: format!(
                    "{}-{}-{}-{}",
                    manager.purl_type(),
                    p.name,
                    p.version,
                    p.arch
                ),
                name: &p.name,
                version: &p.version,
                purl: os_purl(*manager, ns, p),
                sha256: None,
                purpose: "LIBRARY",
            });
            c.relate(&image, "CONTAINS", &id);
        }
    }

    let vmlinuz_sha256 = hex::encode(Sha256::digest(inputs.kernel.vmlinuz.as_slice()));
    let kernel = c.add(Package {
        hint: format!("Kernel-{}", inputs.kernel.version),
        name: "linux",
        version: &inputs.kernel.version,
        purl: format!("pkg:generic/linux@{}", encode(&inputs.kernel.version)),
        sha256: Some(&vmlinuz_sha256),
        purpose: "OPERATING-SYSTEM",
    });
    c.relate(&image, "CONTAINS", &kernel);

    // Crates shared by both binaries are listed once.
    let mut crate_ids: std::collections::BTreeMap<(String, String), String> = Default::default();
    for binary in &inputs.binaries {
        let sha256 = hex::encode(Sha256::digest(binary.bytes));
        let crates = linked_crates::linked_crates(binary.name)?;
        let own_version = crates
            .iter()
            .find(|k| k.name == binary.name && !k.registry)
            .map_or(env!("CARGO_PKG_VERSION").to_string(), |k| k.version.clone());
        let id = c.add(Package {
            hint: format!("Binary-{}", binary.name),
            name: binary.name,
            version: &own_version,
            purl: format!(
                "pkg:generic/{}@{}",
                encode(binary.name),
                encode(&own_version)
            ),
            sha256: Some(&sha256),
            purpose: "APPLICATION",
        });
        c.relate(&image, "CONTAINS", &id);
        for k in crates.iter().filter(|k| k.name != binary.name) {
            let key = (k.name.clone(), k.version.clone());
            let crate_id = match crate_ids.get(&key) {
                Some(existing) => existing.clone(),
                None => {
                    let purl = if k.registry {
                        format!("pkg:cargo/{}@{}", encode(&k.name), encode(&k.version))
                    } else {
                        format!("pkg:generic/{}@{}", encode(&k.name), encode(&k.version))
                    };
                    let new = c.add(Package {
                        hint: format!("Crate-{}-{}", k.name, k.version),
                        name: &k.name,
                        version: &k.version,
                        purl,
                        sha256: k.sha256.as_deref(),
                        purpose: "LIBRARY",
                    });
                    crate_ids.insert(key, new.clone());
                    new
                }
            };
            c.relate(&id, "STATIC_LINK", &crate_id);
        }
    }

    for component in &inputs.components {
        let id = add_source_image(&mut c, component, "Component");
        c.relate(&image, "CONTAINS", &id);
    }

    Ok(json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}-{}", inputs.name, inputs.version),
        "documentNamespace": "",
        "creationInfo": {
            "created": ignition::rfc3339::format_unix(inputs.source_date_epoch),
            "creators": [format!("Tool: harmony-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": c.packages,
        "relationships": c.relationships,
    }))
}

/// An OCI image by manifest digest: `pkg:oci/NAME@sha256:HEX?repository_url=HOST/REPO`.
fn add_source_image(c: &mut Collector, image: &SourceImageInput<'_>, role: &str) -> String {
    let (purl_name, repository_url) = match image.reference {
        ImageRef::Registry {
            registry,
            repository,
            ..
        } => (
            repository
                .rsplit('/')
                .next()
                .unwrap_or(repository)
                .to_string(),
            Some(format!("{registry}/{repository}")),
        ),
        _ => (image.name.to_string(), None),
    };
    let mut purl = format!("pkg:oci/{}@{}", encode(&purl_name), image.manifest_digest);
    if let Some(url) = repository_url {
        purl += &format!("?repository_url={}", encode(&url));
    }
    c.add(Package {
        hint: format!("{role}-{}", image.name),
        name: image.name,
        version: image.manifest_digest,
        purl,
        sha256: Some(image.manifest_digest.trim_start_matches("sha256:")),
        purpose: "CONTAINER",
    })
}

/// `pkg:deb/debian/NAME@VER?arch=ARCH`, `pkg:apk/alpine/...`, `pkg:rpm/centos/...&epoch=N`.
fn os_purl(manager: Manager, namespace: &str, p: &OsPackage) -> String {
    let mut purl = format!(
        "pkg:{}/{}/{}@{}?arch={}",
        manager.purl_type(),
        encode(namespace),
        encode(&p.name),
        encode(&p.version),
        encode(&p.arch)
    );
    if let Some(epoch) = p.epoch {
        purl += &format!("&epoch={epoch}");
    }
    purl
}

/// Percent-encoding for purl components: unreserved characters, `:` and `/` stay (`+` is
/// `%2B`, as the purl spec and packageurl-python have it).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b".-_~:/".contains(&b) {
            out.push(char::from(b));
        } else {
            out += &format!("%{b:02X}");
        }
    }
    out
}

/// SPDX ids allow letters, digits, `.` and `-` only.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() || ch == '.' {
                ch
            } else {
                '-'
            }
        })
        .collect()
}
