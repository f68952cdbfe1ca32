//! Any bytes → cloud-init user-data (gzip, MIME, #cloud-config, scripts) and meta-data:
//! never a panic, only a NodeConfig or an error.
#![no_main]

use ignition::cloud_config::{self, MetaData};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let meta = MetaData::parse(data).unwrap_or_default();
    let _outcome = cloud_config::node_config(data, &meta);
    let _detected = cloud_config::is_user_data(data);
});
