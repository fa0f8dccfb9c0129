//! Recovers a partition log from segment files holding a valid prefix followed by arbitrary
//! bytes, as a broker does after an unclean stop, and checks what recovery kept.
//!
//! Each run writes three valid batches (offsets 0 to 5) at the start of the first segment, then
//! the fuzz input, split between that segment and an optional second one. The first input byte
//! picks the layout: one segment, a second segment starting where the first one's valid batches
//! end, or a second one at a small arbitrary base offset; its top bit asks for the input's
//! batches to get consecutive base offsets and matching CRCs, so mutations reach the checks
//! behind those two. The second byte says where the input splits.
//!
//! The log is opened with a fresh in-memory state store, so every segment is scanned. Opening
//! may fail but must not panic. Once open, the log must hold exactly the batches that chain on
//! from offset 0 before the first torn, corrupt or out-of-place one, the valid prefix included;
//! reading from the log start to the log end must return them back to back, with dense offsets
//! and each passing `validate_batch`; and a new append must land at the old log end.
//!
//! Recovery fsyncs what it scanned: point `TMPDIR` at a tmpfs (e.g. `/dev/shm`) for speed.

#![no_main]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use strom_record::{
    BatchBuilder, BatchHeader, Compression, batches, peek_batch_size, set_base_offset, update_crc,
    validate_batch,
};
use strom_storage::{
    Clock, LogConfig, ManualClock, MemoryStateStore, PartitionLog, ReadBound, StateStore,
};
use strom_types::{LeaderEpoch, Offset, PartitionId, TopicName, TopicPartition};

/// The offset after the valid prefix.
const PREFIX_END: i64 = 6;
/// The time the log's clock shows, and the records' timestamp.
const START_MS: i64 = 1_700_000_000_000;
/// How many bytes one read asks for: small, so a log takes several reads.
const READ_BYTES: usize = 512;

/// The partition every run recovers.
fn tp() -> TopicPartition {
    let topic = TopicName::new("fuzz").expect("a valid topic name");
    TopicPartition::new(topic, PartitionId::new(0))
}

/// The file name of the segment at `base`, as the log names it.
fn segment_name(base: i64) -> String {
    format!("{base:020}.log")
}

/// Small segments and index intervals so appends roll and reads use the index; no forced fsync.
fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        retention_ms: None,
        index_interval_bytes: 128,
        flush_messages: None,
        flush_ms: None,
        ..LogConfig::default()
    }
}

/// One valid batch of `values` at `base`, stamped with leader epoch `epoch`.
fn build_batch(base: i64, epoch: i32, compression: Compression, values: &[&str]) -> Vec<u8> {
    let mut builder = BatchBuilder::new(compression)
        .base_offset(base)
        .partition_leader_epoch(epoch);
    for value in values {
        builder
            .append(START_MS, None, Some(value.as_bytes()), &[])
            .expect("a one-letter record fits a batch");
    }
    builder.build().expect("a non-empty batch builds").to_vec()
}

/// The valid batches at the start of the first segment: offsets 0 to 5 in three batches, two
/// leader epochs, one batch compressed.
fn prefix() -> &'static [u8] {
    static PREFIX: OnceLock<Vec<u8>> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let mut prefix = build_batch(0, 1, Compression::None, &["a", "b"]);
        prefix.extend(build_batch(2, 1, Compression::Lz4, &["c"]));
        prefix.extend(build_batch(3, 2, Compression::None, &["d", "e", "f"]));
        let (_, end) = valid_chain(&prefix, 0, &mut Vec::new());
        assert_eq!(end, PREFIX_END, "the prefix chains from 0 to PREFIX_END");
        prefix
    })
}

/// The batch appended after recovery.
fn new_batch() -> &'static [u8] {
    static BATCH: OnceLock<Vec<u8>> = OnceLock::new();
    BATCH.get_or_init(|| build_batch(0, -1, Compression::None, &["new"]))
}

/// The segment files of one run.
struct Layout {
    /// The first segment, at base offset 0: the prefix, then part of the input.
    first: Vec<u8>,
    /// A second segment: its base offset (never 0) and its bytes.
    second: Option<(i64, Vec<u8>)>,
}

/// Lays the fuzz input out on disk as the module docs describe.
fn layout(data: &[u8]) -> Layout {
    let (mode, rest) = data.split_first().map_or((0, data), |(m, r)| (*m, r));
    let (split, rest) = rest.split_first().map_or((0, rest), |(s, r)| (*s, r));
    let repair = mode & 0x80 != 0;
    let mut first = prefix().to_vec();
    if mode & 0b11 == 0 {
        first.extend_from_slice(rest);
        if repair {
            repair_batches(&mut first[prefix().len()..], PREFIX_END);
        }
        return Layout {
            first,
            second: None,
        };
    }
    let (head, tail) = rest.split_at(rest.len() * usize::from(split) / 255);
    first.extend_from_slice(head);
    let mut end = PREFIX_END;
    if repair {
        end = repair_batches(&mut first[prefix().len()..], PREFIX_END);
    }
    let base = match mode & 0b11 {
        1 => end,
        _ => 1 + i64::from((mode >> 2) & 0x1f),
    };
    let mut second = tail.to_vec();
    if repair {
        repair_batches(&mut second, base);
    }
    // A base of 0 would overwrite the first segment; a negative one names no segment.
    let second = (base > 0).then_some((base, second));
    Layout { first, second }
}

