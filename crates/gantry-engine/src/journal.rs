//! The journal: the single, ordered path by which state changes reach the [`Store`].
//!
//! Writers append batches without waiting; one writer task takes everything queued since its
//! last commit and applies it in one transaction (group commit), so N concurrent changes cost
//! one commit, not N. While a batch commits, the next one gathers and is prepared
//! (`Store::prepare`: e.g. its large payloads written), then commits after it. Order is kept:
//! what is stored is always a prefix of what was appended.
//!
//! Each entry says how far its commit must reach ([`Durability`]): what is acknowledged to
//! someone outside ([`Journal::append_acked`], [`Journal::append_durable`]) and what nobody
//! waits for ([`Journal::append`]) is synced to disk; the engine's write-ahead before a job
//! starts ([`Journal::append_written`]) need only survive our crash. A batch commits as far as
//! its furthest-reaching entry asks. Unwaited batches that move jobs linger a little for
//! company. Followers ([`Journal::subscribe`]: the reporter, the progress display, waiters)
//! get a batch only once it is on the disk, so nothing outside is told of a change a power
//! cut could take back: a batch committed unsynced is held until the next synced commit, or a
//! [`Store::sync`] at most [`SYNC_WITHIN`] after it.
//!
//! An entry may carry a mark ([`Journal::append_marked`]): a number its appender chose, larger
//! than its earlier marks. [`Journal::written_mark`] is the largest mark committed so far, so
//! the one appender that marks (the engine) can tell without waiting whether an earlier entry
//! of its own has been committed.

