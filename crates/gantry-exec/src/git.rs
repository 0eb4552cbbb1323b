//! Source checkout: puts a repository at exactly one commit into a job's workspace with the git
//! CLI. Each repository has a bare mirror under the data dir; a commit already in the mirror is
//! not fetched again, a new one is fetched shallowly (by SHA). The workspace borrows the
//! mirror's objects (git alternates), so checking out is cheap.
//!
//! Clone URLs must start with an allowed prefix, so an event cannot make Gantry read local
//! files or internal hosts. Credentials go to git through its environment (an HTTP header),
//! never onto disk or into a log.

use base64::Engine as _;
use gantry_engine::ports::{Checkout, Forge, LookupError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::process::Command;
use tokio::sync::Mutex;

/// Fetching a commit may take a while on a big repository, but not forever.
const FETCH_TIMEOUT: Duration = Duration::from_secs(600);
/// Asking a remote for one branch is quick, or the remote is not answering.
const LS_REMOTE_TIMEOUT: Duration = Duration::from_secs(15);

pub struct GitSources {
    mirrors: PathBuf,
    allowed: Vec<String>,
    tokens: Option<Arc<dyn Forge>>,
    /// One fetch at a time per mirror.
    locks: Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>,
}

impl GitSources {
    /// Mirrors live under `mirrors`; clone URLs must start with one of `allowed`; `tokens`
    /// (GitHub) supplies credentials for private repositories.
    pub fn new(mirrors: PathBuf, allowed: Vec<String>, tokens: Option<Arc<dyn Forge>>) -> Self {
        GitSources {
            mirrors,
            allowed,
            tokens,
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `url` may be fetched, or why not.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        gantry_core::spec::check_clone_url(&self.allowed, url)
    }

    /// Checks out `c` into the (empty) `workspace`. Progress lines go to `log`; the error says
    /// what failed without any credential in it.
    pub async fn checkout(
        &self,
        c: &Checkout,
        workspace: &Path,
        log: &mut Vec<String>,
    ) -> Result<(), String> {
        self.check_url(&c.url)?;
        check_ref(&c.git_ref)?;
        let mirror = self.mirrors.join(mirror_name(&c.url));
        let lock = {
            let mut locks = self.locks.lock().await;
            locks.entry(mirror.clone()).or_default().clone()
        };
        let _held = lock.lock().await;
        if !mirror.join("HEAD").exists() {
            std::fs::create_dir_all(&mirror)
                .map_err(|e| format!("cannot create the mirror {}: {e}", mirror.display()))?;
            git(&mirror, &["init", "--quiet", "--bare"], &[]).await?;
            git(&mirror, &["config", "gc.auto", "0"], &[]).await?;
        }
        let is_sha = is_full_sha(&c.git_ref);
        let have = is_sha
            && git(
                &mirror,
                &["cat-file", "-e", &format!("{}^{{commit}}", c.git_ref)],
                &[],
            )
            .await
            .is_ok();
        log.push(format!("$ git checkout {} @ {}", c.url, c.git_ref));
        let sha = if have {
            log.push("gantry: commit already in the local mirror; nothing to fetch".into());
            c.git_ref.clone()
        } else {
            let auth = self.auth_env(c).await?;
            let want = if is_sha {
                c.git_ref.clone()
            } else {
                format!("refs/{}", qualify(&c.git_ref))
            };
            let fetch = tokio::time::timeout(
                FETCH_TIMEOUT,
                git(
                    &mirror,
                    &["fetch", "--quiet", "--depth=1", "--no-tags", &c.url, &want],
                    &auth,
                ),
            )
            .await
            .map_err(|_| format!("fetching {} timed out", c.url))?;
            if let Err(e) = fetch {
                let why = if e.contains("not our ref") || e.contains("couldn't find remote ref") {
                    format!(
                        "{} has no commit `{}` (was the branch force-pushed, or the commit never pushed?)",
                        c.url, c.git_ref
                    )
                } else {
                    format!("fetching {} failed: {e}", c.url)
                };
                return Err(why);
            }
            log.push("gantry: fetched".into());
            if is_sha {
                c.git_ref.clone()
            } else {
                fetched_head(&mirror).await?
            }
        };
        // The workspace: a repository that borrows the mirror's objects, at exactly `sha`.
        // No template: a job's workspace needs no sample hooks (and init is quicker).
        git(workspace, &["init", "--quiet", "--template="], &[]).await?;
        let objects = mirror.join("objects");
        std::fs::write(
            workspace.join(".git/objects/info/alternates"),
            format!("{}\n", objects.display()),
        )
        .map_err(|e| format!("cannot link the mirror: {e}"))?;
        if let Ok(shallow) = std::fs::read(mirror.join("shallow")) {
            let _ = std::fs::write(workspace.join(".git/shallow"), shallow);
        }
        git(workspace, &["remote", "add", "origin", &c.url], &[]).await?;
        git(
            workspace,
            &[
                "-c",
                "advice.detachedHead=false",
                "checkout",
                "--quiet",
                &sha,
            ],
            &[],
        )
        .await
        .map_err(|e| format!("cannot check out {sha}: {e}"))?;
        log.push(format!("gantry: checked out {sha}"));
        Ok(())
    }

    /// The commit branch `branch` of `url` is at now (`git ls-remote`, no credentials): a
    /// missing repository or branch is `Missing`, a remote that does not answer `Unreachable`.
    pub async fn branch_head(&self, url: &str, branch: &str) -> Result<String, LookupError> {
        self.check_url(url).map_err(LookupError::Missing)?;
        check_ref(branch).map_err(LookupError::Missing)?;
        let want = format!("refs/heads/{branch}");
        let asked = tokio::time::timeout(
            LS_REMOTE_TIMEOUT,
            git(Path::new("/"), &["ls-remote", "--", url, &want], &[]),
        )
        .await
        .map_err(|_| LookupError::Unreachable(format!("{url} did not answer in time")))?;
        let refs = asked.map_err(|e| {
            let e = e.strip_prefix("fatal: ").unwrap_or(&e).to_string();
            if e.contains("not found") || e.contains("does not appear to be a git repository") {
                LookupError::Missing(format!("no repository {url}: {e}"))
            } else {
                LookupError::Unreachable(format!("cannot ask {url} for its branches: {e}"))
            }
        })?;
        refs.lines()
            .find_map(|l| {
                let (sha, name) = l.split_once('\t')?;
                (name == want).then(|| sha.to_string())
            })
            .ok_or_else(|| LookupError::Missing(format!("{url} has no branch `{branch}`")))
    }

    /// git's environment for fetching `c`: an `Authorization` header from the forge's token
    /// (HTTPS only), passed as configuration in the environment, not on disk or the command line.
    async fn auth_env(&self, c: &Checkout) -> Result<Vec<(String, String)>, String> {
        let (Some(forge), Some(repo)) = (&self.tokens, &c.repo) else {
            return Ok(Vec::new());
        };
        // Over TLS only (plain HTTP to this machine itself, as a local forge or a test's fake).
        let local = [
            "http://127.0.0.1:",
            "http://127.0.0.1/",
            "http://localhost:",
            "http://localhost/",
            "http://[::1]:",
        ];
        if !(c.url.starts_with("https://") || local.iter().any(|p| c.url.starts_with(p))) {
            return Ok(Vec::new());
        }
        // The token goes only to the repository it is for: a job's `source` may name any
        // allowed URL, but the run's repository's token is not sent to another one.
        if !names_repository(&c.url, repo) {
            return Ok(Vec::new());
        }
        let token = match forge.git_token(repo).await {
            Ok(Some(t)) => t,
            Ok(None) => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot get a token to fetch {repo}: {e}")),
        };
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
        Ok(vec![
            ("GIT_CONFIG_COUNT".into(), "1".into()),
            ("GIT_CONFIG_KEY_0".into(), "http.extraHeader".into()),
            (
                "GIT_CONFIG_VALUE_0".into(),
                format!("Authorization: Basic {basic}"),
            ),
        ])
    }
}

/// The commit a fetch of one ref brought: `FETCH_HEAD`'s first line starts with it (read
/// directly; git itself only when the file is not as expected).
async fn fetched_head(mirror: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(mirror.join("FETCH_HEAD")).unwrap_or_default();
    let sha = text.split_whitespace().next().unwrap_or_default();
    if is_full_sha(sha) {
        Ok(sha.to_string())
    } else {
        git(mirror, &["rev-parse", "FETCH_HEAD"], &[]).await
    }
}

/// Whether `url` is a clone URL of `repo` (`owner/name`): its path ends with the segments
/// `owner/name` or `owner/name.git` (case as GitHub ignores it), with no `.` or `..` segment,
/// no user name, query or fragment. (The host and what comes before are the allowed prefixes'
/// business.)
fn names_repository(url: &str, repo: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let Some((authority, path)) = rest.split_once('/') else {
        return false;
    };
    if authority.is_empty() || authority.contains('@') || path.contains(['?', '#']) {
        return false;
    }
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    if segments
        .iter()
        .any(|s| *s == "." || *s == ".." || s.is_empty())
    {
        return false;
    }
    let Some((owner, name)) = repo.split_once('/') else {
        return false;
    };
    matches!(segments.as_slice(), [.., o, n] if o.eq_ignore_ascii_case(owner) && n.eq_ignore_ascii_case(name))
}

fn is_full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// A ref must be a full SHA or a plain branch or tag name (no options, no `..`).
fn check_ref(r: &str) -> Result<(), String> {
    let ok = !r.is_empty()
        && !r.starts_with('-')
        && !r.contains("..")
        && r.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a commit SHA or a branch or tag name",
            r.escape_debug()
        ))
    }
}

