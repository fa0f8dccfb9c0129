//! Partition log behaviour: appends, reads, rolling, lookups, truncation, reopening.
//! Every test runs against both state stores.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strom_record::{BatchHeader, Compression, validate_batch};
use strom_storage::{Error, LogConfig, ReadBound};
use strom_types::{LeaderEpoch, Offset};

const E1: LeaderEpoch = LeaderEpoch::new(1);

fn values(records: &[(i64, Vec<u8>)]) -> Vec<String> {
    records
        .iter()
        .map(|(_, v)| String::from_utf8(v.clone()).unwrap())
        .collect()
}

#[test]
fn leader_appends_get_dense_offsets() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(LogConfig::default());
        let a = log
            .append_as_leader(&batch(&["a", "b", "c"], START_MS), E1)
            .unwrap();
        assert_eq!(
            (a.first_offset.get(), a.last_offset.get(), a.record_count),
            (0, 2, 3)
        );
        let b = log.append_as_leader(&batch(&["d"], START_MS), E1).unwrap();
        assert_eq!((b.first_offset.get(), b.last_offset.get()), (3, 3));
        let mut two = batch(&["e", "f"], START_MS).to_vec();
        two.extend_from_slice(&batch(&["g"], START_MS));
        let c = log.append_as_leader(&two, E1).unwrap();
        assert_eq!(c.batch_base_offsets, vec![Offset::new(4), Offset::new(6)]);
        assert_eq!(log.log_end_offset().unwrap(), Offset::new(7));
        let all = read_all(&log);
        assert_eq!(
            all.iter().map(|r| r.0).collect::<Vec<_>>(),
            (0..7).collect::<Vec<_>>()
        );
        assert_eq!(values(&all), ["a", "b", "c", "d", "e", "f", "g"]);
    }
}

#[test]
fn leader_append_stamps_offset_and_epoch_without_touching_the_input() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(LogConfig::default());
        log.append_as_leader(&batch(&["x"], START_MS), E1).unwrap();
        let input = batch(&["y", "z"], START_MS);
        let before = input.to_vec();
        log.append_as_leader(&input, LeaderEpoch::new(4)).unwrap();
        assert_eq!(input.to_vec(), before);
        log.update_high_watermark(Offset::new(3)).unwrap();
        let read = log
            .read(Offset::new(1), 1 << 20, ReadBound::HighWatermark)
            .unwrap();
        let header = validate_batch(&read.records).unwrap();
        assert_eq!(header.base_offset, 1);
        assert_eq!(header.partition_leader_epoch, 4);
        assert_eq!(log.latest_epoch().unwrap(), Some(LeaderEpoch::new(4)));
    }
}

#[test]
fn reads_respect_bounds() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(LogConfig::default());
        for i in 0..5 {
            log.append_as_leader(&batch(&[&format!("v{i}")], START_MS), E1)
                .unwrap();
        }
        let empty = log
            .read(Offset::new(0), 1 << 20, ReadBound::HighWatermark)
            .unwrap();
        assert!(
            empty.records.is_empty(),
            "nothing is below a zero high watermark"
        );
        assert_eq!(empty.log_end_offset, Offset::new(5));
        log.update_high_watermark(Offset::new(3)).unwrap();
        let upto_hw = read_all_from(&log, Offset::new(0), ReadBound::HighWatermark);
        assert_eq!(values(&upto_hw), ["v0", "v1", "v2"]);
        assert!(
            log.read(Offset::new(5), 100, ReadBound::LogEnd)
                .unwrap()
                .records
                .is_empty()
        );
        assert!(matches!(
            log.read(Offset::new(6), 100, ReadBound::LogEnd),
            Err(Error::OffsetOutOfRange { .. })
        ));
        assert_eq!(
            log.update_high_watermark(Offset::new(99)).unwrap(),
            Offset::new(5),
            "HW is clamped to the log end"
        );
    }
}

#[test]
fn read_from_inside_a_batch_returns_the_whole_batch() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(LogConfig::default());
        log.append_as_leader(&batch(&["a", "b", "c", "d"], START_MS), E1)
            .unwrap();
        let result = log
            .read(Offset::new(2), 1 << 20, ReadBound::LogEnd)
            .unwrap();
        let header = validate_batch(&result.records).unwrap();
        assert_eq!((header.base_offset, header.records_count), (0, 4));
        assert_eq!(result.next_offset, Offset::new(4));
    }
}

