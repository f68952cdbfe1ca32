use serde_json::json;

use super::ipxe::ipxe_script;
use super::*;

fn cmdline() -> Vec<String> {
    [
        "console=tty0",
        "console=ttyS0,115200",
        "quiet",
        "harmony.root=/harmony/root.squashfs",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn os_document_holds_urls_and_single_key_maps() {
    let doc = os_doc(
        "node",
        "1.2.3",
        &cmdline(),
        &["initramfs.img", "rootfs.img"],
    );
    let v: serde_json::Value = serde_yaml_ng::from_str(&doc).unwrap();
    assert_eq!(v["id"], "node-1.2.3");
    assert_eq!(v["major_version"], "1", "quoted: Vaquero wants a string");
    assert_eq!(v["minor_version"], "2");
    assert_eq!(
        v["boot"]["kernel"],
        "{{.env.agentURL}}/files/harmony/node/1.2.3/vmlinuz"
    );
    assert_eq!(
        v["boot"]["initrd"][1],
        "{{.env.agentURL}}/files/harmony/node/1.2.3/rootfs.img"
    );
    assert_eq!(
        v["cmdline"],
        json!([
            {"console": ["tty0", "ttyS0,115200"]},
            {"quiet": ""},
            {"harmony.root": "/harmony/root.squashfs"},
            {"ignition.platform.id": "metal"},
            {"ignition.config.url": "{{.boot.configURL}}"},
            {"initrd": ["initramfs.img", "rootfs.img"]}
        ])
    );
}

#[test]
fn os_document_translates_to_the_ipxe_script_vaquero_serves() {
    let doc = os_doc(
        "node",
        "1.2.3",
        &cmdline(),
        &["initramfs.img", "rootfs.img"],
    );
    let data = json!({
        "env": {"agentURL": "http://10.0.2.2:8080"},
        "boot": {"configURL": "http://10.0.2.2:8080/config/52:54:00:12:34:41?boot=harmony-worker"}
    });
    assert_eq!(
        ipxe_script(&doc, &data).unwrap(),
        "#!ipxe\n\
         kernel http://10.0.2.2:8080/files/harmony/node/1.2.3/vmlinuz console=tty0 console=ttyS0,115200 quiet \
         harmony.root=/harmony/root.squashfs ignition.platform.id=metal \
         ignition.config.url=http://10.0.2.2:8080/config/52:54:00:12:34:41?boot=harmony-worker \
         initrd=initramfs.img initrd=rootfs.img\n\
         initrd http://10.0.2.2:8080/files/harmony/node/1.2.3/initramfs.img\n\
         initrd http://10.0.2.2:8080/files/harmony/node/1.2.3/rootfs.img\n\
         boot\n"
    );
    let err = ipxe_script(&doc, &json!({"env": {}}))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("boot.kernel") && err.contains(".env.agentURL"),
        "{err}"
    );
}

#[test]
fn boot_and_workflow_documents_link_role_to_template() {
    let boot: serde_json::Value =
        serde_yaml_ng::from_str(&boot_doc(Role::Worker, "node", "1.2.3")).unwrap();
    assert_eq!(boot["id"], "harmony-worker");
    assert_eq!(boot["operating_system"], "node-1.2.3");
    assert_eq!(
        boot["unattended"],
        json!({"type": "ignition", "use": "harmony-worker.ign"})
    );
    let wf: serde_json::Value = serde_yaml_ng::from_str(&workflow_doc(Role::ControlPlane)).unwrap();
    assert_eq!(wf["workflow"], json!([{"boot": "harmony-control-plane"}]));
    let t = ignition_template(Role::ControlPlane);
    assert!(t.contains("{{.host.name}}") && t.contains("{{.env.md.harmony_cluster}}"));
    assert!(t.contains("{{.host.md.harmony_node}}") && t.contains("role:%20control-plane"));
}
