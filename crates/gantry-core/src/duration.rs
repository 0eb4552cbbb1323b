//! Durations as users write them in specs (`90s`, `10m`, `1h30m`, `250ms`, or a bare number of
//! seconds), parsed to milliseconds.

/// Parses a human duration into milliseconds. A bare integer means seconds (the `orders` payload's `timeout`).
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    if let Ok(secs) = s.parse::<u64>() {
        return secs
            .checked_mul(1000)
            .ok_or_else(|| format!("duration `{text}` is too large"));
    }
    let mut total: u64 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(format!(
                "bad duration `{text}`: expected a number followed by ms, s, m, h or d (e.g. `10m`, `1h30m`)"
            ));
        }
        let (num, tail) = rest.split_at(digits);
        let unit_len = tail.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let (unit, tail) = tail.split_at(unit_len);
        let factor: u64 = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => {
                return Err(format!(
                    "bad duration `{text}`: `{num}` has no unit (ms, s, m, h, d)"
                ));
            }
            other => {
                return Err(format!(
                    "bad duration `{text}`: unknown unit `{other}` (use ms, s, m, h or d)"
                ));
            }
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("duration `{text}` is too large"))?;
        total = n
            .checked_mul(factor)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("duration `{text}` is too large"))?;
        rest = tail;
    }
    Ok(total)
}

/// Formats milliseconds the way users write them (`1h30m`, `90s` becomes `1m30s`, `250ms`).
pub fn format_duration_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if !ms.is_multiple_of(1000) {
        return if ms < 1000 {
            format!("{ms}ms")
        } else {
            format!("{:.1}s", ms as f64 / 1000.0)
        };
    }
    let mut secs = ms / 1000;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= size {
            out.push_str(&format!("{}{unit}", secs / size));
            secs %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_table() {
        let ok = [
            ("10m", 600_000),
            ("1h30m", 5_400_000),
            ("90", 90_000),
            ("250ms", 250),
            ("2d", 172_800_000),
            (" 5s ", 5_000),
            ("1m30s", 90_000),
        ];
        for (text, want) in ok {
            assert_eq!(parse_duration_ms(text), Ok(want), "{text}");
        }
        for bad in [
            "",
            "m",
            "10x",
            "ten",
            "5 m",
            "-1s",
            "99999999999999999999s",
            "1.5h",
        ] {
            assert!(parse_duration_ms(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn formats_round_trip() {
        for ms in [1000u64, 90_000, 5_400_000, 250, 86_400_000 + 1000] {
            assert_eq!(parse_duration_ms(&format_duration_ms(ms)).ok(), Some(ms));
        }
    }
}
