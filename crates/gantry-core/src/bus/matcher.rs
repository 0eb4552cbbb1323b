//! Leaf matchers of the EventBridge pattern language: what one value in a pattern's array
//! accepts (`"x"`, `3`, `{"prefix": …}`, `{"numeric": […]}`, `{"cidr": …}`, …), compiled
//! once (lower-cased strings, parsed networks, split wildcards) so matching only compares.

use std::net::IpAddr;

/// A scalar of an event: what a leaf of the event's JSON holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Str(std::borrow::Cow<'a, str>),
    Num(f64),
    Bool(bool),
    Null,
}

/// One accepted value or operator of a pattern field.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    /// A string, compared exactly.
    Str(String),
    /// A number, compared as a number (3 equals 3.0).
    Num(f64),
    Bool(bool),
    Null,
    Prefix(String),
    /// Stored lower-cased.
    PrefixIgnoreCase(String),
    Suffix(String),
    SuffixIgnoreCase(String),
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    Numeric(Range),
    Exists(bool),
    Cidr(Cidr),
    AnythingBut(AnythingBut),
}

/// `anything-but`: the field exists and its value is none of these.
#[derive(Debug, Clone, PartialEq)]
pub enum AnythingBut {
    Strs(Vec<String>),
    Nums(Vec<f64>),
    Prefix(String),
    Suffix(String),
    Wildcard(Wildcard),
    /// Lower-cased.
    IgnoreCase(Vec<String>),
}

/// A numeric range; a bound is (value, inclusive).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub lower: Option<(f64, bool)>,
    pub upper: Option<(f64, bool)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    bits: u8,
}

/// A wildcard pattern split at its (unescaped) `*`s: literal pieces, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wildcard {
    pieces: Vec<String>,
}

/// The largest magnitude EventBridge compares numbers in.
pub const NUMERIC_LIMIT: f64 = 5.0e9;

impl Matcher {
    /// Whether `v` (one leaf value of the event) is accepted. `Exists` is decided by the caller.
    pub fn accepts(&self, v: &Scalar<'_>) -> bool {
        match (self, v) {
            (Matcher::Str(s), Scalar::Str(e)) => s == e,
            (Matcher::Num(n), Scalar::Num(e)) => n == e,
            (Matcher::Bool(b), Scalar::Bool(e)) => b == e,
            (Matcher::Null, Scalar::Null) => true,
            (Matcher::Prefix(p), Scalar::Str(e)) => e.starts_with(p.as_str()),
            (Matcher::PrefixIgnoreCase(p), Scalar::Str(e)) => lower(e).starts_with(p.as_str()),
            (Matcher::Suffix(p), Scalar::Str(e)) => e.ends_with(p.as_str()),
            (Matcher::SuffixIgnoreCase(p), Scalar::Str(e)) => lower(e).ends_with(p.as_str()),
            (Matcher::EqualsIgnoreCase(p), Scalar::Str(e)) => lower(e) == *p,
            (Matcher::Wildcard(w), Scalar::Str(e)) => w.matches(e),
            (Matcher::Numeric(r), Scalar::Num(e)) => r.contains(*e),
            (Matcher::Exists(want), _) => *want,
            (Matcher::Cidr(c), Scalar::Str(e)) => c.contains(e),
            (Matcher::AnythingBut(a), v) => a.accepts(v),
            _ => false,
        }
    }
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

impl AnythingBut {
    fn accepts(&self, v: &Scalar<'_>) -> bool {
        match (self, v) {
            (AnythingBut::Strs(list), Scalar::Str(e)) => !list.iter().any(|s| s == e),
            (AnythingBut::Nums(list), Scalar::Num(e)) => !list.contains(e),
            (AnythingBut::Prefix(p), Scalar::Str(e)) => !e.starts_with(p.as_str()),
            (AnythingBut::Suffix(p), Scalar::Str(e)) => !e.ends_with(p.as_str()),
            (AnythingBut::Wildcard(w), Scalar::Str(e)) => !w.matches(e),
            (AnythingBut::IgnoreCase(list), Scalar::Str(e)) => {
                let e = lower(e);
                !list.contains(&e)
            }
            // A value of another type is not any of the listed ones.
            _ => true,
        }
    }
}

impl Range {
    pub fn contains(&self, x: f64) -> bool {
        let above = match self.lower {
            None => true,
            Some((b, true)) => x >= b,
            Some((b, false)) => x > b,
        };
        let below = match self.upper {
            None => true,
            Some((b, true)) => x <= b,
            Some((b, false)) => x < b,
        };
        above && below
    }

