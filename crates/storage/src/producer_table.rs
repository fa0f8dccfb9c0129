//! The live producer table of one partition: which idempotent producers wrote to it, at which
//! epoch, and their last few batches.
//!
//! The leader [checks](ProducerTable::check) every idempotent batch before appending it: an older
//! producer epoch is fenced, a batch it already holds is a duplicate (answered with the original
//! offsets), and a sequence that does not continue the producer's last batch is out of order.
//! Every replica [records](ProducerTable::record) the batches it appends, leader or follower, so a
//! new leader already knows what the old one accepted. A producer this table does not know is
//! accepted at any sequence: its state may have expired or been deleted with old segments.

use std::collections::HashMap;

use strom_record::BatchHeader;
use strom_types::{Offset, ProducerEpoch, ProducerId, Sequence};

use crate::producer_state::{MAX_REMEMBERED_BATCHES, ProducerBatch, ProducerEntry};
use crate::{Error, Result};

/// How long a producer's state is kept after its last batch, as Kafka's
/// `producer.id.expiration.ms` default (one day).
pub const PRODUCER_EXPIRATION_MS: i64 = 24 * 60 * 60 * 1000;

/// What the leader should do with an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Append it.
    Append,
    /// It was appended before, as this batch: answer with its offsets, append nothing.
    Duplicate(ProducerBatch),
}

/// The producers of one partition. See the [module docs](self).
#[derive(Debug, Clone, Default)]
pub(crate) struct ProducerTable {
    entries: HashMap<i64, ProducerEntry>,
}

/// The sequence of a batch's last record: sequences wrap from `i32::MAX` to 0.
pub(crate) fn last_sequence(base: i32, last_offset_delta: i32) -> i32 {
    if base > i32::MAX - last_offset_delta {
        base - (i32::MAX - last_offset_delta) - 1
    } else {
        base + last_offset_delta
    }
}

/// The sequence that must follow `last`.
fn next_sequence(last: i32) -> i32 {
    if last == i32::MAX { 0 } else { last + 1 }
}

/// Whether a batch was written by an idempotent producer.
pub(crate) fn is_idempotent(header: &BatchHeader) -> bool {
    header.producer_id >= 0
}

impl ProducerTable {
    /// A table holding `entries` (from a snapshot).
    pub(crate) fn from_entries(entries: Vec<ProducerEntry>) -> Self {
        Self {
            entries: entries
                .into_iter()
                .map(|e| (e.producer_id.get(), e))
                .collect(),
        }
    }

    /// Every entry, ordered by producer id.
    pub(crate) fn entries(&self) -> Vec<ProducerEntry> {
        let mut entries: Vec<ProducerEntry> = self.entries.values().cloned().collect();
        entries.sort_by_key(|e| e.producer_id);
        entries
    }

