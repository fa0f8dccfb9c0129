//! Records: the decoded form, and decoding them out of a batch.
//!
//! The record layout is in the crate docs. Decoding is strict where Kafka is lenient: lengths
//! below -1 are rejected rather than read as null. Decoding is for tools, tests and clients;
//! the broker's append path only runs [`validate_batch`](crate::validate_batch).

use bytes::Bytes;

use crate::compression::{MAX_DECOMPRESSED_SIZE, decompress};
use crate::error::RecordFault;
use crate::varint::{read_varint, read_varlong};
use crate::{BatchHeader, Compression, Error, HEADER_SIZE, Result, TimestampType, validate_batch};

/// A record header: a UTF-8 key and an optional value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header's key.
    pub key: String,
    /// The header's value; `None` is distinct from empty.
    pub value: Option<Bytes>,
}

/// One decoded record, with its offset and timestamp made absolute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// The record's offset: the batch's base offset plus the record's offset delta.
    pub offset: i64,
    /// The record's timestamp in milliseconds: the batch's base timestamp plus the record's
    /// delta, or the batch's max timestamp when it uses [`TimestampType::LogAppendTime`].
    pub timestamp: i64,
    /// The record's key; `None` is distinct from empty.
    pub key: Option<Bytes>,
    /// The record's value; `None` (a tombstone) is distinct from empty.
    pub value: Option<Bytes>,
    /// The record's headers, in order.
    pub headers: Vec<Header>,
}

/// Validates `batch` (as [`validate_batch`] does) and decodes all of its records.
///
/// Besides the header checks, this checks that the records area holds exactly
/// `recordsCount` records with nothing after them, that offset deltas start at 0 or more,
/// strictly increase and stay within `lastOffsetDelta` (for a batch that was never compacted,
/// `lastOffsetDelta == recordsCount - 1`, so the deltas must be exactly `0..recordsCount`), and
/// that every record's fields add up to its length. The records area decompresses to at most
/// [`MAX_DECOMPRESSED_SIZE`] bytes.
pub fn decode_records(batch: &[u8]) -> Result<Vec<Record>> {
    RecordIter::new(batch)?.collect()
}

/// A lazy decoder of one batch's records, created by [`RecordIter::new`].
///
/// Construction validates the batch and decompresses the records area into one buffer; each
/// record's key, value and header values are then zero-copy slices of it. After the first error
/// the iterator yields that error and then `None`.
#[derive(Debug, Clone)]
pub struct RecordIter {
    header: BatchHeader,
    data: Bytes,
    pos: usize,
    index: usize,
    previous_delta: Option<i32>,
    done: bool,
}

impl RecordIter {
    /// Validates `batch` and prepares to decode its records, decompressing at most
    /// [`MAX_DECOMPRESSED_SIZE`] bytes.
    pub fn new(batch: &[u8]) -> Result<Self> {
        Self::with_limit(batch, MAX_DECOMPRESSED_SIZE)
    }

    /// As [`RecordIter::new`], with a custom limit on the decompressed records area.
    pub fn with_limit(batch: &[u8], max_decompressed: usize) -> Result<Self> {
        let header = validate_batch(batch)?;
        Self::decompressed(header, batch, max_decompressed)
    }

    /// As [`RecordIter::new`] for a batch already validated, with the header
    /// [`validate_batch`] (or [`crate::batches`]) returned for it: the CRC is not computed
    /// again.
    pub fn for_validated(header: BatchHeader, batch: &[u8]) -> Result<Self> {
        Self::decompressed(header, batch, MAX_DECOMPRESSED_SIZE)
    }

    fn decompressed(header: BatchHeader, batch: &[u8], max_decompressed: usize) -> Result<Self> {
        let compression = header.compression()?;
        let area = &batch[HEADER_SIZE..];
        let data = match compression {
            Compression::None => Bytes::copy_from_slice(area),
            codec => Bytes::from(decompress(codec, area, max_decompressed)?),
        };
        Ok(Self::from_parts(header, data))
    }

