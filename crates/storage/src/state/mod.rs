//! The broker's local state: sparse indexes, leader-epoch history, producer state, checkpoints.
//!
//! All of it lives in one key-value store per broker, behind the [`StateStore`] trait. The store
//! is split into named areas ([`Area`], column families in RocksDB). Keys of every partition start
//! with that partition's prefix ([`keys::partition_prefix`]), so one store serves all partitions.
//!
//! Two implementations exist: [`RocksStateStore`] for brokers and [`MemoryStateStore`] for unit
//! tests and the single-process dev mode. Both pass the same conformance suite.
//!
//! Everything here is derived from or checkpoints the segment files; writes are not synced to disk
//! until [`StateStore::sync`] is called, which the log does before it moves its recovery point.

pub(crate) mod keys;
mod memory;
#[cfg(feature = "rocksdb")]
mod rocks;

#[cfg(test)]
mod conformance;

pub use memory::MemoryStateStore;
#[cfg(feature = "rocksdb")]
pub use rocks::RocksStateStore;

use crate::Result;

/// A named area of the state store (a RocksDB column family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Area {
    /// Sparse offset index: `(partition, offset)` -> `(segment base, byte position)`.
    OffsetIndex,
    /// Sparse time index: `(partition, max timestamp)` -> `offset`.
    TimeIndex,
    /// Leader-epoch history: `(partition, epoch)` -> `start offset`.
    LeaderEpochs,
    /// Idempotent producer snapshots: `(partition, offset)` -> encoded producer entries.
    ProducerState,
    /// Per-partition checkpoints: high watermark, log start, recovery point.
    Checkpoints,
    /// Sealed segment summaries: `(partition, base offset)` -> next offset, max timestamp, size.
    Segments,
    /// Not partition state: the keys of the single-process dev mode's embedded cluster
    /// metadata store, which keeps a state store of its own.
    Metadata,
}

impl Area {
    /// Every area, in a fixed order.
    pub const ALL: [Area; 7] = [
        Area::OffsetIndex,
        Area::TimeIndex,
        Area::LeaderEpochs,
        Area::ProducerState,
        Area::Checkpoints,
        Area::Segments,
        Area::Metadata,
    ];

    /// The areas holding partition state, keyed by partition prefix.
    pub const PARTITION: [Area; 6] = [
        Area::OffsetIndex,
        Area::TimeIndex,
        Area::LeaderEpochs,
        Area::ProducerState,
        Area::Checkpoints,
        Area::Segments,
    ];

    /// The area's name, used as the RocksDB column family name.
    pub const fn name(self) -> &'static str {
        match self {
            Area::OffsetIndex => "offset_index",
            Area::TimeIndex => "time_index",
            Area::LeaderEpochs => "leader_epochs",
            Area::ProducerState => "producer_state",
            Area::Checkpoints => "checkpoints",
            Area::Segments => "segments",
            Area::Metadata => "metadata",
        }
    }
}

/// One change in a [`WriteBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    /// Set `key` to `value`.
    Put {
        /// The area.
        area: Area,
        /// The key.
        key: Vec<u8>,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove `key` if present.
    Delete {
        /// The area.
        area: Area,
        /// The key.
        key: Vec<u8>,
    },
    /// Remove every key in `[start, end)`.
    DeleteRange {
        /// The area.
        area: Area,
        /// First key removed.
        start: Vec<u8>,
        /// First key kept after the range.
        end: Vec<u8>,
    },
}

/// A set of changes applied atomically by [`StateStore::write`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteBatch {
    ops: Vec<WriteOp>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a put.
    pub fn put(&mut self, area: Area, key: Vec<u8>, value: Vec<u8>) -> &mut Self {
        self.ops.push(WriteOp::Put { area, key, value });
        self
    }

    /// Adds a delete.
    pub fn delete(&mut self, area: Area, key: Vec<u8>) -> &mut Self {
        self.ops.push(WriteOp::Delete { area, key });
        self
    }

    /// Adds a range delete of `[start, end)`.
    pub fn delete_range(&mut self, area: Area, start: Vec<u8>, end: Vec<u8>) -> &mut Self {
        self.ops.push(WriteOp::DeleteRange { area, start, end });
        self
    }

    /// Whether the batch holds no change.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The changes, in the order they were added.
    pub fn ops(&self) -> &[WriteOp] {
        &self.ops
    }

    /// Appends every change of `other`.
    pub fn extend(&mut self, other: WriteBatch) {
        self.ops.extend(other.ops);
    }
}

/// A key with its value, as returned by scans.
pub type Entry = (Vec<u8>, Vec<u8>);

/// An ordered key-value store with named areas, atomic batches and explicit durability.
///
/// Keys are ordered bytewise. Implementations are thread-safe; calls block (RocksDB does disk I/O),
/// so async callers run them on a blocking thread.
pub trait StateStore: Send + Sync + std::fmt::Debug + 'static {
    /// The value stored under `key`.
    fn get(&self, area: Area, key: &[u8]) -> Result<Option<Vec<u8>>>;

    /// The entry with the greatest key `k` such that `k <= key` and `k` starts with `prefix`.
    fn floor(&self, area: Area, prefix: &[u8], key: &[u8]) -> Result<Option<Entry>>;

    /// The entry with the smallest key `k` such that `k >= key` and `k` starts with `prefix`.
    fn ceiling(&self, area: Area, prefix: &[u8], key: &[u8]) -> Result<Option<Entry>>;

    /// Every entry whose key starts with `prefix`, in key order.
    fn scan_prefix(&self, area: Area, prefix: &[u8]) -> Result<Vec<Entry>>;

    /// Applies every change in `batch` atomically: after a crash either all or none are visible.
    fn write(&self, batch: WriteBatch) -> Result<()>;

    /// Makes every write that returned before this call durable across a machine crash.
    fn sync(&self) -> Result<()>;
}
