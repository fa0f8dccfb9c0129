//! Append and sequential-read throughput of one partition log.
//!
//! Batches are 16 KiB, of 1 KiB or 100 B records, written through the leader append path (header
//! and CRC validation, offset assignment) into a RocksDB-backed log. Each append sample writes
//! 256 MiB into a fresh log, buffered or with an fsync every 1 MiB; compare the buffered figure
//! with `make disk-baseline`, which runs fio in the same shape (16 KiB writes, 256 MiB files).
//! `append/raw_file_write_baseline` does the same writes with plain `write` calls under this
//! harness, so the log's own cost is the gap between the two. The read benchmark reads a
//! 256 MiB log from the page cache, 1 MiB per read, CRC-checking every batch.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use strom_record::{BatchBuilder, Compression};
use strom_storage::{LogConfig, PartitionLog, ReadBound, RocksStateStore, StateStore, SystemClock};
use strom_types::{LeaderEpoch, Offset, PartitionId, TopicName, TopicPartition};

const BATCH_BYTES: usize = 16 * 1024;
const TOTAL_BYTES: usize = 256 * 1024 * 1024;
const FSYNC_EVERY: usize = 1024 * 1024;

/// A batch of exactly 16 KiB: records of `record_size` bytes, the last one sized to fill it, so
/// every append is one 16 KiB write, the same write size `make disk-baseline` gives fio.
fn batch(record_size: usize) -> Bytes {
    const TS: i64 = 1_700_000_000_000;
    let mut builder = BatchBuilder::new(Compression::None);
    let value = vec![0x5a; record_size];
    // Leave room for a filler record of at least a few bytes.
    while builder.estimated_size_with(TS, None, Some(&value), &[]) + 16 <= BATCH_BYTES {
        builder.append(TS, None, Some(&value), &[]).unwrap();
    }
    let filler = (0..BATCH_BYTES)
        .rev()
        .map(|len| vec![0x5a; len])
        .find(|v| builder.estimated_size_with(TS, None, Some(v), &[]) == BATCH_BYTES)
        .unwrap();
    builder.append(TS, None, Some(&filler), &[]).unwrap();
    let batch = builder.build().unwrap();
    assert_eq!(batch.len(), BATCH_BYTES);
    batch
}

fn open_log(dir: &std::path::Path) -> PartitionLog {
    let store: Arc<dyn StateStore> = Arc::new(RocksStateStore::open(dir.join("state")).unwrap());
    let tp = TopicPartition::new(TopicName::new("bench").unwrap(), PartitionId::new(0));
    PartitionLog::open(
        &dir.join("logs"),
        tp,
        LogConfig::default(),
        store,
        Arc::new(SystemClock),
    )
    .unwrap()
}

/// Appends TOTAL_BYTES of `batch` into a fresh log, timing only the appends (and fsyncs).
fn append_run(batch: &Bytes, fsync: bool) -> Duration {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let log = open_log(dir.path());
    let count = TOTAL_BYTES / batch.len();
    let per_sync = (FSYNC_EVERY / batch.len()).max(1);
    let start = Instant::now();
    for i in 0..count {
        log.append_as_leader(batch, LeaderEpoch::new(1)).unwrap();
        if fsync && (i + 1) % per_sync == 0 {
            log.flush().unwrap();
        }
    }
    let elapsed = start.elapsed();
    drop(log);
    elapsed
}

/// Writes TOTAL_BYTES in 16 KiB `write` calls to a fresh file: the same I/O pattern as
/// `append_run` with none of the log's work, measured under the same conditions.
fn raw_write_run(batch: &Bytes) -> Duration {
    use std::io::Write;
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let mut file = std::fs::File::create(dir.path().join("raw.log")).unwrap();
    let count = TOTAL_BYTES / batch.len();
    let start = Instant::now();
    for _ in 0..count {
        file.write_all(batch).unwrap();
    }
    start.elapsed()
}

fn bench_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    {
        let batch = batch(1024);
        group.throughput(Throughput::Bytes(
            (TOTAL_BYTES / batch.len() * batch.len()) as u64,
        ));
        group.bench_function("raw_file_write_baseline", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| raw_write_run(&batch)).sum());
        });
    }
    for record_size in [1024usize, 100] {
        let batch = batch(record_size);
        let bytes = (TOTAL_BYTES / batch.len() * batch.len()) as u64;
        group.throughput(Throughput::Bytes(bytes));
        for (mode, fsync) in [("buffered", false), ("fsync_1MiB", true)] {
            let id = BenchmarkId::new(mode, format!("{record_size}B_records"));
            group.bench_function(id, |b| {
                b.iter_custom(|iters| (0..iters).map(|_| append_run(&batch, fsync)).sum());
            });
        }
    }
    group.finish();
}

fn bench_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("sequential_read");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for record_size in [1024usize, 100] {
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let log = open_log(dir.path());
        let batch = batch(record_size);
        let count = TOTAL_BYTES / batch.len();
        for _ in 0..count {
            log.append_as_leader(&batch, LeaderEpoch::new(1)).unwrap();
        }
        let end = log.log_end_offset().unwrap();
        let total = log.size_bytes().unwrap();
        group.throughput(Throughput::Bytes(total));
        group.bench_function(
            BenchmarkId::new("page_cache", format!("{record_size}B_records")),
            |b| {
                b.iter(|| {
                    let mut next = Offset::ZERO;
                    let mut read = 0usize;
                    while next < end {
                        let result = log.read(next, 1 << 20, ReadBound::LogEnd).unwrap();
                        read += result.records.len();
                        next = result.next_offset;
                    }
                    assert_eq!(read as u64, total);
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_append, bench_read);
criterion_main!(benches);
