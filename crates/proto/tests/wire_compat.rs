//! Wire-compatibility tests for the v1 contracts.
//!
//! Each case decodes a message saved in `tests/golden/<name>.bin` by an earlier build and
//! checks every field against the value it was encoded from. A renumbered field, a changed type
//! or a renumbered enum value makes the decode differ, so the test fails before a release can
//! break clients or brokers still running the older schema.
//!
//! Golden files are written once and never rewritten. To add a case, add a test here and run
//! `STROM_WRITE_GOLDEN=1 cargo test -p strom-proto --test wire_compat`: files that do not exist
//! yet are created, existing ones are left untouched. A failing case means the change is not
//! wire-compatible; fix the schema, not the golden file.

use std::{fmt::Debug, fs, path::PathBuf};

use bytes::Bytes;
use prost::Message;
use strom_proto::{
    broker::v1::{
        Acks, FetchPartitionResult, FetchResponse, FetchTopicResult, ProducePartition,
        ProduceRequest, ProduceTopic,
    },
    common::v1::{Error, ErrorCode, LeaderHint},
    coordinator::v1::{
        HeartbeatRequest, ResetOffsetsRequest, TopicPartitions, reset_offsets_request,
    },
};

/// Set to create golden files that do not exist yet.
const WRITE_ENV: &str = "STROM_WRITE_GOLDEN";

fn golden_path(name: &str) -> PathBuf {
    // Read at run time (cargo sets it for every test run), not baked in at compile time: a
    // build directory shared by several clones may hand this binary to another checkout.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| ".".into());
    PathBuf::from(manifest_dir)
        .join("tests/golden")
        .join(format!("{name}.bin"))
}

/// Decodes the golden file `name`, asserts it equals `expected` and that re-encoding gives the
/// same bytes, and returns the decoded message for field-level checks.
fn decode_golden<M: Message + Default + PartialEq + Debug>(name: &str, expected: &M) -> M {
    let path = golden_path(name);
    if std::env::var_os(WRITE_ENV).is_some() && !path.exists() {
        fs::write(&path, expected.encode_to_vec())
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
    let golden = fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e} (set {WRITE_ENV}=1 to create it)",
            path.display()
        )
    });
    let decoded =
        M::decode(golden.as_slice()).unwrap_or_else(|e| panic!("decoding {}: {e}", path.display()));
    assert_eq!(&decoded, expected, "{name}: decoded message differs");
    assert_eq!(
        decoded.encode_to_vec(),
        golden,
        "{name}: re-encoding changed the bytes"
    );
    decoded
}

/// A stand-in for a RecordBatch v2 payload; the contract treats it as opaque bytes.
fn batch_bytes(seed: u8, len: u8) -> Bytes {
    (0..len)
        .map(|i| seed.wrapping_add(i.wrapping_mul(31)))
        .collect()
}

#[test]
fn produce_request_v1() {
    let expected = ProduceRequest {
        acks: Acks::All.into(),
        timeout_ms: 30_000,
        topics: vec![ProduceTopic {
            topic: "orders".to_owned(),
            partitions: vec![
                ProducePartition {
                    partition: 0,
                    records: batch_bytes(7, 61),
                },
                ProducePartition {
                    partition: 3,
                    records: batch_bytes(200, 120),
                },
            ],
        }],
    };
    let decoded = decode_golden("produce_request_v1", &expected);

    assert_eq!(decoded.acks, 3, "ACKS_ALL is 3 on the wire");
    assert_eq!(decoded.acks(), Acks::All);
    assert_eq!(decoded.timeout_ms, 30_000);
    let topic = &decoded.topics[0];
    assert_eq!(topic.topic, "orders");
    assert_eq!(topic.partitions[0].partition, 0);
    assert_eq!(topic.partitions[0].records, batch_bytes(7, 61));
    assert_eq!(topic.partitions[1].partition, 3);
    assert_eq!(topic.partitions[1].records.len(), 120);
}

