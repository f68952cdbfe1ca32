//! The kernel command line: split it the way the kernel does and pick out the
//! `harmony.*` parameters this init understands.

use std::path::PathBuf;

/// Where the root image lives unless `harmony.root=` says otherwise.
pub const DEFAULT_ROOT_IMAGE: &str = "/harmony/root.squashfs";
/// What runs after the switch unless `harmony.init=` says otherwise.
pub const DEFAULT_INIT: &str = "/sbin/init";
/// ext4 labels are at most 16 bytes (`s_volume_name`).
const MAX_LABEL_BYTES: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CmdlineError {
    #[error("kernel command line: {param}={value:?} must be an absolute path")]
    NotAbsolute { param: &'static str, value: String },
    #[error("kernel command line: {param}= is empty; give a value or drop the parameter")]
    Empty { param: &'static str },
    #[error("kernel command line: harmony.state={label:?} is longer than the 16 bytes an ext4 label can hold")]
    LabelTooLong { label: String },
    #[error("kernel command line: {param}= is given more than once ({first:?}, then {second:?}); an appended argument must not replace it, give it once")]
    Repeated {
        param: &'static str,
        first: String,
        second: String,
    },
}

/// What the kernel command line asks of harmony-init.
#[derive(Debug, PartialEq, Eq)]
pub struct BootArgs {
    /// The squashfs/erofs root image inside the initramfs.
    pub root_image: PathBuf,
    /// ext4 label of the state disk; `None` means a tmpfs writable layer.
    pub state_label: Option<String>,
    /// The program to exec in the new root.
    pub init: PathBuf,
}

impl BootArgs {
    pub fn from_cmdline(cmdline: &str) -> Result<Self, CmdlineError> {
        let mut args = BootArgs {
            root_image: PathBuf::from(DEFAULT_ROOT_IMAGE),
            state_label: None,
            init: PathBuf::from(DEFAULT_INIT),
        };
        // Each at most once: "last wins", as most kernel parameters have it, would let an
        // argument appended to the boot entry (PXE, a boot menu) pick another state disk,
        // root image or init.
        let mut seen: Vec<(&'static str, String)> = Vec::new();
        for (param, value) in split_params(cmdline) {
            let Some(value) = value else { continue };
            if let Some(name) = ["harmony.root", "harmony.init", "harmony.state"]
                .into_iter()
                .find(|n| *n == param)
            {
                if let Some((_, first)) = seen.iter().find(|(n, _)| *n == name) {
                    return Err(CmdlineError::Repeated {
                        param: name,
                        first: first.clone(),
                        second: value,
                    });
                }
                seen.push((name, value.clone()));
            }
            match param.as_str() {
                // A GPT partition name: a disk boot, read by disk_args.rs.
                "harmony.root" if value.starts_with("PARTLABEL=") => {}
                "harmony.root" => args.root_image = absolute_path("harmony.root", value)?,
                "harmony.init" => args.init = absolute_path("harmony.init", value)?,
                "harmony.state" => args.state_label = Some(state_label(value)?),
                _ => {}
            }
        }
        Ok(args)
    }
}

fn absolute_path(param: &'static str, value: String) -> Result<PathBuf, CmdlineError> {
    if value.is_empty() {
        return Err(CmdlineError::Empty { param });
    }
    if !value.starts_with('/') {
        return Err(CmdlineError::NotAbsolute { param, value });
    }
    Ok(PathBuf::from(value))
}

fn state_label(value: String) -> Result<String, CmdlineError> {
    if value.is_empty() {
        return Err(CmdlineError::Empty {
            param: "harmony.state",
        });
    }
    if value.len() > MAX_LABEL_BYTES {
        return Err(CmdlineError::LabelTooLong { label: value });
    }
    Ok(value)
}

/// Splits a command line into `(param, value)` pairs like the kernel's
/// `next_arg()` (lib/cmdline.c): whitespace separates parameters except
/// inside double quotes; a quote opening the value (or the whole parameter)
/// and its closing quote at the end are dropped. Parsing stops at `--`,
/// which hands the rest to init.
pub fn split_params(cmdline: &str) -> Vec<(String, Option<String>)> {
    let bytes = cmdline.as_bytes();
    let mut params = Vec::new();
    let mut pos = skip_spaces(bytes, 0);
    while pos < bytes.len() {
        let mut start = pos;
        let mut in_quote = false;
        let quoted = bytes[start] == b'"';
        if quoted {
            start += 1;
            in_quote = true;
        }
        // `equals` stays None for a leading '=', as in the kernel (0 means "none").
        let mut equals = None;
        let mut end = start;
        while end < bytes.len() {
            let b = bytes[end];
            if b.is_ascii_whitespace() && !in_quote {
                break;
            }
            if equals.is_none() && b == b'=' && end > start {
                equals = Some(end);
            }
            if b == b'"' {
                in_quote = !in_quote;
            }
            end += 1;
        }
        let closing_quote = end > start && bytes[end - 1] == b'"';
        let token_end = if quoted && closing_quote {
            end - 1
        } else {
            end
        };
        let (param, value) = match equals {
            None => (&bytes[start..token_end], None),
            Some(eq) => {
                let mut value_start = eq + 1;
                let mut value_end = token_end;
                if bytes.get(value_start) == Some(&b'"') {
                    value_start += 1;
                    if closing_quote {
                        value_end = end - 1;
                    }
                }
                let value_end = value_end.max(value_start);
                (&bytes[start..eq], Some(&bytes[value_start..value_end]))
            }
        };
        let param = String::from_utf8_lossy(param).into_owned();
        if param == "--" && value.is_none() && !quoted {
            break;
        }
        params.push((
            param,
            value.map(|v| String::from_utf8_lossy(v).into_owned()),
        ));
        pos = skip_spaces(bytes, end);
    }
    params
}

fn skip_spaces(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
        pos += 1;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(cmdline: &str) -> Vec<(String, Option<String>)> {
        split_params(cmdline)
    }

    fn p(param: &str, value: Option<&str>) -> (String, Option<String>) {
        (param.to_string(), value.map(str::to_string))
    }

    #[test]
    fn splits_plain_params_and_flags() {
        assert_eq!(
            pairs("  console=ttyS0,115200 quiet  harmony.state=st\n"),
            vec![
                p("console", Some("ttyS0,115200")),
                p("quiet", None),
                p("harmony.state", Some("st")),
            ]
        );
    }

    #[test]
    fn quoted_value_keeps_spaces_and_drops_quotes() {
        assert_eq!(
            pairs(r#"harmony.init="/sbin/my init" x=1"#),
            vec![p("harmony.init", Some("/sbin/my init")), p("x", Some("1"))]
        );
    }

    #[test]
    fn fully_quoted_param_drops_outer_quotes() {
        assert_eq!(
            pairs(r#""harmony.state=my disk" y"#),
            vec![p("harmony.state", Some("my disk")), p("y", None)]
        );
    }

    #[test]
    fn value_may_contain_equals_and_empty_value_is_some() {
        assert_eq!(
            pairs("a=b=c e="),
            vec![p("a", Some("b=c")), p("e", Some(""))]
        );
    }

    #[test]
    fn stops_at_double_dash() {
        assert_eq!(
            pairs("a=1 -- harmony.state=x single"),
            vec![p("a", Some("1"))]
        );
    }

    #[test]
    fn leading_equals_is_a_flag_like_in_the_kernel() {
        assert_eq!(pairs("=x"), vec![p("=x", None)]);
    }

    #[test]
    fn unterminated_quote_runs_to_the_end() {
        assert_eq!(pairs(r#"a="one two"#), vec![p("a", Some("one two"))]);
    }

    #[test]
    fn defaults_without_harmony_params() {
        let args = BootArgs::from_cmdline("console=ttyS0 quiet").unwrap();
        assert_eq!(
            args,
            BootArgs {
                root_image: PathBuf::from(DEFAULT_ROOT_IMAGE),
                state_label: None,
                init: PathBuf::from(DEFAULT_INIT),
            }
        );
    }

    #[test]
    fn reads_all_harmony_params() {
        let args = BootArgs::from_cmdline(
            "harmony.root=/r.erofs harmony.init=/bin/sh harmony.state=harmony-state",
        )
        .unwrap();
        assert_eq!(args.root_image, PathBuf::from("/r.erofs"));
        assert_eq!(args.init, PathBuf::from("/bin/sh"));
        assert_eq!(args.state_label.as_deref(), Some("harmony-state"));
    }

    #[test]
    fn a_harmony_param_given_twice_is_refused_not_replaced() {
        assert_eq!(
            BootArgs::from_cmdline(
                "quiet harmony.state=harmony-state console=ttyS0 harmony.state=usb"
            ),
            Err(CmdlineError::Repeated {
                param: "harmony.state",
                first: "harmony-state".into(),
                second: "usb".into()
            })
        );
        for twice in [
            "harmony.root=/a.squashfs harmony.root=/b.squashfs",
            "harmony.init=/sbin/init \"harmony.init=/bin/sh\"",
        ] {
            assert!(
                matches!(
                    BootArgs::from_cmdline(twice),
                    Err(CmdlineError::Repeated { .. })
                ),
                "{twice}"
            );
        }
        // After `--` the arguments are init's, not the kernel's.
        assert!(BootArgs::from_cmdline("harmony.state=a -- harmony.state=b").is_ok());
    }

    #[test]
    fn rejects_relative_paths_empty_values_and_long_labels() {
        assert_eq!(
            BootArgs::from_cmdline("harmony.init=sbin/init"),
            Err(CmdlineError::NotAbsolute {
                param: "harmony.init",
                value: "sbin/init".into()
            })
        );
        assert_eq!(
            BootArgs::from_cmdline("harmony.state="),
            Err(CmdlineError::Empty {
                param: "harmony.state"
            })
        );
        assert_eq!(
            BootArgs::from_cmdline("harmony.state=abcdefghijklmnopq"),
            Err(CmdlineError::LabelTooLong {
                label: "abcdefghijklmnopq".into()
            })
        );
    }

    #[test]
    fn harmony_flag_without_value_is_ignored() {
        let args = BootArgs::from_cmdline("harmony.state").unwrap();
        assert_eq!(args.state_label, None);
    }
}
