//! Bad arguments to the BrokerService beyond the produce and fetch cases of `bad_input.rs`:
//! negative and absurd partitions, sizes, epochs, timestamps and waits; batches truncated or
//! with broken length framing; good and bad partitions in one request; and the edge inputs for
//! which the contract names an answer. Every call answers within a bound with a definite code,
//! nothing of a refused partition is appended, and the broker keeps serving.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use common::bad_input::{
    Checks, OVER_BROKER_LIMIT, Outcome, TRUNCATED_MESSAGE, answer, bounded, code, end_of,
    fetch_code, filler, latest, lookup, partition_at, produce_at, produce_code, produce_one,
    raw_streaming_outcome,
};
use common::data::{
    Cluster, TOPIC, batch, client, fetch_request, leader_of, now_ms, produce_request, values,
};
use common::{BrokerProc, wait_for};
use strom_proto::broker::v1 as pb;
use strom_proto::common::v1::ErrorCode;
use strom_record::{BatchBuilder, Compression, HEADER_SIZE, update_crc};

/// A second topic, with two partitions, for requests mixing good and bad partitions.
const PAIR: &str = "pair";

const PRODUCE_STREAM: &str = "/strom.broker.v1.BrokerService/ProduceStream";

/// Byte positions of RecordBatch v2 header fields (see the layout in `strom_record`).
const BATCH_LENGTH_AT: usize = 8;
const MAGIC_AT: usize = 16;
const ATTRIBUTES_LOW_BYTE_AT: usize = 22;
const MAX_TIMESTAMP_AT: usize = 35;
const RECORDS_COUNT_AT: usize = 57;

/// A produce (acks=1) of each `(partition, records)` to `topic`.
fn produce_to(topic: &str, partitions: Vec<(i32, Bytes)>) -> pb::ProduceRequest {
    pb::ProduceRequest {
        acks: pb::Acks::Leader as i32,
        timeout_ms: 10_000,
        topics: vec![pb::ProduceTopic {
            topic: topic.to_owned(),
            partitions: partitions
                .into_iter()
                .map(|(index, records)| pb::ProducePartition {
                    partition: index,
                    records,
                })
                .collect(),
        }],
    }
}

/// Each partition's error code, in response order.
fn partition_codes(response: &pb::ProduceResponse) -> Vec<(i32, Option<ErrorCode>)> {
    response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| (p.partition, code(p.error.as_ref())))
        .collect()
}

/// The error code of the first topic of a metadata response.
fn metadata_code(response: &pb::MetadataResponse) -> Option<ErrorCode> {
    code(response.topics.first()?.error.as_ref())
}

/// The error code of one ProduceStream answer.
fn stream_code(item: &pb::ProduceStreamResponse) -> Option<ErrorCode> {
    item.response.as_ref().and_then(produce_code)
}

/// A latest-offset lookup in partition 0 that names `epoch` as the current leader epoch.
fn latest_at_epoch(epoch: i32) -> pb::ListOffsetsPartition {
    pb::ListOffsetsPartition {
        current_leader_epoch: Some(epoch),
        ..lookup(0, pb::OffsetSpec::Latest, 0)
    }
}

/// Creates [`PAIR`] and waits until the broker serves both of its partitions.
async fn create_pair(broker: &BrokerProc) {
    let create = strom_proto::admin::v1::CreateTopicsRequest {
        topics: vec![strom_proto::admin::v1::NewTopic {
            topic: PAIR.to_owned(),
            partitions: 2,
            replication_factor: 1,
            configs: Default::default(),
        }],
        timeout_ms: 0,
        validate_only: false,
    };
    let created = answer("create pair", broker.admin().await.create_topics(create)).await;
    assert!(created.topics[0].error.is_none(), "{created:?}");
    let data = client(broker).await;
    wait_for(Duration::from_secs(20), "the broker to lead pair", || {
        let mut data = data.clone();
        async move {
            let request = pb::ListOffsetsRequest {
                topics: vec![pb::ListOffsetsTopic {
                    topic: PAIR.to_owned(),
                    partitions: (0..2)
                        .map(|p| lookup(p, pb::OffsetSpec::Latest, 0))
                        .collect(),
                }],
            };
            let response = data.list_offsets(request).await.ok()?.into_inner();
            let partitions = &response.topics.first()?.partitions;
            partitions.iter().all(|p| p.error.is_none()).then_some(())
        }
    })
    .await;
}

