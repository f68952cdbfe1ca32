//! Vault: file or raft (integrated) storage and a TCP listener.

use serde::Deserialize;

use super::catalog::{parse_values, quoted, CatalogEntry, Rendered, ValuesError};

pub const ENTRY: CatalogEntry = CatalogEntry {
    name: "vault",
    upstream: "docker.io/hashicorp/vault",
    config_mount: "/vault/config",
    summary: "secrets; file or raft storage, TCP listener",
    command: &["vault", "server", "-config=/vault/config"],
    env: &[],
    // the image's `vault` user; IPC_LOCK lets it mlock secrets out of swap.
    user: "100:1000",
    capabilities: &["IPC_LOCK"],
    data_mount: "/vault/file",
    render,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Values {
    #[serde(default = "storage")]
    storage: Storage,
    #[serde(default = "listen")]
    listen: String,
    #[serde(default)]
    tls_cert_file: Option<String>,
    #[serde(default)]
    tls_key_file: Option<String>,
    #[serde(default)]
    node_id: Option<String>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Storage {
    File,
    Raft,
}

fn storage() -> Storage {
    Storage::File
}

fn listen() -> String {
    "0.0.0.0:8200".into()
}

fn render(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: Values = parse_values(values)?;
    let mut hcl = match v.storage {
        Storage::File => "storage \"file\" {\n  path = \"/vault/file\"\n}\n".to_string(),
        Storage::Raft => format!(
            "storage \"raft\" {{\n  path = \"/vault/file\"\n  node_id = {}\n}}\n",
            quoted(v.node_id.as_deref().unwrap_or("harmony"))
        ),
    };
    hcl += &format!("listener \"tcp\" {{\n  address = {}\n", quoted(&v.listen));
    match (&v.tls_cert_file, &v.tls_key_file) {
        (Some(c), Some(k)) => {
            hcl += &format!(
                "  tls_cert_file = {}\n  tls_key_file = {}\n",
                quoted(c),
                quoted(k)
            )
        }
        (None, None) => hcl += "  tls_disable = true\n",
        _ => {
            return Err(super::catalog::invalid(
                "tls_key_file",
                "give tls_cert_file and tls_key_file together",
            ))
        }
    }
    hcl += "}\ndisable_mlock = true\nui = true\n";
    Ok(Rendered::default().file("harmony.hcl", hcl))
}

#[cfg(test)]
mod tests {
    fn render(s: &str) -> Result<super::Rendered, super::ValuesError> {
        super::render(&serde_yaml_ng::from_str(s).unwrap())
    }

    #[test]
    fn file_or_raft_storage() {
        let f = render("{}").unwrap();
        assert!(
            f.files[0].1.starts_with("storage \"file\""),
            "{}",
            f.files[0].1
        );
        assert!(f.files[0].1.contains("tls_disable = true"));
        let r = render("{storage: raft, node_id: n1, listen: '127.0.0.1:8200'}").unwrap();
        assert!(
            r.files[0].1.contains("node_id = \"n1\""),
            "{}",
            r.files[0].1
        );
        assert!(r.files[0].1.contains("address = \"127.0.0.1:8200\""));
        assert_eq!(render("{storage: consul}").unwrap_err().field, "storage");
        assert_eq!(
            render("{tls_cert_file: /c}").unwrap_err().field,
            "tls_key_file"
        );
    }
}
