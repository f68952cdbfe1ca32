//! systemd units: contents and drop-ins under /etc/systemd/system, masks as links to
//! /dev/null, and enablement as `systemctl enable` does it offline — a link per
//! `[Install]` WantedBy=/RequiredBy= in `/etc/systemd/system/<target>.wants|.requires/`,
//! one per Alias=, and the units named by Also= enabled the same way. A unit that cannot
//! be enabled so (no unit file, no `[Install]` links, masked) gets the line Ignition writes
//! for every enabled unit, `enable NAME` in `/etc/systemd/system-preset/20-ignition.preset`,
//! as Ignition 2.14 accepts such configs.

use std::collections::BTreeSet;

use ignition::systemd_unit;
use ignition::UnitEntry;

use super::{PlanError, Planner, UnitState};

const ETC_UNITS: &str = "/etc/systemd/system";
/// Ignition's preset file (systemd applies presets on a first boot).
pub(crate) const IGNITION_PRESET: &str = "/etc/systemd/system-preset/20-ignition.preset";
/// systemctl's search order for system units in an offline root.
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

pub(crate) fn plan_units(
    p: &mut Planner,
    units: &[UnitEntry],
) -> Result<Vec<UnitState>, PlanError> {
    let mut states = Vec::new();
    let mut preset = Vec::new();
    for u in units {
        let unit_path = format!("{ETC_UNITS}/{}", u.name);
        if let Some(c) = &u.contents {
            p.file(
                &unit_path,
                true,
                &Some(c.as_str().into()),
                &[],
                Some(0o644),
                0,
                0,
            )?;
        }
        for d in &u.dropins {
            if let Some(c) = &d.contents {
                let path = format!("{ETC_UNITS}/{}.d/{}", u.name, d.name);
                p.file(
                    &path,
                    true,
                    &Some(c.as_str().into()),
                    &[],
                    Some(0o644),
                    0,
                    0,
                )?;
            }
        }
        if u.mask {
            p.symlink(&unit_path, "/dev/null", true, 0, 0)?;
        }
        match u.enabled {
            Some(true) if u.mask || !can_link(p, &u.name)? => {
                preset.push(format!("enable {}", u.name))
            }
            Some(true) => enable(p, &u.name, &mut BTreeSet::new())?,
            Some(false) => disable(p, &u.name)?,
            None => {}
        }
        states.push(UnitState {
            name: u.name.clone(),
            enabled: u.enabled,
            masked: u.mask,
        });
    }
    write_preset(p, &preset)?;
    Ok(states)
}

/// Whether `systemctl enable` would make links for `name`: its unit file (or template)
/// is found and has `[Install]` links or Also=.
fn can_link(p: &Planner, name: &str) -> Result<bool, PlanError> {
    let Some((_, text)) = locate(p, name)? else {
        return Ok(false);
    };
    Ok(systemd_unit::parse(&text).is_ok_and(|u| {
        let info = u.install_info();
        info.has_links() || !info.also.is_empty()
    }))
}

/// Add `lines` to Ignition's preset file, each once (a re-apply adds nothing).
fn write_preset(p: &mut Planner, lines: &[String]) -> Result<(), PlanError> {
    if lines.is_empty() {
        return Ok(());
    }
    let mut text = p.read_text(IGNITION_PRESET)?.unwrap_or_default();
    let before = text.clone();
    for line in lines {
        if !text.lines().any(|l| l == line) {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(line);
            text.push('\n');
        }
    }
    if text == before {
        return Ok(());
    }
    p.file(
        IGNITION_PRESET,
        true,
        &Some(text.into()),
        &[],
        Some(0o644),
        0,
        0,
    )
}

fn unit_err(unit: &str, problem: impl Into<String>) -> PlanError {
    PlanError::Unit {
        unit: unit.to_string(),
        problem: problem.into(),
    }
}

/// `foo@bar.service` → `foo@.service`; `None` for a name that is not an instance.
fn template_of(name: &str) -> Option<String> {
    let (prefix, rest) = name.split_once('@')?;
    let dot = rest.rfind('.')?;
    (dot > 0).then(|| format!("{prefix}@{}", &rest[dot..]))
}

/// The unit file for `name` (or its template), as the path systemctl would link to.
fn locate(p: &Planner, name: &str) -> Result<Option<(String, String)>, PlanError> {
    let mut candidates = vec![name.to_string()];
    candidates.extend(template_of(name));
    for candidate in &candidates {
        for dir in UNIT_DIRS {
            let path = format!("{dir}/{candidate}");
            if let Some(text) = p.read_text(&path)? {
                return Ok(Some((path, text)));
            }
        }
    }
    Ok(None)
}

fn enable(p: &mut Planner, name: &str, seen: &mut BTreeSet<String>) -> Result<(), PlanError> {
    if !seen.insert(name.to_string()) {
        return Ok(());
    }
    let (unit_path, text) = locate(p, name)?.ok_or_else(|| {
        unit_err(
            name,
            format!("cannot enable: no unit file in {}", UNIT_DIRS.join(", ")),
        )
    })?;
    let info = systemd_unit::parse(&text)
        .map_err(|e| unit_err(name, format!("{unit_path}: {e}")))?
        .install_info();
    if !info.has_links() && info.also.is_empty() {
        return Err(unit_err(
            name,
            format!("cannot enable: {unit_path} has no [Install] WantedBy=, RequiredBy=, Alias= or Also="),
        ));
    }
    // Enabling a template itself links its DefaultInstance=, as systemctl does.
    let link_name = match (name.split_once("@."), &info.default_instance) {
        (Some((prefix, suffix)), Some(inst)) => format!("{prefix}@{inst}.{suffix}"),
        (Some(_), None) => {
            return Err(unit_err(
                name,
                "cannot enable a template without DefaultInstance=",
            ))
        }
        (None, _) => name.to_string(),
    };
    for (targets, dir_suffix) in [(&info.wanted_by, "wants"), (&info.required_by, "requires")] {
        for t in targets {
            let link = format!("{ETC_UNITS}/{t}.{dir_suffix}/{link_name}");
            p.symlink(&link, &unit_path, true, 0, 0)?;
        }
    }
    for alias in &info.alias {
        let link = format!("{ETC_UNITS}/{alias}");
        if link != unit_path {
            p.symlink(&link, &unit_path, true, 0, 0)?;
        }
    }
    for also in &info.also {
        enable(p, also, seen)?;
    }
    Ok(())
}

/// Remove the unit's links from every `.wants`/`.requires` directory and its aliases.
fn disable(p: &mut Planner, name: &str) -> Result<(), PlanError> {
    for dir in p.list(ETC_UNITS)? {
        if dir.ends_with(".wants") || dir.ends_with(".requires") {
            p.remove_symlink(&format!("{ETC_UNITS}/{dir}/{name}"))?;
        }
    }
    if let Some((unit_path, text)) = locate(p, name)? {
        if let Ok(unit) = systemd_unit::parse(&text) {
            for alias in unit.install_info().alias {
                let link = format!("{ETC_UNITS}/{alias}");
                if link != unit_path {
                    p.remove_symlink(&link)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::template_of;

    #[test]
    fn templates() {
        assert_eq!(
            template_of("getty@tty1.service").as_deref(),
            Some("getty@.service")
        );
        assert_eq!(template_of("sshd.service"), None);
    }
}
