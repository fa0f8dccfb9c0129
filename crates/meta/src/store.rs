//! The store interface shared by etcd and the in-memory twin.
//!
//! The model is etcd's: a flat, ordered key space; a global revision that grows by one with every
//! transaction that changes something; per-key create and mod revisions; leases whose expiry
//! deletes the keys attached to them; and watches that replay history from a revision.

use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::Result;

/// The id of a lease granted by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeaseId(pub i64);

impl fmt::Display for LeaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

/// One stored key and its value, with the revisions that fence writes against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value; empty in delete events.
    pub value: Bytes,
    /// The revision at which the key was created (since its last deletion).
    pub create_revision: i64,
    /// The revision of the last change to the key; for delete events, the deletion's revision.
    pub mod_revision: i64,
    /// The number of puts since creation; 0 in delete events.
    pub version: i64,
    /// The lease the key is attached to, if any.
    pub lease: Option<LeaseId>,
}

/// Every key under a prefix, read at one revision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Listing {
    /// The store revision the listing was read at; watch from `revision + 1` to continue it.
    pub revision: i64,
    /// The keys in ascending order.
    pub kvs: Vec<KeyValue>,
}

/// A condition a transaction checks before it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    /// The key to check.
    pub key: String,
    /// What must hold for it.
    pub check: Check,
}

/// What a [`Compare`] checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The key does not exist.
    Absent,
    /// The key exists and was created at exactly this revision (election fencing).
    CreateRevision(i64),
    /// The key was last changed at exactly this revision (optimistic concurrency);
    /// 0 means the key does not exist.
    ModRevision(i64),
    /// The key exists and holds exactly this value.
    Value(Bytes),
}

impl Compare {
    /// `key` must not exist.
    pub fn absent(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            check: Check::Absent,
        }
    }

    /// `key` must exist with this create revision.
    pub fn create_revision(key: impl Into<String>, revision: i64) -> Self {
        Self {
            key: key.into(),
            check: Check::CreateRevision(revision),
        }
    }

    /// `key` must have this mod revision (0: must not exist).
    pub fn mod_revision(key: impl Into<String>, revision: i64) -> Self {
        Self {
            key: key.into(),
            check: Check::ModRevision(revision),
        }
    }

    /// `key` must exist and hold `value`.
    pub fn value(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            key: key.into(),
            check: Check::Value(value.into()),
        }
    }
}

/// A write inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Sets a key, optionally attached to a lease.
    Put {
        /// The key.
        key: String,
        /// The new value.
        value: Bytes,
        /// The lease to attach the key to.
        lease: Option<LeaseId>,
    },
    /// Deletes one key.
    Delete {
        /// The key.
        key: String,
    },
    /// Deletes every key under a prefix.
    DeletePrefix {
        /// The prefix.
        prefix: String,
    },
}

impl Op {
    /// A put without a lease.
    pub fn put(key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Op::Put {
            key: key.into(),
            value: value.into(),
            lease: None,
        }
    }

    /// A put attached to `lease`.
    pub fn put_with_lease(key: impl Into<String>, value: impl Into<Bytes>, lease: LeaseId) -> Self {
        Op::Put {
            key: key.into(),
            value: value.into(),
            lease: Some(lease),
        }
    }

    /// A delete of one key.
    pub fn delete(key: impl Into<String>) -> Self {
        Op::Delete { key: key.into() }
    }

    /// A delete of every key under `prefix`.
    pub fn delete_prefix(prefix: impl Into<String>) -> Self {
        Op::DeletePrefix {
            prefix: prefix.into(),
        }
    }
}

/// The most writes one transaction may carry; etcd's default `--max-txn-ops` is 128.
pub const MAX_TXN_OPS: usize = 128;

/// A transaction: if every compare holds, apply every op atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Txn {
    /// The conditions.
    pub compares: Vec<Compare>,
    /// The writes applied when every condition holds.
    pub ops: Vec<Op>,
}

impl Txn {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds conditions.
    pub fn when(mut self, compares: impl IntoIterator<Item = Compare>) -> Self {
        self.compares.extend(compares);
        self
    }

    /// Adds writes.
    pub fn then(mut self, ops: impl IntoIterator<Item = Op>) -> Self {
        self.ops.extend(ops);
        self
    }
}

/// What a transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnOutcome {
    /// Whether every compare held and the writes were applied.
    pub succeeded: bool,
    /// The store revision after the transaction; the writes' mod revision when they applied.
    pub revision: i64,
}

/// A granted lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseGrant {
    /// The lease id.
    pub id: LeaseId,
    /// The TTL the store granted.
    pub ttl: Duration,
}

/// The kind of change a watch event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created or changed.
    Put,
    /// The key was deleted (explicitly or by lease expiry).
    Delete,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// Put or delete.
    pub kind: EventKind,
    /// The key after the change; for deletes, the key with the deletion's mod revision.
    pub kv: KeyValue,
}

/// The events of one or more revisions, delivered together.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WatchBatch {
    /// The store revision when the batch was sent.
    pub revision: i64,
    /// The events, in revision order.
    pub events: Vec<WatchEvent>,
}

/// A live watch. It ends with an error ([`Error::Compacted`](crate::Error::Compacted),
/// [`Error::WatchCancelled`](crate::Error::WatchCancelled) or
/// [`Error::Unavailable`](crate::Error::Unavailable)) when the store can no longer continue it;
/// the caller re-lists and watches again.
pub struct WatchStream {
    inner: Pin<Box<dyn Stream<Item = Result<WatchBatch>> + Send>>,
}

impl WatchStream {
    /// Wraps a stream of batches.
    pub fn new(stream: impl Stream<Item = Result<WatchBatch>> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(stream),
        }
    }

    /// The next batch; `None` once the watch has ended. Cancel-safe.
    pub async fn next(&mut self) -> Option<Result<WatchBatch>> {
        self.inner.next().await
    }
}

impl fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchStream").finish_non_exhaustive()
    }
}

/// Access to a metadata store: etcd in production, [`MemoryStore`](crate::MemoryStore) in tests
/// and the single-process dev mode.
#[async_trait]
pub trait MetaStore: Send + Sync + fmt::Debug + 'static {
    /// Reads one key (linearizable).
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Reads every key under `prefix` at one revision (linearizable).
    async fn list(&self, prefix: &str) -> Result<Listing>;

    /// Applies `txn` if its compares hold. At most [`MAX_TXN_OPS`] ops.
    async fn txn(&self, txn: Txn) -> Result<TxnOutcome>;

    /// Grants a lease of (at least) `ttl`.
    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseGrant>;

    /// Refreshes a lease to its full TTL and returns that TTL;
    /// [`Error::LeaseExpired`](crate::Error::LeaseExpired) when it no longer exists.
    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration>;

    /// Revokes a lease, deleting its keys. Revoking an unknown lease is not an error.
    async fn revoke_lease(&self, lease: LeaseId) -> Result<()>;

    /// Watches every key under `prefix` from `start_revision` (inclusive).
    async fn watch(&self, prefix: &str, start_revision: i64) -> Result<WatchStream>;

    /// Discards history before `revision`; watches from older revisions fail with
    /// [`Error::Compacted`](crate::Error::Compacted).
    async fn compact(&self, revision: i64) -> Result<()>;
}
