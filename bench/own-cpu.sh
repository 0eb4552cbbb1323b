#!/usr/bin/env bash
# Gantry's own CPU time for the 1000-job DAG (`gantry run --max-parallel 2`), the jobs excluded:
# the run times of its threads (`/proc/<pid>/task/*/schedstat`), read every 0.5 ms until it
# exits. Binaries take turns; give older builds as extra arguments to compare.
# env: ROUNDS (default 6), D (the DAG folder). Needs bench/dag.sh to have made the DAG first.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
D=${D:-/tmp/gantry-bench/dag/dag-true}
[ -f "$D/gantry.json" ] || { echo "no $D/gantry.json: run bench/dag.sh first" >&2; exit 1; }
ROUNDS=${ROUNDS:-6} python3 - "$D/gantry.json" "$ROOT/target/release/gantry" "$@" <<'PY'
import glob, os, shutil, statistics, subprocess, sys, tempfile, time
spec, bins = sys.argv[1], sys.argv[2:]
res = {b: [] for b in bins}
tmp = tempfile.mkdtemp()
try:
    for _ in range(int(os.environ["ROUNDS"])):
        for b in bins:
            state = os.path.join(tmp, "state")
            shutil.rmtree(state, ignore_errors=True)
            p = subprocess.Popen([b, "run", spec, "--max-parallel", "2", "--data-dir", state],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            last = {}
            while p.poll() is None:
                for f in glob.glob(f"/proc/{p.pid}/task/*/schedstat"):
                    try:
                        last[f] = int(open(f).read().split()[0])
                    except (OSError, ValueError, IndexError):
                        pass
                time.sleep(0.0005)
            res[b].append(sum(last.values()) / 1e6)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
for b, v in res.items():
    print(f"{b:50} own CPU median {statistics.median(v):.0f} ms  runs {sorted(round(x) for x in v)}")
PY
