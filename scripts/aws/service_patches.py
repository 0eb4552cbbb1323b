"""What the emulator adds for Gantry's AWS services and job executors (ECS, ELBv2, CodeBuild,
Lambda), where moto stops short of AWS, and the faults a test injects. `emulator.py` applies
the patches and serves the endpoints.

moto runs no ECS task and health-checks no target: a task it starts is `RUNNING` at once and
a registered target `healthy` at once. On AWS a task goes PROVISIONING → PENDING → RUNNING (or
stops on the way, with a reason), and a target is `initial` until its checks pass. Tests drive
those states here (`TaskScripts`, `TargetHealth`); `Faults` answers a request with an AWS error
(throttling, access denied) in the service's own protocol, as AWS does.
"""

import json
import threading
import time


class TaskScripts:
    """Lifecycles for the next ECS tasks started by RunTask: each `DescribeTasks` of such a task
    shows the next status of its script (the last one stays), and a script that ends in
    STOPPED gives the task a stop reason and its container an exit code."""

    def __init__(self):
        self._lock = threading.Lock()
        self._queue = []

    def push(self, script):
        with self._lock:
            self._queue.append(script)

    def pop(self):
        with self._lock:
            return self._queue.pop(0) if self._queue else None

    def clear(self):
        with self._lock:
            self._queue.clear()


class TargetHealth:
    """Health states a test sets for a target of a target group: each DescribeTargetHealth shows
    the next one (the last one stays) with its reason and description, as ELBv2's checks
    would report them."""

    def __init__(self):
        self._lock = threading.Lock()
        self._states = {}

    def set(self, group_arn, target, states):
        with self._lock:
            self._states[(group_arn, target)] = list(states)

    def next(self, group_arn, target):
        with self._lock:
            # A test can't know a task's IP before it starts: "*" is any target of the group.
            states = self._states.get((group_arn, target)) or self._states.get((group_arn, "*"))
            if not states:
                return None
            return states.pop(0) if len(states) > 1 else states[0]

    def clear(self):
        with self._lock:
            self._states.clear()


# How each protocol answers an error, as AWS's services do.
JSON_SERVICES = {"ecs", "codebuild", "logs", "dynamodb"}
REST_JSON_SERVICES = {"lambda"}


class Faults:
    """Errors to answer instead of moto, for the next `times` requests of one service's action
    (`times` -1: until cleared). Counts what it served, per `service:action`."""

    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []
        self.served = {}

    def push(self, fault):
        with self._lock:
            self._faults.append(dict(fault))

    def take(self, service, action):
        with self._lock:
            for f in self._faults:
                if f["service"] == service and f["action"] == action and f.get("times", 1) != 0:
                    if f.get("times", 1) > 0:
                        f["times"] = f.get("times", 1) - 1
                    key = f"{service}:{action}"
                    self.served[key] = self.served.get(key, 0) + 1
                    return f
            return None

    def clear(self):
        with self._lock:
            self._faults.clear()
            self.served.clear()


class RateLimits:
    """AWS-style throttling: a token bucket per `service:action` (`burst` tokens, refilled at
    `rate` a second); a request that finds its bucket empty is answered with the service's
    throttling error. Counts what it let through and what it throttled."""

    def __init__(self):
        self._lock = threading.Lock()
        self._buckets = {}
        self.allowed = {}
        self.throttled = {}

    def set(self, limits):
        with self._lock:
            now = time.monotonic()
            self._buckets = {
                k: [float(v["burst"]), float(v["burst"]), float(v["rate"]), now]
                for k, v in limits.items()
            }
            self.allowed.clear()
            self.throttled.clear()

    def take(self, service, action):
        """True when the request may go on."""
        key = f"{service}:{action}"
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                return True
            tokens, burst, rate, last = b
            now = time.monotonic()
            tokens = min(burst, tokens + (now - last) * rate)
            ok = tokens >= 1.0
            b[0], b[3] = (tokens - 1.0 if ok else tokens), now
            counts = self.allowed if ok else self.throttled
            counts[key] = counts.get(key, 0) + 1
            return ok

    def clear(self):
        self.set({})


