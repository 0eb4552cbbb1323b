//! Sizes in bytes as people write them (`512m`, `2g`, `64MiB`, `1024k`, `100000`), parsed, and
//! shown back in the largest binary unit that divides them.

const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];

/// `512m`, `2g`, `64MiB`, `1024k`, `100000` (bytes). Units are binary; `k`/`m`/`g` may be
/// followed by `b`, `ib` (any case).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let s = text.trim();
    let lower = s.to_ascii_lowercase();
    let digits = lower.len() - lower.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let (num, unit) = lower.split_at(digits);
    let mult: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => 0,
    };
    num.parse::<u64>()
        .ok()
        .filter(|_| mult > 0)
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("`{s}` is not a size like 512m or 2g"))
}

/// `64 MiB`, `1536 KiB`, `100 bytes`: exact, in the largest unit that divides the size.
pub fn format_bytes(n: u64) -> String {
    match UNITS
        .iter()
        .find(|(unit, _)| n > 0 && n.is_multiple_of(*unit))
    {
        Some((unit, name)) => format!("{} {name}", n / unit),
        None => format!("{n} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_show() {
        for (text, want) in [
            ("512m", 512 << 20),
            ("2g", 2 << 30),
            ("2G", 2 << 30),
            ("1024k", 1 << 20),
            ("64MiB", 64 << 20),
            ("64 mb", 64 << 20),
            ("100000", 100_000),
            ("10b", 10),
        ] {
            assert_eq!(parse_bytes(text), Ok(want), "{text}");
        }
        for bad in ["", "m", "1.5g", "1t", "-1", "99999999999999999999g"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        assert_eq!(format_bytes(64 << 20), "64 MiB");
        assert_eq!(format_bytes(1536 << 10), "1536 KiB");
        assert_eq!(format_bytes(3 << 30), "3 GiB");
        assert_eq!(format_bytes(100), "100 bytes");
    }
}