    /// How many producers the table knows.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Decides what the leader does with an idempotent batch (see the [module docs](self)).
    pub(crate) fn check(&self, header: &BatchHeader) -> Result<Verdict> {
        let (id, epoch, base) = (
            header.producer_id,
            header.producer_epoch,
            header.base_sequence,
        );
        if epoch < 0 || base < 0 {
            return Err(Error::InvalidIdempotentAppend {
                reason: "a batch with a producer id needs a producer epoch and a base sequence",
            });
        }
        let Some(entry) = self.entries.get(&id) else {
            return Ok(Verdict::Append);
        };
        let current = entry.producer_epoch.get();
        if epoch < current {
            return Err(Error::InvalidProducerEpoch {
                producer_id: id,
                epoch,
                current,
            });
        }
        if epoch > current {
            // A new epoch starts its sequences over.
            return if base == 0 {
                Ok(Verdict::Append)
            } else {
                Err(Error::OutOfOrderSequence {
                    producer_id: id,
                    expected: 0,
                    got: base,
                })
            };
        }
        let last = last_sequence(base, header.last_offset_delta);
        if let Some(batch) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence.get() == base && b.last_sequence.get() == last)
        {
            return Ok(Verdict::Duplicate(*batch));
        }
        match entry.batches.last() {
            Some(previous) if base != next_sequence(previous.last_sequence.get()) => {
                Err(Error::OutOfOrderSequence {
                    producer_id: id,
                    expected: next_sequence(previous.last_sequence.get()),
                    got: base,
                })
            }
            _ => Ok(Verdict::Append),
        }
    }

    /// Remembers an appended batch (its header carrying the offsets it was given). Batches
    /// without a producer id, or with a malformed one, are ignored.
    pub(crate) fn record(&mut self, header: &BatchHeader) {
        let (Ok(id), Ok(epoch), Ok(first), Ok(first_offset), Ok(last_offset)) = (
            ProducerId::try_new(header.producer_id),
            ProducerEpoch::try_new(header.producer_epoch),
            Sequence::try_new(header.base_sequence),
            Offset::try_new(header.base_offset),
            Offset::try_new(header.last_offset()),
        ) else {
            return;
        };
        if id.get() < 0 || epoch.get() < 0 || first.get() < 0 {
            return;
        }
        let last = Sequence::new(last_sequence(first.get(), header.last_offset_delta));
        let entry = self
            .entries
            .entry(id.get())
            .or_insert_with(|| ProducerEntry {
                producer_id: id,
                producer_epoch: epoch,
                last_timestamp: header.max_timestamp,
                batches: Vec::with_capacity(MAX_REMEMBERED_BATCHES),
            });
        if entry.producer_epoch != epoch {
            entry.producer_epoch = epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = entry.last_timestamp.max(header.max_timestamp);
        if entry.batches.len() == MAX_REMEMBERED_BATCHES {
            entry.batches.remove(0);
        }
        entry.batches.push(ProducerBatch {
            first_sequence: first,
            last_sequence: last,
            first_offset,
            last_offset,
            max_timestamp: header.max_timestamp,
        });
    }

    /// Forgets producers whose latest batch is more than `max_idle_ms` older than `now_ms`.
    pub(crate) fn expire(&mut self, now_ms: i64, max_idle_ms: i64) {
        self.entries
            .retain(|_, e| now_ms.saturating_sub(e.last_timestamp) <= max_idle_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(id: i64, epoch: i16, base_seq: i32, records: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: Default::default(),
            last_offset_delta: records - 1,
            base_timestamp: 1_000,
            max_timestamp: 1_000,
            producer_id: id,
            producer_epoch: epoch,
            base_sequence: base_seq,
            records_count: records,
        }
    }

    fn table_with(batches: &[(i32, i32, i64)]) -> ProducerTable {
        let mut table = ProducerTable::default();
        for &(seq, n, offset) in batches {
            table.record(&header(7, 0, seq, n, offset));
        }
        table
    }

    #[test]
    fn unknown_producers_are_accepted_at_any_sequence() {
        let table = ProducerTable::default();
        assert_eq!(
            table.check(&header(7, 0, 0, 1, 0)).ok(),
            Some(Verdict::Append)
        );
        assert_eq!(
            table.check(&header(7, 0, 42, 1, 0)).ok(),
            Some(Verdict::Append)
        );
    }

    #[test]
    fn next_sequence_is_appended_and_a_gap_is_out_of_order() {
        let table = table_with(&[(0, 5, 0), (5, 5, 5)]);
        assert_eq!(
            table.check(&header(7, 0, 10, 3, -1)).ok(),
            Some(Verdict::Append)
        );
        assert!(matches!(
            table.check(&header(7, 0, 11, 3, -1)),
            Err(Error::OutOfOrderSequence {
                expected: 10,
                got: 11,
                ..
            })
        ));
    }

    #[test]
    fn each_of_the_last_five_batches_is_a_duplicate_and_older_ones_are_not() {
        let table = table_with(&[
            (0, 2, 0),
            (2, 2, 2),
            (4, 2, 4),
            (6, 2, 6),
            (8, 2, 8),
            (10, 2, 10),
        ]);
        for seq in [2, 4, 6, 8, 10] {
            match table.check(&header(7, 0, seq, 2, -1)) {
                Ok(Verdict::Duplicate(batch)) => {
                    assert_eq!(batch.first_offset.get(), i64::from(seq));
                    assert_eq!(batch.last_offset.get(), i64::from(seq) + 1);
                }
                other => panic!("sequence {seq}: {other:?}"),
            }
        }
        assert!(matches!(
            table.check(&header(7, 0, 0, 2, -1)),
            Err(Error::OutOfOrderSequence { .. })
        ));
    }

    #[test]
    fn an_older_epoch_is_fenced_and_a_newer_one_starts_at_zero() {
        let mut table = ProducerTable::default();
        table.record(&header(7, 3, 0, 1, 0));
        assert!(matches!(
            table.check(&header(7, 2, 1, 1, -1)),
            Err(Error::InvalidProducerEpoch {
                epoch: 2,
                current: 3,
                ..
            })
        ));
        assert_eq!(
            table.check(&header(7, 4, 0, 1, -1)).ok(),
            Some(Verdict::Append)
        );
        assert!(matches!(
            table.check(&header(7, 4, 1, 1, -1)),
            Err(Error::OutOfOrderSequence { expected: 0, .. })
        ));
        table.record(&header(7, 4, 0, 1, 1));
        assert_eq!(table.entries()[0].batches.len(), 1);
    }

    #[test]
    fn sequences_wrap_around() {
        assert_eq!(last_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(last_sequence(i32::MAX, 1), 0);
        assert_eq!(last_sequence(i32::MAX - 1, 3), 1);
        let table = table_with(&[(i32::MAX - 1, 2, 0)]);
        assert_eq!(
            table.check(&header(7, 0, 0, 1, -1)).ok(),
            Some(Verdict::Append)
        );
    }

    #[test]
    fn negative_sequence_or_epoch_with_a_producer_id_is_rejected() {
        let table = ProducerTable::default();
        assert!(table.check(&header(7, -1, 0, 1, -1)).is_err());
        assert!(table.check(&header(7, 0, -1, 1, -1)).is_err());
    }

    #[test]
    fn idle_producers_expire() {
        let mut table = table_with(&[(0, 1, 0)]);
        table.expire(1_000 + PRODUCER_EXPIRATION_MS, PRODUCER_EXPIRATION_MS);
        assert_eq!(table.len(), 1);
        table.expire(1_001 + PRODUCER_EXPIRATION_MS, PRODUCER_EXPIRATION_MS);
        assert_eq!(table.len(), 0);
    }
}
