//! Bad input on the BrokerService's streams and on its wire: bad ProduceStream items between
//! good ones, FetchStream subscriptions with bad partitions or bad sizes, request messages that
//! do not decode, and messages above the broker's request limit. Each bad item or message gets
//! a definite answer, the good items around it are served, and the broker keeps serving.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::bad_input::{
    BrokerClient, OVER_BROKER_LIMIT, TRUNCATED_MESSAGE, UNKNOWN_FIELD_ONLY, answer,
    assert_too_large, assert_undecodable, code, end_of, fetch_code, filler, next_message,
    partition_at, produce_at, produce_code, produce_one, raw_streaming, raw_unary, refusal,
};
use common::data::{
    Cluster, TOPIC, batch, client, fetch_request, leader_of, produce_request, values,
};
use strom_proto::broker::v1 as pb;
use strom_proto::common::v1::ErrorCode;

const PRODUCE: &str = "/strom.broker.v1.BrokerService/Produce";
const FETCH: &str = "/strom.broker.v1.BrokerService/Fetch";
const FETCH_STREAM: &str = "/strom.broker.v1.BrokerService/FetchStream";
const LIST_OFFSETS: &str = "/strom.broker.v1.BrokerService/ListOffsets";
const METADATA: &str = "/strom.broker.v1.BrokerService/Metadata";
const INIT_PRODUCER_ID: &str = "/strom.broker.v1.BrokerService/InitProducerId";

