//! Seeds a data dir's store with finished runs for the dashboard's benchmark
//! (`bench/dashboard.sh`): `seed_runs DATA_DIR N`.
//!
//! The runs go in through the store's own write path (`Store::commit` of `Write::InsertRun`
//! batches, as the journal writes them), so the rows are the store's own; what a server later
//! reads back is checked by the benchmark through the API. Submitting 100,000 runs through the
//! API would run 100,000 of them for minutes, and could not give them what only a forge's
//! events give a run: a repository. So the runs here look like a busy installation's history:
//! a dozen repositories (a few busy, most quiet), pushes, pull requests, schedules, API and
//! webhook runs, main and many feature branches, tags, 3 to 12 jobs each; mostly succeeded,
//! some failed (the failing job's dependents skipped), some cancelled; over the last 60 days,
//! ids in creation order. Every run is finished, so a server adopts none of them. The same
//! seed (fixed) gives the same runs.

use gantry_core::spec::{self, Format, Limits, RunContext, RunSpec};
use gantry_core::{JobStatus, RunStatus};
use gantry_engine::ports::{JobRecord, RunRecord, Store, Write};
use gantry_store::SqliteStore;
use std::sync::Arc;

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// One of `items` by weight.
    fn pick<'a, T>(&mut self, items: &'a [(T, u64)]) -> &'a T {
        let total: u64 = items.iter().map(|(_, w)| w).sum();
        let mut at = self.below(total);
        for (item, w) in items {
            if at < *w {
                return item;
            }
            at -= w;
        }
        &items[items.len() - 1].0
    }
}

const REPOS: &[(&str, u64)] = &[
    ("acme/api", 30),
    ("acme/web", 22),
    ("acme/infra", 12),
    ("acme/mobile", 9),
    ("acme/billing", 7),
    ("acme/search", 5),
    ("acme/docs", 4),
    ("acme/auth", 4),
    ("acme/data-pipeline", 3),
    ("acme/cli", 2),
    ("acme/sdk-python", 1),
    ("acme/legacy-monolith", 1),
];

/// Pipelines' specs (as a repository's `.gantry.yml` would give them) and their weights.
const SPECS: &[(&str, u64)] = &[
    (
        r#"{"name":"ci","jobs":{
          "lint":{"run":["cargo fmt --check","cargo clippy --all-targets -- -D warnings"]},
          "build":{"run":["cargo build --release --locked"]},
          "test-unit":{"needs":["build"],"run":["cargo nextest run --workspace --lib"]},
          "test-integration":{"needs":["build"],"run":["docker compose up -d db","cargo nextest run --test '*'"]},
          "package":{"needs":["lint","test-unit","test-integration"],"run":["./scripts/package.sh"]}}}"#,
        50,
    ),
    (
        r#"{"name":"pr-checks","jobs":{
          "lint":{"run":["npm ci","npm run lint"]},
          "typecheck":{"run":["npm ci","npx tsc --noEmit"]},
          "test":{"needs":["lint","typecheck"],"run":["npm test -- --ci"]}}}"#,
        30,
    ),
    (
        r#"{"name":"nightly","jobs":{
          "checkout":{"run":["git fetch --tags"]},
          "test-linux-stable":{"needs":["checkout"],"run":["make test TOOLCHAIN=stable"]},
          "test-linux-beta":{"needs":["checkout"],"run":["make test TOOLCHAIN=beta"]},
          "test-linux-nightly":{"needs":["checkout"],"run":["make test TOOLCHAIN=nightly"]},
          "test-musl":{"needs":["checkout"],"run":["make test TARGET=musl"]},
          "test-arm64":{"needs":["checkout"],"run":["make test TARGET=aarch64"]},
          "fuzz-parser":{"needs":["checkout"],"run":["cargo fuzz run parser -- -max_total_time=300"]},
          "fuzz-matcher":{"needs":["checkout"],"run":["cargo fuzz run matcher -- -max_total_time=300"]},
          "bench":{"needs":["checkout"],"run":["make bench"]},
          "audit":{"needs":["checkout"],"run":["cargo deny check"]},
          "coverage":{"needs":["test-linux-stable"],"run":["make coverage"]},
          "report":{"needs":["coverage","bench","audit","fuzz-parser","fuzz-matcher","test-musl","test-arm64","test-linux-beta","test-linux-nightly"],"run":["./scripts/report.sh"]}}}"#,
        8,
    ),
    (
        r#"{"name":"deploy","jobs":{
          "build-image":{"run":["docker build -t app ."]},
          "deploy":{"needs":["build-image"],"run":["./deploy.sh production"]}}}"#,
        12,
    ),
];

fn ulid_at(ms: u64, rng: &mut Rng) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let value: u128 =
        (u128::from(ms) << 80) | (u128::from(rng.next()) << 16) | u128::from(rng.next() as u16);
    (0..26)
        .map(|i| ALPHABET[((value >> (125 - 5 * i)) & 31) as usize] as char)
        .collect()
}

