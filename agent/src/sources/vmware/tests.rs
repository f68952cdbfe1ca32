use std::collections::BTreeMap;
use std::io::Write;

use base64::Engine;

use super::ovf_env::tests::ovf_env;
use super::*;

const IGN: &str = r#"{"ignition":{"version":"3.3.0"}}"#;
const OTHER_IGN: &str = r#"{"ignition":{"version":"3.4.0"}}"#;

/// Guestinfo with the VMX's semantics: unset is None, keys case-insensitive.
#[derive(Default)]
struct FakeGuestInfo(BTreeMap<String, Vec<u8>>);

impl FakeGuestInfo {
    fn with(mut self, key: &str, value: impl AsRef<[u8]>) -> Self {
        self.0
            .insert(key.to_ascii_lowercase(), value.as_ref().to_vec());
        self
    }
}

impl GuestInfo for FakeGuestInfo {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.0.get(&key.to_ascii_lowercase()).cloned())
    }
}

struct BrokenGuestInfo;

impl GuestInfo for BrokenGuestInfo {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        Err(format!("reply too short (1 bytes) for {key}"))
    }
}

fn source(gi: FakeGuestInfo) -> VmwareSource {
    VmwareSource::new(Box::new(gi))
}

fn fetched(gi: FakeGuestInfo) -> Option<(String, String)> {
    source(gi)
        .fetch()
        .unwrap()
        .map(|f| (f.source, String::from_utf8(f.bytes).unwrap()))
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

#[test]
fn nothing_set_is_no_config() {
    assert_eq!(fetched(FakeGuestInfo::default()), None);
    assert_eq!(
        source(FakeGuestInfo::default()).read().unwrap(),
        VmwareData::default()
    );
    // An empty value is no config, as Ignition has it.
    assert_eq!(
        fetched(FakeGuestInfo::default().with(IGNITION_KEY, "")),
        None
    );
}

#[test]
fn ignition_data_in_every_encoding() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("", IGN.as_bytes().to_vec()),
        ("base64", b64(IGN.as_bytes()).into_bytes()),
        ("b64", b64(IGN.as_bytes()).into_bytes()),
        ("gzip", gzip(IGN.as_bytes())),
        ("gz", gzip(IGN.as_bytes())),
        ("gzip+base64", b64(&gzip(IGN.as_bytes())).into_bytes()),
        ("gz+base64", b64(&gzip(IGN.as_bytes())).into_bytes()),
        ("gzip+b64", b64(&gzip(IGN.as_bytes())).into_bytes()),
        ("gz+b64", b64(&gzip(IGN.as_bytes())).into_bytes()),
    ];
    for (enc, data) in cases {
        let gi = FakeGuestInfo::default()
            .with(IGNITION_KEY, &data)
            .with("guestinfo.ignition.config.data.encoding", enc);
        assert_eq!(
            fetched(gi),
            Some((format!("guestinfo:{IGNITION_KEY}"), IGN.to_string())),
            "{enc:?}"
        );
    }
}

#[test]
fn a_bad_encoding_or_bad_data_is_an_error_naming_the_key() {
    let gi = FakeGuestInfo::default()
        .with(IGNITION_KEY, IGN)
        .with("guestinfo.ignition.config.data.encoding", "base32");
    let err = source(gi).fetch().unwrap_err().to_string();
    assert!(
        err.starts_with(
            "guestinfo:guestinfo.ignition.config.data: unsupported encoding \"base32\""
        ),
        "{err}"
    );
    let gi = FakeGuestInfo::default()
        .with(IGNITION_KEY, "%%%")
        .with("guestinfo.ignition.config.data.encoding", "base64");
    let err = source(gi).fetch().unwrap_err().to_string();
    assert!(
        err.starts_with("guestinfo:guestinfo.ignition.config.data: invalid base64"),
        "{err}"
    );
    let err = VmwareSource::new(Box::new(BrokenGuestInfo))
        .fetch()
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "guestinfo.ovfEnv: reply too short (1 bytes) for guestinfo.ovfEnv"
    );
}

