#!/usr/bin/env bash
# Agents: JOBS (1000) jobs of `sleep 0.2`, each `runs_on: [bench]`, in one run submitted over
# the API to a `gantry serve`, run by 1, 2 and 4 `gantry agent` processes of SLOTS (2) slots
# each on this host. Prints the wall time from submit to the run's end beside the ideal
# (JOBS × 0.2 s / (agents × SLOTS)), the ratio, and jobs per second (how throughput grows
# with agents). The issue's target: 4 agents × 2 slots within 1.15× the ideal (25 s).
# env: JOBS, SLOTS, AGENTS ("1 2 4"), PROFILE (release; `debug` uses the debug build).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --release -p gantry --bin gantry --manifest-path "$ROOT/Cargo.toml"
else
  cargo build -p gantry --bin gantry --manifest-path "$ROOT/Cargo.toml"
fi
BIN="$TARGET/$PROFILE/gantry" JOBS=${JOBS:-1000} SLOTS=${SLOTS:-2} AGENTS=${AGENTS:-"1 2 4"} python3 - <<'PY'
import json, os, signal, subprocess, tempfile, time, urllib.request

BIN, JOBS, SLOTS = os.environ["BIN"], int(os.environ["JOBS"]), int(os.environ["SLOTS"])
COUNTS = [int(n) for n in os.environ["AGENTS"].split()]

def api(url, path, body=None):
    req = urllib.request.Request(url + path, data=None if body is None else json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)

def one(count):
    with tempfile.TemporaryDirectory() as d:
        server = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", f"{d}/data",
                                   "--max-parallel", str(4 * count * SLOTS + 16)],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        agents = []
        try:
            line = server.stdout.readline()
            url = line.split("listening on ")[1].strip()
            token = api(url, "/api/v1/agent-tokens", {"name": "bench"})["token"]
            env = {k: v for k, v in os.environ.items() if not k.startswith("GANTRY_")}
            env["GANTRY_AGENT_TOKEN"] = token
            for i in range(count):
                agents.append(subprocess.Popen(
                    [BIN, "agent", "--server", url, "--labels", "bench", "--slots", str(SLOTS),
                     "--name", f"a{i}", "--work-dir", f"{d}/agent{i}"],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            for _ in range(200):
                if len(api(url, "/api/v1/agents")["agents"]) == count:
                    break
                time.sleep(0.05)
            spec = {"name": f"agents-{count}", "jobs": {
                f"j{i:04}": {"runs_on": ["bench"], "run": ["sleep 0.2"]} for i in range(JOBS)}}
            t0 = time.perf_counter()
            run_id = api(url, "/api/v1/runs", spec)["run_id"]
            while True:
                run = api(url, f"/api/v1/runs/{run_id}")
                if run["status"] not in ("queued", "running"):
                    break
                time.sleep(0.05)
            wall = time.perf_counter() - t0
            assert run["status"] == "succeeded", run["status"]
            return wall
        finally:
            for a in agents:
                a.send_signal(signal.SIGTERM)
            for a in agents:
                a.wait()
            server.terminate()
            server.wait()

print(f"{JOBS} jobs of `sleep 0.2`, agents of {SLOTS} slots each ({os.path.basename(os.path.dirname(BIN))} build):")
print("| agents | slots | wall | ideal | ratio | jobs/s |\n|---|---|---|---|---|---|")
for count in COUNTS:
    wall = one(count)
    ideal = JOBS * 0.2 / (count * SLOTS)
    print(f"| {count} | {count * SLOTS} | {wall:.1f} s | {ideal:.1f} s | {wall / ideal:.3f} | {JOBS / wall:.1f} |", flush=True)
PY
