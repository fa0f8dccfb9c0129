//! Idempotent producers: duplicates, sequence gaps, fencing, and a producer table that
//! survives reopening (clean and after a crash), truncation and follower replication.
//! Every test runs against both state stores.
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::*;
use strom_record::{BatchBuilder, Compression};
use strom_storage::{Error, LogConfig, ReadBound};
use strom_types::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence};

const E1: LeaderEpoch = LeaderEpoch::new(1);
const E2: LeaderEpoch = LeaderEpoch::new(2);

/// A batch of `count` records from producer `id` at `epoch`, starting at sequence `seq`.
fn idempotent(id: i64, epoch: i16, seq: i32, count: usize) -> Bytes {
    let mut builder = BatchBuilder::new(Compression::None).producer(
        ProducerId::new(id),
        ProducerEpoch::new(epoch),
        Sequence::new(seq),
    );
    for i in 0..count {
        let value = format!("p{id}-s{}", seq as usize + i);
        builder
            .append(START_MS, None, Some(value.as_bytes()), &[])
            .unwrap();
    }
    builder.build().unwrap()
}

#[test]
fn a_retried_batch_is_answered_with_its_original_offsets() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(LogConfig::default());
        log.append_as_leader(&batch(&["x"], START_MS), E1).unwrap();
        let first = log.append_as_leader(&idempotent(7, 0, 0, 3), E1).unwrap();
        assert_eq!(first.first_offset, Offset::new(1));
        assert!(!first.duplicate);
        log.append_as_leader(&idempotent(7, 0, 3, 2), E1).unwrap();
        let retry = log.append_as_leader(&idempotent(7, 0, 0, 3), E1).unwrap();
        assert!(retry.duplicate);
        assert_eq!(
            (retry.first_offset, retry.last_offset),
            (Offset::new(1), Offset::new(3))
        );
        assert_eq!(log.log_end_offset().unwrap(), Offset::new(6));
    }
}

#[test]
fn gaps_old_epochs_and_mixed_appends_are_refused_without_appending() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(LogConfig::default());
        log.append_as_leader(&idempotent(7, 1, 0, 2), E1).unwrap();
        let gap = log.append_as_leader(&idempotent(7, 1, 5, 1), E1);
        assert!(matches!(
            gap,
            Err(Error::OutOfOrderSequence {
                expected: 2,
                got: 5,
                ..
            })
        ));
        let fenced = log.append_as_leader(&idempotent(7, 0, 2, 1), E1);
        assert!(matches!(
            fenced,
            Err(Error::InvalidProducerEpoch {
                epoch: 0,
                current: 1,
                ..
            })
        ));
        let mut two = idempotent(7, 1, 2, 1).to_vec();
        two.extend_from_slice(&idempotent(7, 1, 3, 1));
        assert!(matches!(
            log.append_as_leader(&two, E1),
            Err(Error::InvalidIdempotentAppend { .. })
        ));
        assert_eq!(log.log_end_offset().unwrap(), Offset::new(2));
        // A new producer epoch starts over at sequence 0.
        log.append_as_leader(&idempotent(7, 2, 0, 1), E1).unwrap();
        assert_eq!(log.producers().unwrap()[0].producer_epoch.get(), 2);
    }
}

#[test]
fn producer_state_survives_clean_and_unclean_reopening() {
    for kind in KINDS {
        for clean in [true, false] {
            let f = Fixture::new(kind);
            {
                // Small segments: rolls take snapshots, and replay covers the rest.
                let log = f.open(small_segments(300));
                for seq in (0..40).step_by(4) {
                    log.append_as_leader(&idempotent(7, 0, seq, 4), E1).unwrap();
                    log.append_as_leader(&idempotent(9, 0, seq, 4), E1).unwrap();
                }
                assert!(log.segment_count().unwrap() > 2);
                log.flush().unwrap();
                if clean {
                    log.close().unwrap();
                }
            }
            let log = f.open(small_segments(300));
            let entries = log.producers().unwrap();
            assert_eq!(entries.len(), 2, "clean: {clean}");
            let retry = log.append_as_leader(&idempotent(9, 0, 36, 4), E1).unwrap();
            assert!(retry.duplicate, "clean: {clean}");
            assert_eq!(retry.first_offset, Offset::new(76));
            assert!(matches!(
                log.append_as_leader(&idempotent(7, 0, 44, 4), E1),
                Err(Error::OutOfOrderSequence { expected: 40, .. })
            ));
        }
    }
}

#[test]
fn truncation_rewinds_the_producer_table() {
    for kind in KINDS {
        let f = Fixture::new(kind);
        let log = f.open(small_segments(300));
        for seq in (0..20).step_by(2) {
            log.append_as_leader(&idempotent(7, 0, seq, 2), E1).unwrap();
        }
        // Cut the last two batches (sequences 16..20); the producer continues at 16 again.
        log.truncate_to(Offset::new(16)).unwrap();
        assert_eq!(log.log_end_offset().unwrap(), Offset::new(16));
        let again = log.append_as_leader(&idempotent(7, 0, 16, 2), E2).unwrap();
        assert!(!again.duplicate);
        assert_eq!(again.first_offset, Offset::new(16));
        log.truncate_fully_and_start_at(Offset::new(100)).unwrap();
        assert!(log.producers().unwrap().is_empty());
    }
}

#[test]
fn followers_learn_producers_from_replicated_batches() {
    for kind in KINDS {
        let leader_fixture = Fixture::new(kind);
        let leader = leader_fixture.open(LogConfig::default());
        let follower_fixture = Fixture::new(kind);
        let follower = follower_fixture.open(LogConfig::default());
        for seq in [0, 3, 6] {
            leader
                .append_as_leader(&idempotent(5, 0, seq, 3), E1)
                .unwrap();
        }
        let read = leader
            .read(Offset::ZERO, 1 << 20, ReadBound::LogEnd)
            .unwrap();
        follower.append_as_follower(&read.records).unwrap();
        // After a leader change the follower, now leader, recognises the retry.
        let retry = follower
            .append_as_leader(&idempotent(5, 0, 6, 3), E2)
            .unwrap();
        assert!(retry.duplicate);
        assert_eq!(retry.first_offset, Offset::new(6));
        assert_eq!(follower.producers().unwrap(), leader.producers().unwrap());
    }
}