    /// As [`RecordIter::new`], taking the batch as [`Bytes`]: for an uncompressed batch the
    /// records area is not copied, and keys and values are slices of `batch`.
    pub fn from_bytes(batch: Bytes) -> Result<Self> {
        let header = validate_batch(&batch)?;
        match header.compression()? {
            Compression::None => Ok(Self::from_parts(header, batch.slice(HEADER_SIZE..))),
            codec => {
                let data = decompress(codec, &batch[HEADER_SIZE..], MAX_DECOMPRESSED_SIZE)?;
                Ok(Self::from_parts(header, Bytes::from(data)))
            }
        }
    }

    fn from_parts(header: BatchHeader, data: Bytes) -> Self {
        Self {
            header,
            data,
            pos: 0,
            index: 0,
            previous_delta: None,
            done: false,
        }
    }

    /// The header of the batch being decoded.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// Checks the end of the records area once the declared count has been read.
    fn finish(&self) -> Result<()> {
        let left = self.data.len() - self.pos;
        if left > 0 {
            return Err(Error::TrailingBytes { count: left });
        }
        Ok(())
    }

    fn next_record(&mut self) -> Result<Record> {
        let index = self.index;
        let fault = |fault| Error::InvalidRecord { index, fault };
        if self.pos == self.data.len() {
            return Err(Error::RecordCountMismatch {
                declared: self.header.records_count,
                decoded: index,
            });
        }
        let length = read_varint(&self.data, &mut self.pos)?;
        let length =
            usize::try_from(length).map_err(|_| fault(RecordFault::NegativeLength { length }))?;
        let available = self.data.len() - self.pos;
        if length > available {
            return Err(fault(RecordFault::LengthExceedsBatch { length, available }));
        }
        let end = self.pos + length;
        let mut reader = FieldReader {
            data: &self.data,
            end,
            pos: self.pos,
            index,
        };
        let record = reader.record(&self.header, self.previous_delta)?;
        if reader.pos != end {
            let consumed = reader.pos - self.pos;
            return Err(fault(RecordFault::LengthMismatch {
                declared: length,
                consumed,
            }));
        }
        self.pos = end;
        self.previous_delta = Some(record.offset_delta);
        Ok(record.record)
    }
}

impl Iterator for RecordIter {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        // validate_batch guarantees records_count >= 1.
        let declared = usize::try_from(self.header.records_count).unwrap_or(0);
        let item = if self.index < declared {
            self.next_record()
        } else {
            self.done = true;
            return self.finish().err().map(Err);
        };
        self.index += 1;
        self.done = item.is_err();
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let declared = usize::try_from(self.header.records_count).unwrap_or(0);
        (0, Some(declared.saturating_sub(self.index) + 1))
    }
}

impl std::iter::FusedIterator for RecordIter {}

/// A decoded record plus its raw offset delta, for the next record's ordering check.
struct Decoded {
    record: Record,
    offset_delta: i32,
}

/// Reads one record's fields from `data[pos..end]`.
struct FieldReader<'a> {
    data: &'a Bytes,
    end: usize,
    pos: usize,
    index: usize,
}

