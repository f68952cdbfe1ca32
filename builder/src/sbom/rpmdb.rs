//! rpm's package database in its sqlite form (rpm 4.16+: CentOS Stream 9, RHEL 9,
//! Fedora 33+): `var/lib/rpm/rpmdb.sqlite` (or `usr/lib/sysimage/rpm/`), table
//! `Packages(hnum, blob)`, each blob one package header as rpm exports it. The older
//! BerkeleyDB (`Packages`) and ndb (`Packages.db`) formats are refused with an error:
//! an SBOM that silently lists nothing would be wrong.

use super::os_packages::{OsPackage, PackageDbError};
use crate::tree::{Kind, Tree};

const DB_DIRS: [&str; 2] = ["var/lib/rpm", "usr/lib/sysimage/rpm"];
const SQLITE_DB: &str = "rpmdb.sqlite";
const LEGACY_DBS: [&str; 2] = ["Packages", "Packages.db"];

const TAG_NAME: u32 = 1000;
const TAG_VERSION: u32 = 1001;
const TAG_RELEASE: u32 = 1002;
const TAG_EPOCH: u32 = 1003;
const TAG_ARCH: u32 = 1022;
const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_I18NSTRING: u32 = 9;

/// The packages rpm lists (`rpm -qa`), without the `gpg-pubkey` entries that stand for
/// imported signing keys.
pub fn rpm_packages(tree: &Tree) -> Result<Vec<OsPackage>, PackageDbError> {
    for dir in DB_DIRS {
        let path = format!("{dir}/{SQLITE_DB}");
        if let Some(Kind::File(bytes)) = tree.get_resolved(&path).map(|e| &e.kind) {
            let wal = match tree.get_resolved(&format!("{path}-wal")).map(|e| &e.kind) {
                Some(Kind::File(w)) => Some(w.as_slice()),
                _ => None,
            };
            return read_sqlite(bytes, wal)
                .map_err(|problem| PackageDbError::Rpm { path, problem });
        }
        for legacy in LEGACY_DBS {
            let path = format!("{dir}/{legacy}");
            if matches!(
                tree.get_resolved(&path).map(|e| &e.kind),
                Some(Kind::File(_))
            ) {
                return Err(PackageDbError::Rpm {
                    path,
                    problem: "rpm database in the BerkeleyDB or ndb format, which Harmony \
                              cannot read: only rpmdb.sqlite (rpm 4.16 and later) is supported"
                        .to_string(),
                });
            }
        }
    }
    Ok(Vec::new())
}

/// sqlite reads files: the database is copied out of the tree into a private directory.
fn read_sqlite(db: &[u8], wal: Option<&[u8]>) -> Result<Vec<OsPackage>, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a scratch directory: {e}"))?;
    let file = dir.path().join(SQLITE_DB);
    std::fs::write(&file, db).map_err(|e| format!("cannot copy to {}: {e}", file.display()))?;
    if let Some(wal) = wal {
        let wal_file = dir.path().join(format!("{SQLITE_DB}-wal"));
        std::fs::write(&wal_file, wal).map_err(|e| format!("cannot copy the WAL: {e}"))?;
    }
    let conn =
        rusqlite::Connection::open(&file).map_err(|e| format!("not an sqlite database: {e}"))?;
    let mut stmt = conn
        .prepare("SELECT hnum, blob FROM Packages ORDER BY hnum")
        .map_err(|e| format!("no Packages(hnum, blob) table: {e}"))?;
    let rows = stmt
        .query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })
        .map_err(|e| format!("cannot read Packages: {e}"))?;
    let mut out = Vec::new();
    for row in rows {
        let (hnum, blob) = row.map_err(|e| format!("cannot read Packages: {e}"))?;
        if let Some(pkg) =
            package_of_header(&blob).map_err(|e| format!("package header {hnum}: {e}"))?
        {
            out.push(pkg);
        }
    }
    out.sort();
    Ok(out)
}

