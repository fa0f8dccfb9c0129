//! [`MemoryStore`]: an in-memory twin of etcd for unit tests and the single-process dev mode.
//!
//! It follows etcd's semantics where Strom relies on them: one revision per changing
//! transaction, create/mod revisions and versions per key, lease expiry deleting attached keys in
//! one revision, watches replaying history from a revision, and compaction. History is trimmed
//! to the last [`HISTORY_LIMIT`] events, like etcd's auto-compaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::store::{
    Check, Compare, EventKind, KeyValue, LeaseGrant, LeaseId, Listing, MAX_TXN_OPS, MetaStore, Op,
    Txn, TxnOutcome, WatchBatch, WatchEvent, WatchStream,
};
use crate::{Error, Result};

/// Events kept for watches that start in the past; older ones are compacted.
pub const HISTORY_LIMIT: usize = 100_000;

/// The shortest lease the twin grants, as etcd with its default election timeout.
const MIN_LEASE_TTL: Duration = Duration::from_secs(2);

/// How often expired leases are looked for.
const REAP_INTERVAL: Duration = Duration::from_millis(50);

/// Room for revisions in flight to slow watchers before they are cancelled.
const WATCH_CHANNEL_CAPACITY: usize = 4096;

/// An in-memory metadata store with etcd's semantics.
///
/// Create it inside a Tokio runtime: a background task expires leases, and it stops when the
/// store is dropped. Thread-safe; share it as `Arc<MemoryStore>`.
#[derive(Debug)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    events: broadcast::Sender<Arc<WatchBatch>>,
    reaper: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct State {
    revision: i64,
    /// Like etcd's compact revision: history before it is gone; watching from it still works.
    compacted: i64,
    kvs: BTreeMap<String, KeyValue>,
    history: Vec<WatchEvent>,
    leases: HashMap<i64, LeaseState>,
    next_lease: i64,
}

