//! `/settings`: what the server was started with (listen address, data dir and database,
//! retention, limits, GitHub, webhook secrets, the API token, what jobs may do) and how many
//! services, target groups, runner pools and rules it has. Owns [`Configured`], the settings
//! as `gantry serve` resolved them with every secret reduced to "set" or "not set" (a value
//! never reaches this module), and URLs without credentials in them.

use super::page::{self, Page};
use super::session::Session;
use crate::server::AppState;
use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use gantry_core::duration::format_duration_ms;
use gantry_core::size::format_bytes;

/// The server's settings as the Settings page shows them: no secret's value, only whether
/// it is set. Made once at start (`Settings::configured`).
#[derive(Debug, Clone, Default)]
pub struct Configured {
    pub listen: String,
    pub public_url: Option<String>,
    pub cors_origins: Vec<String>,
    pub header_read_timeout_ms: u64,
    pub data_dir: String,
    pub database: String,
    pub work_dir: String,
    /// Where the secret store's key comes from (never the key).
    pub secret_key: &'static str,
    pub api_token: bool,
    pub github: Option<GitHubShown>,
    pub github_webhook_secret: bool,
    pub webhook_secret: bool,
    pub retain_runs_ms: i64,
    pub retain_audit_ms: i64,
    pub retain_logs_ms: i64,
    pub log_limit: u64,
    pub max_parallel: usize,
    pub git_allowed: Vec<String>,
    pub allow_internal_hosts: Vec<String>,
    pub fork_jobs: String,
    /// Repositories whose forks' pull requests get secrets.
    pub fork_secrets: Vec<String>,
    pub run_as: Option<String>,
    /// Names of the variables local jobs get (names only).
    pub pass_env: Vec<String>,
    pub services: usize,
    pub target_groups: usize,
    pub runner_pools: usize,
    pub runners_reconcile_ms: u64,
    /// Rules in `gantry.toml`.
    pub config_rules: usize,
}

/// GitHub reporting, pipelines and runners: how the server authenticates (never with what).
#[derive(Debug, Clone, Default)]
pub struct GitHubShown {
    /// `a token`, or `App 12345 (private key set)`.
    pub auth: String,
    pub api_url: String,
    pub report_interval_ms: i64,
}

/// A URL as shown: without a user or password in it, nor a query or fragment (where tokens
/// hide).
pub fn redact_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => authority.to_string(),
    };
    match scheme {
        Some(s) => format!("{s}://{authority}{path}"),
        None => format!("{authority}{path}"),
    }
}

/// One line of a table: a setting and its value as shown.
#[derive(Debug)]
pub struct Line {
    pub name: &'static str,
    pub value: String,
    /// The value is a "set" / "not set" of a secret.
    pub secret: bool,
}

/// A group of settings under a heading.
#[derive(Debug)]
pub struct Group {
    pub heading: &'static str,
    pub lines: Vec<Line>,
}

fn line(name: &'static str, value: impl Into<String>) -> Line {
    Line {
        name,
        value: value.into(),
        secret: false,
    }
}

fn set_or_not(name: &'static str, set: bool) -> Line {
    Line {
        name,
        value: if set { "set" } else { "not set" }.into(),
        secret: true,
    }
}

fn list_or(items: &[String], none: &str) -> String {
    if items.is_empty() {
        none.to_string()
    } else {
        items.join(", ")
    }
}

fn ms(n: i64) -> String {
    format_duration_ms(n.max(0) as u64)
}

/// What is live besides what was configured: the bus's rules now.
#[derive(Debug, Default)]
pub struct Live {
    pub rules: Option<usize>,
    pub services: usize,
    pub runner_pools: usize,
}

