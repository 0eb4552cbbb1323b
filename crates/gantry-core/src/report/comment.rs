//! A run's pull-request comment: the job list with each job's status while the run goes, then
//! a summary (status and duration per job; for failed jobs the last lines of their log in a
//! collapsed `<details>` block).
//!
//! GitHub caps a comment at 65,536 characters. What does not fit is carried into chained
//! comments: the first always keeps the header and the job table (the summary), log sections
//! follow whole in later comments, and a log too long for any comment loses its oldest lines.
//! No comment ever ends inside a code block or a `<details>` element.

use crate::duration::format_duration_ms;
use crate::status::{JobStatus, RunStatus};

/// GitHub's limit on a comment body, in characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;
/// Log lines shown for a failed job.
pub const LOG_TAIL_LINES: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub run_id: String,
    pub name: String,
    pub status: RunStatus,
    pub trace_id: String,
    /// Base of links to job logs (`GANTRY_PUBLIC_URL`), if any.
    pub public_url: Option<String>,
    pub jobs: Vec<JobReport>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobReport {
    pub name: String,
    pub status: JobStatus,
    pub attempt: u32,
    pub exit_code: Option<i32>,
    pub duration_ms: Option<u64>,
    /// The end of the job's log, for failed jobs.
    pub log_tail: Option<String>,
}

/// The marker that identifies a run's comments, so they are edited in place, not re-posted.
pub fn marker(run_id: &str, part: usize) -> String {
    format!("<!-- gantry:run={run_id} part={part} -->")
}

fn icon(s: JobStatus) -> &'static str {
    match s {
        JobStatus::Succeeded => "✅",
        JobStatus::Failed | JobStatus::TimedOut => "❌",
        JobStatus::Running => "🔄",
        JobStatus::Queued | JobStatus::Pending => "⏳",
        JobStatus::Cancelled => "⛔",
        JobStatus::Skipped => "⏭️",
    }
}

/// Backticks for a code fence that nothing inside `text` can close.
fn fence_for(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat((longest + 1).max(3))
}

/// Escapes what would break a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn header(r: &RunReport) -> String {
    let mut out = String::new();
    let done = r.status.is_terminal();
    let title = if done {
        format!("{} **{}** {}", run_icon(r.status), cell(&r.name), r.status)
    } else {
        format!("🔄 **{}** running", cell(&r.name))
    };
    out.push_str(&format!("### Gantry · {title}\n\n"));
    out.push_str("| job | status | duration |\n|---|---|---|\n");
    for j in &r.jobs {
        let mut status = j.status.to_string();
        if let Some(code) = j.exit_code.filter(|c| *c != 0) {
            status.push_str(&format!(" (exit {code})"));
        }
        if j.attempt > 1 {
            status.push_str(&format!(", attempt {}", j.attempt));
        }
        let ran = !matches!(
            j.status,
            JobStatus::Pending | JobStatus::Queued | JobStatus::Skipped
        );
        let name = match &r.public_url {
            Some(base) if ran => format!(
                "[{}]({}/api/v1/runs/{}/jobs/{}/log)",
                cell(&j.name),
                base.trim_end_matches('/'),
                r.run_id,
                j.name
            ),
            _ => cell(&j.name),
        };
        let duration = j
            .duration_ms
            .map(format_duration_ms)
            .unwrap_or_else(|| "–".into());
        out.push_str(&format!(
            "| {} {name} | {status} | {duration} |\n",
            icon(j.status)
        ));
    }
    out.push_str(&format!(
        "\n<sub>run `{}` · trace `{}`</sub>\n",
        r.run_id, r.trace_id
    ));
    out
}

fn run_icon(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Succeeded => "✅",
        RunStatus::Failed => "❌",
        RunStatus::Cancelled => "⛔",
        _ => "🔄",
    }
}

/// A failed job's log tail as one collapsed section, trimmed (oldest lines first) to `budget`
/// characters; `None` when not even the frame fits.
fn log_section(j: &JobReport, tail: &str, budget: usize) -> Option<String> {
    let lines: Vec<&str> = tail.lines().collect();
    let mut start = lines.len().saturating_sub(LOG_TAIL_LINES);
    loop {
        let shown = lines[start..].join("\n");
        let fence = fence_for(&shown);
        let cut = if start > 0 {
            format!("… {start} earlier lines not shown\n")
        } else {
            String::new()
        };
        let summary = format!("{} log, last {} lines", cell(&j.name), lines.len() - start);
        let text = format!(
            "\n<details><summary>{summary}</summary>\n\n{cut}{fence}\n{shown}\n{fence}\n\n</details>\n"
        );
        if text.chars().count() <= budget {
            return Some(text);
        }
        if start >= lines.len() {
            return None;
        }
        // Drop lines from the front; faster when far over budget.
        let over = text.chars().count() - budget;
        let mut dropped = 0;
        while start < lines.len() && dropped < over {
            dropped += lines[start].chars().count() + 1;
            start += 1;
        }
    }
}

