//! The fixed 61-byte batch header: layout constants, parsing, in-place rewrites and the CRC.
//!
//! The byte layout is in the crate docs. All integers are big-endian. The leader rewrites
//! `baseOffset` and `partitionLeaderEpoch` on append; they lie outside the CRC so it can do so
//! without touching the rest of the batch.

use strom_types::{LeaderEpoch, ProducerEpoch, ProducerId, Sequence, Timestamp};

use crate::{Attributes, Compression, Error, Result, TimestampType};

/// `baseOffset` plus `batchLength`: the bytes before the part `batchLength` counts.
pub const LOG_OVERHEAD: usize = 12;
/// The size of the fixed batch header; records start here.
pub const HEADER_SIZE: usize = 61;
/// The only magic (format version) this crate reads and writes.
pub const MAGIC_V2: i8 = 2;
/// `partitionLeaderEpoch` of a batch no leader has stamped yet.
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// `producerId` of a batch from a producer that is not idempotent.
pub const NO_PRODUCER_ID: i64 = -1;
/// `producerEpoch` of a batch from a producer that is not idempotent.
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// `baseSequence` of a batch from a producer that is not idempotent.
pub const NO_SEQUENCE: i32 = -1;
/// A timestamp field that holds no timestamp.
pub const NO_TIMESTAMP: i64 = -1;
/// The largest whole batch (header included) this crate accepts or builds.
///
/// Every length read from untrusted input is checked against this before it is used, so a
/// corrupt length field can never make a reader allocate or wait for more than this.
pub const MAX_BATCH_SIZE: usize = 64 * 1024 * 1024;

pub(crate) const BASE_OFFSET_AT: usize = 0;
pub(crate) const BATCH_LENGTH_AT: usize = 8;
pub(crate) const PARTITION_LEADER_EPOCH_AT: usize = 12;
pub(crate) const MAGIC_AT: usize = 16;
pub(crate) const CRC_AT: usize = 17;
/// The CRC covers everything from the attributes to the end of the batch.
pub(crate) const CRC_START: usize = 21;
pub(crate) const ATTRIBUTES_AT: usize = 21;
pub(crate) const LAST_OFFSET_DELTA_AT: usize = 23;
pub(crate) const BASE_TIMESTAMP_AT: usize = 27;
pub(crate) const MAX_TIMESTAMP_AT: usize = 35;
pub(crate) const PRODUCER_ID_AT: usize = 43;
pub(crate) const PRODUCER_EPOCH_AT: usize = 51;
pub(crate) const BASE_SEQUENCE_AT: usize = 53;
pub(crate) const RECORDS_COUNT_AT: usize = 57;

/// The smallest legal `batchLength`: a header with no records.
const MIN_BATCH_LENGTH: i32 = (HEADER_SIZE - LOG_OVERHEAD) as i32;
/// The largest legal `batchLength`.
const MAX_BATCH_LENGTH: i32 = (MAX_BATCH_SIZE - LOG_OVERHEAD) as i32;

/// The fixed header of a RecordBatch v2, with every field as it is on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record (as assigned; compaction can remove that record).
    pub base_offset: i64,
    /// Bytes after this field: the batch's total size minus [`LOG_OVERHEAD`].
    pub batch_length: i32,
    /// Epoch of the leader that appended the batch, or [`NO_PARTITION_LEADER_EPOCH`].
    pub partition_leader_epoch: i32,
    /// Format version; always [`MAGIC_V2`] once parsed.
    pub magic: i8,
    /// CRC-32C of the bytes from the attributes to the end of the batch.
    pub crc: u32,
    /// Codec, timestamp type and flags.
    pub attributes: Attributes,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (or the delete horizon, see
    /// [`Attributes::has_delete_horizon`]), or [`NO_TIMESTAMP`].
    pub base_timestamp: i64,
    /// Largest record timestamp, or the log-append time for
    /// [`TimestampType::LogAppendTime`].
    pub max_timestamp: i64,
    /// Idempotent producer id, or [`NO_PRODUCER_ID`].
    pub producer_id: i64,
    /// Idempotent producer epoch, or [`NO_PRODUCER_EPOCH`].
    pub producer_epoch: i16,
    /// Sequence number of the first record, or [`NO_SEQUENCE`].
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: i32,
}

