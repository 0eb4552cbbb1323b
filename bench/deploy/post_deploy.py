"""POST /deploy latency: N requests, C at a time, against a running `gantry serve`.

Usage: post_deploy.py HOST PORT N C REPOSITORY

Each request is a real session (a run with its record, durable before the 202), and its
branch is looked up in REPOSITORY first (`git ls-remote`), as every `POST /deploy` is. The
repository has nothing deployable in it, so each session ends at its detection and the
engine's work stays small beside the requests. Prints p50/p90/p99/max in ms; one at a time,
also the same for `git ls-remote` of the branch alone, side by side: the part of each answer
that is the repository host's.
"""
import http.client
import json
import os
import subprocess
import sys
import threading
import time

host, port, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
body = json.dumps({"repository": sys.argv[5], "branch": "main"})
lat = []
lock = threading.Lock()


def worker(count):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    mine = []
    for _ in range(count):
        t0 = time.perf_counter()
        conn.request("POST", "/deploy", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        mine.append((time.perf_counter() - t0) * 1000)
        if resp.status != 202:
            print(f"unexpected {resp.status}: {data!r}", file=sys.stderr)
            os._exit(1)
    with lock:
        lat.extend(mine)


threads = [threading.Thread(target=worker, args=(n // c,)) for _ in range(c)]
t0 = time.perf_counter()
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.perf_counter() - t0


def summary(xs):
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]
    return f"p50 {q(0.5):.2f} ms, p90 {q(0.9):.2f} ms, p99 {q(0.99):.2f} ms, max {xs[-1]:.2f} ms"


print(f"POST /deploy x{len(lat)}, {c} at a time: {summary(lat)}; {len(lat) / wall:.0f} req/s")
if c == 1:
    alone = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(
            ["git", "ls-remote", "--", sys.argv[5], "refs/heads/main"],
            check=True,
            capture_output=True,
        )
        alone.append((time.perf_counter() - t0) * 1000)
    print(f"  beside it, git ls-remote of the branch alone x{n}: {summary(alone)}")
