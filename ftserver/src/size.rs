//! Sizes on the command line: a number of bytes, optionally with a unit — `K`, `M`, `G`, `T`
//! (or `KiB` … `TiB`) for powers of 1024, `KB` … `TB` for powers of 1000, in any case.

/// Parses `text` as a size in bytes.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let wrong = || {
        format!(
            "{text:?} is not a size: a number of bytes, optionally with a unit (K, M, G, T or \
             KiB, MiB, GiB, TiB for powers of 1024; KB, MB, GB, TB for powers of 1000)"
        )
    };
    let number: u64 = digits.parse().map_err(|_| wrong())?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(wrong()),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is more bytes than fit in 64 bits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_with_and_without_units() {
        let rows = [
            ("1000000", 1_000_000),
            ("0", 0),
            ("1G", 1 << 30),
            ("1g", 1 << 30),
            ("16GiB", 16 << 30),
            ("512 KiB", 512 << 10),
            ("3M", 3 << 20),
            ("2T", 2 << 40),
            ("5MB", 5_000_000),
            ("1kb", 1_000),
            ("7B", 7),
        ];
        for (text, want) in rows {
            assert_eq!(parse_size(text), Ok(want), "{text}");
        }
        for bad in ["", "G", "1.5G", "-1", "1X", "1 G B", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }
}