/// A header blob: entry count and data size (big-endian u32s), the index entries
/// (tag, type, offset, count), then the data store. None for a `gpg-pubkey` entry.
fn package_of_header(blob: &[u8]) -> Result<Option<OsPackage>, String> {
    let be32 = |at: usize| -> Result<u32, String> {
        blob.get(at..at + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| format!("truncated at byte {at}"))
    };
    let entries = be32(0)? as usize;
    let data_len = be32(4)? as usize;
    let data_start = 8 + entries * 16;
    let data = blob
        .get(data_start..data_start + data_len)
        .ok_or("data store runs past the end of the header")?;
    let mut index = Vec::with_capacity(entries);
    for i in 0..entries {
        let at = 8 + i * 16;
        index.push((be32(at)?, be32(at + 4)?, be32(at + 8)? as usize));
    }
    let find = |tag: u32| index.iter().find(|(t, _, _)| *t == tag);
    let string = |tag: u32, name: &str| -> Result<String, String> {
        let (_, kind, offset) = find(tag).ok_or_else(|| format!("no {name} tag"))?;
        if *kind != TYPE_STRING && *kind != TYPE_I18NSTRING {
            return Err(format!("{name} tag is type {kind}, not a string"));
        }
        let rest = data
            .get(*offset..)
            .ok_or_else(|| format!("{name} offset out of range"))?;
        let end = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or_else(|| format!("{name} not terminated"))?;
        String::from_utf8(rest[..end].to_vec()).map_err(|_| format!("{name} is not UTF-8"))
    };
    let name = string(TAG_NAME, "name")?;
    if name == "gpg-pubkey" {
        return Ok(None);
    }
    let epoch = match find(TAG_EPOCH) {
        Some((_, TYPE_INT32, offset)) => {
            let b = data
                .get(*offset..*offset + 4)
                .ok_or("epoch offset out of range")?;
            Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }
        Some((_, kind, _)) => return Err(format!("epoch tag is type {kind}, not int32")),
        None => None,
    };
    Ok(Some(OsPackage {
        name,
        version: format!(
            "{}-{}",
            string(TAG_VERSION, "version")?,
            string(TAG_RELEASE, "release")?
        ),
        arch: string(TAG_ARCH, "arch")?,
        epoch,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sbom::os_packages::tests::put;
    use std::path::Path;
    use std::process::Command;

    fn run(cmd: &mut Command) -> String {
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("{cmd:?}: {e} (setup-host.sh installs rpm)"));
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// A real rpm database made by rpm itself: two packages built with rpmbuild (one
    /// with an epoch), recorded with `rpm -i --justdb` under a private --dbpath.
    fn make_rpmdb(dir: &Path) -> std::path::PathBuf {
        let top = dir.join("rpmbuild");
        let db = dir.join("db");
        for (name, epoch, version, release, arch) in [
            ("hello-fixture", None, "1.2.3", "4.el9", "noarch"),
            ("tzdata-fixture", Some(2), "2024a", "1.el9", "x86_64"),
        ] {
            let spec = dir.join(format!("{name}.spec"));
            let epoch = epoch.map(|e| format!("Epoch: {e}\n")).unwrap_or_default();
            std::fs::write(
                &spec,
                format!(
                "Name: {name}\n{epoch}Version: {version}\nRelease: {release}\nSummary: fixture\n\
                 License: MIT\nBuildArch: {arch}\n%description\nfixture\n%files\n"
            ),
            )
            .unwrap();
            run(Command::new("rpmbuild")
                .arg("-bb")
                .arg("--define")
                .arg(format!("_topdir {}", top.display()))
                .arg("--define")
                .arg(format!("_dbpath {}", db.display()))
                .arg("--target")
                .arg(arch)
                .arg(&spec));
        }
        run(Command::new("rpm").arg("--dbpath").arg(&db).arg("--initdb"));
        let mut install = Command::new("rpm");
        install.arg("--dbpath").arg(&db).args([
            "-i",
            "--justdb",
            "--nodeps",
            "--ignorearch",
            "--ignoreos",
            "--nosignature",
        ]);
        for entry in walk(&top.join("RPMS")) {
            install.arg(entry);
        }
        run(&mut install);
        db
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.extend(walk(&p))
            } else {
                out.push(p)
            }
        }
        out.sort();
        out
    }

    #[test]
    fn reads_what_rpm_itself_lists() {
        if !harmony_test_support::tool("rpmbuild") {
            harmony_test_support::skip("tool rpmbuild not installed: Debian package rpm");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let db = make_rpmdb(dir.path());
        let listed = run(Command::new("rpm").arg("--dbpath").arg(&db).args([
            "-qa",
            "--qf",
            "%{NAME} %{EPOCH} %{VERSION}-%{RELEASE} %{ARCH}\\n",
        ]));
        let mut expected: Vec<String> = listed.lines().map(|l| l.replace("(none)", "-")).collect();
        expected.sort();
        assert_eq!(expected.len(), 2, "{listed}");

        let mut tree = Tree::new();
        let bytes = std::fs::read(db.join(SQLITE_DB)).unwrap();
        put(&mut tree, "var/lib/rpm/rpmdb.sqlite", bytes);
        let ours: Vec<String> = rpm_packages(&tree)
            .unwrap()
            .iter()
            .map(|p| {
                format!(
                    "{} {} {} {}",
                    p.name,
                    p.epoch.map_or("-".to_string(), |e| e.to_string()),
                    p.version,
                    p.arch
                )
            })
            .collect();
        assert_eq!(ours, expected);
    }

    #[test]
    fn a_berkeley_db_is_refused_by_name() {
        let mut tree = Tree::new();
        put(&mut tree, "var/lib/rpm/Packages", vec![0; 64]);
        let err = rpm_packages(&tree).unwrap_err().to_string();
        assert!(
            err.starts_with("/var/lib/rpm/Packages: rpm database in the BerkeleyDB"),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_header_names_its_row() {
        let mut tree = Tree::new();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db.sqlite");
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.execute_batch(
            "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB NOT NULL); \
                            INSERT INTO Packages VALUES (7, x'0000000500');",
        )
        .unwrap();
        drop(conn);
        put(
            &mut tree,
            "var/lib/rpm/rpmdb.sqlite",
            std::fs::read(&file).unwrap(),
        );
        let err = rpm_packages(&tree).unwrap_err().to_string();
        assert!(
            err.starts_with("/var/lib/rpm/rpmdb.sqlite: package header 7: truncated"),
            "{err}"
        );
    }
}
