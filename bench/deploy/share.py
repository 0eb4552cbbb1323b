"""Gantry's own share of a CloudFormation deploy on the AWS emulator.

Usage: share.py HOST PORT WORKTREE REPOSITORY TIMINGS GIT_TIMINGS K

K deploys, one after the other, of the CloudFormation app whose work tree is WORKTREE (pushed
to REPOSITORY before each, with one output changed, so the first creates the stack and each
next one updates it). For each session: its time (the run's creation to its end, as the server
records them), the emulator's time (the union of the proxied requests' intervals, from the
emulator's TIMINGS file), the git host's (its requests, from GIT_TIMINGS: the checkout's
fetch), and the rest: Gantry's own time (the queue, the local git work of the checkout,
detection, building the template request, the SDK, the log and the records). Prints each
session, the medians, and the largest stretches Gantry had to itself.
"""
import http.client
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime

host, port, work, repo, timings_path, git_timings_path, k = (
    sys.argv[1],
    int(sys.argv[2]),
    sys.argv[3],
    sys.argv[4],
    sys.argv[5],
    sys.argv[6],
    int(sys.argv[7]),
)

TEMPLATE = """AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Site:
    Type: AWS::S3::Bucket
  Items:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions: [{AttributeName: id, AttributeType: S}]
      KeySchema: [{AttributeName: id, KeyType: HASH}]
Outputs:
  Bucket:
    Value: !Ref Site
  Release:
    Value: release-%d
"""


def git(*args):
    subprocess.run(["git", "-C", work, *args], check=True, capture_output=True)


def api(method, path, body=None):
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, json.loads(data or b"{}")


def when(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def requests_between(path, start, end, default):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["end"] > start and r["start"] < end:
                out.append((max(r["start"], start), min(r["end"], end), r.get("action", default)))
    return sorted(out)


def union(intervals):
    total, last_end = 0.0, None
    for s, e, _ in intervals:
        if last_end is None or s > last_end:
            total += e - s
            last_end = e
        elif e > last_end:
            total += e - last_end
            last_end = e
    return total


rows, gaps = [], []
for i in range(k):
    with open(f"{work}/cloudformation.yml", "w", encoding="utf-8") as f:
        f.write(TEMPLATE % i)
    git("add", "-A")
    git("commit", "--quiet", "-m", f"release {i}")
    git("push", "--quiet", "origin", "HEAD:main")
    status, body = api("POST", "/deploy", json.dumps({"repository": repo, "branch": "main"}))
    if status != 202:
        sys.exit(f"POST /deploy: {status} {body}")
    sid = body["sessionId"]
    while True:
        _, run = api("GET", f"/api/v1/runs/{sid}")
        if run.get("finished_at"):
            break
        time.sleep(0.05)
    _, session = api("GET", f"/status/{sid}")
    if session["status"] != "succeeded":
        sys.exit(f"session {sid} {session['status']}: {session.get('error')}")
    start, end = when(run["created_at"]), when(run["finished_at"])
    aws = requests_between(timings_path, start, end, "")
    fetch = requests_between(git_timings_path, start, end, "git host")
    reqs = sorted(aws + fetch)
    emu, githost, waiting = union(aws), union(fetch), union(reqs)
    wall = end - start
    rows.append((wall, emu, wall - waiting, githost))
    # Stretches with no request in flight: where Gantry's own time goes.
    cursor, before = start, "session created"
    for s, e, action in reqs:
        if s > cursor:
            gaps.append((s - cursor, before, action))
        if e > cursor:
            cursor, before = e, action
    if end > cursor:
        gaps.append((end - cursor, before, "session ended"))
    print(
        f"deploy {i + 1}: session {wall * 1000:.0f} ms, emulator {emu * 1000:.0f} ms "
        f"({len(aws)} requests), git host {githost * 1000:.0f} ms ({len(fetch)} requests), "
        f"Gantry {(wall - waiting) * 1000:.0f} ms = {100 * (wall - waiting) / wall:.1f}%"
    )

med = lambda xs: statistics.median(xs)
walls, emus, owns = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
hosts = [r[3] for r in rows]
print(
    f"median of {k}: session {med(walls) * 1000:.0f} ms, emulator {med(emus) * 1000:.0f} ms, "
    f"git host {med(hosts) * 1000:.0f} ms, Gantry {med(owns) * 1000:.0f} ms; Gantry's share "
    f"{100 * sum(owns) / sum(walls):.1f}% of all sessions' time"
)
print(f"the last session's log, from its creation:")
for line in session["logs"]:
    print(f"  +{(when(line['timestamp']) - start) * 1000:6.0f} ms  {line['message'][:90]}")
gaps.sort(reverse=True)
print("largest stretches without a request to the emulator or the git host:")
for d, a, b in gaps[:6]:
    print(f"  {d * 1000:7.1f} ms  after {a} / before {b}")
