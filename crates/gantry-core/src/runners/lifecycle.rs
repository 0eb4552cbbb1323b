//! One job's just-in-time runner, from the queued `workflow_job` to the runner's removal: the
//! phases it goes through, and for each event what to do next. Pure: the caller records each
//! phase durably before it performs the actions that phase asks for (write-ahead), so that
//! after a crash the recorded phase says what may have happened and recovery finds out,
//! never launching a second runner for the job.
//!
//! A JIT config is given out once, when the runner is registered, and never stored: a runner
//! registered before a crash whose container did not start cannot be started any more; it is
//! deleted and the job's runner registered again under the same name.

use serde::{Deserialize, Serialize};

/// Where a job's runner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Queued for a runner of its pool: waiting for capacity, or for the check that the job is
    /// still queued.
    Waiting,
    /// Registration asked of GitHub (it may have happened).
    Registering,
    /// Registered as `runner_id`; its start asked for (it may have happened).
    Starting { runner_id: u64 },
    /// Started; waiting for it to claim the job.
    Running { runner_id: u64 },
    /// Running the job.
    Busy { runner_id: u64 },
    /// Being removed: its container or process, and its registration if GitHub still has it.
    Removing { runner_id: Option<u64> },
    /// Nothing of it is left.
    Done,
}

impl Phase {
    /// The phase's name, as the API and the audit trail show it.
    pub fn name(&self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Registering => "registering",
            Phase::Starting { .. } => "starting",
            Phase::Running { .. } => "running",
            Phase::Busy { .. } => "busy",
            Phase::Removing { .. } => "removing",
            Phase::Done => "done",
        }
    }

    /// The registered runner's id, once known.
    pub fn runner_id(&self) -> Option<u64> {
        runner_of(*self)
    }

    /// Whether the runner takes one of its pool's places (from registration to removal).
    pub fn holds_capacity(&self) -> bool {
        !matches!(self, Phase::Waiting | Phase::Done)
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A place in the pool is free for this job.
    Capacity,
    /// GitHub's answer to whether the job is still queued.
    StillQueued(bool),
    /// Registered; GitHub gave the runner's id (and its JIT config, to the caller only).
    Registered { runner_id: u64 },
    /// The name is taken: this job's runner was registered before (by this server before a
    /// crash, or through another hook); `running` says whether its container or process is
    /// found.
    NameTaken { runner_id: u64, running: bool },
    /// The container or process started.
    Started,
    /// It could not be started (the reason goes to the audit trail).
    StartFailed,
    /// After a restart: whether the runner's container or process is found.
    Recovered { running: bool },
    /// GitHub says the job is in progress (on this runner).
    InProgress,
    /// GitHub says the job completed (or was cancelled).
    Completed,
    /// Started, but no job claimed by the pool's `boot_timeout`.
    BootTimedOut,
    /// The container or process is gone and the registration deleted (or already gone).
    Removed,
    /// GitHub refused the registration for good (bad labels, no permission): the job gets no
    /// runner from this pool.
    Refused,
    /// GitHub refused to delete the registration: the runner is running a job (it claimed
    /// one after all). It is left alone until that job completes.
    StillBusy,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ask GitHub whether the job is still queued.
    CheckJob,
    /// Register the runner (`generate-jitconfig`) under the job's runner name.
    Register,
    /// Start the runner registered as `runner_id` with the JIT config just given.
    Start { runner_id: u64 },
    /// Remove the container or process, and delete the registration if GitHub has it (never
    /// a runner GitHub reports busy).
    Remove { runner_id: Option<u64> },
}

