//! [`MemoryStore`]: an in-memory twin of etcd for unit tests and the single-process dev mode.
//!
//! It follows etcd's semantics where Strom relies on them: one revision per changing
//! transaction, create/mod revisions and versions per key, lease expiry deleting attached keys in
//! one revision, watches replaying history from a revision, and compaction. History is trimmed
//! to the last [`HISTORY_LIMIT`] events, like etcd's auto-compaction.
//!
//! [`MemoryStore::open`] also keeps every key in a [`Persistence`] (the dev mode's is a RocksDB
//! column family), so a single-process cluster keeps its topics, partitions and committed
//! offsets across restarts.

mod persist;
mod state;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use self::persist::{MemoryPersistence, PersistBatch, Persistence};
use self::state::{LeaseState, State};
use crate::store::{
    KeyValue, LeaseGrant, LeaseId, Listing, MAX_TXN_OPS, MetaStore, Op, Txn, TxnOutcome,
    WatchBatch, WatchEvent, WatchStream,
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
///
/// A persisted store ([`MemoryStore::open`]) answers a changing call only once its revision
/// is written, and watchers see a revision only then; a read may see a revision whose write is
/// still in flight (for the moment between a transaction and its write).
#[derive(Debug)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    reaper: JoinHandle<()>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store at revision 1, as a fresh etcd.
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(WATCH_CHANNEL_CAPACITY);
        Self::with_state(State::new(events))
    }

    /// A store kept in `backend`, holding what it held when last closed. Keys attached to
    /// leases are deleted on opening, as if their leases had expired: the processes holding
    /// them ended with the previous store. The revision carries on from where it was, so
    /// epochs fenced by revisions keep growing; watches cannot start before the reopen.
    pub async fn open(backend: Arc<dyn Persistence>) -> Result<Self> {
        let (events, _) = broadcast::channel(WATCH_CHANNEL_CAPACITY);
        let state = tokio::task::spawn_blocking(move || {
            let loaded = persist::load(backend.as_ref())?;
            State::restore(backend, loaded, events)
        })
        .await
        .map_err(|e| Error::Unavailable {
            operation: "open",
            reason: e.to_string(),
        })??;
        Ok(Self::with_state(state))
    }

    fn with_state(state: State) -> Self {
        let state = Arc::new(Mutex::new(state));
        let reaper = tokio::spawn(reap_leases(Arc::downgrade(&state)));
        Self { state, reaper }
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

async fn reap_leases(state: Weak<Mutex<State>>) {
    let mut tick = tokio::time::interval(REAP_INTERVAL);
    loop {
        tick.tick().await;
        let Some(state) = state.upgrade() else { return };
        let durable = {
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
        drop(state);
        // A failed write marks the store failed, and every later call reports it.
        let _ = durable.wait().await;
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
        let state = self.lock();
        state.usable()?;
        Ok(state.kvs.get(key).cloned())
    }

    async fn list(&self, prefix: &str) -> Result<Listing> {
        let state = self.lock();
        state.usable()?;
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
        let durable;
        let outcome;
        {
            let mut state = self.lock();
            state.usable()?;
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
            durable = state.commit(events);
            outcome = TxnOutcome {
                succeeded: true,
                revision: state.revision,
            };
        }
        durable.wait().await?;
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
        let (id, durable) = {
            let mut state = self.lock();
            state.usable()?;
            let (id, durable) = state.take_lease_id();
            state.leases.insert(
                id,
                LeaseState {
                    ttl,
                    expires_at: Instant::now() + ttl,
                    keys: BTreeSet::new(),
                },
            );
            (id, durable)
        };
        durable.wait().await?;
        Ok(LeaseGrant {
            id: LeaseId(id),
            ttl,
        })
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        let mut state = self.lock();
        state.usable()?;
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
        let durable = {
            let mut state = self.lock();
            state.usable()?;
            let events = state.revoke(lease.0);
            state.commit(events)
        };
        durable.wait().await
    }

    async fn watch(&self, prefix: &str, start_revision: i64) -> Result<WatchStream> {
        let (replay, rx) = {
            let state = self.lock();
            state.usable()?;
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
                state.events.subscribe(),
            )
        };
        let prefix = prefix.to_owned();
        // The replay covers every revision up to here, including any a persisted store has not
        // published yet; those arrive again from the channel and are skipped.
        let replayed = replay.revision;
        let initial = (!replay.events.is_empty()).then_some(replay);
        let stream = futures::stream::unfold(
            (initial, Some(rx), prefix),
            move |(mut initial, rx, prefix)| async move {
                if let Some(batch) = initial.take() {
                    return Some((Ok(batch), (None, rx, prefix)));
                }
                let mut rx = rx?;
                loop {
                    match rx.recv().await {
                        Ok(batch) if batch.revision <= replayed => {}
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
        state.usable()?;
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
