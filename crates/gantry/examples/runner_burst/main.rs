//! A burst of queued GitHub Actions jobs against `gantry serve` with one runner pool: the fake
//! GitHub (in this process) sends N signed `workflow_job` `queued` deliveries at once, Gantry
//! checks each job, registers a just-in-time runner and starts it (a process, or a Docker
//! container of the stand-in runner image), and this program reads every runner's record back.
//!
//!     runner_burst [--executor local|docker] [--jobs N] [--max-runners M]
//!                  [--gantry PATH] [--claim]
//!
//! `--gantry` defaults to the `gantry` beside this program's folder (`target/release/gantry`
//! for `target/release/examples/runner_burst`).
//!
//! Per runner it reports, with p50, p90, p99, max and a histogram:
//!
//! - delivery received → started: `started_at` of the runner's record less `received_at` of
//!   the stored delivery it was queued by (signature checked and parsed; the delivery is then
//!   stored durably before it is acted on);
//! - delivery acted on → started: `started_at − queued_at` of the runner's record;
//! - job added → started: from this program adding the job to the fake (which queues its
//!   delivery) to `started_at`. The fake sends its deliveries one at a time, in order, each
//!   once the previous one is answered, so this one includes the burst's queue at the fake.
//!
//! and the burst's wall time (first job added → last runner started), and where the time goes:
//! each step of a runner's audit trail (delivery stored → job checked → registered → started),
//! p50, p90 and p99.
//!
//! By default the runners never claim their job (`FAKE_RUNNER_NEVER_CLAIM=1`): nothing but
//! queued → started happens during the burst, and it needs `--max-runners` ≥ `--jobs`.
//! `--claim`: each runner claims a `sleep-0` job and completes it, so `in_progress` and
//! `completed` deliveries (and removals) interleave with the burst, and a pool smaller than
//! the burst frees its places. A runner may then take another runner's job (GitHub gives a
//! queued job to any idle runner with its labels): that changes which job a runner ran, not
//! when it started. Runners are named after the job they were started for, and that is what
//! is measured.
//!
//! At the end every job is cancelled at the fake (a `completed` delivery each), Gantry removes
//! the runners, and whatever is left (processes, containers labelled
//! `io.gantry.runner-pool=rbench`) is killed.
//!
//! `bench/runners.sh` builds and runs it.

mod report;

use gantry_github::fake::{FakeGitHub, FakeJob};
use report::{percentile, report};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, BufReader};

const TOKEN: &str = "rbench-token";
const SECRET: &str = "rbench-hook-secret";
const POOL: &str = "rbench";
const REPO: &str = "acme/web";
const IMAGE: &str = "gantry-test/fake-runner:latest";
const FIRST_JOB: u64 = 700_000;
/// How long the burst may take.
const TIMEOUT: Duration = Duration::from_secs(300);

struct Args {
    docker: bool,
    jobs: u64,
    max_runners: u64,
    gantry: PathBuf,
    claim: bool,
}

fn usage(why: &str) -> ! {
    eprintln!(
        "runner_burst: {why}\nusage: runner_burst [--executor local|docker] [--jobs N] \
         [--max-runners M] [--gantry PATH] [--claim]"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut a = Args {
        docker: false,
        jobs: 200,
        max_runners: 200,
        gantry: root.join("target/release/gantry"),
        claim: false,
    };
    // Beside this program: TARGET/release/examples/runner_burst → TARGET/release/gantry.
    if let Some(release) = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.join("gantry")))
        .filter(|g| g.exists())
    {
        a.gantry = release;
    }
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--executor" => match value().as_str() {
                "local" => a.docker = false,
                "docker" => a.docker = true,
                other => usage(&format!("unknown executor `{other}`")),
            },
            "--jobs" => a.jobs = value().parse().unwrap_or_else(|_| usage("--jobs N")),
            "--max-runners" => {
                a.max_runners = value().parse().unwrap_or_else(|_| usage("--max-runners M"))
            }
            "--gantry" => a.gantry = PathBuf::from(value()),
            "--claim" => a.claim = true,
            "-h" | "--help" => usage("a burst of queued workflow jobs against one runner pool"),
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    if a.jobs == 0 || a.max_runners == 0 {
        usage("--jobs and --max-runners are at least 1");
    }
    if a.max_runners < a.jobs && !a.claim {
        usage(
            "runners that never claim never free their place: --max-runners < --jobs needs --claim",
        );
    }
    a
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64()
        * 1000.0
}

