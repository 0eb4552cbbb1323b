#!/usr/bin/env python3
"""bench/services-aws.sh's measurements (run with the test venv's Python: boto3 is there).

1. Gantry's own time in a start: STARTS starts one after another of an ECS service whose
   task runs at once and whose target is healthy at once (so no start waits on a poll); for
   each, the answer's latency minus the time the emulator spent answering the calls made
   meanwhile (its `--timings` file). What is left is Gantry's: its API, its store, the SDK's
   signing and parsing, loopback HTTP both ways.
2. AT_ONCE starts at once, each task provisioning → pending → running and each target initial
   before healthy, under token-bucket throttling per action (the limits below: tighter than
   AWS's defaults, to make throttling happen). Reports the time until all are healthy, the
   calls per action the emulator saw, and how many it throttled: each throttled call is one
   retry by Gantry's pacer. With TELL_LIMITS=1 Gantry is told the limits (gantry.toml's
   `[aws.rate_limits]`); without, it starts from AWS's published defaults and learns them.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT, BIN = sys.argv[1], sys.argv[2]
STARTS = int(os.environ.get("STARTS", "30"))
AT_ONCE = int(os.environ.get("AT_ONCE", "100"))
TELL_LIMITS = os.environ.get("TELL_LIMITS", "0") == "1"
LIMITS = {
    "ecs:RunTask": {"burst": 20, "rate": 5},
    "ecs:DescribeTasks": {"burst": 20, "rate": 10},
    "ecs:StopTask": {"burst": 20, "rate": 5},
    "elasticloadbalancing:RegisterTargets": {"burst": 10, "rate": 5},
    "elasticloadbalancing:DeregisterTargets": {"burst": 10, "rate": 5},
    "elasticloadbalancing:DescribeTargetHealth": {"burst": 10, "rate": 5},
    "elasticloadbalancing:DescribeRules": {"burst": 10, "rate": 5},
    "elasticloadbalancing:CreateRule": {"burst": 10, "rate": 5},
}


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def main():
    work = tempfile.mkdtemp(prefix="gantry-bench-services-")
    timings = os.path.join(work, "timings.jsonl")
    python = sys.executable
    emu = subprocess.Popen(
        [python, f"{ROOT}/scripts/aws/emulator.py", "--timings", timings],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    aws = emu.stdout.readline().strip().removeprefix("emulator listening on ")
    f = json.loads(subprocess.check_output(
        [python, f"{ROOT}/scripts/aws/service_fixture.py", aws, "auth"]))
    config = os.path.join(work, "gantry.toml")
    with open(config, "w") as c:
        c.write(f"""
[services.auth]
runtime = "ecs"
cluster = "{f['cluster']}"
task_definition = "auth"
container = "app"
subnets = {json.dumps(f['subnets'])}
security_groups = ["{f['security_group']}"]
port = 8080
target_group = "auth"
start_timeout = "300s"
deregistration_delay = "0s"

[target_groups.auth]
provider = "elbv2"
arn = "{f['target_group']}"
listener_arn = "{f['listener']}"
path_patterns = ["/auth/*"]
priority = 10
""")
        if TELL_LIMITS:
            c.write("\n[aws.rate_limits]\n")
            for action, l in LIMITS.items():
                c.write(f'"{action}" = {{ burst = {l["burst"]}, per_second = {l["rate"]} }}\n')
    env = dict(os.environ, AWS_ENDPOINT_URL=aws, AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1", GANTRY_CONFIG=config)
    env.pop("GANTRY_API_TOKEN", None)
    server = subprocess.Popen(
        [BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", os.path.join(work, "data")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    url = server.stdout.readline().strip().removeprefix("gantry listening on ")
    try:
        run(url, aws, timings, f)
    finally:
        server.kill()
        emu.kill()


def emulator_time(timings, t0, t1):
    total, calls = 0.0, 0
    with open(timings) as t:
        for line in t:
            r = json.loads(line)
            if r["start"] >= t0 and r["end"] <= t1:
                total += r["end"] - r["start"]
                calls += 1
    return total, calls


def run(url, aws, timings, f):
    # 1. Gantry's own time, one start at a time (the first creates the listener rule: left out).
    http("POST", f"{url}/api/v1/services/auth/start")
    own, calls = [], []
    for _ in range(STARTS):
        t0 = time.time()
        status, answer = http("POST", f"{url}/api/v1/services/auth/start")
        t1 = time.time()
        assert status == 201, answer
        emu, n = emulator_time(timings, t0, t1)
        own.append((t1 - t0 - emu) * 1000)
        calls.append(n)
    status, _ = http("POST", f"{url}/api/v1/services/auth/stop")
    assert status == 200
    own.sort()
    p = lambda q: own[min(len(own) - 1, int(q * len(own)))]
    print(json.dumps({"measure": "own_time_per_start_ms", "starts": STARTS,
                      "p50": round(p(0.5), 2), "p95": round(p(0.95), 2),
                      "max": round(own[-1], 2), "mean": round(statistics.mean(own), 2),
                      "aws_calls_per_start": statistics.mean(calls)}))

    # 2. AT_ONCE starts at once, under throttling.
    for _ in range(AT_ONCE):
        http("POST", f"{aws}/_emulator/ecs-tasks",
             {"statuses": ["PROVISIONING", "PENDING", "RUNNING"]})
    http("POST", f"{aws}/_emulator/target-health",
         {"target_group_arn": f["target_group"], "target": "*",
          "states": [{"state": "initial", "reason": "Elb.RegistrationInProgress"},
                     {"state": "initial", "reason": "Elb.RegistrationInProgress"},
                     {"state": "healthy"}]})
    http("POST", f"{aws}/_emulator/rate-limits", LIMITS)
    t0 = time.time()
    with ThreadPoolExecutor(AT_ONCE) as pool:
        def one(_):
            s0 = time.time()
            status, answer = http("POST", f"{url}/api/v1/services/auth/start")
            return status, answer, time.time() - s0
        results = list(pool.map(one, range(AT_ONCE)))
    wall = time.time() - t0
    _, counts = http("GET", f"{aws}/_emulator/rate-limits")
    http("POST", f"{aws}/_emulator/rate-limits", {})
    ok = sum(1 for s, _, _ in results if s == 201)
    failed = [a for s, a, _ in results if s != 201][:3]
    lat = sorted(d for _, _, d in results)
    allowed, throttled = counts["allowed"], counts["throttled"]
    print(json.dumps({"measure": "starts_at_once", "starts": AT_ONCE, "healthy": ok,
                      "told_limits": TELL_LIMITS,
                      "wall_s": round(wall, 2), "p50_s": round(lat[len(lat) // 2], 2),
                      "max_s": round(lat[-1], 2),
                      "calls_let_through": allowed, "throttled_and_retried": throttled,
                      "calls_total": sum(allowed.values()) + sum(throttled.values()),
                      "failures": failed, "limits": LIMITS}))
    http("POST", f"{url}/api/v1/services/auth/stop")


if __name__ == "__main__":
    main()