/// The page's groups of settings.
pub fn groups(c: &Configured, live: &Live) -> Vec<Group> {
    let urls = |v: &[String]| v.iter().map(|u| redact_url(u)).collect::<Vec<_>>();
    let github = match &c.github {
        None => vec![line(
            "GitHub",
            "not configured (set GANTRY_GITHUB_TOKEN, or GANTRY_GITHUB_APP_ID and GANTRY_GITHUB_APP_PRIVATE_KEY)",
        )],
        Some(g) => vec![
            line("Authenticates with", g.auth.clone()),
            line("API URL", redact_url(&g.api_url)),
            line("Report interval", ms(g.report_interval_ms)),
        ],
    };
    let mut github = github;
    github.push(set_or_not(
        "Webhook secret (/webhooks/github)",
        c.github_webhook_secret,
    ));
    let rules = match live.rules {
        Some(n) => format!("{n} ({} from gantry.toml)", c.config_rules),
        None => format!("{} in gantry.toml (the bus is not running)", c.config_rules),
    };
    vec![
        Group {
            heading: "Server",
            lines: vec![
                line("Listen address", c.listen.clone()),
                line(
                    "Public URL",
                    c.public_url.as_deref().map_or("not set".into(), redact_url),
                ),
                line("CORS origins", list_or(&urls(&c.cors_origins), "none")),
                line(
                    "Header read timeout",
                    format_duration_ms(c.header_read_timeout_ms),
                ),
                set_or_not("API token", c.api_token),
                set_or_not("Webhook secret (/webhook, HTTP targets)", c.webhook_secret),
            ],
        },
        Group {
            heading: "Storage",
            lines: vec![
                line("Data dir", c.data_dir.clone()),
                line("Database (SQLite)", c.database.clone()),
                line("Work dir", c.work_dir.clone()),
                line("Secret store key", c.secret_key),
                line("Keep finished runs", ms(c.retain_runs_ms)),
                line("Keep audit events", ms(c.retain_audit_ms)),
                line("Keep job logs", ms(c.retain_logs_ms)),
                line("Log limit per attempt", format_bytes(c.log_limit)),
            ],
        },
        Group {
            heading: "GitHub",
            lines: github,
        },
        Group {
            heading: "Jobs",
            lines: vec![
                line("Most jobs at once", c.max_parallel.to_string()),
                line(
                    "Local jobs run as",
                    c.run_as
                        .clone()
                        .unwrap_or_else(|| "the server's user".into()),
                ),
                line("Variables passed to jobs", list_or(&c.pass_env, "none")),
                line("Allowed clone URLs", list_or(&urls(&c.git_allowed), "none")),
                line("Forks' pull request jobs", c.fork_jobs.clone()),
                line("Secrets for forks of", list_or(&c.fork_secrets, "none")),
                line(
                    "Internal hosts HTTP targets may reach",
                    list_or(&c.allow_internal_hosts, "none"),
                ),
            ],
        },
        Group {
            heading: "Configured",
            lines: vec![
                line("Services", live.services.to_string()),
                line("Target groups", c.target_groups.to_string()),
                line(
                    "Runner pools",
                    format!(
                        "{} (reconciled every {})",
                        live.runner_pools,
                        format_duration_ms(c.runners_reconcile_ms)
                    ),
                ),
                line("Rules", rules),
            ],
        },
    ]
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    page: Page,
    groups: Vec<Group>,
}

/// `GET /settings`.
pub async fn show(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
) -> Response {
    let c = &state.configured;
    let live = Live {
        rules: state.bus.as_ref().map(|b| b.list().len()),
        services: c.services,
        runner_pools: state.runners.as_ref().map_or(0, |r| r.pools().len()),
    };
    page::render(
        StatusCode::OK,
        &SettingsPage {
            page: Page::new("Settings", "/settings", &session.csrf),
            groups: groups(c, &live),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_and_queries() {
        assert_eq!(
            redact_url("https://user:pw@ghe.example/api/v3?token=x#y"),
            "https://…@ghe.example/api/v3"
        );
        assert_eq!(
            redact_url("https://api.github.com"),
            "https://api.github.com"
        );
        assert_eq!(redact_url("a@b/c"), "…@b/c");
    }

    #[test]
    fn secrets_show_as_set_or_not_and_github_says_how_to_configure_it() {
        let c = Configured {
            api_token: true,
            ..Configured::default()
        };
        let g = groups(&c, &Live::default());
        let all: Vec<&Line> = g.iter().flat_map(|g| &g.lines).collect();
        let token = all.iter().find(|l| l.name == "API token").unwrap();
        assert_eq!((token.value.as_str(), token.secret), ("set", true));
        let hook = all
            .iter()
            .find(|l| l.name.starts_with("Webhook secret (/webhook"))
            .unwrap();
        assert_eq!(hook.value, "not set");
        assert!(all.iter().any(|l| l.value.contains("GANTRY_GITHUB_TOKEN")));
    }
}
