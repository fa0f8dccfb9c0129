//! Building batches the way Kafka's producer does.
//!
//! Records are encoded straight into one buffer behind a reserved header. [`BatchBuilder::build`]
//! compresses the records area (when a codec is set), then fills in the header and the CRC.
//! The base timestamp is the first record's timestamp, the max timestamp the largest, and
//! offset deltas run from 0.

use bytes::{BufMut, Bytes, BytesMut};
use strom_types::{ProducerEpoch, ProducerId, Sequence};

use crate::compression::compress;
use crate::header::{
    LOG_OVERHEAD, MAX_BATCH_SIZE, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP,
};
use crate::varint::{MAX_VARINT_LEN, put_varint, put_varlong, varint_len, varlong_len};
use crate::{
    Attributes, BatchHeader, Compression, Error, HEADER_SIZE, MAGIC_V2, NO_PARTITION_LEADER_EPOCH,
    Result, TimestampType, update_crc,
};

/// Builds one RecordBatch v2.
///
/// ```
/// use strom_record::{BatchBuilder, Compression, decode_records, validate_batch};
///
/// let mut builder = BatchBuilder::new(Compression::Lz4).base_offset(0);
/// builder.append(1_700_000_000_000, Some(b"key"), Some(b"value"), &[("trace", None)])?;
/// let batch = builder.build()?;
/// assert_eq!(validate_batch(&batch)?.records_count, 1);
/// assert_eq!(decode_records(&batch)?[0].value.as_deref(), Some(&b"value"[..]));
/// # Ok::<(), strom_record::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    compression: Compression,
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    attributes: Attributes,
    /// A zeroed header followed by the uncompressed records.
    buf: BytesMut,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

/// The encoded size of a nullable byte field (length prefix plus bytes).
fn field_len(bytes: Option<&[u8]>) -> usize {
    // Callers check sizes against MAX_BATCH_SIZE first, so lengths fit an i32.
    bytes.map_or(1, |b| varint_len(b.len() as i32) + b.len())
}

fn put_field(out: &mut BytesMut, bytes: Option<&[u8]>) {
    match bytes {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.put_slice(b);
        }
    }
}

impl BatchBuilder {
    /// An empty builder for a batch compressed with `compression`, with base offset 0, no
    /// producer id and no leader epoch.
    pub fn new(compression: Compression) -> Self {
        let mut buf = BytesMut::with_capacity(4096);
        buf.put_bytes(0, HEADER_SIZE);
        Self {
            compression,
            base_offset: 0,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            attributes: Attributes::default().with_compression(compression),
            buf,
            count: 0,
            base_timestamp: NO_TIMESTAMP,
            max_timestamp: NO_TIMESTAMP,
        }
    }