impl FieldReader<'_> {
    fn fault(&self, fault: RecordFault) -> Error {
        Error::InvalidRecord {
            index: self.index,
            fault,
        }
    }

    fn varint(&mut self) -> Result<i32> {
        read_varint(&self.data[..self.end], &mut self.pos)
    }

    fn i8(&mut self, field: &'static str) -> Result<i8> {
        if self.pos >= self.end {
            let fault = RecordFault::FieldExceedsRecord {
                field,
                length: 1,
                available: 0,
            };
            return Err(self.fault(fault));
        }
        let byte = self.data[self.pos];
        self.pos += 1;
        Ok(i8::from_be_bytes([byte]))
    }

    /// Reads a length-prefixed byte field where -1 means null.
    fn nullable(&mut self, field: &'static str) -> Result<Option<Bytes>> {
        let length = self.varint()?;
        if length == -1 {
            return Ok(None);
        }
        let length = usize::try_from(length)
            .map_err(|_| self.fault(RecordFault::InvalidFieldLength { field, length }))?;
        let available = self.end - self.pos;
        if length > available {
            return Err(self.fault(RecordFault::FieldExceedsRecord {
                field,
                length,
                available,
            }));
        }
        let bytes = self.data.slice(self.pos..self.pos + length);
        self.pos += length;
        Ok(Some(bytes))
    }

    fn record(&mut self, batch: &BatchHeader, previous: Option<i32>) -> Result<Decoded> {
        // Record attributes are unused in v2; Kafka writes 0 and ignores them on read.
        let _attributes = self.i8("attributes")?;
        let timestamp_delta = read_varlong(&self.data[..self.end], &mut self.pos)?;
        let offset_delta = self.varint()?;
        let ordered = previous.map_or(offset_delta >= 0, |p| offset_delta > p);
        if !ordered || offset_delta > batch.last_offset_delta {
            return Err(Error::InvalidOffsetDelta {
                index: self.index,
                offset_delta,
                previous,
                last_offset_delta: batch.last_offset_delta,
            });
        }
        let offset = batch
            .base_offset
            .checked_add(i64::from(offset_delta))
            .ok_or(Error::OffsetOverflow {
                base_offset: batch.base_offset,
                offset_delta,
            })?;
        let timestamp = match batch.timestamp_type() {
            TimestampType::LogAppendTime => batch.max_timestamp,
            TimestampType::CreateTime => batch.base_timestamp.checked_add(timestamp_delta).ok_or(
                Error::TimestampOverflow {
                    base_timestamp: batch.base_timestamp,
                    timestamp: timestamp_delta,
                },
            )?,
        };
        let key = self.nullable("key")?;
        let value = self.nullable("value")?;
        let headers = self.headers()?;
        Ok(Decoded {
            record: Record {
                offset,
                timestamp,
                key,
                value,
                headers,
            },
            offset_delta,
        })
    }

    fn headers(&mut self) -> Result<Vec<Header>> {
        let count = self.varint()?;
        let count = usize::try_from(count)
            .map_err(|_| self.fault(RecordFault::NegativeHeaderCount { count }))?;
        // Each header takes at least two bytes; never trust the count for the allocation.
        let mut headers = Vec::with_capacity(count.min((self.end - self.pos) / 2));
        for header in 0..count {
            let key = match self.nullable("header key")? {
                Some(key) => key,
                None => {
                    let fault = RecordFault::InvalidFieldLength {
                        field: "header key",
                        length: -1,
                    };
                    return Err(self.fault(fault));
                }
            };
            let key = std::str::from_utf8(&key)
                .map_err(|source| Error::InvalidHeaderKey {
                    index: self.index,
                    header,
                    source,
                })?
                .to_owned();
            let value = self.nullable("header value")?;
            headers.push(Header { key, value });
        }
        Ok(headers)
    }
}

#[cfg(test)]
mod tests {
    use bytes::{BufMut, BytesMut};

    use super::*;
    use crate::header::{LOG_OVERHEAD, RECORDS_COUNT_AT};
    use crate::varint::{put_varint, put_varlong};
    use crate::{BatchBuilder, MAGIC_V2, update_crc};

    /// Assembles a batch around a hand-written uncompressed records area.
    fn batch_around(records: &[u8], count: i32, last_offset_delta: i32) -> Vec<u8> {
        let mut buf = vec![0; HEADER_SIZE];
        buf.extend_from_slice(records);
        let header = BatchHeader {
            base_offset: 100,
            batch_length: (buf.len() - LOG_OVERHEAD) as i32,
            partition_leader_epoch: 0,
            magic: MAGIC_V2,
            crc: 0,
            attributes: crate::Attributes(0),
            last_offset_delta,
            base_timestamp: 5_000,
            max_timestamp: 5_000,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records_count: count,
        };
        header.write_to(&mut buf);
        update_crc(&mut buf);
        buf
    }

    /// One 9-byte record with the given offset delta, key "k" and value "v".
    fn record(offset_delta: i32) -> Vec<u8> {
        record_with(offset_delta, b"v")
    }

    fn record_with(offset_delta: i32, value: &[u8]) -> Vec<u8> {
        let mut body = BytesMut::new();
        body.put_i8(0);
        put_varlong(&mut body, 0);
        put_varint(&mut body, offset_delta);
        put_varint(&mut body, 1);
        body.put_u8(b'k');
        put_varint(&mut body, value.len() as i32);
        body.put_slice(value);
        put_varint(&mut body, 0);
        let mut out = Vec::new();
        put_varint(&mut out, body.len() as i32);
        out.extend_from_slice(&body);
        out
    }

