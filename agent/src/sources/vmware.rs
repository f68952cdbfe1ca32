//! VMware (vSphere, ESXi, Workstation): the config is in guestinfo, read through the
//! backdoor RPC (no open-vm-tools), with Ignition's keys and rules:
//!
//! - `guestinfo.ignition.config.data` + `.encoding` (see [`encoding`]);
//! - `guestinfo.ignition.config.url` when no inline config is set: fetched (http, https,
//!   tftp) with the metal source's retries;
//! - cloud-init's datasource (DataSourceVMware, 22.4), read when no Ignition config is
//!   set: `guestinfo.userdata`, `guestinfo.vendordata` and `guestinfo.metadata` (+
//!   `.encoding`) with cloud-init's rules: a value is right-trimmed, and empty or `---`
//!   (what cloud-init's `redact` leaves) is unset. Meta-data alone (a host name, a
//!   network) is a config too, as for cloud-init; see [`metadata`]. `guestinfo.hostname`
//!   overrides the meta-data's local-hostname (an Ignition config names its own
//!   /etc/hostname);
//! - the OVF environment (`guestinfo.ovfEnv`) of an OVA deployed with vApp properties:
//!   a property of the same name is the fallback for each key, so a guestinfo key set
//!   directly on the VM beats the OVF property (data and encoding each on their own,
//!   as Ignition resolves them).
//!
//! - `guestinfo.harmony.labels` (Harmony's own): node labels `k=v,k2=v2` for kubelet,
//!   merged with `harmony.node.labels` (the same key with another value is an error).
//!   cloud-init's `guestinfo.metadata` is not mined for labels: its keys are instance
//!   data, not labels, and a label must be asked for.
//!
//! An empty value is no config, as for Ignition. Unlike Ignition, which logs a warning and
//! goes on, a malformed OVF environment is an error: it is the operator's input.

mod encoding;
mod guestinfo;
pub mod metadata;
// Public for the fuzz target ovf_env (fuzz/): the hypervisor's XML is outside the agent's trust.
#[doc(hidden)]
pub mod ovf_env;

use std::collections::BTreeMap;

pub use guestinfo::{Backdoor, GuestInfo};

use super::metal::{fetch_with_retry, single_try_fetcher, Retry};
use super::{ConfigSource, FetchedConfig, HostPaths, SourceError};
use crate::backoff::WallClock;

/// What `/sys/class/dmi/id/sys_vendor` says on every VMware hypervisor.
pub const DMI_VENDOR: &str = "VMware, Inc.";
const DMI_VENDOR_PATH: &str = "/sys/class/dmi/id/sys_vendor";

pub const IGNITION_KEY: &str = "guestinfo.ignition.config.data";
pub const USERDATA_KEY: &str = "guestinfo.userdata";
pub const METADATA_KEY: &str = "guestinfo.metadata";
pub const VENDORDATA_KEY: &str = "guestinfo.vendordata";
/// What cloud-init's `redact` writes over a key: a value that means unset.
const REDACTED: &str = "---";
/// cloud-init's instance-id when the meta-data has none.
const DMI_PRODUCT_UUID_PATH: &str = "/sys/class/dmi/id/product_uuid";
pub const OVF_ENV_KEY: &str = "guestinfo.ovfEnv";
/// Node labels for kubelet, `key=value,key2=value2` (+ `.encoding`), beside the config:
/// the vSphere admin's labels (rack, zone, host) without editing the node's config.
pub const LABELS_KEY: &str = "guestinfo.harmony.labels";
/// Where to fetch the Ignition config from when it is not given inline.
pub const IGNITION_URL_KEY: &str = "guestinfo.ignition.config.url";
/// The node's host name for cloud-init user-data: overrides meta-data's local-hostname.
pub const HOSTNAME_KEY: &str = "guestinfo.hostname";

/// DMI says this machine is a VMware VM.
pub fn detected(host: &HostPaths) -> bool {
    std::fs::read_to_string(host.join(DMI_VENDOR_PATH)).is_ok_and(|v| v.trim() == DMI_VENDOR)
}

/// One decoded value and where it came from (`guestinfo:KEY` or `ovfenv:KEY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub location: String,
    pub bytes: Vec<u8>,
}

