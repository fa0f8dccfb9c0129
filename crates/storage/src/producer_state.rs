//! The producer-state area: snapshots of idempotent producers' recent batches.
//!
//! A leader remembers, per producer id, its epoch and the last few batches' sequence ranges and
//! offsets, to answer a retried batch with its original offsets and to reject sequence gaps. That
//! bookkeeping lives in the broker; this module stores it. A snapshot taken at log offset `o`
//! describes the producers as of the records below `o`; after a restart the broker loads the
//! newest snapshot and replays batch headers from `o` to the log end.
//!
//! Encoding (big-endian): `count: u32`, then per producer `id: i64, epoch: i16, last_timestamp:
//! i64, batches: u8`, then per batch `first_seq: i32, last_seq: i32, first_offset: i64,
//! last_offset: i64, max_timestamp: i64`.

use strom_types::{Offset, ProducerEpoch, ProducerId, Sequence};

use crate::{Error, Result};

/// The most batches remembered per producer, as in Kafka.
pub const MAX_REMEMBERED_BATCHES: usize = 5;

/// One remembered batch of an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerBatch {
    /// Sequence of the batch's first record.
    pub first_sequence: Sequence,
    /// Sequence of the batch's last record.
    pub last_sequence: Sequence,
    /// Offset assigned to the first record.
    pub first_offset: Offset,
    /// Offset assigned to the last record.
    pub last_offset: Offset,
    /// The batch's max timestamp.
    pub max_timestamp: i64,
}

/// What a partition remembers about one idempotent producer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// The producer id.
    pub producer_id: ProducerId,
    /// Its current epoch.
    pub producer_epoch: ProducerEpoch,
    /// Timestamp of its latest batch, for expiring idle producers.
    pub last_timestamp: i64,
    /// Its latest batches, oldest first, at most [`MAX_REMEMBERED_BATCHES`].
    pub batches: Vec<ProducerBatch>,
}

const MALFORMED: Error = Error::MalformedState {
    area: "producer_state",
    reason: "snapshot does not decode",
};

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(MALFORMED)?;
        self.0 = rest;
        Ok(*head)
    }
    fn i64(&mut self) -> Result<i64> {
        self.take::<8>().map(i64::from_be_bytes)
    }
    fn i32(&mut self) -> Result<i32> {
        self.take::<4>().map(i32::from_be_bytes)
    }
}

/// Encodes a snapshot's entries.
pub(crate) fn encode(entries: &[ProducerEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + entries.len() * (19 + 32 * MAX_REMEMBERED_BATCHES));
    out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    for entry in entries {
        out.extend_from_slice(&entry.producer_id.get().to_be_bytes());
        out.extend_from_slice(&entry.producer_epoch.get().to_be_bytes());
        out.extend_from_slice(&entry.last_timestamp.to_be_bytes());
        let batches = &entry.batches[entry.batches.len().saturating_sub(MAX_REMEMBERED_BATCHES)..];
        out.push(batches.len() as u8);
        for b in batches {
            out.extend_from_slice(&b.first_sequence.get().to_be_bytes());
            out.extend_from_slice(&b.last_sequence.get().to_be_bytes());
            out.extend_from_slice(&b.first_offset.get().to_be_bytes());
            out.extend_from_slice(&b.last_offset.get().to_be_bytes());
            out.extend_from_slice(&b.max_timestamp.to_be_bytes());
        }
    }
    out
}

/// Decodes [`encode`]'s output, rejecting anything malformed.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<ProducerEntry>> {
    let mut r = Reader(bytes);
    let count = u32::from_be_bytes(r.take::<4>()?) as usize;
    // Each entry takes at least 19 bytes: a count larger than that cannot be genuine.
    if count > bytes.len() / 19 {
        return Err(MALFORMED);
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let producer_id = ProducerId::try_new(r.i64()?).map_err(|_| MALFORMED)?;
        let producer_epoch =
            ProducerEpoch::try_new(i16::from_be_bytes(r.take::<2>()?)).map_err(|_| MALFORMED)?;
        let last_timestamp = r.i64()?;
        let [n] = r.take::<1>()?;
        if usize::from(n) > MAX_REMEMBERED_BATCHES {
            return Err(MALFORMED);
        }
        let mut batches = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            batches.push(ProducerBatch {
                first_sequence: Sequence::try_new(r.i32()?).map_err(|_| MALFORMED)?,
                last_sequence: Sequence::try_new(r.i32()?).map_err(|_| MALFORMED)?,
                first_offset: Offset::try_new(r.i64()?).map_err(|_| MALFORMED)?,
                last_offset: Offset::try_new(r.i64()?).map_err(|_| MALFORMED)?,
                max_timestamp: r.i64()?,
            });
        }
        entries.push(ProducerEntry {
            producer_id,
            producer_epoch,
            last_timestamp,
            batches,
        });
    }
    if !r.0.is_empty() {
        return Err(MALFORMED);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(id: i64, n: usize) -> ProducerEntry {
        ProducerEntry {
            producer_id: ProducerId::new(id),
            producer_epoch: ProducerEpoch::new(2),
            last_timestamp: 1_700_000_000_000,
            batches: (0..n)
                .map(|i| ProducerBatch {
                    first_sequence: Sequence::new(i as i32 * 10),
                    last_sequence: Sequence::new(i as i32 * 10 + 9),
                    first_offset: Offset::new(100 + i as i64 * 10),
                    last_offset: Offset::new(109 + i as i64 * 10),
                    max_timestamp: 1_700_000_000_000 + i as i64,
                })
                .collect(),
        }
    }

    #[test]
    fn round_trip() {
        let entries = vec![entry(1, 0), entry(2, 3), entry(3, 5)];
        assert_eq!(decode(&encode(&entries)).unwrap(), entries);
    }

    #[test]
    fn only_the_newest_batches_are_kept() {
        let decoded = decode(&encode(&[entry(9, 7)])).unwrap();
        assert_eq!(decoded[0].batches, entry(9, 7).batches[2..].to_vec());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