/// Copies `N` bytes at `at` out of a header; the offsets are constants within the header.
fn field<const N: usize>(header: &[u8; HEADER_SIZE], at: usize) -> [u8; N] {
    let mut bytes = [0; N];
    bytes.copy_from_slice(&header[at..at + N]);
    bytes
}

/// Checks a `batchLength` field and returns the whole batch's size.
fn batch_size_from_length(length: i32) -> Result<usize> {
    if !(MIN_BATCH_LENGTH..=MAX_BATCH_LENGTH).contains(&length) {
        return Err(Error::InvalidBatchLength { length });
    }
    // Within [MIN_BATCH_LENGTH, MAX_BATCH_LENGTH], so non-negative.
    Ok(length as usize + LOG_OVERHEAD)
}

impl BatchHeader {
    /// Parses the header at the start of `buf`.
    ///
    /// Needs at least [`HEADER_SIZE`] bytes. Checks the magic byte and that `batchLength` is
    /// between the header's own size and [`MAX_BATCH_SIZE`]; does not check the CRC or that
    /// `buf` holds the whole batch (see [`validate_batch`](crate::validate_batch)).
    pub fn parse(buf: &[u8]) -> Result<BatchHeader> {
        let Some(h) = buf.first_chunk::<HEADER_SIZE>() else {
            return Err(Error::Truncated {
                needed: HEADER_SIZE,
                available: buf.len(),
            });
        };
        let magic = i8::from_be_bytes(field(h, MAGIC_AT));
        if magic != MAGIC_V2 {
            return Err(Error::InvalidMagic { magic });
        }
        let batch_length = i32::from_be_bytes(field(h, BATCH_LENGTH_AT));
        batch_size_from_length(batch_length)?;
        Ok(BatchHeader {
            base_offset: i64::from_be_bytes(field(h, BASE_OFFSET_AT)),
            batch_length,
            partition_leader_epoch: i32::from_be_bytes(field(h, PARTITION_LEADER_EPOCH_AT)),
            magic,
            crc: u32::from_be_bytes(field(h, CRC_AT)),
            attributes: Attributes(i16::from_be_bytes(field(h, ATTRIBUTES_AT))),
            last_offset_delta: i32::from_be_bytes(field(h, LAST_OFFSET_DELTA_AT)),
            base_timestamp: i64::from_be_bytes(field(h, BASE_TIMESTAMP_AT)),
            max_timestamp: i64::from_be_bytes(field(h, MAX_TIMESTAMP_AT)),
            producer_id: i64::from_be_bytes(field(h, PRODUCER_ID_AT)),
            producer_epoch: i16::from_be_bytes(field(h, PRODUCER_EPOCH_AT)),
            base_sequence: i32::from_be_bytes(field(h, BASE_SEQUENCE_AT)),
            records_count: i32::from_be_bytes(field(h, RECORDS_COUNT_AT)),
        })
    }