    fn decode_err(records: &[u8], count: i32, last_offset_delta: i32) -> Error {
        decode_records(&batch_around(records, count, last_offset_delta)).unwrap_err()
    }

    #[test]
    fn decodes_hand_written_records() {
        let mut area = record(0);
        area.extend(record(1));
        let records = decode_records(&batch_around(&area, 2, 1)).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].offset, 101);
        assert_eq!(records[1].timestamp, 5_000);
        assert_eq!(records[1].key.as_deref(), Some(&b"k"[..]));
    }

    #[test]
    fn a_validated_batch_decodes_without_a_second_check() {
        let mut area = record(0);
        area.extend(record(1));
        let batch = batch_around(&area, 2, 1);
        let header = validate_batch(&batch).unwrap();
        let records: Vec<Record> = RecordIter::for_validated(header, &batch)
            .unwrap()
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(records, decode_records(&batch).unwrap());
    }

    #[test]
    fn fewer_records_than_declared() {
        let mut area = record_with(0, b"0123456789");
        area.extend(record_with(1, b"0123456789"));
        // Declares 3 records but the bytes hold 2; the 7-byte minimum is still met.
        let mut buf = batch_around(&area, 2, 2);
        buf[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&3i32.to_be_bytes());
        update_crc(&mut buf);
        assert!(matches!(
            decode_records(&buf),
            Err(Error::RecordCountMismatch {
                declared: 3,
                decoded: 2
            })
        ));
    }

    #[test]
    fn bytes_after_the_last_record() {
        let mut area = record(0);
        area.extend([0; 3]);
        assert!(matches!(
            decode_err(&area, 1, 0),
            Error::TrailingBytes { count: 3 }
        ));
    }

    #[test]
    fn offset_deltas_must_increase_and_stay_in_range() {
        let mut repeated = record(0);
        repeated.extend(record(0));
        assert!(matches!(
            decode_err(&repeated, 2, 1),
            Error::InvalidOffsetDelta {
                index: 1,
                offset_delta: 0,
                previous: Some(0),
                ..
            }
        ));
        assert!(matches!(
            decode_err(&record(-1), 1, 0),
            Error::InvalidOffsetDelta {
                index: 0,
                offset_delta: -1,
                previous: None,
                ..
            }
        ));
        // Beyond lastOffsetDelta.
        let mut beyond = record(0);
        beyond.extend(record(2));
        assert!(matches!(
            decode_err(&beyond, 2, 1),
            Error::InvalidOffsetDelta {
                index: 1,
                offset_delta: 2,
                last_offset_delta: 1,
                ..
            }
        ));
        // A compacted batch: gaps are fine within lastOffsetDelta.
        let mut compacted = record(1);
        compacted.extend(record(4));
        let records = decode_records(&batch_around(&compacted, 2, 5)).unwrap();
        assert_eq!([records[0].offset, records[1].offset], [101, 104]);
    }

    #[test]
    fn record_lengths_must_add_up() {
        let mut long = record(0);
        long[0] += 4; // length says two more bytes than the fields take
        long.extend([0, 0]);
        assert!(matches!(
            decode_err(&long, 1, 0),
            Error::InvalidRecord {
                index: 0,
                fault: RecordFault::LengthMismatch { .. }
            }
        ));
        let mut past_end = record(0);
        past_end[0] += 4;
        assert!(matches!(
            decode_err(&past_end, 1, 0),
            Error::InvalidRecord {
                fault: RecordFault::LengthExceedsBatch { .. },
                ..
            }
        ));
        let mut negative = record(0);
        negative[0] = 0x01; // zig-zag -1
        negative.extend([0; 8]);
        assert!(matches!(
            decode_err(&negative, 1, 0),
            Error::InvalidRecord {
                fault: RecordFault::NegativeLength { length: -1 },
                ..
            }
        ));
    }

    #[test]
    fn field_lengths_are_checked() {
        let mut bad_key = record(0);
        bad_key[4] = 0x03; // key length -2
        assert!(matches!(
            decode_err(&bad_key, 1, 0),
            Error::InvalidRecord {
                fault: RecordFault::InvalidFieldLength {
                    field: "key",
                    length: -2
                },
                ..
            }
        ));
        let mut long_value = record(0);
        long_value[6] = 0x08; // value length 4, only 2 bytes left in the record
        assert!(matches!(
            decode_err(&long_value, 1, 0),
            Error::InvalidRecord {
                fault: RecordFault::FieldExceedsRecord { field: "value", .. },
                ..
            }
        ));
        let mut headers = record(0);
        headers[8] = 0x01; // header count -1
        assert!(matches!(
            decode_err(&headers, 1, 0),
            Error::InvalidRecord {
                fault: RecordFault::NegativeHeaderCount { count: -1 },
                ..
            }
        ));
    }

    #[test]
    fn bad_varints_and_header_keys() {
        let mut overlong = record(0);
        overlong.truncate(3);
        overlong.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        overlong[0] = 0x10; // length 8
        assert!(matches!(
            decode_err(&overlong, 1, 0),
            Error::InvalidVarint { position: 3 }
        ));

        let mut utf8 = BytesMut::new();
        utf8.put_i8(0);
        put_varlong(&mut utf8, 0);
        put_varint(&mut utf8, 0);
        put_varint(&mut utf8, -1);
        put_varint(&mut utf8, -1);
        put_varint(&mut utf8, 1);
        put_varint(&mut utf8, 2);
        utf8.put_slice(&[0xc3, 0x28]);
        put_varint(&mut utf8, -1);
        let mut area = Vec::new();
        put_varint(&mut area, utf8.len() as i32);
        area.extend_from_slice(&utf8);
        assert!(matches!(
            decode_err(&area, 1, 0),
            Error::InvalidHeaderKey {
                index: 0,
                header: 0,
                ..
            }
        ));
    }

    #[test]
    fn a_corrupt_compressed_area_is_a_compression_error() {
        let mut builder = BatchBuilder::new(Compression::Gzip);
        builder.append(1, None, Some(b"gzipped"), &[]).unwrap();
        let mut buf = builder.build().unwrap().to_vec();
        let last = buf.len() - 1;
        buf[last] ^= 0xff; // the gzip trailer's size field
        update_crc(&mut buf);
        assert!(matches!(
            decode_records(&buf),
            Err(Error::Compression {
                codec: Compression::Gzip,
                ..
            })
        ));
    }

    #[test]
    fn log_append_time_replaces_record_timestamps() {
        let mut builder = BatchBuilder::new(Compression::None);
        builder.append(10, None, Some(b"a"), &[]).unwrap();
        builder.append(20, None, Some(b"b"), &[]).unwrap();
        let mut buf = builder.build().unwrap().to_vec();
        crate::set_log_append_time(&mut buf, 99);
        let records = decode_records(&buf).unwrap();
        assert!(records.iter().all(|r| r.timestamp == 99));
    }

    #[test]
    fn lazy_iteration_shares_the_buffer() {
        let mut builder = BatchBuilder::new(Compression::None);
        builder
            .append(1, Some(b"key"), Some(b"value"), &[("h", None)])
            .unwrap();
        let batch = builder.build().unwrap();
        let mut iter = RecordIter::from_bytes(batch.clone()).unwrap();
        assert_eq!(iter.header().records_count, 1);
        let record = iter.next().unwrap().unwrap();
        assert_eq!(record.value.as_deref(), Some(&b"value"[..]));
        assert_eq!(
            record.headers,
            [Header {
                key: "h".into(),
                value: None
            }]
        );
        assert!(iter.next().is_none());
        assert!(iter.next().is_none());
    }

    #[test]
    fn the_decompression_limit_applies() {
        let mut builder = BatchBuilder::new(Compression::Zstd);
        builder.append(1, None, Some(&[0u8; 10_000]), &[]).unwrap();
        let batch = builder.build().unwrap();
        assert!(matches!(
            RecordIter::with_limit(&batch, 1_000),
            Err(Error::DecompressedTooLarge { limit: 1_000, .. })
        ));
    }
}
