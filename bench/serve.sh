#!/usr/bin/env bash
# `gantry serve`: time from exec to /healthz answering (first start on an empty data dir, and a
# restart on an existing one), and idle RSS after it settles. Medians of REPS runs.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release -p gantry --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release/gantry REPS=${REPS:-5} python3 - <<'PY'
import os, socket, statistics, subprocess, tempfile, time
BIN, REPS = os.environ["BIN"], int(os.environ["REPS"])
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def healthz(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.05) as c:
            c.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return b" 200 " in c.recv(256)
    except OSError:
        return False
def start(data):
    port = free_port()
    t0 = time.perf_counter()
    p = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not healthz(port):
        if time.perf_counter() - t0 > 10: raise SystemExit("no /healthz within 10 s")
        time.sleep(0.0005)
    return p, (time.perf_counter() - t0) * 1000
def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1])
first, again, rss = [], [], []
for _ in range(REPS):
    with tempfile.TemporaryDirectory() as d:
        p, ms = start(d); first.append(ms)
        time.sleep(2); rss.append(rss_kib(p.pid)); p.terminate(); p.wait()
        p, ms = start(d); again.append(ms); p.terminate(); p.wait()
print(f"start -> /healthz, empty data dir:    median {statistics.median(first):6.1f} ms  (all: {', '.join(f'{x:.1f}' for x in first)})")
print(f"start -> /healthz, existing data dir: median {statistics.median(again):6.1f} ms")
print(f"idle RSS after 2 s:                   median {statistics.median(rss)/1024:6.1f} MiB")
PY
