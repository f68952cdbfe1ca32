//! Any bytes → Ignition parse, validation and resolution into a NodeConfig: never a panic,
//! and what resolves keeps the promises the agent plans on.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(cfg) = ignition::node_config(data, &ignition::NoRemoteFetcher) else {
        return;
    };
    let paths = cfg
        .files
        .iter()
        .map(|f| (&f.path, f.mode))
        .chain(cfg.directories.iter().map(|d| (&d.path, d.mode)))
        .chain(cfg.links.iter().map(|l| (&l.path, None)));
    for (path, mode) in paths {
        assert!(path.starts_with('/'), "resolved a relative path {path:?}");
        assert!(
            !path
                .split('/')
                .skip(1)
                .any(|c| c.is_empty() || c == "." || c == ".."),
            "resolved an unclean path {path:?}"
        );
        assert!(mode.is_none_or(|m| m <= 0o7777), "mode {mode:?} of {path}");
    }
});