/// The next phase and what to do for `event` in `phase`; `None` when the event changes
/// nothing there (a redelivery, a late report).
pub fn step(phase: Phase, event: &Event) -> Option<(Phase, Vec<Action>)> {
    use Event as E;
    use Phase as P;
    let next = match (phase, event) {
        (P::Done, _) => return None,
        // A job that ended (or was cancelled) before its runner started needs none.
        (P::Waiting, E::Completed) | (P::Waiting, E::StillQueued(false)) => (P::Done, vec![]),
        (P::Waiting, E::Capacity) => (P::Waiting, vec![Action::CheckJob]),
        (P::Waiting, E::StillQueued(true)) => (P::Registering, vec![Action::Register]),
        (P::Registering, E::Registered { runner_id }) => (
            P::Starting {
                runner_id: *runner_id,
            },
            vec![Action::Start {
                runner_id: *runner_id,
            }],
        ),
        // Registered before: adopt what runs; what does not run cannot be started without
        // its JIT config, so it is removed and the job waits for a new registration.
        (P::Registering, E::NameTaken { runner_id, running }) => {
            if *running {
                (
                    P::Running {
                        runner_id: *runner_id,
                    },
                    vec![],
                )
            } else {
                remove(Some(*runner_id))
            }
        }
        (P::Registering, E::Recovered { .. }) => (P::Registering, vec![Action::Register]),
        (P::Registering, E::Refused) => (P::Done, vec![]),
        (P::Starting { runner_id }, E::Started) => (P::Running { runner_id }, vec![]),
        (P::Starting { runner_id }, E::StartFailed) => remove(Some(runner_id)),
        (P::Starting { runner_id }, E::Recovered { running: true }) => {
            (P::Running { runner_id }, vec![])
        }
        (P::Starting { runner_id }, E::Recovered { running: false }) => remove(Some(runner_id)),
        (P::Running { runner_id } | P::Starting { runner_id }, E::InProgress) => {
            (P::Busy { runner_id }, vec![])
        }
        (P::Running { runner_id }, E::BootTimedOut) => remove(Some(runner_id)),
        (P::Running { runner_id } | P::Busy { runner_id }, E::Recovered { running: false }) => {
            remove(Some(runner_id))
        }
        (P::Running { .. } | P::Busy { .. }, E::Recovered { running: true }) => return None,
        (
            P::Registering | P::Starting { .. } | P::Running { .. } | P::Busy { .. },
            E::Completed,
        ) => remove(runner_of(phase)),
        (P::Removing { runner_id }, E::Recovered { .. }) => remove(runner_id),
        (P::Removing { .. }, E::Removed) => (P::Done, vec![]),
        (
            P::Removing {
                runner_id: Some(runner_id),
            },
            E::StillBusy,
        ) => (P::Busy { runner_id }, vec![]),
        _ => return None,
    };
    Some(next)
}

fn remove(runner_id: Option<u64>) -> (Phase, Vec<Action>) {
    (
        Phase::Removing { runner_id },
        vec![Action::Remove { runner_id }],
    )
}

fn runner_of(phase: Phase) -> Option<u64> {
    match phase {
        Phase::Starting { runner_id }
        | Phase::Running { runner_id }
        | Phase::Busy { runner_id } => Some(runner_id),
        Phase::Removing { runner_id } => runner_id,
        Phase::Waiting | Phase::Registering | Phase::Done => None,
    }
}

