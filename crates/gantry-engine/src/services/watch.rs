//! Watching running tasks: a task that stops by itself (its container exits, ECS stops it)
//! is taken out of its target group and out of the service's tasks, with why in the audit
//! trail (`exited`), so a dead task is neither listed as running nor left registered (its
//! address could be given to another task).

use super::{ServiceManager, Task};
use std::sync::Arc;
use std::time::Duration;
use tracing::warn;

/// How often running tasks are checked (the ECS adapter reads them all in one call).
pub const WATCH_EVERY: Duration = Duration::from_secs(5);

impl ServiceManager {
    /// Checks every task once: the stopped ones are deregistered and forgotten. Returns how
    /// many were.
    pub async fn check_tasks(&self) -> usize {
        let tasks: Vec<(String, Task)> = self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flat_map(|(name, ts)| ts.iter().map(move |t| (name.clone(), t.clone())))
            .collect();
        let states = futures_util::future::join_all(
            tasks
                .iter()
                .map(|(_, t)| async { self.runtime.state(&t.container_id).await }),
        )
        .await;
        let mut gone = 0;
        for ((name, t), state) in tasks.into_iter().zip(states) {
            let st = match state {
                Ok(st) => st,
                // Gone from ECS (it forgets stopped tasks after a while): stopped.
                Err(e) if e.contains("MISSING") => crate::ports::ContainerState {
                    running: false,
                    exit_code: None,
                    ip: None,
                    reason: Some("the task is gone".into()),
                },
                // A state that cannot be read is not a stopped task: checked again next time.
                Err(_) => continue,
            };
            if st.running {
                continue;
            }
            let why = match (&st.reason, st.exit_code) {
                (Some(r), Some(c)) => format!("stopped by itself: {r} (exit code {c})"),
                (Some(r), None) => format!("stopped by itself: {r}"),
                (None, Some(c)) => format!("exited by itself (exit code {c})"),
                (None, None) => continue, // not running yet or any more: not decided
            };
            // Taken out first: a stop that took it meanwhile has it (and says so itself).
            let taken = {
                let mut all = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
                let ts = all.entry(name.clone()).or_default();
                let at = ts.iter().position(|x| x.container_id == t.container_id);
                at.map(|i| ts.remove(i))
            };
            let Some(t) = taken else { continue };
            if let Err(e) = self.groups.deregister(&t.target_group, &t.target()).await {
                warn!(service = %name, task = %t.task_id, cause = %e,
                      "cannot deregister a task that stopped; trying again later");
                self.tasks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(name.clone())
                    .or_default()
                    .push(t);
                continue;
            }
            let _ = self.runtime.stop(&t.container_id).await;
            self.audit(
                &name,
                Some(&t.task_id),
                "exited",
                format!("{why}; deregistered"),
            );
            gone += 1;
        }
        if gone > 0 {
            self.durable().await;
        }
        gone
    }

    /// Checks the tasks every `every` until the manager is dropped.
    pub fn watch(self: &Arc<Self>, every: Duration) {
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(m) = me.upgrade() else { return };
                m.check_tasks().await;
            }
        });
    }
}
