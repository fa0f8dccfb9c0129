//! The Kafka RecordBatch v2 codec: validate, build, iterate and compress batches, with no I/O.
//!
//! Records travel from producer to disk to consumer as the same bytes, in Kafka's RecordBatch
//! v2 layout. What each user needs:
//!
//! - **The broker's append path** calls [`validate_batch`] (header checks and CRC-32C, no
//!   allocation, no record decoding), then [`set_base_offset`] and
//!   [`set_partition_leader_epoch`], which lie outside the CRC.
//! - **Log recovery and segment readers** walk concatenated batches with [`batches`] and size
//!   the next batch with [`peek_batch_size`].
//! - **Producers** build batches with [`BatchBuilder`], which compresses with any
//!   [`Compression`] byte-compatibly with Kafka's Java client.
//! - **Consumers, tools and tests** decode records with [`decode_records`] or [`RecordIter`].
//!
//! Every malformed input yields a distinct [`Error`] variant; nothing here panics on untrusted
//! bytes, and no length read from input is trusted for an allocation before it is bounded by
//! [`MAX_BATCH_SIZE`] or [`MAX_DECOMPRESSED_SIZE`].
//!
//! # Batch layout
//!
//! All integers are big-endian; [`BatchHeader`] holds the fixed part.
//!
//! ```text
//! offset  size  field
//!      0     8  baseOffset             ┐ log overhead, not covered by the CRC;
//!      8     4  batchLength            ┘ batchLength counts the bytes after itself
//!     12     4  partitionLeaderEpoch     not covered by the CRC
//!     16     1  magic (2)
//!     17     4  crc                      CRC-32C (Castagnoli) of bytes 21..end
//!     21     2  attributes
//!     23     4  lastOffsetDelta
//!     27     8  baseTimestamp
//!     35     8  maxTimestamp
//!     43     8  producerId
//!     51     2  producerEpoch
//!     53     4  baseSequence
//!     57     4  recordsCount
//!     61        records (compressed as one stream when the codec is not none)
//! ```
//!
//! Attribute bits are described on [`Attributes`], codecs on [`Compression`].
//!
//! # Record layout
//!
//! Each record in the (decompressed) records area is, with zig-zag varints (protobuf
//! `sint32`/`sint64`):
//!
//! ```text
//! length varint | attributes int8 | timestampDelta varlong | offsetDelta varint
//! keyLength varint (-1 = null) | key | valueLength varint (-1 = null) | value
//! headersCount varint | headers: keyLength varint, key (UTF-8)
//!                                 valueLength varint (-1 = null), value
//! ```
//!
//! `length` counts the bytes after itself; offset and timestamp deltas are relative to the
//! batch's `baseOffset` and `baseTimestamp`.

mod attributes;
mod builder;
mod compression;
mod error;
mod header;
mod record;
mod validate;
mod varint;

pub use attributes::{Attributes, TimestampType};
pub use builder::BatchBuilder;
pub use compression::{Compression, MAX_DECOMPRESSED_SIZE};
pub use error::{Error, RecordFault, Result};
pub use header::{
    BatchHeader, HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2, MAX_BATCH_SIZE, NO_PARTITION_LEADER_EPOCH,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, NO_TIMESTAMP, compute_crc, peek_batch_size,
    set_base_offset, set_log_append_time, set_partition_leader_epoch, update_crc,
};
pub use record::{Header, Record, RecordIter, decode_records};
pub use validate::{BatchIter, MIN_RECORD_SIZE, batches, validate_batch};
