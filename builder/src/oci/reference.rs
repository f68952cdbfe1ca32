//! Where an image comes from: `docker://`, `oci-layout:` or `oci-archive:` references.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::digest::check_sha256;
use super::error::OciError;

/// Docker Hub, as references name it (`index.docker.io` is read as this name).
pub const DOCKER_HUB: &str = "docker.io";
/// Where Docker Hub's registry API (`/v2/`) answers: `https://docker.io/v2/` does not.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Docker Hub under any of its names is `docker.io`; other hosts are themselves.
pub fn canonical_host(host: &str) -> &str {
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB,
        other => other,
    }
}

/// The host whose `/v2/` API serves `registry`'s repositories: Docker Hub's is
/// `registry-1.docker.io` (the mapping containers/image and docker apply); other
/// registries serve their API at their own name.
pub fn api_host(registry: &str) -> &str {
    if canonical_host(registry) == DOCKER_HUB {
        DOCKER_HUB_API
    } else {
        registry
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// `docker://REGISTRY/REPO:TAG`, `docker://REGISTRY/REPO@sha256:HEX`, or both (pinned).
    Registry {
        registry: String,
        repository: String,
        tag: Option<String>,
        digest: Option<String>,
    },
    /// `oci-layout:DIR[:TAG|@sha256:HEX]`.
    Layout {
        dir: PathBuf,
        tag: Option<String>,
        digest: Option<String>,
    },
    /// `oci-archive:FILE[:TAG]`: a tar of an image layout.
    Archive { file: PathBuf, tag: Option<String> },
    /// `debian-packages:FILE`: a base made on this machine by `harmony build` from the
    /// Debian packages FILE lists (one per line), installed with their maintainer
    /// scripts (`harmony base debian --mode install`), kept in the cache.
    DebianPackages { list: PathBuf },
}

pub const DEBIAN_PACKAGES_PREFIX: &str = "debian-packages:";

impl FromStr for ImageRef {
    type Err = OciError;

    fn from_str(input: &str) -> Result<Self, OciError> {
        let bad = |problem: &str| OciError::BadReference {
            input: input.to_string(),
            problem: problem.to_string(),
        };
        if let Some(rest) = input.strip_prefix("docker://") {
            let (name, digest) = split_digest(rest, input)?;
            let (name, tag) = split_tag(name);
            let (registry, repository) = name
                .split_once('/')
                .ok_or_else(|| bad("expected docker://REGISTRY/REPOSITORY[:TAG][@sha256:HEX]"))?;
            if registry.is_empty() {
                return Err(bad("the registry host is empty"));
            }
            if repository.is_empty() || repository.split('/').any(|c| !valid_component(c)) {
                return Err(bad(&format!(
                    "repository {repository:?} is not lowercase [a-z0-9._-] components"
                )));
            }
            if let Some(t) = &tag {
                check_tag(t).map_err(|p| bad(&p))?;
            }
            if tag.is_none() && digest.is_none() {
                return Err(bad(
                    "a registry reference needs a :TAG or an @sha256: digest",
                ));
            }
            // Docker Hub's names as docker's reference grammar normalises them:
            // `index.docker.io` is `docker.io`, and its official images live under `library/`.
            let registry = match registry {
                "index.docker.io" => DOCKER_HUB,
                other => other,
            };
            let repository = if registry == DOCKER_HUB && !repository.contains('/') {
                format!("library/{repository}")
            } else {
                repository.to_string()
            };
            Ok(ImageRef::Registry {
                registry: registry.to_string(),
                repository,
                tag,
                digest,
            })
        } else if let Some(rest) = input.strip_prefix("oci-layout:") {
            let (dir, digest) = split_digest(rest, input)?;
            let (dir, tag) = split_tag(dir);
            if dir.is_empty() {
                return Err(bad("the layout directory is empty"));
            }
            if tag.is_some() && digest.is_some() {
                return Err(bad("give either :TAG or @sha256: for a layout, not both"));
            }
            if let Some(t) = &tag {
                check_tag(t).map_err(|p| bad(&p))?;
            }
            Ok(ImageRef::Layout {
                dir: PathBuf::from(dir),
                tag,
                digest,
            })
        } else if let Some(rest) = input.strip_prefix("oci-archive:") {
            let (file, tag) = split_tag(rest);
            if file.is_empty() {
                return Err(bad("the archive file is empty"));
            }
            if let Some(t) = &tag {
                check_tag(t).map_err(|p| bad(&p))?;
            }
            Ok(ImageRef::Archive {
                file: PathBuf::from(file),
                tag,
            })
        } else if let Some(list) = input.strip_prefix(DEBIAN_PACKAGES_PREFIX) {
            if list.is_empty() {
                return Err(bad("the package list file is empty"));
            }
            Ok(ImageRef::DebianPackages {
                list: PathBuf::from(list),
            })
        } else {
            Err(bad(
                "expected a docker://, oci-layout:, oci-archive: or debian-packages: reference",
            ))
        }
    }
}

/// The parts of a `docker://` reference ([`ImageRef::registry_parts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryParts<'a> {
    pub registry: &'a str,
    pub repository: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

impl ImageRef {
    /// The registry, repository, tag and digest of a `docker://` reference; any other
    /// kind is refused with `problem`, which says why this use needs a registry.
    pub fn registry_parts(&self, problem: &str) -> Result<RegistryParts<'_>, OciError> {
        match self {
            ImageRef::Registry {
                registry,
                repository,
                tag,
                digest,
            } => Ok(RegistryParts {
                registry,
                repository,
                tag: tag.as_deref(),
                digest: digest.as_deref(),
            }),
            _ => Err(OciError::BadReference {
                input: self.to_string(),
                problem: problem.to_string(),
            }),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, name, tag, digest) = match self {
            ImageRef::Registry {
                registry,
                repository,
                tag,
                digest,
            } => ("docker://", format!("{registry}/{repository}"), tag, digest),
            ImageRef::Layout { dir, tag, digest } => {
                ("oci-layout:", dir.display().to_string(), tag, digest)
            }
            ImageRef::Archive { file, tag } => {
                ("oci-archive:", file.display().to_string(), tag, &None)
            }
            ImageRef::DebianPackages { list } => (
                DEBIAN_PACKAGES_PREFIX,
                list.display().to_string(),
                &None,
                &None,
            ),
        };
        write!(f, "{prefix}{name}")?;
        if let Some(t) = tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn split_digest<'a>(s: &'a str, input: &str) -> Result<(&'a str, Option<String>), OciError> {
    match s.rsplit_once('@') {
        Some((name, digest)) => {
            check_sha256(digest).map_err(|problem| OciError::BadReference {
                input: input.to_string(),
                problem,
            })?;
            Ok((name, Some(digest.to_string())))
        }
        None => Ok((s, None)),
    }
}

/// A tag is what follows the last `:` after the last `/` (so `host:5000/repo` has none).
fn split_tag(s: &str) -> (&str, Option<String>) {
    let last_slash = s.rfind('/').map_or(0, |i| i + 1);
    match s[last_slash..].rfind(':') {
        Some(i) => (
            &s[..last_slash + i],
            Some(s[last_slash + i + 1..].to_string()),
        ),
        None => (s, None),
    }
}

fn check_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag {tag:?} must be 1-128 of [A-Za-z0-9_.-], not starting with . or -"
        ))
    }
}

