//! cloud-init's NoCloud: a vfat or iso9660 volume labelled `cidata`/`CIDATA`, found by
//! reading the block devices in /sys/class/block and their superblocks (no mount, so
//! it works before udev and without the vfat/iso9660 modules), or a seed named on the
//! kernel command line: `ds=nocloud;s=/path/` (a local directory) or
//! `ds=nocloud-net;s=http://host/path/` (also `ds=nocloud;s=http…`). A seed holds
//! `user-data` and `meta-data` (both required, as cloud-init requires them) and an
//! optional `network-config`, which is parsed and reported as not applied.

// Public for the fuzz targets (fuzz/): the volume is outside the agent's trust.
#[doc(hidden)]
pub mod fat;
#[doc(hidden)]
pub mod iso9660;

use std::path::PathBuf;

use ignition::cloud_config::MetaData;
use ignition::limits::MAX_DOCUMENT_BYTES;

use super::{ConfigSource, FetchedConfig, HostPaths, KernelCmdline, SourceError};

pub const PLATFORM: &str = "nocloud";

/// The files a seed may hold; no other is read.
pub const SEED_FILES: [&str; 3] = ["user-data", "meta-data", "network-config"];

/// A NoCloud seed as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// `cidata:/dev/vdb (vfat)`, `nocloud:/srv/seed/`, `nocloud-net:http://…/`.
    pub location: String,
    pub user_data: Vec<u8>,
    pub meta_data: MetaData,
    pub network_config: Option<NetworkConfig>,
}

pub use super::network_config::NetworkConfig;

pub struct NoCloudSource {
    host: HostPaths,
    fetcher: Box<dyn ignition::Fetcher>,
}

impl NoCloudSource {
    /// `fetcher` serves `s=http://…` seeds.
    pub fn new(host: &HostPaths, fetcher: Box<dyn ignition::Fetcher>) -> NoCloudSource {
        NoCloudSource {
            host: host.clone(),
            fetcher,
        }
    }

    /// The seed the kernel command line names, else the first cidata volume.
    pub fn seed(&self) -> Result<Option<Seed>, SourceError> {
        let cmdline = read_cmdline(&self.host)?;
        let ds = cmdline.value("ds").map(DsParam::parse);
        let mut seed = match ds.as_ref().and_then(|d| d.seed_from.clone()) {
            Some(from) => {
                Some(self.seed_from(&from, ds.as_ref().map_or("nocloud", |d| d.name.as_str()))?)
            }
            None => self.cidata_volume()?,
        };
        // ds=nocloud;h=NAME;i=ID override meta-data, as cloud-init's parse_cmdline_data does.
        if let (Some(s), Some(d)) = (seed.as_mut(), ds) {
            if d.local_hostname.is_some() {
                s.meta_data.local_hostname = d.local_hostname;
            }
            if d.instance_id.is_some() {
                s.meta_data.instance_id = d.instance_id;
            }
        }
        Ok(seed)
    }

    fn seed_from(&self, from: &str, ds_name: &str) -> Result<Seed, SourceError> {
        let location = format!("{ds_name}:{from}");
        let base = if from.ends_with('/') {
            from.to_string()
        } else {
            format!("{from}/")
        };
        let get = |name: &str| -> Result<Option<Vec<u8>>, SourceError> {
            if base.starts_with("http://") || base.starts_with("https://") {
                self.fetcher
                    .fetch_at_most(&format!("{base}{name}"), &[], MAX_DOCUMENT_BYTES)
                    .map(Some)
                    .map_err(|problem| unreadable(&format!("{base}{name}"), problem))
            } else if base.starts_with('/') {
                let p = self.host.join(&format!("{base}{name}"));
                match std::fs::read(&p) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(err) => Err(SourceError::Io { path: p, err }),
                }
            } else {
                Err(unreadable(
                    &location,
                    "s= must be an absolute path or an http(s) URL".to_string(),
                ))
            }
        };
        let files: Vec<(String, Vec<u8>)> = SEED_FILES
            .into_iter()
            .filter_map(|n| get(n).transpose().map(|r| r.map(|b| (n.to_string(), b))))
            .collect::<Result<_, _>>()?;
        seed_of(location, files)
    }

    /// Every block device in sysfs (disks and partitions, sorted by name), probed for an
    /// iso9660 or vfat file system labelled cidata.
    fn cidata_volume(&self) -> Result<Option<Seed>, SourceError> {
        let sys = self.host.join("/sys/class/block");
        let mut names: Vec<String> = match std::fs::read_dir(&sys) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(SourceError::Io { path: sys, err }),
        };
        names.sort();
        for name in names {
            // An unbound loop device or an empty drive has size 0 and fails every read.
            let size = std::fs::read_to_string(sys.join(&name).join("size"));
            if size.is_ok_and(|s| s.trim() == "0") {
                continue;
            }
            let dev = self.host.join(&format!("/dev/{name}"));
            // A device that cannot be opened (a missing node, an empty CD drive) holds no seed.
            let Ok(file) = std::fs::File::open(&dev) else {
                continue;
            };
            if let Some(seed) = read_volume(file, &format!("/dev/{name}"))? {
                return Ok(Some(seed));
            }
        }
        Ok(None)
    }
}