#[test]
fn cloud_init_userdata_and_metadata() {
    let userdata = "#cloud-config\nhostname: n1\n";
    let metadata = "instance-id: i-1\nlocal-hostname: n1\n";
    let gi = FakeGuestInfo::default()
        .with(USERDATA_KEY, b64(&gzip(userdata.as_bytes())))
        .with("guestinfo.userdata.encoding", "gzip+base64")
        .with(METADATA_KEY, b64(metadata.as_bytes()))
        .with("guestinfo.metadata.encoding", "base64");
    let data = source(gi).read().unwrap();
    assert_eq!(data.ignition, None);
    assert_eq!(data.userdata.as_ref().unwrap().bytes, userdata.as_bytes());
    assert_eq!(data.metadata.as_ref().unwrap().bytes, metadata.as_bytes());
    assert_eq!(
        data.metadata.unwrap().location,
        "guestinfo:guestinfo.metadata"
    );
    // Plain: right-trimmed as cloud-init trims every guestinfo value before decoding.
    let gi = FakeGuestInfo::default().with(USERDATA_KEY, userdata);
    assert_eq!(
        fetched(gi),
        Some((
            "guestinfo:guestinfo.userdata".into(),
            userdata.trim_end().into()
        ))
    );
}

#[test]
fn ignition_beats_userdata() {
    let gi = FakeGuestInfo::default()
        .with(USERDATA_KEY, "#cloud-config\n")
        .with(IGNITION_KEY, IGN);
    assert_eq!(fetched(gi).unwrap().1, IGN);
}

#[test]
fn ovf_environment_properties_are_the_fallback() {
    let env = ovf_env(&[
        (IGNITION_KEY, &b64(&gzip(IGN.as_bytes()))),
        ("guestinfo.ignition.config.data.encoding", "gz+b64"),
    ]);
    // vSphere sets guestinfo.ovfEnv; the key is looked up case-insensitively.
    let gi = FakeGuestInfo::default().with("guestinfo.ovfenv", &env);
    assert_eq!(
        fetched(gi),
        Some((format!("ovfenv:{IGNITION_KEY}"), IGN.to_string()))
    );
}

#[test]
fn a_direct_guestinfo_key_beats_the_ovf_property() {
    let env = ovf_env(&[
        (IGNITION_KEY, &b64(IGN.as_bytes())),
        ("guestinfo.ignition.config.data.encoding", "base64"),
    ]);
    // Data and encoding both set directly: the OVF pair is ignored.
    let gi = FakeGuestInfo::default()
        .with(OVF_ENV_KEY, &env)
        .with(IGNITION_KEY, OTHER_IGN)
        .with("guestinfo.ignition.config.data.encoding", "");
    assert_eq!(
        fetched(gi),
        Some((format!("guestinfo:{IGNITION_KEY}"), OTHER_IGN.to_string()))
    );
    // Only the data set directly: its encoding still falls back to the OVF property,
    // key by key, as Ignition resolves them.
    let gi = FakeGuestInfo::default()
        .with(OVF_ENV_KEY, &env)
        .with(IGNITION_KEY, b64(OTHER_IGN.as_bytes()));
    assert_eq!(fetched(gi).unwrap().1, OTHER_IGN);
    // A directly set empty value is set: it beats the property, and means no config.
    let gi = FakeGuestInfo::default()
        .with(OVF_ENV_KEY, &env)
        .with(IGNITION_KEY, "");
    assert_eq!(fetched(gi), None);
}

#[test]
fn a_malformed_ovf_environment_is_an_error() {
    let gi = FakeGuestInfo::default()
        .with(OVF_ENV_KEY, "<Environment><PropertySection>")
        .with(IGNITION_KEY, IGN);
    let err = source(gi).fetch().unwrap_err().to_string();
    assert!(err.starts_with("guestinfo.ovfEnv: invalid XML"), "{err}");
}

