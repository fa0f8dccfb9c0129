//! The storage crate's error type.

use std::io;
use std::path::PathBuf;

use strom_types::{LeaderEpoch, Offset};

/// A boxed error from an embedded engine, kept opaque so engine types never leak out of this crate.
pub type EngineError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done, e.g. "append to segment".
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The state store (RocksDB or its in-memory twin) failed.
    #[error("state store {op}: {source}")]
    State {
        /// What was being done, e.g. "write batch".
        op: &'static str,
        /// The underlying engine error.
        #[source]
        source: EngineError,
    },
    /// A value read back from the state store does not decode.
    #[error("state store entry in {area} is malformed: {reason}")]
    MalformedState {
        /// The state area (column family) holding the entry.
        area: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Input batches failed validation; nothing was appended.
    #[error("invalid record batch at byte {position} of the request: {source}")]
    InvalidBatch {
        /// Byte position of the offending batch within the appended buffer.
        position: usize,
        /// What the validator found.
        #[source]
        source: strom_record::Error,
    },
    /// The appended buffer held no batch at all.
    #[error("append of an empty record set")]
    EmptyAppend,
    /// A batch exceeds the partition's `max-batch-bytes`.
    #[error("record batch of {size} bytes exceeds the limit of {max} bytes")]
    BatchTooLarge {
        /// The batch size.
        size: usize,
        /// The configured limit.
        max: usize,
    },
    /// A read or seek asked for an offset outside `[log_start, log_end]`.
    #[error("offset {requested} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        /// The requested offset.
        requested: Offset,
        /// The first offset still in the log.
        log_start: Offset,
        /// The next offset to be written.
        log_end: Offset,
    },
    /// An idempotent batch's sequence does not continue its producer's last batch.
    #[error("producer {producer_id}: sequence {got} is out of order, expected {expected}")]
    OutOfOrderSequence {
        /// The producer id.
        producer_id: i64,
        /// The sequence the next batch must start with.
        expected: i32,
        /// The batch's base sequence.
        got: i32,
    },
    /// An idempotent batch carries an older producer epoch than the partition has seen.
    #[error("producer {producer_id}: epoch {epoch} is fenced by epoch {current}")]
    InvalidProducerEpoch {
        /// The producer id.
        producer_id: i64,
        /// The batch's producer epoch.
        epoch: i16,
        /// The newest epoch of this producer.
        current: i16,
    },
    /// An append of idempotent batches that cannot be checked as one.
    #[error("invalid idempotent append: {reason}")]
    InvalidIdempotentAppend {
        /// What is wrong.
        reason: &'static str,
    },
    /// A replicated append does not continue the log where it ends.
    #[error("replicated batch starts at offset {got}, but the log ends at {expected}")]
    NonContiguousAppend {
        /// The log end offset the batch had to start at.
        expected: Offset,
        /// The batch's base offset.
        got: Offset,
    },
    /// A replicated batch carries no partition leader epoch.
    #[error("replicated batch at offset {offset} has no partition leader epoch")]
    MissingLeaderEpoch {
        /// The batch's base offset.
        offset: Offset,
    },
    /// An append carries a leader epoch older than one already in the log.
    #[error("leader epoch {epoch} is older than the log's latest epoch {latest}")]
    StaleLeaderEpoch {
        /// The epoch of the append.
        epoch: LeaderEpoch,
        /// The newest epoch in the log.
        latest: LeaderEpoch,
    },
    /// Stored data failed its checksum or structure check on the read path.
    #[error("corrupt batch in {path} at byte {position}: {source}")]
    CorruptLog {
        /// The segment file.
        path: PathBuf,
        /// Byte position of the batch within the segment.
        position: u64,
        /// What the validator found.
        #[source]
        source: strom_record::Error,
    },
    /// The log should hold `offset` but the bytes where it belongs do not: a hole in the
    /// segment chain or a damaged segment.
    #[error("offset {offset} is missing from {path}")]
    MissingOffset {
        /// The offset looked for.
        offset: Offset,
        /// The segment (or partition directory) it should be in.
        path: PathBuf,
    },
    /// A configuration value is out of its allowed range.
    #[error("invalid log config {field}: {reason}")]
    InvalidConfig {
        /// The config key, in kebab case.
        field: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// An fsync of this partition failed; the log is out of service until the broker reopens
    /// it (which recovers from the last durable point).
    #[error("partition log {partition} is out of service after a failed fsync")]
    Failed {
        /// The partition, as `<topic>-<partition>`.
        partition: String,
    },
    /// The partition log has been deleted and can no longer be used.
    #[error("partition log {partition} has been deleted")]
    Deleted {
        /// The partition, as `<topic>-<partition>`.
        partition: String,
    },
}

impl Error {
    /// Whether the same call may succeed if retried later (the log itself is healthy).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Error::OffsetOutOfRange { .. })
    }

    /// Whether the local storage failed: a file system error, damaged or missing stored data,
    /// or a log taken out of service. Another replica may still serve the same request.
    pub fn is_storage_fault(&self) -> bool {
        matches!(
            self,
            Error::Io { .. }
                | Error::CorruptLog { .. }
                | Error::MissingOffset { .. }
                | Error::Failed { .. }
        )
    }

    /// Whether the error was caused by the caller's input rather than by the storage itself.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            Error::InvalidBatch { .. }
                | Error::EmptyAppend
                | Error::BatchTooLarge { .. }
                | Error::NonContiguousAppend { .. }
                | Error::MissingLeaderEpoch { .. }
                | Error::StaleLeaderEpoch { .. }
        )
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