    /// `["<", 5]`, `[">=", 0, "<", 10]`, `["=", 3]`.
    pub fn parse(items: &[serde_json::Value]) -> Result<Range, String> {
        let bad = |why: &str| Err(format!("bad numeric range: {why}"));
        if items.is_empty() || !items.len().is_multiple_of(2) {
            return bad("expected operator and number pairs, like [\">\", 0, \"<=\", 5]");
        }
        let mut r = Range {
            lower: None,
            upper: None,
        };
        let mut equals = false;
        for pair in items.chunks(2) {
            let Some(op) = pair[0].as_str() else {
                return bad("an operator must be one of <, <=, =, >, >=");
            };
            let Some(n) = pair[1].as_f64().filter(|_| pair[1].is_number()) else {
                return bad(&format!("`{op}` must be followed by a number"));
            };
            if !(-NUMERIC_LIMIT..=NUMERIC_LIMIT).contains(&n) {
                return bad(&format!(
                    "{n} is outside -5e9..5e9, the numbers EventBridge compares"
                ));
            }
            let slot = match op {
                ">" | ">=" => &mut r.lower,
                "<" | "<=" => &mut r.upper,
                "=" => {
                    if items.len() != 2 {
                        return bad("`=` cannot be combined with other operators");
                    }
                    equals = true;
                    r.lower = Some((n, true));
                    r.upper = Some((n, true));
                    continue;
                }
                other => return bad(&format!("unknown operator `{other}`")),
            };
            if slot.is_some() {
                return bad("at most one lower and one upper bound");
            }
            *slot = Some((n, op.ends_with('=')));
        }
        if !equals
            && let (Some((lo, _)), Some((hi, _))) = (r.lower, r.upper)
            && lo >= hi
        {
            return bad("the lower bound must be below the upper bound");
        }
        Ok(r)
    }
}

impl Cidr {
    /// `10.0.0.0/24` or `2001:db8::/32`.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || format!("`{s}` is not a CIDR block like 10.0.0.0/24 or 2001:db8::/32");
        let (ip, bits) = s.split_once('/').ok_or_else(bad)?;
        let net: IpAddr = ip.parse().map_err(|_| bad())?;
        let bits: u8 = bits.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return Err(bad());
        }
        Ok(Cidr { net, bits })
    }

    pub fn contains(&self, addr: &str) -> bool {
        let Ok(ip) = addr.parse::<IpAddr>() else {
            return false;
        };
        let (a, n, width) = match (ip, self.net) {
            (IpAddr::V4(a), IpAddr::V4(n)) => (u32::from(a) as u128, u32::from(n) as u128, 32),
            (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n), 128),
            _ => return false,
        };
        let shift = width - self.bits as u32;
        if shift >= 128 {
            return true;
        }
        (a >> shift) == (n >> shift)
    }
}

impl Wildcard {
    /// `*` matches any run of characters; `\*` is a literal star and `\\` a backslash.
    pub fn parse(s: &str) -> Result<Wildcard, String> {
        let mut pieces = vec![String::new()];
        let mut chars = s.chars().peekable();
        let mut last_star = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(e @ ('*' | '\\')) => {
                        pieces.last_mut().expect("one piece").push(e);
                        last_star = false;
                    }
                    _ => {
                        return Err(format!(
                            "wildcard `{s}`: `\\` must be followed by `*` or `\\`"
                        ));
                    }
                },
                '*' => {
                    if last_star {
                        return Err(format!(
                            "wildcard `{s}`: consecutive wildcard characters are not allowed"
                        ));
                    }
                    pieces.push(String::new());
                    last_star = true;
                }
                c => {
                    pieces.last_mut().expect("one piece").push(c);
                    last_star = false;
                }
            }
        }
        Ok(Wildcard { pieces })
    }

    pub fn matches(&self, text: &str) -> bool {
        let p = &self.pieces;
        if p.len() == 1 {
            return text == p[0];
        }
        let (first, last) = (&p[0], &p[p.len() - 1]);
        if text.len() < first.len() + last.len()
            || !text.starts_with(first.as_str())
            || !text.ends_with(last.as_str())
        {
            return false;
        }
        let mut rest = &text[first.len()..text.len() - last.len()];
        for piece in &p[1..p.len() - 1] {
            match rest.find(piece.as_str()) {
                Some(i) => rest = &rest[i + piece.len()..],
                None => return false,
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wildcards() {
        let w = |p: &str, t: &str| Wildcard::parse(p).unwrap().matches(t);
        assert!(w("*.png", "a/b.png") && !w("*.png", "a.jpg"));
        assert!(w("a*b*c", "abc") && w("a*b*c", "aXbYc") && !w("a*b*c", "acb"));
        assert!(w("ab*ab", "abab") && !w("ab*ab", "aba"));
        assert!(w("\\*x", "*x") && !w("\\*x", "yx"));
        assert!(w("a\\\\b", "a\\b"));
        assert!(w("*", "") && w("x", "x") && !w("x", "xx"));
        assert!(Wildcard::parse("a**b").is_err());
        assert!(Wildcard::parse("a\\b").is_err());
    }

    #[test]
    fn ranges() {
        let r = |v: serde_json::Value| Range::parse(v.as_array().unwrap());
        let x = r(json!([">", 0, "<=", 5])).unwrap();
        assert!(!x.contains(0.0) && x.contains(0.1) && x.contains(5.0) && !x.contains(5.1));
        assert!(r(json!(["=", 3])).unwrap().contains(3.0));
        for bad in [
            json!([]),
            json!([">", "1"]),
            json!([">", 5, "<", 1]),
            json!(["=", 1, "<", 4]),
            json!([">", 1, ">=", 2]),
            json!(["!", 1]),
            json!([">", 6e9]),
            json!([">"]),
        ] {
            assert!(r(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/24").unwrap();
        assert!(c.contains("10.0.0.7") && !c.contains("10.0.1.7") && !c.contains("x"));
        let c6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c6.contains("2001:db8::1") && !c6.contains("2001:db9::1"));
        assert!(!c6.contains("10.0.0.1"));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8"));
        for bad in ["10.0.0.0", "10.0.0.0/33", "10.0.0/8", "::/129", "x/3"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
