//! A job's `artifacts`: workspace paths kept when it succeeds and laid into the workspaces of
//! the jobs that need it. Each is a path relative to the workspace (a file or a folder, kept
//! whole) or a glob of files (`*` within a folder, `**` across folders, `?` one character).
//! Nothing may point outside the workspace.

/// Whether `path` may be an artifact path, or why not.
pub fn check_path(path: &str) -> Result<(), String> {
    let shown = path.escape_debug();
    if path.trim().is_empty() {
        return Err("an artifact path is empty".into());
    }
    if path.starts_with('/') {
        return Err(format!(
            "artifact path `{shown}` is absolute: give it relative to the workspace"
        ));
    }
    if path.chars().any(|c| c.is_control()) {
        return Err(format!("artifact path `{shown}` has a control character"));
    }
    if path.split('/').any(|part| part == "..") {
        return Err(format!(
            "artifact path `{shown}` goes outside the workspace (`..`)"
        ));
    }
    // `./dist` is `dist`; a `.` anywhere else (`dist/.`, `.`) names a folder in a way that
    // hides what it is.
    let rest = path.strip_prefix("./").unwrap_or(path);
    if rest.split('/').any(|part| part == ".") {
        return Err(format!(
            "artifact path `{shown}` has a `.` part: name the file or folder itself"
        ));
    }
    Ok(())
}

/// Whether `path` is a glob (matched against each file) rather than one path.
pub fn is_glob(path: &str) -> bool {
    path.contains(['*', '?'])
}

/// Whether the file at `file` (relative to the workspace, `/`-separated) is kept by `glob`.
pub fn glob_keeps(glob: &str, file: &str) -> bool {
    super::glob_match(glob.trim_start_matches("./"), file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_workspace() {
        for ok in [
            "dist",
            "dist/",
            "target/release/app",
            "logs/*.txt",
            "**/*.xml",
            "./out",
            ".venv/",
        ] {
            assert!(check_path(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("../up", "outside"),
            ("a/../../b", "outside"),
            ("a\nb", "control"),
            ("dist/.", "`.` part"),
            (".", "`.` part"),
            ("a/./b", "`.` part"),
        ] {
            let err = check_path(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn globs_match_files_as_path_filters_do() {
        assert!(is_glob("logs/*.txt") && !is_glob("dist"));
        assert!(glob_keeps("logs/*.txt", "logs/a.txt"));
        assert!(!glob_keeps("logs/*.txt", "logs/deep/a.txt"));
        assert!(glob_keeps("**/*.xml", "reports/unit/junit.xml"));
        assert!(glob_keeps("./out/*", "out/x"));
    }
}
