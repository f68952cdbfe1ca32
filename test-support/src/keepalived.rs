//! keepalived's own check of a configuration, `keepalived -t -f CONF` (Debian package
//! keepalived): the one way the tests of every keepalived.conf Harmony renders (the agent's
//! HA files, the catalog's component, the shared renderer) ask keepalived about it.

use std::path::Path;
use std::process::Command;

/// What `keepalived -t -f` made of a configuration.
pub struct ConfigTest {
    /// keepalived accepted the configuration (exit status 0).
    pub accepted: bool,
    /// Everything it printed, stdout then stderr (its warnings go to either).
    pub said: String,
}

/// Run `keepalived -t -f conf`. `None` after [`crate::skip`] when keepalived is not
/// installed (a failure under `HARMONY_TEST_STRICT=1`).
pub fn config_test(conf: &Path) -> Option<ConfigTest> {
    let out = match Command::new("keepalived")
        .arg("-t")
        .arg("-f")
        .arg(conf)
        .output()
    {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::skip("tool keepalived not installed: Debian package keepalived");
            return None;
        }
        Err(e) => panic!("running keepalived -t -f {}: {e}", conf.display()),
        Ok(out) => out,
    };
    Some(ConfigTest {
        accepted: out.status.success(),
        said: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    })
}
