//! Secrets, purely: what a valid name, scope and value are, and the [`Masker`] (`mask.rs`) that
//! replaces secret values with `***` in any text Gantry shows (logs, API answers, PR comments,
//! errors), in every form it knows them in.

mod mask;

pub use mask::Masker;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
