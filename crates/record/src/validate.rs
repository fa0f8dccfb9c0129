//! Header-and-CRC validation of whole batches: what a broker does on the append path and
//! what log recovery does per batch.
//!
//! Validation reads the 61-byte header and runs the CRC over the batch; it never decodes or
//! decompresses records and never allocates.

use crate::header::{LOG_OVERHEAD, NO_TIMESTAMP, peek_batch_size};
use crate::{BatchHeader, Compression, Error, HEADER_SIZE, Result, compute_crc};

/// The smallest encoding of a record: length, attributes, timestamp delta, offset delta, null
/// key, null value and header count, one byte each.
pub const MIN_RECORD_SIZE: usize = 7;

/// Validates that `buf` is exactly one whole, intact batch and returns its header.
///
/// Reads only the 61-byte header and runs the CRC over the bytes; records are not decoded
/// (use [`decode_records`](crate::decode_records) for that) and nothing is allocated. Checks,
/// in order:
///
/// 1. the buffer holds a whole header, the magic is 2 and `batchLength` is sane
///    ([`BatchHeader::parse`]);
/// 2. the declared size equals the buffer's size;
/// 3. the CRC-32C matches;
/// 4. the codec is known;
/// 5. `recordsCount >= 1` and `lastOffsetDelta >= recordsCount - 1`. A batch written by a
///    producer has `lastOffsetDelta == recordsCount - 1`; compaction removes records but keeps
///    `lastOffsetDelta` (so producer sequence state survives), hence only `>=` is required.
///    Empty batches, which compaction can also leave behind, are rejected as input;
/// 6. an uncompressed records area has at least 7 bytes per record, the smallest a record
///    can be;
/// 7. `baseOffset + lastOffsetDelta + 1` fits an `i64`;
/// 8. `maxTimestamp >= baseTimestamp`, unless `baseTimestamp` is -1 or holds the delete horizon.
pub fn validate_batch(buf: &[u8]) -> Result<BatchHeader> {
    let header = BatchHeader::parse(buf)?;
    let declared = header.total_size();
    if declared > buf.len() {
        return Err(Error::Truncated {
            needed: declared,
            available: buf.len(),
        });
    }
    if declared < buf.len() {
        return Err(Error::LengthMismatch {
            declared,
            actual: buf.len(),
        });
    }
    let computed = compute_crc(buf);
    if computed != header.crc {
        return Err(Error::CrcMismatch {
            expected: header.crc,
            computed,
        });
    }
    check_consistency(&header)?;
    Ok(header)
}

/// The header-only checks 4 to 8 listed on [`validate_batch`].
fn check_consistency(header: &BatchHeader) -> Result<()> {
    let compression = header.compression()?;
    let count = header.records_count;
    let records_bytes = header.records_size();
    let inconsistent = || Error::InconsistentRecordCount {
        records_count: count,
        last_offset_delta: header.last_offset_delta,
        records_bytes,
    };
    if count < 1 || i64::from(header.last_offset_delta) < i64::from(count) - 1 {
        return Err(inconsistent());
    }
    // count >= 1 here, so the conversion cannot fail.
    let min_bytes = usize::try_from(count)
        .unwrap_or(usize::MAX)
        .saturating_mul(MIN_RECORD_SIZE);
    if compression == Compression::None && records_bytes < min_bytes {
        return Err(inconsistent());
    }
    if header
        .base_offset
        .checked_add(i64::from(header.last_offset_delta) + 1)
        .is_none()
    {
        return Err(Error::OffsetOverflow {
            base_offset: header.base_offset,
            offset_delta: header.last_offset_delta,
        });
    }
    let timestamps_apply =
        header.base_timestamp != NO_TIMESTAMP && !header.attributes.has_delete_horizon();
    if timestamps_apply && header.max_timestamp < header.base_timestamp {
        return Err(Error::InvalidTimestamps {
            base_timestamp: header.base_timestamp,
            max_timestamp: header.max_timestamp,
        });
    }
    Ok(())
}

/// Iterates over the whole batches concatenated in `buf`, validating each.
pub fn batches(buf: &[u8]) -> BatchIter<'_> {
    BatchIter {
        rest: buf,
        failed: false,
    }
}

/// An iterator over concatenated batches, created by [`batches`].
///
/// Yields each batch's header and bytes after checking it as [`validate_batch`] does. A
/// trailing partial batch is [`Error::Truncated`] when not even its header is there, and
/// [`Error::LengthMismatch`] when its header claims more bytes than remain. After the first error it yields that
/// error and then `None`: once one length is wrong, no later batch boundary can be trusted.
/// Allocation-free.
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    rest: &'a [u8],
    failed: bool,
}