/// After a removal for a job that still needs a runner (a registration that could not be
/// started, a start that failed before the job was claimed): whether to queue it again. Only
/// when GitHub has not seen the job start; the caller asks (`CheckJob`) before registering.
pub fn needs_another(phase_before_removal: Phase, event: &Event) -> bool {
    matches!(
        (phase_before_removal, event),
        (Phase::Registering, Event::NameTaken { running: false, .. })
            | (Phase::Starting { .. }, Event::StartFailed)
            | (Phase::Starting { .. }, Event::Recovered { running: false })
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(events: &[Event]) -> (Phase, Vec<Action>) {
        let mut phase = Phase::Waiting;
        let mut all = Vec::new();
        for e in events {
            if let Some((next, actions)) = step(phase, e) {
                phase = next;
                all.extend(actions);
            }
        }
        (phase, all)
    }

    #[test]
    fn a_job_gets_one_runner_that_is_removed_after_it() {
        let (phase, actions) = run(&[
            Event::Capacity,
            Event::StillQueued(true),
            Event::Registered { runner_id: 7 },
            Event::Started,
            Event::InProgress,
            Event::Completed,
            Event::Removed,
        ]);
        assert_eq!(phase, Phase::Done);
        assert_eq!(
            actions,
            [
                Action::CheckJob,
                Action::Register,
                Action::Start { runner_id: 7 },
                Action::Remove { runner_id: Some(7) }
            ]
        );
    }

    #[test]
    fn a_job_gone_before_launch_gets_no_runner() {
        assert_eq!(
            run(&[Event::Capacity, Event::StillQueued(false)]),
            (Phase::Done, vec![Action::CheckJob])
        );
        assert_eq!(run(&[Event::Completed]), (Phase::Done, vec![]));
    }

    #[test]
    fn a_crash_between_registration_and_start_never_gives_two_runners() {
        // Registered, then the server died before the container started: the name is taken
        // and nothing runs, so the registration is removed (and the job queued again).
        let before = Phase::Registering;
        let taken = Event::NameTaken {
            runner_id: 9,
            running: false,
        };
        let (phase, actions) = step(before, &Event::Recovered { running: false }).unwrap();
        assert_eq!(
            (phase, actions),
            (Phase::Registering, vec![Action::Register])
        );
        let (phase, actions) = step(Phase::Registering, &taken).unwrap();
        assert_eq!(phase, Phase::Removing { runner_id: Some(9) });
        assert_eq!(actions, [Action::Remove { runner_id: Some(9) }]);
        assert!(needs_another(before, &taken));
        // Its container did start: adopted, nothing launched again.
        let (phase, actions) = step(
            Phase::Registering,
            &Event::NameTaken {
                runner_id: 9,
                running: true,
            },
        )
        .unwrap();
        assert_eq!((phase, actions), (Phase::Running { runner_id: 9 }, vec![]));
    }

    #[test]
    fn a_runner_that_never_claims_its_job_is_removed() {
        let (phase, actions) = step(Phase::Running { runner_id: 3 }, &Event::BootTimedOut).unwrap();
        assert_eq!(phase, Phase::Removing { runner_id: Some(3) });
        assert_eq!(actions, [Action::Remove { runner_id: Some(3) }]);
        assert!(
            step(Phase::Busy { runner_id: 3 }, &Event::BootTimedOut).is_none(),
            "a busy runner is never timed out"
        );
    }

    #[test]
    fn a_runner_found_busy_when_removed_is_left_to_finish_its_job() {
        let (phase, actions) =
            step(Phase::Removing { runner_id: Some(4) }, &Event::StillBusy).unwrap();
        assert_eq!((phase, actions), (Phase::Busy { runner_id: 4 }, vec![]));
        let (phase, _) = step(phase, &Event::Completed).unwrap();
        assert_eq!(phase, Phase::Removing { runner_id: Some(4) });
    }

    #[test]
    fn redeliveries_and_late_reports_change_nothing() {
        assert!(step(Phase::Busy { runner_id: 1 }, &Event::InProgress).is_none());
        assert!(step(Phase::Done, &Event::Completed).is_none());
        assert!(
            step(
                Phase::Running { runner_id: 1 },
                &Event::Recovered { running: true }
            )
            .is_none()
        );
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            Just(Event::Capacity),
            any::<bool>().prop_map(Event::StillQueued),
            (1u64..4).prop_map(|runner_id| Event::Registered { runner_id }),
            ((1u64..4), any::<bool>())
                .prop_map(|(runner_id, running)| Event::NameTaken { runner_id, running }),
            Just(Event::Started),
            Just(Event::StartFailed),
            any::<bool>().prop_map(|running| Event::Recovered { running }),
            Just(Event::InProgress),
            Just(Event::Completed),
            Just(Event::BootTimedOut),
            Just(Event::Removed),
            Just(Event::StillBusy),
            Just(Event::Refused),
        ]
    }

    proptest! {
        /// Whatever happens, in any order: a runner is started only right after its own
        /// registration, at most once per registration; nothing is started once the job
        /// completed; and a removal names the runner the phase held.
        #[test]
        fn never_two_runners_for_one_registration(events in proptest::collection::vec(event(), 0..30)) {
            let mut phase = Phase::Waiting;
            let mut completed = false;
            for e in &events {
                let Some((next, actions)) = step(phase, e) else { continue };
                for a in &actions {
                    match a {
                        Action::Start { runner_id } => {
                            prop_assert_eq!(e, &Event::Registered { runner_id: *runner_id });
                            prop_assert!(!completed, "started after the job completed");
                        }
                        Action::Remove { runner_id } => prop_assert_eq!(*runner_id, runner_of(next)),
                        Action::Register => prop_assert_eq!(next, Phase::Registering),
                        Action::CheckJob => prop_assert_eq!(next, Phase::Waiting),
                    }
                }
                completed |= *e == Event::Completed;
                phase = next;
            }
        }
    }
}
