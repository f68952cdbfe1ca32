//! The command line of a disk boot (docs/boot-flow.md, "Disk boot"): the root is a
//! GPT partition found by name, verified by dm-verity with every parameter given
//! here (the command line is the trusted part: in a UKI it is signed with the
//! kernel), and /var lives on a partition made at first boot.

use crate::cmdline::split_params;

const PARTLABEL: &str = "PARTLABEL=";
/// GPT partition names hold 36 UTF-16 code units.
const MAX_PARTITION_NAME: usize = 36;
/// veritysetup's limit (the superblock's salt field).
const MAX_SALT_BYTES: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiskArgsError {
    #[error("kernel command line: {param}={value:?}: {problem}")]
    Bad {
        param: &'static str,
        value: String,
        problem: &'static str,
    },
    #[error("kernel command line: {param}= needs harmony.root=PARTLABEL=NAME (a disk boot)")]
    NeedsDiskRoot { param: &'static str },
    #[error("kernel command line: dm-verity needs all of harmony.verity.roothash=, harmony.verity.salt=, harmony.verity.blocks=, harmony.verity.hash=; missing {missing}")]
    IncompleteVerity { missing: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityArgs {
    /// GPT name of the hash partition.
    pub hash_partition: String,
    /// 64 lowercase hex digits (sha256).
    pub root_hash: String,
    /// Hex, or `-` for no salt (dm-verity's own notation).
    pub salt: String,
    /// 4096-byte data blocks the tree covers.
    pub data_blocks: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskArgs {
    /// GPT name of the root filesystem's partition.
    pub root_partition: String,
    pub verity: Option<VerityArgs>,
    /// GPT name of the writable /var partition (created at first boot if missing).
    pub var_partition: Option<String>,
}

impl DiskArgs {
    /// `None` unless `harmony.root=PARTLABEL=NAME` asks for a disk boot.
    pub fn from_cmdline(cmdline: &str) -> Result<Option<DiskArgs>, DiskArgsError> {
        let mut root = None;
        let (mut hash, mut root_hash, mut salt, mut blocks, mut var) =
            (None, None, None, None, None);
        for (param, value) in split_params(cmdline) {
            let Some(value) = value else { continue };
            match param.as_str() {
                // An absolute path is the initramfs image of a PXE boot: cmdline.rs's.
                "harmony.root" => {
                    root = value
                        .starts_with(PARTLABEL)
                        .then(|| partition("harmony.root", &value))
                        .transpose()?
                }
                "harmony.verity.hash" => hash = Some(partition("harmony.verity.hash", &value)?),
                "harmony.verity.roothash" => root_hash = Some(root_hash_hex(value)?),
                "harmony.verity.salt" => salt = Some(salt_hex(value)?),
                "harmony.verity.blocks" => blocks = Some(data_blocks(value)?),
                "harmony.var" => var = Some(partition("harmony.var", &value)?),
                _ => {}
            }
        }
        let verity_given = [
            ("harmony.verity.hash", hash.is_some()),
            ("harmony.verity.roothash", root_hash.is_some()),
            ("harmony.verity.salt", salt.is_some()),
            ("harmony.verity.blocks", blocks.is_some()),
        ];
        let Some(root_partition) = root else {
            if let Some((param, _)) = verity_given.iter().find(|(_, given)| *given) {
                return Err(DiskArgsError::NeedsDiskRoot { param });
            }
            if var.is_some() {
                return Err(DiskArgsError::NeedsDiskRoot {
                    param: "harmony.var",
                });
            }
            return Ok(None);
        };
        let verity = match (hash, root_hash, salt, blocks) {
            (Some(hash_partition), Some(root_hash), Some(salt), Some(data_blocks)) => {
                Some(VerityArgs {
                    hash_partition,
                    root_hash,
                    salt,
                    data_blocks,
                })
            }
            (None, None, None, None) => None,
            _ => {
                let missing: Vec<_> = verity_given
                    .iter()
                    .filter(|(_, given)| !given)
                    .map(|(p, _)| format!("{p}="))
                    .collect();
                return Err(DiskArgsError::IncompleteVerity {
                    missing: missing.join(" "),
                });
            }
        };
        Ok(Some(DiskArgs {
            root_partition,
            verity,
            var_partition: var,
        }))
    }
}

fn partition(param: &'static str, value: &str) -> Result<String, DiskArgsError> {
    let bad = |problem| DiskArgsError::Bad {
        param,
        value: value.into(),
        problem,
    };
    let name = value
        .strip_prefix(PARTLABEL)
        .ok_or_else(|| bad("expected PARTLABEL=NAME (a GPT partition name)"))?;
    if name.is_empty() || name.encode_utf16().count() > MAX_PARTITION_NAME {
        return Err(bad("a GPT partition name has 1 to 36 characters"));
    }
    Ok(name.into())
}

fn root_hash_hex(value: String) -> Result<String, DiskArgsError> {
    if value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(value.to_ascii_lowercase());
    }
    Err(DiskArgsError::Bad {
        param: "harmony.verity.roothash",
        value,
        problem: "expected 64 hex digits (a sha256 digest)",
    })
}

fn salt_hex(value: String) -> Result<String, DiskArgsError> {
    let hex = value.len() & 1 == 0 && value.bytes().all(|b| b.is_ascii_hexdigit());
    if value == "-" || (hex && !value.is_empty() && value.len() <= 2 * MAX_SALT_BYTES) {
        return Ok(value.to_ascii_lowercase());
    }
    Err(DiskArgsError::Bad {
        param: "harmony.verity.salt",
        value,
        problem: "expected hex bytes (at most 256) or - for none",
    })
}

fn data_blocks(value: String) -> Result<u64, DiskArgsError> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 && n < u64::MAX / 8 => Ok(n),
        _ => Err(DiskArgsError::Bad {
            param: "harmony.verity.blocks",
            value,
            problem: "expected a positive number of 4096-byte blocks",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "e522df0f97da4febb882ac40f30b37dc0b444bf6df418929463fa25280f09d5c";

    fn full() -> String {
        format!(
            "console=ttyS0 harmony.root=PARTLABEL=harmony-root \
             harmony.verity.hash=PARTLABEL=harmony-root-verity harmony.verity.roothash={} \
             harmony.verity.salt=00FF harmony.verity.blocks=2048 harmony.var=PARTLABEL=harmony-var",
            ROOT.to_uppercase()
        )
    }

    #[test]
    fn reads_a_full_disk_boot() {
        assert_eq!(
            DiskArgs::from_cmdline(&full()).unwrap(),
            Some(DiskArgs {
                root_partition: "harmony-root".into(),
                verity: Some(VerityArgs {
                    hash_partition: "harmony-root-verity".into(),
                    root_hash: ROOT.into(),
                    salt: "00ff".into(),
                    data_blocks: 2048,
                }),
                var_partition: Some("harmony-var".into()),
            })
        );
    }

    #[test]
    fn a_pxe_boot_is_not_a_disk_boot() {
        assert_eq!(
            DiskArgs::from_cmdline("harmony.root=/harmony/root.squashfs quiet"),
            Ok(None)
        );
        assert_eq!(DiskArgs::from_cmdline(""), Ok(None));
    }

    #[test]
    fn verity_is_all_or_nothing() {
        let cmdline = full().replace("harmony.verity.salt=00FF ", "");
        assert_eq!(
            DiskArgs::from_cmdline(&cmdline),
            Err(DiskArgsError::IncompleteVerity {
                missing: "harmony.verity.salt=".into()
            })
        );
        let unverified = DiskArgs::from_cmdline("harmony.root=PARTLABEL=r")
            .unwrap()
            .unwrap();
        assert_eq!(unverified.verity, None);
    }

    #[test]
    fn disk_params_without_a_disk_root_are_refused() {
        assert_eq!(
            DiskArgs::from_cmdline("harmony.var=PARTLABEL=v"),
            Err(DiskArgsError::NeedsDiskRoot {
                param: "harmony.var"
            })
        );
        assert_eq!(
            DiskArgs::from_cmdline(&format!("harmony.verity.roothash={ROOT}")),
            Err(DiskArgsError::NeedsDiskRoot {
                param: "harmony.verity.roothash"
            })
        );
    }

    #[test]
    fn bad_values_name_param_value_and_problem() {
        let e = DiskArgs::from_cmdline(
            &full()
                .replace(ROOT, "abc")
                .replace(&ROOT.to_uppercase(), "abc"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "kernel command line: harmony.verity.roothash=\"abc\": expected 64 hex digits (a sha256 digest)"
        );
        let e =
            DiskArgs::from_cmdline("harmony.root=PARTLABEL=r harmony.var=/dev/vda4").unwrap_err();
        assert_eq!(
            e.to_string(),
            "kernel command line: harmony.var=\"/dev/vda4\": expected PARTLABEL=NAME (a GPT partition name)"
        );
        assert!(DiskArgs::from_cmdline(&full().replace("blocks=2048", "blocks=0")).is_err());
        assert!(DiskArgs::from_cmdline(&full().replace("salt=00FF", "salt=0")).is_err());
        assert!(
            DiskArgs::from_cmdline(&format!("harmony.root=PARTLABEL={}", "x".repeat(37))).is_err()
        );
    }
}