    /// Sets the base offset (producers send 0; the leader assigns the real one).
    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.base_offset = base_offset;
        self
    }

    /// Sets the idempotent producer's id, epoch and the first record's sequence number.
    pub fn producer(
        mut self,
        id: ProducerId,
        epoch: ProducerEpoch,
        base_sequence: Sequence,
    ) -> Self {
        self.producer_id = id.get();
        self.producer_epoch = epoch.get();
        self.base_sequence = base_sequence.get();
        self
    }

    /// Sets the partition leader epoch.
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Sets the timestamp type (default [`TimestampType::CreateTime`]).
    pub fn timestamp_type(mut self, timestamp_type: TimestampType) -> Self {
        self.attributes = self.attributes.with_timestamp_type(timestamp_type);
        self
    }

    /// Marks the batch as part of a transaction.
    pub fn transactional(mut self, on: bool) -> Self {
        self.attributes = self.attributes.with_transactional(on);
        self
    }

    /// Marks the batch as a control batch (transaction markers).
    pub fn control(mut self, on: bool) -> Self {
        self.attributes = self.attributes.with_control(on);
        self
    }

    /// The number of records appended so far.
    pub fn len(&self) -> usize {
        // count only grows from 0.
        self.count as usize
    }

    /// Whether no record has been appended yet.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The size of the batch so far if it were built uncompressed: an upper bound, give or
    /// take a few bytes, for compressed batches.
    pub fn estimated_size(&self) -> usize {
        self.buf.len()
    }

    /// What [`estimated_size`](Self::estimated_size) would be after appending this record;
    /// lets a producer decide to start a new batch first.
    pub fn estimated_size_with(
        &self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        self.size_with_body(self.body_size(timestamp_ms, key, value, headers))
    }

    /// The base timestamp once a record with `timestamp_ms` is appended: the first record's.
    fn base_timestamp_with(&self, timestamp_ms: i64) -> i64 {
        if self.count == 0 {
            timestamp_ms
        } else {
            self.base_timestamp
        }
    }

    /// The batch's size after appending a record whose body takes `body` bytes.
    fn size_with_body(&self, body: usize) -> usize {
        // Far beyond MAX_BATCH_SIZE the prefix's exact size no longer matters.
        let prefix = i32::try_from(body).map_or(MAX_VARINT_LEN, varint_len);
        self.buf.len().saturating_add(body).saturating_add(prefix)
    }

    /// The encoded size of a record after its length prefix, saturating on absurd inputs.
    fn body_size(
        &self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        let raw = headers.iter().fold(
            key.map_or(0, <[u8]>::len)
                .saturating_add(value.map_or(0, <[u8]>::len)),
            |sum, (k, v)| sum.saturating_add(2 + k.len() + v.map_or(0, <[u8]>::len)),
        );
        if raw > MAX_BATCH_SIZE {
            return raw;
        }
        let base = self.base_timestamp_with(timestamp_ms);
        1 + varlong_len(timestamp_ms.wrapping_sub(base))
            + varint_len(self.count)
            + field_len(key)
            + field_len(value)
            + varint_len(headers.len() as i32)
            + headers
                .iter()
                .map(|(k, v)| field_len(Some(k.as_bytes())) + field_len(*v))
                .sum::<usize>()
    }

    /// Appends a record with the next offset.
    ///
    /// Fails if the uncompressed batch would exceed [`MAX_BATCH_SIZE`] (nothing is appended
    /// then) or if the timestamp's distance from the first record's does not fit an `i64`.
    pub fn append(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> Result<()> {
        let body = self.body_size(timestamp_ms, key, value, headers);
        let size = self.size_with_body(body);
        if size > MAX_BATCH_SIZE {
            return Err(Error::BatchTooLarge {
                size,
                max: MAX_BATCH_SIZE,
            });
        }
        let base = self.base_timestamp_with(timestamp_ms);
        let delta = timestamp_ms
            .checked_sub(base)
            .ok_or(Error::TimestampOverflow {
                base_timestamp: base,
                timestamp: timestamp_ms,
            })?;
        // From here on every length fits an i32: the whole batch is below MAX_BATCH_SIZE.
        let out = &mut self.buf;
        put_varint(out, body as i32);
        out.put_i8(0);
        put_varlong(out, delta);
        put_varint(out, self.count);
        put_field(out, key);
        put_field(out, value);
        put_varint(out, headers.len() as i32);
        for (header_key, header_value) in headers {
            put_field(out, Some(header_key.as_bytes()));
            put_field(out, *header_value);
        }
        if self.count == 0 {
            self.base_timestamp = timestamp_ms;
            self.max_timestamp = timestamp_ms;
        }
        self.max_timestamp = self.max_timestamp.max(timestamp_ms);
        self.count += 1;
        Ok(())
    }

    /// Compresses the records, fills in the header and CRC, and returns the batch.
    ///
    /// Fails on an empty builder ([`Error::EmptyBatch`]), if compression fails, or if the
    /// result exceeds [`MAX_BATCH_SIZE`].
    pub fn build(self) -> Result<Bytes> {
        if self.count == 0 {
            return Err(Error::EmptyBatch);
        }
        let mut batch = match self.compression {
            Compression::None => self.buf,
            codec => {
                let records = &self.buf[HEADER_SIZE..];
                let mut out = BytesMut::with_capacity(HEADER_SIZE + records.len() / 2 + 64);
                out.put_bytes(0, HEADER_SIZE);
                compress(codec, records, &mut out)?;
                out
            }
        };
        if batch.len() > MAX_BATCH_SIZE {
            return Err(Error::BatchTooLarge {
                size: batch.len(),
                max: MAX_BATCH_SIZE,
            });
        }
        let header = BatchHeader {
            base_offset: self.base_offset,
            // At most MAX_BATCH_SIZE, so it fits.
            batch_length: (batch.len() - LOG_OVERHEAD) as i32,
            partition_leader_epoch: self.partition_leader_epoch,
            magic: MAGIC_V2,
            crc: 0,
            attributes: self.attributes,
            last_offset_delta: self.count - 1,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            base_sequence: self.base_sequence,
            records_count: self.count,
        };
        header.write_to(&mut batch);
        update_crc(&mut batch);
        Ok(batch.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_records, validate_batch};

    #[test]
    fn header_fields_follow_the_records() {
        let mut builder = BatchBuilder::new(Compression::Snappy)
            .base_offset(40)
            .producer(
                ProducerId::new(7),
                ProducerEpoch::new(2),
                Sequence::new(100),
            )
            .partition_leader_epoch(3)
            .transactional(true);
        for (i, ts) in [500, 300, 900, 700].into_iter().enumerate() {
            assert_eq!(builder.len(), i);
            builder.append(ts, None, Some(b"v"), &[]).unwrap();
        }
        let header = validate_batch(&builder.build().unwrap()).unwrap();
        assert_eq!(header.base_offset, 40);
        assert_eq!(header.last_offset(), 43);
        assert_eq!(header.records_count, 4);
        assert_eq!((header.base_timestamp, header.max_timestamp), (500, 900));
        assert_eq!((header.producer_id, header.producer_epoch), (7, 2));
        assert_eq!(header.base_sequence, 100);
        assert_eq!(header.last_sequence(), Sequence::new(103));
        assert_eq!(header.partition_leader_epoch, 3);
        assert_eq!(header.compression().unwrap(), Compression::Snappy);
        assert!(header.is_transactional() && !header.is_control());
    }

    #[test]
    fn defaults_mark_a_plain_producer() {
        let mut builder = BatchBuilder::new(Compression::None);
        builder.append(1, None, None, &[]).unwrap();
        let header = validate_batch(&builder.build().unwrap()).unwrap();
        assert_eq!(header.producer_id, -1);
        assert_eq!(header.producer_epoch, -1);
        assert_eq!(header.base_sequence, -1);
        assert_eq!(header.partition_leader_epoch, -1);
        assert_eq!(header.timestamp_type(), TimestampType::CreateTime);
        // The smallest record is 7 bytes.
        assert_eq!(header.total_size(), HEADER_SIZE + 7);
    }

    #[test]
    fn estimated_size_is_exact_for_uncompressed_batches() {
        let mut builder = BatchBuilder::new(Compression::None);
        let headers: &[(&str, Option<&[u8]>)] = &[("a", Some(b"1")), ("bb", None)];
        let predicted = builder.estimated_size_with(1_000, Some(b"key"), Some(&[9; 300]), headers);
        builder
            .append(1_000, Some(b"key"), Some(&[9; 300]), headers)
            .unwrap();
        assert_eq!(builder.estimated_size(), predicted);
        let predicted = builder.estimated_size_with(-5_000, None, Some(b"x"), &[]);
        builder.append(-5_000, None, Some(b"x"), &[]).unwrap();
        assert_eq!(builder.estimated_size(), predicted);
        assert_eq!(builder.clone().build().unwrap().len(), predicted);
        assert_eq!(
            decode_records(&builder.build().unwrap()).unwrap()[1].timestamp,
            -5_000
        );
    }

    #[test]
    fn empty_builders_do_not_build() {
        assert!(BatchBuilder::new(Compression::Gzip).is_empty());
        assert!(matches!(
            BatchBuilder::new(Compression::Gzip).build(),
            Err(Error::EmptyBatch)
        ));
    }

    #[test]
    fn oversized_records_are_refused_without_side_effects() {
        let mut builder = BatchBuilder::new(Compression::None);
        let big = vec![0u8; MAX_BATCH_SIZE];
        assert!(matches!(
            builder.append(0, None, Some(&big), &[]),
            Err(Error::BatchTooLarge {
                max: MAX_BATCH_SIZE,
                ..
            })
        ));
        assert!(builder.is_empty());
        assert_eq!(builder.estimated_size(), HEADER_SIZE);
    }

    #[test]
    fn timestamp_deltas_must_fit() {
        let mut builder = BatchBuilder::new(Compression::None);
        builder.append(i64::MIN, None, None, &[]).unwrap();
        assert!(matches!(
            builder.append(i64::MAX, None, None, &[]),
            Err(Error::TimestampOverflow { .. })
        ));
        assert_eq!(builder.len(), 1);
    }
}
