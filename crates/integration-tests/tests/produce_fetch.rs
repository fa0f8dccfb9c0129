//! Produce and fetch through the leader of an RF 3 partition on three brokers: acks=all
//! completes once followers have the records, fetch returns them below the high watermark,
//! they survive a kill -9 of the leader, and bad requests get their codes.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::data::{
    Cluster, TOPIC, batch, client, fetch_all, fetch_request, leader_of, produce_request, values,
};
use common::wait_for;
use strom_proto::broker::v1 as pb;
use strom_proto::common::v1::ErrorCode;
use strom_record::{BatchBuilder, Compression};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_are_fetched_and_survive_the_leader() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        mut brokers,
    }) = Cluster::start("produce-fetch", 3, &[("min.insync.replicas", "2")]).await
    else {
        return;
    };
    let leader = leader_of(&brokers, None, 3).await;

    // acks=all: offsets come back once the ISR has the records.
    let mut leader_client = client(&brokers[leader]).await;
    let first = leader_client
        .produce(produce_request(
            pb::Acks::All as i32,
            batch(&["a", "b", "c"]),
        ))
        .await
        .unwrap()
        .into_inner();
    let result = &first.topics[0].partitions[0];
    assert!(result.error.is_none(), "{first:?}");
    assert_eq!(result.base_offset, Some(0));
    let second = leader_client
        .produce(produce_request(pb::Acks::Leader as i32, batch(&["d"])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.topics[0].partitions[0].base_offset, Some(3));
    let fetched = wait_for(
        Duration::from_secs(5),
        "all four records below the high watermark",
        || async {
            let fetched = fetch_all(&brokers[leader]).await;
            (fetched.high_watermark == 4).then_some(fetched)
        },
    )
    .await;
    assert_eq!(values(&fetched.records), ["a", "b", "c", "d"]);

    // Producer ids are unique across brokers (each hands out a block the controller reserved).
    let mut ids = std::collections::BTreeSet::new();
    for broker in &brokers {
        for _ in 0..2 {
            let answer = client(broker)
                .await
                .init_producer_id(pb::InitProducerIdRequest {})
                .await
                .unwrap()
                .into_inner();
            assert!(answer.error.is_none(), "{answer:?}");
            assert_eq!(answer.producer_epoch, 0);
            assert!(answer.producer_id >= 0);
            ids.insert(answer.producer_id);
        }
    }
    assert_eq!(ids.len(), 6, "{ids:?}");

    // A follower refuses, naming the leader.
    let follower = (leader + 1) % 3;
    let refused = fetch_all(&brokers[follower]).await;
    let error = refused.error.unwrap();
    assert_eq!(error.code, ErrorCode::NotLeaderOrFollower as i32);
    assert_eq!(error.leader.unwrap().leader_id, brokers[leader].id);

    // Bad input: each gets its code and nothing is appended.
    let bad_acks = leader_client
        .produce(produce_request(7, batch(&["x"])))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        bad_acks.error.map(|e| e.code),
        Some(ErrorCode::InvalidRequiredAcks as i32)
    );
    let mut corrupt = batch(&["y"]).to_vec();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    let corrupted = leader_client
        .produce(produce_request(pb::Acks::Leader as i32, corrupt.into()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        corrupted.topics[0].partitions[0]
            .error
            .as_ref()
            .map(|e| e.code),
        Some(ErrorCode::CorruptMessage as i32)
    );
    let mut unknown = produce_request(pb::Acks::Leader as i32, batch(&["z"]));
    unknown.topics[0].topic = "no-such-topic".to_owned();
    let unknown = leader_client.produce(unknown).await.unwrap().into_inner();
    assert_eq!(
        unknown.topics[0].partitions[0]
            .error
            .as_ref()
            .map(|e| e.code),
        Some(ErrorCode::UnknownTopicOrPartition as i32)
    );
    let negative = pb::FetchRequest {
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: -1,
        topics: Vec::new(),
    };
    let negative = leader_client.fetch(negative).await.unwrap().into_inner();
    assert_eq!(
        negative.error.map(|e| e.code),
        Some(ErrorCode::InvalidFetchSize as i32)
    );
    let past_end = fetch_request(99, 0, 0);
    let past_end = leader_client.fetch(past_end).await.unwrap().into_inner();
    assert_eq!(
        past_end.topics[0].partitions[0]
            .error
            .as_ref()
            .map(|e| e.code),
        Some(ErrorCode::OffsetOutOfRange as i32)
    );
    let offsets = pb::ListOffsetsRequest {
        topics: vec![pb::ListOffsetsTopic {
            topic: TOPIC.to_owned(),
            partitions: vec![
                pb::ListOffsetsPartition {
                    partition: 0,
                    spec: pb::OffsetSpec::Earliest as i32,
                    timestamp_ms: 0,
                    current_leader_epoch: None,
                },
                pb::ListOffsetsPartition {
                    partition: 0,
                    spec: pb::OffsetSpec::Latest as i32,
                    timestamp_ms: 0,
                    current_leader_epoch: None,
                },
            ],
        }],
    };
    let offsets = leader_client
        .list_offsets(offsets)
        .await
        .unwrap()
        .into_inner();
    let found: Vec<_> = offsets.topics[0]
        .partitions
        .iter()
        .map(|p| p.offset)
        .collect();
    assert_eq!(found, [Some(0), Some(4)], "nothing bad was appended");

    // A FetchStream subscription delivers what is there, then new records as they arrive.
    let subscribe = fetch_request(0, 200, 1);
    let mut stream = leader_client
        .fetch_stream(subscribe)
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(
        values(&first.topics[0].partitions[0].records),
        ["a", "b", "c", "d"]
    );
    leader_client
        .produce(produce_request(pb::Acks::All as i32, batch(&["e"])))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.is_empty() {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        seen = values(&next.topics[0].partitions[0].records);
    }
    assert_eq!(seen, ["e"]);
    drop(stream);

    // kill -9 the leader: a new leader from the ISR serves every acknowledged record.
    brokers[leader].kill9().await;
    let next = leader_of(&brokers, Some(leader), 2).await;
    let fetched = wait_for(
        Duration::from_secs(10),
        "the new leader to serve",
        || async {
            let fetched = fetch_all(&brokers[next]).await;
            (fetched.error.is_none() && fetched.high_watermark == 5).then_some(fetched)
        },
    )
    .await;
    assert_eq!(values(&fetched.records), ["a", "b", "c", "d", "e"]);
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_follower_leaves_the_isr_and_rejoins() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("isr-lag", 3, &[("min.insync.replicas", "2")]).await
    else {
        return;
    };
    let leader = leader_of(&brokers, None, 3).await;
    let stalled = (leader + 1) % 3;
    let mut leader_client = client(&brokers[leader]).await;

    // Pipelined produce: three requests on one stream, appended in order, answered by
    // correlation id.
    let requests: Vec<pb::ProduceStreamRequest> = (1..=3u64)
        .map(|id| pb::ProduceStreamRequest {
            correlation_id: id,
            request: Some(produce_request(pb::Acks::All as i32, batch(&["p", "q"]))),
        })
        .collect();
    let mut answers = leader_client
        .produce_stream(tokio_stream::iter(requests))
        .await
        .unwrap()
        .into_inner();
    let mut offsets = std::collections::BTreeMap::new();
    while let Some(answer) = answers.message().await.unwrap() {
        let result = &answer.response.unwrap().topics[0].partitions[0];
        assert!(result.error.is_none(), "{result:?}");
        offsets.insert(answer.correlation_id, result.base_offset.unwrap());
    }
    assert_eq!(
        offsets.into_iter().collect::<Vec<_>>(),
        [(1, 0), (2, 2), (3, 4)]
    );

    // SIGSTOP one follower: it leaves the ISR after replica-lag-time-max (2 s), well before its
    // 5 s lease would expire, and acks=all goes on with the other two.
    brokers[stalled].signal("STOP");
    let stalled_id = brokers[stalled].id;
    let stopped = tokio::time::Instant::now();
    wait_for(Duration::from_secs(10), "the ISR to shrink", || async {
        let metadata = brokers[leader].metadata().await?;
        let p = &metadata
            .topics
            .iter()
            .find(|t| t.topic == TOPIC)?
            .partitions[0];
        (!p.isr.contains(&stalled_id) && metadata.brokers.iter().any(|b| b.broker_id == stalled_id))
            .then_some(())
    })
    .await;
    assert!(
        stopped.elapsed() < Duration::from_secs(5),
        "shrunk by lag, not by lease expiry"
    );
    let acked = leader_client
        .produce(produce_request(
            pb::Acks::All as i32,
            batch(&["while-stalled"]),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(acked.topics[0].partitions[0].error.is_none(), "{acked:?}");

    // Resumed, it catches up and rejoins.
    brokers[stalled].signal("CONT");
    wait_for(
        Duration::from_secs(20),
        "the follower to rejoin",
        || async {
            let metadata = brokers[leader].metadata().await?;
            let p = &metadata
                .topics
                .iter()
                .find(|t| t.topic == TOPIC)?
                .partitions[0];
            (p.isr.len() == 3).then_some(())
        },
    )
    .await;
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_configs_shape_the_log() {
    let configs = [
        ("segment.bytes", "1024"),
        ("retention.bytes", "2048"),
        ("max.message.bytes", "4096"),
        ("retention.ms", "-1"),
    ];
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("topic-configs", 1, &configs).await
    else {
        return;
    };
    leader_of(&brokers, None, 1).await;
    let mut leader = client(&brokers[0]).await;

    // max.message.bytes: a batch above it is refused and nothing is appended.
    let mut big = BatchBuilder::new(Compression::None);
    big.append(0, None, Some(&[7u8; 5000]), &[]).unwrap();
    let refused = leader
        .produce(produce_request(
            pb::Acks::Leader as i32,
            big.build().unwrap(),
        ))
        .await
        .unwrap()
        .into_inner();
    let code = refused.topics[0].partitions[0]
        .error
        .as_ref()
        .map(|e| e.code);
    assert_eq!(code, Some(ErrorCode::MessageTooLarge as i32), "{refused:?}");

    // segment.bytes + retention.bytes: old segments go, the log start moves forward.
    // Uncompressed 400-byte records: about two batches per 1 KiB segment.
    for _ in 0..12 {
        let mut one = BatchBuilder::new(Compression::None);
        one.append(0, None, Some(&[1u8; 400]), &[]).unwrap();
        let produced = leader
            .produce(produce_request(
                pb::Acks::Leader as i32,
                one.build().unwrap(),
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(
            produced.topics[0].partitions[0].error.is_none(),
            "{produced:?}"
        );
    }
    let earliest = pb::ListOffsetsRequest {
        topics: vec![pb::ListOffsetsTopic {
            topic: TOPIC.to_owned(),
            partitions: vec![pb::ListOffsetsPartition {
                partition: 0,
                spec: pb::OffsetSpec::Earliest as i32,
                timestamp_ms: 0,
                current_leader_epoch: None,
            }],
        }],
    };
    let start = wait_for(
        Duration::from_secs(10),
        "retention to delete old segments",
        || {
            let mut leader = leader.clone();
            let request = earliest.clone();
            async move {
                let answer = leader.list_offsets(request).await.ok()?.into_inner();
                answer.topics[0].partitions[0].offset.filter(|o| *o > 0)
            }
        },
    )
    .await;
    // At least retention.bytes (2 KiB, about four batches) stays.
    assert!(start <= 8, "retention kept too little (log start {start})");
    controller.stop().await;
}
