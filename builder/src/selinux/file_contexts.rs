//! SELinux `file_contexts`: which label each path gets, read as libselinux reads it.
//!
//! Lines are `REGEX [TYPE] CONTEXT`: the regex is anchored at both ends, TYPE (`--`
//! file, `-d`, `-l`, `-c`, `-b`, `-p`, `-s`) narrows it to one kind of entry, and
//! `<<none>>` means "leave unlabelled". As libselinux's label_file does, exact paths
//! (no regex characters) are moved after the regexes, and the last match wins.

use regex::Regex;

use crate::tree::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    File,
    Dir,
    Symlink,
    CharDevice,
    BlockDevice,
    Pipe,
    Socket,
}

impl FileType {
    fn parse(flag: &str) -> Option<Self> {
        Some(match flag {
            "--" => FileType::File,
            "-d" => FileType::Dir,
            "-l" => FileType::Symlink,
            "-c" => FileType::CharDevice,
            "-b" => FileType::BlockDevice,
            "-p" => FileType::Pipe,
            "-s" => FileType::Socket,
            _ => return None,
        })
    }

    pub fn of(kind: &Kind) -> Self {
        match kind {
            Kind::File(_) => FileType::File,
            Kind::Dir => FileType::Dir,
            Kind::Symlink(_) => FileType::Symlink,
            Kind::CharDevice { .. } => FileType::CharDevice,
            Kind::BlockDevice { .. } => FileType::BlockDevice,
            Kind::Fifo => FileType::Pipe,
            Kind::Socket => FileType::Socket,
        }
    }
}

#[derive(Debug)]
struct Spec {
    /// The literal start every matching path has (a cheap filter before the regex).
    prefix: String,
    /// None for an exact path (compared as a string).
    regex: Option<Regex>,
    exact: String,
    file_type: Option<FileType>,
    /// None: `<<none>>`.
    context: Option<String>,
}

#[derive(Debug, Default)]
pub struct FileContexts {
    specs: Vec<Spec>,
}

impl FileContexts {
    /// Parse one file's text and add its specs after those already read (later files,
    /// `.homedirs` then `.local`, override earlier ones). `label` names it in errors.
    pub fn add(&mut self, text: &str, label: &str) -> Result<(), String> {
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("{label}:{}", n + 1);
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (pattern, file_type, context) = match fields[..] {
                [p, c] => (p, None, c),
                [p, t, c] => {
                    let t = FileType::parse(t).ok_or_else(|| {
                        format!(
                            "{}: unknown file type `{t}` (one of -- -d -l -c -b -p -s)",
                            at()
                        )
                    })?;
                    (p, Some(t), c)
                }
                _ => {
                    return Err(format!(
                        "{}: expected `REGEX [TYPE] CONTEXT`, found {} fields",
                        at(),
                        fields.len()
                    ))
                }
            };
            let context = (context != "<<none>>").then(|| context.to_string());
            let regex = if has_meta_chars(pattern) {
                let anchored = format!("^(?:{pattern})$");
                Some(Regex::new(&anchored).map_err(|e| format!("{}: `{pattern}`: {e}", at()))?)
            } else {
                None
            };
            self.specs.push(Spec {
                prefix: literal_prefix(pattern),
                regex,
                exact: unescape(pattern),
                file_type,
                context,
            });
        }
        Ok(())
    }

    /// After every file is added: exact paths go last, keeping their order.
    pub fn finish(mut self) -> Self {
        let (exact, regexes): (Vec<Spec>, Vec<Spec>) =
            self.specs.drain(..).partition(|s| s.regex.is_none());
        self.specs = regexes.into_iter().chain(exact).collect();
        self
    }

    /// The label of an absolute `path` of kind `file_type`: Some(None) for `<<none>>`,
    /// None when no spec matches.
    pub fn lookup(&self, path: &str, file_type: FileType) -> Option<Option<&str>> {
        self.specs
            .iter()
            .rev()
            .filter(|s| s.file_type.is_none_or(|t| t == file_type))
            .filter(|s| path.starts_with(&s.prefix))
            .find(|s| match &s.regex {
                Some(r) => r.is_match(path),
                None => s.exact == path,
            })
            .map(|s| s.context.as_deref())
    }

    pub fn len(&self) -> usize {
        self.specs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }
}

/// libselinux's test: any of `.^$?*+|[({` outside a backslash escape.
fn has_meta_chars(pattern: &str) -> bool {
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '.' | '^' | '$' | '?' | '*' | '+' | '|' | '[' | '(' | '{' => return true,
            _ => {}
        }
    }
    false
}

/// An exact pattern's path: escapes removed (`/etc/a\.b` is `/etc/a.b`).
fn unescape(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' {
            chars.next().unwrap_or('\\')
        } else {
            c
        });
    }
    out
}

/// The characters every match must start with: the literal run before the first regex
/// character, less its last character when a quantifier follows (it may repeat zero
/// times); empty when the pattern has a top-level alternation.
fn literal_prefix(pattern: &str) -> String {
    if has_top_level_alternation(pattern) {
        return String::new();
    }
    let mut prefix = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if e.is_ascii_punctuation() => prefix.push(e),
                _ => return drop_last(prefix, true),
            },
            '?' | '*' | '{' => return drop_last(prefix, true),
            '+' | '.' | '^' | '$' | '|' | '[' | '(' => return prefix,
            c => prefix.push(c),
        }
    }
    prefix
}