impl ConfigSource for NoCloudSource {
    /// The config is the seed's user-data, with its meta-data. The report names the
    /// datasource: `nocloud:/dev/vdb (vfat)`, `nocloud:/seed/`, `nocloud-net:http://…/`.
    fn fetch(&self) -> Result<Option<FetchedConfig>, SourceError> {
        Ok(self.seed()?.map(|s| FetchedConfig {
            node_labels: Default::default(),
            source: match s.location.strip_prefix("cidata:") {
                Some(volume) => format!("{PLATFORM}:{volume}"),
                None => s.location,
            },
            bytes: s.user_data,
            meta_data: Some(s.meta_data),
            network_config: s.network_config,
            ..Default::default()
        }))
    }
}

/// Whether this host looks like NoCloud: `ds=nocloud…` on the command line, or a
/// cidata volume among its block devices.
pub fn detect(host: &HostPaths) -> Result<bool, SourceError> {
    if read_cmdline(host)?
        .value("ds")
        .is_some_and(|v| DsParam::parse(v).name.starts_with("nocloud"))
    {
        return Ok(true);
    }
    let probe = NoCloudSource::new(host, Box::new(ignition::NoRemoteFetcher));
    Ok(probe.cidata_volume()?.is_some())
}

/// Read a seed from one device (or image file): `Ok(None)` when it is not a cidata
/// volume, an error when it is one but its seed is unusable.
pub fn read_volume<R: std::io::Read + std::io::Seek>(
    mut dev: R,
    name: &str,
) -> Result<Option<Seed>, SourceError> {
    let io = |err: std::io::Error| SourceError::Io {
        path: PathBuf::from(name),
        err,
    };
    if let Some(label) = iso9660::probe(&mut dev).map_err(io)? {
        if !label.eq_ignore_ascii_case("cidata") {
            return Ok(None);
        }
        let files = iso9660::root_files(&mut dev).map_err(io)?;
        return seed_of(format!("cidata:{name} (iso9660)"), files).map(Some);
    }
    dev.seek(std::io::SeekFrom::Start(0)).map_err(io)?;
    let Some(mut volume) = fat::open(dev).map_err(io)? else {
        return Ok(None);
    };
    if !volume.label().map_err(io)?.eq_ignore_ascii_case("cidata") {
        return Ok(None);
    }
    let files = volume.root_files(&SEED_FILES).map_err(io)?;
    seed_of(format!("cidata:{name} (vfat)"), files).map(Some)
}

fn seed_of(location: String, files: Vec<(String, Vec<u8>)>) -> Result<Seed, SourceError> {
    let take = |n: &str| files.iter().find(|(f, _)| f == n).map(|(_, b)| b.clone());
    let need = |n: &str| {
        take(n).ok_or_else(|| {
            let found: Vec<&str> = files.iter().map(|(f, _)| f.as_str()).collect();
            unreadable(
                &location,
                format!("no {n} in the seed (it holds: {})", found.join(", ")),
            )
        })
    };
    let user_data = need("user-data")?;
    let meta_data =
        MetaData::parse(&need("meta-data")?).map_err(|e| unreadable(&location, e.to_string()))?;
    let network_config = take("network-config")
        .map(|b| {
            NetworkConfig::parse(&b)
                .map_err(|p| unreadable(&location, format!("network-config: {p}")))
        })
        .transpose()?;
    Ok(Seed {
        location,
        user_data,
        meta_data,
        network_config,
    })
}

fn unreadable(location: &str, problem: String) -> SourceError {
    SourceError::Unreadable {
        location: location.to_string(),
        problem,
    }
}

fn read_cmdline(host: &HostPaths) -> Result<KernelCmdline, SourceError> {
    let path = host.join("/proc/cmdline");
    match std::fs::read_to_string(&path) {
        Ok(s) => Ok(KernelCmdline::parse(&s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KernelCmdline::parse("")),
        Err(err) => Err(SourceError::Io { path, err }),
    }
}

/// `ds=nocloud;s=…;h=…;i=…` (also the long keys seedfrom, local-hostname, instance-id).
struct DsParam {
    name: String,
    seed_from: Option<String>,
    local_hostname: Option<String>,
    instance_id: Option<String>,
}

impl DsParam {
    fn parse(v: &str) -> DsParam {
        let mut it = v.split(';');
        let mut d = DsParam {
            name: it.next().unwrap_or("").to_string(),
            seed_from: None,
            local_hostname: None,
            instance_id: None,
        };
        for kv in it {
            let (k, val) = kv.split_once('=').unwrap_or((kv, ""));
            let val = Some(val.to_string());
            match k {
                "s" | "seedfrom" => d.seed_from = val,
                "h" | "local-hostname" => d.local_hostname = val,
                "i" | "instance-id" => d.instance_id = val,
                _ => {}
            }
        }
        d
    }
}

#[cfg(test)]
mod tests;