#[test]
fn an_oversized_first_batch_is_still_returned_whole() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(LogConfig::default());
        let big = sized_batch(10, 1000, 1, START_MS);
        log.append_as_leader(&big, E1).unwrap();
        log.append_as_leader(&sized_batch(1, 10, 2, START_MS), E1)
            .unwrap();
        let result = log.read(Offset::new(0), 100, ReadBound::LogEnd).unwrap();
        assert_eq!(result.records.len(), big.len());
        assert_eq!(result.next_offset, Offset::new(10));
        let both = log
            .read(Offset::new(0), 1 << 20, ReadBound::LogEnd)
            .unwrap();
        assert_eq!(both.next_offset, Offset::new(11));
    }
}

#[test]
fn segments_roll_by_size_and_reads_cross_them() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(small_segments(4096));
        let mut expected = Vec::new();
        for i in 0..200u32 {
            let value = format!("record-{i:05}-{}", "x".repeat(40));
            log.append_as_leader(&batch(&[&value], START_MS), E1)
                .unwrap();
            expected.push(value);
        }
        assert!(
            log.segment_count().unwrap() > 3,
            "{} segments",
            log.segment_count().unwrap()
        );
        for file in f.segment_files() {
            assert!(std::fs::metadata(&file).unwrap().len() <= 4096);
        }
        assert_eq!(values(&read_all(&log)), expected);
        // A read starting mid-log finds the right segment and position through the index.
        let tail = read_all_from(&log, Offset::new(137), ReadBound::LogEnd);
        assert_eq!(tail.first().unwrap().0, 137);
        assert_eq!(values(&tail), expected[137..]);
    }
}

#[test]
fn segments_roll_by_age() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let config = LogConfig {
            segment_ms: 60_000,
            ..LogConfig::default()
        };
        let log = f.open(config);
        log.append_as_leader(&batch(&["a"], START_MS), E1).unwrap();
        f.clock.advance(59_999);
        log.append_as_leader(&batch(&["b"], START_MS), E1).unwrap();
        assert_eq!(log.segment_count().unwrap(), 1);
        f.clock.advance(1);
        log.append_as_leader(&batch(&["c"], START_MS), E1).unwrap();
        assert_eq!(
            log.segment_base_offsets().unwrap(),
            vec![Offset::new(0), Offset::new(2)]
        );
    }
}

#[test]
fn offsets_by_timestamp() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(small_segments(2048));
        // Record i has timestamp START + 10 * i; two records per batch.
        for i in 0..100i64 {
            let mut builder = strom_record::BatchBuilder::new(Compression::None);
            for j in 0..2 {
                let ts = START_MS + 10 * (2 * i + j);
                builder
                    .append(ts, None, Some(format!("{}", 2 * i + j).as_bytes()), &[])
                    .unwrap();
            }
            log.append_as_leader(&builder.build().unwrap(), E1).unwrap();
        }
        log.update_high_watermark(Offset::new(200)).unwrap();
        assert!(log.segment_count().unwrap() > 2);
        let at = |ts| {
            log.offset_for_timestamp(ts)
                .unwrap()
                .map(|t| (t.offset.get(), t.timestamp))
        };
        assert_eq!(at(0), Some((0, START_MS)));
        assert_eq!(at(START_MS + 10 * 57), Some((57, START_MS + 570)));
        assert_eq!(
            at(START_MS + 10 * 57 - 3),
            Some((57, START_MS + 570)),
            "first record at or after"
        );
        assert_eq!(at(START_MS + 10 * 199), Some((199, START_MS + 1990)));
        assert_eq!(at(START_MS + 10 * 200), None);
        log.update_high_watermark(Offset::new(100)).unwrap();
        assert_eq!(
            at(START_MS + 10 * 150),
            None,
            "records above the HW are not visible"
        );
    }
}

#[test]
fn truncation_cuts_whole_batches_across_segments() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(small_segments(1024));
        for i in 0..60 {
            let epoch = LeaderEpoch::new(1 + i / 20);
            log.append_as_leader(
                &batch(&[&format!("{i}a"), &format!("{i}b")], START_MS),
                epoch,
            )
            .unwrap();
        }
        let segments_before = log.segment_count().unwrap();
        log.update_high_watermark(Offset::new(120)).unwrap();
        // Offset 51 is inside the batch [50, 51]: that whole batch goes.
        assert_eq!(log.truncate_to(Offset::new(51)).unwrap(), Offset::new(50));
        assert_eq!(log.log_end_offset().unwrap(), Offset::new(50));
        assert_eq!(log.high_watermark().unwrap(), Offset::new(50));
        assert!(log.segment_count().unwrap() < segments_before);
        let epochs: Vec<(i32, i64)> = log
            .epoch_history()
            .unwrap()
            .iter()
            .map(|e| (e.epoch.get(), e.start_offset.get()))
            .collect();
        assert_eq!(
            epochs,
            vec![(1, 0), (2, 40)],
            "epoch 3 started at 80, after the new end"
        );
        let all = read_all(&log);
        assert_eq!(all.len(), 50);
        assert_eq!(all.last().unwrap().1, b"24b");
        // Appends continue densely, and the log survives a reopen.
        let next = log
            .append_as_leader(&batch(&["after"], START_MS), LeaderEpoch::new(5))
            .unwrap();
        assert_eq!(next.first_offset, Offset::new(50));
        log.close().unwrap();
        drop(log);
        let mut f = f;
        f.reopen_store();
        let log = f.open(small_segments(1024));
        assert_eq!(log.log_end_offset().unwrap(), Offset::new(51));
        assert_eq!(read_all(&log).last().unwrap().1, b"after");
    }
}

