//! Rule targets with `{name}` placeholders, filled from an event's values. The values come from
//! outside (whoever sent the event), so each kind of target takes them only where they cannot
//! change what the rule's author pointed at: into a file path only as one plain path segment
//! (no separators, no `..`), into a URL only percent-encoded, and never into its scheme, host
//! or port.

use std::collections::BTreeMap;

/// Fills `{name}` placeholders from `inputs` as they are; unknown names are left as they are.
/// For names looked up in the server's own configuration (services).
pub fn fill(template: &str, inputs: &BTreeMap<String, String>) -> String {
    fill_with(template, inputs, |_, v| Ok(v.to_string())).unwrap_or_default()
}

/// Fills a file path template: every value must be one plain path segment.
pub fn fill_path(template: &str, inputs: &BTreeMap<String, String>) -> Result<String, String> {
    fill_with(template, inputs, |name, v| {
        if v.is_empty() || v.contains(['/', '\\', '\0']) || v.contains("..") || v.starts_with('.') {
            Err(format!(
                "the value of `{name}` cannot go into a file path: it must be one plain name (no `/`, `\\`, `..`, no leading `.`), and is {}",
                shown(v)
            ))
        } else {
            Ok(v.to_string())
        }
    })
}

/// Checks a URL template when its rule is made: placeholders may be only in the path or
/// the query, after the host.
pub fn check_url_template(template: &str) -> Result<(), String> {
    let after_scheme = template
        .split_once("://")
        .map_or(template, |(_, rest)| rest);
    let authority = after_scheme
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    if authority.contains('{') {
        return Err(format!(
            "`{template}`: placeholders may be only in the URL's path or query, not its host or port"
        ));
    }
    Ok(())
}

/// Fills a URL template: every value percent-encoded (all but letters, digits and `-._~`),
/// so that it stays one piece of the path or query where it is put.
pub fn fill_url(template: &str, inputs: &BTreeMap<String, String>) -> Result<String, String> {
    check_url_template(template)?;
    fill_with(template, inputs, |name, v| {
        // `.` and `..` would be read as a path step, however they are encoded.
        if !v.is_empty() && v.chars().all(|c| c == '.') {
            return Err(format!(
                "the value of `{name}` cannot go into a URL: {} would move along its path",
                shown(v)
            ));
        }
        Ok(percent_encode(v))
    })
}

fn percent_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A value from outside, as shown in an error: quoted, and cut when long.
fn shown(v: &str) -> String {
    let cut: String = v.chars().take(60).collect();
    if cut.len() < v.len() {
        format!("`{cut}…`")
    } else {
        format!("`{cut}`")
    }
}

/// Replaces each `{name}` with `value(name, input)`; placeholders of unknown names stay.
/// One pass over the template: a value is never searched for placeholders itself.
fn fill_with(
    template: &str,
    inputs: &BTreeMap<String, String>,
    value: impl Fn(&str, &str) -> Result<String, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if inputs.contains_key(&after[..close]) => {
                let name = &after[..close];
                out.push_str(&value(name, &inputs[name])?);
                rest = &after[close + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn inputs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn names_fill_as_they_are_and_unknown_ones_stay() {
        let i = inputs(&[("service", "auth"), ("first", "{service}")]);
        assert_eq!(
            fill("{service}-{first}-{nope}", &i),
            "auth-{service}-{nope}",
            "a value is not filled again"
        );
    }

    #[test]
    fn a_path_value_is_one_plain_segment() {
        let ok = inputs(&[("env", "prod")]);
        assert_eq!(fill_path("specs/{env}.yml", &ok).unwrap(), "specs/prod.yml");
        for bad in ["../../x/evil", "a/b", "..", ".hidden", "a\\b", "", "x\0"] {
            let err = fill_path("specs/{env}.yml", &inputs(&[("env", bad)])).unwrap_err();
            assert!(err.contains("`env`"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn url_values_are_encoded_and_never_reach_the_host() {
        let i = inputs(&[("host", "169.254.169.254/latest"), ("q", "a b&c=d/e")]);
        assert!(check_url_template("http://{host}/notify").is_err());
        assert!(check_url_template("https://hooks.example.com:{port}/x").is_err());
        assert!(fill_url("http://{host}/notify", &i).is_err());
        for dots in [".", ".."] {
            let t = inputs(&[("t", dots)]);
            assert!(
                fill_url("https://h.example/tenants/{t}/notify", &t).is_err(),
                "{dots}"
            );
        }
        assert_eq!(
            fill_url("https://hooks.example.com/n/{host}?q={q}", &i).unwrap(),
            "https://hooks.example.com/n/169.254.169.254%2Flatest?q=a%20b%26c%3Dd%2Fe"
        );
    }

    proptest! {
        #[test]
        fn any_value_leaves_the_url_host_as_written(v in ".{0,40}") {
            let Ok(url) = fill_url("https://hooks.example.com/p/{v}?x={v}", &inputs(&[("v", &v)])) else {
                // Only `.` and `..` are refused: they would move along the path.
                prop_assert!(!v.is_empty() && v.chars().all(|c| c == '.'));
                return Ok(());
            };
            prop_assert!(url.starts_with("https://hooks.example.com/p/"));
            let tail = &url["https://hooks.example.com/p/".len()..];
            prop_assert!(!tail.contains('/') && !tail.contains('#') && tail.matches('?').count() == 1);
        }

        #[test]
        fn a_filled_path_never_leaves_its_folder(v in ".{0,20}") {
            if let Ok(p) = fill_path("specs/{v}.yml", &inputs(&[("v", &v)])) {
                prop_assert!(p.starts_with("specs/"));
                prop_assert!(!p["specs/".len()..].contains('/'));
                prop_assert!(!p.split('/').any(|c| c == ".." || c == "."));
            }
        }
    }
}