impl<'a> BatchIter<'a> {
    /// The bytes not yet consumed: after an error, those from the start of the bad batch.
    pub fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    fn next_batch(&mut self) -> Result<(BatchHeader, &'a [u8])> {
        let size = match peek_batch_size(self.rest) {
            Some(size) => size?,
            None => {
                return Err(Error::Truncated {
                    needed: LOG_OVERHEAD,
                    available: self.rest.len(),
                });
            }
        };
        if size > self.rest.len() {
            // With a whole header present, the batch claims more bytes than were supplied: its
            // length field disagrees with the data. Report a wrong magic first, since the
            // length of a non-v2 batch means something else. Without a whole header, the input
            // was cut short.
            if self.rest.len() >= HEADER_SIZE {
                BatchHeader::parse(self.rest)?;
                return Err(Error::LengthMismatch {
                    declared: size,
                    actual: self.rest.len(),
                });
            }
            return Err(Error::Truncated {
                needed: size,
                available: self.rest.len(),
            });
        }
        let (batch, rest) = self.rest.split_at(size);
        let header = validate_batch(batch)?;
        self.rest = rest;
        Ok((header, batch))
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(BatchHeader, &'a [u8])>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.rest.is_empty() {
            return None;
        }
        let item = self.next_batch();
        self.failed = item.is_err();
        Some(item)
    }
}

