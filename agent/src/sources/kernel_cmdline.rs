//! The kernel command line as `key[=value]` words; the last occurrence of a key wins,
//! as it does for the kernel's own parameters.

#[derive(Debug, Clone, Default)]
pub struct KernelCmdline {
    words: Vec<(String, Option<String>)>,
}

impl KernelCmdline {
    /// Double quotes group a value containing spaces (`a="x y"`), as the kernel allows.
    pub fn parse(s: &str) -> KernelCmdline {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        for c in s.chars().chain(std::iter::once(' ')) {
            match c {
                '"' => quoted = !quoted,
                c if c.is_whitespace() && !quoted => {
                    if !cur.is_empty() {
                        let w = std::mem::take(&mut cur);
                        words.push(match w.split_once('=') {
                            Some((k, v)) => (k.to_string(), Some(v.to_string())),
                            None => (w, None),
                        });
                    }
                }
                c => cur.push(c),
            }
        }
        KernelCmdline { words }
    }

    pub fn value(&self, key: &str) -> Option<&str> {
        self.words
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        let c = KernelCmdline::parse("a=1 quiet b=\"x y\" a=2\n");
        assert_eq!(c.value("a"), Some("2"));
        assert_eq!(c.value("b"), Some("x y"));
        assert_eq!(c.value("quiet"), None);
        assert_eq!(c.value("c"), None);
    }
}