/// Everything the platform holds for this node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VmwareData {
    pub ignition: Option<Value>,
    pub userdata: Option<Value>,
    pub vendordata: Option<Value>,
    /// cloud-init's instance metadata (instance-id, local-hostname, network).
    pub metadata: Option<Value>,
    /// [`LABELS_KEY`].
    pub labels: Option<Value>,
    pub ignition_url: Option<Value>,
    pub hostname: Option<Value>,
}

pub struct VmwareSource {
    guestinfo: Box<dyn GuestInfo>,
    /// For [`IGNITION_URL_KEY`]; without one such a key is an error.
    url_fetcher: Option<(Box<dyn ignition::Fetcher>, Retry)>,
    /// DMI's product UUID: cloud-init's instance-id when the meta-data has none.
    product_uuid: Option<String>,
}

impl VmwareSource {
    pub fn new(guestinfo: Box<dyn GuestInfo>) -> VmwareSource {
        VmwareSource {
            guestinfo,
            url_fetcher: None,
            product_uuid: None,
        }
    }

    pub fn with_product_uuid(mut self, uuid: impl Into<String>) -> Self {
        self.product_uuid = Some(uuid.into());
        self
    }

    pub fn with_url_fetcher(mut self, fetcher: Box<dyn ignition::Fetcher>, retry: Retry) -> Self {
        self.url_fetcher = Some((fetcher, retry));
        self
    }

    /// The backdoor is touched only when DMI says VMware: on other hardware its I/O port
    /// is not there and reading it would fault.
    pub fn for_host(host: &HostPaths) -> Result<VmwareSource, SourceError> {
        if !detected(host) {
            let vendor = std::fs::read_to_string(host.join(DMI_VENDOR_PATH))
                .map(|v| v.trim().to_string())
                .unwrap_or_else(|e| format!("unreadable ({e})"));
            return Err(unreadable(
                DMI_VENDOR_PATH,
                format!("platform vmware, but DMI sys_vendor is {vendor:?}, not {DMI_VENDOR:?}"),
            ));
        }
        if !host.is_live() {
            return Err(unreadable(
                "guestinfo",
                "the VMware backdoor is only reachable from the live host",
            ));
        }
        let backdoor = Backdoor::open().map_err(|e| unreadable("guestinfo", e))?;
        let mut source = VmwareSource::new(Box::new(backdoor))
            .with_url_fetcher(Box::new(single_try_fetcher(host)), Retry::default());
        if let Ok(uuid) = std::fs::read_to_string(host.join(DMI_PRODUCT_UUID_PATH)) {
            source = source.with_product_uuid(uuid);
        }
        Ok(source)
    }

    pub fn read(&self) -> Result<VmwareData, SourceError> {
        let gi = self.guestinfo.as_ref();
        let ovf = match get(gi, OVF_ENV_KEY)? {
            Some(xml) if !xml.is_empty() => {
                let xml = String::from_utf8(xml)
                    .map_err(|_| unreadable(OVF_ENV_KEY, "not UTF-8 text"))?;
                ovf_env::properties(&xml).map_err(|e| unreadable(OVF_ENV_KEY, e))?
            }
            _ => BTreeMap::new(),
        };
        Ok(VmwareData {
            ignition: value(gi, &ovf, IGNITION_KEY, Rules::Ignition)?,
            userdata: value(gi, &ovf, USERDATA_KEY, Rules::CloudInit)?,
            vendordata: value(gi, &ovf, VENDORDATA_KEY, Rules::CloudInit)?,
            metadata: value(gi, &ovf, METADATA_KEY, Rules::CloudInit)?,
            labels: value(gi, &ovf, LABELS_KEY, Rules::Ignition)?,
            ignition_url: value(gi, &ovf, IGNITION_URL_KEY, Rules::Ignition)?,
            hostname: value(gi, &ovf, HOSTNAME_KEY, Rules::Ignition)?,
        })
    }
}

