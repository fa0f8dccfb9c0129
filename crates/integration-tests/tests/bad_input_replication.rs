//! Bad input to the ReplicationService (FollowerFetch, OffsetsForLeaderEpoch) on a partition's
//! leader and on its follower, sent as a broker would but with the wrong facts: negative and
//! unregistered replica ids, stale broker epochs, unknown topics and partitions, stale and
//! future leader epochs, offsets outside the log, a replica that is not one, absurd waits; and
//! the inputs for which the contract names the answer. Every call answers within a bound with
//! a definite code and replication goes on.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::bad_input::{
    Checks, Outcome, answer, bounded, broker_epochs, code, edited, latest, lookup, produce_code,
    produce_one,
};
use common::data::{Cluster, TOPIC, batch, client, leader_of, produce_request};
use common::{BrokerProc, wait_for};
use strom_proto::admin::v1 as admin_pb;
use strom_proto::broker::v1 as broker_pb;
use strom_proto::common::v1::ErrorCode;
use strom_proto::replication::v1 as pb;
use strom_proto::replication::v1::replication_service_client::ReplicationServiceClient;
use tonic::transport::Channel;

type Replication = ReplicationServiceClient<Channel>;

/// A topic with one replica, for a follower fetch from a broker that holds none.
const SOLO: &str = "solo";

/// A well-formed topic id that no topic has.
const UNUSED_ID: &str = "00000000-0000-0000-0000-000000000000";

/// The request-level error code of a FollowerFetch answer, else that of its first partition.
fn follower_code(response: &pb::FollowerFetchResponse) -> Option<ErrorCode> {
    code(response.error.as_ref()).or_else(|| {
        let partition = response.topics.first()?.partitions.first()?;
        code(partition.error.as_ref())
    })
}

/// The request-level error code of an OffsetsForLeaderEpoch answer, else that of its first
/// partition.
fn epoch_code(response: &pb::OffsetsForLeaderEpochResponse) -> Option<ErrorCode> {
    code(response.error.as_ref()).or_else(|| {
        let partition = response.topics.first()?.partitions.first()?;
        code(partition.error.as_ref())
    })
}

/// The first (only) partition of a FollowerFetch request.
fn wanted(request: &mut pb::FollowerFetchRequest) -> &mut pb::FollowerFetchPartition {
    &mut request.topics[0].partitions[0]
}

/// The first (only) lookup of an OffsetsForLeaderEpoch request.
fn asked(
    request: &mut pb::OffsetsForLeaderEpochRequest,
) -> &mut pb::OffsetsForLeaderEpochPartition {
    &mut request.topics[0].partitions[0]
}

/// A ReplicationService client of `broker`.
async fn replication(broker: &BrokerProc) -> Replication {
    ReplicationServiceClient::connect(format!("http://{}", broker.address))
        .await
        .unwrap()
}

/// A follower fetch by `replica` (broker id and epoch) of partition 0 of `topic` (name and
/// id) from `fetch_offset`, at leader epoch `epoch`, answered at once.
fn follower_fetch(
    replica: (i32, i64),
    topic: (&str, &str),
    fetch_offset: i64,
    epoch: i32,
) -> pb::FollowerFetchRequest {
    pb::FollowerFetchRequest {
        replica_id: replica.0,
        broker_epoch: replica.1,
        max_wait_ms: 0,
        min_bytes: 0,
        max_bytes: 0,
        topics: vec![pb::FollowerFetchTopic {
            topic: topic.0.to_owned(),
            topic_id: topic.1.to_owned(),
            partitions: vec![pb::FollowerFetchPartition {
                partition: 0,
                fetch_offset,
                current_leader_epoch: epoch,
                last_fetched_epoch: None,
                log_start_offset: 0,
                partition_max_bytes: 0,
            }],
        }],
    }
}

