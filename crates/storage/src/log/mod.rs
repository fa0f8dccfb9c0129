//! The partition log: one partition's chain of segments plus its offsets and epoch history.
//!
//! [`PartitionLog`] is the storage engine's public face. It owns:
//! - the segments, keyed by base offset: sealed ones and one active one (`segment`);
//! - the high watermark, log start offset and recovery point (`checkpoint`);
//! - the leader-epoch history (`epoch`) and the sparse indexes (`index`);
//! - the idempotent producers' recent batches (`producers`);
//!
//! Layering follows Kafka's: this module handles offsets, epochs and the replica view; segments
//! handle bytes; the state store handles indexes and checkpoints. Recovery lives in `loader`,
//! retention in `retention`, truncation in `truncate`.
//!
//! Thread-safety: every method takes `&self`. One mutex serializes writers and guards the segment
//! list; readers hold it only to snapshot what they will read, then read without it. All methods
//! block on disk I/O: async callers use a blocking thread.

mod append;
mod loader;
mod partition;
mod producers;
mod read;
mod retention;
mod truncate;

pub use append::AppendInfo;
pub use partition::PartitionLog;
pub use read::{ReadBound, ReadResult, TimestampOffset};
pub use retention::RetentionOutcome;
