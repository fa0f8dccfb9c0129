//! The error type of the batch codec.
//!
//! Every way a batch can be malformed has its own variant with the facts that were checked, so
//! callers (the broker's produce path, log recovery, the CLI) can match on the cause and report it
//! without parsing messages.

use std::io;

use crate::Compression;

/// Why a batch could not be validated, decoded or built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input ends before the structure being read does.
    #[error("truncated batch: needed {needed} bytes, {available} available")]
    Truncated {
        /// How many bytes the structure needs.
        needed: usize,
        /// How many bytes there are.
        available: usize,
    },
    /// The batch's declared size differs from the size of the buffer holding it.
    #[error("batch length mismatch: header declares {declared} bytes, buffer holds {actual}")]
    LengthMismatch {
        /// The size declared by the batch (`batchLength + LOG_OVERHEAD`).
        declared: usize,
        /// The size of the buffer.
        actual: usize,
    },
    /// The `batchLength` field is negative, too small for the fixed header, or above
    /// [`MAX_BATCH_SIZE`](crate::MAX_BATCH_SIZE).
    #[error("invalid batch length field {length}")]
    InvalidBatchLength {
        /// The raw `batchLength` field.
        length: i32,
    },
    /// The magic byte is not 2 (legacy message sets v0/v1 are not supported).
    #[error("unsupported magic byte {magic}, expected 2")]
    InvalidMagic {
        /// The magic byte found.
        magic: i8,
    },
    /// The CRC-32C stored in the header does not match the bytes it covers.
    #[error("CRC mismatch: header says {expected:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The CRC stored in the batch header.
        expected: u32,
        /// The CRC computed over the batch bytes.
        computed: u32,
    },
    /// The header's record count does not fit its last offset delta or the size of the
    /// records area (or is below one).
    #[error(
        "records count {records_count} is inconsistent with last offset delta \
         {last_offset_delta} and {records_bytes} bytes of records"
    )]
    InconsistentRecordCount {
        /// The `recordsCount` field.
        records_count: i32,
        /// The `lastOffsetDelta` field.
        last_offset_delta: i32,
        /// The size of the records area as stored (compressed, if the batch is).
        records_bytes: usize,
    },
    /// `baseOffset + lastOffsetDelta + 1` does not fit an `i64`.
    #[error("offset overflow: base offset {base_offset} + delta {offset_delta}")]
    OffsetOverflow {
        /// The batch's base offset.
        base_offset: i64,
        /// The offset delta that overflows.
        offset_delta: i32,
    },
    /// The records area holds fewer records than the header declares.
    #[error("batch declares {declared} records but holds {decoded}")]
    RecordCountMismatch {
        /// The `recordsCount` field.
        declared: i32,
        /// How many records were decoded before the records area ran out.
        decoded: usize,
    },
    /// Bytes remain in the records area after the declared number of records.
    #[error("{count} trailing bytes after the last record")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// A record's offset delta is negative, not above the previous one, or above the batch's
    /// last offset delta.
    #[error(
        "record {index}: offset delta {offset_delta} invalid (previous {previous:?}, \
         last offset delta {last_offset_delta})"
    )]
    InvalidOffsetDelta {
        /// The record's position in the batch.
        index: usize,
        /// The record's offset delta.
        offset_delta: i32,
        /// The previous record's offset delta, if any.
        previous: Option<i32>,
        /// The batch's `lastOffsetDelta` field.
        last_offset_delta: i32,
    },
    /// `maxTimestamp` is below `baseTimestamp` (and `baseTimestamp` is set).
    #[error("max timestamp {max_timestamp} is below base timestamp {base_timestamp}")]
    InvalidTimestamps {
        /// The `baseTimestamp` field.
        base_timestamp: i64,
        /// The `maxTimestamp` field.
        max_timestamp: i64,
    },
    /// A timestamp's distance from the batch's base timestamp does not fit an `i64`.
    #[error("timestamp {timestamp} is out of range for base timestamp {base_timestamp}")]
    TimestampOverflow {
        /// The batch's base timestamp.
        base_timestamp: i64,
        /// The record's timestamp, or its delta when decoding.
        timestamp: i64,
    },
    /// The compression bits of the attributes name no known codec (5, 6 or 7).
    #[error("unknown compression codec {code}")]
    UnknownCompression {
        /// The value of attribute bits 0-2.
        code: u8,
    },
    /// A compression name is not one of `none`, `gzip`, `snappy`, `lz4`, `zstd`.
    #[error("unknown compression name {name:?}")]
    UnknownCompressionName {
        /// The name given.
        name: String,
    },
    /// The codec failed to compress or decompress the records area.
    #[error("{codec} codec failed")]
    Compression {
        /// The codec named by the batch attributes.
        codec: Compression,
        /// The codec's error.
        #[source]
        source: io::Error,
    },
    /// Decompressing the records area would exceed the size limit.
    #[error("{codec} records area decompresses to more than {limit} bytes")]
    DecompressedTooLarge {
        /// The codec named by the batch attributes.
        codec: Compression,
        /// The limit in bytes.
        limit: usize,
    },
    /// A record's framing is malformed.
    #[error("record {index}: {fault}")]
    InvalidRecord {
        /// The record's position in the batch.
        index: usize,
        /// What is wrong with it.
        fault: RecordFault,
    },
    /// A varint is longer than its type allows or overflows it.
    #[error("invalid varint at byte {position} of the records area")]
    InvalidVarint {
        /// Where the varint starts, relative to the (decompressed) records area.
        position: usize,
    },
    /// A record header's key is not valid UTF-8.
    #[error("record {index}, header {header}: key is not valid UTF-8")]
    InvalidHeaderKey {
        /// The record's position in the batch.
        index: usize,
        /// The header's position in the record.
        header: usize,
        /// The UTF-8 decoding error.
        #[source]
        source: std::str::Utf8Error,
    },
    /// A batch must hold at least one record.
    #[error("a batch must hold at least one record")]
    EmptyBatch,
    /// Building the batch would exceed [`MAX_BATCH_SIZE`](crate::MAX_BATCH_SIZE).
    #[error("batch of {size} bytes exceeds the maximum of {max}")]
    BatchTooLarge {
        /// The size the batch would have.
        size: usize,
        /// The maximum allowed.
        max: usize,
    },
}

