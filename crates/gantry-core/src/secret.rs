//! Secrets, purely: what a valid name, scope and value are, and the [`Masker`] that replaces
//! secret values with `***` in any text Gantry shows (logs, API answers, PR comments, errors),
//! including their base64 and URL-encoded forms and each line of a multi-line value.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// Shorter values would mask ordinary text everywhere, so `set` refuses them.
pub const MIN_SECRET_LEN: usize = 4;
/// A secret is a token or a key, not a file.
pub const MAX_SECRET_LEN: usize = 64 * 1024;
pub const MASK: &str = "***";

/// Where a secret applies: everywhere, or to one repository's runs (which win over global).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Global,
    Repo(String),
}

impl Scope {
    /// `global` or `repo:OWNER/NAME`.
    pub fn parse(s: &str) -> Result<Scope, String> {
        if s == "global" {
            return Ok(Scope::Global);
        }
        let Some(repo) = s.strip_prefix("repo:") else {
            return Err(format!(
                "unknown scope `{s}`; expected `global` or `repo:OWNER/NAME`"
            ));
        };
        let mut parts = repo.split('/');
        let ok_part = |p: Option<&str>| {
            p.is_some_and(|p| {
                !p.is_empty()
                    && p != "."
                    && p != ".."
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            })
        };
        if ok_part(parts.next()) && ok_part(parts.next()) && parts.next().is_none() {
            Ok(Scope::Repo(repo.to_string()))
        } else {
            Err(format!(
                "`{s}` does not name a repository as `repo:OWNER/NAME`"
            ))
        }
    }

    pub fn as_string(&self) -> String {
        match self {
            Scope::Global => "global".into(),
            Scope::Repo(r) => format!("repo:{r}"),
        }
    }
}

/// A secret's name is the environment variable jobs see it as.
pub fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if name.len() > 128 || !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!(
            "secret name `{}` is not valid: use letters, digits and `_`, not starting with a digit (at most 128)",
            name.chars().take(130).collect::<String>()
        ));
    }
    if name.starts_with("GANTRY_") || name == "CI" || name == "PATH" || name == "HOME" {
        return Err(format!("secret name `{name}` is reserved"));
    }
    Ok(())
}

/// Checks a value before it is stored; the reason never quotes the value.
pub fn check_value(value: &str) -> Result<(), String> {
    let n = value.chars().count();
    if n < MIN_SECRET_LEN {
        return Err(format!(
            "the value is {n} characters long; secrets must have at least {MIN_SECRET_LEN}, or masking them would hide ordinary text in every log"
        ));
    }
    if value.len() > MAX_SECRET_LEN {
        return Err(format!(
            "the value is {} bytes long; the limit is {MAX_SECRET_LEN}",
            value.len()
        ));
    }
    if value.trim().chars().count() < MIN_SECRET_LEN {
        return Err(format!(
            "the value is mostly whitespace; secrets must have at least {MIN_SECRET_LEN} visible characters"
        ));
    }
    Ok(())
}

/// Replaces every known secret form with `***`. Built once per job; cheap to apply per line.
#[derive(Clone, Default)]
pub struct Masker {
    /// Longest first, so a value is masked before any shorter form it contains.
    needles: Vec<String>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Masker({} forms)", self.needles.len())
    }
}

impl Masker {
    pub fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Masker {
        let mut needles: Vec<String> = Vec::new();
        for v in values {
            let mut forms = vec![v.to_string(), v.trim().to_string()];
            for e in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
                forms.push(e.encode(v));
            }
            forms.push(percent_encode(v));
            forms.push(percent_encode(v).replace("%20", "+"));
            forms.extend(v.lines().map(|l| l.trim().to_string()));
            needles.extend(
                forms
                    .into_iter()
                    .filter(|f| f.chars().count() >= MIN_SECRET_LEN),
            );
        }
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        needles.dedup();
        Masker { needles }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// The longest form masked, in bytes: a streaming caller keeps this much minus one
    /// unflushed so a value split across reads is still caught.
    pub fn longest(&self) -> usize {
        self.needles.first().map_or(0, String::len)
    }

    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_string();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), MASK);
            }
        }
        out
    }

    /// Masks bytes that may not be UTF-8 (process output): invalid sequences pass through.
    pub fn mask_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        if self.needles.is_empty() {
            return bytes.to_vec();
        }
        let mut out = bytes.to_vec();
        for n in &self.needles {
            out = replace_bytes(&out, n.as_bytes(), MASK.as_bytes());
        }
        out
    }
}

fn replace_bytes(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() || hay.len() < needle.len() {
        return hay.to_vec();
    }
    let mut out = Vec::with_capacity(hay.len());
    let mut i = 0;
    while i < hay.len() {
        if hay[i..].starts_with(needle) {
            out.extend_from_slice(with);
            i += needle.len();
        } else {
            out.push(hay[i]);
            i += 1;
        }
    }
    out
}

/// RFC 3986 percent-encoding of everything but unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_form() {
        let m = Masker::new(["s3cr3t value/+?", "line-one\nline-two"]);
        let b64 = STANDARD.encode("s3cr3t value/+?");
        let url = "s3cr3t%20value%2F%2B%3F";
        let text =
            format!("plain=s3cr3t value/+? b64={b64} url={url} lines=line-one and line-two ok");
        let masked = m.mask(&text);
        assert_eq!(
            masked, "plain=*** b64=*** url=*** lines=*** and *** ok",
            "{masked}"
        );
        assert_eq!(m.mask_bytes(text.as_bytes()), masked.as_bytes());
        assert_eq!(m.mask("nothing here"), "nothing here");
    }

    #[test]
    fn names_scopes_and_values() {
        assert!(check_name("DEPLOY_TOKEN").is_ok());
        for bad in ["", "1A", "A-B", "GANTRY_X", "PATH"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(Scope::parse("global"), Ok(Scope::Global));
        assert_eq!(Scope::parse("repo:o/r"), Ok(Scope::Repo("o/r".into())));
        for bad in ["repo:o", "repo:o/r/x", "repo:../r", "team:x"] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
        let short = check_value("abc").unwrap_err();
        assert!(
            short.contains("at least 4") && !short.contains("abc"),
            "{short}"
        );
        assert!(check_value("    ab ").is_err());
        assert!(check_value("abcd").is_ok());
    }

    proptest::proptest! {
        #[test]
        fn masked_text_never_contains_the_value(
            // Without `*`: a value made of stars is indistinguishable from its mask.
            secret in "[ -)+-~]{4,24}",
            before in "[ -)+-~]{0,20}",
            after in "[ -)+-~]{0,20}",
        ) {
            let m = Masker::new([secret.as_str()]);
            let out = m.mask(&format!("{before}{secret}{after}"));
            proptest::prop_assert!(!out.contains(&secret));
        }
    }
}
