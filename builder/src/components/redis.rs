//! Redis.

use serde::Deserialize;

use super::catalog::{parse_values, CatalogEntry, Rendered, ValuesError};

pub const ENTRY: CatalogEntry = CatalogEntry {
    name: "redis",
    upstream: "docker.io/library/redis",
    config_mount: "/usr/local/etc/redis",
    summary: "key-value store",
    command: &["redis-server", "/usr/local/etc/redis/redis.conf"],
    env: &[],
    // the image's `redis` user.
    user: "999:999",
    capabilities: &[],
    data_mount: "/data",
    render,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Values {
    #[serde(default = "port")]
    port: u16,
    #[serde(default)]
    maxmemory_mb: Option<u32>,
    #[serde(default)]
    appendonly: bool,
}

fn port() -> u16 {
    6379
}

fn render(values: &serde_yaml_ng::Value) -> Result<Rendered, ValuesError> {
    let v: Values = parse_values(values)?;
    let mut conf = format!(
        "bind 0.0.0.0\nport {}\nappendonly {}\ndir /data\n",
        v.port,
        if v.appendonly { "yes" } else { "no" }
    );
    if let Some(mb) = v.maxmemory_mb {
        conf += &format!("maxmemory {mb}mb\nmaxmemory-policy allkeys-lru\n");
    }
    Ok(Rendered::default().file("redis.conf", conf))
}

#[cfg(test)]
mod tests {
    #[test]
    fn port_and_memory() {
        let r = super::render(&serde_yaml_ng::from_str("{port: 6380, maxmemory_mb: 64}").unwrap())
            .unwrap();
        assert_eq!(
            r.files[0].1,
            "bind 0.0.0.0\nport 6380\nappendonly no\ndir /data\nmaxmemory 64mb\nmaxmemory-policy allkeys-lru\n"
        );
        assert!(super::render(&serde_yaml_ng::from_str("{prot: 1}").unwrap()).is_err());
    }
}