fn parse_ms(v: &Value) -> Option<f64> {
    let t = chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok()?;
    Some(t.timestamp_millis() as f64)
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The host's address on Docker's default bridge (containers reach the fake there).
fn bridge_gateway() -> String {
    let inspect = |format: &str| {
        run(
            "docker",
            &["network", "inspect", "bridge", "--format", format],
        )
    };
    let gateway = inspect("{{range .IPAM.Config}}{{.Gateway}} {{end}}");
    if let Some(g) = gateway.split_whitespace().find(|g| !g.contains(':')) {
        return g.to_string();
    }
    let subnets = inspect("{{range .IPAM.Config}}{{.Subnet}} {{end}}");
    let subnet = subnets
        .split_whitespace()
        .find(|s| !s.contains(':'))
        .expect("an IPv4 subnet on the bridge");
    let base: std::net::Ipv4Addr = subnet.split('/').next().unwrap().parse().unwrap();
    std::net::Ipv4Addr::from(u32::from(base) + 1).to_string()
}

fn pool_toml(a: &Args, script: &Path) -> String {
    let env = if a.claim {
        "FAKE_RUNNER_CLAIM_WAIT=10"
    } else {
        "FAKE_RUNNER_NEVER_CLAIM=1"
    };
    let (executor, image, program) = if a.docker {
        (
            "docker",
            format!("image = \"{IMAGE}\"\n"),
            "/fake-runner.sh".to_string(),
        )
    } else {
        ("local", String::new(), script.display().to_string())
    };
    format!(
        r#"[runners.{POOL}]
labels = ["self-hosted", "rbench"]
scope = "repo:{REPO}"
executor = "{executor}"
{image}command = ["/bin/sh", "-c", "{env} exec {program} --jitconfig \"$ACTIONS_RUNNER_INPUT_JITCONFIG\""]
max_runners = {max}
boot_timeout = "10m"
"#,
        max = a.max_runners
    )
}

struct Server {
    child: tokio::process::Child,
    url: String,
    http: reqwest::Client,
    log: PathBuf,
}

impl Server {
    async fn start(a: &Args, dir: &Path, config: &Path, fake: &FakeGitHub) -> Server {
        let log = dir.join("server.log");
        let mut child = tokio::process::Command::new(&a.gantry)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .env("GANTRY_CONFIG", config)
            .env("GANTRY_GITHUB_TOKEN", TOKEN)
            .env("GANTRY_GITHUB_API_URL", &fake.url)
            .env("GANTRY_GITHUB_WEBHOOK_SECRET", SECRET)
            .env("GANTRY_RUNNERS_RECONCILE", "1h")
            .env_remove("GANTRY_API_TOKEN")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("server log"))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", a.gantry.display()));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("gantry serve said nothing within 20 s")
            .expect("read its output")
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("gantry serve stopped:\n{log}")
            });
        let url = line
            .strip_prefix("gantry listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        // Whatever else it prints must not fill the pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server {
            child,
            url,
            http: reqwest::Client::new(),
            log,
        }
    }

    async fn runners(&self) -> Vec<Value> {
        let body: Value = self
            .http
            .get(format!("{}/api/v1/runners?state=all&limit=1000", self.url))
            .send()
            .await
            .expect("GET /api/v1/runners")
            .json()
            .await
            .expect("its JSON");
        body["runners"].as_array().cloned().unwrap_or_default()
    }

    /// Once a reconciliation (and so the one at start) has finished.
    async fn reconciled(&self) {
        let status = self
            .http
            .post(format!("{}/api/v1/runners/reconcile", self.url))
            .send()
            .await
            .expect("POST /api/v1/runners/reconcile")
            .status();
        assert!(status.is_success(), "reconcile: {status}");
    }

    /// Whether the pool has no runner left to start: none waiting, registering or starting
    /// (and, unless runners claim jobs, `jobs` running).
    async fn nothing_to_start(&self, jobs: u64, claim: bool) -> bool {
        let Ok(resp) = self
            .http
            .get(format!("{}/api/v1/runners?limit=1", self.url))
            .send()
            .await
        else {
            return false;
        };
        let body: Value = resp.json().await.unwrap_or_default();
        let Some(pool) = body["pools"].get(0) else {
            return false;
        };
        let n = |phase: &str| pool["by_phase"][phase].as_u64().unwrap_or(0);
        n("waiting") + n("registering") + n("starting") == 0 && (claim || n("running") >= jobs)
    }

    /// When each stored delivery was received (signature checked, parsed), by event id.
    async fn received(&self) -> HashMap<String, f64> {
        let body: Value = self
            .http
            .get(format!(
                "{}/api/v1/events?source=github&limit=1000",
                self.url
            ))
            .send()
            .await
            .expect("GET /api/v1/events")
            .json()
            .await
            .expect("its JSON");
        body["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| Some((e["id"].as_str()?.to_string(), parse_ms(&e["received_at"])?)))
            .collect()
    }

    /// The server's CPU time so far (user + system), in ms.
    fn cpu_ms(&self) -> f64 {
        let Some(pid) = self.child.id() else {
            return 0.0;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        // utime and stime are fields 14 and 15 of /proc/PID/stat (11 and 12 after the name).
        (ticks(11) + ticks(12)) * 10.0
    }

    fn tail_log(&self, n: usize) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// Where the time goes, from each runner's audit trail: the delivery stored (received →
/// queued), the job checked at GitHub (→ registering), the runner registered (→ starting)
/// and its process or container started (→ running). Each step waits for the commit of the
/// phase before it.
async fn phases(server: &Server, runners: &[Value], received: &HashMap<String, f64>) {
    let steps = [
        "received -> queued (delivery stored)",
        "queued -> registering (job checked)",
        "registering -> starting (registered)",
        "starting -> running (started)",
    ];
    let mut spans: Vec<Vec<f64>> = vec![Vec::new(); steps.len()];
    for r in runners {
        let Some(name) = r["name"].as_str().filter(|n| job_of(n).is_some()) else {
            continue;
        };
        let Ok(resp) = server
            .http
            .get(format!("{}/api/v1/runners/{name}", server.url))
            .send()
            .await
        else {
            continue;
        };
        let one: Value = resp.json().await.unwrap_or_default();
        let at = |to: &str| {
            one["audit"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|a| a["to"] == to)
                .and_then(|a| parse_ms(&a["at"]))
        };
        let times = [
            r["event_id"]
                .as_str()
                .and_then(|e| received.get(e).copied()),
            parse_ms(&r["queued_at"]),
            at("registering"),
            at("starting"),
            parse_ms(&r["started_at"]),
        ];
        for (i, span) in spans.iter_mut().enumerate() {
            if let (Some(a), Some(b)) = (times[i], times[i + 1]) {
                span.push(b - a);
            }
        }
    }
    println!("where the time goes (per runner, from its audit trail):");
    for (step, mut ms) in steps.iter().zip(spans) {
        ms.sort_by(|a, b| a.total_cmp(b));
        if ms.is_empty() {
            continue;
        }
        println!(
            "  {step:38} p50 {:6.0} ms  p90 {:6.0} ms  p99 {:6.0} ms",
            percentile(&ms, 0.5),
            percentile(&ms, 0.9),
            percentile(&ms, 0.99)
        );
    }
}

fn job_of(name: &str) -> Option<u64> {
    // gantry-rbench-<job>-1 (a replacement is …-1-rN and is not counted as the job's).
    name.strip_prefix(&format!("gantry-{POOL}-"))?
        .strip_suffix("-1")?
        .parse()
        .ok()
}

#[tokio::main]
async fn main() {
    let a = args();
    if !a.gantry.exists() {
        usage(&format!(
            "no gantry binary at {} (cargo build --release -p gantry --bin gantry)",
            a.gantry.display()
        ));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if a.docker {
        let have = std::process::Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !have {
            run(root.join("scripts/test-images").to_str().unwrap(), &[]);
        }
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let script = dir.path().join("fake-runner.sh");
    std::fs::copy(root.join("scripts/fake-runner.sh"), &script).expect("copy fake-runner.sh");
    let fake = if a.docker {
        let f = FakeGitHub::start_on(TOKEN, "0.0.0.0".parse().unwrap()).await;
        f.set_public_url(&format!("http://{}:{}", bridge_gateway(), f.port()));
        f
    } else {
        FakeGitHub::start(TOKEN).await
    };
    let config = dir.path().join("gantry.toml");
    std::fs::write(&config, pool_toml(&a, &script)).expect("write gantry.toml");
    let server = Server::start(&a, dir.path(), &config, &fake).await;
    fake.set_webhook(&format!("{}/webhooks/github", server.url), SECRET);
    // The reconciler's first pass (at start) lists GitHub's queued jobs: had it not finished
    // before the burst, it could queue some of the jobs itself, ahead of their deliveries.
    server.reconciled().await;
    println!(
        "{} queued jobs at once, executor {}, max_runners {}, runners {}",
        a.jobs,
        if a.docker { "docker" } else { "local" },
        a.max_runners,
        if a.claim {
            "claim a sleep-0 job"
        } else {
            "never claim"
        }
    );

    // The burst: every job added (and its delivery queued) at once.
    let cpu0 = server.cpu_ms();
    let mut added: HashMap<u64, f64> = HashMap::new();
    for i in 0..a.jobs {
        let id = FIRST_JOB + i;
        let job = FakeJob {
            name: "sleep-0".into(),
            ..FakeJob::queued(id, &["self-hosted", "rbench"])
        };
        added.insert(id, now_ms());
        fake.add_job(REPO, job);
    }
    let first_added = added.values().copied().fold(f64::INFINITY, f64::min);

    // Until every job's runner has started.
    let t0 = Instant::now();
    let runners = loop {
        // The pool's counts are cheap to ask for; every record only once nothing is left to
        // start (so the polling takes little of the server's time during the burst).
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !server.nothing_to_start(a.jobs, a.claim).await && t0.elapsed() < TIMEOUT {
            continue;
        }
        let all = server.runners().await;
        let own: Vec<&Value> = all
            .iter()
            .filter(|r| job_of(r["name"].as_str().unwrap_or("")).is_some())
            .collect();
        let started = own.iter().filter(|r| !r["started_at"].is_null()).count();
        // With --claim a runner may be done without having started (its job was taken).
        let settled = own
            .iter()
            .filter(|r| !r["started_at"].is_null() || r["state"] == "done")
            .count();
        if settled as u64 == a.jobs {
            break all;
        }
        if t0.elapsed() >= TIMEOUT {
            let stuck: Vec<String> = all
                .iter()
                .filter(|r| r["started_at"].is_null())
                .take(5)
                .map(|r| format!("{} {} {}", r["name"], r["state"], r["note"]))
                .collect();
            eprintln!(
                "{started} of {} runners started after {} s; e.g. {stuck:#?}\n{}",
                a.jobs,
                TIMEOUT.as_secs(),
                server.tail_log(20)
            );
            std::process::exit(1);
        }
    };
    let cpu1 = server.cpu_ms();

    let received = server.received().await;
    let mut from_received = Vec::new();
    let mut acted = Vec::new();
    let mut end_to_end = Vec::new();
    let mut last_started = 0f64;
    let mut launches = 0u64;
    for r in &runners {
        let Some(job) = job_of(r["name"].as_str().unwrap_or("")) else {
            continue;
        };
        let (Some(q), Some(s)) = (parse_ms(&r["queued_at"]), parse_ms(&r["started_at"])) else {
            continue;
        };
        if let Some(at) = r["event_id"].as_str().and_then(|e| received.get(e)) {
            from_received.push(s - at);
        }
        acted.push(s - q);
        end_to_end.push(s - added[&job]);
        last_started = last_started.max(s);
        launches += r["launches"].as_u64().unwrap_or(0);
    }
    phases(&server, &runners, &received).await;
    if from_received.len() < acted.len() {
        let missing: Vec<String> = runners
            .iter()
            .filter(|r| {
                r["event_id"]
                    .as_str()
                    .is_none_or(|e| !received.contains_key(e))
            })
            .take(3)
            .map(|r| format!("{} event {}", r["name"], r["event_id"]))
            .collect();
        println!(
            "note: {} of {} runners' deliveries not among the {} events listed (e.g. {missing:?})",
            acted.len() - from_received.len(),
            acted.len(),
            received.len()
        );
    }
    let others = runners
        .iter()
        .filter(|r| job_of(r["name"].as_str().unwrap_or("")).is_none())
        .count();
    let never = a.jobs as usize - acted.len().min(a.jobs as usize);
    report("delivery received -> runner started", from_received);
    report("delivery acted on (queued_at) -> runner started", acted);
    report("job added at the fake -> runner started", end_to_end);
    println!(
        "burst: first job added -> last runner started {:.0} ms; {launches} launches for {} \
         runners{}; server CPU {:.0} ms",
        last_started - first_added,
        a.jobs,
        match (others, never) {
            (0, 0) => String::new(),
            (o, n) => format!(" ({n} never started; +{o} replacement runners)"),
        },
        cpu1 - cpu0
    );

    // Cleanup: cancel every job (Gantry removes its runner), then kill what is left.
    let t1 = Instant::now();
    let open: Vec<u64> = fake
        .lock()
        .jobs
        .iter()
        .filter(|j| j.status != "completed")
        .map(|j| j.id)
        .collect();
    for id in open {
        fake.set_job_status(id, "completed", Some("cancelled"));
    }
    let mut left = Vec::new();
    while t1.elapsed() < Duration::from_secs(120) {
        left = server
            .runners()
            .await
            .into_iter()
            .filter(|r| r["state"] != "done")
            .collect();
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if left.is_empty() {
        println!(
            "cleanup: every job cancelled; every runner removed within {:.1} s",
            t1.elapsed().as_secs_f64()
        );
    } else {
        println!(
            "cleanup: {} runners not removed within 120 s (e.g. {} {} {}); killed",
            left.len(),
            left[0]["name"],
            left[0]["state"],
            left[0]["note"]
        );
    }
    server.stop().await;
    if a.docker {
        let ids = run(
            "docker",
            &[
                "ps",
                "-aq",
                "--filter",
                &format!("label=io.gantry.runner-pool={POOL}"),
            ],
        );
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            run("docker", &args);
        }
    } else {
        for r in &left {
            if let Some(pid) = r["container"].as_str().and_then(|c| c.strip_prefix("pid ")) {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}
