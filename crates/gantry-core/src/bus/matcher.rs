//! Leaf matchers of the EventBridge pattern language: what one value in a pattern's array
//! accepts (`"x"`, `3`, `{"prefix": …}`, `{"numeric": […]}`, `{"cidr": …}`, …), compiled
//! once (lower-cased strings, parsed networks, split wildcards) so matching only compares.

pub use super::anything_but::AnythingBut;
pub use super::numeric::{NUMERIC_LIMIT, Range};
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

impl Cidr {
    /// `10.0.0.0/24` or `2001:db8::/32`. As in aws/event-ruler (`CIDR.cidr`), the mask must
    /// be below the address width: /32 (IPv4) and /128 (IPv6) are refused — a single address
    /// is matched by listing it as a plain string.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || format!("`{s}` is not a CIDR block like 10.0.0.0/24 or 2001:db8::/32");
        let (ip, bits) = s.split_once('/').ok_or_else(bad)?;
        let net: IpAddr = ip.parse().map_err(|_| bad())?;
        let bits: u8 = bits.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return Err(bad());
        }
        if bits == max {
            return Err(format!(
                "`{s}`: the mask must be below /{max} (EventBridge refuses /{max}); to match one address, list it as a plain string"
            ));
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
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/24").unwrap();
        assert!(c.contains("10.0.0.7") && !c.contains("10.0.1.7") && !c.contains("x"));
        let c6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(c6.contains("2001:db8::1") && !c6.contains("2001:db9::1"));
        assert!(!c6.contains("10.0.0.1"));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8"));
        for bad in [
            "10.0.0.0",
            "10.0.0.0/33",
            "10.0.0/8",
            "::/129",
            "x/3",
            "1.2.3.4/-1",
        ] {
            assert!(
                Cidr::parse(bad).unwrap_err().contains("not a CIDR block"),
                "{bad}"
            );
        }
        // event-ruler `CIDR.cidr`: "IPv4 mask bits must be < 32", "IPv6 mask bits must be < 128".
        assert!(
            Cidr::parse("10.0.0.1/32")
                .unwrap_err()
                .contains("below /32")
        );
        assert!(Cidr::parse("::1/128").unwrap_err().contains("below /128"));
        assert!(Cidr::parse("10.0.0.1/31").unwrap().contains("10.0.0.0"));
        // The block is the address masked (event-ruler computes the bottom from the mask).
        assert!(Cidr::parse("10.0.0.77/24").unwrap().contains("10.0.0.1"));
    }
}
