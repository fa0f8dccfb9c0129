//! Bad input to the ControllerService (AlterPartition, AllocateProducerIds) on the active
//! controller, sent as a broker would but with the wrong facts: negative and unregistered
//! broker ids, stale broker, leader and partition epochs, malformed and ineligible ISRs,
//! unknown topic ids and partitions. And, for the ReplicationService too: request messages
//! that do not decode, messages above the limits, and each service asked of a process that
//! does not serve it. Every call answers within a bound with a definite code, no partition
//! state changes, no producer id block is spent, and every process keeps serving.
#![allow(clippy::unwrap_used)]

mod common;

use common::bad_input::{
    OVER_BROKER_LIMIT, OVER_DEFAULT_LIMIT, TRUNCATED_MESSAGE, UNKNOWN_FIELD_ONLY, answer,
    assert_too_large, assert_undecodable, broker_epochs, code, edited, filler, raw_unary, refusal,
};
use common::data::{Cluster, TOPIC, client, leader_of};
use strom_proto::admin::v1 as admin_pb;
use strom_proto::admin::v1::admin_service_client::AdminServiceClient;
use strom_proto::broker::v1 as broker_pb;
use strom_proto::common::v1::ErrorCode;
use strom_proto::controller::v1 as pb;
use strom_proto::controller::v1::controller_service_client::ControllerServiceClient;
use strom_proto::replication::v1 as replication_pb;
use strom_proto::replication::v1::replication_service_client::ReplicationServiceClient;
use tonic::transport::Channel;

type Controller = ControllerServiceClient<Channel>;

const ALTER_PARTITION: &str = "/strom.controller.v1.ControllerService/AlterPartition";
const ALLOCATE_PRODUCER_IDS: &str = "/strom.controller.v1.ControllerService/AllocateProducerIds";
const FOLLOWER_FETCH: &str = "/strom.replication.v1.ReplicationService/FollowerFetch";
const OFFSETS_FOR_LEADER_EPOCH: &str =
    "/strom.replication.v1.ReplicationService/OffsetsForLeaderEpoch";

/// A well-formed topic id that no topic has.
const UNUSED_ID: &str = "00000000-0000-0000-0000-000000000000";

/// The request-level error code of an AlterPartition answer, else that of its first partition.
fn alter_code(response: &pb::AlterPartitionResponse) -> Option<ErrorCode> {
    code(response.error.as_ref()).or_else(|| {
        let partition = response.topics.first()?.partitions.first()?;
        code(partition.error.as_ref())
    })
}

/// The first (only) partition of an AlterPartition request.
fn proposal(request: &mut pb::AlterPartitionRequest) -> &mut pb::AlterPartitionPartition {
    &mut request.topics[0].partitions[0]
}

/// What the controller holds for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartitionState {
    topic_id: String,
    leader_epoch: i32,
    partition_epoch: i32,
    isr: Vec<i32>,
}

/// The state the controller at `address` holds for partition 0 of `topic`.
async fn partition_state(address: &str, topic: &str) -> PartitionState {
    let mut admin = AdminServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap();
    let request = admin_pb::DescribeTopicsRequest {
        topics: vec![topic.to_owned()],
    };
    let described = answer("describe topics", admin.describe_topics(request)).await;
    let topic = &described.topics[0];
    assert!(topic.error.is_none(), "{topic:?}");
    let partition = &topic.partitions[0];
    PartitionState {
        topic_id: topic.topic_id.clone(),
        leader_epoch: partition.leader_epoch,
        partition_epoch: partition.partition_epoch,
        isr: partition.isr.clone(),
    }
}

/// An AlterPartition by broker `broker` (at `broker_epoch`) that proposes `state`'s ISR again.
fn restate(broker: i32, broker_epoch: i64, state: &PartitionState) -> pb::AlterPartitionRequest {
    let new_isr = state
        .isr
        .iter()
        .map(|&broker_id| pb::IsrMember {
            broker_id,
            broker_epoch,
        })
        .collect();
    pb::AlterPartitionRequest {
        broker_id: broker,
        broker_epoch,
        topics: vec![pb::AlterPartitionTopic {
            topic_id: state.topic_id.clone(),
            partitions: vec![pb::AlterPartitionPartition {
                partition: 0,
                leader_epoch: state.leader_epoch,
                partition_epoch: state.partition_epoch,
                new_isr,
            }],
        }],
    }
}

/// One ISR member.
fn member(broker_id: i32, broker_epoch: i64) -> pb::IsrMember {
    pb::IsrMember {
        broker_id,
        broker_epoch,
    }
}

