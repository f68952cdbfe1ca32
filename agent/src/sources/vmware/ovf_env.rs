//! The OVF environment vSphere hands a VM deployed from an OVA with vApp properties
//! (`guestinfo.ovfEnv`): an XML document whose `PropertySection` holds
//! `<Property oe:key="…" oe:value="…"/>`. Like Ignition's reader, elements and attributes
//! are matched by local name, and a key given twice keeps its last value.

use std::collections::BTreeMap;

pub fn properties(xml: &str) -> Result<BTreeMap<String, String>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| format!("invalid XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "Environment" {
        return Err(format!(
            "root element is <{}>, not an OVF <Environment>",
            root.tag_name().name()
        ));
    }
    let attr = |node: roxmltree::Node, name: &str| {
        node.attributes()
            .find(|a| a.name() == name)
            .map(|a| a.value().to_string())
    };
    let mut props = BTreeMap::new();
    for section in root
        .children()
        .filter(|n| n.tag_name().name() == "PropertySection")
    {
        for prop in section
            .children()
            .filter(|n| n.tag_name().name() == "Property")
        {
            let key =
                attr(prop, "key").ok_or_else(|| "a <Property> has no key attribute".to_string())?;
            props.insert(key, attr(prop, "value").unwrap_or_default());
        }
    }
    Ok(props)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The shape vCenter 7 writes (namespaces, platform and adapter sections included).
    pub fn ovf_env(props: &[(&str, &str)]) -> String {
        let props: String = props
            .iter()
            .map(|(k, v)| format!("         <Property oe:key=\"{k}\" oe:value=\"{v}\"/>\n"))
            .collect();
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<Environment
     xmlns="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
     xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:ve="http://www.vmware.com/schema/ovfenv"
     oe:id=""
     ve:vCenterId="vm-1042">
   <PlatformSection>
      <Kind>VMware ESXi</Kind>
      <Version>7.0.3</Version>
      <Vendor>VMware, Inc.</Vendor>
      <Locale>en</Locale>
   </PlatformSection>
   <PropertySection>
{props}   </PropertySection>
   <ve:EthernetAdapterSection>
      <ve:Adapter ve:mac="00:50:56:a1:b2:c3" ve:network="VM Network" ve:unitNumber="7"/>
   </ve:EthernetAdapterSection>
</Environment>
"#
        )
    }

    #[test]
    fn reads_vapp_properties() {
        let xml = ovf_env(&[
            ("guestinfo.ignition.config.data", "eyJpZ25pdGlvbiI6e319"),
            ("guestinfo.ignition.config.data.encoding", "base64"),
            ("guestinfo.hostname", "node-1 &amp; co"),
        ]);
        let p = properties(&xml).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p["guestinfo.ignition.config.data"], "eyJpZ25pdGlvbiI6e319");
        assert_eq!(p["guestinfo.ignition.config.data.encoding"], "base64");
        assert_eq!(p["guestinfo.hostname"], "node-1 & co");
    }

    #[test]
    fn last_duplicate_wins_and_no_section_is_empty() {
        let xml = ovf_env(&[("k", "1"), ("k", "2")]);
        assert_eq!(properties(&xml).unwrap()["k"], "2");
        let bare = r#"<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"/>"#;
        assert!(properties(bare).unwrap().is_empty());
    }

    #[test]
    fn malformed_documents_are_errors() {
        assert!(properties("<Environment>")
            .unwrap_err()
            .starts_with("invalid XML"));
        assert_eq!(
            properties("<Envelope/>").unwrap_err(),
            "root element is <Envelope>, not an OVF <Environment>"
        );
        let keyless =
            "<Environment><PropertySection><Property value=\"x\"/></PropertySection></Environment>";
        assert_eq!(
            properties(keyless).unwrap_err(),
            "a <Property> has no key attribute"
        );
    }
}