def throttling_fault(service):
    """The service's own throttling error."""
    if service in JSON_SERVICES or service in REST_JSON_SERVICES:
        return {"code": "ThrottlingException", "status": 400, "message": "Rate exceeded"}
    return {"code": "Throttling", "status": 400, "message": "Rate exceeded"}


def error_response(service, fault):
    """(status, body, headers) of AWS's answer for `fault` in `service`'s protocol."""
    status = int(fault.get("status", 400))
    code = fault.get("code", "ThrottlingException")
    message = fault.get("message", "Rate exceeded")
    if service in JSON_SERVICES:
        body = json.dumps({"__type": code, "message": message}).encode("utf-8")
        return status, body, [("Content-Type", "application/x-amz-json-1.1")]
    if service in REST_JSON_SERVICES:
        body = json.dumps({"Type": "User", "message": message}).encode("utf-8")
        return status, body, [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = (
        "<ErrorResponse><Error><Type>Sender</Type>"
        f"<Code>{code}</Code><Message>{escaped}</Message></Error>"
        "<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    ).encode("utf-8")
    return status, body, [("Content-Type", "text/xml")]


def patch_moto_ecs(scripts):
    """Tasks that follow a test's script (see `TaskScripts`), and tasks that otherwise stay
    RUNNING until stopped.

    moto advances a task's status each time it is described (RUNNING → DEACTIVATING → ... →
    STOPPED after a few `DescribeTasks`), so a service task would seem to stop by itself while
    Gantry waits on it; on AWS a service's task runs until it is stopped or its container
    exits. `emulator.py` turns that progression off through moto's state manager; this patch
    plays a test's script instead for the tasks it was queued for.
    """
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface
    from moto.ecs.models import EC2ContainerServiceBackend, Task

    # moto 5.2's Task reads `private_dns_name` of the ENI it makes for an awsvpc task, which its
    # NetworkInterface lacks (AttributeError: RunTask answers 500). AWS's name for it:
    if not hasattr(NetworkInterface, "private_dns_name"):
        NetworkInterface.private_dns_name = property(
            lambda eni: f"ip-{eni.private_ip_address.replace('.', '-')}.ec2.internal"
        )

    run_task = EC2ContainerServiceBackend.run_task

    def scripted_run_task(self, *args, **kwargs):
        tasks = run_task(self, *args, **kwargs)
        for task in tasks:
            script = scripts.pop()
            if script is not None:
                task._gantry_script = dict(script)
                task._gantry_script["statuses"] = list(script.get("statuses", ["RUNNING"]))
        return tasks

    EC2ContainerServiceBackend.run_task = scripted_run_task

    original = Task.last_status

    def get_status(self):
        script = getattr(self, "_gantry_script", None)
        if script is None or self.desired_status == "STOPPED" and script.get("stopped_by_api"):
            return original.fget(self)
        statuses = script["statuses"]
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        if status == "STOPPED":
            self.desired_status = "STOPPED"
            self.stopped_reason = script.get("stopped_reason", "Essential container in task exited")
            for c in self.containers:
                c.exitCode = script.get("exit_code", 1)
                c.last_status = "STOPPED"
        return status

    def set_status(self, value):
        script = getattr(self, "_gantry_script", None)
        if script is not None:
            # StopTask (or moto itself) decides from here on.
            script["stopped_by_api"] = True
        original.fset(self, value)

    Task.last_status = property(get_status, set_status)


def patch_moto_elbv2(health):
    """Target health from a test's states (see `TargetHealth`) where it set some; moto's own
    (healthy once registered) otherwise."""
    from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

    health_for = FakeTargetGroup.health_for

    def scripted_health_for(self, target, ec2_backend):
        state = health.next(self.arn, target["Id"])
        if state is None or target["Id"] not in self.targets:
            return health_for(self, target, ec2_backend)
        port = self.targets[target["Id"]]["Port"]
        return FakeHealthStatus(
            target["Id"],
            port,
            self.health_check_port,
            state.get("state", "healthy"),
            state.get("reason"),
            state.get("description"),
        )

    FakeTargetGroup.health_for = scripted_health_for