/// `main` → `heads/main`; `tags/v1` and `heads/x` stay as they are.
fn qualify(r: &str) -> String {
    let r = r.strip_prefix("refs/").unwrap_or(r);
    if r.starts_with("heads/") || r.starts_with("tags/") {
        r.to_string()
    } else {
        format!("heads/{r}")
    }
}

/// A folder name for a URL's mirror: readable, and unique by a hash of the whole URL.
fn mirror_name(url: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325; // FNV-1a
    for b in url.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    let tail: String = url
        .trim_end_matches(".git")
        .rsplit('/')
        .next()
        .unwrap_or("repo")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    format!("{tail}-{h:016x}.git")
}

/// Runs git in `dir`; stdout on success, stderr (trimmed) on failure. Never prompts.
/// Runs git with only what it needs of our environment (none of the server's secrets: a
/// process of the same user could read them while it runs).
async fn git(dir: &Path, args: &[&str], env: &[(String, String)]) -> Result<String, String> {
    let mut cmd = Command::new("git");
    cmd.env_clear();
    for keep in [
        "PATH",
        "HOME",
        "LANG",
        "TZ",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
    ] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    let out = cmd
        .arg("-C")
        .arg(dir)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "/bin/false")
        .env_remove("GIT_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        Err(err
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("git failed")
            .trim()
            .to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_goes_only_to_its_own_repository() {
        assert!(names_repository(
            "https://github.com/acme/web.git",
            "acme/web"
        ));
        assert!(names_repository("https://github.com/Acme/Web", "acme/web"));
        assert!(names_repository(
            "https://ghe.example/git/acme/web.git",
            "acme/web"
        ));
        for other in [
            "https://github.com/acme/web-fork.git",
            "https://github.com/mallory/web.git",
            "https://github.com/acme/web/../../mallory/x",
            "https://user@github.com/acme/web.git",
            "https://github.com/acme/web.git?x=1",
            "file:///acme/web",
        ] {
            assert!(!names_repository(other, "acme/web"), "{other}");
        }
    }

    #[test]
    fn refs_and_mirror_names() {
        assert!(check_ref("main").is_ok() && check_ref(&"a".repeat(40)).is_ok());
        for bad in ["", "--upload-pack=x", "a..b", "a b", "x;y"] {
            assert!(check_ref(bad).is_err(), "{bad}");
        }
        assert_eq!(qualify("main"), "heads/main");
        assert_eq!(qualify("tags/v1"), "tags/v1");
        let a = mirror_name("https://github.com/o/web.git");
        assert!(a.starts_with("web-") && a.ends_with(".git"), "{a}");
        assert_ne!(a, mirror_name("https://github.com/p/web.git"));
    }
}
