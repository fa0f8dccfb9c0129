//! Replication on three brokers with real etcd: a returning leader truncates the suffix only it
//! wrote, acks=all stops when the ISR falls below `min.insync.replicas` while reads go on, and an
//! idempotent retry after a leader change is answered with its original offsets.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::data::{
    Cluster, TOPIC, batch, client, fetch_all, idempotent_batch, leader_of, produce_request, values,
};
use common::{BrokerProc, wait_for};
use strom_proto::broker::v1 as pb;
use strom_proto::common::v1::ErrorCode;
use strom_storage::{LogConfig, PartitionLog, ReadBound, RocksStateStore, SystemClock};
use strom_types::{Offset, PartitionId, TopicName, TopicPartition};

/// The ISR of partition 0 as `brokers[witness]` sees it.
async fn isr(brokers: &[BrokerProc], witness: usize) -> Option<Vec<i32>> {
    let metadata = brokers[witness].metadata().await?;
    let partition = &metadata
        .topics
        .iter()
        .find(|t| t.topic == TOPIC)?
        .partitions[0];
    Some(partition.isr.clone())
}

/// Produces one request and returns the partition result.
async fn produce(
    broker: &BrokerProc,
    acks: pb::Acks,
    records: bytes::Bytes,
) -> pb::ProducePartitionResult {
    let response = client(broker)
        .await
        .produce(produce_request(acks as i32, records))
        .await
        .unwrap()
        .into_inner();
    assert!(response.error.is_none(), "{response:?}");
    response.topics[0].partitions[0].clone()
}

fn code(result: &pb::ProducePartitionResult) -> Option<ErrorCode> {
    result
        .error
        .as_ref()
        .map(|e| ErrorCode::try_from(e.code).unwrap())
}

/// The latest offset (high watermark) of partition 0 on `broker`.
async fn latest(broker: &BrokerProc) -> i64 {
    let request = pb::ListOffsetsRequest {
        topics: vec![pb::ListOffsetsTopic {
            topic: TOPIC.to_owned(),
            partitions: vec![pb::ListOffsetsPartition {
                partition: 0,
                spec: pb::OffsetSpec::Latest as i32,
                timestamp_ms: 0,
                current_leader_epoch: None,
            }],
        }],
    };
    let answer = client(broker)
        .await
        .list_offsets(request)
        .await
        .unwrap()
        .into_inner();
    answer.topics[0].partitions[0].offset.unwrap()
}