#[test]
fn truncation_below_the_log_start_resets_the_log() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(LogConfig::default());
        log.append_as_leader(&batch(&["a", "b"], START_MS), E1)
            .unwrap();
        log.truncate_fully_and_start_at(Offset::new(1000)).unwrap();
        assert_eq!(log.log_start_offset().unwrap(), Offset::new(1000));
        assert_eq!(log.log_end_offset().unwrap(), Offset::new(1000));
        assert!(log.epoch_history().unwrap().is_empty());
        let info = log.append_as_leader(&batch(&["c"], START_MS), E1).unwrap();
        assert_eq!(info.first_offset, Offset::new(1000));
        assert_eq!(f.segment_files().len(), 1);
    }
}

#[test]
fn follower_appends_keep_offsets_and_learn_epochs() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let leader_fixture = Fixture::new(kind);
        let leader = leader_fixture.open(LogConfig::default());
        leader
            .append_as_leader(&batch(&["a", "b"], START_MS), LeaderEpoch::new(1))
            .unwrap();
        leader
            .append_as_leader(&batch(&["c"], START_MS), LeaderEpoch::new(3))
            .unwrap();
        let fetched = leader
            .read(Offset::new(0), 1 << 20, ReadBound::LogEnd)
            .unwrap()
            .records;

        let follower = f.open(LogConfig::default());
        let info = follower.append_as_follower(&fetched).unwrap();
        assert_eq!((info.first_offset.get(), info.last_offset.get()), (0, 2));
        let epochs: Vec<(i32, i64)> = follower
            .epoch_history()
            .unwrap()
            .iter()
            .map(|e| (e.epoch.get(), e.start_offset.get()))
            .collect();
        assert_eq!(epochs, vec![(1, 0), (3, 2)]);
        assert!(matches!(
            follower.append_as_follower(&fetched),
            Err(Error::NonContiguousAppend { expected, got }) if expected == Offset::new(3) && got == Offset::new(0)
        ));
        let end = follower
            .epoch_end_offset(LeaderEpoch::new(2))
            .unwrap()
            .unwrap();
        assert_eq!((end.epoch.get(), end.end_offset.get()), (1, 2));
        // A leader may not append with an epoch older than the log's newest.
        assert!(matches!(
            follower.append_as_leader(&batch(&["x"], START_MS), LeaderEpoch::new(2)),
            Err(Error::StaleLeaderEpoch { .. })
        ));
        assert_eq!(follower.log_end_offset().unwrap(), Offset::new(3));
    }
}

#[test]
fn follower_rejects_batches_without_epoch() {
    let f = Fixture::new(Kind::Memory);
    let log = f.open(LogConfig::default());
    let raw = batch(&["a"], START_MS);
    assert_eq!(BatchHeader::parse(&raw).unwrap().partition_leader_epoch, -1);
    assert!(matches!(
        log.append_as_follower(&raw),
        Err(Error::MissingLeaderEpoch { .. })
    ));
    assert_eq!(log.log_end_offset().unwrap(), Offset::new(0));
}

#[test]
fn clean_reopen_keeps_offsets_checkpoints_and_epochs() {
    let mut f = Fixture::new(Kind::Rocks);
    {
        let log = f.open(small_segments(2048));
        for i in 0..100 {
            log.append_as_leader(
                &batch(&[&format!("{i}")], START_MS + i),
                LeaderEpoch::new(1 + (i / 50) as i32),
            )
            .unwrap();
        }
        log.update_high_watermark(Offset::new(90)).unwrap();
        log.close().unwrap();
    }
    f.reopen_store();
    let log = f.open(small_segments(2048));
    assert_eq!(log.log_end_offset().unwrap(), Offset::new(100));
    assert_eq!(log.high_watermark().unwrap(), Offset::new(90));
    assert_eq!(log.recovery_point().unwrap(), Offset::new(100));
    assert_eq!(log.epoch_history().unwrap().len(), 2);
    assert_eq!(read_all(&log).len(), 100);
    assert_eq!(
        log.offset_for_timestamp(START_MS + 42)
            .unwrap()
            .unwrap()
            .offset,
        Offset::new(42)
    );
}