/// Produces `requests` on one ProduceStream, numbered from 1; each answer's error code and
/// base offset by correlation id.
async fn produce_stream(
    broker: &mut BrokerClient,
    requests: Vec<Option<pb::ProduceRequest>>,
) -> BTreeMap<u64, (Option<ErrorCode>, Option<i64>)> {
    let items: Vec<pb::ProduceStreamRequest> = requests
        .into_iter()
        .zip(1u64..)
        .map(|(request, correlation_id)| pb::ProduceStreamRequest {
            correlation_id,
            request,
        })
        .collect();
    let call = broker.produce_stream(tokio_stream::iter(items));
    let mut answers = answer("produce stream", call).await;
    let mut got = BTreeMap::new();
    while let Some(item) = next_message("a produce stream answer", &mut answers).await {
        let response = item.response.unwrap();
        let result = response.topics.first().and_then(|t| t.partitions.first());
        let offset = result.and_then(|r| r.base_offset);
        got.insert(item.correlation_id, (produce_code(&response), offset));
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stream_items_are_answered_and_the_streams_go_on() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("bad-broker-streams", 1, &[]).await
    else {
        return;
    };
    leader_of(&brokers, None, 1).await;
    let mut broker = client(&brokers[0]).await;
    assert_eq!(produce_one(&mut broker, batch(&["a"])).await, None);

    // ProduceStream: each bad request gets its answer, the good ones around it are appended.
    let mut corrupt = batch(&["bad"]).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    let requests = vec![
        None,
        Some(produce_request(pb::Acks::Leader as i32, batch(&["s1"]))),
        Some(produce_request(9, batch(&["bad"]))),
        Some(produce_at(0, corrupt.into())),
        Some(produce_at(7, batch(&["bad"]))),
        Some(produce_request(pb::Acks::All as i32, batch(&["s2"]))),
    ];
    let got = produce_stream(&mut broker, requests).await;
    assert_eq!(
        got,
        BTreeMap::from([
            (1, (Some(ErrorCode::InvalidRequest), None)),
            (2, (None, Some(1))),
            (3, (Some(ErrorCode::InvalidRequiredAcks), None)),
            (4, (Some(ErrorCode::CorruptMessage), None)),
            (5, (Some(ErrorCode::UnknownTopicOrPartition), None)),
            (6, (None, Some(2))),
        ])
    );
    assert_eq!(end_of(&mut broker, TOPIC, 0).await, 3, "s1 and s2 only");

    // FetchStream: bad partitions are reported once and dropped; the good one goes on.
    let mut subscribe = fetch_request(0, 500, 1);
    subscribe.topics[0].partitions.push(partition_at(7, 0));
    subscribe.topics[0].partitions.push(partition_at(-1, 0));
    let mut stream = answer("fetch stream", broker.fetch_stream(subscribe)).await;
    let first = next_message("the first fetch response", &mut stream).await;
    let first = first.unwrap();
    let codes: Vec<_> = first.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition, code(p.error.as_ref())))
        .collect();
    let unknown = Some(ErrorCode::UnknownTopicOrPartition);
    assert_eq!(codes, [(0, None), (7, unknown), (-1, unknown)]);
    let records = &first.topics[0].partitions[0].records;
    assert_eq!(values(records), ["a", "s1", "s2"]);
    assert_eq!(produce_one(&mut broker, batch(&["late"])).await, None);
    let mut seen = Vec::new();
    for _ in 0..20 {
        let next = next_message("a later fetch response", &mut stream).await;
        let next = next.unwrap();
        let partitions: Vec<i32> = next.topics[0]
            .partitions
            .iter()
            .map(|p| p.partition)
            .collect();
        assert_eq!(partitions, [0], "the bad partitions left the subscription");
        seen = values(&next.topics[0].partitions[0].records);
        if !seen.is_empty() {
            break;
        }
    }
    assert_eq!(seen, ["late"]);
    drop(stream);

    // A request-level error, an offset out of range, only unknown partitions or none at all:
    // the stream reports what is wrong, if anything, then ends.
    let mut negative = fetch_request(0, 200, 1);
    negative.max_bytes = -1;
    let mut unknown_only = fetch_request(0, 200, 1);
    unknown_only.topics[0].partitions[0].partition = 7;
    let out_of_range = fetch_request(1_000_000, 200, 1);
    let mut nothing = fetch_request(0, 200, 1);
    nothing.topics.clear();
    let cases = [
        (negative, vec![Some(ErrorCode::InvalidFetchSize)]),
        (out_of_range, vec![Some(ErrorCode::OffsetOutOfRange)]),
        (unknown_only, vec![unknown]),
        (nothing, Vec::new()),
    ];
    for (request, want) in cases {
        let mut stream = answer("fetch stream", broker.fetch_stream(request)).await;
        let mut got = Vec::new();
        while let Some(response) = next_message("a fetch response", &mut stream).await {
            got.push(fetch_code(&response));
        }
        assert_eq!(got, want);
    }

    // After all that, a new subscription reads everything that was appended.
    let call = broker.fetch_stream(fetch_request(0, 0, 0));
    let mut stream = answer("fetch stream", call).await;
    let all = next_message("all records", &mut stream).await.unwrap();
    let records = &all.topics[0].partitions[0].records;
    assert_eq!(values(records), ["a", "s1", "s2", "late"]);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_and_oversized_messages_are_refused_and_the_broker_keeps_serving() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("bad-broker-wire", 1, &[]).await
    else {
        return;
    };
    leader_of(&brokers, None, 1).await;
    let address = brokers[0].address.clone();

    // Request messages that do not decode: gRPC refuses them before any handler runs.
    for path in [PRODUCE, FETCH, LIST_OFFSETS, METADATA, INIT_PRODUCER_ID] {
        assert_undecodable(raw_unary(&address, path, TRUNCATED_MESSAGE).await);
    }
    let not_utf8 = [0x0a, 0x02, 0xc3, 0x28];
    assert_undecodable(raw_unary(&address, METADATA, &not_utf8).await);
    let items = vec![Bytes::from_static(TRUNCATED_MESSAGE)];
    assert_undecodable(raw_streaming(&address, FETCH_STREAM, items).await);
    // Unknown fields are skipped: a message of nothing else is an empty request.
    for path in [INIT_PRODUCER_ID, METADATA] {
        let decoded = raw_unary(&address, path, UNKNOWN_FIELD_ONLY).await;
        assert!(decoded.is_ok(), "{decoded:?}");
    }

    // Above the broker's 64 MiB request limit, on a stream and on a read-only method.
    let mut broker = client(&brokers[0]).await;
    let mut huge = fetch_request(0, 0, 0);
    huge.topics[0].topic = filler(OVER_BROKER_LIMIT);
    let status = refusal("an oversized fetch stream", broker.fetch_stream(huge)).await;
    assert_too_large(&status);
    let huge = pb::MetadataRequest {
        topics: vec![filler(OVER_BROKER_LIMIT)],
        all_topics: false,
    };
    let status = refusal("an oversized metadata", broker.metadata(huge)).await;
    assert_too_large(&status);

    // The broker still serves.
    let call = broker.init_producer_id(pb::InitProducerIdRequest {});
    let id = answer("init producer id", call).await;
    assert!(id.error.is_none() && id.producer_id >= 0, "{id:?}");
    assert_eq!(produce_one(&mut broker, batch(&["ok"])).await, None);
    let read = answer("fetch", broker.fetch(fetch_request(0, 0, 0))).await;
    assert_eq!(values(&read.topics[0].partitions[0].records), ["ok"]);
    controller.stop().await;
}
