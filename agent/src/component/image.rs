//! A component's OCI image layout: index → manifest → config and layers, each blob
//! checked against its digest as it is read.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use super::described::Described;

pub struct Layer {
    pub digest: String,
    pub media_type: String,
}

/// What the image config says to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

pub struct ComponentImage {
    pub dir: PathBuf,
    pub manifest_digest: String,
    pub layers: Vec<Layer>,
    /// The image config's, with the catalog's command and environment applied.
    pub runtime: RuntimeConfig,
    /// From component.json (written by the builder): where config/ is mounted.
    pub config_mount: Option<String>,
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl ComponentImage {
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).context("index.json")?)
                .context("index.json")?;
        let Some(manifest_digest) = index["manifests"][0]["digest"].as_str() else {
            bail!("index.json names no manifest");
        };
        let manifest: serde_json::Value =
            serde_json::from_slice(&read_blob(dir, manifest_digest)?).context("the manifest")?;
        let Some(config_digest) = manifest["config"]["digest"].as_str() else {
            bail!("the manifest has no config");
        };
        let config: serde_json::Value =
            serde_json::from_slice(&read_blob(dir, config_digest)?).context("the image config")?;
        let c = &config["config"];
        let runtime = RuntimeConfig {
            entrypoint: strings(&c["Entrypoint"]),
            cmd: strings(&c["Cmd"]),
            env: strings(&c["Env"]),
            working_dir: c["WorkingDir"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
            user: c["User"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string),
        };
        let layers = manifest["layers"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|l| Layer {
                        digest: l["digest"].as_str().unwrap_or_default().to_string(),
                        media_type: l["mediaType"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        let described = Described::read(dir)?;
        Ok(ComponentImage {
            dir: dir.to_path_buf(),
            manifest_digest: manifest_digest.to_string(),
            layers,
            runtime: runtime.with_catalog(&described),
            config_mount: described.config_mount,
        })
    }

    /// The layer's tar stream, after its blob's digest was checked.
    pub fn open_layer(&self, layer: &Layer) -> anyhow::Result<Box<dyn Read>> {
        let bytes = read_blob(&self.dir, &layer.digest)?;
        let cursor = std::io::Cursor::new(bytes);
        let m = &layer.media_type;
        Ok(if m.ends_with("+gzip") || m.ends_with(".tar.gzip") {
            Box::new(flate2::read::GzDecoder::new(cursor))
        } else if m.ends_with("+zstd") {
            Box::new(zstd::stream::read::Decoder::new(cursor)?)
        } else if m.ends_with(".tar") || m.ends_with("layer.v1.tar") {
            Box::new(cursor)
        } else {
            bail!("layer {}: unsupported media type {m}", layer.digest)
        })
    }
}

fn read_blob(dir: &Path, digest: &str) -> anyhow::Result<Vec<u8>> {
    let Some(hex_part) = digest.strip_prefix("sha256:") else {
        bail!("digest {digest:?} is not sha256:HEX");
    };
    if hex_part.len() != 64 || !hex_part.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!("digest {digest:?} is not sha256:HEX");
    }
    let path = dir.join("blobs/sha256").join(hex_part);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    if hex::encode(Sha256::digest(&bytes)) != hex_part {
        bail!("{} does not match its digest {digest}", path.display());
    }
    Ok(bytes)
}

impl RuntimeConfig {
    /// The catalog's command replaces Entrypoint and Cmd (so the process reads the
    /// rendered config, not its image's defaults); its variables and user override the
    /// image's.
    pub fn with_catalog(mut self, described: &Described) -> Self {
        if described.user.is_some() {
            self.user = described.user.clone();
        }
        if !described.command.is_empty() {
            self.entrypoint = described.command.clone();
            self.cmd.clear();
        }
        for (name, value) in &described.env {
            self.env
                .retain(|e| e.split_once('=').map(|(k, _)| k) != Some(name.as_str()));
            self.env.push(format!("{name}={value}"));
        }
        self
    }

    pub fn argv(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }

    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.env
            .iter()
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// `User` as uid[:gid], numeric or names from the image's /etc/passwd and /etc/group.
    pub fn user_ids(&self, rootfs: &Path) -> anyhow::Result<(u32, u32)> {
        let Some(user) = &self.user else {
            return Ok((0, 0));
        };
        let (u, g) = match user.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (user.as_str(), None),
        };
        let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap_or_default();
        let entry = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() > 3 && (f[0] == u || f[2] == u));
        let uid = match (u.parse::<u32>(), &entry) {
            (Ok(n), _) => n,
            (Err(_), Some(f)) => f[2].parse()?,
            (Err(_), None) => bail!("user `{u}` is not in the image's /etc/passwd"),
        };
        let gid = match g {
            Some(g) => match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => {
                    let group =
                        std::fs::read_to_string(rootfs.join("etc/group")).unwrap_or_default();
                    group
                        .lines()
                        .map(|l| l.split(':').collect::<Vec<_>>())
                        .find(|f| f.len() > 2 && f[0] == g)
                        .and_then(|f| f[2].parse().ok())
                        .ok_or_else(|| {
                            anyhow::anyhow!("group `{g}` is not in the image's /etc/group")
                        })?
                }
            },
            None => entry.and_then(|f| f[3].parse().ok()).unwrap_or(uid),
        };
        Ok((uid, gid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image_config() -> RuntimeConfig {
        RuntimeConfig {
            entrypoint: vec!["docker-entrypoint.sh".into()],
            cmd: vec!["redis-server".into()],
            env: vec!["PATH=/usr/local/bin:/usr/bin".into(), "GOSU=1".into()],
            ..Default::default()
        }
    }

    #[test]
    fn the_catalog_command_replaces_entrypoint_and_cmd_and_its_env_wins() {
        let described: Described = serde_json::from_str(
            r#"{"config_mount": "/usr/local/etc/redis",
                "command": ["redis-server", "/usr/local/etc/redis/redis.conf"],
                "env": {"GOSU": "0", "ES_PATH_CONF": "/c"}, "user": "999:999"}"#,
        )
        .unwrap();
        let rt = image_config().with_catalog(&described);
        assert_eq!(
            rt.argv(),
            ["redis-server", "/usr/local/etc/redis/redis.conf"]
        );
        assert_eq!(
            rt.env,
            ["PATH=/usr/local/bin:/usr/bin", "ES_PATH_CONF=/c", "GOSU=0"]
        );
        assert_eq!(rt.user.as_deref(), Some("999:999"));
    }

    #[test]
    fn without_a_catalog_command_the_image_config_runs() {
        let rt = image_config().with_catalog(&Described::default());
        assert_eq!(rt, image_config());
    }

    #[test]
    fn a_broken_component_json_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Described::read(dir.path()).unwrap(), Described::default());
        std::fs::write(
            dir.path().join("component.json"),
            br#"{"command": "redis"}"#,
        )
        .unwrap();
        let e = format!("{:#}", Described::read(dir.path()).unwrap_err());
        assert!(e.contains("component.json") && e.contains("command"), "{e}");
    }
}
