//! Decodes arbitrary bytes as every request message of the gRPC API, and as the two responses
//! that carry records, then runs the checks the services run on what they decoded.
//!
//! Every message that decodes must survive a prost round trip: its encoding is as long as
//! `encoded_len` says and decodes back to the same message. Then:
//!
//! - records in produce requests (also inside a `ProduceStreamRequest`), fetch responses and
//!   follower fetch responses go through the header-and-CRC checks a partition log runs before
//!   an append, and each batch that passes must stay valid once the leader stamps its base
//!   offset and epoch on it; fetched batches are also decoded, as a consumer does. Each records
//!   field is tried as sent and with its first batch's CRC fixed, so mutations get past it;
//! - produced-to topic and partition pairs are parsed as the broker parses them, and must name
//!   their partition directory reversibly;
//! - topic config overrides in CreateTopics and AlterConfigs go through the controller's
//!   validation, and whatever it accepts must make a partition log config the broker opens.
//!
//! Any panic is a bug; decode and validation errors are expected.

#![no_main]

use std::collections::BTreeMap;
use std::fmt::Debug;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use strom_proto::admin::v1 as admin;
use strom_proto::broker::v1 as broker;
use strom_proto::controller::v1 as controller;
use strom_proto::coordinator::v1 as coordinator;
use strom_proto::replication::v1 as replication;
use strom_record::{
    BatchHeader, HEADER_SIZE, batches, decode_records, peek_batch_size, set_base_offset,
    set_partition_leader_epoch, update_crc, validate_batch,
};
use strom_storage::LogConfig;
use strom_types::{PartitionId, TopicName, TopicPartition};

/// Decodes `data` as an `M`; if it decodes, checks that its encoding decodes back to it.
///
/// Only the decoded messages are compared, not the bytes: map fields are `HashMap`s, whose
/// encoding order is not stable.
fn round_trip<M: Message + Default + PartialEq + Debug>(data: &[u8]) -> Option<M> {
    let message = M::decode(data).ok()?;
    let encoded = message.encode_to_vec();
    assert_eq!(encoded.len(), message.encoded_len(), "encoded_len is exact");
    let decoded = M::decode(encoded.as_slice()).expect("a message's own encoding decodes");
    assert_eq!(
        decoded, message,
        "decoding the encoding gives the message back"
    );
    Some(message)
}

/// Runs [`check_batches`] on `records` as sent, then with the first batch's CRC fixed.
fn check_records(records: &[u8], consume: bool) {
    check_batches(records, consume);
    if records.len() >= HEADER_SIZE {
        let mut fixed = records.to_vec();
        let end = match peek_batch_size(&fixed) {
            Some(Ok(size)) if size <= fixed.len() => size,
            _ => fixed.len(),
        };
        update_crc(&mut fixed[..end]);
        check_batches(&fixed, consume);
    }
}

/// Walks the batches of `records` as `PartitionLog::append_as_leader` and
/// `append_as_follower` do before writing (strom-storage's private `validate_all`, its size
/// limit aside), and checks every batch that passes; `consume` also decodes its records.
fn check_batches(records: &[u8], consume: bool) {
    let mut position = 0;
    for item in batches(records) {
        let Ok((header, batch)) = item else { break };
        assert_eq!(
            records.get(position..position + batch.len()),
            Some(batch),
            "the batches are the records, back to back"
        );
        assert_eq!(header.total_size(), batch.len());
        position += batch.len();
        // The leader rewrites these two fields, outside the CRC, on the way to the file;
        // readers and recovery then validate what it wrote.
        let mut stamped = batch.to_vec();
        set_base_offset(&mut stamped, 0);
        set_partition_leader_epoch(&mut stamped, 0);
        let expected = BatchHeader {
            base_offset: 0,
            partition_leader_epoch: 0,
            ..header
        };
        assert_eq!(
            validate_batch(&stamped).ok(),
            Some(expected),
            "a valid batch stays valid once stamped"
        );
        if consume && let Ok(decoded) = decode_records(batch) {
            assert_eq!(Ok(decoded.len()), usize::try_from(header.records_count));
        }
    }
}

/// Parses a topic and partition as the broker's leader lookup does; a valid pair must name its
/// partition directory reversibly.
fn check_partition(topic: &str, partition: i32) {
    let Ok(name) = TopicName::new(topic) else {
        return;
    };
    assert_eq!(name.as_str(), topic, "a valid topic name is kept as sent");
    let Ok(partition) = PartitionId::try_new(partition) else {
        return;
    };
    let tp = TopicPartition::new(name, partition);
    assert_eq!(
        TopicPartition::from_dir_name(&tp.dir_name()).ok(),
        Some(tp),
        "a partition directory name parses back to its partition"
    );
}

