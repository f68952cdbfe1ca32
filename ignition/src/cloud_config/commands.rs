//! bootcmd and runcmd: turned into one shell script each exactly as cloud-init's
//! `util.shellify` does (a list item is a command whose words are single-quoted, a
//! string item is a line of shell), so a command behaves the same under both.

use serde_yaml_ng::Value;

use super::error::CloudConfigError;
use super::yaml_value::{string_of, wrong};

pub fn shellify(v: &Value, path: &str) -> Result<Vec<u8>, CloudConfigError> {
    let Value::Sequence(items) = v else {
        return Err(wrong(path, "a list of commands", v));
    };
    let mut script = String::from("#!/bin/sh\n");
    for (i, item) in items.iter().enumerate() {
        let ipath = format!("{path}[{i}]");
        match item {
            Value::String(line) => script.push_str(line),
            Value::Sequence(words) => {
                let quoted = words
                    .iter()
                    .enumerate()
                    .map(|(j, w)| {
                        let w = string_of(w, &format!("{ipath}[{j}]"))?;
                        Ok(format!("'{}'", w.replace('\'', "'\\''")))
                    })
                    .collect::<Result<Vec<_>, CloudConfigError>>()?;
                script.push_str(&quoted.join(" "));
            }
            other => return Err(wrong(&ipath, "a string or a list of words", other)),
        }
        script.push('\n');
    }
    Ok(script.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_cloud_init_shellify() {
        let v: Value =
            serde_yaml_ng::from_str("[\"echo $HOME > /x\", [sh, -c, \"echo 'it''s'\"], [ls, 1]]")
                .unwrap();
        assert_eq!(
            String::from_utf8(shellify(&v, "runcmd").unwrap()).unwrap(),
            "#!/bin/sh\necho $HOME > /x\n'sh' '-c' 'echo '\\''it'\\'''\\''s'\\'''\n'ls' '1'\n"
        );
        let bad: Value = serde_yaml_ng::from_str("[echo, {a: 1}]").unwrap();
        assert_eq!(
            shellify(&bad, "bootcmd").unwrap_err().to_string(),
            "bootcmd[1]: expected a string or a list of words, found a mapping"
        );
        let s: Value = serde_yaml_ng::from_str("\"echo hi\"").unwrap();
        assert!(shellify(&s, "runcmd").is_err());
    }
}