/// Gives each length-delimited batch at the start of `bytes` the next base offset from `next`
/// and a matching CRC; returns the offset after the last one.
fn repair_batches(bytes: &mut [u8], mut next: i64) -> i64 {
    let mut at = 0;
    while let Some(Ok(size)) = peek_batch_size(&bytes[at..]) {
        let Some(batch) = bytes.get_mut(at..at + size) else {
            break;
        };
        set_base_offset(batch, next);
        update_crc(batch);
        let Ok(header) = BatchHeader::parse(batch) else {
            break;
        };
        next = header.next_offset();
        at += size;
    }
    next
}

/// Appends to `kept` the batches at the start of `bytes` that are whole, valid and continue
/// the offsets from `next`. Returns whether they are all of `bytes`, and the offset after them.
fn valid_chain(bytes: &[u8], mut next: i64, kept: &mut Vec<u8>) -> (bool, i64) {
    let mut used = 0;
    for item in batches(bytes) {
        let Ok((header, batch)) = item else { break };
        if header.base_offset != next {
            break;
        }
        kept.extend_from_slice(batch);
        used += batch.len();
        next = header.next_offset();
    }
    (used == bytes.len(), next)
}

/// What recovery must keep, as its module docs state it: the valid chain of the first segment,
/// continued into the second only if the first ends cleanly where the second begins. Returns
/// the kept batches' bytes and the offset after them.
fn expected_log(layout: &Layout) -> (Vec<u8>, i64) {
    let mut kept = Vec::new();
    let (clean, mut end) = valid_chain(&layout.first, 0, &mut kept);
    if let Some((base, bytes)) = &layout.second
        && clean
        && *base == end
    {
        end = valid_chain(bytes, *base, &mut kept).1;
    }
    (kept, end)
}

/// Reads every batch from `from` to `end`, checking each and that offsets run densely from
/// batch to batch; returns the bytes read.
fn read_all(log: &PartitionLog, from: Offset, end: Offset) -> Vec<u8> {
    let mut stored = Vec::new();
    let mut next = from;
    while next < end {
        let read = log
            .read(next, READ_BYTES, ReadBound::LogEnd)
            .expect("every offset below the log end is readable");
        assert!(
            !read.records.is_empty(),
            "a read at {next} below the log end {end} returned nothing"
        );
        for item in batches(&read.records) {
            let (header, batch) = item.expect("reads return whole batches");
            assert_eq!(
                validate_batch(batch).ok(),
                Some(header),
                "read a batch that fails validation"
            );
            assert_eq!(header.base_offset, next.get(), "batch offsets are dense");
            check_read_inside(log, &header);
            next = Offset::new(header.next_offset());
        }
        assert_eq!(
            read.next_offset, next,
            "a read's next offset follows its last batch"
        );
        stored.extend_from_slice(&read.records);
    }
    assert_eq!(next, end, "the batches end at the log end");
    stored
}

/// A read from the last offset of a batch must return that batch first.
fn check_read_inside(log: &PartitionLog, header: &BatchHeader) {
    if header.last_offset() == header.base_offset {
        return;
    }
    let read = log
        .read(Offset::new(header.last_offset()), 1, ReadBound::LogEnd)
        .expect("an offset inside a stored batch is readable");
    let first = BatchHeader::parse(&read.records).expect("a read returns whole batches");
    assert_eq!(
        first.base_offset, header.base_offset,
        "a read returns the batch holding its offset"
    );
}

/// Opens the log under `logs_dir` and checks it against `layout`.
fn check_recovery(logs_dir: &Path, layout: &Layout) {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(START_MS));
    let Ok(log) = PartitionLog::open(logs_dir, tp(), config(), store, clock) else {
        return;
    };
    let log_start = log.log_start_offset().expect("an open log answers");
    let log_end = log.log_end_offset().expect("an open log answers");
    assert_eq!(
        log_start,
        Offset::ZERO,
        "the first segment starts the log at 0"
    );
    assert!(
        log_end >= log_start,
        "log end {log_end} is below log start {log_start}"
    );
    assert!(
        log_end.get() >= PREFIX_END,
        "recovery cut into the valid prefix"
    );
    let (expected, expected_end) = expected_log(layout);
    assert_eq!(
        log_end.get(),
        expected_end,
        "recovery keeps exactly the valid chain"
    );
    let stored = read_all(&log, log_start, log_end);
    assert!(
        stored.starts_with(prefix()),
        "the valid prefix is stored as written"
    );
    assert_eq!(
        stored, expected,
        "the stored batches are the valid chain as written"
    );

    let epoch = log
        .latest_epoch()
        .expect("an open log answers")
        .unwrap_or(LeaderEpoch::new(1));
    let info = log
        .append_as_leader(new_batch(), epoch)
        .expect("a recovered log takes appends at its latest epoch");
    assert_eq!(
        info.first_offset, log_end,
        "the append lands at the old log end"
    );
    assert_eq!(
        log.log_end_offset().expect("an open log answers"),
        log_end.next()
    );
}

fuzz_target!(|data: &[u8]| {
    let layout = layout(data);
    let root = tempfile::tempdir().expect("the temp directory is writable");
    let dir = root.path().join(tp().dir_name());
    std::fs::create_dir(&dir).expect("the partition directory can be created");
    std::fs::write(dir.join(segment_name(0)), &layout.first)
        .expect("the first segment can be written");
    if let Some((base, bytes)) = &layout.second {
        std::fs::write(dir.join(segment_name(*base)), bytes)
            .expect("the second segment can be written");
    }
    check_recovery(root.path(), &layout);
    root.close().expect("the temp directory can be removed");
});