    /// Writes every field, the CRC included as it is, into the first [`HEADER_SIZE`] bytes of
    /// `out`.
    ///
    /// # Panics
    ///
    /// If `out` is shorter than [`HEADER_SIZE`].
    pub fn write_to(&self, out: &mut [u8]) {
        let h = &mut out[..HEADER_SIZE];
        let mut put = |at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
        put(BASE_OFFSET_AT, &self.base_offset.to_be_bytes());
        put(BATCH_LENGTH_AT, &self.batch_length.to_be_bytes());
        put(
            PARTITION_LEADER_EPOCH_AT,
            &self.partition_leader_epoch.to_be_bytes(),
        );
        put(MAGIC_AT, &self.magic.to_be_bytes());
        put(CRC_AT, &self.crc.to_be_bytes());
        put(ATTRIBUTES_AT, &self.attributes.0.to_be_bytes());
        put(LAST_OFFSET_DELTA_AT, &self.last_offset_delta.to_be_bytes());
        put(BASE_TIMESTAMP_AT, &self.base_timestamp.to_be_bytes());
        put(MAX_TIMESTAMP_AT, &self.max_timestamp.to_be_bytes());
        put(PRODUCER_ID_AT, &self.producer_id.to_be_bytes());
        put(PRODUCER_EPOCH_AT, &self.producer_epoch.to_be_bytes());
        put(BASE_SEQUENCE_AT, &self.base_sequence.to_be_bytes());
        put(RECORDS_COUNT_AT, &self.records_count.to_be_bytes());
    }

    /// The whole batch's size in bytes: `batch_length` plus [`LOG_OVERHEAD`].
    pub fn total_size(&self) -> usize {
        usize::try_from(self.batch_length).unwrap_or(0) + LOG_OVERHEAD
    }

    /// The size of the records area as stored (compressed, if the batch is).
    pub fn records_size(&self) -> usize {
        self.total_size().saturating_sub(HEADER_SIZE)
    }

    /// The offset of the batch's last record: `base_offset + last_offset_delta`.
    ///
    /// [`validate_batch`](crate::validate_batch) rejects batches where this overflows; for
    /// others it wraps.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .wrapping_add(i64::from(self.last_offset_delta))
    }

    /// The offset the next batch starts at: `last_offset() + 1`.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }

    /// The leader epoch that stamped the batch, or `None` if none did.
    pub fn leader_epoch(&self) -> Option<LeaderEpoch> {
        LeaderEpoch::try_new(self.partition_leader_epoch).ok()
    }

    /// The batch's codec.
    pub fn compression(&self) -> Result<Compression> {
        self.attributes.compression()
    }

    /// How the batch's timestamps were assigned.
    pub fn timestamp_type(&self) -> TimestampType {
        self.attributes.timestamp_type()
    }

    /// Whether the batch is part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes.is_transactional()
    }

    /// Whether the batch holds a control record.
    pub fn is_control(&self) -> bool {
        self.attributes.is_control()
    }

    /// The first record's timestamp (or the delete horizon, see
    /// [`Attributes::has_delete_horizon`]).
    pub fn base_timestamp(&self) -> Timestamp {
        Timestamp::new(self.base_timestamp)
    }

    /// The largest timestamp in the batch; what time indexes record.
    pub fn max_timestamp(&self) -> Timestamp {
        Timestamp::new(self.max_timestamp)
    }

    /// The idempotent producer's id ([`ProducerId::NONE`] if not idempotent).
    pub fn producer_id(&self) -> ProducerId {
        ProducerId::new(self.producer_id)
    }

    /// The idempotent producer's epoch.
    pub fn producer_epoch(&self) -> ProducerEpoch {
        ProducerEpoch::new(self.producer_epoch)
    }

    /// The sequence number of the first record.
    pub fn base_sequence(&self) -> Sequence {
        Sequence::new(self.base_sequence)
    }

    /// The sequence number of the last record, wrapping from `i32::MAX` to 0 as Kafka does;
    /// [`NO_SEQUENCE`] if the batch has none.
    pub fn last_sequence(&self) -> Sequence {
        if self.base_sequence == NO_SEQUENCE {
            return Sequence::new(NO_SEQUENCE);
        }
        let base = i64::from(self.base_sequence);
        let next = (base + i64::from(self.last_offset_delta)).rem_euclid(1 << 31);
        // rem_euclid by 2^31 leaves a value in [0, i32::MAX].
        Sequence::new(next as i32)
    }

    /// Whether the batch comes from an idempotent (or transactional) producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id != NO_PRODUCER_ID
    }
}

