//! `kernel.cmdline`: one kernel argument per item, and none cut in two by YAML.
//!
//! In a flow sequence a comma separates items, so `[console=ttyS0,115200, quiet]` is three
//! items and the image would boot with `console=ttyS0 115200 quiet`. Kernel values often
//! hold commas (`console=ttyS0,115200n8`, `modprobe.blacklist=a,b`), so an item that a
//! comma split off its `key=value` neighbour is refused, never joined back by guessing.

use super::validate::Checker;

pub(super) fn check(c: &mut Checker, args: &[String]) {
    for (i, arg) in args.iter().enumerate() {
        let field = format!("kernel.cmdline[{i}]");
        if arg.is_empty() || arg.chars().any(char::is_whitespace) {
            c.fail(
                &field,
                format!("`{arg}` must be one argument without spaces"),
            );
            continue;
        }
        let Some(before) = i.checked_sub(1).map(|b| &args[b]) else {
            continue;
        };
        let glued = c.location(&field).is_some_and(|l| l.after_comma);
        if (glued && before.contains('=')) || (is_console(before) && is_serial_options(arg)) {
            c.fail(
                &field,
                format!(
                    "`{arg}` was split off `{before}` by a comma (YAML separates flow-sequence \
                     items at commas): quote the whole argument, e.g. \"{before},{arg}\""
                ),
            );
        }
    }
}

fn is_console(arg: &str) -> bool {
    arg.starts_with("console=")
}

/// A serial console's options as the kernel writes them after the device: `115200`,
/// `115200n8`, `9600n8r`.
fn is_serial_options(arg: &str) -> bool {
    let rest = arg.trim_start_matches(|ch: char| ch.is_ascii_digit());
    rest.len() < arg.len() && rest.len() <= 3 && rest.chars().all(|ch| "noe5678r".contains(ch))
}
