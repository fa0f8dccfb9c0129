//! The values stored under each key, as JSON so operators can read them with `etcdctl`.
//!
//! Every record is decoded into domain types on read; a value that does not decode is reported
//! with its key rather than skipped, since it means someone wrote the store by hand.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strom_types::{BrokerId, LeaderEpoch, TopicId, TopicName};

use crate::{Error, Result};

/// A broker's registration under `brokers/<id>`, attached to the broker's lease.
///
/// The registration's create revision is the **broker epoch**: it changes with every
/// registration, so the controller can tell a restarted broker from the one it knew.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerRegistration {
    /// The broker's configured id.
    pub id: BrokerId,
    /// The rack (or zone) the broker runs in, used to spread replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    /// The `host:port` clients and other brokers use to reach it.
    pub address: String,
    /// A random id drawn at process start, telling restarts apart in logs and tools.
    pub incarnation: String,
}

/// A coordinator's registration under `coordinators/<id>`, attached to its lease; the same
/// record is the value of the `groups/<g>/owner` keys it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoordinatorRecord {
    /// The coordinator's id.
    pub id: i32,
    /// The `host:port` clients use to reach it.
    pub address: String,
}

/// A committed offset under `offsets/<g>/<topic>/<p>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffsetRecord {
    /// The id of the topic the offset was committed for; an offset whose topic was deleted and
    /// re-created under the same name does not apply to the new topic.
    pub topic_id: TopicId,
    /// The offset of the next record to consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, when the consumer knew it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader_epoch: Option<i32>,
    /// Free-form data from the committer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub metadata: String,
    /// When the coordinator stored it, in Unix milliseconds.
    pub commit_timestamp_ms: i64,
}

/// The active controller's record under `controller`, attached to its lease.
///
/// Its create revision is the **controller epoch**.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerRecord {
    /// The controller's configured id.
    pub id: i32,
    /// The `host:port` brokers forward admin calls to.
    pub address: String,
}

/// A topic under `topics/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicRecord {
    /// The topic's unique id; its partitions live under `partitions/<id>/`.
    pub id: TopicId,
    /// The topic's name.
    pub name: TopicName,
    /// The number of partitions.
    pub partitions: u32,
    /// The number of replicas of each partition.
    pub replication_factor: u16,
    /// Config overrides; unnamed settings take their defaults.
    #[serde(default)]
    pub configs: BTreeMap<String, String>,
}

/// One partition's placement and leadership under `partitions/<topic_id>/<p>`.
///
/// Written only by the active controller. Invariants: `replicas` are distinct; `isr` is a
/// non-empty subset of `replicas`; `leader`, when set, is in `isr`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionRecord {
    /// All replicas, preferred leader first.
    pub replicas: Vec<BrokerId>,
    /// The leader; `None` while the partition is offline.
    pub leader: Option<BrokerId>,
    /// Grows by one with every leader change (including to and from "no leader").
    pub leader_epoch: LeaderEpoch,
    /// The in-sync replicas. When no replica is live this keeps the last members, so the
    /// partition comes back with a replica that has every acknowledged record.
    pub isr: Vec<BrokerId>,
    /// Grows by one with every change to this record; AlterPartition proposals name it.
    pub partition_epoch: i32,
}

/// The next free producer id, under `producer-ids`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProducerIdsRecord {
    /// The first id not yet handed out in any block.
    pub next_producer_id: i64,
}

/// Encodes a record for storage.
pub fn encode<T: Serialize>(value: &T) -> Result<bytes::Bytes> {
    serde_json::to_vec(value)
        .map(bytes::Bytes::from)
        .map_err(|e| Error::Encode {
            reason: e.to_string(),
        })
}

/// Decodes the record stored under `key`.
pub fn decode<T: for<'de> Deserialize<'de>>(key: &str, value: &[u8]) -> Result<T> {
    serde_json::from_slice(value).map_err(|e| Error::Decode {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_records_round_trip_as_json() {
        let record = PartitionRecord {
            replicas: vec![BrokerId::new(1), BrokerId::new(2)],
            leader: Some(BrokerId::new(1)),
            leader_epoch: LeaderEpoch::new(3),
            isr: vec![BrokerId::new(1)],
            partition_epoch: 7,
        };
        let bytes = encode(&record).unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"replicas":[1,2],"leader":1,"leader_epoch":3,"isr":[1],"partition_epoch":7}"#
        );
        assert_eq!(decode::<PartitionRecord>("k", &bytes).unwrap(), record);
    }

    #[test]
    fn bad_values_name_their_key() {
        let err = decode::<TopicRecord>("/strom/c/topics/t", br#"{"id":"nope"}"#).unwrap_err();
        assert!(err.to_string().contains("/strom/c/topics/t"), "{err}");
    }
}
