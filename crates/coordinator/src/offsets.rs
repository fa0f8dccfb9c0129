//! Committed offsets: each group's in-memory table, and the batcher that writes commits from
//! every group to etcd as few fenced transactions as possible (group commit).
//!
//! A commit is checked against the table first (offsets never move backward outside a reset)
//! and marked pending; the batcher merges commits for the same key, packs up to
//! [`MAX_TXN_OPS`] writes into one transaction guarded by each group's owner fence, and keeps
//! up to `concurrency` transactions in flight. A key is never in two transactions at once, so
//! writes for one key land in order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use strom_meta::records::OffsetRecord;
use strom_meta::{Compare, MAX_TXN_OPS, MetaStore, Op, Txn};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::{Error, Result};

/// A partition within a group's offsets: topic name and partition index.
pub type OffsetKey = (String, i32);

/// One partition's committed offset and the highest commit still on its way to etcd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OffsetSlot {
    /// The durable committed offset.
    pub committed: Option<OffsetRecord>,
    /// The highest offset accepted but not yet durable.
    pub pending: Option<i64>,
}

impl OffsetSlot {
    /// The lowest offset a new commit may carry.
    pub fn floor(&self) -> Option<i64> {
        let committed = self.committed.as_ref().map(|r| r.offset);
        committed.max(self.pending)
    }
}

/// A group's committed offsets.
pub type OffsetTable = BTreeMap<OffsetKey, OffsetSlot>;

/// One write for the batcher.
#[derive(Debug)]
pub struct CommitJob {
    /// The group, for splitting batches when a fence fails.
    pub group: String,
    /// The group owner's fence.
    pub fence: Compare,
    /// The etcd key.
    pub key: String,
    /// The encoded [`OffsetRecord`].
    pub value: Bytes,
    /// Told the outcome.
    pub done: oneshot::Sender<Result<()>>,
}

/// Hands commits to the batcher task.
#[derive(Debug, Clone)]
pub struct CommitQueue {
    jobs: mpsc::Sender<CommitJob>,
}

