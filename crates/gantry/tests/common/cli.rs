//! Test support for the command line: the real `gantry` binary run as a user would, against a
//! server or none, with stdin, a working directory and its environment set per call.
#![allow(dead_code)]

use std::path::Path;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Everything it printed, for assertion messages.
    pub fn all(&self) -> String {
        format!("exit {}\n{}{}", self.code, self.stdout, self.stderr)
    }
}

/// `gantry args…` with `stdin` on its standard input, in `dir` (or here), with no
/// `GANTRY_SERVER` or `GANTRY_API_TOKEN` from the environment of the tests.
pub async fn gantry_in(dir: Option<&Path>, args: &[&str], stdin: &[u8]) -> Out {
    let mut cmd = tokio::process::Command::new(crate::common::gantry_bin());
    cmd.args(args)
        .env_remove("GANTRY_API_TOKEN")
        .env_remove("GANTRY_SERVER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        child.wait_with_output(),
    )
    .await
    .unwrap_or_else(|_| panic!("gantry {args:?} did not finish"))
    .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `gantry args… --server URL` against `server`.
pub async fn gantry(server: &crate::common::Server, args: &[&str]) -> Out {
    gantry_stdin(server, args, b"").await
}

/// [`gantry`] with `stdin` on its standard input.
pub async fn gantry_stdin(server: &crate::common::Server, args: &[&str], stdin: &[u8]) -> Out {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--server", &server.url]);
    gantry_in(None, &all, stdin).await
}
