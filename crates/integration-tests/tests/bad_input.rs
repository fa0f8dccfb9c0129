//! Bad produce and fetch input against a real broker: each request gets its definite error
//! code, nothing partial is appended, and the broker keeps serving.
#![allow(clippy::unwrap_used)]

mod common;

use common::data::{
    Cluster, TOPIC, batch, client, fetch_request, idempotent_batch, leader_of, produce_request,
    values,
};
use strom_proto::broker::v1 as pb;
use strom_proto::common::v1::ErrorCode;
use strom_record::{BatchBuilder, Compression};

fn partition_code(response: &pb::ProduceResponse) -> Option<ErrorCode> {
    response.topics[0].partitions[0]
        .error
        .as_ref()
        .map(|e| ErrorCode::try_from(e.code).unwrap())
}

fn fetch_code(response: &pb::FetchResponse) -> Option<ErrorCode> {
    response
        .error
        .as_ref()
        .or(response
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .and_then(|p| p.error.as_ref()))
        .map(|e| ErrorCode::try_from(e.code).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_request_gets_its_code_and_appends_nothing() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("bad-input", 1, &[]).await
    else {
        return;
    };
    leader_of(&brokers, None, 1).await;
    let mut broker = client(&brokers[0]).await;
    let good = broker
        .produce(produce_request(pb::Acks::All as i32, batch(&["a", "b"])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(partition_code(&good), None, "{good:?}");

    let mut produce_codes = Vec::new();
    let produce = |request: pb::ProduceRequest| {
        let mut broker = broker.clone();
        async move {
            let response = broker.produce(request).await.unwrap().into_inner();
            response
                .error
                .as_ref()
                .map(|e| ErrorCode::try_from(e.code).unwrap())
                .or_else(|| partition_code(&response))
        }
    };
    // acks outside {0, 1, -1}.
    produce_codes.push(produce(produce_request(9, batch(&["x"]))).await);
    // Unknown topic, unknown partition.
    let mut unknown_topic = produce_request(pb::Acks::Leader as i32, batch(&["x"]));
    unknown_topic.topics[0].topic = "nope".to_owned();
    produce_codes.push(produce(unknown_topic).await);
    let mut unknown_partition = produce_request(pb::Acks::Leader as i32, batch(&["x"]));
    unknown_partition.topics[0].partitions[0].partition = 7;
    produce_codes.push(produce(unknown_partition).await);
    // CRC mismatch; a malformed batch; a valid batch followed by garbage (all or nothing).
    let mut corrupt = batch(&["x"]).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x55;
    produce_codes.push(produce(produce_request(pb::Acks::Leader as i32, corrupt.into())).await);
    let garbage = bytes::Bytes::from_static(
        b"definitely not a record batch, but long enough to hold a header of one",
    );
    produce_codes.push(produce(produce_request(pb::Acks::Leader as i32, garbage)).await);
    let mut partial = batch(&["x"]).to_vec();
    partial.extend_from_slice(&[0u8; 30]);
    produce_codes.push(produce(produce_request(pb::Acks::Leader as i32, partial.into())).await);
    // No records at all.
    produce_codes.push(
        produce(produce_request(
            pb::Acks::Leader as i32,
            bytes::Bytes::new(),
        ))
        .await,
    );
    // Above max.message.bytes (1 MiB by default).
    let mut big = BatchBuilder::new(Compression::None);
    big.append(0, None, Some(&vec![1u8; 1_100_000]), &[])
        .unwrap();
    produce_codes.push(
        produce(produce_request(
            pb::Acks::Leader as i32,
            big.build().unwrap(),
        ))
        .await,
    );
    // Idempotence: a sequence gap, and two idempotent batches in one partition's records.
    assert_eq!(
        produce(produce_request(
            pb::Acks::All as i32,
            idempotent_batch(77, 0, &["i0"])
        ))
        .await,
        None
    );
    produce_codes.push(
        produce(produce_request(
            pb::Acks::All as i32,
            idempotent_batch(77, 5, &["gap"]),
        ))
        .await,
    );
    let mut two = idempotent_batch(77, 1, &["i1"]).to_vec();
    two.extend_from_slice(&idempotent_batch(77, 2, &["i2"]));
    produce_codes.push(produce(produce_request(pb::Acks::All as i32, two.into())).await);
    assert_eq!(
        produce_codes,
        [
            Some(ErrorCode::InvalidRequiredAcks),
            Some(ErrorCode::UnknownTopicOrPartition),
            Some(ErrorCode::UnknownTopicOrPartition),
            Some(ErrorCode::CorruptMessage),
            Some(ErrorCode::CorruptMessage),
            Some(ErrorCode::CorruptMessage),
            Some(ErrorCode::InvalidRequest),
            Some(ErrorCode::MessageTooLarge),
            Some(ErrorCode::OutOfOrderSequenceNumber),
            Some(ErrorCode::InvalidRequest),
        ]
    );

    // A request above the server's 64 MiB limit is refused by gRPC before it is read.
    let huge = produce_request(pb::Acks::Leader as i32, vec![0u8; 65 * 1024 * 1024].into());
    let status = broker.clone().produce(huge).await.unwrap_err();
    assert!(
        matches!(
            status.code(),
            tonic::Code::ResourceExhausted | tonic::Code::OutOfRange
        ),
        "{status:?}"
    );

    // Fetch: negative sizes, offsets past the end, stale and future leader epochs.
    let mut fetch_codes = Vec::new();
    let mut negative_wait = fetch_request(0, 0, 0);
    negative_wait.max_wait_ms = -5;
    let mut negative_partition = fetch_request(0, 0, 0);
    negative_partition.topics[0].partitions[0].partition_max_bytes = -1;
    let mut negative_offset = fetch_request(0, 0, 0);
    negative_offset.topics[0].partitions[0].fetch_offset = -3;
    let mut stale = fetch_request(0, 0, 0);
    let epoch = brokers[0].metadata().await.unwrap().topics[0].partitions[0].leader_epoch;
    stale.topics[0].partitions[0].current_leader_epoch = Some(epoch - 1);
    let mut future = fetch_request(0, 0, 0);
    future.topics[0].partitions[0].current_leader_epoch = Some(epoch + 1);
    for request in [
        negative_wait,
        negative_partition,
        negative_offset,
        fetch_request(1_000, 0, 0),
        stale,
        future,
    ] {
        let response = broker.fetch(request).await.unwrap().into_inner();
        fetch_codes.push(fetch_code(&response));
    }
    assert_eq!(
        fetch_codes,
        [
            Some(ErrorCode::InvalidFetchSize),
            Some(ErrorCode::InvalidFetchSize),
            Some(ErrorCode::OffsetOutOfRange),
            Some(ErrorCode::OffsetOutOfRange),
            Some(ErrorCode::FencedLeaderEpoch),
            Some(ErrorCode::UnknownLeaderEpoch),
        ]
    );
    // A huge max_bytes is capped, not refused.
    let mut huge_fetch = fetch_request(0, 0, 0);
    huge_fetch.max_bytes = i32::MAX;
    huge_fetch.topics[0].partitions[0].partition_max_bytes = i32::MAX;
    let response = broker.fetch(huge_fetch).await.unwrap().into_inner();
    assert_eq!(fetch_code(&response), None);

    // The broker still serves, and only the good appends are in the log.
    let after = broker
        .produce(produce_request(pb::Acks::All as i32, batch(&["c"])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(after.topics[0].partitions[0].base_offset, Some(3));
    let read = broker
        .fetch(fetch_request(0, 0, 0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        values(&read.topics[0].partitions[0].records),
        ["a", "b", "i0", "c"]
    );
    assert_eq!(read.topics[0].topic, TOPIC);
    controller.stop().await;
}