impl ConfigSource for VmwareSource {
    /// Ignition's config if there is one (inline, else from its URL), else cloud-init's
    /// user-data with the meta-data and host name that came with it.
    fn fetch(&self) -> Result<Option<FetchedConfig>, SourceError> {
        let data = self.read()?;
        let node_labels = match data.labels {
            Some(v) => {
                let labels = ignition::node_settings::parse_label_list(&text(&v)?)
                    .map_err(|e| unreadable(&v.location, e))?;
                crate::node_role::PlatformLabels {
                    origin: v.location,
                    labels,
                }
            }
            None => Default::default(),
        };
        if let Some(v) = data.ignition {
            return Ok(Some(FetchedConfig {
                source: v.location,
                bytes: v.bytes,
                meta_data: None,
                node_labels,
                ..Default::default()
            }));
        }
        if let Some(v) = data.ignition_url {
            let url = text(&v)?.trim().to_string();
            let Some((fetcher, retry)) = &self.url_fetcher else {
                return Err(unreadable(
                    &v.location,
                    "no network fetcher to read the URL with",
                ));
            };
            let clock = WallClock::start();
            let bytes = fetch_with_retry(fetcher.as_ref(), &v.location, &url, *retry, &clock)?;
            return Ok(Some(FetchedConfig {
                source: format!("url:{url}"),
                bytes,
                meta_data: None,
                node_labels,
                ..Default::default()
            }));
        }
        // cloud-init's datasource is there when any of its three keys is.
        let Some(first) = [&data.userdata, &data.metadata, &data.vendordata]
            .into_iter()
            .flatten()
            .next()
            .map(|v| v.location.clone())
        else {
            return Ok(None);
        };
        let mut md = match &data.metadata {
            Some(m) => metadata::parse(&m.bytes, &m.location, self.product_uuid.as_deref())
                .map_err(|e| unreadable(&m.location, e))?,
            None => metadata::VmwareMetaData::default(),
        };
        if let Some(h) = &data.hostname {
            md.meta.local_hostname = Some(text(h)?.trim().to_string());
        }
        // No user-data: what the meta-data and vendor-data give is applied over an empty
        // cloud-config, as cloud-init applies it.
        let (source, bytes) = match data.userdata {
            Some(v) => (v.location, v.bytes),
            None => (first, EMPTY_CLOUD_CONFIG.to_vec()),
        };
        Ok(Some(FetchedConfig {
            source,
            bytes,
            meta_data: (data.metadata.is_some() || data.hostname.is_some()).then_some(md.meta),
            node_labels,
            network_config: md.network,
            vendor_data: data.vendordata.map(|v| v.bytes),
            warnings: md.warnings,
        }))
    }
}

/// The user-data of a datasource that has meta-data or vendor-data but no user-data.
pub const EMPTY_CLOUD_CONFIG: &[u8] = b"#cloud-config\n";

fn text(v: &Value) -> Result<String, SourceError> {
    String::from_utf8(v.bytes.clone()).map_err(|_| unreadable(&v.location, "not UTF-8 text"))
}

fn unreadable(location: &str, problem: impl Into<String>) -> SourceError {
    SourceError::Unreadable {
        location: location.to_string(),
        problem: problem.into(),
    }
}

fn get(gi: &dyn GuestInfo, key: &str) -> Result<Option<Vec<u8>>, SourceError> {
    gi.get(key).map_err(|e| unreadable(key, e))
}

/// Whose rules a key is read with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rules {
    /// Ignition's: the value as set; only empty is unset.
    Ignition,
    /// cloud-init's (`get_none_if_empty_val`): value and encoding right-trimmed, and a
    /// value that is then empty or `---` is unset.
    CloudInit,
}

/// `key` and `key.encoding`, each from guestinfo if set there, else from the OVF
/// environment; decoded. Empty (after decoding) is no value.
fn value(
    gi: &dyn GuestInfo,
    ovf: &BTreeMap<String, String>,
    key: &str,
    rules: Rules,
) -> Result<Option<Value>, SourceError> {
    let enc_key = format!("{key}.encoding");
    let (data, location) = match get(gi, key)? {
        Some(d) => (d, format!("guestinfo:{key}")),
        None => match ovf.get(key) {
            Some(d) => (d.clone().into_bytes(), format!("ovfenv:{key}")),
            None => return Ok(None),
        },
    };
    let encoding = match get(gi, &enc_key)? {
        Some(e) => String::from_utf8(e).map_err(|_| unreadable(&enc_key, "not UTF-8 text"))?,
        None => ovf.get(&enc_key).cloned().unwrap_or_default(),
    };
    let (data, encoding) = match rules {
        Rules::Ignition => (data, encoding),
        Rules::CloudInit => {
            let data = data.trim_ascii_end();
            if data == REDACTED.as_bytes() {
                return Ok(None);
            }
            (data.to_vec(), encoding.trim_end().to_string())
        }
    };
    let bytes = encoding::decode(&data, &encoding).map_err(|e| unreadable(&location, e))?;
    Ok((!bytes.is_empty()).then_some(Value { location, bytes }))
}

#[cfg(test)]
mod tests;
