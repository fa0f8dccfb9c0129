//! The error type of the metadata layer.

use std::time::Duration;

/// Why a metadata operation failed.
///
/// A fenced transaction that does not apply is not an error: it comes back as
/// [`TxnOutcome::succeeded`](crate::TxnOutcome) `== false`, and the caller decides what the lost
/// race means.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The store could not be reached or did not answer in time. Retriable.
    #[error("metadata store unavailable during {operation}: {reason}")]
    Unavailable {
        /// What was being done, e.g. "txn" or "watch".
        operation: &'static str,
        /// What the client library or transport reported.
        reason: String,
    },
    /// The lease does not exist any more: it expired or was revoked.
    #[error("lease {lease:x} has expired or was revoked")]
    LeaseExpired {
        /// The lease id.
        lease: i64,
    },
    /// A watch asked for history that the store has compacted away; re-list and watch again.
    #[error("revision {requested} is compacted (store compacted up to {compacted})")]
    Compacted {
        /// The start revision that was asked for.
        requested: i64,
        /// The store's compaction revision.
        compacted: i64,
    },
    /// The store ended a watch (e.g. on its own restart); re-list and watch again.
    #[error("the metadata store cancelled a watch on {prefix}")]
    WatchCancelled {
        /// The watched prefix.
        prefix: String,
    },
    /// The store rejected a request as malformed or too large.
    #[error("the metadata store rejected a request: {reason}")]
    Rejected {
        /// What the store reported.
        reason: String,
    },
    /// The embedded store's files could not be read or written. Not retriable: a persisted
    /// in-memory store refuses every call after a failed write.
    #[error("metadata store files at {path}: {reason}")]
    Disk {
        /// The database directory.
        path: String,
        /// What RocksDB or the file system reported.
        reason: String,
    },
    /// A lease TTL outside what the store supports.
    #[error("lease ttl {ttl:?} is not supported: {reason}")]
    InvalidTtl {
        /// The requested TTL.
        ttl: Duration,
        /// Why it is not supported.
        reason: &'static str,
    },
    /// A stored value could not be decoded.
    #[error("malformed value under {key}: {reason}")]
    Decode {
        /// The key whose value is malformed.
        key: String,
        /// What the decoder reported.
        reason: String,
    },
    /// A value could not be encoded.
    #[error("cannot encode a metadata value: {reason}")]
    Encode {
        /// What the encoder reported.
        reason: String,
    },
    /// This process no longer holds the role it was acting in (its election key or lease is
    /// gone), so it must stop writing.
    #[error("no longer the holder of {key} at epoch {epoch}")]
    NotHolder {
        /// The election key.
        key: String,
        /// The epoch that was lost.
        epoch: i64,
    },
    /// The operation was abandoned because the process is shutting down or stepping down.
    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// Whether retrying the same operation later may succeed.
    pub fn is_retriable(&self) -> bool {
        matches!(
            self,
            Error::Unavailable { .. } | Error::Compacted { .. } | Error::WatchCancelled { .. }
        )
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