fn context(rng: &mut Rng) -> RunContext {
    let event = *rng.pick(&[
        ("push", 55),
        ("pull_request", 30),
        ("schedule", 5),
        ("api", 7),
        ("webhook", 3),
    ]);
    let mut c = RunContext::of_event(event);
    if matches!(event, "api" | "webhook") {
        return c; // no forge behind them: no repository
    }
    c.repo = Some(rng.pick(REPOS).to_string());
    c.sha = Some(format!(
        "{:016x}{:016x}{:08x}",
        rng.next(),
        rng.next(),
        rng.next() as u32
    ));
    match rng.below(100) {
        0..=2 if event == "push" => c.tag = Some(format!("v1.{}.{}", rng.below(40), rng.below(10))),
        0..=49 => c.branch = Some("main".into()),
        50..=54 => c.branch = Some(format!("release/1.{}", rng.below(8))),
        _ => {
            const TOPICS: &[&str] = &[
                "login", "search", "billing", "cache", "deps", "ui", "docs", "perf",
            ];
            let topic = TOPICS[rng.below(TOPICS.len() as u64) as usize];
            c.branch = Some(format!("feat/{topic}-{}", rng.below(60)));
        }
    }
    if event == "pull_request" {
        c.pr = Some(1000 + rng.below(4000));
        c.fork = rng.below(20) == 0;
    }
    c
}

/// A finished run of `spec` created at `at`: its jobs run in spec order, one after another's
/// needs; a failed run has one job fail (what needs it is skipped), a cancelled one stops
/// part way (the rest cancelled or skipped).
fn finished(
    spec: &Arc<RunSpec>,
    at: i64,
    status: RunStatus,
    rng: &mut Rng,
) -> (Vec<JobRecord>, i64) {
    let n = spec.jobs.len();
    let broken = rng.below(n as u64) as usize;
    let mut jobs: Vec<JobRecord> = Vec::with_capacity(n);
    let mut end_of = vec![at; n];
    let mut last = at + 1_000;
    for (i, j) in spec.jobs.iter().enumerate() {
        let mut r = JobRecord::pending(i, &j.name);
        let needs: Vec<usize> = j
            .needs
            .iter()
            .filter_map(|d| spec.jobs.iter().position(|x| &x.name == d))
            .collect();
        let blocked = needs
            .iter()
            .any(|&d| jobs[d].status != JobStatus::Succeeded);
        let start = needs.iter().map(|&d| end_of[d]).max().unwrap_or(at + 1_000) + 200;
        if blocked {
            r.status = JobStatus::Skipped;
        } else if status == RunStatus::Cancelled && i >= broken {
            r.status = JobStatus::Cancelled;
            r.attempt = 1;
            r.started_at_ms = Some(start);
            r.finished_at_ms = Some(start + 2_000 + rng.below(30_000) as i64);
            r.exit_code = None;
        } else {
            let took = 3_000 + rng.below(240_000) as i64;
            r.attempt = 1;
            r.started_at_ms = Some(start);
            r.finished_at_ms = Some(start + took);
            if status == RunStatus::Failed && i == broken {
                r.status = JobStatus::Failed;
                r.exit_code = Some(if rng.below(2) == 0 { 1 } else { 101 });
            } else {
                r.status = JobStatus::Succeeded;
                r.exit_code = Some(0);
            }
        }
        end_of[i] = r.finished_at_ms.unwrap_or(start);
        last = last.max(end_of[i]);
        jobs.push(r);
    }
    (jobs, last)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(n)) = (args.get(1), args.get(2).and_then(|n| n.parse::<u64>().ok()))
    else {
        eprintln!("usage: seed_runs DATA_DIR N");
        std::process::exit(2);
    };
    let specs: Vec<(Arc<RunSpec>, u64)> = SPECS
        .iter()
        .map(|(text, w)| {
            let s = spec::parse_spec(text.as_bytes(), Format::Json, "run", &Limits::default())
                .map_err(|p| format!("{p:?}"))?;
            Ok::<_, String>((Arc::new(s), *w))
        })
        .collect::<Result<_, _>>()?;
    let store = SqliteStore::open(&std::path::Path::new(dir).join("gantry.db")).await?;
    let mut rng = Rng(0x5EED);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let span = 60 * 24 * 3600 * 1000u64;
    let first = now - span;
    let step = span / n.max(1);
    let mut counts = [0u64; 3];
    let t0 = std::time::Instant::now();
    let mut batch = Vec::with_capacity(1000);
    let (mut newest, mut deep) = (String::new(), String::new());
    for i in 0..n {
        let created = first + i * step + rng.below(step.max(1) / 2);
        let spec = rng.pick(&specs).clone();
        let status = *rng.pick(&[
            (RunStatus::Succeeded, 82),
            (RunStatus::Failed, 12),
            (RunStatus::Cancelled, 6),
        ]);
        counts[match status {
            RunStatus::Succeeded => 0,
            RunStatus::Failed => 1,
            _ => 2,
        }] += 1;
        let (jobs, finished_at) = finished(&spec, created as i64, status, &mut rng);
        let id = ulid_at(created, &mut rng);
        if i == n.min(1000) || deep.is_empty() {
            deep = id.clone();
        }
        newest = id.clone();
        batch.push(Write::InsertRun(Box::new(RunRecord {
            id,
            name: spec.name.clone(),
            status,
            trace_id: format!("{:016x}{:016x}", rng.next(), rng.next()),
            spec,
            context: context(&mut rng),
            cancel_requested: status == RunStatus::Cancelled,
            created_at_ms: created as i64,
            started_at_ms: Some(created as i64 + 1_000),
            finished_at_ms: Some(finished_at),
            jobs,
        })));
        if batch.len() == 1000 || i + 1 == n {
            store.commit(&batch).await?;
            batch.clear();
        }
    }
    eprintln!(
        "seeded {n} runs ({} succeeded, {} failed, {} cancelled) in {:.1} s",
        counts[0],
        counts[1],
        counts[2],
        t0.elapsed().as_secs_f64()
    );
    // For the benchmark: the newest run, and one with 1000 older runs (a deep page's `before`).
    println!(r#"{{"n": {n}, "newest": "{newest}", "deep": "{deep}"}}"#);
    Ok(())
}