fn valid_component(c: &str) -> bool {
    !c.is_empty()
        && c.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_and_round_trips() {
        for s in [
            "docker://quay.io/centos/centos:stream9".to_string(),
            format!("docker://127.0.0.1:5000/lib/debian@{D}"),
            format!("docker://localhost:5000/debian:12@{D}"),
            "oci-layout:/var/cache/base:v1".to_string(),
            format!("oci-layout:./base@{D}"),
            "oci-layout:relative/dir".to_string(),
            "oci-archive:/tmp/img.tar:latest".to_string(),
            "oci-archive:img.tar".to_string(),
            "debian-packages:debian-node.packages".to_string(),
        ] {
            let r: ImageRef = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(r.to_string(), s);
        }
    }

    #[test]
    fn splits_registry_port_from_tag() {
        let r: ImageRef = "docker://localhost:5000/a/b:1.0".parse().unwrap();
        assert_eq!(
            r,
            ImageRef::Registry {
                registry: "localhost:5000".into(),
                repository: "a/b".into(),
                tag: Some("1.0".into()),
                digest: None
            }
        );
        let r: ImageRef = "oci-layout:/x:y/dir".parse().unwrap();
        assert_eq!(
            r,
            ImageRef::Layout {
                dir: "/x:y/dir".into(),
                tag: None,
                digest: None
            }
        );
    }

    #[test]
    fn docker_hub_names_are_normalised_as_docker_reads_them() {
        for (s, repository) in [
            ("docker://docker.io/alpine:3.20.3", "library/alpine"),
            ("docker://index.docker.io/alpine:3.20.3", "library/alpine"),
            ("docker://docker.io/library/alpine:3.20.3", "library/alpine"),
            ("docker://docker.io/prom/prometheus:v2", "prom/prometheus"),
        ] {
            let r: ImageRef = s.parse().unwrap();
            let ImageRef::Registry {
                registry,
                repository: repo,
                ..
            } = &r
            else {
                panic!("{s}: {r:?}")
            };
            assert_eq!(
                (registry.as_str(), repo.as_str()),
                ("docker.io", repository),
                "{s}"
            );
        }
        // Other registries' single-name repositories are left alone.
        let r: ImageRef = "docker://quay.io/alpine:3".parse().unwrap();
        assert_eq!(r.to_string(), "docker://quay.io/alpine:3");
    }

    #[test]
    fn docker_hub_is_reached_at_its_registry_api_host() {
        for name in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(api_host(name), "registry-1.docker.io", "{name}");
        }
        assert_eq!(api_host("quay.io"), "quay.io");
        assert_eq!(api_host("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn errors_name_the_bad_part() {
        for (s, part) in [
            ("docker://quay.io/centos", "needs a :TAG"),
            ("docker://quay.io/Centos:9", "\"Centos\""),
            ("docker://quay.io/c:-x", "\"-x\""),
            ("docker://quay.io/c@sha256:abc", "64"),
            ("docker://quay.io/c@md5:abc", "md5"),
            ("oci-layout:", "directory is empty"),
            ("http://x/y:1", "expected a docker://"),
        ] {
            let err = s.parse::<ImageRef>().unwrap_err().to_string();
            assert!(err.contains(part) && err.contains(s), "{s}: {err}");
        }
    }
}
