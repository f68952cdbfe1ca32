//! `/etc/harmony-init/modules`: the kernel modules to load, one absolute path
//! per line, in dependency order (the builder computes the order).

use std::path::PathBuf;

/// Where the builder puts the list inside the initramfs.
pub const MODULE_LIST_PATH: &str = "/etc/harmony-init/modules";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{MODULE_LIST_PATH} line {line}: {text:?} is not an absolute path to a module file")]
pub struct ModuleListError {
    pub line: usize,
    pub text: String,
}

/// Parses the list. Blank lines and `#` comments are skipped so the file can
/// be annotated by hand when debugging an image.
pub fn parse_module_list(text: &str) -> Result<Vec<PathBuf>, ModuleListError> {
    let mut modules = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.starts_with('/') {
            return Err(ModuleListError {
                line: index + 1,
                text: line.to_string(),
            });
        }
        modules.push(PathBuf::from(line));
    }
    Ok(modules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_skips_blanks_and_comments() {
        let text = "# boot modules\n/usr/lib/modules/6.1/kernel/drivers/block/loop.ko\n\n  /usr/lib/modules/6.1/kernel/fs/overlayfs/overlay.ko  \n";
        assert_eq!(
            parse_module_list(text).unwrap(),
            vec![
                PathBuf::from("/usr/lib/modules/6.1/kernel/drivers/block/loop.ko"),
                PathBuf::from("/usr/lib/modules/6.1/kernel/fs/overlayfs/overlay.ko"),
            ]
        );
    }

    #[test]
    fn empty_file_means_no_modules() {
        assert_eq!(parse_module_list("").unwrap(), Vec::<PathBuf>::new());
    }

    #[test]
    fn relative_path_names_its_line() {
        let err = parse_module_list("/a.ko\nloop.ko\n").unwrap_err();
        assert_eq!(
            err,
            ModuleListError {
                line: 2,
                text: "loop.ko".into()
            }
        );
        assert!(err.to_string().contains("line 2"));
    }
}
