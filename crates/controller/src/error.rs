//! The controller's error type: one enum whose variants carry the facts of each failure, and
//! the [`ErrorCode`] each one is reported with.

use strom_proto::common::v1::ErrorCode;
use strom_types::{BrokerId, LeaderEpoch, PartitionId, TopicId, TopicName};

/// Everything a controller operation can fail with.
///
/// The pure logic of this crate produces the request errors; [`Error::Meta`] and
/// [`Error::NotController`] are for the I/O shell. [`Error::code`] gives the wire code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A topic name breaks the naming rules.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopicName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A new topic's name differs from an existing one only in `.` versus `_`, which would
    /// collide in metric names (Kafka rejects this too).
    #[error(
        "topic name {topic:?} collides with existing topic {existing:?}: names may not differ \
         only in '.' versus '_'"
    )]
    TopicNameCollision {
        /// The rejected name.
        topic: TopicName,
        /// The existing topic it collides with.
        existing: TopicName,
    },
    /// A topic with this name already exists.
    #[error("topic {topic:?} already exists")]
    TopicAlreadyExists {
        /// The name.
        topic: TopicName,
    },
    /// No topic has this name.
    #[error("unknown topic {topic:?}")]
    UnknownTopic {
        /// The name as requested.
        topic: String,
    },
    /// No topic has this id.
    #[error("unknown topic id {topic}")]
    UnknownTopicId {
        /// The id as requested.
        topic: TopicId,
    },
    /// The topic exists but has no such partition.
    #[error("unknown partition {topic}/{partition}")]
    UnknownPartition {
        /// The topic id.
        topic: TopicId,
        /// The partition index.
        partition: PartitionId,
    },
    /// A partition count that is not allowed.
    #[error("invalid partition count {requested}: {reason}")]
    InvalidPartitions {
        /// The requested count, after applying the cluster default.
        requested: i64,
        /// Why it is not allowed.
        reason: &'static str,
    },
    /// A replication factor below 1 or above the number of live brokers.
    #[error("invalid replication factor {requested} with {live_brokers} live brokers")]
    InvalidReplicationFactor {
        /// The requested factor, after applying the cluster default.
        requested: i64,
        /// How many brokers are live.
        live_brokers: usize,
    },
    /// A topic config override that is unknown or not allowed.
    #[error(transparent)]
    TopicConfig(#[from] strom_topic_config::Error),
    /// The request came from a broker whose registration epoch is not the current one (or
    /// which is not registered at all): it restarted or lost its lease since.
    #[error("broker {broker} sent broker epoch {sent}, current registration is {current:?}")]
    StaleBrokerEpoch {
        /// The sending broker.
        broker: BrokerId,
        /// The epoch it sent.
        sent: i64,
        /// The epoch of its live registration; `None` when it is not registered.
        current: Option<i64>,
    },
    /// The proposer's leader epoch is older than the partition's.
    #[error("partition {topic}/{partition}: leader epoch {sent} is fenced by {current}")]
    FencedLeaderEpoch {
        /// The topic id.
        topic: TopicId,
        /// The partition index.
        partition: PartitionId,
        /// The epoch the proposer sent.
        sent: LeaderEpoch,
        /// The partition's current leader epoch.
        current: LeaderEpoch,
    },
    /// The proposer's leader epoch is newer than the partition's: this controller has not
    /// seen the latest state (or the proposer is confused).
    #[error("partition {topic}/{partition}: leader epoch {sent} is newer than {current}")]
    UnknownLeaderEpoch {
        /// The topic id.
        topic: TopicId,
        /// The partition index.
        partition: PartitionId,
        /// The epoch the proposer sent.
        sent: LeaderEpoch,
        /// The partition's current leader epoch.
        current: LeaderEpoch,
    },
    /// The proposer is not the partition's leader at the epoch it named.
    #[error("partition {topic}/{partition}: broker {broker} is not the leader ({leader:?})")]
    NotLeader {
        /// The topic id.
        topic: TopicId,
        /// The partition index.
        partition: PartitionId,
        /// The proposing broker.
        broker: BrokerId,
        /// The partition's current leader.
        leader: Option<BrokerId>,
    },
    /// The proposal is based on a partition epoch that is not the current one.
    #[error("partition {topic}/{partition}: partition epoch {sent} is not the current {current}")]
    InvalidUpdateVersion {
        /// The topic id.
        topic: TopicId,
        /// The partition index.
        partition: PartitionId,
        /// The epoch the proposal names.
        sent: i32,
        /// The partition's current epoch.
        current: i32,
    },
    /// A proposed ISR that is malformed: empty, with duplicates or non-replicas, or without
    /// the leader.
    #[error("partition {topic}/{partition}: invalid ISR proposal: {reason}")]
    InvalidIsr {
        /// The topic id.
        topic: TopicId,
        /// The partition index.
        partition: PartitionId,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A proposed ISR member may not join: it is not registered, or it caught up under a
    /// registration it no longer has.
    #[error(
        "partition {topic}/{partition}: broker {broker} with epoch {sent} is not eligible for \
         the ISR (current registration {current:?})"
    )]
    IneligibleReplica {
        /// The topic id.
        topic: TopicId,
        /// The partition index.
        partition: PartitionId,
        /// The ineligible member.
        broker: BrokerId,
        /// The broker epoch the proposal names for it.
        sent: i64,
        /// Its live registration's epoch; `None` when it is not registered.
        current: Option<i64>,
    },
    /// A request that is malformed as a whole (e.g. an unknown enum value).
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong with it.
        reason: String,
    },
    /// This process is not the active controller.
    #[error("not the active controller (active: {active_id:?} at {active_address:?})")]
    NotController {
        /// The active controller's id, when known.
        active_id: Option<i32>,
        /// The active controller's address, when known.
        active_address: Option<String>,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {reason}")]
    Bind {
        /// The address.
        address: std::net::SocketAddr,
        /// What the OS reported.
        reason: String,
    },
    /// The gRPC server failed.
    #[error("gRPC server failed: {reason}")]
    Serve {
        /// What the transport reported.
        reason: String,
    },
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Meta(#[from] strom_meta::Error),
}

impl Error {
    /// The wire code this error is reported with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidTopicName { .. } | Error::TopicNameCollision { .. } => {
                ErrorCode::InvalidTopicException
            }
            Error::TopicAlreadyExists { .. } => ErrorCode::TopicAlreadyExists,
            Error::UnknownTopic { .. } | Error::UnknownPartition { .. } => {
                ErrorCode::UnknownTopicOrPartition
            }
            Error::UnknownTopicId { .. } => ErrorCode::UnknownTopicId,
            Error::InvalidPartitions { .. } => ErrorCode::InvalidPartitions,
            Error::InvalidReplicationFactor { .. } => ErrorCode::InvalidReplicationFactor,
            Error::TopicConfig(_) => ErrorCode::InvalidConfig,
            Error::StaleBrokerEpoch { .. } => ErrorCode::StaleBrokerEpoch,
            Error::FencedLeaderEpoch { .. } | Error::NotLeader { .. } => {
                ErrorCode::FencedLeaderEpoch
            }
            Error::UnknownLeaderEpoch { .. } => ErrorCode::UnknownLeaderEpoch,
            Error::InvalidUpdateVersion { .. } => ErrorCode::InvalidUpdateVersion,
            Error::InvalidIsr { .. } => ErrorCode::InvalidRequest,
            Error::IneligibleReplica { .. } => ErrorCode::IneligibleReplica,
            Error::NotController { .. } => ErrorCode::NotController,
            Error::InvalidRequest { .. } => ErrorCode::InvalidRequest,
            Error::Bind { .. } | Error::Serve { .. } => ErrorCode::UnknownServerError,
            Error::Meta(e) => meta_code(e),
        }
    }

    /// Whether the caller may repeat the operation; see [`ErrorCode::is_retriable`].
    pub fn is_retriable(&self) -> bool {
        self.code().is_retriable()
    }
}

