//! Idempotent-producer sequence numbers: arithmetic that wraps from `i32::MAX` to 0 as Kafka's
//! does, and restamping a built batch with a new producer id or base sequence.

use bytes::{Bytes, BytesMut};
use strom_record::{BatchHeader, update_crc};

use crate::Result;

/// The number of distinct sequence numbers: they run from 0 to `i32::MAX`.
const SEQUENCE_SPACE: i64 = 1 << 31;

/// `sequence + delta`, wrapping within `0..=i32::MAX`; `delta` may be negative.
pub(crate) fn add(sequence: i32, delta: i32) -> i32 {
    let next = (i64::from(sequence) + i64::from(delta)).rem_euclid(SEQUENCE_SPACE);
    // rem_euclid by 2^31 leaves a value in [0, i32::MAX].
    next as i32
}

/// The idempotent identity written into a batch header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) producer_id: i64,
    pub(crate) producer_epoch: i16,
}

/// A copy of `batch` with the producer id, epoch and base sequence replaced and the CRC
/// recomputed; the records are unchanged.
pub(crate) fn restamp(batch: &Bytes, identity: Identity, base_sequence: i32) -> Result<Bytes> {
    let mut header = BatchHeader::parse(batch)?;
    header.producer_id = identity.producer_id;
    header.producer_epoch = identity.producer_epoch;
    header.base_sequence = base_sequence;
    let mut out = BytesMut::from(&batch[..]);
    header.write_to(&mut out);
    update_crc(&mut out);
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use strom_record::{BatchBuilder, Compression, validate_batch};
    use strom_types::{ProducerEpoch, ProducerId, Sequence};

    use super::*;

    #[test]
    fn sequences_wrap_at_i32_max() {
        assert_eq!(add(0, 5), 5);
        assert_eq!(add(i32::MAX, 1), 0);
        assert_eq!(add(i32::MAX - 2, 5), 2);
        assert_eq!(add(2, -5), i32::MAX - 2);
        assert_eq!(add(7, -7), 0);
        // The last sequence of a batch straddling the wrap matches the header's view.
        let mut builder = BatchBuilder::new(Compression::None).producer(
            ProducerId::new(1),
            ProducerEpoch::new(0),
            Sequence::new(i32::MAX - 1),
        );
        for _ in 0..4 {
            builder.append(0, None, None, &[]).unwrap();
        }
        let header = validate_batch(&builder.build().unwrap()).unwrap();
        assert_eq!(header.last_sequence().get(), add(i32::MAX - 1, 3));
        assert_eq!(add(i32::MAX - 1, 4), 2);
    }

    #[test]
    fn restamped_batches_stay_valid() {
        let mut builder = BatchBuilder::new(Compression::Lz4).producer(
            ProducerId::new(1),
            ProducerEpoch::new(0),
            Sequence::new(10),
        );
        builder.append(5, Some(b"k"), Some(b"v"), &[]).unwrap();
        let batch = builder.build().unwrap();
        let identity = Identity {
            producer_id: 99,
            producer_epoch: 3,
        };
        let restamped = restamp(&batch, identity, 4).unwrap();
        let header = validate_batch(&restamped).unwrap();
        assert_eq!(
            (
                header.producer_id,
                header.producer_epoch,
                header.base_sequence
            ),
            (99, 3, 4)
        );
        assert_eq!(restamped[61..], batch[61..]);
    }
}