/// The size of the batch starting at `buf[0]`, read from its first [`LOG_OVERHEAD`] bytes.
///
/// `None` if `buf` is shorter than that; an error if the length field is negative, smaller
/// than the header, or above [`MAX_BATCH_SIZE`].
pub fn peek_batch_size(buf: &[u8]) -> Option<Result<usize>> {
    let overhead = buf.first_chunk::<LOG_OVERHEAD>()?;
    let mut length = [0; 4];
    length.copy_from_slice(&overhead[BATCH_LENGTH_AT..]);
    Some(batch_size_from_length(i32::from_be_bytes(length)))
}

/// Overwrites the base offset; it lies outside the CRC, so the batch stays valid.
///
/// # Panics
///
/// If `batch` is shorter than [`HEADER_SIZE`].
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[..HEADER_SIZE][BASE_OFFSET_AT..BASE_OFFSET_AT + 8]
        .copy_from_slice(&base_offset.to_be_bytes());
}

/// Overwrites the partition leader epoch; it lies outside the CRC, so the batch stays valid.
///
/// # Panics
///
/// If `batch` is shorter than [`HEADER_SIZE`].
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[..HEADER_SIZE][PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
        .copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch as [`TimestampType::LogAppendTime`] with `max_timestamp` set to
/// `timestamp`, and rewrites the CRC, as a broker does for topics that use log-append time.
///
/// # Panics
///
/// If `batch` is shorter than [`HEADER_SIZE`].
pub fn set_log_append_time(batch: &mut [u8], timestamp: i64) {
    let h = &mut batch[..HEADER_SIZE];
    let attributes = i16::from_be_bytes([h[ATTRIBUTES_AT], h[ATTRIBUTES_AT + 1]]);
    let attributes = Attributes(attributes).with_timestamp_type(TimestampType::LogAppendTime);
    h[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.0.to_be_bytes());
    h[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&timestamp.to_be_bytes());
    update_crc(batch);
}

/// The CRC-32C (Castagnoli) of `batch[21..]`: what the header's `crc` field must hold.
///
/// # Panics
///
/// If `batch` is shorter than 21 bytes.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_START..])
}

