//! Shared fixtures for the storage integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use strom_record::{BatchBuilder, Compression, decode_records};
use strom_storage::{
    Clock, LogConfig, ManualClock, MemoryStateStore, PartitionLog, ReadBound, RocksStateStore,
    StateStore,
};
use strom_types::{Offset, PartitionId, TopicName, TopicPartition};
use tempfile::TempDir;

/// Which state store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    Rocks,
}

pub const KINDS: [Kind; 2] = [Kind::Memory, Kind::Rocks];

/// A data directory, a state store and a manual clock, reopenable like a restarting broker.
pub struct Fixture {
    pub dir: TempDir,
    pub kind: Kind,
    pub clock: ManualClock,
    store: Option<Arc<dyn StateStore>>,
}

pub const START_MS: i64 = 1_700_000_000_000;

impl Fixture {
    pub fn new(kind: Kind) -> Self {
        let mut fixture = Self {
            dir: tempfile::tempdir().unwrap(),
            kind,
            clock: ManualClock::new(START_MS),
            store: None,
        };
        fixture.reopen_store();
        fixture
    }

    /// Drops and reopens the state store (RocksDB only; the memory store lives as long as the fixture).
    pub fn reopen_store(&mut self) {
        match self.kind {
            Kind::Memory => {
                if self.store.is_none() {
                    self.store = Some(Arc::new(MemoryStateStore::new()));
                }
            }
            Kind::Rocks => {
                self.store = None;
                let path = self.dir.path().join("state");
                self.store = Some(Arc::new(RocksStateStore::open(path).unwrap()));
            }
        }
    }

    pub fn store(&self) -> Arc<dyn StateStore> {
        Arc::clone(self.store.as_ref().unwrap())
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.dir.path().join("logs")
    }

    pub fn open(&self, config: LogConfig) -> PartitionLog {
        self.try_open(config).unwrap()
    }

    pub fn try_open(&self, config: LogConfig) -> strom_storage::Result<PartitionLog> {
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        PartitionLog::open(&self.logs_dir(), tp(), config, self.store(), clock)
    }

    pub fn partition_dir(&self) -> PathBuf {
        self.logs_dir().join(tp().dir_name())
    }

    /// Segment files of the partition, sorted by name.
    pub fn segment_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.partition_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "log"))
            .collect();
        files.sort();
        files
    }
}

pub fn tp() -> TopicPartition {
    TopicPartition::new(TopicName::new("events").unwrap(), PartitionId::new(0))
}

/// A batch of records with the given values, all stamped `timestamp`.
pub fn batch(values: &[&str], timestamp: i64) -> Bytes {
    batch_with(Compression::None, values, timestamp)
}

pub fn batch_with(compression: Compression, values: &[&str], timestamp: i64) -> Bytes {
    let mut builder = BatchBuilder::new(compression);
    for value in values {
        builder
            .append(timestamp, None, Some(value.as_bytes()), &[])
            .unwrap();
    }
    builder.build().unwrap()
}

/// A batch of `count` records of `size` bytes each; record `i` is filled with byte `seed + i`.
pub fn sized_batch(count: usize, size: usize, seed: u8, timestamp: i64) -> Bytes {
    let mut builder = BatchBuilder::new(Compression::None);
    for i in 0..count {
        let value = vec![seed.wrapping_add(i as u8); size];
        builder.append(timestamp, None, Some(&value), &[]).unwrap();
    }
    builder.build().unwrap()
}

/// Every (offset, value) readable from `from` up to `bound`, reading in small steps.
pub fn read_all_from(log: &PartitionLog, from: Offset, bound: ReadBound) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut next = from;
    loop {
        let result = log.read(next, 4096, bound).unwrap();
        if result.records.is_empty() {
            break;
        }
        let mut position = 0;
        while position < result.records.len() {
            let header = strom_record::BatchHeader::parse(&result.records[position..]).unwrap();
            let bytes = &result.records[position..position + header.total_size()];
            for record in decode_records(bytes).unwrap() {
                if record.offset >= next.get() {
                    out.push((
                        record.offset,
                        record.value.map(|v| v.to_vec()).unwrap_or_default(),
                    ));
                }
            }
            position += header.total_size();
        }
        next = result.next_offset;
    }
    out
}

pub fn read_all(log: &PartitionLog) -> Vec<(i64, Vec<u8>)> {
    read_all_from(log, log.log_start_offset().unwrap(), ReadBound::LogEnd)
}

/// A config with small segments for multi-segment tests.
pub fn small_segments(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 256,
        retention_ms: None,
        ..LogConfig::default()
    }
}