fn drop_last(mut prefix: String, quantified: bool) -> String {
    if quantified {
        prefix.pop();
    }
    prefix
}

/// A `|` outside every group and bracket: the pattern is several alternatives.
fn has_top_level_alternation(pattern: &str) -> bool {
    let (mut depth, mut in_class) = (0i32, false);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth += 1,
            ')' if !in_class => depth -= 1,
            '|' if !in_class && depth == 0 => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as CentOS Stream 9's targeted policy writes them.
    const CONTEXTS: &str = r#"
/.*				system_u:object_r:default_t:s0
/[^/]+		--	system_u:object_r:etc_runtime_t:s0
/		-d	system_u:object_r:root_t:s0
/usr(/.*)?			system_u:object_r:usr_t:s0
/usr/bin(/.*)?			system_u:object_r:bin_t:s0
/usr/bin/ping	--	system_u:object_r:ping_exec_t:s0
/usr/bin/kubelet	--	system_u:object_r:kubelet_exec_t:s0
/etc(/.*)?			system_u:object_r:etc_t:s0
/etc/shadow.*		--	system_u:object_r:shadow_t:s0
/dev(/.*)?			system_u:object_r:device_t:s0
/dev/null		-c	system_u:object_r:null_device_t:s0
/var/run		-l	system_u:object_r:var_run_t:s0
/proc(/.*)?			<<none>>
/var/lib/containerd(/.*)?		system_u:object_r:container_var_lib_t:s0
/opt/cni/bin(/.*)?		system_u:object_r:bin_t:s0
"#;

    fn contexts() -> FileContexts {
        let mut fc = FileContexts::default();
        fc.add(CONTEXTS, "file_contexts").unwrap();
        fc.finish()
    }

    #[test]
    fn the_last_match_wins_and_exact_paths_beat_regexes() {
        let fc = contexts();
        let label = |p, t| fc.lookup(p, t).flatten();
        assert_eq!(
            label("/usr/bin/ping", FileType::File),
            Some("system_u:object_r:ping_exec_t:s0")
        );
        assert_eq!(
            label("/usr/bin/ls", FileType::File),
            Some("system_u:object_r:bin_t:s0")
        );
        assert_eq!(
            label("/usr/bin", FileType::Dir),
            Some("system_u:object_r:bin_t:s0")
        );
        assert_eq!(
            label("/usr/share/x", FileType::File),
            Some("system_u:object_r:usr_t:s0")
        );
        assert_eq!(
            label("/", FileType::Dir),
            Some("system_u:object_r:root_t:s0")
        );
        assert_eq!(
            label("/etc/shadow", FileType::File),
            Some("system_u:object_r:shadow_t:s0")
        );
        assert_eq!(
            label("/etc/shadow-", FileType::File),
            Some("system_u:object_r:shadow_t:s0")
        );
        // The type narrows: a directory named like a labelled file keeps the wider label.
        assert_eq!(
            label("/etc/shadow.d", FileType::Dir),
            Some("system_u:object_r:etc_t:s0")
        );
        assert_eq!(
            label("/dev/null", FileType::CharDevice),
            Some("system_u:object_r:null_device_t:s0")
        );
        assert_eq!(
            label("/.autorelabel", FileType::File),
            Some("system_u:object_r:etc_runtime_t:s0")
        );
        assert_eq!(
            label("/srv/x", FileType::Dir),
            Some("system_u:object_r:default_t:s0")
        );
        assert_eq!(fc.lookup("/proc/1", FileType::Dir), Some(None), "<<none>>");
    }

    #[test]
    fn prefixes_only_narrow_never_exclude_a_match() {
        assert_eq!(literal_prefix("/usr(/.*)?"), "/usr");
        assert_eq!(literal_prefix("/etc/shadow.*"), "/etc/shadow");
        assert_eq!(literal_prefix("/var/lib/rpm-state?"), "/var/lib/rpm-stat");
        assert_eq!(literal_prefix(r"/etc/a\.b(/.*)?"), "/etc/a.b");
        assert_eq!(literal_prefix("/a|/b"), "");
        assert_eq!(literal_prefix("/a(/x)?|/b"), "");
        assert_eq!(literal_prefix("/a(/x|/y)?"), "/a");
        assert_eq!(unescape(r"/etc/a\.b"), "/etc/a.b");
        assert!(!has_meta_chars(r"/etc/a\.b"));
        assert!(has_meta_chars("/etc/a.b"));
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let mut fc = FileContexts::default();
        let err = fc
            .add("/a -x system_u:object_r:a_t:s0\n", "fc")
            .unwrap_err();
        assert!(err.starts_with("fc:1: unknown file type `-x`"), "{err}");
        let err = fc
            .add("\n/a(  system_u:object_r:a_t:s0\n", "fc")
            .unwrap_err();
        assert!(err.starts_with("fc:2: `/a(`:"), "{err}");
        let err = fc.add("/a\n", "fc").unwrap_err();
        assert!(
            err.starts_with("fc:1: expected `REGEX [TYPE] CONTEXT`"),
            "{err}"
        );
    }
}
