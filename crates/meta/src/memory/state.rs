//! The twin's state and the mutations every operation is built from.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::HISTORY_LIMIT;
use super::persist::{self, Loaded, Pending, Persistence, Writer};
use crate::Result;
use crate::store::{Check, Compare, EventKind, KeyValue, Op, WatchBatch, WatchEvent};

#[derive(Debug)]
pub(super) struct State {
    pub(super) revision: i64,
    /// Like etcd's compact revision: history before it is gone; watching from it still works.
    pub(super) compacted: i64,
    pub(super) kvs: BTreeMap<String, KeyValue>,
    pub(super) history: Vec<WatchEvent>,
    pub(super) leases: HashMap<i64, LeaseState>,
    pub(super) next_lease: i64,
    /// Where each revision's events go to watchers, in revision order.
    pub(super) events: broadcast::Sender<Arc<WatchBatch>>,
    /// For a persisted store: writes each revision, then publishes its events. After a failed
    /// write memory may be ahead of what is kept, so the store refuses every further call.
    writer: Option<Writer>,
}

/// When a commit is safe to report.
pub(super) enum Durable {
    /// Now (nothing to write, or nothing is persisted).
    Now,
    /// Once the writer has written it.
    Pending(Pending),
}

impl Durable {
    /// Waits until the commit is kept.
    pub(super) async fn wait(self) -> Result<()> {
        match self {
            Self::Now => Ok(()),
            Self::Pending(pending) => pending.wait().await,
        }
    }
}

#[derive(Debug)]
pub(super) struct LeaseState {
    pub(super) ttl: Duration,
    pub(super) expires_at: Instant,
    pub(super) keys: BTreeSet<String>,
}

impl State {
    /// An empty store at revision 1, as a fresh etcd.
    pub(super) fn new(events: broadcast::Sender<Arc<WatchBatch>>) -> Self {
        Self {
            revision: 1,
            compacted: 0,
            kvs: BTreeMap::new(),
            history: Vec::new(),
            leases: HashMap::new(),
            next_lease: 1,
            events,
            writer: None,
        }
    }

    /// What `backend` held, with the keys of the previous process's leases deleted (in one
    /// revision, as if those leases had expired). Blocks on the backend.
    pub(super) fn restore(
        backend: Arc<dyn Persistence>,
        loaded: Loaded,
        events: broadcast::Sender<Arc<WatchBatch>>,
    ) -> Result<Self> {
        let mut state = Self::new(events.clone());
        state.revision = loaded.revision.max(1);
        // Nothing before the reopen can be replayed.
        state.compacted = state.revision + 1;
        state.kvs = loaded.kvs;
        state.next_lease = loaded.next_lease.max(1);
        let leased: Vec<String> = state
            .kvs
            .values()
            .filter(|kv| kv.lease.is_some())
            .map(|kv| kv.key.clone())
            .collect();
        let cleanup = state.delete_keys(leased, state.revision + 1);
        if !cleanup.is_empty() {
            backend.write(persist::revision_batch(
                &cleanup,
                state.revision + 1,
                state.next_lease,
            ))?;
            state.revision += 1;
            state.history.extend(cleanup);
        }
        state.writer = Some(Writer::start(backend, events)?);
        Ok(state)
    }

    /// Fails if an earlier write to the persistence failed.
    pub(super) fn usable(&self) -> Result<()> {
        match self.writer.as_ref().and_then(Writer::failure) {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    pub(super) fn check(&self, compare: &Compare) -> bool {
        let kv = self.kvs.get(&compare.key);
        match &compare.check {
            Check::Absent => kv.is_none(),
            Check::CreateRevision(rev) => kv.is_some_and(|kv| kv.create_revision == *rev),
            Check::ModRevision(rev) => kv.map_or(0, |kv| kv.mod_revision) == *rev,
            Check::Value(value) => kv.is_some_and(|kv| kv.value == *value),
        }
    }

    /// Applies one op at revision `self.revision + 1`, returning its events.
    pub(super) fn apply(&mut self, op: Op) -> Vec<WatchEvent> {
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
    pub(super) fn revoke(&mut self, id: i64) -> Vec<WatchEvent> {
        match self.leases.remove(&id) {
            Some(lease) => self.delete_keys(lease.keys.into_iter().collect(), self.revision + 1),
            None => Vec::new(),
        }
    }

    /// Hands out a lease id (kept, for a persisted store, so ids are never reused).
    pub(super) fn take_lease_id(&mut self) -> (i64, Durable) {
        let id = self.next_lease;
        self.next_lease += 1;
        let durable = match &self.writer {
            Some(writer) => Durable::Pending(writer.submit(
                persist::counters_batch(self.revision, self.next_lease),
                None,
            )),
            None => Durable::Now,
        };
        (id, durable)
    }

    /// Records the events of one revision and hands them to watchers: at once, or for a
    /// persisted store once they are written (the writer keeps revision order either way).
    pub(super) fn commit(&mut self, events: Vec<WatchEvent>) -> Durable {
        if events.is_empty() {
            return Durable::Now;
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
        let batch = Arc::new(WatchBatch {
            revision: self.revision,
            events,
        });
        match &self.writer {
            Some(writer) => {
                let write = persist::revision_batch(&batch.events, self.revision, self.next_lease);
                Durable::Pending(writer.submit(write, Some(batch)))
            }
            None => {
                // No receiver just means nobody watches.
                let _ = self.events.send(batch);
                Durable::Now
            }
        }
    }
}
