//! Where a job's source may come from: clone URLs must start with an allowed prefix (by default
//! `https://github.com/`), so an event cannot make Gantry read local files or internal hosts,
//! and may not carry credentials.

/// Whether `url` may be fetched, or why not (the reason never shows credentials).
pub fn check_clone_url(allowed: &[String], url: &str) -> Result<(), String> {
    let shown = without_credentials(url);
    if url != shown {
        return Err(format!(
            "clone URL `{shown}` has credentials in it; give Gantry a token instead"
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) || url.starts_with('-') {
        return Err(format!("clone URL `{}` is malformed", url.escape_debug()));
    }
    // A prefix ends at a `/`: `https://github.com` allows `https://github.com/…`, not
    // `https://github.com.example.net/…`.
    let under = |p: &str| {
        !p.is_empty()
            && url.starts_with(p)
            && (p.ends_with('/') || url[p.len()..].is_empty() || url[p.len()..].starts_with('/'))
    };
    if allowed.iter().any(|p| under(p)) {
        Ok(())
    } else {
        Err(format!(
            "clone URL `{url}` is not allowed: it must start with one of {} (GANTRY_GIT_ALLOWED_URL_PREFIXES)",
            allowed
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// `https://user:pass@host/…` → `https://***@host/…` (a bare ssh user is not a credential).
fn without_credentials(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let host_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..host_end].rfind('@')
            && (rest[..at].contains(':') || scheme.starts_with("http"))
        {
            return format!("{scheme}://***@{}", &rest[at + 1..]);
        }
    }
    url.to_string()
}

/// Every job's `source` URL checked against the allowed prefixes, as spec problems.
pub fn check_sources(spec: &super::RunSpec, allowed: &[String]) -> Result<(), super::Problems> {
    let problems: super::problem::ProblemList = spec
        .jobs
        .iter()
        .filter_map(|j| {
            let url = &j.source.as_ref()?.git.url;
            let why = check_clone_url(allowed, url).err()?;
            let path = format!("jobs.{}.source.git.url", j.name);
            Some(super::Problem::new(&path, Some(&j.name), None, why))
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.into_problems(super::Unreadable::No))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_start_with_an_allowed_prefix() {
        let allowed = vec!["https://github.com/".to_string()];
        assert!(check_clone_url(&allowed, "https://github.com/o/r.git").is_ok());
        for bad in [
            "file:///etc",
            "/etc/passwd",
            "https://github.com.evil.com/o/r",
            "http://169.254.169.254/latest",
            "ssh://git@github.com/o/r",
        ] {
            let err = check_clone_url(&allowed, bad).unwrap_err();
            assert!(err.contains("is not allowed"), "{bad}: {err}");
        }
        // A prefix without its closing `/` still ends at the host.
        let bare = vec!["https://github.com".to_string()];
        assert!(check_clone_url(&bare, "https://github.com/o/r.git").is_ok());
        assert!(check_clone_url(&bare, "https://github.com.evil.io/o/r").is_err());
        let err = check_clone_url(&allowed, "https://x:tok123@github.com/o/r").unwrap_err();
        assert!(
            !err.contains("tok123") && err.contains("credentials"),
            "{err}"
        );
    }
}