impl CommitQueue {
    /// Starts the batcher; it stops when `shutdown` fires, failing what it still holds.
    pub fn start(
        store: Arc<dyn MetaStore>,
        concurrency: usize,
        shutdown: CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Self {
        let (jobs, receiver) = mpsc::channel(16 * 1024);
        let batcher = Batcher {
            store,
            concurrency: concurrency.max(1),
            queued: BTreeMap::new(),
            positions: HashMap::new(),
            next_position: 0,
            in_flight: HashSet::new(),
            isolated: HashSet::new(),
        };
        tasks.spawn(batcher.run(receiver, shutdown));
        Self { jobs }
    }

    /// Queues a write and waits until it is durable or failed.
    pub async fn commit(
        &self,
        group: &str,
        fence: Compare,
        key: String,
        value: Bytes,
    ) -> Result<()> {
        let (done, outcome) = oneshot::channel();
        let job = CommitJob {
            group: group.to_owned(),
            fence,
            key,
            value,
            done,
        };
        let stopped = || Error::CoordinatorNotAvailable {
            reason: "the coordinator is shutting down".to_owned(),
        };
        self.jobs.send(job).await.map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

/// A key waiting to be written: the latest value and everyone waiting for it.
#[derive(Debug)]
struct Queued {
    group: String,
    fence: Compare,
    key: String,
    value: Bytes,
    waiters: Vec<oneshot::Sender<Result<()>>>,
}

/// The outcome of one transaction, with what it carried.
type Flight = (Vec<Queued>, Result<bool>);

struct Batcher {
    store: Arc<dyn MetaStore>,
    concurrency: usize,
    /// Keys waiting to be written, in arrival order.
    queued: BTreeMap<u64, Queued>,
    /// Where each waiting key is in `queued`, so a later commit for it merges in O(log n).
    positions: HashMap<String, u64>,
    next_position: u64,
    in_flight: HashSet<String>,
    /// Groups whose last batch failed its fence: they are retried in batches of their own so
    /// one lost group cannot fail another's commits.
    isolated: HashSet<String>,
}

impl Batcher {
    async fn run(mut self, mut jobs: mpsc::Receiver<CommitJob>, shutdown: CancellationToken) {
        let mut flights: JoinSet<Flight> = JoinSet::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                job = jobs.recv() => match job {
                    Some(job) => self.enqueue(job),
                    None => break,
                },
                Some(flight) = flights.join_next(), if !flights.is_empty() => {
                    match flight {
                        Ok((batch, outcome)) => self.land(batch, outcome),
                        Err(e) => warn!(error = %e, "an offset commit transaction task failed"),
                    }
                }
            }
            // Drain what arrived meanwhile so it joins the next transactions.
            while let Ok(job) = jobs.try_recv() {
                self.enqueue(job);
            }
            while flights.len() < self.concurrency {
                let Some(batch) = self.next_batch() else {
                    break;
                };
                let store = Arc::clone(&self.store);
                flights.spawn(async move {
                    let outcome = write(&*store, &batch).await;
                    (batch, outcome)
                });
            }
        }
        flights.abort_all();
        for queued in std::mem::take(&mut self.queued).into_values() {
            for waiter in queued.waiters {
                let _ = waiter.send(Err(Error::CoordinatorNotAvailable {
                    reason: "the coordinator is shutting down".to_owned(),
                }));
            }
        }
    }

    fn enqueue(&mut self, job: CommitJob) {
        self.push(
            Queued {
                group: job.group,
                fence: job.fence,
                key: job.key,
                value: job.value,
                waiters: vec![job.done],
            },
            true,
        );
    }

    /// Queues a write. When the key is already waiting, every waiter waits for one write,
    /// of the newer value: the arriving one if `newer`, else (a retried, older write) the one
    /// already waiting.
    fn push(&mut self, queued: Queued, newer: bool) {
        if let Some(waiting) = self
            .positions
            .get(&queued.key)
            .and_then(|position| self.queued.get_mut(position))
        {
            waiting.waiters.extend(queued.waiters);
            if newer {
                waiting.value = queued.value;
                waiting.fence = queued.fence;
            }
            return;
        }
        let position = self.next_position;
        self.next_position += 1;
        self.positions.insert(queued.key.clone(), position);
        self.queued.insert(position, queued);
    }

    /// Takes up to [`MAX_TXN_OPS`] queued keys that are not in flight, oldest first.
    fn next_batch(&mut self) -> Option<Vec<Queued>> {
        let mut taken = Vec::new();
        let mut groups = HashSet::new();
        let mut solo: Option<&str> = None;
        for (position, queued) in &self.queued {
            if taken.len() == MAX_TXN_OPS {
                break;
            }
            let isolated = self.isolated.contains(&queued.group);
            let fits = !self.in_flight.contains(&queued.key)
                && (groups.contains(queued.group.as_str()) || groups.len() < MAX_TXN_OPS)
                && match solo {
                    Some(group) => group == queued.group,
                    None => !isolated || taken.is_empty(),
                };
            if fits {
                if isolated {
                    solo = Some(&queued.group);
                }
                groups.insert(queued.group.as_str());
                taken.push(*position);
            }
        }
        if taken.is_empty() {
            return None;
        }
        let batch: Vec<Queued> = taken
            .into_iter()
            .filter_map(|position| self.queued.remove(&position))
            .collect();
        for queued in &batch {
            self.positions.remove(&queued.key);
            self.in_flight.insert(queued.key.clone());
        }
        Some(batch)
    }

    fn land(&mut self, batch: Vec<Queued>, outcome: Result<bool>) {
        for queued in &batch {
            self.in_flight.remove(&queued.key);
        }
        let groups: HashSet<&str> = batch.iter().map(|q| q.group.as_str()).collect();
        match outcome {
            Ok(true) => {
                for group in &groups {
                    self.isolated.remove(*group);
                }
                finish(batch, || Ok(()));
            }
            Ok(false) if groups.len() > 1 => {
                // Some group in the batch lost its owner: retry each group on its own.
                for queued in batch {
                    self.isolated.insert(queued.group.clone());
                    self.push(queued, false);
                }
            }
            Ok(false) => {
                for group in &groups {
                    self.isolated.remove(*group);
                }
                finish(batch, || {
                    Err(Error::NotCoordinator {
                        group: String::new(),
                        owner: None,
                    })
                });
            }
            Err(error) => finish(batch, || Err(error.clone())),
        }
    }
}

/// Answers every waiter of `batch`.
fn finish(batch: Vec<Queued>, outcome: impl Fn() -> Result<()>) {
    for queued in batch {
        for waiter in queued.waiters {
            let _ = waiter.send(outcome());
        }
    }
}

/// One fenced transaction for `batch`; `Ok(false)` when a fence failed.
async fn write(store: &dyn MetaStore, batch: &[Queued]) -> Result<bool> {
    let mut fences: HashMap<&str, Compare> = HashMap::new();
    for queued in batch {
        fences.insert(&queued.group, queued.fence.clone());
    }
    let txn = Txn::new().when(fences.into_values()).then(
        batch
            .iter()
            .map(|q| Op::put(q.key.clone(), q.value.clone())),
    );
    Ok(store.txn(txn).await?.succeeded)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use strom_meta::MemoryStore;
    use tokio_util::task::TaskTracker;

    use super::*;

    #[tokio::test]
    async fn many_commits_land_and_a_lost_fence_fails_only_its_group() {
        let store: Arc<dyn MetaStore> = Arc::new(MemoryStore::new());
        let lease = store.grant_lease(Duration::from_secs(10)).await.unwrap();
        store
            .txn(Txn::new().then([Op::put_with_lease("owner/a", "1", lease.id)]))
            .await
            .unwrap();
        let owner = store.get("owner/a").await.unwrap().unwrap();
        let good = Compare::create_revision("owner/a", owner.create_revision);
        let lost = Compare::create_revision("owner/b", 12345);
        let tasks = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let queue = CommitQueue::start(Arc::clone(&store), 2, shutdown.clone(), &tasks);
        let mut handles = Vec::new();
        for i in 0..300 {
            let queue = queue.clone();
            let (group, fence) = if i % 10 == 0 {
                ("b", lost.clone())
            } else {
                ("a", good.clone())
            };
            let key = format!("offsets/{group}/t/{}", i % 50);
            handles.push(tokio::spawn(async move {
                (
                    group,
                    queue
                        .commit(group, fence, key, Bytes::from(format!("{i}")))
                        .await,
                )
            }));
        }
        for handle in handles {
            let (group, outcome) = handle.await.unwrap();
            match group {
                "a" => outcome.unwrap(),
                _ => assert!(matches!(outcome, Err(Error::NotCoordinator { .. }))),
            }
        }
        let written = store.list("offsets/a/").await.unwrap();
        assert_eq!(written.kvs.len(), 45);
        assert!(store.list("offsets/b/").await.unwrap().kvs.is_empty());
        shutdown.cancel();
        tasks.close();
        tasks.wait().await;
    }
}