#[test]
fn compressed_batches_are_stored_as_sent() {
    for compression in Compression::ALL {
        let f = Fixture::new(Kind::Memory);
        let log = f.open(LogConfig::default());
        let input = batch_with(compression, &["alpha", "beta", "gamma"], START_MS);
        log.append_as_leader(&input, E1).unwrap();
        let read = log
            .read(Offset::new(0), 1 << 20, ReadBound::LogEnd)
            .unwrap();
        assert_eq!(read.records.len(), input.len());
        assert_eq!(
            read.records[16..],
            input[16..],
            "{compression:?}: bytes after the rewritten prefix are untouched"
        );
        assert_eq!(values(&read_all(&log)), ["alpha", "beta", "gamma"]);
    }
}

#[test]
fn flush_moves_the_recovery_point_and_flush_messages_triggers_it() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(LogConfig {
            flush_messages: Some(5),
            ..LogConfig::default()
        });
        log.append_as_leader(&batch(&["a", "b"], START_MS), E1)
            .unwrap();
        assert_eq!(log.recovery_point().unwrap(), Offset::new(0));
        log.append_as_leader(&batch(&["c", "d", "e"], START_MS), E1)
            .unwrap();
        assert_eq!(log.recovery_point().unwrap(), Offset::new(5));
        log.append_as_leader(&batch(&["f"], START_MS), E1).unwrap();
        log.flush().unwrap();
        assert_eq!(log.recovery_point().unwrap(), Offset::new(6));
    }
}

#[test]
fn deleted_logs_refuse_further_use() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(LogConfig::default());
        log.append_as_leader(&batch(&["a"], START_MS), E1).unwrap();
        log.delete().unwrap();
        assert!(!f.partition_dir().exists());
        assert!(matches!(log.log_end_offset(), Err(Error::Deleted { .. })));
        // A new log of the same partition starts from scratch.
        let again = f.open(LogConfig::default());
        assert_eq!(again.log_end_offset().unwrap(), Offset::new(0));
        assert!(again.epoch_history().unwrap().is_empty());
    }
}

#[test]
fn the_append_path_refuses_records_that_do_not_decode() {
    // A batch whose header, length and CRC are consistent but whose records area does not
    // decode: the leader decodes every record before appending, so it is refused and nothing
    // is stored; a consumer would never meet a stored batch it cannot read.
    let f = Fixture::new(Kind::Memory);
    let log = f.open(LogConfig::default());
    let mut bytes = batch(&["0123456789"], START_MS).to_vec();
    let records_start = strom_record::HEADER_SIZE;
    for b in &mut bytes[records_start..] {
        *b = 0xff;
    }
    let crc = strom_record::compute_crc(&bytes);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    assert!(strom_record::validate_batch(&bytes).is_ok());
    assert!(strom_record::decode_records(&bytes).is_err());
    let refused = log.append_as_leader(&bytes, E1);
    assert!(
        matches!(refused, Err(Error::InvalidBatch { position: 0, .. })),
        "{refused:?}"
    );
    assert_eq!(log.log_end_offset().unwrap(), Offset::new(0));
}

#[test]
fn truncating_into_the_batch_holding_a_mid_batch_log_start_keeps_the_log_consistent() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(LogConfig::default());
        let values: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        log.append_as_leader(&batch(&refs, START_MS), E1).unwrap();
        log.update_high_watermark(Offset::new(10)).unwrap();
        log.advance_log_start(Offset::new(5)).unwrap();
        // The batch [0, 9] holds offset 7 and must go whole; the log cannot end before its start.
        let end = log.truncate_to(Offset::new(7)).unwrap();
        assert_eq!(end, Offset::new(5));
        assert_eq!(log.log_start_offset().unwrap(), Offset::new(5));
        assert_eq!(log.log_end_offset().unwrap(), Offset::new(5));
        assert_eq!(
            log.update_high_watermark(Offset::new(9)).unwrap(),
            Offset::new(5)
        );
        let info = log.append_as_leader(&batch(&["x"], START_MS), E1).unwrap();
        assert_eq!(info.first_offset, Offset::new(5));
    }
}
