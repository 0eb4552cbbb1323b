#!/usr/bin/env bash
# The 1000-job DAG (10 layers × 100 jobs of `true`, each needing 2 jobs of the layer before;
# seeded) submitted over the API to `gantry serve --max-parallel 2`, on SQLite (the data dir)
# and on PostgreSQL (a throwaway cluster from scripts/pg-cluster, fsync on), side by side:
# wall time from submit to the run's end, medians of REPS (5). The issue's target: PostgreSQL
# at most 2× SQLite. env: REPS, PROFILE (release; `debug` uses the debug build).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --release -p gantry --bin gantry --manifest-path "$ROOT/Cargo.toml"
else
  cargo build -p gantry --bin gantry --manifest-path "$ROOT/Cargo.toml"
fi
"$ROOT/scripts/test-deps" >/dev/null
work=$(mktemp -d)
chmod 755 "$work" # the cluster belongs to another user when run as root
trap '"$ROOT/scripts/pg-cluster" stop "$work/pg" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
url=$("$ROOT/scripts/pg-cluster" start "$work/pg" | tail -1)
BIN="$TARGET/$PROFILE/gantry" PG_URL="$url" WORK="$work" REPS=${REPS:-5} python3 - <<'PY'
import json, os, random, statistics, subprocess, time, urllib.request

BIN, PG_URL, WORK, REPS = os.environ["BIN"], os.environ["PG_URL"], os.environ["WORK"], int(os.environ["REPS"])
PSQL = sorted(p for p in __import__("glob").glob("/usr/lib/postgresql/*/bin/psql"))[-1]

def spec():
    rnd = random.Random(7)
    jobs = {}
    for layer in range(10):
        for i in range(100):
            job = {"run": ["true"]}
            if layer:
                job["needs"] = [f"l{layer - 1}-{j}" for j in rnd.sample(range(100), 2)]
            jobs[f"l{layer}-{i}"] = job
    return {"name": "dag-1000", "jobs": jobs}

def api(url, path, body=None):
    req = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)

def one(backend, n):
    data = f"{WORK}/{backend}-{n}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANTRY_")}
    if backend == "postgres":
        db = f"bench_{n}"
        subprocess.run([PSQL, PG_URL, "-qc", f"CREATE DATABASE {db}"], check=True)
        env["GANTRY_DATABASE_URL"] = PG_URL.rsplit("/", 1)[0] + "/" + db
    server = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--max-parallel", "2"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = server.stdout.readline().split("listening on ")[1].strip()
        t0 = time.perf_counter()
        run_id = api(url, "/api/v1/runs", spec())["run_id"]
        while True:
            run = api(url, f"/api/v1/runs/{run_id}")
            if run["status"] not in ("queued", "running"):
                break
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        assert run["status"] == "succeeded", run["status"]
        return wall
    finally:
        server.terminate()
        server.wait()

walls = {"sqlite": [], "postgres": []}
for n in range(REPS):
    for backend in walls:
        walls[backend].append(one(backend, n))
s, p = statistics.median(walls["sqlite"]), statistics.median(walls["postgres"])
print(f"1000-job DAG of `true`, --max-parallel 2, submit → finished, median of {REPS} ({os.path.basename(os.path.dirname(BIN))} build):")
print("| store | wall | all runs |\n|---|---|---|")
for b, ws in walls.items():
    print(f"| {b} | {statistics.median(ws):.2f} s | {', '.join(f'{w:.2f}' for w in ws)} |")
print(f"PostgreSQL / SQLite: {p / s:.2f}× (target: at most 2×) — {'pass' if p / s <= 2 else 'FAIL'}")
PY
