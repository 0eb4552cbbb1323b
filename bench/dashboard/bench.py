"""The dashboard's figures against a running `gantry serve` whose store holds the seeded runs.

Usage: bench.py HOST PORT TOKEN SEEDED.json   (bench/dashboard.sh runs it)
       bench.py probe HOST PORT SECONDS INTERVAL_MS OUT.json   (the /healthz probe, in its own
       process so that the followers' threads never delay it)

Pages are fetched as a browser does, with the session cookie of a real login (the login form,
its CSRF token, the API token); the JSON API with the bearer token. Each page is fetched REPS
times over one keep-alive connection after a warm-up: the time from the request to the last
byte, on loopback, and the server's own (its `Server-Timing: app;dur=` header, where the page
sends one). Prints a table of targets, figures and verdicts, and writes them as JSON too.
"""
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse

REPS = int(os.environ.get("REPS", "200"))
FOLLOWERS = int(os.environ.get("FOLLOWERS", "100"))
LIVE_SECONDS = int(os.environ.get("LIVE_SECONDS", "30"))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else float("nan")


class Client:
    def __init__(self, host, port, token):
        self.host, self.port, self.token = host, port, token
        self.cookie = ""
        self.conn = None

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        return self.conn

    def request(self, method, path, body=None, headers=None, auth="cookie"):
        h = dict(headers or {})
        if auth == "cookie" and self.cookie:
            h["Cookie"] = self.cookie
        elif auth == "bearer":
            h["Authorization"] = f"Bearer {self.token}"
        for attempt in (0, 1):
            c = self._conn()
            try:
                t0 = time.perf_counter()
                c.request(method, path, body=body, headers=h)
                r = c.getresponse()
                data = r.read()
                return r, data, (time.perf_counter() - t0) * 1000
            except (http.client.HTTPException, OSError):
                self.conn = None
                if attempt:
                    raise

    def login(self):
        r, body, _ = self.request("GET", "/login", auth=None)
        nonce = re.search(r"gantry_login=([0-9a-f]+)", r.getheader("Set-Cookie", ""))
        csrf = re.search(rb'name="csrf" value="([0-9a-f]+)"', body)
        assert nonce and csrf, f"no login form: {r.status} {body[:200]!r}"
        form = urllib.parse.urlencode({"token": self.token, "csrf": csrf.group(1).decode()})
        r, body, _ = self.request(
            "POST",
            "/login",
            body=form,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Cookie": f"gantry_login={nonce.group(1)}",
            },
            auth=None,
        )
        session = re.search(r"gantry_session=([0-9a-f]+)", r.getheader("Set-Cookie", ""))
        assert r.status in (302, 303) and session, f"login refused: {r.status} {body[:200]!r}"
        self.cookie = f"gantry_session={session.group(1)}"

    def api(self, method, path, body=None, query=""):
        r, data, _ = self.request(
            method,
            path + query,
            body=body,
            headers={"Content-Type": "application/json"} if body else {},
            auth="bearer",
        )
        return r.status, json.loads(data) if data else None


def server_ms(r):
    m = re.search(r"app;dur=([0-9.]+)", r.getheader("Server-Timing", "") or "")
    return float(m.group(1)) if m else None


def measure(client, path, auth="cookie", reps=REPS, accept="text/html"):
    """Client-side and server-side ms over `reps` fetches, and the body's size."""
    for _ in range(min(10, reps)):
        r, data, _ = client.request("GET", path, headers={"Accept": accept}, auth=auth)
        assert r.status == 200, f"{path}: {r.status} {data[:300]!r}"
    wall, srv, size = [], [], 0
    for _ in range(reps):
        r, data, ms = client.request("GET", path, headers={"Accept": accept}, auth=auth)
        assert r.status == 200, f"{path}: {r.status}"
        wall.append(ms)
        s = server_ms(r)
        if s is not None:
            srv.append(s)
        size = len(data)
    return {
        "path": path,
        "p50": pct(wall, 0.5),
        "p99": pct(wall, 0.99),
        "srv_p50": pct(srv, 0.5) if srv else None,
        "srv_p99": pct(srv, 0.99) if srv else None,
        "bytes": size,
    }


