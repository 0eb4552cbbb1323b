#!/usr/bin/env bash
# Where the 1000-job DAG's CPU goes, make -j2 and `gantry run --max-parallel 2` taking turns:
# each tool's own CPU (its threads' run times from /proc/<pid>/task/*/schedstat, polled every
# 1 ms until it exits; Gantry's split into its engine thread and SQLite's), the jobs' CPU (the
# tool's children, from wait4, less its own) and the wall time. Extra Gantry binaries to
# compare (e.g. an older build) can be given as arguments.
# env: ROUNDS (default 8), D (the DAG folder). Needs bench/dag.sh to have made the DAG first.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=${D:-/tmp/gantry-bench/dag/dag-true}
[ -f "$D/gantry.json" ] || { echo "no $D/gantry.json: run bench/dag.sh first" >&2; exit 1; }
ROUNDS=${ROUNDS:-8} python3 - "$D" "$ROOT/target/x86_64-unknown-linux-gnu/release/gantry" "$@" <<'PY'
import collections, glob, os, shutil, statistics, subprocess, sys, tempfile, time
d, bins = sys.argv[1], sys.argv[2:]
tools = [("make", None)] + [(b, b) for b in bins]
res = {name: collections.defaultdict(list) for name, _ in tools}
for _ in range(int(os.environ["ROUNDS"])):
    for name, b in tools:
        tmp = tempfile.mkdtemp()
        argv = (["make", "-j2", "-s", "-f", f"{d}/Makefile", "all"] if b is None else
                [b, "run", f"{d}/gantry.json", "--max-parallel", "2", "--data-dir", f"{tmp}/state"])
        start = time.perf_counter()
        p = subprocess.Popen(argv, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        last, comm = {}, {}
        while True:
            for task in glob.glob(f"/proc/{p.pid}/task/*"):
                try:
                    last[task] = int(open(f"{task}/schedstat").read().split()[0]) / 1e6
                    comm[task] = open(f"{task}/comm").read().strip()
                except (OSError, ValueError, IndexError):
                    pass
            pid, _, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.001)
        wall = (time.perf_counter() - start) * 1e3
        r = res[name]
        sqlite = sum(v for t, v in last.items() if comm[t].startswith("sqlx"))
        own = sum(last.values())
        r["engine"].append(own - sqlite)
        r["sqlite"].append(sqlite)
        r["own"].append(own)
        r["jobs"].append((usage.ru_utime + usage.ru_stime) * 1e3 - own)
        r["wall"].append(wall)
        shutil.rmtree(tmp, ignore_errors=True)
make_wall = statistics.median(res["make"]["wall"])
for name, r in res.items():
    m = {k: statistics.median(v) for k, v in r.items()}
    print(f"{name:40} own {m['own']:5.0f} ms (engine {m['engine']:5.0f}, SQLite {m['sqlite']:4.0f})"
          f"  jobs {m['jobs']:4.0f} ms  wall {m['wall']:4.0f} ms  {m['wall'] / make_wall:.2f}x make")
PY
