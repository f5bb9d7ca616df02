//! Terminal safety: text that came from a peer (names, messages) made safe to print, as
//! plain text or inside JSON. A leaf: it imports nothing of the crate, and everything that
//! shows peer text calls it.

/// Makes text from a peer safe to print: returned unchanged when it holds no control or
/// bidirectional-override characters, otherwise quoted with those characters escaped.
///
/// # Examples
/// ```
/// use ftlib::text::escape;
/// assert_eq!(escape("notes.pdf"), "notes.pdf");
/// assert_eq!(escape("evil\x1b[2J"), "\"evil\\u{1b}[2J\"");
/// ```
pub fn escape(text: &str) -> String {
    if text.chars().any(risky) {
        let mut out = String::with_capacity(text.len() + 8);
        out.push('"');
        for c in text.chars() {
            if risky(c) || c == '"' || c == '\\' {
                out.extend(c.escape_default());
            } else {
                out.push(c);
            }
        }
        out.push('"');
        out
    } else {
        text.to_owned()
    }
}

/// Characters a terminal may act on: controls (C0, DEL, C1 such as the one-byte CSI
/// U+009B) and the bidirectional overrides that reorder what is shown.
fn risky(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A JSON text with every character a terminal might act on written as a `\uXXXX`
/// escape. serde_json escapes only U+0000..U+001F; such characters only occur inside
/// strings, where the escape means the same character, so the JSON value is unchanged.
///
/// # Examples
/// ```
/// let raw = serde_json::to_string("a\u{9b}31m").unwrap();
/// assert_eq!(ftlib::text::terminal_safe_json(&raw), r#""a\u009b31m""#);
/// ```
pub fn terminal_safe_json(json: &str) -> String {
    if !json.chars().any(risky) {
        return json.to_owned();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if risky(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escapes_what_a_terminal_acts_on_and_keeps_the_value() {
        let raw = "\"a\u{1b}\u{7f}\u{9b}\u{202e}é\"";
        let safe = terminal_safe_json(raw);
        assert_eq!(safe, r#""a\u001b\u007f\u009b\u202eé""#);
        assert_eq!(terminal_safe_json("\"plain\""), "\"plain\"");
    }

    #[test]
    fn escape_cases() {
        assert_eq!(escape("plain name.txt"), "plain name.txt");
        assert_eq!(escape("a\nb"), "\"a\\nb\"");
        assert_eq!(escape("q\"\u{202e}"), "\"q\\\"\\u{202e}\"");
    }
}