use crate::ports::{Committed, Durability, Store, StoreResult, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{error, warn};

/// Most writes in one transaction; bounds the time a single commit holds the write lock.
const MAX_BATCH: usize = 8192;
/// A batch nobody waits for starts its commit at most this long after the last one: waiting
/// for company makes each fsync and transaction carry many changes. A batch someone waits for
/// commits at once (or right after the commit in flight).
const COMMIT_INTERVAL: Duration = Duration::from_millis(3);
/// A batch of job transitions that nobody waits for waits up to this long after the last
/// commit for more to join it, unless someone starts waiting or it fills: a busy run's
/// transitions then share one synced transaction per interval. Batches without job transitions
/// (webhook intake, rules) never wait, nor does a batch that ends a run (whoever follows the
/// run learns it at once). Readers (the progress display, the API) see such transitions at most
/// this much later.
const LINGER: Duration = Duration::from_millis(50);

/// Longest time a batch committed unsynced waits for a sync (and its followers with it).
const SYNC_WITHIN: Duration = LINGER;

struct Entry {
    writes: Vec<Write>,
    ack: Option<oneshot::Sender<Arc<Committed>>>,
    /// How far the commit carrying this entry must reach.
    durability: Durability,
    /// The appender's mark (0: none).
    mark: u64,
}

#[derive(Clone)]
pub struct Journal {
    tx: mpsc::UnboundedSender<Entry>,
    committed: broadcast::Sender<Arc<Vec<Write>>>,
    /// The largest mark committed (to the operating system at least).
    written: Arc<AtomicU64>,
}

impl Journal {
    /// `backlog`: how many committed batches a follower may fall behind (see
    /// [`crate::EngineConfig::committed_backlog`]).
    pub fn start(store: Arc<dyn Store>, backlog: usize) -> (Journal, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (committed, _) = broadcast::channel(backlog);
        let written = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(writer(store, rx, committed.clone(), written.clone()));
        let journal = Journal {
            tx,
            committed,
            written,
        };
        (journal, task)
    }

    /// Queues writes; they become durable with the next commit, after everything queued before.
    pub fn append(&self, writes: Vec<Write>) {
        if writes.is_empty() {
            return;
        }
        let entry = Entry {
            writes,
            ack: None,
            durability: Durability::Disk,
            mark: 0,
        };
        if self.tx.send(entry).is_err() {
            error!("journal writer has stopped; a state change was not recorded");
        }
    }

    /// Queues writes and waits until they (and everything before them) are durable.
    pub async fn append_durable(&self, writes: Vec<Write>) -> StoreResult<Arc<Committed>> {
        self.append_acked(writes).wait().await
    }

    /// Queues writes now (keeping their place in the order) and returns a handle that resolves
    /// once they are durable. For callers that must not block but must not reorder either.
    pub fn append_acked(&self, writes: Vec<Write>) -> Durable {
        self.append_waited(writes, Durability::Disk)
    }

    /// [`Journal::append_acked`], resolving once the writes have reached the operating system
    /// ([`Durability::Os`]: they survive our crash, not yet a power cut). For the engine's own
    /// write-ahead, where nobody outside is told.
    pub fn append_written(&self, writes: Vec<Write>) -> Durable {
        self.append_waited(writes, Durability::Os)
    }

    /// Queues writes that need only survive our crash, as [`Journal::append_written`], without
    /// waiting: the engine's own records of what it is about to do, which nobody outside is
    /// told of (they reach the disk with the next synced commit, within [`SYNC_WITHIN`]).
    pub fn append_unsynced(&self, writes: Vec<Write>) {
        if writes.is_empty() {
            return;
        }
        let entry = Entry {
            writes,
            ack: None,
            durability: Durability::Os,
            mark: 0,
        };
        if self.tx.send(entry).is_err() {
            error!("journal writer has stopped; a state change was not recorded");
        }
    }

    /// [`Journal::append_written`], with a mark: once committed, [`Journal::written_mark`] is
    /// at least `mark`. Marks must grow from one call to the next.
    pub fn append_marked(&self, writes: Vec<Write>, mark: u64) -> Durable {
        self.send_waited(writes, Durability::Os, mark)
    }

    /// The largest mark of a committed entry (0 before any).
    pub fn written_mark(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    fn append_waited(&self, writes: Vec<Write>, durability: Durability) -> Durable {
        self.send_waited(writes, durability, 0)
    }

    fn send_waited(&self, writes: Vec<Write>, durability: Durability, mark: u64) -> Durable {
        let (ack, done) = oneshot::channel();
        let _ = self.tx.send(Entry {
            writes,
            ack: Some(ack),
            durability,
            mark,
        });
        Durable(done)
    }

    /// Waits until everything appended so far is durable.
    pub async fn flush(&self) -> StoreResult<()> {
        self.append_durable(Vec::new()).await.map(|_| ())
    }

    /// Committed batches, in commit order, each once it is on the disk.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Vec<Write>>> {
        self.committed.subscribe()
    }
}

/// Resolves when the writes it was returned for are durable.
pub struct Durable(oneshot::Receiver<Arc<Committed>>);

impl Durable {
    /// What the commit that carried the writes reported (shared by everything in that batch).
    pub async fn wait(self) -> StoreResult<Arc<Committed>> {
        self.0.await.map_err(|_| {
            crate::ports::StoreError::Database("the journal writer has stopped".into())
        })
    }
}

/// A batch being committed, with whom to tell.
struct InFlight {
    acks: Vec<oneshot::Sender<Arc<Committed>>>,
    /// Gives the batch back with what its commit reported.
    task: tokio::task::JoinHandle<(Vec<Write>, Committed)>,
    durability: Durability,
    /// The largest mark of its entries.
    mark: u64,
}

/// Committed batches not yet given to followers because they are not on the disk yet, oldest
/// first, and since when the oldest has waited.
#[derive(Default)]
struct Unsynced {
    batches: Vec<Arc<Vec<Write>>>,
    since: Option<tokio::time::Instant>,
}

impl Unsynced {
    /// When a sync is due, if anything waits for one.
    fn due(&self) -> Option<tokio::time::Instant> {
        self.since.map(|s| s + SYNC_WITHIN)
    }
}

async fn writer(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<Entry>,
    committed: broadcast::Sender<Arc<Vec<Write>>>,
    written: Arc<AtomicU64>,
) {
    let mut last_commit = tokio::time::Instant::now() - COMMIT_INTERVAL;
    // Commits are one at a time and in order, but the next batch is gathered and prepared
    // (`Store::prepare`) while the one before it commits.
    let mut in_flight: Option<InFlight> = None;
    let mut unsynced = Unsynced::default();
    loop {
        let due = unsynced.due();
        let sync_due = async move {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let first = match in_flight.as_mut() {
            Some(f) => tokio::select! {
                biased;
                done = &mut f.task => {
                    let f = in_flight.take().expect("in flight");
                    finish(f, done, &committed, &mut unsynced, &written);
                    continue;
                }
                e = rx.recv() => e,
            },
            None => tokio::select! {
                e = rx.recv() => {
                    // Alone and unwaited for, wait a little for company; behind a commit, the
                    // wait is that commit. A flush (nothing to write) has nothing to share.
                    if e.as_ref()
                        .is_some_and(|e| !e.writes.is_empty() && e.ack.is_none())
                    {
                        tokio::time::sleep_until(last_commit + COMMIT_INTERVAL).await;
                    }
                    e
                }
                // Nothing came to carry the unsynced batches to the disk: a sync does.
                () = sync_due => Some(Entry {
                    writes: Vec::new(),
                    ack: None,
                    durability: Durability::Disk,
                    mark: 0,
                }),
            },
        };
        let Some(first) = first else { break };
        let mut batch = first.writes;
        let mut acks: Vec<oneshot::Sender<Arc<Committed>>> = first.ack.into_iter().collect();
        let mut durability = first.durability;
        let mut mark = first.mark;
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(e) => {
                    batch.extend(e.writes);
                    acks.extend(e.ack);
                    durability = durability.max(e.durability);
                    mark = mark.max(e.mark);
                }
                Err(_) => break,
            }
        }
        let mut closing = false;
        let linger_until = last_commit + LINGER;
        let mut linger = may_linger(&batch);
        while linger && acks.is_empty() && batch.len() < MAX_BATCH && !closing {
            let finished = async {
                match in_flight.as_mut() {
                    Some(f) => Some((&mut f.task).await),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                done = finished => {
                    let f = in_flight.take().expect("in flight");
                    let done = done.expect("polled only while in flight");
                    finish(f, done, &committed, &mut unsynced, &written);
                }
                e = rx.recv() => match e {
                    Some(e) => {
                        linger = !ends_a_run(&e.writes);
                        batch.extend(e.writes);
                        acks.extend(e.ack);
                        durability = durability.max(e.durability);
                        mark = mark.max(e.mark);
                    }
                    None => closing = true,
                },
                _ = tokio::time::sleep_until(linger_until) => break,
            }
        }
        let prepared = store.prepare(&batch);
        if let Some(mut f) = in_flight.take() {
            let done = (&mut f.task).await;
            finish(f, done, &committed, &mut unsynced, &written);
        }
        // Unsynced batches waited long enough: this commit takes them to the disk.
        if unsynced
            .due()
            .is_some_and(|at| at <= tokio::time::Instant::now())
        {
            durability = Durability::Disk;
        }
        // Nothing to write, but unsynced commits before: a sync is what is asked.
        let sync = batch.is_empty() && durability == Durability::Disk && unsynced.since.is_some();
        last_commit = tokio::time::Instant::now();
        let store = store.clone();
        let task = tokio::spawn(async move {
            let outcome = if sync {
                synced(store.as_ref()).await
            } else {
                commit(store.as_ref(), &batch, prepared, durability).await
            };
            (batch, outcome)
        });
        in_flight = Some(InFlight {
            acks,
            task,
            durability,
            mark,
        });
        if closing {
            break;
        }
    }
    if let Some(mut f) = in_flight.take() {
        let done = (&mut f.task).await;
        finish(f, done, &committed, &mut unsynced, &written);
    }
    if unsynced.since.is_some() {
        let _ = synced(store.as_ref()).await;
        publish(std::mem::take(&mut unsynced.batches), &committed);
    }
}

/// Syncs what was committed unsynced; a failed sync is retried, as a failed commit is.
async fn synced(store: &dyn Store) -> Committed {
    let mut delay = Duration::from_millis(50);
    while let Err(err) = store.sync().await {
        error!(cause = %err, "sync failed; retrying");
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
    }
    Committed::default()
}

/// Whether a batch may wait for company: it moves jobs and ends no run.
fn may_linger(batch: &[Write]) -> bool {
    batch.iter().any(|w| matches!(w, Write::UpdateJob { .. })) && !ends_a_run(batch)
}

/// Whether writes finish a run (someone following it wants that at once).
fn ends_a_run(writes: &[Write]) -> bool {
    writes
        .iter()
        .any(|w| matches!(w, Write::UpdateRun { status, .. } if status.is_terminal()))
}

/// Commits a batch; a failed commit is retried, never skipped: later batches must not
/// overtake it.
async fn commit(
    store: &dyn Store,
    batch: &[Write],
    prepared: crate::ports::Prepared,
    durability: Durability,
) -> Committed {
    if batch.is_empty() {
        return Committed::default();
    }
    let mut prepared = Some(prepared);
    let mut delay = Duration::from_millis(50);
    loop {
        let p = prepared.take().unwrap_or_else(|| store.prepare(batch));
        match store.commit_prepared(batch, p, durability).await {
            Ok(c) => return c,
            Err(err) => {
                error!(cause = %err, writes = batch.len(), "commit failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Answers those waiting for a committed batch, and gives it to followers once it is on the
/// disk: a synced commit (or a sync) carries every unsynced batch before it.
fn finish(
    flight: InFlight,
    done: Result<(Vec<Write>, Committed), tokio::task::JoinError>,
    committed: &broadcast::Sender<Arc<Vec<Write>>>,
    unsynced: &mut Unsynced,
    written: &AtomicU64,
) {
    let (batch, outcome) = match done {
        Ok(c) => c,
        Err(e) => {
            // Only a panic in the store gets here; the writes' fate is unknown, so nobody is
            // told they are durable.
            error!(cause = %e, "commit task failed");
            return;
        }
    };
    written.fetch_max(flight.mark, Ordering::Release);
    if !batch.is_empty() {
        unsynced.batches.push(Arc::new(batch));
    }
    match flight.durability {
        Durability::Disk => {
            unsynced.since = None;
            publish(std::mem::take(&mut unsynced.batches), committed);
        }
        Durability::Os => {
            if !unsynced.batches.is_empty() {
                unsynced.since.get_or_insert_with(tokio::time::Instant::now);
            }
        }
    }
    let outcome = Arc::new(outcome);
    for ack in flight.acks {
        let _ = ack.send(outcome.clone());
    }
}

/// Gives batches on the disk to followers, in order.
fn publish(batches: Vec<Arc<Vec<Write>>>, committed: &broadcast::Sender<Arc<Vec<Write>>>) {
    if committed.receiver_count() == 0 {
        return;
    }
    for batch in batches {
        if committed.send(batch).is_err() {
            warn!("no journal subscribers");
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::JobRecord;
    use gantry_core::{JobStatus, RunStatus};

    fn job(status: JobStatus) -> Write {
        let mut job = JobRecord::pending(0, "a");
        job.status = status;
        Write::UpdateJob {
            run_id: "r".into(),
            job,
        }
    }

    fn run(status: RunStatus) -> Write {
        Write::UpdateRun {
            id: "r".into(),
            status,
            cancel_requested: false,
            started_at_ms: Some(1),
            finished_at_ms: status.is_terminal().then_some(2),
        }
    }

    #[test]
    fn only_job_moves_that_end_no_run_wait_for_company() {
        assert!(may_linger(&[job(JobStatus::Running)]));
        assert!(may_linger(&[
            job(JobStatus::Succeeded),
            run(RunStatus::Running)
        ]));
        for ends in [
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ] {
            assert!(
                !may_linger(&[job(JobStatus::Succeeded), run(ends)]),
                "{ends}"
            );
        }
        let lease = Write::ReleaseLease {
            name: "run:r".into(),
            holder: "h".into(),
        };
        assert!(!may_linger(&[lease]), "no job moves: nothing to wait for");
        assert!(!may_linger(&[]));
    }
}
