//! Many callers' reads of the same kind, as few AWS calls: a caller asks for one key of a
//! batch (a task of a cluster, a target of a group); the keys asked while a call is in flight
//! go together in the next call (up to `max` a call), and calls of one batch are at least
//! `spacing` apart. A lone caller's read goes out at once. A hundred services starting at once
//! then poll their tasks with one `DescribeTasks` per cluster at a time, not a hundred.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Reads `keys` of batch `batch`: each key's value, absent when AWS does not know it, or the
/// call's error for all of them.
pub type Fetch<K, V> = Arc<
    dyn Fn(String, Vec<K>) -> Pin<Box<dyn Future<Output = Result<HashMap<K, V>, String>> + Send>>
        + Send
        + Sync,
>;

type Waiter<K, V> = (K, oneshot::Sender<Result<Option<V>, String>>);

struct Batch<K, V> {
    queue: Vec<Waiter<K, V>>,
    /// A task is sending this batch's calls.
    running: bool,
    last: Option<Instant>,
}

pub struct Coalescer<K, V> {
    fetch: Fetch<K, V>,
    batches: Mutex<HashMap<String, Batch<K, V>>>,
    spacing: Duration,
    max: usize,
}

impl<K, V> Coalescer<K, V>
where
    K: Clone + Eq + Hash + Send + 'static,
    V: Clone + Send + 'static,
{
    pub fn new(fetch: Fetch<K, V>, spacing: Duration, max: usize) -> Arc<Self> {
        Arc::new(Coalescer {
            fetch,
            batches: Mutex::new(HashMap::new()),
            spacing,
            max: max.max(1),
        })
    }

    /// `key` of `batch`, read with whatever else is asked meanwhile.
    pub async fn get(self: &Arc<Self>, batch: &str, key: K) -> Result<Option<V>, String> {
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
            let b = batches.entry(batch.to_string()).or_insert_with(|| Batch {
                queue: Vec::new(),
                running: false,
                last: None,
            });
            b.queue.push((key, tx));
            !std::mem::replace(&mut b.running, true)
        };
        if lead {
            // A task of its own: a caller that gives up must not strand the others.
            let me = self.clone();
            let batch = batch.to_string();
            tokio::spawn(async move { me.send_calls(batch).await });
        }
        rx.await
            .unwrap_or_else(|_| Err("the read was dropped".to_string()))
    }

    /// Sends this batch's calls until nobody waits.
    async fn send_calls(self: Arc<Self>, batch: String) {
        loop {
            let wait = {
                let batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
                batches
                    .get(&batch)
                    .and_then(|b| b.last)
                    .map(|l| self.spacing.saturating_sub(l.elapsed()))
            };
            if let Some(w) = wait.filter(|w| !w.is_zero()) {
                tokio::time::sleep(w).await;
            }
            let items: Vec<Waiter<K, V>> = {
                let mut batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
                let Some(b) = batches.get_mut(&batch) else {
                    return;
                };
                b.queue.retain(|(_, tx)| !tx.is_closed());
                if b.queue.is_empty() {
                    b.running = false;
                    return;
                }
                b.last = Some(Instant::now());
                let n = b.queue.len().min(self.max);
                b.queue.drain(..n).collect()
            };
            let mut keys: Vec<K> = Vec::with_capacity(items.len());
            for (k, _) in &items {
                if !keys.contains(k) {
                    keys.push(k.clone());
                }
            }
            let got = (self.fetch)(batch.clone(), keys).await;
            for (k, tx) in items {
                let _ = tx.send(match &got {
                    Ok(m) => Ok(m.get(&k).cloned()),
                    Err(e) => Err(e.clone()),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn reads_asked_meanwhile_go_in_one_call_and_a_lone_read_at_once() {
        let calls = Arc::new(AtomicUsize::new(0));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let (c2, s2) = (calls.clone(), sizes.clone());
        let fetch: Fetch<u32, u32> = Arc::new(move |_batch, keys: Vec<u32>| {
            c2.fetch_add(1, Ordering::SeqCst);
            s2.lock().unwrap().push(keys.len());
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(keys
                    .iter()
                    .filter(|k| **k != 7)
                    .map(|k| (*k, k * 10))
                    .collect())
            })
        });
        let c = Coalescer::new(fetch, Duration::from_millis(0), 100);
        let began = Instant::now();
        assert_eq!(c.get("a", 1).await.unwrap(), Some(10));
        assert!(began.elapsed() < Duration::from_millis(200));
        assert_eq!(c.get("a", 7).await.unwrap(), None, "unknown to AWS");
        calls.store(0, Ordering::SeqCst);
        let all: Vec<_> = (0..50u32)
            .map(|k| {
                let c = c.clone();
                tokio::spawn(async move { c.get("a", k).await })
            })
            .collect();
        for (k, h) in all.into_iter().enumerate() {
            let want = (k as u32 != 7).then_some(k as u32 * 10);
            assert_eq!(h.await.unwrap().unwrap(), want);
        }
        let n = calls.load(Ordering::SeqCst);
        assert!(
            n <= 3,
            "{n} calls for 50 reads: {:?}",
            sizes.lock().unwrap()
        );
    }

    #[tokio::test]
    async fn calls_are_spaced_and_capped_and_errors_reach_every_reader() {
        let times = Arc::new(Mutex::new(Vec::new()));
        let t2 = times.clone();
        let fetch: Fetch<u32, u32> = Arc::new(move |_b, keys: Vec<u32>| {
            t2.lock().unwrap().push((Instant::now(), keys.len()));
            Box::pin(async move {
                if keys.contains(&99) {
                    return Err("AccessDenied".to_string());
                }
                Ok(keys.iter().map(|k| (*k, *k)).collect())
            })
        });
        let c = Coalescer::new(fetch, Duration::from_millis(50), 10);
        let all: Vec<_> = (0..25u32)
            .map(|k| {
                let c = c.clone();
                tokio::spawn(async move { c.get("b", k).await })
            })
            .collect();
        for h in all {
            h.await.unwrap().unwrap();
        }
        let t = times.lock().unwrap().clone();
        assert!(t.iter().all(|(_, n)| *n <= 10), "{t:?}");
        for w in t.windows(2) {
            assert!(w[1].0 - w[0].0 >= Duration::from_millis(45), "{t:?}");
        }
        let err = c.get("c", 99).await.unwrap_err();
        assert_eq!(err, "AccessDenied");
    }
}