/// Recomputes the CRC and stores it in the header, after the covered bytes were changed.
///
/// # Panics
///
/// If `batch` is shorter than [`HEADER_SIZE`].
pub fn update_crc(batch: &mut [u8]) {
    let crc = compute_crc(&batch[..]);
    batch[..HEADER_SIZE][CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BatchHeader {
        BatchHeader {
            base_offset: 0x0102_0304_0506_0708,
            batch_length: 49,
            partition_leader_epoch: 7,
            magic: MAGIC_V2,
            crc: 0xdead_beef,
            attributes: Attributes(0x0001),
            last_offset_delta: 3,
            base_timestamp: 1_700_000_000_000,
            max_timestamp: 1_700_000_000_500,
            producer_id: 42,
            producer_epoch: 5,
            base_sequence: 9,
            records_count: 4,
        }
    }

    fn encoded(header: &BatchHeader) -> [u8; HEADER_SIZE] {
        let mut buf = [0; HEADER_SIZE];
        header.write_to(&mut buf);
        buf
    }

    #[test]
    fn write_then_parse_round_trips() {
        let header = sample();
        let buf = encoded(&header);
        assert_eq!(&buf[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(buf[MAGIC_AT], 2);
        assert_eq!(BatchHeader::parse(&buf).unwrap(), header);
    }

    #[test]
    fn derived_values() {
        let header = sample();
        assert_eq!(header.total_size(), 61);
        assert_eq!(header.records_size(), 0);
        assert_eq!(header.last_offset(), 0x0102_0304_0506_070b);
        assert_eq!(header.next_offset(), 0x0102_0304_0506_070c);
        assert_eq!(header.leader_epoch(), Some(LeaderEpoch::new(7)));
        assert_eq!(header.compression().unwrap(), Compression::Gzip);
        assert_eq!(header.producer_id(), ProducerId::new(42));
        assert_eq!(header.last_sequence(), Sequence::new(12));
        assert_eq!(header.max_timestamp(), Timestamp::new(1_700_000_000_500));
        let unstamped = BatchHeader {
            partition_leader_epoch: -1,
            ..header
        };
        assert_eq!(unstamped.leader_epoch(), None);
    }

    #[test]
    fn last_sequence_wraps_like_kafka() {
        let header = BatchHeader {
            base_sequence: i32::MAX - 1,
            last_offset_delta: 3,
            ..sample()
        };
        assert_eq!(header.last_sequence(), Sequence::new(1));
        let none = BatchHeader {
            base_sequence: NO_SEQUENCE,
            ..sample()
        };
        assert_eq!(none.last_sequence(), Sequence::new(NO_SEQUENCE));
    }

    #[test]
    fn parse_rejects_short_input_wrong_magic_and_bad_lengths() {
        let buf = encoded(&sample());
        assert!(matches!(
            BatchHeader::parse(&buf[..60]),
            Err(Error::Truncated {
                needed: 61,
                available: 60
            })
        ));
        let v1 = encoded(&BatchHeader {
            magic: 1,
            ..sample()
        });
        assert!(matches!(
            BatchHeader::parse(&v1),
            Err(Error::InvalidMagic { magic: 1 })
        ));
        for length in [-1, 0, 48, i32::MAX] {
            let bad = encoded(&BatchHeader {
                batch_length: length,
                ..sample()
            });
            assert!(matches!(
                BatchHeader::parse(&bad),
                Err(Error::InvalidBatchLength { length: l }) if l == length
            ));
        }
    }

    #[test]
    fn peek_reads_only_the_log_overhead() {
        let buf = encoded(&BatchHeader {
            batch_length: 1000,
            ..sample()
        });
        assert!(peek_batch_size(&buf[..11]).is_none());
        assert_eq!(peek_batch_size(&buf[..12]).unwrap().unwrap(), 1012);
        let negative = encoded(&BatchHeader {
            batch_length: -5,
            ..sample()
        });
        assert!(matches!(
            peek_batch_size(&negative),
            Some(Err(Error::InvalidBatchLength { length: -5 }))
        ));
        let huge = encoded(&BatchHeader {
            batch_length: MAX_BATCH_LENGTH + 1,
            ..sample()
        });
        assert!(peek_batch_size(&huge).unwrap().is_err());
        let largest = encoded(&BatchHeader {
            batch_length: MAX_BATCH_LENGTH,
            ..sample()
        });
        assert_eq!(peek_batch_size(&largest).unwrap().unwrap(), MAX_BATCH_SIZE);
    }

    #[test]
    fn setters_write_outside_the_crc() {
        let mut buf = encoded(&sample());
        update_crc(&mut buf);
        let crc = compute_crc(&buf);
        set_base_offset(&mut buf, -9);
        set_partition_leader_epoch(&mut buf, 11);
        assert_eq!(compute_crc(&buf), crc);
        let header = BatchHeader::parse(&buf).unwrap();
        assert_eq!(
            (header.base_offset, header.partition_leader_epoch),
            (-9, 11)
        );
        assert_eq!(header.crc, crc);
    }

    #[test]
    fn log_append_time_rewrites_the_crc() {
        let mut buf = encoded(&sample());
        set_log_append_time(&mut buf, 1_800_000_000_000);
        let header = BatchHeader::parse(&buf).unwrap();
        assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(header.max_timestamp, 1_800_000_000_000);
        assert_eq!(header.crc, compute_crc(&buf));
        assert_eq!(header.compression().unwrap(), Compression::Gzip);
    }

    #[test]
    fn crc32c_known_answer() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        let mut padded = vec![0u8; CRC_START];
        padded.extend_from_slice(b"123456789");
        assert_eq!(compute_crc(&padded), 0xE306_9283);
    }
}
