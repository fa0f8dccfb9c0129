//! Retention by time and size, driven by a manual clock.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strom_storage::{Clock, Error, LogConfig, ReadBound};
use strom_types::{LeaderEpoch, Offset};

const E1: LeaderEpoch = LeaderEpoch::new(1);
const HOUR: i64 = 3_600_000;

fn config(retention_ms: Option<i64>, retention_bytes: Option<u64>) -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 128,
        retention_ms,
        retention_bytes,
        ..LogConfig::default()
    }
}

/// Appends `n` single-record batches of ~100 bytes, all timestamped `ts`.
fn fill(log: &strom_storage::PartitionLog, n: usize, ts: i64) {
    for i in 0..n {
        log.append_as_leader(&batch(&[&format!("{i:0>80}")], ts), E1)
            .unwrap();
    }
}

#[test]
fn time_retention_deletes_only_expired_segments_below_the_high_watermark() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(config(Some(HOUR), None));
        fill(&log, 30, START_MS);
        let old_segments = log.segment_count().unwrap() - 1;
        fill(&log, 30, START_MS + 2 * HOUR);
        f.clock.set(START_MS + 2 * HOUR);
        // Nothing is committed yet: retention must not touch anything.
        assert!(log.apply_retention().unwrap().deleted_segments.is_empty());
        log.update_high_watermark(log.log_end_offset().unwrap())
            .unwrap();
        let outcome = log.apply_retention().unwrap();
        assert!(
            outcome.deleted_segments.len() >= old_segments - 1,
            "{outcome:?}"
        );
        let start = log.log_start_offset().unwrap();
        assert_eq!(outcome.log_start_offset, start);
        assert!(start > Offset::ZERO && start <= Offset::new(30));
        assert!(matches!(
            log.read(Offset::ZERO, 100, ReadBound::HighWatermark),
            Err(Error::OffsetOutOfRange { .. })
        ));
        assert_eq!(read_all(&log).last().unwrap().0, 59);
        // Later records have not expired.
        assert!(log.apply_retention().unwrap().deleted_segments.is_empty());
    }
}

#[test]
fn an_expired_active_segment_is_rolled_and_deleted() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(LogConfig {
            retention_ms: Some(HOUR),
            ..LogConfig::default()
        });
        fill(&log, 5, START_MS);
        log.update_high_watermark(Offset::new(5)).unwrap();
        f.clock.set(START_MS + HOUR + 1);
        let outcome = log.apply_retention().unwrap();
        assert_eq!(outcome.deleted_segments, vec![Offset::ZERO]);
        assert_eq!(log.log_start_offset().unwrap(), Offset::new(5));
        assert_eq!(log.log_end_offset().unwrap(), Offset::new(5));
        assert_eq!(f.segment_files().len(), 1);
        let next = log
            .append_as_leader(&batch(&["new"], START_MS + HOUR), E1)
            .unwrap();
        assert_eq!(next.first_offset, Offset::new(5));
    }
}

#[test]
fn size_retention_keeps_the_newest_bytes() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(config(None, Some(3000)));
        fill(&log, 100, START_MS);
        log.update_high_watermark(log.log_end_offset().unwrap())
            .unwrap();
        let before = log.size_bytes().unwrap();
        let outcome = log.apply_retention().unwrap();
        let after = log.size_bytes().unwrap();
        assert_eq!(before - after, outcome.deleted_bytes);
        assert!(after >= 3000, "never deletes below the limit: {after}");
        assert!(
            after < 3000 + 1024,
            "deletes down to within one segment of the limit: {after}"
        );
        let starts: Vec<i64> = read_all(&log).iter().map(|r| r.0).collect();
        assert_eq!(*starts.last().unwrap(), 99);
        assert_eq!(starts[0], log.log_start_offset().unwrap().get());
    }
}

#[test]
fn log_start_only_moves_forward_and_survives_reopen() {
    let mut f = Fixture::new(Kind::Rocks);
    {
        let log = f.open(config(None, None));
        fill(&log, 50, START_MS);
        log.update_high_watermark(Offset::new(50)).unwrap();
        assert!(matches!(
            log.advance_log_start(Offset::new(51)),
            Err(Error::OffsetOutOfRange { .. })
        ));
        assert_eq!(
            log.advance_log_start(Offset::new(20)).unwrap(),
            Offset::new(20)
        );
        assert_eq!(
            log.advance_log_start(Offset::new(10)).unwrap(),
            Offset::new(20),
            "never backwards"
        );
        let outcome = log.apply_retention().unwrap();
        assert!(!outcome.deleted_segments.is_empty());
        assert_eq!(outcome.log_start_offset, Offset::new(20));
        log.close().unwrap();
    }
    f.reopen_store();
    let log = f.open(config(None, None));
    assert_eq!(log.log_start_offset().unwrap(), Offset::new(20));
    assert_eq!(read_all(&log).first().unwrap().0, 20);
}

#[test]
fn records_without_timestamps_age_by_file_time() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(LogConfig {
            retention_ms: Some(HOUR),
            ..LogConfig::default()
        });
        // Timestamp -1: no record carries a time. The clock says "now" is when the file was written.
        f.clock.set(strom_storage::SystemClock.now_ms());
        log.append_as_leader(&batch(&["untimed"], -1), E1).unwrap();
        log.update_high_watermark(Offset::new(1)).unwrap();
        assert!(
            log.apply_retention().unwrap().deleted_segments.is_empty(),
            "a fresh file is not expired"
        );
        f.clock.advance(HOUR + 60_000);
        assert_eq!(
            log.apply_retention().unwrap().deleted_segments,
            vec![Offset::ZERO]
        );
    }
}
