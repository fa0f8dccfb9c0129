//! Bad input to appends: each malformation gets its own typed error and nothing is appended.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use strom_record::{Error as RecordError, compute_crc};
use strom_storage::{Error, LogConfig, PartitionLog};
use strom_types::{LeaderEpoch, Offset};

const E1: LeaderEpoch = LeaderEpoch::new(1);

fn fixed_crc(mut bytes: Vec<u8>) -> Vec<u8> {
    let crc = compute_crc(&bytes);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    bytes
}

fn assert_nothing_appended(f: &Fixture, log: &PartitionLog, size_before: u64) {
    assert_eq!(log.log_end_offset().unwrap(), Offset::new(1));
    assert_eq!(
        std::fs::metadata(&f.segment_files()[0]).unwrap().len(),
        size_before
    );
}

/// A named malformed input and the validator error it must produce.
type Case = (&'static str, Vec<u8>, fn(&RecordError) -> bool);

#[test]
fn each_malformation_has_its_own_error_and_appends_nothing() {
    let good = batch(&["one", "two"], START_MS).to_vec();
    let cases: Vec<Case> = vec![
        ("truncated", good[..40].to_vec(), |e| {
            matches!(e, RecordError::Truncated { .. })
        }),
        (
            "length mismatch",
            {
                let mut b = good.clone();
                let len = (b.len() - 12) as i32 + 100;
                b[8..12].copy_from_slice(&len.to_be_bytes());
                b
            },
            |e| matches!(e, RecordError::LengthMismatch { .. }),
        ),
        (
            "length shorter than the data",
            {
                let mut b = good.clone();
                let len = (b.len() - 12) as i32 - 1;
                b[8..12].copy_from_slice(&len.to_be_bytes());
                b
            },
            |e| matches!(e, RecordError::CrcMismatch { .. }),
        ),
        (
            "wrong magic",
            {
                let mut b = good.clone();
                b[16] = 1;
                b
            },
            |e| matches!(e, RecordError::InvalidMagic { .. }),
        ),
        (
            "crc mismatch",
            {
                let mut b = good.clone();
                let n = b.len();
                b[n - 1] ^= 0xff;
                b
            },
            |e| matches!(e, RecordError::CrcMismatch { .. }),
        ),
        (
            "record count inconsistent",
            fixed_crc({
                let mut b = good.clone();
                b[57..61].copy_from_slice(&7i32.to_be_bytes());
                b
            }),
            |e| matches!(e, RecordError::InconsistentRecordCount { .. }),
        ),
        (
            "offset delta inconsistent",
            fixed_crc({
                let mut b = good.clone();
                b[23..27].copy_from_slice(&0i32.to_be_bytes());
                b
            }),
            |e| {
                matches!(
                    e,
                    RecordError::InconsistentRecordCount { .. }
                        | RecordError::InvalidOffsetDelta { .. }
                )
            },
        ),
        (
            "unknown compression",
            fixed_crc({
                let mut b = good.clone();
                b[22] |= 0x07;
                b
            }),
            |e| matches!(e, RecordError::UnknownCompression { .. }),
        ),
    ];
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(LogConfig::default());
        log.append_as_leader(&batch(&["seed"], START_MS), E1)
            .unwrap();
        let size_before = std::fs::metadata(&f.segment_files()[0]).unwrap().len();
        for (name, bytes, expected) in &cases {
            match log.append_as_leader(bytes, E1) {
                Err(Error::InvalidBatch { source, .. }) => {
                    assert!(expected(&source), "{name}: got {source:?}")
                }
                other => panic!("{name}: expected InvalidBatch, got {other:?}"),
            }
            assert_nothing_appended(&f, &log, size_before);
            // The same bytes after a valid batch: still all-or-nothing.
            let mut combined = batch(&["fine"], START_MS).to_vec();
            combined.extend_from_slice(bytes);
            assert!(
                matches!(log.append_as_leader(&combined, E1), Err(Error::InvalidBatch { position, .. }) if position > 0),
                "{name}"
            );
            assert_nothing_appended(&f, &log, size_before);
        }
        assert!(matches!(
            log.append_as_leader(&[], E1),
            Err(Error::EmptyAppend)
        ));
        assert_nothing_appended(&f, &log, size_before);
    }
}

#[test]
fn batches_over_the_limit_are_rejected() {
    let f = Fixture::new(Kind::Memory);
    let log = f.open(LogConfig {
        max_batch_bytes: 1000,
        ..LogConfig::default()
    });
    let big = sized_batch(4, 300, 0, START_MS);
    assert!(matches!(
        log.append_as_leader(&big, E1),
        Err(Error::BatchTooLarge { max: 1000, .. })
    ));
    assert_eq!(log.log_end_offset().unwrap(), Offset::ZERO);
}