/// Validates config overrides as the controller does for a topic with `replication_factor`
/// replicas. What it accepts must be normalised already, and must make a partition log config
/// that passes `LogConfig::validate`, converted as brokers convert it.
fn check_configs<'a>(
    overrides: impl IntoIterator<Item = (&'a String, &'a String)>,
    replication_factor: u16,
) {
    let Ok(configs) = strom_topic_config::validate_topic_configs(overrides, replication_factor)
    else {
        return;
    };
    let again: Option<BTreeMap<String, String>> =
        strom_topic_config::validate_overrides(&configs).ok();
    assert_eq!(
        again.as_ref(),
        Some(&configs),
        "normalised configs validate to themselves"
    );
    let settings = strom_topic_config::log_settings(&configs);
    let config = LogConfig::from(&settings);
    assert!(
        config.validate().is_ok(),
        "accepted configs {configs:?} make an invalid log config {config:?}"
    );
}

/// Checks every partition of a produce request as the broker's produce path sees it.
fn check_produce(request: &broker::ProduceRequest) {
    for topic in &request.topics {
        for partition in &topic.partitions {
            check_partition(&topic.topic, partition.partition);
            check_records(&partition.records, false);
        }
    }
}

/// The requests and responses whose contents the services check beyond decoding.
fn check_contents(data: &[u8]) {
    if let Some(request) = round_trip::<broker::ProduceRequest>(data) {
        check_produce(&request);
    }
    if let Some(stream) = round_trip::<broker::ProduceStreamRequest>(data)
        && let Some(request) = &stream.request
    {
        check_produce(request);
    }
    if let Some(response) = round_trip::<broker::FetchResponse>(data) {
        for partition in response.topics.iter().flat_map(|t| &t.partitions) {
            check_records(&partition.records, true);
        }
    }
    if let Some(response) = round_trip::<replication::FollowerFetchResponse>(data) {
        for partition in response.topics.iter().flat_map(|t| &t.partitions) {
            check_records(&partition.records, false);
        }
    }
    if let Some(request) = round_trip::<admin::CreateTopicsRequest>(data) {
        for topic in &request.topics {
            // 0 (or less) asks for the cluster default, unknown here: then no limit applies.
            let replication_factor = u16::try_from(topic.replication_factor)
                .ok()
                .filter(|rf| *rf > 0)
                .unwrap_or(u16::MAX);
            check_configs(&topic.configs, replication_factor);
        }
    }
    if let Some(request) = round_trip::<admin::AlterConfigsRequest>(data) {
        for resource in &request.resources {
            let set = resource
                .operations
                .iter()
                .filter(|op| op.op_type == admin::AlterConfigOpType::Set as i32)
                .map(|op| (&op.name, &op.value));
            check_configs(set, u16::MAX);
        }
    }
}

/// The other requests, whose services read scalar fields and names from them.
fn check_round_trips(data: &[u8]) {
    round_trip::<broker::FetchRequest>(data);
    round_trip::<broker::ListOffsetsRequest>(data);
    round_trip::<broker::MetadataRequest>(data);
    round_trip::<broker::InitProducerIdRequest>(data);
    round_trip::<replication::FollowerFetchRequest>(data);
    round_trip::<replication::OffsetsForLeaderEpochRequest>(data);
    round_trip::<admin::DeleteTopicsRequest>(data);
    round_trip::<admin::DescribeTopicsRequest>(data);
    round_trip::<admin::DescribeClusterRequest>(data);
    round_trip::<admin::DescribeConfigsRequest>(data);
    round_trip::<admin::DrainBrokerRequest>(data);
    round_trip::<coordinator::FindCoordinatorRequest>(data);
    round_trip::<coordinator::HeartbeatRequest>(data);
    round_trip::<coordinator::LeaveGroupRequest>(data);
    round_trip::<coordinator::CommitOffsetsRequest>(data);
    round_trip::<coordinator::FetchOffsetsRequest>(data);
    round_trip::<coordinator::ListGroupsRequest>(data);
    round_trip::<coordinator::DescribeGroupsRequest>(data);
    round_trip::<coordinator::DeleteGroupsRequest>(data);
    round_trip::<coordinator::ResetOffsetsRequest>(data);
    round_trip::<controller::AlterPartitionRequest>(data);
    round_trip::<controller::AllocateProducerIdsRequest>(data);
}

fuzz_target!(|data: &[u8]| {
    check_contents(data);
    check_round_trips(data);
});
