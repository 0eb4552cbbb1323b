#!/usr/bin/env bash
# A burst of work over the API: RUNS runs of JOBS independent jobs (`sleep 0.05` each), all
# submitted at once to `gantry serve --max-parallel SLOTS`. Prints the total time (first submit
# -> last run finished) against the ideal (RUNS x JOBS x 0.05 s / SLOTS), whether every run
# succeeded, and the server's peak RSS (VmHWM: the server process alone, not its jobs).
# env: RUNS (200), JOBS (20), SLOTS (8), CLIENTS (16 concurrent submitters).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release -p gantry --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release/gantry RUNS=${RUNS:-200} JOBS=${JOBS:-20} SLOTS=${SLOTS:-8} \
  CLIENTS=${CLIENTS:-16} python3 - <<'PY'
import concurrent.futures, http.client, json, os, socket, subprocess, tempfile, time
BIN = os.environ["BIN"]
RUNS, JOBS, SLOTS, CLIENTS = (int(os.environ[k]) for k in ("RUNS", "JOBS", "SLOTS", "CLIENTS"))
SPEC = json.dumps({"name": "burst", "jobs": {f"j{i}": {"run": ["sleep 0.05"]} for i in range(JOBS)}})

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def call(port, method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request(method, path, body=body, headers={"content-type": "application/json"})
    r = c.getresponse(); data = r.read(); c.close()
    return r.status, json.loads(data) if data else None

def hwm_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"): return int(line.split()[1])

with tempfile.TemporaryDirectory() as d:
    port = free_port()
    srv = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", d,
                            "--max-parallel", str(SLOTS)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 10
        while True:
            try:
                if call(port, "GET", "/healthz")[0] == 200: break
            except OSError:
                if time.time() > deadline: raise SystemExit("no /healthz")
                time.sleep(0.01)
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            replies = list(pool.map(lambda _: call(port, "POST", "/api/v1/runs", SPEC), range(RUNS)))
        submitted = time.perf_counter() - t0
        ids = [b["run_id"] for s, b in replies if s == 202]
        assert len(ids) == RUNS, f"{len(ids)} of {RUNS} accepted: {replies[:3]}"
        pending = set(ids); statuses = {}
        while pending:
            for rid in list(pending):
                s, run = call(port, "GET", f"/api/v1/runs/{rid}")
                if run["status"] in ("succeeded", "failed", "cancelled"):
                    statuses[rid] = run["status"]; pending.discard(rid)
            if time.perf_counter() - t0 > 600: raise SystemExit(f"{len(pending)} runs unfinished after 600 s")
            if pending: time.sleep(0.05)
        total = time.perf_counter() - t0
        ideal = RUNS * JOBS * 0.05 / SLOTS
        ok = sum(1 for s in statuses.values() if s == "succeeded")
        print(f"{RUNS} runs x {JOBS} jobs, {SLOTS} slots: all submitted in {submitted:.2f} s; "
              f"{ok}/{RUNS} succeeded; total {total:.2f} s = {total/ideal:.3f}x the ideal {ideal:.1f} s; "
              f"server peak RSS {hwm_kib(srv.pid)/1024:.1f} MiB")
    finally:
        srv.terminate(); srv.wait()
PY
