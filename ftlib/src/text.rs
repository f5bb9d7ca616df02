//! Terminal safety: text that came from a peer (names, messages) made safe to print, as
//! plain text or inside JSON. A leaf: it imports nothing of the crate, and everything that
//! shows peer text calls it.

/// Makes a name (a file name, a user name) safe to print as one word of a line: returned
/// unchanged when it holds no control, bidirectional-override, whitespace, `"` or `\`
/// character and is not empty; otherwise in double quotes, with `"`, `\` and the risky
/// characters escaped as Rust does (`\"`, `\\`, `\n`, `\u{1b}`). So a printed name is
/// either bare or starts with `"`, and reads back one way.
///
/// # Examples
/// ```
/// use ftlib::text::escape;
/// assert_eq!(escape("notes.pdf"), "notes.pdf");
/// assert_eq!(escape("my notes.pdf"), "\"my notes.pdf\"");
/// assert_eq!(escape("evil\x1b[2J"), "\"evil\\u{1b}[2J\"");
/// assert_eq!(escape("\"x\\u{1b}y\""), r#""\"x\\u{1b}y\"""#);
/// ```
pub fn escape(text: &str) -> String {
    let quote = text.is_empty()
        || text
            .chars()
            .any(|c| risky(c) || c.is_whitespace() || c == '"' || c == '\\');
    if quote { quoted(text) } else { text.to_owned() }
}

/// Makes free text from a peer (an error message) safe to print: returned unchanged when it
/// holds no control or bidirectional-override characters, otherwise quoted as [`escape`]
/// quotes.
///
/// # Examples
/// ```
/// use ftlib::text::escape_message;
/// assert_eq!(escape_message("a.txt already exists"), "a.txt already exists");
/// assert_eq!(escape_message("evil\x1b[2J"), "\"evil\\u{1b}[2J\"");
/// ```
pub fn escape_message(text: &str) -> String {
    if text.chars().any(risky) {
        quoted(text)
    } else {
        text.to_owned()
    }
}

/// `text` in double quotes, with `"`, `\` and the risky characters escaped.
fn quoted(text: &str) -> String {
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
        assert_eq!(escape("plain_name.txt"), "plain_name.txt");
        assert_eq!(escape("plain name.txt"), "\"plain name.txt\"");
        assert_eq!(escape(""), "\"\"");
        assert_eq!(escape("tab\there"), "\"tab\\there\"");
        assert_eq!(escape("back\\slash"), "\"back\\\\slash\"");
        assert_eq!(escape("a\nb"), "\"a\\nb\"");
        assert_eq!(escape_message("plain words"), "plain words");
        assert_eq!(escape("q\"\u{202e}"), "\"q\\\"\\u{202e}\"");
    }
}
