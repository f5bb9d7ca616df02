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
