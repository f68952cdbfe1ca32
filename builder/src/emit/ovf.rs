//! The OVF 1.0 descriptor of the OVA: one virtual machine for vSphere (hardware version
//! vmx-13, UEFI firmware (Secure Boot on when the recipe signs the UKI, as vSphere
//! exports such a VM: `uefi.secureBoot.enabled` TRUE), a paravirtual SCSI controller holding the
//! streamOptimized disk, a vmxnet3 NIC — Debian's cloud kernel drives both, and has no
//! LSI Logic or e1000 driver), and vApp properties that vSphere hands to the guest
//! through the OVF environment in guestinfo (`ovf:transport="com.vmware.guestInfo"`),
//! where harmony-agent's VMware source reads them (see `agent/src/sources/vmware.rs`).
//!
//! Valid against the DMTF DSP8023 1.0 schema (RASD/VSSD children in alphabetical order).

/// Virtual hardware the appliance asks for; vSphere lets the operator change it.
pub const CPUS: u32 = 2;
pub const MEMORY_MB: u32 = 2048;
/// The vSphere network an imported NIC is mapped to unless the operator picks another.
pub const NETWORK: &str = "VM Network";

pub struct OvfInputs<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// File name of the VMDK inside the OVA.
    pub vmdk_name: &'a str,
    pub vmdk_size: u64,
    /// Bytes the guest sees.
    pub capacity: u64,
    /// Bytes of disk that hold data.
    pub populated: u64,
    /// The UKI is signed (recipe `secure_boot`): the VM boots with Secure Boot on.
    pub secure_boot: bool,
}

/// A vApp property: `(key, label, description)`. The keys are the guestinfo keys the
/// agent reads, so a value set as a property or directly as guestinfo means the same.
pub const PROPERTIES: &[(&str, &str, &str)] = &[
    (
        "guestinfo.ignition.config.data",
        "Ignition config",
        "The node's Ignition config (spec 3.x), encoded as the next property says.",
    ),
    (
        "guestinfo.ignition.config.data.encoding",
        "Ignition config encoding",
        "How the Ignition config is encoded: empty for plain JSON, base64, or \
         gzip+base64 (gzip, then base64; use it for large configs, as the vSphere UI \
         refuses long values).",
    ),
    (
        "guestinfo.ignition.config.url",
        "Ignition config URL",
        "An http(s) URL to fetch the Ignition config from when none is given inline.",
    ),
    (
        "guestinfo.userdata",
        "cloud-init user-data",
        "cloud-init user-data (#cloud-config, a script or MIME multipart), read when no \
         Ignition config is given; encoding in guestinfo.userdata.encoding.",
    ),
    (
        "guestinfo.metadata",
        "cloud-init meta-data",
        "cloud-init instance meta-data (instance-id, local-hostname) for the user-data.",
    ),
    (
        "guestinfo.hostname",
        "Host name",
        "The node's host name for cloud-init user-data (overrides local-hostname); an \
         Ignition config sets /etc/hostname itself.",
    ),
];

