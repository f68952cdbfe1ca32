//! Whether vendor-data is consumed, as cloud-init 22.4 decides it (`stages.py`,
//! `_consume_vendordata`): the built-in default is `vendor_data: {enabled: true}`; the
//! user-data's `vendor_data` mapping may turn it off; anything but a mapping turns it off.

use serde_yaml_ng::{Mapping, Value};

use crate::ConfigWarning;

pub const KEY: &str = "vendor_data";

/// `user` is the user-data's merged cloud-config.
pub fn enabled(user: &Mapping, warnings: &mut Vec<ConfigWarning>) -> bool {
    let Some(v) = user.get(KEY) else {
        return true;
    };
    let Value::Mapping(m) = v else {
        warnings.push(ConfigWarning::new(
            KEY,
            "not a mapping: vendor-data is not consumed (as cloud-init resets it to {enabled: false})",
        ));
        return false;
    };
    if m.get("disabled_handlers").is_some() {
        warnings.push(ConfigWarning::new(
            format!("{KEY}.disabled_handlers"),
            "not supported by harmony-agent: ignored (vendor-data is consumed whole or not at all)",
        ));
    }
    match m.get("enabled") {
        None => true,
        Some(e) => is_true(e),
    }
}

/// cloud-init's `util.is_true`: a boolean, or one of true/1/on/yes in any case.
fn is_true(v: &Value) -> bool {
    let s = match v {
        Value::Bool(b) => return *b,
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return false,
    };
    ["true", "1", "on", "yes"].contains(&s.trim().to_ascii_lowercase().as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> Mapping {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn on_unless_the_user_data_turns_it_off() {
        let mut w = Vec::new();
        assert!(enabled(&cfg("runcmd: []"), &mut w));
        assert!(enabled(&cfg("vendor_data: {}"), &mut w));
        assert!(enabled(&cfg("vendor_data: {enabled: 'yes'}"), &mut w));
        assert!(!enabled(&cfg("vendor_data: {enabled: false}"), &mut w));
        assert!(!enabled(&cfg("vendor_data: {enabled: 'off'}"), &mut w));
        assert!(w.is_empty());
        assert!(!enabled(&cfg("vendor_data: false"), &mut w));
        assert_eq!(w[0].path, "vendor_data");
    }
}