/// The comment bodies for a run, first to last, each within `limit` characters.
pub fn render(r: &RunReport, limit: usize) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let head_marker = marker(&r.run_id, 1);
    let mut first = format!("{head_marker}\n{}", header(r));
    if first.chars().count() > limit {
        // A table too long for one comment: keep what fits, whole rows only.
        let mut kept = String::new();
        for line in first.lines() {
            if kept.chars().count() + line.chars().count() + 40 > limit {
                kept.push_str("\n… more jobs than fit in one comment\n");
                break;
            }
            kept.push_str(line);
            kept.push('\n');
        }
        first = kept;
    }
    parts.push(first);
    for j in r.jobs.iter().filter(|j| j.status.is_failure()) {
        let Some(tail) = &j.log_tail else { continue };
        let room = limit.saturating_sub(parts.last().map_or(0, |p| p.chars().count()));
        if let Some(section) = log_section(j, tail, room) {
            if let Some(last) = parts.last_mut() {
                last.push_str(&section);
            }
            continue;
        }
        // Start the next comment in the chain.
        let next_marker = format!(
            "{}\n<sub>continued from the comment above</sub>\n",
            marker(&r.run_id, parts.len() + 1)
        );
        let room = limit.saturating_sub(next_marker.chars().count());
        if let Some(section) = log_section(j, tail, room) {
            parts.push(format!("{next_marker}{section}"));
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status: RunStatus, jobs: Vec<JobReport>) -> RunReport {
        RunReport {
            run_id: "01JDRUN".into(),
            name: "acme/infra#7".into(),
            status,
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            public_url: Some("https://ci.example.com/".into()),
            jobs,
        }
    }

    fn job(name: &str, status: JobStatus, ms: Option<u64>, log: Option<&str>) -> JobReport {
        let exit_code = match status {
            JobStatus::Failed => Some(2),
            JobStatus::Succeeded => Some(0),
            _ => None,
        };
        JobReport {
            name: name.into(),
            status,
            attempt: 1,
            exit_code,
            duration_ms: ms,
            log_tail: log.map(str::to_string),
        }
    }

    #[test]
    fn running_comment_lists_jobs() {
        let r = report(
            RunStatus::Running,
            vec![
                job("plan", JobStatus::Succeeded, Some(4200), None),
                job("apply", JobStatus::Running, None, None),
                job("notify", JobStatus::Pending, None, None),
            ],
        );
        insta::assert_snapshot!(render(&r, GITHUB_COMMENT_LIMIT).join("\n---\n"));
    }

    #[test]
    fn final_summary_shows_failed_logs_collapsed() {
        let mut apply = job(
            "apply",
            JobStatus::Failed,
            Some(61_000),
            Some("Planning...\nError: access denied ```\nexit status 2\n"),
        );
        apply.attempt = 2;
        let r = report(
            RunStatus::Failed,
            vec![
                job("plan", JobStatus::Succeeded, Some(4200), None),
                apply,
                job("notify", JobStatus::Skipped, None, None),
            ],
        );
        insta::assert_snapshot!(render(&r, GITHUB_COMMENT_LIMIT).join("\n---\n"));
    }

    fn balanced(part: &str) -> bool {
        let opens = part.matches("<details>").count();
        let closes = part.matches("</details>").count();
        // Every fence line opens or closes; outside code, they come in pairs.
        let fences = part.lines().filter(|l| l.starts_with("```")).count();
        opens == closes && fences % 2 == 0
    }

    #[test]
    fn long_output_is_chained_keeping_the_summary_first_and_blocks_whole() {
        let huge: String = (0..5000)
            .map(|i| format!("line {i} {}\n", "x".repeat(30)))
            .collect();
        let jobs: Vec<JobReport> = (0..4)
            .map(|i| {
                job(
                    &format!("job{i}"),
                    JobStatus::Failed,
                    Some(1000),
                    Some(&huge),
                )
            })
            .collect();
        let r = report(RunStatus::Failed, jobs);
        for limit in [GITHUB_COMMENT_LIMIT, 5_000, 1_500] {
            let parts = render(&r, limit);
            assert!(
                parts[0].contains("| job | status | duration |"),
                "summary first"
            );
            assert!(parts[0].starts_with(&marker("01JDRUN", 1)));
            for (i, p) in parts.iter().enumerate() {
                assert!(
                    p.chars().count() <= limit,
                    "part {i} is {} > {limit}",
                    p.chars().count()
                );
                assert!(balanced(p), "part {i} unbalanced:\n{p}");
                if i > 0 {
                    assert!(p.starts_with(&marker("01JDRUN", i + 1)));
                }
            }
            let last_lines: usize = parts.iter().map(|p| p.matches("line 4999 ").count()).sum();
            assert_eq!(
                last_lines, 4,
                "each failed job's newest line survives (limit {limit})"
            );
        }
    }

    #[test]
    fn fences_outgrow_backticks_in_the_log() {
        assert_eq!(fence_for("plain"), "```");
        assert_eq!(fence_for("has ```` four"), "`````");
    }
}