/// Every batch of partition 0 in a stopped broker's log, as stored.
fn stored_batches(broker: &BrokerProc) -> Vec<u8> {
    let data = broker.data_dir();
    let store = Arc::new(RocksStateStore::open(data.join("state")).unwrap());
    let tp = TopicPartition::new(TopicName::new(TOPIC).unwrap(), PartitionId::new(0));
    let log = PartitionLog::open(
        &data.join("logs"),
        tp,
        LogConfig::default(),
        store,
        Arc::new(SystemClock),
    )
    .unwrap();
    let end = log.log_end_offset().unwrap();
    let mut bytes = Vec::new();
    let mut from = Offset::ZERO;
    while from < end {
        let read = log.read(from, 1 << 20, ReadBound::LogEnd).unwrap();
        bytes.extend_from_slice(&read.records);
        from = read.next_offset;
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_leader_truncates_the_suffix_only_it_wrote() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        mut brokers,
    }) = Cluster::start("truncate-suffix", 3, &[("min.insync.replicas", "2")]).await
    else {
        return;
    };
    let old = leader_of(&brokers, None, 3).await;
    let acked = produce(&brokers[old], pb::Acks::All, batch(&["a", "b"])).await;
    assert_eq!(code(&acked), None);
    wait_for(
        Duration::from_secs(10),
        "both followers to have a, b",
        || async { (fetch_all(&brokers[old]).await.high_watermark == 2).then_some(()) },
    )
    .await;

    // Freeze both followers, let the leader write a suffix (acks=1) that nobody copies, and
    // freeze it too before the followers wake up: they elect a new leader without it.
    let followers: Vec<usize> = (0..3).filter(|i| *i != old).collect();
    for &f in &followers {
        brokers[f].signal("STOP");
    }
    // Let the followers' outstanding long polls (500 ms) run out, so no fetch is left open to
    // carry the suffix to them.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let suffix = produce(&brokers[old], pb::Acks::Leader, batch(&["x1", "x2"])).await;
    assert_eq!(suffix.base_offset, Some(2));
    brokers[old].signal("STOP");
    for &f in &followers {
        brokers[f].signal("CONT");
    }
    let new = leader_of(&brokers, Some(old), 2).await;
    let after = produce(&brokers[new], pb::Acks::All, batch(&["n1"])).await;
    assert_eq!(code(&after), None, "{after:?}");
    assert_eq!(
        after.base_offset,
        Some(2),
        "the new leader never had x1, x2"
    );

    // The old leader returns as a follower: it cuts x1, x2 by leader epoch, copies n1 and
    // rejoins the ISR.
    brokers[old].signal("CONT");
    let old_id = brokers[old].id;
    wait_for(
        Duration::from_secs(30),
        "the old leader to rejoin the ISR",
        || async {
            let isr = isr(&brokers, new).await?;
            (isr.len() == 3 && isr.contains(&old_id)).then_some(())
        },
    )
    .await;
    let fetched = fetch_all(&brokers[new]).await;
    assert_eq!(values(&fetched.records), ["a", "b", "n1"], "{fetched:?}");

    // Every replica holds the same batches, byte for byte.
    controller.stop().await;
    for broker in &mut brokers {
        broker.terminate().await;
    }
    let leader_bytes = stored_batches(&brokers[new]);
    assert_eq!(values(&leader_bytes), ["a", "b", "n1"]);
    for (i, broker) in brokers.iter().enumerate() {
        assert_eq!(
            stored_batches(broker),
            leader_bytes,
            "replica on broker {} differs from the leader's",
            brokers[i].id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_enough_in_sync_replicas_acks_all_stops_and_reads_go_on() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("min-isr", 3, &[("min.insync.replicas", "2")]).await
    else {
        return;
    };
    let leader = leader_of(&brokers, None, 3).await;
    let first = produce(&brokers[leader], pb::Acks::All, batch(&["a", "b"])).await;
    assert_eq!(code(&first), None);

    // One follower stopped: the ISR shrinks to 2 within replica-lag-time-max (2 s) + 2 s and
    // acks=all goes on.
    let (one, two) = ((leader + 1) % 3, (leader + 2) % 3);
    brokers[one].signal("STOP");
    let stopped = tokio::time::Instant::now();
    wait_for(
        Duration::from_secs(10),
        "the ISR to shrink to 2",
        || async { (isr(&brokers, leader).await?.len() == 2).then_some(()) },
    )
    .await;
    assert!(
        stopped.elapsed() <= Duration::from_secs(4),
        "{:?}",
        stopped.elapsed()
    );
    let second = produce(&brokers[leader], pb::Acks::All, batch(&["c"])).await;
    assert_eq!(code(&second), None, "{second:?}");

    // Two stopped: the ISR is the leader alone, acks=all is refused before appending, and
    // records below the high watermark are still served.
    brokers[two].signal("STOP");
    wait_for(
        Duration::from_secs(10),
        "the ISR to shrink to 1",
        || async { (isr(&brokers, leader).await?.len() == 1).then_some(()) },
    )
    .await;
    let before = latest(&brokers[leader]).await;
    let refused = produce(&brokers[leader], pb::Acks::All, batch(&["refused"])).await;
    assert_eq!(code(&refused), Some(ErrorCode::NotEnoughReplicas));
    assert_eq!(
        latest(&brokers[leader]).await,
        before,
        "nothing was appended"
    );
    let read = fetch_all(&brokers[leader]).await;
    assert_eq!(values(&read.records), ["a", "b", "c"], "{read:?}");

    // Both resume: they catch up, rejoin, and acks=all works again.
    brokers[one].signal("CONT");
    brokers[two].signal("CONT");
    wait_for(
        Duration::from_secs(30),
        "both followers to rejoin",
        || async { (isr(&brokers, leader).await?.len() == 3).then_some(()) },
    )
    .await;
    let leader = leader_of(&brokers, None, 3).await;
    let again = produce(&brokers[leader], pb::Acks::All, batch(&["d"])).await;
    assert_eq!(code(&again), None, "{again:?}");
    assert_eq!(again.base_offset, Some(3));
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_retry_after_leader_changes_is_not_duplicated() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        mut brokers,
    }) = Cluster::start("idempotent-retry", 3, &[("min.insync.replicas", "2")]).await
    else {
        return;
    };
    let first_leader = leader_of(&brokers, None, 3).await;
    let id = client(&brokers[first_leader])
        .await
        .init_producer_id(pb::InitProducerIdRequest {})
        .await
        .unwrap()
        .into_inner()
        .producer_id;
    let b0 = idempotent_batch(id, 0, &["a", "b"]);
    let b2 = idempotent_batch(id, 2, &["c", "d"]);
    let b4 = idempotent_batch(id, 4, &["e"]);
    assert_eq!(
        produce(&brokers[first_leader], pb::Acks::All, b0.clone())
            .await
            .base_offset,
        Some(0)
    );
    assert_eq!(
        produce(&brokers[first_leader], pb::Acks::All, b2.clone())
            .await
            .base_offset,
        Some(2)
    );

    // The leader dies before the producer hears back; the retry reaches the new leader.
    brokers[first_leader].kill9().await;
    let second_leader = leader_of(&brokers, Some(first_leader), 2).await;
    let retried = produce(&brokers[second_leader], pb::Acks::All, b2.clone()).await;
    assert_eq!((code(&retried), retried.base_offset), (None, Some(2)));
    let older = produce(&brokers[second_leader], pb::Acks::All, b0.clone()).await;
    assert_eq!((code(&older), older.base_offset), (None, Some(0)));
    let gap = produce(
        &brokers[second_leader],
        pb::Acks::All,
        idempotent_batch(id, 9, &["gap"]),
    )
    .await;
    assert_eq!(code(&gap), Some(ErrorCode::OutOfOrderSequenceNumber));
    let next = produce(&brokers[second_leader], pb::Acks::All, b4.clone()).await;
    assert_eq!((code(&next), next.base_offset), (None, Some(4)));
    assert_eq!(latest(&brokers[second_leader]).await, 5);

    // The killed broker restarts (rebuilding its producer state from disk) and rejoins; then
    // the second leader dies too. Whoever leads next still recognises the retry.
    brokers[first_leader].start();
    wait_for(
        Duration::from_secs(30),
        "the restarted broker to rejoin",
        || async { (isr(&brokers, second_leader).await?.len() == 3).then_some(()) },
    )
    .await;
    brokers[second_leader].kill9().await;
    let third_leader = leader_of(&brokers, Some(second_leader), 2).await;
    let again = produce(&brokers[third_leader], pb::Acks::All, b4).await;
    assert_eq!((code(&again), again.base_offset), (None, Some(4)));
    let fetched = fetch_all(&brokers[third_leader]).await;
    assert_eq!(values(&fetched.records), ["a", "b", "c", "d", "e"]);
    controller.stop().await;
}