def wait_finished(client, run_id, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        _, run = client.api("GET", f"/api/v1/runs/{run_id}")
        if run["status"] in ("succeeded", "failed", "cancelled"):
            return run
        time.sleep(0.2)
    raise SystemExit(f"run {run_id} unfinished after {timeout} s")


def big_spec():
    """1000 jobs in layers with fan-out and fan-in: prepare → 20 builds (and 58 linters) →
    45 test shards per build (900) → one collector per build (needs its 45 shards) → publish
    (needs every collector and linter)."""
    jobs = {"prepare": {"run": ["true"]}}
    for b in range(20):
        jobs[f"build-{b:02}"] = {"needs": ["prepare"], "run": ["true"]}
        for t in range(45):
            jobs[f"test-{b:02}-{t:02}"] = {"needs": [f"build-{b:02}"], "run": ["true"]}
        jobs[f"collect-{b:02}"] = {"needs": [f"test-{b:02}-{t:02}" for t in range(45)], "run": ["true"]}
    for k in range(58):
        jobs[f"lint-{k:02}"] = {"needs": ["prepare"], "run": ["true"]}
    jobs["publish"] = {
        "needs": [f"collect-{b:02}" for b in range(20)] + [f"lint-{k:02}" for k in range(58)],
        "run": ["true"],
    }
    assert len(jobs) == 1000
    return {"name": "monorepo-ci", "jobs": jobs}


def live_spec(jobs, seconds):
    """`jobs` jobs, each printing a line every 100 ms for `seconds`."""
    n = seconds * 10
    cmd = f'i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo "step $i of {n}: compiling crate-$i ... ok"; sleep 0.1; done'
    return {"name": "live-logs", "jobs": {f"job-{j}": {"run": [cmd]} for j in range(jobs)}}


def follower(client_args, cookie, run_id, job, stop_at, counts, idx, errors):
    host, port = client_args
    try:
        c = http.client.HTTPConnection(host, port, timeout=60)
        # The log page first, as a browser opens it; then its event stream (what app.js reads).
        c.request("GET", f"/runs/{run_id}/jobs/{job}", headers={"Cookie": cookie, "Accept": "text/html"})
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
        c.request(
            "GET",
            f"/api/v1/runs/{run_id}/jobs/{job}/log",
            headers={"Cookie": cookie, "Accept": "text/event-stream"},
        )
        r = c.getresponse()
        assert r.status == 200, r.status
        while time.time() < stop_at:
            line = r.fp.readline()
            if not line:
                break
            if line.startswith(b"event: log"):
                counts[idx] += 1
        c.close()
    except Exception as e:  # noqa: BLE001 - reported, not raised, so the rest go on
        errors.append(repr(e))


def probe(host, port, seconds, interval_ms, out):
    lat = []
    end = time.time() + seconds
    while time.time() < end:
        t0 = time.perf_counter()
        c = http.client.HTTPConnection(host, port, timeout=10)
        c.request("GET", "/healthz")
        r = c.getresponse()
        r.read()
        c.close()
        assert r.status == 200
        ms = (time.perf_counter() - t0) * 1000
        lat.append(ms)
        time.sleep(max(0, interval_ms / 1000 - ms / 1000))
    json.dump(lat, open(out, "w"))


def run_probe(host, port, seconds, out):
    return subprocess.Popen([sys.executable, __file__, "probe", host, str(port), str(seconds), "50", out])


def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def main():
    host, port, token, seeded_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    server_pid = int(os.environ.get("SERVER_PID", "0"))
    seeded = json.load(open(seeded_file))
    cl = Client(host, port, token)
    cl.login()
    api = Client(host, port, token)
    # The seeded runs are the store's own: the API reads them back.
    _, newest = api.api("GET", "/api/v1/runs", query="?limit=1")
    assert newest["runs"][0]["id"] == seeded["newest"], (newest["runs"][0]["id"], seeded["newest"])
    _, failed = api.api("GET", "/api/v1/runs", query="?status=failed&limit=1000")
    assert len(failed["runs"]) == 1000 and all(r["status"] == "failed" for r in failed["runs"])
    print(f"store: {seeded['n']} seeded runs read back through the API (newest {seeded['newest']})")

    rows = []  # (what, target, measured text, value, limit)

    def page(label, path, api_path=None):
        m = measure(cl, path)
        rows.append(("runs page: " + label, "≤ 50 ms server-side", m, 50))
        line = (
            f"  {label:<44} {path[:70]:<70} client p50 {m['p50']:6.2f} p99 {m['p99']:6.2f} ms;"
            f" server p50 {m['srv_p50'] or float('nan'):6.2f} p99 {m['srv_p99'] or float('nan'):6.2f} ms; {m['bytes']/1024:6.1f} KiB"
        )
        print(line)
        if api_path:
            a = measure(api, api_path, auth="bearer", accept="application/json")
            m["api"] = a
            print(
                f"  {'  beside it, the JSON API':<44} {api_path[:70]:<70} client p50 {a['p50']:6.2f} p99 {a['p99']:6.2f} ms;"
                f" {'':>33} {a['bytes']/1024:6.1f} KiB"
            )
        return m

    print(f"\nruns page, {REPS} fetches each after a warm-up (loopback, keep-alive):")
    q = urllib.parse.urlencode
    page("first page", "/", "/api/v1/runs?limit=50")
    page("failed", "/?" + q({"status": "failed"}), "/api/v1/runs?status=failed&limit=50")
    page("failed in a busy repository", "/?" + q({"status": "failed", "repo": "acme/api"}))
    page("failed in a quiet repository", "/?" + q({"status": "failed", "repo": "acme/legacy-monolith"}))
    page("a release branch", "/?" + q({"branch": "release/1.3"}))
    page("scheduled runs", "/?" + q({"event": "schedule"}))
    page("no match (a repository with no runs)", "/?" + q({"repo": "acme/none"}))
    page("deep page (before= near the oldest)", "/?" + q({"before": seeded["deep"]}))
    page("500 runs a page", "/?limit=500", "/api/v1/runs?limit=500")

    # A 1000-job run, finished.
    print("\n1000-job run (layered: fan-out to 900 test shards, fan-in to 20 collectors and publish):")
    t0 = time.perf_counter()
    st, sub = api.api("POST", "/api/v1/runs", body=json.dumps(big_spec()), query="?event=push&branch=main")
    assert st == 202, sub
    run = wait_finished(api, sub["run_id"])
    print(f"  ran in {time.perf_counter() - t0:.1f} s: {run['status']}")
    big = measure(cl, f"/runs/{sub['run_id']}", reps=max(20, REPS // 4))
    bapi = measure(api, f"/api/v1/runs/{sub['run_id']}", auth="bearer", accept="application/json", reps=max(20, REPS // 4))
    big["api"] = bapi
    print(
        f"  run page: client p50 {big['p50']:.2f} p99 {big['p99']:.2f} ms; server p50 {big['srv_p50'] or float('nan'):.2f}"
        f" p99 {big['srv_p99'] or float('nan'):.2f} ms; {big['bytes']/1024:.1f} KiB"
    )
    print(f"  beside it, GET /api/v1/runs/{{id}}: client p50 {bapi['p50']:.2f} p99 {bapi['p99']:.2f} ms; {bapi['bytes']/1024:.1f} KiB")
    rows.append(("1000-job run page: time", "≤ 50 ms server-side", big, 50))
    # What a browser downloads (every browser asks for gzip), beside the HTML itself.
    r, wire, _ = cl.request("GET", f"/runs/{sub['run_id']}", headers={"Accept": "text/html", "Accept-Encoding": "gzip"})
    assert r.status == 200 and r.getheader("Content-Encoding") == "gzip", r.getheaders()
    print(f"  on the wire (gzip): {len(wire)/1024:.1f} KiB of {big['bytes']/1024:.1f} KiB of HTML")
    # The stricter reading of the target: the HTML itself, not only what gzip makes of it.
    rows.append(("1000-job run page: size of the HTML", "≤ 500 KB", {"bytes": big["bytes"], "wire": len(wire)}, 500_000))

    # Live logs: FOLLOWERS browsers following while /healthz is probed every 50 ms.
    print(f"\nlive logs: {FOLLOWERS} followers of a run whose 10 jobs print a line every 100 ms for {LIVE_SECONDS} s:")
    idle_out = seeded_file + ".idle.json"
    run_probe(host, port, 5, idle_out).wait()
    idle = json.load(open(idle_out))
    st, sub = api.api("POST", "/api/v1/runs", body=json.dumps(live_spec(10, LIVE_SECONDS)), query="?event=api")
    assert st == 202, sub
    live_id = sub["run_id"]
    deadline = time.time() + 30
    while time.time() < deadline:
        _, r = api.api("GET", f"/api/v1/runs/{live_id}")
        if all(j["attempt"] >= 1 for j in r["jobs"]):
            break
        time.sleep(0.1)
    window = LIVE_SECONDS - 6
    counts, errors, threads = [0] * FOLLOWERS, [], []
    stop_at = time.time() + window + 2
    busy_out = seeded_file + ".busy.json"
    ticks0 = cpu_ticks(server_pid) if server_pid else 0
    for i in range(FOLLOWERS):
        t = threading.Thread(
            target=follower,
            args=((host, port), cl.cookie, live_id, f"job-{i % 10}", stop_at, counts, i, errors),
            daemon=True,
        )
        t.start()
        threads.append(t)
    time.sleep(1)  # every follower connected and replaying
    p = run_probe(host, port, window, busy_out)
    p.wait()
    ticks1 = cpu_ticks(server_pid) if server_pid else 0
    for t in threads:
        t.join(timeout=10)
    busy = json.load(open(busy_out))
    following = sum(1 for c in counts if c > 0)
    hz = os.sysconf("SC_CLK_TCK")
    cpu = (ticks1 - ticks0) / hz / (window + 1) * 100 if server_pid else float("nan")
    print(
        f"  {following}/{FOLLOWERS} followers received lines ({sum(counts)} in all, {sum(counts)/(window+2):.0f}/s);"
        f" {len(errors)} errors{': ' + errors[0] if errors else ''}; server CPU {cpu:.0f}% of a core"
    )
    print(f"  /healthz idle:      p50 {pct(idle, .5):.2f} p99 {pct(idle, .99):.2f} max {max(idle):.2f} ms ({len(idle)} probes)")
    print(f"  /healthz following: p50 {pct(busy, .5):.2f} p99 {pct(busy, .99):.2f} max {max(busy):.2f} ms ({len(busy)} probes)")
    assert following == FOLLOWERS and not errors, "not every follower streamed"
    hz_row = {"p50": pct(busy, 0.5), "p99": pct(busy, 0.99), "max": max(busy)}
    rows.append((f"/healthz with {FOLLOWERS} log followers", "< 10 ms (p99)", hz_row, 10))

    print("\n| target | limit | measured | verdict |\n|---|---|---|---|")
    results = []
    for what, limit_text, m, limit in rows:
        if "size" in what:
            value, text = m["bytes"], f"{m['bytes']/1000:.0f} KB"
            if "wire" in m:
                text += f" ({m['wire']/1000:.0f} KB gzipped on the wire)"
        elif "healthz" in what:
            value, text = m["p99"], f"p99 {m['p99']:.2f} ms (p50 {m['p50']:.2f}, max {m['max']:.2f})"
        else:
            value = m["srv_p99"] if m.get("srv_p99") is not None else m["p99"]
            text = (
                f"server p50 {m['srv_p50']:.2f} / p99 {m['srv_p99']:.2f} ms; client p99 {m['p99']:.2f} ms"
                if m.get("srv_p99") is not None
                else f"client p50 {m['p50']:.2f} / p99 {m['p99']:.2f} ms (no Server-Timing)"
            )
            if "api" in m:
                text += f"; JSON API client p99 {m['api']['p99']:.2f} ms"
        ok = value < limit if "healthz" in what else value <= limit
        print(f"| {what} | {limit_text} | {text} | {'pass' if ok else '**FAIL**'} |")
        results.append({"what": what, "limit": limit_text, "measured": text, "pass": ok})
    json.dump(results, open(seeded_file + ".results.json", "w"), indent=1)


if __name__ == "__main__":
    if sys.argv[1] == "probe":
        probe(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
    else:
        main()