/// Losing the election key or its lease, or stepping down, means this process is no longer
/// the controller, so the caller should find the new one; an unreachable store is transient;
/// anything else (a malformed stored value, a rejected request) is a server fault.
fn meta_code(error: &strom_meta::Error) -> ErrorCode {
    match error {
        strom_meta::Error::NotHolder { .. }
        | strom_meta::Error::LeaseExpired { .. }
        | strom_meta::Error::Cancelled => ErrorCode::NotController,
        e if e.is_retriable() => ErrorCode::MetadataStoreUnavailable,
        _ => ErrorCode::UnknownServerError,
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_kafka() {
        let topic = TopicId::new(1);
        let partition = PartitionId::new(0);
        let name = TopicName::new("t").unwrap();
        let cases = [
            (
                Error::InvalidTopicName {
                    name: "a b".into(),
                    reason: "x",
                },
                ErrorCode::InvalidTopicException,
            ),
            (
                Error::TopicNameCollision {
                    topic: TopicName::new("a.b").unwrap(),
                    existing: TopicName::new("a_b").unwrap(),
                },
                ErrorCode::InvalidTopicException,
            ),
            (
                Error::TopicAlreadyExists {
                    topic: name.clone(),
                },
                ErrorCode::TopicAlreadyExists,
            ),
            (
                Error::UnknownTopic { topic: "t".into() },
                ErrorCode::UnknownTopicOrPartition,
            ),
            (
                Error::InvalidPartitions {
                    requested: 0,
                    reason: "x",
                },
                ErrorCode::InvalidPartitions,
            ),
            (
                Error::InvalidReplicationFactor {
                    requested: 4,
                    live_brokers: 3,
                },
                ErrorCode::InvalidReplicationFactor,
            ),
            (
                Error::TopicConfig(strom_topic_config::Error::UnknownConfig { name: "x".into() }),
                ErrorCode::InvalidConfig,
            ),
            (
                Error::StaleBrokerEpoch {
                    broker: BrokerId::new(1),
                    sent: 1,
                    current: None,
                },
                ErrorCode::StaleBrokerEpoch,
            ),
            (
                Error::NotLeader {
                    topic,
                    partition,
                    broker: BrokerId::new(1),
                    leader: None,
                },
                ErrorCode::FencedLeaderEpoch,
            ),
            (
                Error::InvalidIsr {
                    topic,
                    partition,
                    reason: "x",
                },
                ErrorCode::InvalidRequest,
            ),
            (
                Error::NotController {
                    active_id: Some(2),
                    active_address: None,
                },
                ErrorCode::NotController,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code, "{error}");
        }
    }

    #[test]
    fn meta_errors_map_to_store_or_controller_codes() {
        let unavailable = Error::from(strom_meta::Error::Unavailable {
            operation: "txn",
            reason: "timeout".into(),
        });
        assert_eq!(unavailable.code(), ErrorCode::MetadataStoreUnavailable);
        assert!(unavailable.is_retriable());
        let lost = Error::from(strom_meta::Error::NotHolder {
            key: "k".into(),
            epoch: 3,
        });
        assert_eq!(lost.code(), ErrorCode::NotController);
        let corrupt = Error::from(strom_meta::Error::Decode {
            key: "k".into(),
            reason: "bad".into(),
        });
        assert_eq!(corrupt.code(), ErrorCode::UnknownServerError);
        assert!(!corrupt.is_retriable());
    }
}
