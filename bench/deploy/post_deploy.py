"""POST /deploy latency: N requests, C at a time, against a running `gantry serve`.

Each request is a real session (a run with its record, durable before the 202). The
repository's URL is allowed but nothing serves it, so each session fails at its checkout
and the engine's work stays small beside the requests. Prints p50/p90/p99/max in ms.
"""
import http.client
import json
import sys
import threading
import time

host, port, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
body = json.dumps({"repository": "http://127.0.0.1:9/git/acme/app.git", "branch": "main"})
lat = []
lock = threading.Lock()


def worker(count):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    mine = []
    for _ in range(count):
        t0 = time.perf_counter()
        conn.request("POST", "/deploy", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        mine.append((time.perf_counter() - t0) * 1000)
        if resp.status != 202:
            sys.exit(f"unexpected {resp.status}")
    with lock:
        lat.extend(mine)


threads = [threading.Thread(target=worker, args=(n // c,)) for _ in range(c)]
t0 = time.perf_counter()
for t in threads:
    t.start()
for t in threads:
    t.join()
wall = time.perf_counter() - t0
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(
    f"POST /deploy x{len(lat)}, {c} at a time: p50 {q(0.5):.2f} ms, p90 {q(0.9):.2f} ms, "
    f"p99 {q(0.99):.2f} ms, max {lat[-1]:.2f} ms; {len(lat) / wall:.0f} req/s"
)
