//! Known-answer tests: a batch written out byte by byte from the format description, and the
//! standard CRC-32C check value.

use bytes::Bytes;
use strom_record::{
    BatchBuilder, Compression, Record, TimestampType, compute_crc, decode_records, validate_batch,
};

/// One uncompressed record, key "k", value "v", timestamp 1000, no producer id, no leader epoch.
#[rustfmt::skip]
const ONE_RECORD: [u8; 70] = [
    0, 0, 0, 0, 0, 0, 0, 0,             // baseOffset 0
    0, 0, 0, 58,                        // batchLength: 70 - 12
    0xff, 0xff, 0xff, 0xff,             // partitionLeaderEpoch -1
    2,                                  // magic
    0x71, 0x6a, 0x61, 0x89,             // crc: CRC-32C of bytes 21..70
    0, 0,                               // attributes: no compression, create time
    0, 0, 0, 0,                         // lastOffsetDelta 0
    0, 0, 0, 0, 0, 0, 0x03, 0xe8,       // baseTimestamp 1000
    0, 0, 0, 0, 0, 0, 0x03, 0xe8,       // maxTimestamp 1000
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // producerId -1
    0xff, 0xff,                         // producerEpoch -1
    0xff, 0xff, 0xff, 0xff,             // baseSequence -1
    0, 0, 0, 1,                         // recordsCount 1
    0x10,                               // record length 8 (zig-zag)
    0,                                  // record attributes
    0,                                  // timestampDelta 0
    0,                                  // offsetDelta 0
    0x02, b'k',                         // key length 1, key
    0x02, b'v',                         // value length 1, value
    0,                                  // headers count 0
];

#[test]
fn crc32c_check_value() {
    assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(compute_crc(&ONE_RECORD), 0x716a_6189);
}

#[test]
fn hand_written_batch_validates_and_decodes() {
    let header = validate_batch(&ONE_RECORD).unwrap();
    assert_eq!(header.total_size(), 70);
    assert_eq!(header.records_count, 1);
    assert_eq!(header.next_offset(), 1);
    assert_eq!(header.leader_epoch(), None);
    assert_eq!(header.compression().unwrap(), Compression::None);
    assert_eq!(header.timestamp_type(), TimestampType::CreateTime);
    let records = decode_records(&ONE_RECORD).unwrap();
    assert_eq!(
        records,
        [Record {
            offset: 0,
            timestamp: 1000,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![],
        }]
    );
}

#[test]
fn the_builder_writes_the_same_bytes() {
    let mut builder = BatchBuilder::new(Compression::None);
    builder.append(1000, Some(b"k"), Some(b"v"), &[]).unwrap();
    assert_eq!(&builder.build().unwrap()[..], &ONE_RECORD[..]);
}