/// A lookup by broker `replica` of where `epoch` ends in partition 0 of `topic` (name and
/// id), naming `epoch` as the current leader epoch too.
fn epoch_lookup(replica: i32, topic: (&str, &str), epoch: i32) -> pb::OffsetsForLeaderEpochRequest {
    pb::OffsetsForLeaderEpochRequest {
        replica_id: Some(replica),
        topics: vec![pb::OffsetsForLeaderEpochTopic {
            topic: topic.0.to_owned(),
            topic_id: topic.1.to_owned(),
            partitions: vec![pb::OffsetsForLeaderEpochPartition {
                partition: 0,
                current_leader_epoch: Some(epoch),
                leader_epoch: epoch,
            }],
        }],
    }
}

/// The id of `topic`, the index in `brokers` of the leader of its partition 0 and its leader
/// epoch, once that leader serves it.
async fn placement_of(brokers: &[BrokerProc], topic: &str) -> (String, usize, i32) {
    wait_for(Duration::from_secs(20), "a serving leader", || async {
        let metadata = brokers[0].metadata().await?;
        let found = metadata.topics.iter().find(|t| t.topic == topic)?;
        let leader = found.partitions.first()?.leader_id?;
        let index = brokers.iter().position(|b| b.id == leader)?;
        let request = broker_pb::ListOffsetsRequest {
            topics: vec![broker_pb::ListOffsetsTopic {
                topic: topic.to_owned(),
                partitions: vec![lookup(0, broker_pb::OffsetSpec::Latest, 0)],
            }],
        };
        let mut data = client(&brokers[index]).await;
        let offsets = data.list_offsets(request).await.ok()?.into_inner();
        let result = offsets.topics.first()?.partitions.first()?;
        let epoch = result.leader_epoch.filter(|_| result.error.is_none())?;
        Some((found.topic_id.clone(), index, epoch))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_requests_with_bad_input_are_refused_and_replication_goes_on() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("bad-internal-replication", 2, &[]).await
    else {
        return;
    };
    let leader = leader_of(&brokers, None, 2).await;
    let follower = 1 - leader;
    let mut data = client(&brokers[leader]).await;
    let request = produce_request(broker_pb::Acks::All as i32, batch(&["a", "b"]));
    let acked = answer("produce", data.produce(request)).await;
    assert_eq!(produce_code(&acked), None);
    let epochs = broker_epochs(&controller.address).await;
    let (topic_id, _, epoch) = placement_of(&brokers, TOPIC).await;
    let end = latest(&mut data, TOPIC, 0).await.offset.unwrap();
    let (leader_id, follower_id) = (brokers[leader].id, brokers[follower].id);
    let events = (TOPIC, topic_id.as_str());
    let good = follower_fetch((follower_id, epochs[&follower_id]), events, end, epoch);
    let mut on_leader = replication(&brokers[leader]).await;

    // Fetches by bad or unregistered replicas, of unknown partitions, at stale or future leader
    // epochs, from offsets outside the log.
    let requests = [
        edited(&good, |r| r.replica_id = -1),
        edited(&good, |r| r.replica_id = 99),
        edited(&good, |r| r.broker_epoch += 1),
        edited(&good, |r| r.broker_epoch = i64::MIN),
        edited(&good, |r| {
            r.topics[0].topic = "nope".to_owned();
            r.topics[0].topic_id = UNUSED_ID.to_owned();
        }),
        edited(&good, |r| wanted(r).partition = -1),
        edited(&good, |r| wanted(r).partition = 9),
        edited(&good, |r| wanted(r).current_leader_epoch = epoch - 1),
        edited(&good, |r| wanted(r).current_leader_epoch = epoch + 1),
        edited(&good, |r| wanted(r).current_leader_epoch = i32::MIN),
        edited(&good, |r| wanted(r).fetch_offset = -1),
        edited(&good, |r| wanted(r).fetch_offset = i64::MAX),
    ];
    let mut codes = Vec::new();
    for request in requests {
        let response = answer("follower fetch", on_leader.follower_fetch(request)).await;
        codes.push(follower_code(&response));
    }
    let stale = ErrorCode::StaleBrokerEpoch;
    let elsewhere = ErrorCode::NotLeaderOrFollower;
    let out_of_range = ErrorCode::OffsetOutOfRange;
    let expected = [
        ErrorCode::InvalidRequest,
        stale,
        stale,
        stale,
        elsewhere,
        elsewhere,
        elsewhere,
        ErrorCode::FencedLeaderEpoch,
        ErrorCode::UnknownLeaderEpoch,
        ErrorCode::FencedLeaderEpoch,
        out_of_range,
        out_of_range,
    ];
    assert_eq!(codes, expected.map(Some));

    // A fetch by a broker that is no replica, and a fetch from the follower.
    let create = admin_pb::CreateTopicsRequest {
        topics: vec![admin_pb::NewTopic {
            topic: SOLO.to_owned(),
            partitions: 1,
            replication_factor: 1,
            configs: Default::default(),
        }],
        timeout_ms: 0,
        validate_only: false,
    };
    let mut admin = brokers[0].admin().await;
    let created = answer("create solo", admin.create_topics(create)).await;
    assert!(created.topics[0].error.is_none(), "{created:?}");
    let (solo_id, solo_leader, solo_epoch) = placement_of(&brokers, SOLO).await;
    let stranger = brokers[1 - solo_leader].id;
    let solo = (SOLO, solo_id.as_str());
    let request = follower_fetch((stranger, epochs[&stranger]), solo, 0, solo_epoch);
    let mut on_solo_leader = replication(&brokers[solo_leader]).await;
    let response = answer("follower fetch", on_solo_leader.follower_fetch(request)).await;
    assert_eq!(follower_code(&response), Some(ErrorCode::InvalidRequest));
    let mut on_follower = replication(&brokers[follower]).await;
    let as_leader = follower_fetch((leader_id, epochs[&leader_id]), events, end, epoch);
    let response = answer("follower fetch", on_follower.follower_fetch(as_leader)).await;
    assert_eq!(follower_code(&response), Some(elsewhere));

    // An absurd wait is a long poll that ends when data arrives.
    let mut waiting = on_leader.clone();
    let request = edited(&good, |r| {
        r.max_wait_ms = i32::MAX;
        r.min_bytes = 1;
    });
    let poll = tokio::spawn(async move { waiting.follower_fetch(request).await });
    assert_eq!(produce_one(&mut data, batch(&["late"])).await, None);
    let polled = bounded("a waiting fetch", poll).await.unwrap();
    let polled = polled.unwrap().into_inner();
    assert_eq!(follower_code(&polled), None);
    assert!(!polled.topics[0].partitions[0].records.is_empty());

    // OffsetsForLeaderEpoch: unknown partitions, stale or future epochs, on leader and follower.
    let query = epoch_lookup(follower_id, events, epoch);
    let (older, newer) = (Some(epoch - 1), Some(epoch + 1));
    let lookups = [
        edited(&query, |r| {
            r.topics[0].topic = "nope".to_owned();
            r.topics[0].topic_id = UNUSED_ID.to_owned();
        }),
        edited(&query, |r| asked(r).partition = -1),
        edited(&query, |r| asked(r).current_leader_epoch = older),
        edited(&query, |r| asked(r).current_leader_epoch = newer),
        edited(&query, |r| asked(r).leader_epoch = epoch + 1000),
        edited(&query, |r| asked(r).leader_epoch = i32::MAX),
    ];
    let mut codes = Vec::new();
    for request in lookups {
        let call = on_leader.offsets_for_leader_epoch(request);
        codes.push(epoch_code(&answer("epoch lookup", call).await));
    }
    let expected = [
        elsewhere,
        elsewhere,
        ErrorCode::FencedLeaderEpoch,
        ErrorCode::UnknownLeaderEpoch,
        ErrorCode::UnknownLeaderEpoch,
        ErrorCode::UnknownLeaderEpoch,
    ];
    assert_eq!(codes, expected.map(Some));
    let call = on_follower.offsets_for_leader_epoch(query.clone());
    let response = answer("epoch lookup", call).await;
    assert_eq!(epoch_code(&response), Some(elsewhere));
    let found = answer("epoch lookup", on_leader.offsets_for_leader_epoch(query)).await;
    let result = &found.topics[0].partitions[0];
    assert!(result.error.is_none(), "{found:?}");
    assert_eq!(result.leader_epoch, epoch, "{found:?}");
    assert!(result.end_offset > end, "{found:?}");

    // Replication goes on: acks=all still completes.
    let request = produce_request(broker_pb::Acks::All as i32, batch(&["after"]));
    let acked = answer("produce", data.produce(request)).await;
    assert_eq!(produce_code(&acked), None, "{acked:?}");
    controller.stop().await;
}

/// Inputs for which the contract names the answer: a fetch size or wait below zero is an
/// invalid fetch size, as it is for consumers; a topic id that does not match the leader's log
/// is an inconsistent topic id; and a negative leader epoch or replica id is an invalid request
/// rather than an answer about an epoch no log has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_inputs_get_the_answers_the_contract_names() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("bad-replication-contract", 1, &[]).await
    else {
        return;
    };
    leader_of(&brokers, None, 1).await;
    let mut data = client(&brokers[0]).await;
    assert_eq!(produce_one(&mut data, batch(&["a"])).await, None);
    let epochs = broker_epochs(&controller.address).await;
    let (topic_id, _, epoch) = placement_of(&brokers, TOPIC).await;
    let end = latest(&mut data, TOPIC, 0).await.offset.unwrap();
    let events = (TOPIC, topic_id.as_str());
    let good = follower_fetch((1, epochs[&1]), events, end, epoch);
    let mut leader = replication(&brokers[0]).await;
    let mut checks = Checks::default();

    let bad_size = Outcome::Answer(Some(ErrorCode::InvalidFetchSize));
    let sizes = [
        ("max_bytes -1", edited(&good, |r| r.max_bytes = -1)),
        ("min_bytes -1", edited(&good, |r| r.min_bytes = -1)),
        ("max_wait_ms -1", edited(&good, |r| r.max_wait_ms = -1)),
        (
            "partition_max_bytes -1",
            edited(&good, |r| wanted(r).partition_max_bytes = -1),
        ),
    ];
    for (case, request) in sizes {
        let got = Outcome::of_call(leader.follower_fetch(request), follower_code).await;
        checks.check(format!("a follower fetch with {case}"), got, bad_size);
    }

    let inconsistent = Outcome::Answer(Some(ErrorCode::InconsistentTopicId));
    for id in [UNUSED_ID, "not-a-uuid"] {
        let request = edited(&good, |r| r.topics[0].topic_id = id.to_owned());
        let got = Outcome::of_call(leader.follower_fetch(request), follower_code).await;
        checks.check(format!("fetching topic id {id}"), got, inconsistent);
    }
    let query = epoch_lookup(1, events, epoch);
    let mismatched = edited(&query, |r| r.topics[0].topic_id = UNUSED_ID.to_owned());
    let got = Outcome::of_call(leader.offsets_for_leader_epoch(mismatched), epoch_code).await;
    checks.check("an epoch lookup of an unused topic id", got, inconsistent);

    let invalid = Outcome::Answer(Some(ErrorCode::InvalidRequest));
    let negative_epoch = edited(&query, |r| asked(r).leader_epoch = -1);
    let call = leader.offsets_for_leader_epoch(negative_epoch);
    let got = Outcome::of_call(call, epoch_code).await;
    checks.check("an epoch lookup of epoch -1", got, invalid);
    let negative_replica = edited(&query, |r| r.replica_id = Some(-5));
    let call = leader.offsets_for_leader_epoch(negative_replica);
    let got = Outcome::of_call(call, epoch_code).await;
    checks.check("an epoch lookup by replica -5", got, invalid);
    checks.assert_all();
    controller.stop().await;
}
