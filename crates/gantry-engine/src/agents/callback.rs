//! `POST /api/v1/callbacks/{token}`: a remote worker's result for one attempt, authenticated
//! by the token itself. The token's signature and expiry are checked first
//! ([`gantry_core::callback::verify`]); then the result is taken only if the attempt is still
//! the one its queue entry holds (compare-and-set: a token is used once). A result for an
//! attempt that is no longer current is refused with the reason, and the refusal is written
//! to the run's audit trail.

use super::{Agents, now_ms};
use crate::ports::{QueueState, StoreError};
use gantry_core::agents::Report;
use gantry_core::callback::{Refused, verify};

/// Why a callback is refused.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    /// Malformed or forged (401).
    #[error(transparent)]
    Token(Refused),
    /// Signed, but past its expiry (410).
    #[error("{0}")]
    Expired(Refused),
    /// The body is not a result (400).
    #[error("{0}")]
    Invalid(String),
    /// No attempt of agents by that name (404).
    #[error("{0}")]
    NotFound(String),
    /// Used already, or the attempt is no longer current (409).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Agents {
    /// Takes a result reported with callback `token`.
    pub async fn callback(&self, token: &str, body: &[u8]) -> Result<(), CallbackError> {
        let claim = verify(&self.key, token, now_ms()).map_err(|r| match r {
            Refused::Expired { .. } => CallbackError::Expired(r),
            other => CallbackError::Token(other),
        })?;
        let report: Report = serde_json::from_slice(body).map_err(|e| {
            CallbackError::Invalid(format!(
                "the body must be {{\"exit_code\": N}} or {{\"outcome\": \"failed\", \"error\": \"…\"}}: {e}"
            ))
        })?;
        let outcome = report.outcome().map_err(CallbackError::Invalid)?;
        let Some(q) = self
            .queue
            .find(&claim.run_id, &claim.job, claim.attempt)
            .await?
        else {
            return Err(CallbackError::NotFound(format!(
                "no attempt {} of job `{}` in run {} was given to agents",
                claim.attempt, claim.job, claim.run_id
            )));
        };
        let result = serde_json::to_string(&report).expect("a report is JSON");
        if self
            .queue
            .finish(&q.id, QueueState::Taken, QueueState::Done, Some(&result))
            .await?
        {
            tracing::info!(run_id = %q.run_id, trace_id = %q.trace_id, job = %q.job,
                attempt = q.attempt, ?outcome, "agent result taken");
            self.wake(&q.id);
            return Ok(());
        }
        let now = self.queue.get(&q.id).await?.unwrap_or(q);
        let reason = match now.state {
            QueueState::Done => format!(
                "the result of attempt {} was reported already (a callback token is used once)",
                now.attempt
            ),
            QueueState::Lost => format!(
                "attempt {} is no longer current: its agent `{}` stopped renewing the lease, and the job runs again",
                now.attempt,
                now.agent.as_deref().unwrap_or("?")
            ),
            QueueState::Cancelled => format!("attempt {} was cancelled", now.attempt),
            QueueState::Queued | QueueState::Taken => {
                format!("attempt {} has not been taken by an agent", now.attempt)
            }
        };
        let note = format!("result refused ({}): {reason}", describe(&report));
        tracing::warn!(run_id = %now.run_id, trace_id = %now.trace_id, job = %now.job,
            attempt = now.attempt, %reason, "callback refused");
        self.audit(&now, "result_refused", note).await;
        Err(CallbackError::Conflict(reason))
    }
}

fn describe(r: &Report) -> String {
    match (&r.outcome, r.exit_code) {
        (Some(o), Some(c)) => format!("{o}, exit code {c}"),
        (Some(o), None) => o.clone(),
        (None, Some(c)) => format!("exit code {c}"),
        (None, None) => "no outcome".into(),
    }
}