#[test]
fn fetch_response_v1() {
    let expected = FetchResponse {
        error: None,
        topics: vec![FetchTopicResult {
            topic: "orders".to_owned(),
            partitions: vec![
                FetchPartitionResult {
                    partition: 0,
                    error: None,
                    high_watermark: 42,
                    log_start_offset: 7,
                    records: batch_bytes(1, 90),
                },
                FetchPartitionResult {
                    partition: 1,
                    error: Some(
                        Error::new(ErrorCode::NotLeaderOrFollower, "not the leader").with_leader(
                            LeaderHint::partition_leader(3, 12, "broker-3.strom:9092"),
                        ),
                    ),
                    high_watermark: 0,
                    log_start_offset: 0,
                    records: Bytes::new(),
                },
            ],
        }],
    };
    let decoded = decode_golden("fetch_response_v1", &expected);

    assert!(decoded.error.is_none());
    let partitions = &decoded.topics[0].partitions;
    assert_eq!(partitions[0].high_watermark, 42);
    assert_eq!(partitions[0].log_start_offset, 7);
    assert_eq!(partitions[0].records, batch_bytes(1, 90));
    assert!(partitions[0].error.is_none());

    let error = partitions[1]
        .error
        .as_ref()
        .expect("partition 1 carries an error");
    assert_eq!(error.code, 6, "NOT_LEADER_OR_FOLLOWER is 6 on the wire");
    assert_eq!(error.message, "not the leader");
    let leader = error
        .leader
        .as_ref()
        .expect("the error carries a leader hint");
    assert_eq!(leader.leader_id, 3);
    assert_eq!(leader.leader_epoch, Some(12));
    assert_eq!(leader.address, "broker-3.strom:9092");
    assert!(partitions[1].records.is_empty());
}

#[test]
fn heartbeat_request_v1() {
    let expected = HeartbeatRequest {
        group_id: "payments".to_owned(),
        member_id: "0b6f7c1e-5d2a-4c8e-9f3b-2a1d4e6f8a90".to_owned(),
        member_epoch: 5,
        instance_id: "consumer-a".to_owned(),
        rack_id: "eu-west-1a".to_owned(),
        rebalance_timeout_ms: 45_000,
        subscribed_topic_names: vec!["orders".to_owned(), "refunds".to_owned()],
        subscribed_topic_regex: String::new(),
        server_assignor: "uniform".to_owned(),
        topic_partitions: vec![TopicPartitions {
            topic_id: "5f0c3e0a-8d7b-4b61-a1f2-3c4d5e6f7a8b".to_owned(),
            topic: "orders".to_owned(),
            partitions: vec![0, 2, 4],
        }],
        // Added after v1: absent from the saved bytes, so it decodes as the default.
        session_timeout_ms: 0,
    };
    let decoded = decode_golden("heartbeat_request_v1", &expected);

    assert_eq!(decoded.group_id, "payments");
    assert_eq!(decoded.member_epoch, 5);
    assert_eq!(decoded.instance_id, "consumer-a");
    assert_eq!(decoded.rebalance_timeout_ms, 45_000);
    assert_eq!(decoded.subscribed_topic_names, ["orders", "refunds"]);
    assert_eq!(decoded.server_assignor, "uniform");
    assert_eq!(decoded.topic_partitions[0].partitions, [0, 2, 4]);
}

#[test]
fn reset_offsets_request_v1() {
    let expected = ResetOffsetsRequest {
        group_id: "payments".to_owned(),
        topic: "orders".to_owned(),
        partitions: vec![1, 2],
        strategy: Some(reset_offsets_request::Strategy::ShiftBy(-250)),
        dry_run: true,
    };
    let decoded = decode_golden("reset_offsets_request_v1", &expected);

    assert_eq!(
        decoded.strategy,
        Some(reset_offsets_request::Strategy::ShiftBy(-250))
    );
    assert!(decoded.dry_run);
    assert_eq!(decoded.partitions, [1, 2]);
}
