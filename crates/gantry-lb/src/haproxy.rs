//! HAProxy through its Runtime API: one command per connection to the admin socket (`stats
//! socket … level admin`). A target group is a backend; a target is a dynamic server
//! (`add server`, HAProxy ≥ 2.4) whose health checks follow the backend's `option httpchk`.

use async_trait::async_trait;
use gantry_engine::ports::{Target, TargetGroupError, TargetGroups, TargetHealth, TargetStatus};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// How long one Runtime API command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a target group lives in HAProxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaproxyGroup {
    pub socket: PathBuf,
    pub backend: String,
    /// Health check interval for new servers.
    pub check_interval_ms: u64,
    /// Consecutive passing checks before a server is healthy.
    pub healthy_threshold: u32,
}

#[derive(Debug, Default)]
pub struct HaproxyTargetGroups {
    groups: HashMap<String, HaproxyGroup>,
}

impl HaproxyTargetGroups {
    pub fn new(groups: HashMap<String, HaproxyGroup>) -> Self {
        HaproxyTargetGroups { groups }
    }

    fn group(&self, name: &str) -> Result<&HaproxyGroup, TargetGroupError> {
        self.groups
            .get(name)
            .ok_or_else(|| TargetGroupError::UnknownGroup(name.to_string()))
    }

    /// Runs one command; the answer as text.
    async fn command(&self, g: &HaproxyGroup, command: &str) -> Result<String, TargetGroupError> {
        let unreachable = |e: std::io::Error| {
            TargetGroupError::Unreachable(format!("{}: {e}", g.socket.display()))
        };
        let run = async {
            let mut s = UnixStream::connect(&g.socket).await.map_err(unreachable)?;
            s.write_all(format!("{command}\n").as_bytes())
                .await
                .map_err(unreachable)?;
            let mut out = String::new();
            s.read_to_string(&mut out).await.map_err(unreachable)?;
            Ok(out)
        };
        tokio::time::timeout(COMMAND_TIMEOUT, run)
            .await
            .map_err(|_| {
                TargetGroupError::Unreachable(format!("{}: timed out", g.socket.display()))
            })?
    }

    /// A command whose answer must be empty or one of `ok` (anything else is a refusal).
    async fn expect(
        &self,
        g: &HaproxyGroup,
        command: String,
        ok: &[&str],
    ) -> Result<(), TargetGroupError> {
        let answer = self.command(g, &command).await?;
        let text = answer.trim();
        if text.is_empty() || ok.iter().any(|o| text.contains(o)) {
            Ok(())
        } else {
            Err(TargetGroupError::Refused {
                command,
                answer: text.to_string(),
            })
        }
    }
}

/// HAProxy server names allow letters, digits and `-_.:`.
fn server_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[async_trait]
impl TargetGroups for HaproxyTargetGroups {
    async fn register(&self, group: &str, t: &Target) -> Result<(), TargetGroupError> {
        let g = self.group(group)?;
        let srv = format!("{}/{}", g.backend, server_name(&t.id));
        self.expect(
            g,
            format!(
                "add server {srv} {}:{} check inter {} rise {} fall 2",
                t.address, t.port, g.check_interval_ms, g.healthy_threshold
            ),
            &["New server registered"],
        )
        .await?;
        self.expect(g, format!("enable health {srv}"), &[]).await?;
        self.expect(g, format!("enable server {srv}"), &[]).await
    }

    async fn drain(&self, group: &str, target: &Target) -> Result<(), TargetGroupError> {
        let g = self.group(group)?;
        let srv = format!("{}/{}", g.backend, server_name(&target.id));
        self.expect(g, format!("set server {srv} state drain"), &[])
            .await
    }

    async fn deregister(&self, group: &str, target: &Target) -> Result<(), TargetGroupError> {
        let g = self.group(group)?;
        let srv = format!("{}/{}", g.backend, server_name(&target.id));
        // A server is deleted from maintenance; "No such server" means it is gone already.
        self.expect(g, format!("disable server {srv}"), &["No such server"])
            .await?;
        self.expect(
            g,
            format!("del server {srv}"),
            &["Server deleted", "No such server"],
        )
        .await
    }

    async fn health(&self, group: &str, target: &Target) -> Result<TargetStatus, TargetGroupError> {
        let g = self.group(group)?;
        let name = server_name(&target.id);
        let stat = self.command(g, "show stat").await?;
        let mut lines = stat.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or("")
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = |n: &str| header.iter().position(|h| *h == n);
        let check = col("check_status");
        let last_check = col("last_chk");
        let (Some(px), Some(sv), Some(st)) = (col("pxname"), col("svname"), col("status")) else {
            return Err(TargetGroupError::Refused {
                command: "show stat".into(),
                answer: "no pxname/svname/status columns".into(),
            });
        };
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            if f.get(px) == Some(&g.backend.as_str()) && f.get(sv) == Some(&name.as_str()) {
                let status = f.get(st).copied().unwrap_or("");
                // Until its first check has run, a new server is not known to be healthy.
                let checked = check
                    .and_then(|c| f.get(c))
                    .is_some_and(|c| !c.is_empty() && !c.starts_with("INI"));
                if !checked && status == "UP" {
                    return Ok(TargetStatus::is(TargetHealth::Initial));
                }
                let health = match status {
                    "UP" => TargetHealth::Healthy,
                    "DRAIN" | "NOLB" => TargetHealth::Draining,
                    "DOWN" => TargetHealth::Unhealthy,
                    s if s.starts_with("DOWN ") || s.starts_with("UP ") => TargetHealth::Initial,
                    _ => TargetHealth::Unused, // MAINT, no check
                };
                // A failing check says why: `L7STS` and `HTTP status check returned code <502>`.
                let reason = (health == TargetHealth::Unhealthy)
                    .then(|| {
                        let field = |c: Option<usize>| c.and_then(|c| f.get(c)).copied();
                        match (field(check), field(last_check)) {
                            (Some(c), Some(l)) if !l.is_empty() => Some(format!("{c}: {l}")),
                            (Some(c), _) if !c.is_empty() => Some(c.to_string()),
                            _ => None,
                        }
                    })
                    .flatten();
                return Ok(TargetStatus { health, reason });
            }
        }
        Err(TargetGroupError::Refused {
            command: "show stat".into(),
            answer: format!("no server `{name}` in backend `{}`", g.backend),
        })
    }
}
