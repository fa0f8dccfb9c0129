//! Strom's storage engine: partition logs on local disk, with indexes and checkpoints in a
//! key-value state store.
//!
//! ```text
//! <data_dir>/
//!   logs/<topic>-<partition>/00000000000000000000.log   segments: RecordBatch v2 bytes, as appended
//!   state/                                             one RocksDB: indexes, epochs, producer
//!                                                      state, checkpoints, segment summaries
//! ```
//!
//! - [`PartitionLog`] appends (as leader or follower), reads whole batches, finds offsets by
//!   timestamp, truncates, applies retention and recovers after a crash. It also keeps the
//!   partition's idempotent producers (the last batches of each), checks leader appends against
//!   them and snapshots them to the state store.
//! - [`StateStore`] is the state store interface; [`RocksStateStore`] and [`MemoryStateStore`]
//!   implement it.
//! - [`Clock`] supplies time, so segment age and retention are testable.
//!
//! The crate does no networking and blocks on disk I/O: async callers run it on blocking threads.

mod checkpoint;
mod clock;
mod config;
mod epoch;
mod error;
mod index;
pub mod log;
mod producer_state;
mod producer_table;
mod segment;
pub mod state;

pub use checkpoint::Checkpoint;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{LogConfig, MIN_SEGMENT_BYTES};
pub use epoch::{EpochEndOffset, EpochEntry};
pub use error::{EngineError, Error, Result};
pub use log::{AppendInfo, PartitionLog, ReadBound, ReadResult, RetentionOutcome, TimestampOffset};
pub use producer_state::{MAX_REMEMBERED_BATCHES, ProducerBatch, ProducerEntry};
pub use producer_table::PRODUCER_EXPIRATION_MS;
#[cfg(feature = "rocksdb")]
pub use state::RocksStateStore;
pub use state::{Area, MemoryStateStore, StateStore, WriteBatch, WriteOp};