/// What is wrong with one record's framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordFault {
    /// The record's length prefix is negative.
    #[error("negative record length {length}")]
    NegativeLength {
        /// The length prefix.
        length: i32,
    },
    /// The record's length prefix runs past the end of the records area.
    #[error("record length {length} exceeds the {available} bytes left")]
    LengthExceedsBatch {
        /// The length prefix.
        length: usize,
        /// The bytes left in the records area after the prefix.
        available: usize,
    },
    /// The record's fields do not add up to its length prefix.
    #[error("record length {declared} but its fields take {consumed} bytes")]
    LengthMismatch {
        /// The length prefix.
        declared: usize,
        /// The bytes the fields actually take.
        consumed: usize,
    },
    /// A key, value or header length is below -1 (-1 means null).
    #[error("invalid length {length} for a {field}")]
    InvalidFieldLength {
        /// Which field: "key", "value", "header key" or "header value".
        field: &'static str,
        /// The length found.
        length: i32,
    },
    /// A key, value or header field runs past the end of its record.
    #[error("{field} of {length} bytes exceeds the {available} bytes left in the record")]
    FieldExceedsRecord {
        /// Which field: "key", "value", "header key" or "header value".
        field: &'static str,
        /// The field's length prefix.
        length: usize,
        /// The bytes left in the record after the prefix.
        available: usize,
    },
    /// The header count is negative.
    #[error("negative header count {count}")]
    NegativeHeaderCount {
        /// The header count found.
        count: i32,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