#[derive(Debug)]
struct LeaseState {
    ttl: Duration,
    expires_at: Instant,
    keys: BTreeSet<String>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store at revision 1, as a fresh etcd.
    pub fn new() -> Self {
        let state = Arc::new(Mutex::new(State {
            revision: 1,
            next_lease: 1,
            ..State::default()
        }));
        let (events, _) = broadcast::channel(WATCH_CHANNEL_CAPACITY);
        let reaper = tokio::spawn(reap_leases(Arc::downgrade(&state), events.clone()));
        Self {
            state,
            events,
            reaper,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the maps consistent (every mutation is a single
        // insert/remove), so the poison flag carries no information here.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for MemoryStore {
    fn drop(&mut self) {
        self.reaper.abort();
    }
}

async fn reap_leases(state: Weak<Mutex<State>>, events: broadcast::Sender<Arc<WatchBatch>>) {
    let mut tick = tokio::time::interval(REAP_INTERVAL);
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else { return };
        let batch = {
            let mut state = state
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            let expired: Vec<i64> = state
                .leases
                .iter()
                .filter(|(_, lease)| lease.expires_at <= now)
                .map(|(id, _)| *id)
                .collect();
            let mut events = Vec::new();
            for id in expired {
                events.extend(state.revoke(id));
            }
            state.commit(events)
        };
        if let Some(batch) = batch {
            // No receiver just means nobody watches.
            let _ = events.send(batch);
        }
    }
}

impl State {
    fn check(&self, compare: &Compare) -> bool {
        let kv = self.kvs.get(&compare.key);
        match &compare.check {
            Check::Absent => kv.is_none(),
            Check::CreateRevision(rev) => kv.is_some_and(|kv| kv.create_revision == *rev),
            Check::ModRevision(rev) => kv.map_or(0, |kv| kv.mod_revision) == *rev,
            Check::Value(value) => kv.is_some_and(|kv| kv.value == *value),
        }
    }

    /// Applies one op at revision `self.revision + 1`, returning its events.
    fn apply(&mut self, op: Op) -> Vec<WatchEvent> {
        let rev = self.revision + 1;
        match op {
            Op::Put { key, value, lease } => {
                let previous = self.kvs.get(&key);
                let (create_revision, version, old_lease) = match previous {
                    Some(kv) => (kv.create_revision, kv.version + 1, kv.lease),
                    None => (rev, 1, None),
                };
                if let Some(l) = old_lease.and_then(|old| self.leases.get_mut(&old.0)) {
                    l.keys.remove(&key);
                }
                if let Some(l) = lease.and_then(|new| self.leases.get_mut(&new.0)) {
                    l.keys.insert(key.clone());
                }
                let kv = KeyValue {
                    key: key.clone(),
                    value,
                    create_revision,
                    mod_revision: rev,
                    version,
                    lease,
                };
                self.kvs.insert(key, kv.clone());
                vec![WatchEvent {
                    kind: EventKind::Put,
                    kv,
                }]
            }
            Op::Delete { key } => self.delete_keys(vec![key], rev),
            Op::DeletePrefix { prefix } => {
                let keys = self
                    .kvs
                    .range(prefix.clone()..)
                    .take_while(|(k, _)| k.starts_with(&prefix))
                    .map(|(k, _)| k.clone())
                    .collect();
                self.delete_keys(keys, rev)
            }
        }
    }

    fn delete_keys(&mut self, keys: Vec<String>, rev: i64) -> Vec<WatchEvent> {
        let mut events = Vec::new();
        for key in keys {
            let Some(old) = self.kvs.remove(&key) else {
                continue;
            };
            if let Some(l) = old.lease.and_then(|lease| self.leases.get_mut(&lease.0)) {
                l.keys.remove(&key);
            }
            let kv = KeyValue {
                key,
                value: Bytes::new(),
                create_revision: 0,
                mod_revision: rev,
                version: 0,
                lease: None,
            };
            events.push(WatchEvent {
                kind: EventKind::Delete,
                kv,
            });
        }
        events
    }

    /// Removes a lease and deletes its keys at the next revision.
    fn revoke(&mut self, id: i64) -> Vec<WatchEvent> {
        match self.leases.remove(&id) {
            Some(lease) => self.delete_keys(lease.keys.into_iter().collect(), self.revision + 1),
            None => Vec::new(),
        }
    }

    /// Records the events of one revision; returns the batch to publish, if anything changed.
    fn commit(&mut self, events: Vec<WatchEvent>) -> Option<Arc<WatchBatch>> {
        if events.is_empty() {
            return None;
        }
        self.revision += 1;
        self.history.extend(events.iter().cloned());
        if self.history.len() > HISTORY_LIMIT {
            let cut = self.history.len() - HISTORY_LIMIT;
            let first_kept = self.history[cut].kv.mod_revision;
            // Compact at a revision boundary so no revision is half-kept.
            let cut = self
                .history
                .partition_point(|e| e.kv.mod_revision < first_kept);
            self.history.drain(..cut);
            self.compacted = self.compacted.max(first_kept);
        }
        Some(Arc::new(WatchBatch {
            revision: self.revision,
            events,
        }))
    }
}

fn validate_txn(txn: &Txn) -> Result<()> {
    if txn.ops.len() > MAX_TXN_OPS {
        return Err(Error::Rejected {
            reason: format!(
                "too many operations in txn request ({} > {MAX_TXN_OPS})",
                txn.ops.len()
            ),
        });
    }
    let mut written = BTreeSet::new();
    for op in &txn.ops {
        let key = match op {
            Op::Put { key, .. } | Op::Delete { key } => key,
            Op::DeletePrefix { prefix } => prefix,
        };
        if !written.insert(key.as_str()) {
            return Err(Error::Rejected {
                reason: format!("duplicate key given in txn request: {key}"),
            });
        }
    }
    Ok(())
}

#[async_trait]
impl MetaStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.lock().kvs.get(key).cloned())
    }

    async fn list(&self, prefix: &str) -> Result<Listing> {
        let state = self.lock();
        let kvs = state
            .kvs
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, kv)| kv.clone())
            .collect();
        Ok(Listing {
            revision: state.revision,
            kvs,
        })
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome> {
        validate_txn(&txn)?;
        let batch;
        let outcome;
        {
            let mut state = self.lock();
            if !txn.compares.iter().all(|c| state.check(c)) {
                return Ok(TxnOutcome {
                    succeeded: false,
                    revision: state.revision,
                });
            }
            let missing_lease = txn.ops.iter().find_map(|op| match op {
                Op::Put {
                    lease: Some(lease), ..
                } if !state.leases.contains_key(&lease.0) => Some(*lease),
                _ => None,
            });
            if let Some(lease) = missing_lease {
                return Err(Error::LeaseExpired { lease: lease.0 });
            }
            let mut events = Vec::new();
            for op in txn.ops {
                events.extend(state.apply(op));
            }
            batch = state.commit(events);
            outcome = TxnOutcome {
                succeeded: true,
                revision: state.revision,
            };
        }
        if let Some(batch) = batch {
            let _ = self.events.send(batch);
        }
        Ok(outcome)
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseGrant> {
        if ttl.is_zero() {
            return Err(Error::InvalidTtl {
                ttl,
                reason: "must be positive",
            });
        }
        let ttl = Duration::from_secs(ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0))
            .max(MIN_LEASE_TTL);
        let mut state = self.lock();
        let id = state.next_lease;
        state.next_lease += 1;
        state.leases.insert(
            id,
            LeaseState {
                ttl,
                expires_at: Instant::now() + ttl,
                keys: BTreeSet::new(),
            },
        );
        Ok(LeaseGrant {
            id: LeaseId(id),
            ttl,
        })
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        let mut state = self.lock();
        let now = Instant::now();
        match state.leases.get_mut(&lease.0) {
            Some(l) if l.expires_at > now => {
                l.expires_at = now + l.ttl;
                Ok(l.ttl)
            }
            _ => Err(Error::LeaseExpired { lease: lease.0 }),
        }
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        let batch = {
            let mut state = self.lock();
            let events = state.revoke(lease.0);
            state.commit(events)
        };
        if let Some(batch) = batch {
            let _ = self.events.send(batch);
        }
        Ok(())
    }

    async fn watch(&self, prefix: &str, start_revision: i64) -> Result<WatchStream> {
        let (replay, rx) = {
            let state = self.lock();
            let start = if start_revision <= 0 {
                state.revision + 1
            } else {
                start_revision
            };
            if start < state.compacted {
                return Err(Error::Compacted {
                    requested: start,
                    compacted: state.compacted,
                });
            }
            let events: Vec<WatchEvent> = state
                .history
                .iter()
                .filter(|e| e.kv.mod_revision >= start && e.kv.key.starts_with(prefix))
                .cloned()
                .collect();
            (
                WatchBatch {
                    revision: state.revision,
                    events,
                },
                self.events.subscribe(),
            )
        };
        let prefix = prefix.to_owned();
        let initial = (!replay.events.is_empty()).then_some(replay);
        let stream = futures::stream::unfold(
            (initial, Some(rx), prefix),
            |(mut initial, rx, prefix)| async move {
                if let Some(batch) = initial.take() {
                    return Some((Ok(batch), (None, rx, prefix)));
                }
                let mut rx = rx?;
                loop {
                    match rx.recv().await {
                        Ok(batch) => {
                            let events: Vec<WatchEvent> = batch
                                .events
                                .iter()
                                .filter(|e| e.kv.key.starts_with(&prefix))
                                .cloned()
                                .collect();
                            if !events.is_empty() {
                                let out = WatchBatch {
                                    revision: batch.revision,
                                    events,
                                };
                                return Some((Ok(out), (None, Some(rx), prefix)));
                            }
                        }
                        Err(_) => {
                            let err = Error::WatchCancelled {
                                prefix: prefix.clone(),
                            };
                            return Some((Err(err), (None, None, prefix)));
                        }
                    }
                }
            },
        );
        Ok(WatchStream::new(stream))
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        let mut state = self.lock();
        if revision <= state.compacted {
            return Err(Error::Compacted {
                requested: revision,
                compacted: state.compacted,
            });
        }
        if revision > state.revision {
            return Err(Error::Rejected {
                reason: format!("compaction revision {revision} is in the future"),
            });
        }
        let cut = state
            .history
            .partition_point(|e| e.kv.mod_revision < revision);
        state.history.drain(..cut);
        state.compacted = revision;
        Ok(())
    }
}
