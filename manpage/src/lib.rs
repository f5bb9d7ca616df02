//! What `ftserver --man` and `ftclient --man` share: clap_mangen's sections without the
//! preamble each write repeats ([`section`]), and the after-help text of `--help` split into
//! examples and paragraphs ([`after_help`]), written as an EXAMPLES section (each command on
//! a line of its own, never broken) and as paragraphs of the description.

use std::io;

use clap_mangen::roff::{Roff, bold, roman};

/// The examples and the other paragraphs of `cmd`'s after-help text (see
/// [`split_after_help`]), owned.
pub fn after_help(cmd: &clap::Command) -> (Vec<(String, String)>, Vec<Vec<String>>) {
    let after = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(ToString::to_string)
        .unwrap_or_default();
    let (examples, prose) = split_after_help(&after);
    let prose = prose
        .into_iter()
        .map(|lines| lines.into_iter().map(str::to_owned).collect())
        .collect();
    (examples, prose)
}

/// The paragraphs as roff, each a filled `.PP`.
pub fn paragraphs(prose: &[Vec<String>]) -> String {
    let mut description = Roff::new();
    for paragraph in prose {
        description.control("PP", []);
        for line in paragraph {
            // A text line starting with a space would break the filled paragraph.
            description.text([roman(line.trim_start())]);
        }
    }
    section(|w| description.to_writer(w))
}

/// The EXAMPLES section (empty without examples).
pub fn examples(examples: &[(String, String)]) -> String {
    if examples.is_empty() {
        return String::new();
    }
    let mut block = Roff::new();
    block.control("SH", ["EXAMPLES"]);
    for (command, what) in examples {
        // Not filled: a command is never broken across lines.
        block.control("PP", []).control("nf", []);
        block.text([bold(command.as_str())]);
        block.control("fi", []).control("RS", []);
        block.text([roman(what.as_str())]);
        block.control("RE", []);
    }
    section(|w| block.to_writer(w))
}

/// clap_mangen's synopsis of `cmd` with each option's value named, as `--help` shows it:
/// `[--root DIR]` where clap_mangen writes `[--root]`.
pub fn synopsis(cmd: &clap::Command) -> String {
    let mut text = section(|w| clap_mangen::Man::new(cmd.clone()).render_synopsis_section(w));
    for arg in cmd.get_arguments() {
        let (Some(long), Some(values)) = (arg.get_long(), arg.get_value_names()) else {
            continue;
        };
        if !arg.get_action().takes_values() {
            continue;
        }
        let names: Vec<String> = values
            .iter()
            .map(|v| format!("\\fI{}\\fR", escape(v)))
            .collect();
        let bare = format!("\\fB\\-\\-{}\\fR]", escape(long));
        let named = format!("\\fB\\-\\-{}\\fR {}]", escape(long), names.join(" "));
        text = text.replace(&bare, &named);
    }
    text
}

/// `text` as roff prints it literally: backslashes and hyphens escaped.
fn escape(text: &str) -> String {
    text.replace('\\', "\\e").replace('-', "\\-")
}

/// One section as clap_mangen or roff writes it, without the preamble each write repeats.
pub fn section(render: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = render(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let preamble = Roff::new().render();
    text.strip_prefix(&preamble).unwrap_or(&text).to_owned()
}

/// The examples of an after-help text (`  COMMAND  WHAT` lines under `Examples:`, a line
/// indented further continuing the WHAT above) and its other paragraphs, each a list of
/// lines.
pub fn split_after_help(text: &str) -> (Vec<(String, String)>, Vec<Vec<&str>>) {
    let mut examples: Vec<(String, String)> = Vec::new();
    let mut prose: Vec<Vec<&str>> = Vec::new();
    let mut in_paragraph = false;
    for line in text.lines() {
        let body = line.trim_start();
        let indent = line.len() - body.len();
        if body.is_empty() || (indent == 0 && body == "Examples:") {
            in_paragraph = false;
        } else if in_paragraph {
            if let Some(paragraph) = prose.last_mut() {
                paragraph.push(line);
            }
        } else if indent > 2 {
            if let Some((_, what)) = examples.last_mut() {
                if !what.is_empty() {
                    what.push(' ');
                }
                what.push_str(body);
            }
        } else if indent > 0 {
            let (command, what) = body.split_once("  ").unwrap_or((body, ""));
            examples.push((command.to_owned(), what.trim().to_owned()));
        } else {
            prose.push(vec![line]);
            in_paragraph = true;
        }
    }
    (examples, prose)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_synopsis_names_option_values() {
        let cmd = clap::Command::new("t")
            .arg(clap::Arg::new("root").long("root").value_name("DIR"))
            .arg(
                clap::Arg::new("max-size")
                    .long("max-size")
                    .value_name("N-BYTES"),
            )
            .arg(
                clap::Arg::new("plain")
                    .long("plain")
                    .action(clap::ArgAction::SetTrue),
            );
        let text = synopsis(&cmd);
        for needle in [
            "[\\fB\\-\\-root\\fR \\fIDIR\\fR]",
            "[\\fB\\-\\-max\\-size\\fR \\fIN\\-BYTES\\fR]",
            "[\\fB\\-\\-plain\\fR]",
        ] {
            assert!(text.contains(needle), "{needle:?} not in {text:?}");
        }
    }

    #[test]
    fn after_help_splits_into_examples_and_paragraphs() {
        let text = "\
Examples:
  tool a b        does a
  tool --long c d --e   does c,
                  and more
  tool bare

First paragraph
  goes on.

Second.";
        let (examples, prose) = split_after_help(text);
        assert_eq!(
            examples,
            [
                ("tool a b".to_owned(), "does a".to_owned()),
                (
                    "tool --long c d --e".to_owned(),
                    "does c, and more".to_owned()
                ),
                ("tool bare".to_owned(), String::new()),
            ]
        );
        assert_eq!(
            prose,
            [vec!["First paragraph", "  goes on."], vec!["Second."]]
        );
    }
}