pub fn ovf_descriptor(i: &OvfInputs) -> String {
    let name = escape(i.name);
    let version = escape(i.version);
    let vmdk = escape(i.vmdk_name);
    let properties: String = PROPERTIES
        .iter()
        .map(|(key, label, description)| {
            format!(
                r#"      <Property ovf:key="{key}" ovf:type="string" ovf:userConfigurable="true" ovf:value="">
        <Label>{}</Label>
        <Description>{}</Description>
      </Property>
"#,
                escape(label),
                escape(description)
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vmw="http://www.vmware.com/schema/ovf" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <References>
    <File ovf:href="{vmdk}" ovf:id="file1" ovf:size="{vmdk_size}"/>
  </References>
  <DiskSection>
    <Info>Virtual disk information</Info>
    <Disk ovf:capacity="{capacity}" ovf:capacityAllocationUnits="byte" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized" ovf:populatedSize="{populated}"/>
  </DiskSection>
  <NetworkSection>
    <Info>The list of logical networks</Info>
    <Network ovf:name="{NETWORK}">
      <Description>The {NETWORK} network</Description>
    </Network>
  </NetworkSection>
  <VirtualSystem ovf:id="{name}">
    <Info>A Harmony Kubernetes node</Info>
    <Name>{name}</Name>
    <OperatingSystemSection ovf:id="101" vmw:osType="other3xLinux64Guest">
      <Info>The kind of installed guest operating system</Info>
    </OperatingSystemSection>
    <VirtualHardwareSection ovf:transport="com.vmware.guestInfo">
      <Info>Virtual hardware requirements</Info>
      <System>
        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>
        <vssd:InstanceID>0</vssd:InstanceID>
        <vssd:VirtualSystemIdentifier>{name}</vssd:VirtualSystemIdentifier>
        <vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>
      </System>
      <Item>
        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>
        <rasd:Description>Number of Virtual CPUs</rasd:Description>
        <rasd:ElementName>{CPUS} virtual CPU(s)</rasd:ElementName>
        <rasd:InstanceID>1</rasd:InstanceID>
        <rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>{CPUS}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>
        <rasd:Description>Memory Size</rasd:Description>
        <rasd:ElementName>{MEMORY_MB}MB of memory</rasd:ElementName>
        <rasd:InstanceID>2</rasd:InstanceID>
        <rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>{MEMORY_MB}</rasd:VirtualQuantity>
      </Item>
      <Item>
        <rasd:Address>0</rasd:Address>
        <rasd:Description>SCSI Controller</rasd:Description>
        <rasd:ElementName>SCSI Controller 0</rasd:ElementName>
        <rasd:InstanceID>3</rasd:InstanceID>
        <rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>
        <rasd:ResourceType>6</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>0</rasd:AddressOnParent>
        <rasd:ElementName>Hard Disk 1</rasd:ElementName>
        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>
        <rasd:InstanceID>4</rasd:InstanceID>
        <rasd:Parent>3</rasd:Parent>
        <rasd:ResourceType>17</rasd:ResourceType>
      </Item>
      <Item>
        <rasd:AddressOnParent>7</rasd:AddressOnParent>
        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>
        <rasd:Connection>{NETWORK}</rasd:Connection>
        <rasd:Description>VmxNet3 ethernet adapter on "{NETWORK}"</rasd:Description>
        <rasd:ElementName>Network adapter 1</rasd:ElementName>
        <rasd:InstanceID>5</rasd:InstanceID>
        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>
        <rasd:ResourceType>10</rasd:ResourceType>
      </Item>
      <vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>
      <vmw:Config ovf:required="false" vmw:key="uefi.secureBoot.enabled" vmw:value="{secure_boot}"/>
    </VirtualHardwareSection>
    <ProductSection ovf:required="false">
      <Info>Node configuration, read by harmony-agent at first boot</Info>
      <Product>{name}</Product>
      <Version>{version}</Version>
{properties}    </ProductSection>
  </VirtualSystem>
</Envelope>
"#,
        vmdk_size = i.vmdk_size,
        secure_boot = if i.secure_boot { "TRUE" } else { "false" },
        capacity = i.capacity,
        populated = i.populated,
    )
}

/// XML text and attribute escaping.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    use super::*;

    /// The DMTF OVF schema: `HARMONY_OVF_SCHEMA`, else `shared/ovf-schema/ovf-all.xsd` in
    /// the repository's parent directory (where CI's clone finds it). Err names where it looked.
    pub fn schema() -> Result<PathBuf, String> {
        let path = match std::env::var_os("HARMONY_OVF_SCHEMA") {
            Some(p) => PathBuf::from(p),
            None => {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/ovf-schema/ovf-all.xsd")
            }
        };
        if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "the DMTF OVF schema is not at {}: put DSP8023 with ovf-all.xsd in \
                 shared/ovf-schema/ beside the repository, or set HARMONY_OVF_SCHEMA",
                path.display()
            ))
        }
    }

    /// xmllint --schema; None after [`harmony_test_support::skip`] when xmllint or the
    /// schema is missing.
    pub fn xmllint(ovf: &str) -> Option<(bool, String)> {
        let schema = match schema() {
            Ok(schema) => schema,
            Err(why) => {
                harmony_test_support::skip(why);
                return None;
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.ovf");
        std::fs::write(&file, ovf).unwrap();
        let out = match Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&schema)
            .arg(&file)
            .output()
        {
            Ok(out) => out,
            Err(e) => {
                harmony_test_support::skip(format!(
                    "tool xmllint not installed: Debian package libxml2-utils ({e})"
                ));
                return None;
            }
        };
        Some((
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ))
    }

    fn sample() -> String {
        ovf_descriptor(&OvfInputs {
            name: "harmony-default",
            version: "0.1.0 <rc&1>",
            vmdk_name: "harmony-default-disk1.vmdk",
            vmdk_size: 123_456,
            capacity: 1 << 30,
            populated: 65536 * 100,
            secure_boot: false,
        })
    }

    #[test]
    fn a_signed_image_asks_for_secure_boot_and_stays_valid() {
        let plain = sample();
        assert!(plain.contains(r#"vmw:key="uefi.secureBoot.enabled" vmw:value="false""#));
        let signed = ovf_descriptor(&OvfInputs {
            name: "harmony-default",
            version: "0.1.0",
            vmdk_name: "harmony-default-disk1.vmdk",
            vmdk_size: 123_456,
            capacity: 1 << 30,
            populated: 65536 * 100,
            secure_boot: true,
        });
        for needle in [
            r#"<vmw:Config ovf:required="false" vmw:key="firmware" vmw:value="efi"/>"#,
            r#"<vmw:Config ovf:required="false" vmw:key="uefi.secureBoot.enabled" vmw:value="TRUE"/>"#,
        ] {
            assert!(signed.contains(needle), "{needle}\n{signed}");
        }
        let Some((ok, text)) = xmllint(&signed) else {
            return;
        };
        assert!(ok && text.contains("validates"), "{text}");
    }

    #[test]
    fn valid_against_the_dmtf_schema() {
        let Some((ok, text)) = xmllint(&sample()) else {
            return;
        };
        assert!(ok && text.contains("validates"), "{text}");
    }

    #[test]
    fn a_broken_descriptor_fails_the_schema_check() {
        // The check can fail: RASD children out of order are rejected.
        let bad = sample().replace(
            "<rasd:Address>0</rasd:Address>\n        <rasd:Description>SCSI Controller</rasd:Description>",
            "<rasd:Description>SCSI Controller</rasd:Description>\n        <rasd:Address>0</rasd:Address>",
        );
        let Some((ok, text)) = xmllint(&bad) else {
            return;
        };
        assert!(!ok, "{text}");
    }

    #[test]
    fn hardware_disk_and_properties() {
        let ovf = sample();
        for needle in [
            r#"<File ovf:href="harmony-default-disk1.vmdk" ovf:id="file1" ovf:size="123456"/>"#,
            r#"ovf:capacity="1073741824""#,
            r#"ovf:populatedSize="6553600""#,
            "vmdk.html#streamOptimized",
            "<vssd:VirtualSystemType>vmx-13</vssd:VirtualSystemType>",
            "<rasd:ResourceSubType>VirtualSCSI</rasd:ResourceSubType>",
            "<rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>",
            r#"vmw:key="firmware" vmw:value="efi""#,
            r#"ovf:transport="com.vmware.guestInfo""#,
            "<Version>0.1.0 &lt;rc&amp;1&gt;</Version>",
        ] {
            assert!(ovf.contains(needle), "{needle}\n{ovf}");
        }
        for key in [
            "guestinfo.ignition.config.data",
            "guestinfo.ignition.config.data.encoding",
            "guestinfo.ignition.config.url",
            "guestinfo.userdata",
            "guestinfo.metadata",
            "guestinfo.hostname",
        ] {
            let prop = format!(
                r#"<Property ovf:key="{key}" ovf:type="string" ovf:userConfigurable="true""#
            );
            assert!(ovf.contains(&prop), "{prop}");
        }
    }
}