#[test]
fn dmi_decides_whether_the_backdoor_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let host = HostPaths::new(dir.path());
    assert!(!detected(&host));
    let err = VmwareSource::for_host(&host).err().unwrap().to_string();
    assert!(
        err.starts_with(
            "/sys/class/dmi/id/sys_vendor: platform vmware, but DMI sys_vendor is \"unreadable"
        ),
        "{err}"
    );
    std::fs::create_dir_all(host.join("/sys/class/dmi/id")).unwrap();
    std::fs::write(host.join(DMI_VENDOR_PATH), "QEMU\n").unwrap();
    let err = VmwareSource::for_host(&host).err().unwrap().to_string();
    assert!(
        err.contains("DMI sys_vendor is \"QEMU\", not \"VMware, Inc.\""),
        "{err}"
    );
    std::fs::write(host.join(DMI_VENDOR_PATH), "VMware, Inc.\n").unwrap();
    assert!(detected(&host));
    // Not the live host: the backdoor is never opened from a test.
    let err = VmwareSource::for_host(&host).err().unwrap().to_string();
    assert_eq!(
        err,
        "guestinfo: the VMware backdoor is only reachable from the live host"
    );
}

#[test]
fn node_labels_from_guestinfo_or_the_ovf_environment() {
    let f = source(
        FakeGuestInfo::default()
            .with(IGNITION_KEY, IGN)
            .with(LABELS_KEY, b64(b"example.com/rack=r7, zone=eu-1"))
            .with("guestinfo.harmony.labels.encoding", "base64"),
    )
    .fetch()
    .unwrap()
    .unwrap();
    assert_eq!(f.node_labels.origin, "guestinfo:guestinfo.harmony.labels");
    assert_eq!(
        f.node_labels.labels.into_iter().collect::<Vec<_>>(),
        [
            ("example.com/rack".to_string(), "r7".to_string()),
            ("zone".to_string(), "eu-1".to_string())
        ]
    );
    let none = source(FakeGuestInfo::default().with(IGNITION_KEY, IGN))
        .fetch()
        .unwrap()
        .unwrap();
    assert!(none.node_labels.labels.is_empty());
    let err = source(
        FakeGuestInfo::default()
            .with(IGNITION_KEY, IGN)
            .with(LABELS_KEY, "node-role.kubernetes.io/master="),
    )
    .fetch()
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with(
            "guestinfo:guestinfo.harmony.labels: label \"node-role.kubernetes.io/master\""
        ),
        "{err}"
    );
}

#[test]
fn the_ignition_url_is_fetched_when_no_inline_config_is_set() {
    struct Serving;
    impl ignition::Fetcher for Serving {
        fn fetch(&self, url: &str) -> Result<Vec<u8>, String> {
            assert_eq!(url, "http://10.0.0.5/node.ign");
            Ok(IGN.as_bytes().to_vec())
        }
    }
    let gi = FakeGuestInfo::default()
        .with(IGNITION_URL_KEY, " http://10.0.0.5/node.ign\n")
        .with(USERDATA_KEY, "#cloud-config\n");
    let src = source(gi).with_url_fetcher(Box::new(Serving), super::super::metal::Retry::default());
    let f = src.fetch().unwrap().unwrap();
    assert_eq!(f.source, "url:http://10.0.0.5/node.ign");
    assert_eq!(f.bytes, IGN.as_bytes());
    // Inline data wins over the URL.
    let gi = FakeGuestInfo::default()
        .with(IGNITION_KEY, OTHER_IGN)
        .with(IGNITION_URL_KEY, "http://10.0.0.5/node.ign");
    assert_eq!(
        fetched(gi),
        Some((format!("guestinfo:{IGNITION_KEY}"), OTHER_IGN.to_string()))
    );
}

#[test]
fn an_ignition_url_with_a_bad_scheme_names_the_key() {
    struct Never;
    impl ignition::Fetcher for Never {
        fn fetch(&self, _: &str) -> Result<Vec<u8>, String> {
            unreachable!("a refused scheme is never fetched")
        }
    }
    let gi = FakeGuestInfo::default().with(IGNITION_URL_KEY, "ftp://h/x.ign");
    let err = source(gi)
        .with_url_fetcher(Box::new(Never), super::super::metal::Retry::default())
        .fetch()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("guestinfo:guestinfo.ignition.config.url"),
        "{err}"
    );
    assert!(err.contains("unsupported scheme"), "{err}");
}

