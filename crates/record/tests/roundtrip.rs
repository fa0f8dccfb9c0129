//! Property tests: build → validate → decode round trips for every codec, in-place rewrites
//! that keep the CRC valid, corruption detection, and no panics on arbitrary input.

use bytes::Bytes;
use proptest::prelude::*;
use strom_record::{
    BatchBuilder, Compression, Error, HEADER_SIZE, Header, Record, batches, decode_records,
    set_base_offset, set_partition_leader_epoch, update_crc, validate_batch,
};

/// A record as a producer hands it over, before offsets are assigned.
#[derive(Debug, Clone)]
struct Input {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn bytes_field(max: usize) -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(Vec::new())),
        4 => prop::collection::vec(any::<u8>(), 0..max).prop_map(Some),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    let timestamp = prop_oneof![
        Just(-1i64),
        0..2_000_000_000_000i64,
        any::<i64>().prop_map(|t| t / 4)
    ];
    let header = ("\\PC{0,12}", bytes_field(24));
    (
        timestamp,
        bytes_field(48),
        bytes_field(400),
        prop::collection::vec(header, 0..4),
    )
        .prop_map(|(timestamp, key, value, headers)| Input {
            timestamp,
            key,
            value,
            headers,
        })
}

fn records(count: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Input>> {
    prop::collection::vec(input(), count)
}

fn compression() -> impl Strategy<Value = Compression> {
    prop::sample::select(Compression::ALL.to_vec())
}

fn build(compression: Compression, base_offset: i64, inputs: &[Input]) -> Bytes {
    let mut builder = BatchBuilder::new(compression).base_offset(base_offset);
    for input in inputs {
        let headers: Vec<(&str, Option<&[u8]>)> = input
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        builder
            .append(
                input.timestamp,
                input.key.as_deref(),
                input.value.as_deref(),
                &headers,
            )
            .expect("generated records stay far below the batch size limit");
    }
    builder.build().expect("a builder with records builds")
}

fn expected(base_offset: i64, inputs: &[Input]) -> Vec<Record> {
    inputs
        .iter()
        .zip(base_offset..)
        .map(|(input, offset)| Record {
            offset,
            timestamp: input.timestamp,
            key: input.key.clone().map(Bytes::from),
            value: input.value.clone().map(Bytes::from),
            headers: input
                .headers
                .iter()
                .map(|(k, v)| Header {
                    key: k.clone(),
                    value: v.clone().map(Bytes::from),
                })
                .collect(),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn build_validate_decode_round_trips(
        compression in compression(),
        base_offset in 0..i64::MAX / 2,
        inputs in records(1..24),
    ) {
        let batch = build(compression, base_offset, &inputs);
        let header = validate_batch(&batch).unwrap();
        prop_assert_eq!(header.total_size(), batch.len());
        prop_assert_eq!(header.records_count as usize, inputs.len());
        prop_assert_eq!(header.compression().unwrap(), compression);
        prop_assert_eq!(decode_records(&batch).unwrap(), expected(base_offset, &inputs));
    }

    #[test]
    fn offset_and_epoch_rewrites_keep_the_crc_valid(
        compression in compression(),
        inputs in records(1..4),
        base_offset in 0..i64::MAX / 2,
        epoch in any::<i32>(),
    ) {
        let mut batch = build(compression, 0, &inputs).to_vec();
        set_base_offset(&mut batch, base_offset);
        set_partition_leader_epoch(&mut batch, epoch);
        let header = validate_batch(&batch).unwrap();
        prop_assert_eq!(header.base_offset, base_offset);
        prop_assert_eq!(header.partition_leader_epoch, epoch);
        let records = decode_records(&batch).unwrap();
        prop_assert_eq!(records[0].offset, base_offset);
    }

    #[test]
    fn any_bit_flip_after_the_crc_is_detected(
        compression in compression(),
        inputs in records(1..4),
        position in any::<prop::sample::Index>(),
        bit in 0..8u8,
    ) {
        let mut batch = build(compression, 0, &inputs).to_vec();
        let at = 21 + position.index(batch.len() - 21);
        batch[at] ^= 1 << bit;
        prop_assert!(validate_batch(&batch).is_err());
        prop_assert!(decode_records(&batch).is_err());
        let err = batches(&batch).next().unwrap().unwrap_err();
        prop_assert!(matches!(err, Error::CrcMismatch { .. }), "{:?}", err);
    }

    #[test]
    fn batches_walks_what_the_builder_wrote(
        groups in prop::collection::vec((compression(), records(1..4)), 1..6),
    ) {
        let mut log = Vec::new();
        let mut next = 0;
        for (compression, inputs) in &groups {
            log.extend_from_slice(&build(*compression, next, inputs));
            next += inputs.len() as i64;
        }
        let mut expected_offset = 0;
        for (item, (_, inputs)) in batches(&log).zip(&groups) {
            let (header, batch) = item.unwrap();
            prop_assert_eq!(header.base_offset, expected_offset);
            prop_assert_eq!(decode_records(batch).unwrap(), expected(expected_offset, inputs));
            expected_offset = header.next_offset();
        }
        prop_assert_eq!(batches(&log).count(), groups.len());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = validate_batch(&bytes);
        let _ = decode_records(&bytes);
        for (_, batch) in batches(&bytes).flatten() {
            let _ = decode_records(batch);
        }
    }

    /// Garbage behind a valid header and CRC reaches the record decoder and the codecs.
    #[test]
    fn corrupted_records_with_a_fixed_crc_never_panic(
        compression in compression(),
        inputs in records(1..4),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut batch = build(compression, 0, &inputs).to_vec();
        let records = batch.len() - HEADER_SIZE;
        for (position, byte) in edits {
            batch[HEADER_SIZE + position.index(records)] = byte;
        }
        update_crc(&mut batch);
        validate_batch(&batch).unwrap();
        let _ = decode_records(&batch);
    }

    #[test]
    fn header_fields_with_a_fixed_crc_never_panic(
        inputs in records(1..4),
        header in prop::collection::vec(any::<u8>(), 40),
    ) {
        let mut batch = build(Compression::None, 0, &inputs).to_vec();
        batch[21..HEADER_SIZE].copy_from_slice(&header);
        update_crc(&mut batch);
        if validate_batch(&batch).is_ok() {
            let _ = decode_records(&batch);
        }
    }
}
