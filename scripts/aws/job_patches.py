"""moto fixes for the job executors' tests (`crates/gantry-aws/tests/jobs.rs`), applied by
`emulator.py` after `service_patches.patch_moto_ecs`.

moto gives each task's container `exitCode` 0 from the start, and a scripted task (see
`service_patches.TaskScripts`) gets its script's exit code only while its status is read,
which may be after its containers were written into the same DescribeTasks answer: the answer
that first says STOPPED could still say exit code 0. On AWS a container has no exit code until
it stopped, and the answer that says STOPPED has it. So: a scripted task's containers have no
exit code while it runs, and the DescribeTasks whose status read will be STOPPED sets it
first.
"""


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