/// A block of producer ids for broker `broker_id` at `broker_epoch`: its first id and size, or
/// the error code.
async fn allocate(
    controller: &mut Controller,
    broker_id: i32,
    broker_epoch: i64,
) -> Result<(i64, i32), ErrorCode> {
    let request = pb::AllocateProducerIdsRequest {
        broker_id,
        broker_epoch,
    };
    let response = answer("allocate", controller.allocate_producer_ids(request)).await;
    match code(response.error.as_ref()) {
        Some(error) => Err(error),
        None => Ok((response.first_producer_id, response.count)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_requests_with_bad_input_change_no_partition_and_spend_no_ids() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("bad-internal-controller", 1, &[]).await
    else {
        return;
    };
    leader_of(&brokers, None, 1).await;
    let address = controller.address.clone();
    let broker_epoch = broker_epochs(&address).await[&1];
    let before = partition_state(&address, TOPIC).await;
    let good = restate(1, broker_epoch, &before);
    let mut direct = ControllerServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap();

    // Proposals from bad or unregistered brokers, for unknown partitions, at stale or future
    // epochs, and of malformed or ineligible ISRs.
    let (leader_epoch, partition_epoch) = (before.leader_epoch, before.partition_epoch);
    let (me, stranger) = (member(1, broker_epoch), member(2, broker_epoch));
    let (negative, restarted) = (member(-1, broker_epoch), member(1, broker_epoch + 1));
    let requests = [
        edited(&good, |r| r.broker_id = -1),
        edited(&good, |r| r.broker_id = 99),
        edited(&good, |r| r.broker_epoch = broker_epoch + 1),
        edited(&good, |r| r.broker_epoch = -1),
        edited(&good, |r| r.topics[0].topic_id = "not-a-uuid".to_owned()),
        edited(&good, |r| r.topics[0].topic_id = UNUSED_ID.to_owned()),
        edited(&good, |r| proposal(r).partition = -1),
        edited(&good, |r| proposal(r).partition = 5),
        edited(&good, |r| proposal(r).leader_epoch = leader_epoch - 1),
        edited(&good, |r| proposal(r).leader_epoch = leader_epoch + 1),
        edited(&good, |r| proposal(r).leader_epoch = i32::MIN),
        edited(&good, |r| proposal(r).partition_epoch = partition_epoch + 1),
        edited(&good, |r| proposal(r).partition_epoch = -1),
        edited(&good, |r| proposal(r).new_isr.clear()),
        edited(&good, |r| proposal(r).new_isr = vec![me; 2]),
        edited(&good, |r| proposal(r).new_isr.push(stranger)),
        edited(&good, |r| proposal(r).new_isr = vec![negative]),
        edited(&good, |r| proposal(r).new_isr = vec![restarted]),
    ];
    let mut codes = Vec::new();
    for request in requests {
        let response = answer("alter partition", direct.alter_partition(request)).await;
        codes.push(alter_code(&response));
    }
    let invalid = ErrorCode::InvalidRequest;
    let stale = ErrorCode::StaleBrokerEpoch;
    let unknown = ErrorCode::UnknownTopicOrPartition;
    let expected = [
        invalid,
        stale,
        stale,
        stale,
        unknown,
        unknown,
        unknown,
        unknown,
        ErrorCode::FencedLeaderEpoch,
        ErrorCode::UnknownLeaderEpoch,
        ErrorCode::FencedLeaderEpoch,
        ErrorCode::InvalidUpdateVersion,
        ErrorCode::InvalidUpdateVersion,
        invalid,
        invalid,
        invalid,
        invalid,
        ErrorCode::IneligibleReplica,
    ];
    assert_eq!(codes, expected.map(Some));

    // The current ISR proposed again is a no-op; next to an unknown partition, it still is.
    let mut mixed = good.clone();
    let unknown_partition = edited(&good.topics[0].partitions[0], |p| p.partition = 5);
    mixed.topics[0].partitions.push(unknown_partition);
    let response = answer("alter partition", direct.alter_partition(mixed)).await;
    let codes: Vec<_> = response.topics[0]
        .partitions
        .iter()
        .map(|p| code(p.error.as_ref()))
        .collect();
    assert_eq!(codes, [None, Some(unknown)]);
    let after = partition_state(&address, TOPIC).await;
    assert_eq!(after, before, "nothing changed");

    // Producer id blocks: refused to brokers that are not registered as they say, and no
    // block is spent on them.
    let (first, count) = allocate(&mut direct, 1, broker_epoch).await.unwrap();
    assert!(first >= 0 && count > 0, "{first} {count}");
    let askers = [
        (-1, broker_epoch),
        (99, broker_epoch),
        (i32::MAX, broker_epoch),
        (1, broker_epoch + 1),
        (1, i64::MIN),
    ];
    for (broker_id, epoch) in askers {
        let refused = allocate(&mut direct, broker_id, epoch).await;
        assert_eq!(refused, Err(stale), "broker {broker_id} at epoch {epoch}");
    }
    let next = allocate(&mut direct, 1, broker_epoch).await.unwrap();
    let following = first + i64::from(count);
    assert_eq!(next, (following, count), "the next block follows");

    // The broker still hands out producer ids, from a block after those.
    let mut data = client(&brokers[0]).await;
    let call = data.init_producer_id(broker_pb::InitProducerIdRequest {});
    let id = answer("init producer id", call).await;
    assert!(id.error.is_none(), "{id:?}");
    assert!(id.producer_id >= first + 2 * i64::from(count), "{id:?}");
    controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_oversized_and_misdirected_internal_messages_are_refused() {
    let Some(Cluster {
        etcd: _etcd,
        controller,
        brokers,
    }) = Cluster::start("bad-internal-wire", 1, &[]).await
    else {
        return;
    };
    leader_of(&brokers, None, 1).await;
    let (broker, active) = (brokers[0].address.as_str(), controller.address.as_str());

    // Undecodable messages, where each service is served.
    for path in [ALTER_PARTITION, ALLOCATE_PRODUCER_IDS] {
        assert_undecodable(raw_unary(active, path, TRUNCATED_MESSAGE).await);
    }
    for path in [FOLLOWER_FETCH, OFFSETS_FOR_LEADER_EPOCH] {
        assert_undecodable(raw_unary(broker, path, TRUNCATED_MESSAGE).await);
    }

    // Each service asked of a process that does not serve it.
    let misdirected = [
        (broker, ALTER_PARTITION),
        (broker, ALLOCATE_PRODUCER_IDS),
        (active, FOLLOWER_FETCH),
        (active, OFFSETS_FOR_LEADER_EPOCH),
    ];
    for (address, path) in misdirected {
        let refused = raw_unary(address, path, UNKNOWN_FIELD_ONLY).await;
        let got = refused.unwrap_err().code();
        assert_eq!(got, tonic::Code::Unimplemented, "{path} on {address}");
    }

    // Above the controller's 4 MiB limit and above the broker's 64 MiB one.
    let mut direct = ControllerServiceClient::connect(format!("http://{active}"))
        .await
        .unwrap();
    let huge = pb::AlterPartitionRequest {
        broker_id: 1,
        broker_epoch: 1,
        topics: vec![pb::AlterPartitionTopic {
            topic_id: filler(OVER_DEFAULT_LIMIT),
            partitions: Vec::new(),
        }],
    };
    let call = direct.alter_partition(huge);
    assert_too_large(&refusal("an oversized alter partition", call).await);
    let mut replication = ReplicationServiceClient::connect(format!("http://{broker}"))
        .await
        .unwrap();
    let huge = replication_pb::FollowerFetchRequest {
        replica_id: 1,
        topics: vec![replication_pb::FollowerFetchTopic {
            topic: filler(OVER_BROKER_LIMIT),
            ..Default::default()
        }],
        ..Default::default()
    };
    let call = replication.follower_fetch(huge);
    assert_too_large(&refusal("an oversized follower fetch", call).await);

    // Both still serve.
    let broker_epoch = broker_epochs(active).await[&1];
    assert!(allocate(&mut direct, 1, broker_epoch).await.is_ok());
    let lookup = replication_pb::OffsetsForLeaderEpochRequest {
        replica_id: None,
        topics: vec![replication_pb::OffsetsForLeaderEpochTopic {
            topic: TOPIC.to_owned(),
            topic_id: UNUSED_ID.to_owned(),
            partitions: vec![replication_pb::OffsetsForLeaderEpochPartition::default()],
        }],
    };
    let call = replication.offsets_for_leader_epoch(lookup);
    let found = answer("epoch lookup", call).await;
    let result = &found.topics[0].partitions[0];
    // The topic exists under another id: the lookup names the mismatch.
    let mismatch = Some(ErrorCode::InconsistentTopicId);
    assert_eq!(code(result.error.as_ref()), mismatch, "{found:?}");
    let metadata = brokers[0].metadata().await.unwrap();
    assert!(metadata.topics.iter().any(|t| t.topic == TOPIC));
    controller.stop().await;
}