impl std::iter::FusedIterator for BatchIter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{
        ATTRIBUTES_AT, BASE_TIMESTAMP_AT, BATCH_LENGTH_AT, LAST_OFFSET_DELTA_AT, MAGIC_AT,
        MAX_TIMESTAMP_AT, RECORDS_COUNT_AT,
    };
    use crate::{Attributes, BatchBuilder, update_crc};

    fn batch(records: usize, compression: Compression) -> Vec<u8> {
        let mut builder = BatchBuilder::new(compression);
        for i in 0..records {
            let value = format!("value-{i}");
            builder
                .append(1_000 + i as i64, Some(b"key"), Some(value.as_bytes()), &[])
                .unwrap();
        }
        builder.build().unwrap().to_vec()
    }

    /// Overwrites a header field and fixes the CRC, so only the field itself is wrong.
    fn patch(buf: &mut [u8], at: usize, bytes: &[u8]) {
        buf[at..at + bytes.len()].copy_from_slice(bytes);
        update_crc(buf);
    }

    #[test]
    fn a_built_batch_validates() {
        for compression in Compression::ALL {
            let buf = batch(3, compression);
            let header = validate_batch(&buf).unwrap();
            assert_eq!(header.records_count, 3);
            assert_eq!(header.total_size(), buf.len());
        }
    }

    #[test]
    fn truncated_batches_are_reported_as_truncated() {
        let buf = batch(2, Compression::None);
        assert!(matches!(
            validate_batch(&buf[..30]),
            Err(Error::Truncated { needed: 61, .. })
        ));
        let cut = buf.len() - 1;
        assert!(matches!(
            validate_batch(&buf[..cut]),
            Err(Error::Truncated { needed, available }) if needed == buf.len() && available == cut
        ));
    }

    #[test]
    fn extra_bytes_are_a_length_mismatch() {
        let mut buf = batch(2, Compression::None);
        buf.push(0);
        assert!(matches!(
            validate_batch(&buf),
            Err(Error::LengthMismatch { declared, actual }) if declared + 1 == actual
        ));
    }

    #[test]
    fn wrong_magic_is_reported() {
        let mut buf = batch(1, Compression::None);
        buf[MAGIC_AT] = 1;
        assert!(matches!(
            validate_batch(&buf),
            Err(Error::InvalidMagic { magic: 1 })
        ));
    }

    #[test]
    fn a_flipped_bit_is_a_crc_mismatch() {
        let mut buf = batch(1, Compression::None);
        let last = buf.len() - 1;
        buf[last] ^= 0x10;
        assert!(matches!(
            validate_batch(&buf),
            Err(Error::CrcMismatch { .. })
        ));
    }

    #[test]
    fn unknown_codecs_are_reported() {
        for code in 5..=7i16 {
            let mut buf = batch(1, Compression::None);
            patch(&mut buf, ATTRIBUTES_AT, &Attributes(code).0.to_be_bytes());
            assert!(matches!(
                validate_batch(&buf),
                Err(Error::UnknownCompression { code: c }) if i16::from(c) == code
            ));
        }
    }

    #[test]
    fn record_count_must_fit_the_deltas_and_the_bytes() {
        let base = batch(3, Compression::None);
        let count_cases: [(usize, i32); 4] = [
            (RECORDS_COUNT_AT, 0),
            (RECORDS_COUNT_AT, -1),
            (RECORDS_COUNT_AT, 4),
            (LAST_OFFSET_DELTA_AT, 1),
        ];
        for (at, value) in count_cases {
            let mut buf = base.clone();
            patch(&mut buf, at, &value.to_be_bytes());
            assert!(
                matches!(
                    validate_batch(&buf),
                    Err(Error::InconsistentRecordCount { .. })
                ),
                "field at {at} = {value}"
            );
        }
        // More records than 7-byte minimums fit, with a last offset delta to match.
        let mut buf = base.clone();
        let records = (buf.len() - HEADER_SIZE) as i32;
        patch(&mut buf, RECORDS_COUNT_AT, &records.to_be_bytes());
        patch(&mut buf, LAST_OFFSET_DELTA_AT, &(records - 1).to_be_bytes());
        assert!(matches!(
            validate_batch(&buf),
            Err(Error::InconsistentRecordCount { records_bytes, .. })
                if records_bytes == base.len() - HEADER_SIZE
        ));
        // A compacted batch: fewer records than the offset range.
        let mut buf = base;
        patch(&mut buf, LAST_OFFSET_DELTA_AT, &10i32.to_be_bytes());
        assert_eq!(validate_batch(&buf).unwrap().last_offset_delta, 10);
    }

    #[test]
    fn offsets_must_not_overflow() {
        let mut buf = batch(3, Compression::None);
        crate::set_base_offset(&mut buf, i64::MAX - 2);
        assert!(matches!(
            validate_batch(&buf),
            Err(Error::OffsetOverflow { .. })
        ));
        crate::set_base_offset(&mut buf, i64::MAX - 3);
        assert_eq!(validate_batch(&buf).unwrap().next_offset(), i64::MAX);
    }

    #[test]
    fn max_timestamp_below_base_is_rejected() {
        let mut buf = batch(2, Compression::None);
        patch(&mut buf, MAX_TIMESTAMP_AT, &999i64.to_be_bytes());
        assert!(matches!(
            validate_batch(&buf),
            Err(Error::InvalidTimestamps {
                base_timestamp: 1000,
                max_timestamp: 999
            })
        ));
        // No base timestamp: nothing to compare.
        patch(&mut buf, BASE_TIMESTAMP_AT, &(-1i64).to_be_bytes());
        validate_batch(&buf).unwrap();
        // The delete horizon lives in the base timestamp and may be later than every record.
        patch(&mut buf, BASE_TIMESTAMP_AT, &5_000i64.to_be_bytes());
        patch(
            &mut buf,
            ATTRIBUTES_AT,
            &Attributes::DELETE_HORIZON.to_be_bytes(),
        );
        validate_batch(&buf).unwrap();
    }

    #[test]
    fn iterates_concatenated_batches() {
        let first = batch(2, Compression::None);
        let second = batch(5, Compression::Zstd);
        let mut log = first.clone();
        log.extend_from_slice(&second);
        let found: Vec<_> = batches(&log).map(|r| r.unwrap()).collect();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].1, &first[..]);
        assert_eq!(found[1].1, &second[..]);
        assert_eq!(found[1].0.records_count, 5);
        assert_eq!(batches(&[]).count(), 0);
    }

    #[test]
    fn iteration_stops_after_the_first_error() {
        let good = batch(1, Compression::None);
        let mut log = good.clone();
        log.extend_from_slice(&good[..20]);
        let mut iter = batches(&log);
        assert!(iter.next().unwrap().is_ok());
        assert!(matches!(
            iter.next(),
            Some(Err(Error::Truncated { needed, available: 20 })) if needed == good.len()
        ));
        assert_eq!(iter.remaining().len(), 20);
        assert!(iter.next().is_none());

        let mut tiny = good.clone();
        tiny.extend_from_slice(&[0; 5]);
        let errors: Vec<_> = batches(&tiny).filter_map(|r| r.err()).collect();
        assert!(matches!(
            errors[..],
            [Error::Truncated {
                needed: 12,
                available: 5
            }]
        ));

        let mut corrupt = good.clone();
        corrupt.extend_from_slice(&good);
        let n = corrupt.len();
        corrupt[n - 1] ^= 1;
        corrupt.extend_from_slice(&good);
        let results: Vec<_> = batches(&corrupt).collect();
        assert_eq!(results.len(), 2);
        assert!(matches!(results[1], Err(Error::CrcMismatch { .. })));
    }

    #[test]
    fn iteration_reports_bad_lengths_and_magic() {
        let mut buf = batch(1, Compression::None);
        buf[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&(-1i32).to_be_bytes());
        assert!(matches!(
            batches(&buf).next(),
            Some(Err(Error::InvalidBatchLength { length: -1 }))
        ));
        let mut legacy = batch(1, Compression::None);
        legacy[MAGIC_AT] = 0;
        legacy[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&10_000i32.to_be_bytes());
        assert!(matches!(
            batches(&legacy).next(),
            Some(Err(Error::InvalidMagic { magic: 0 }))
        ));
    }
}
