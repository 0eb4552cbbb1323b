"""moto fixes for the job executors' tests (`crates/gantry-aws/tests/jobs.rs`), applied by
`emulator.py` after `service_patches.patch_moto_ecs`.

moto gives each task's container `exitCode` 0 from the start, and a scripted task (see
`service_patches.TaskScripts`) gets its script's exit code only while its status is read,
which may be after its containers were written into the same DescribeTasks answer: the answer
that first says STOPPED could still say exit code 0. On AWS a container has no exit code until
it stopped, and the answer that says STOPPED has it. So: a scripted task's containers have no
exit code while it runs, and the DescribeTasks whose status read will be STOPPED sets it
first.

And CodeBuild builds that keep their variables and follow a test's script
(`patch_moto_codebuild`).
"""

import threading


def patch_moto_ecs_exit_codes():
    from moto.ecs.models import EC2ContainerServiceBackend

    run_task = EC2ContainerServiceBackend.run_task

    def run_task_without_exit_codes(self, *args, **kwargs):
        tasks = run_task(self, *args, **kwargs)
        for task in tasks:
            if getattr(task, "_gantry_script", None) is not None:
                for c in task.containers:
                    c.exitCode = None
        return tasks

    EC2ContainerServiceBackend.run_task = run_task_without_exit_codes

    describe_tasks = EC2ContainerServiceBackend.describe_tasks

    def describe_tasks_with_exit_codes(self, cluster_str, tasks):
        for cluster_tasks in self.tasks.values():
            for task in cluster_tasks.values():
                script = getattr(task, "_gantry_script", None)
                if script is None or script.get("stopped_by_api"):
                    continue
                statuses = script["statuses"]
                if statuses and statuses[0] == "STOPPED":
                    for c in task.containers:
                        c.exitCode = script.get("exit_code", 1)
        return describe_tasks(self, cluster_str, tasks)

    EC2ContainerServiceBackend.describe_tasks = describe_tasks_with_exit_codes


class BuildScripts:
    """Lives for the next CodeBuild builds started: each script is `{"phases": [[TYPE,
    STATUS], ...], "status": FINAL, "hold": false}`. Each BatchGetBuilds of such a build shows
    one more phase (with its status and a duration of 1 s); once all are shown the build ends
    with FINAL (`SUCCEEDED` by default), unless `hold`, when it stays IN_PROGRESS until
    StopBuild, as a running build does."""

    def __init__(self):
        self._lock = threading.Lock()
        self._queue = []
        self.live = {}

    def push(self, script):
        with self._lock:
            self._queue.append(dict(script))

    def pop(self):
        with self._lock:
            return self._queue.pop(0) if self._queue else None

    def clear(self):
        with self._lock:
            self._queue.clear()
            self.live.clear()


BUILD_SCRIPTS = BuildScripts()


def patch_moto_codebuild(scripts=BUILD_SCRIPTS):
    """Builds that keep the variables they were started with (moto drops
    `environmentVariablesOverride`; AWS shows them in the build's `environment`), and builds
    that follow a test's script (see `BuildScripts`): moto completes every build, every phase
    SUCCEEDED, the first time it is read (and appends the phases again on each read)."""
    from moto.codebuild.models import CodeBuildBackend
    from moto.codebuild.responses import CodeBuildResponse
    from moto.core.utils import utcnow

    start_build = CodeBuildResponse.start_build

    def start_build_with_variables(self):
        result = start_build(self)
        project = self._get_param("projectName")
        build = self.codebuild_backend.build_metadata_history[project][-1]
        env = dict(build["environment"])
        env["environmentVariables"] = self._get_param("environmentVariablesOverride") or []
        build["environment"] = env
        script = scripts.pop()
        if script is not None:
            scripts.live[build["id"]] = {
                "phases": [list(p) for p in script.get("phases", [])],
                "status": script.get("status", "SUCCEEDED"),
                "hold": bool(script.get("hold", False)),
            }
        return result

    CodeBuildResponse.start_build = start_build_with_variables

    batch_get_builds = CodeBuildBackend.batch_get_builds

    def scripted_batch_get_builds(self, ids):
        rest = [i for i in ids if i not in scripts.live]
        out = batch_get_builds(self, rest) if rest else []
        for metadata in self.build_metadata_history.values():
            for build in metadata:
                live = scripts.live.get(build["id"])
                if live is None or build["id"] not in ids:
                    continue
                if build["buildStatus"] == "IN_PROGRESS":
                    now = utcnow()
                    for p in build["phases"]:
                        if p["phaseType"] == "QUEUED":
                            p["phaseStatus"] = "SUCCEEDED"
                    if live["phases"]:
                        kind, status = live["phases"].pop(0)
                        build["currentPhase"] = kind
                        build["phases"].append(
                            {
                                "phaseType": kind,
                                "phaseStatus": status,
                                "startTime": now,
                                "endTime": now,
                                "durationInSeconds": 1,
                            }
                        )
                    if not live["phases"] and not live["hold"]:
                        build["buildStatus"] = live["status"]
                        build["currentPhase"] = "COMPLETED"
                        build["buildComplete"] = True
                        build["endTime"] = now
                out.append(build)
        return out

    CodeBuildBackend.batch_get_builds = scripted_batch_get_builds
