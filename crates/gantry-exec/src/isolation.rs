//! What a local job starts with besides its own settings: the environment it inherits (a clean
//! one on a server: nothing of the server's unless listed), and the user it runs as (an
//! unprivileged one when the server runs as root), whose its workspace then is.

use std::io;
use std::path::Path;
use tokio::process::Command;

/// The `PATH` a job gets when the server's own is not passed on.
pub const SAFE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How a local job's environment and user are set up.
#[derive(Debug, Clone, Default)]
pub enum Isolation {
    /// The starting process's environment, without its `GANTRY_*` settings, and its user
    /// (`gantry run`: a developer's own spec, in their own shell).
    #[default]
    Inherit,
    /// A clean environment and, optionally, another user (`gantry serve`).
    Clean(Clean),
}

/// A clean start: [`SAFE_PATH`], `HOME`, `USER` and `LOGNAME` of the job's user, and only the
/// listed variables of the server's own environment.
#[derive(Debug, Clone, Default)]
pub struct Clean {
    /// Names of the server's variables passed on (`pass_env`); `PATH` among them replaces
    /// [`SAFE_PATH`].
    pub pass: Vec<String>,
    pub run_as: Option<RunAs>,
}

/// The user jobs run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

impl RunAs {
    /// Looks a user up by name (or numeric id) in the system's user database.
    pub fn lookup(name: &str) -> Result<RunAs, String> {
        let user = match name.parse::<u32>() {
            Ok(uid) => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)),
            Err(_) => nix::unistd::User::from_name(name),
        }
        .map_err(|e| format!("cannot look up the user `{name}`: {e}"))?
        .ok_or_else(|| format!("run_as: there is no user `{name}` on this machine"))?;
        if user.uid.is_root() {
            return Err(format!(
                "run_as: `{name}` is root; jobs must run as an unprivileged user"
            ));
        }
        Ok(RunAs {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir.to_string_lossy().into_owned(),
        })
    }
}

impl Isolation {
    /// Sets `cmd`'s environment (before the job's own variables are added) and user.
    pub(crate) fn apply(&self, cmd: &mut Command) {
        match self {
            Isolation::Inherit => {
                // Our environment, without the server's own `GANTRY_*` settings (tokens,
                // secrets), which are never passed to jobs.
                for (name, _) in std::env::vars_os() {
                    if name.as_encoded_bytes().starts_with(b"GANTRY_") {
                        cmd.env_remove(name);
                    }
                }
            }
            Isolation::Clean(clean) => {
                cmd.env_clear();
                cmd.env("PATH", SAFE_PATH);
                let (home, user) = match &clean.run_as {
                    Some(r) => (Some(r.home.clone()), Some(r.name.clone())),
                    None => (
                        std::env::var("HOME").ok(),
                        std::env::var("USER")
                            .or_else(|_| std::env::var("LOGNAME"))
                            .ok(),
                    ),
                };
                if let Some(home) = home {
                    cmd.env("HOME", home);
                }
                if let Some(user) = user {
                    cmd.env("USER", &user).env("LOGNAME", user);
                }
                for name in &clean.pass {
                    if let Some(value) = std::env::var_os(name) {
                        cmd.env(name, value);
                    }
                }
                if let Some(r) = &clean.run_as {
                    // The standard library drops root's supplementary groups with this.
                    cmd.uid(r.uid).gid(r.gid);
                }
            }
        }
    }

    /// The user jobs run as, when not the server's.
    pub fn run_as(&self) -> Option<&RunAs> {
        match self {
            Isolation::Clean(Clean {
                run_as: Some(r), ..
            }) => Some(r),
            _ => None,
        }
    }
}

/// Gives `root` and everything under it to `uid:gid`, links themselves, never what they
/// point to. Children first and `root` last: until the end every folder on the way is still
/// the server's (and private), so the new owner cannot swap anything under a path being
/// walked for a link elsewhere. A file with another hard link (which could be someone
/// else's file) is refused.
pub(crate) fn chown_tree(root: &Path, uid: u32, gid: u32) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(root)?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(root)? {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    } else if !meta.file_type().is_symlink() && meta.nlink() > 1 {
        return Err(io::Error::other(format!(
            "{} has other hard links; not handing it over",
            root.display()
        )));
    }
    std::os::unix::fs::lchown(root, Some(uid), Some(gid))
}

/// Keeps this process's secrets from the jobs it starts: files it makes are private (umask
/// 077: the data dir's database, logs and keys are 0600 in 0700 folders), and on Linux its
/// memory and `/proc/<pid>/environ` cannot be read by processes of the same user (it is not
/// "dumpable", as a setuid program is not). Call once, at the start of a server.
pub fn keep_jobs_out() -> Result<(), String> {
    use nix::sys::stat::{Mode, umask};
    umask(Mode::from_bits_truncate(0o077));
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_dumpable(false)
        .map_err(|e| format!("cannot make the server's memory unreadable to jobs: {e}"))?;
    Ok(())
}

/// Whether this process runs as root (effective user id 0).
pub fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}