/// A one-record batch without compression, stamped now.
fn plain_batch() -> Vec<u8> {
    let mut builder = BatchBuilder::new(Compression::None);
    builder
        .append(now_ms(), None, Some(b"h".as_slice()), &[])
        .unwrap();
    builder.build().unwrap().to_vec()
}

/// Writes `value` big-endian at byte `at` of `batch`.
fn put_i32(batch: &mut [u8], at: usize, value: i32) {
    batch[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

/// `batch` with its CRC recomputed, so that only an edit made to it is wrong.
fn with_crc(mut batch: Vec<u8>) -> Bytes {
    update_crc(&mut batch);
    batch.into()
}

/// Batches whose CRC is valid but whose header or records are not, with the code the error
/// code table names for each.
fn faulty_batches() -> Vec<(&'static str, Bytes, ErrorCode)> {
    let mut magic = plain_batch();
    magic[MAGIC_AT] = 1;
    let mut no_records = plain_batch();
    put_i32(&mut no_records, RECORDS_COUNT_AT, 0);
    let mut backwards = plain_batch();
    backwards[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&1i64.to_be_bytes());
    let mut codec = plain_batch();
    codec[ATTRIBUTES_LOW_BYTE_AT] |= 0x07;
    let mut garbage = plain_batch();
    garbage[HEADER_SIZE..].fill(0xff);
    let invalid = ErrorCode::InvalidRecord;
    let unsupported = ErrorCode::UnsupportedCompressionType;
    vec![
        ("magic byte 1", with_crc(magic), invalid),
        ("records count 0", with_crc(no_records), invalid),
        ("max timestamp below base", with_crc(backwards), invalid),
        ("compression codec 7", with_crc(codec), unsupported),
        ("records area of 0xff", with_crc(garbage), invalid),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_list_offsets_and_metadata_refuse_bad_arguments() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("bad-broker-args", 1, &[]).await
    else {
        return;
    };
    leader_of(&brokers, None, 1).await;
    create_pair(&brokers[0]).await;
    let mut broker = client(&brokers[0]).await;
    assert_eq!(produce_one(&mut broker, batch(&["a", "b"])).await, None);

    // Bad acks and partitions, and batches whose length framing is broken: nothing appended.
    let whole = batch(&["x", "y"]);
    let mut negative_length = whole.to_vec();
    put_i32(&mut negative_length, BATCH_LENGTH_AT, -1);
    let mut second_cut = whole.to_vec();
    second_cut.extend_from_slice(&whole[..whole.len() / 2]);
    let requests = [
        produce_request(-1, batch(&["x"])),
        produce_request(i32::MAX, batch(&["x"])),
        produce_at(-1, batch(&["x"])),
        produce_at(i32::MAX, batch(&["x"])),
        produce_at(0, whole.slice(..whole.len() / 2)),
        produce_at(0, whole.slice(..20)),
        produce_at(0, negative_length.into()),
        produce_at(0, second_cut.into()),
    ];
    let mut codes = Vec::new();
    for request in requests {
        let response = answer("a bad produce", broker.produce(request)).await;
        codes.push(produce_code(&response));
    }
    assert_eq!(
        codes,
        [
            Some(ErrorCode::InvalidRequiredAcks),
            Some(ErrorCode::InvalidRequiredAcks),
            Some(ErrorCode::UnknownTopicOrPartition),
            Some(ErrorCode::UnknownTopicOrPartition),
            Some(ErrorCode::CorruptMessage),
            Some(ErrorCode::CorruptMessage),
            Some(ErrorCode::CorruptMessage),
            Some(ErrorCode::CorruptMessage),
        ]
    );
    assert_eq!(end_of(&mut broker, TOPIC, 0).await, 2, "nothing appended");

    // Absurd replication timeouts answer at once: one replica, nothing to wait for.
    for timeout_ms in [-1, i32::MAX] {
        let mut request = produce_request(pb::Acks::All as i32, batch(&["t"]));
        request.timeout_ms = timeout_ms;
        let response = answer("an absurd timeout", broker.produce(request)).await;
        assert_eq!(produce_code(&response), None, "{response:?}");
    }
    assert_eq!(end_of(&mut broker, TOPIC, 0).await, 4);

    // Each partition of a request stands alone: the good one is appended, the bad ones not.
    let mut corrupt = batch(&["p1"]).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    let parts = vec![
        (0, batch(&["p0"])),
        (1, Bytes::from(corrupt)),
        (7, batch(&["p7"])),
    ];
    let response = answer("a mixed produce", broker.produce(produce_to(PAIR, parts))).await;
    assert_eq!(
        partition_codes(&response),
        [
            (0, None),
            (1, Some(ErrorCode::CorruptMessage)),
            (7, Some(ErrorCode::UnknownTopicOrPartition)),
        ]
    );
    assert_eq!(end_of(&mut broker, PAIR, 0).await, 1);
    assert_eq!(end_of(&mut broker, PAIR, 1).await, 0, "nothing appended");

    // ListOffsets: bad specs, timestamps, partitions and epochs, each answered in place.
    let epoch = latest(&mut broker, TOPIC, 0).await.leader_epoch.unwrap();
    let lookups = vec![
        lookup(0, pb::OffsetSpec::Unspecified, 0),
        pb::ListOffsetsPartition {
            spec: 99,
            ..lookup(0, pb::OffsetSpec::Latest, 0)
        },
        lookup(0, pb::OffsetSpec::ByTimestamp, -1),
        lookup(0, pb::OffsetSpec::ByTimestamp, i64::MIN),
        lookup(-1, pb::OffsetSpec::Latest, 0),
        lookup(99, pb::OffsetSpec::Latest, 0),
        latest_at_epoch(epoch - 1),
        latest_at_epoch(epoch + 1),
        latest_at_epoch(i32::MIN),
        latest_at_epoch(i32::MAX),
        lookup(0, pb::OffsetSpec::ByTimestamp, i64::MAX),
        lookup(0, pb::OffsetSpec::Latest, 0),
    ];
    let request = pb::ListOffsetsRequest {
        topics: vec![
            pb::ListOffsetsTopic {
                topic: TOPIC.to_owned(),
                partitions: lookups,
            },
            pb::ListOffsetsTopic {
                topic: "nope".to_owned(),
                partitions: vec![lookup(0, pb::OffsetSpec::Latest, 0)],
            },
        ],
    };
    let response = answer("bad lookups", broker.list_offsets(request)).await;
    assert!(response.error.is_none(), "{response:?}");
    let results: Vec<_> = response
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .collect();
    let codes: Vec<_> = results.iter().map(|p| code(p.error.as_ref())).collect();
    assert_eq!(
        codes,
        [
            Some(ErrorCode::InvalidRequest),
            Some(ErrorCode::InvalidRequest),
            Some(ErrorCode::InvalidTimestamp),
            Some(ErrorCode::InvalidTimestamp),
            Some(ErrorCode::UnknownTopicOrPartition),
            Some(ErrorCode::UnknownTopicOrPartition),
            Some(ErrorCode::FencedLeaderEpoch),
            Some(ErrorCode::UnknownLeaderEpoch),
            Some(ErrorCode::FencedLeaderEpoch),
            Some(ErrorCode::UnknownLeaderEpoch),
            None,
            None,
            Some(ErrorCode::UnknownTopicOrPartition),
        ]
    );
    assert_eq!(results[10].offset, None, "no record is that recent");
    assert_eq!(results[11].offset, Some(4));

    // Metadata: unknown names, repeated, each answered; all_topics ignores the names.
    let names = vec!["nope".to_owned(), TOPIC.to_owned(), "nope".to_owned()];
    let request = pb::MetadataRequest {
        topics: names,
        all_topics: false,
    };
    let metadata = answer("metadata", broker.metadata(request)).await;
    let codes: Vec<_> = metadata
        .topics
        .iter()
        .map(|t| (t.topic.as_str(), code(t.error.as_ref())))
        .collect();
    let gone = Some(ErrorCode::UnknownTopicOrPartition);
    assert_eq!(codes, [("nope", gone), (TOPIC, None), ("nope", gone)]);
    let request = pb::MetadataRequest {
        topics: vec!["nope".to_owned()],
        all_topics: true,
    };
    let metadata = answer("metadata", broker.metadata(request)).await;
    let listed: BTreeSet<&str> = metadata.topics.iter().map(|t| t.topic.as_str()).collect();
    assert_eq!(listed, BTreeSet::from([PAIR, TOPIC]));

    // The broker still serves, and only the good appends are in the log.
    assert_eq!(produce_one(&mut broker, batch(&["c"])).await, None);
    let read = answer("fetch", broker.fetch(fetch_request(0, 0, 0))).await;
    let stored = values(&read.topics[0].partitions[0].records);
    assert_eq!(stored, ["a", "b", "t", "t", "c"]);
    controller.stop().await;
}

/// A fetch of partition 0 of [`TOPIC`] from offset 0 with `edit` applied to the partition.
fn fetch_with(edit: impl FnOnce(&mut pb::FetchPartition)) -> pb::FetchRequest {
    let mut request = fetch_request(0, 0, 0);
    edit(&mut request.topics[0].partitions[0]);
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_refuses_bad_arguments_and_answers_absurd_waits_in_time() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("bad-broker-fetch", 1, &[]).await
    else {
        return;
    };
    leader_of(&brokers, None, 1).await;
    let mut broker = client(&brokers[0]).await;
    assert_eq!(produce_one(&mut broker, batch(&["a", "b"])).await, None);

    // Negative sizes and waits, absurd partitions, offsets and epochs, an unknown topic.
    let mut unknown_topic = fetch_request(0, 0, 0);
    unknown_topic.topics[0].topic = "nope".to_owned();
    let requests = [
        pb::FetchRequest {
            max_bytes: -1,
            ..fetch_request(0, 0, 0)
        },
        pb::FetchRequest {
            max_bytes: i32::MIN,
            ..fetch_request(0, 0, 0)
        },
        fetch_request(0, 0, -1),
        fetch_request(0, i32::MIN, 0),
        fetch_with(|p| p.partition_max_bytes = i32::MIN),
        fetch_with(|p| p.partition = -1),
        fetch_with(|p| p.partition = i32::MAX),
        fetch_with(|p| p.fetch_offset = i64::MAX),
        fetch_with(|p| p.fetch_offset = i64::MIN),
        fetch_with(|p| p.current_leader_epoch = Some(i32::MIN)),
        fetch_with(|p| p.current_leader_epoch = Some(i32::MAX)),
        unknown_topic,
    ];
    let mut codes = Vec::new();
    for request in requests {
        let response = answer("a bad fetch", broker.fetch(request)).await;
        codes.push(fetch_code(&response));
    }
    assert_eq!(
        codes,
        [
            Some(ErrorCode::InvalidFetchSize),
            Some(ErrorCode::InvalidFetchSize),
            Some(ErrorCode::InvalidFetchSize),
            Some(ErrorCode::InvalidFetchSize),
            Some(ErrorCode::InvalidFetchSize),
            Some(ErrorCode::UnknownTopicOrPartition),
            Some(ErrorCode::UnknownTopicOrPartition),
            Some(ErrorCode::OffsetOutOfRange),
            Some(ErrorCode::OffsetOutOfRange),
            Some(ErrorCode::FencedLeaderEpoch),
            Some(ErrorCode::UnknownLeaderEpoch),
            Some(ErrorCode::UnknownTopicOrPartition),
        ]
    );

    // A good and a bad partition in one fetch: the good one is read, the bad one reported.
    let mut mixed = fetch_request(0, 0, 0);
    mixed.topics[0].partitions.push(partition_at(9, 0));
    let response = answer("a mixed fetch", broker.fetch(mixed)).await;
    let partitions = &response.topics[0].partitions;
    assert_eq!(values(&partitions[0].records), ["a", "b"]);
    assert_eq!(
        code(partitions[1].error.as_ref()),
        Some(ErrorCode::UnknownTopicOrPartition)
    );
    assert!(partitions[1].records.is_empty());

    // Absurd sizes that are not negative: what is there comes back, in time.
    let mut tiny = fetch_request(0, 0, 0);
    tiny.max_bytes = 1;
    tiny.topics[0].partitions[0].partition_max_bytes = 1;
    let response = answer("a one-byte fetch", broker.fetch(tiny)).await;
    let records = &response.topics[0].partitions[0].records;
    assert_eq!(values(records), ["a", "b"], "the first batch always comes");
    let call = broker.fetch(fetch_request(0, 300, i32::MAX));
    let response = answer("a fetch for i32::MAX bytes", call).await;
    let records = &response.topics[0].partitions[0].records;
    assert_eq!(values(records), ["a", "b"], "what there is, after the wait");
    let call = broker.fetch(fetch_request(2, 300, 1));
    let response = answer("a fetch at the end", call).await;
    assert_eq!(fetch_code(&response), None);
    assert!(response.topics[0].partitions[0].records.is_empty());

    // An absurd wait is a long poll that ends as soon as data arrives.
    let mut waiting = broker.clone();
    let request = fetch_request(2, i32::MAX, 1);
    let poll = tokio::spawn(async move { waiting.fetch(request).await });
    assert_eq!(produce_one(&mut broker, batch(&["late"])).await, None);
    let polled = bounded("a fetch waiting for data", poll).await.unwrap();
    let polled = polled.unwrap().into_inner();
    assert_eq!(values(&polled.topics[0].partitions[0].records), ["late"]);

    // The broker still serves everything that was appended.
    let read = answer("fetch", broker.fetch(fetch_request(0, 0, 0))).await;
    let stored = values(&read.topics[0].partitions[0].records);
    assert_eq!(stored, ["a", "b", "late"]);
    controller.stop().await;
}

/// Inputs for which the contract (the `.proto` comments and the error code table) names the
/// answer: an invalid topic name is not the retriable "unknown topic"; a batch with a valid CRC
/// but a bad header field or record framing is an invalid record and is not stored; a fetch
/// with `min_bytes` 0 answers at once; a ProduceStream item that does not decode, or is too
/// large, fails the stream with a status instead of ending it quietly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_inputs_get_the_answers_the_contract_names() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("bad-broker-contract", 1, &[]).await
    else {
        return;
    };
    leader_of(&brokers, None, 1).await;
    let address = brokers[0].address.clone();
    let mut broker = client(&brokers[0]).await;
    assert_eq!(produce_one(&mut broker, batch(&["a"])).await, None);
    let mut checks = Checks::default();
    let fine = Outcome::Answer(None);

    let invalid = Outcome::Answer(Some(ErrorCode::InvalidTopicException));
    let long_name = filler(250);
    let names = [
        ("empty", ""),
        ("with a space", "a b"),
        ("of 250 bytes", long_name.as_str()),
    ];
    for (label, name) in names {
        let request = pb::MetadataRequest {
            topics: vec![name.to_owned()],
            all_topics: false,
        };
        let got = Outcome::of_call(broker.metadata(request), metadata_code).await;
        checks.check(format!("metadata of a name {label}"), got, invalid);
        let mut request = produce_at(0, batch(&["x"]));
        request.topics[0].topic = name.to_owned();
        let got = Outcome::of_call(broker.produce(request), produce_code).await;
        checks.check(format!("produce to a name {label}"), got, invalid);
    }

    for (case, records, want) in faulty_batches() {
        let got = Outcome::of_call(broker.produce(produce_at(0, records)), produce_code).await;
        checks.check(case, got, Outcome::Answer(Some(want)));
    }
    let end = end_of(&mut broker, TOPIC, 0).await;
    let stored = Outcome::Value(end);
    checks.check("log end after faulty batches", stored, Outcome::Value(1));

    let at_once = fetch_request(end, i32::MAX, 0);
    let got = Outcome::of_call(broker.fetch(at_once), fetch_code).await;
    checks.check("fetch at the end with min_bytes 0", got, fine);

    let items = vec![Bytes::from_static(TRUNCATED_MESSAGE)];
    let got = raw_streaming_outcome(&address, PRODUCE_STREAM, items).await;
    let undecodable = Outcome::Status(tonic::Code::Internal);
    checks.check("an undecodable produce stream item", got, undecodable);
    let huge = pb::ProduceStreamRequest {
        correlation_id: 1,
        request: Some(produce_at(0, vec![0u8; OVER_BROKER_LIMIT].into())),
    };
    let call = broker.produce_stream(tokio_stream::iter([huge]));
    let mut answers = answer("produce stream", call).await;
    let got = Outcome::of_next(&mut answers, stream_code).await;
    let too_large = Outcome::Status(tonic::Code::OutOfRange);
    checks.check("an oversized produce stream item", got, too_large);
    checks.assert_all();
    controller.stop().await;
}