#[test]
fn hostname_overrides_the_meta_data_for_user_data() {
    let gi = FakeGuestInfo::default()
        .with(USERDATA_KEY, "#cloud-config\n")
        .with(
            METADATA_KEY,
            "instance-id: i-1\nlocal-hostname: from-meta\n",
        )
        .with(HOSTNAME_KEY, "node-7\n");
    let meta = source(gi).fetch().unwrap().unwrap().meta_data.unwrap();
    assert_eq!(meta.instance_id.as_deref(), Some("i-1"));
    assert_eq!(meta.local_hostname.as_deref(), Some("node-7"));
    let gi = FakeGuestInfo::default()
        .with(USERDATA_KEY, "#cloud-config\n")
        .with(METADATA_KEY, "local-hostname: from-meta\n");
    let meta = source(gi).fetch().unwrap().unwrap().meta_data.unwrap();
    assert_eq!(meta.local_hostname.as_deref(), Some("from-meta"));
}

#[test]
fn vendordata_comes_with_the_user_data_decoded() {
    let vendor = "#cloud-config\nntp: {servers: [ntp.vendor]}\n";
    let f = source(
        FakeGuestInfo::default()
            .with(USERDATA_KEY, "#cloud-config\n")
            .with(VENDORDATA_KEY, b64(&gzip(vendor.as_bytes())))
            .with("guestinfo.vendordata.encoding", "gz+b64"),
    )
    .fetch()
    .unwrap()
    .unwrap();
    assert_eq!(f.source, "guestinfo:guestinfo.userdata");
    assert_eq!(f.vendor_data.as_deref(), Some(vendor.as_bytes()));
}

#[test]
fn meta_data_alone_is_a_config_with_its_network_and_instance_id() {
    let metadata = "{\"local-hostname\": \"vm-7\", \"network\": {\"version\": 2, \"ethernets\": {\"ens192\": {\"dhcp4\": true}}}}";
    let f = source(
        FakeGuestInfo::default()
            .with(METADATA_KEY, b64(metadata.as_bytes()))
            // cloud-init's encoding values are right-trimmed too.
            .with("guestinfo.metadata.encoding", "base64 \n"),
    )
    .with_product_uuid("4231ABCD-1111-2222-3333-444455556666\n")
    .fetch()
    .unwrap()
    .unwrap();
    assert_eq!(f.source, "guestinfo:guestinfo.metadata");
    assert_eq!(f.bytes, EMPTY_CLOUD_CONFIG);
    let meta = f.meta_data.unwrap();
    assert_eq!(meta.local_hostname.as_deref(), Some("vm-7"));
    assert_eq!(
        meta.instance_id.as_deref(),
        Some("4231abcd-1111-2222-3333-444455556666")
    );
    assert_eq!(f.network_config.unwrap().version, 2);
    assert!(f.vendor_data.is_none());
    // The same, applied: the host name is written, from the empty cloud-config.
    let cfg = crate::config_format::node_config(&f.bytes, Some(&meta), &ignition::NoRemoteFetcher)
        .unwrap();
    assert!(cfg.files.iter().any(|f| f.path == "/etc/hostname"));
}

#[test]
fn vendordata_alone_is_a_config_too() {
    let f = source(FakeGuestInfo::default().with(VENDORDATA_KEY, "#cloud-config\n{}\n"))
        .fetch()
        .unwrap()
        .unwrap();
    assert_eq!(f.source, "guestinfo:guestinfo.vendordata");
    assert_eq!(f.bytes, EMPTY_CLOUD_CONFIG);
    assert!(f.meta_data.is_none());
}

#[test]
fn a_redacted_or_blank_cloud_init_key_is_unset() {
    // What cloud-init's `redact` leaves: `---`, and the encoding set to a blank.
    let gi = FakeGuestInfo::default()
        .with(USERDATA_KEY, "---\n")
        .with("guestinfo.userdata.encoding", " ")
        .with(METADATA_KEY, "  \n");
    assert_eq!(fetched(gi), None);
    // Ignition's keys keep Ignition's rules: a blank encoding is not one it knows.
    let gi = FakeGuestInfo::default()
        .with(IGNITION_KEY, IGN)
        .with("guestinfo.ignition.config.data.encoding", " ");
    assert!(source(gi).fetch().is_err());
}

#[test]
fn bad_meta_data_network_names_the_key() {
    let err = source(
        FakeGuestInfo::default()
            .with(USERDATA_KEY, "#cloud-config\n")
            .with(METADATA_KEY, "network: {version: 9}\n"),
    )
    .fetch()
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "guestinfo:guestinfo.metadata: network: version must be 1 or 2"
    );
}
