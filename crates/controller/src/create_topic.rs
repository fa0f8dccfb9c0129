//! Validation and planning of one CreateTopics entry.
//!
//! [`plan_create_topic`] turns a raw request into the topic record and initial partition
//! records the shell writes in one fenced transaction, or the error the client gets. The
//! checks run in Kafka's order: name, existing topic, name collision, partition count,
//! replication factor, configs, then placement.
//!
//! A request with several topics is planned one topic at a time; the shell adds each planned
//! topic to its view before planning the next, so names collide and placement balances
//! within the request too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strom_meta::records::{PartitionRecord, TopicRecord};
use strom_types::{LeaderEpoch, TopicId, TopicName};

use crate::placement::{PlacementRequest, place_replicas};
use crate::topic_config::validate_topic_configs;
use crate::view::ClusterView;
use crate::{Error, Result};

/// The most partitions one topic may be created with. Each partition is an etcd key and a
/// log directory on every replica, so a typo like `100000` is refused rather than planned.
pub const MAX_PARTITIONS_PER_TOPIC: u32 = 10_000;

/// One topic to create, as the client sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewTopic {
    /// The topic name, not yet validated.
    pub name: String,
    /// The number of partitions; 0 uses [`TopicDefaults::partitions`].
    pub partitions: i32,
    /// The number of replicas of each partition; 0 uses
    /// [`TopicDefaults::replication_factor`].
    pub replication_factor: i32,
    /// Config overrides, not yet validated.
    pub configs: BTreeMap<String, String>,
}

/// Cluster-wide defaults for topics created without a partition count or replication factor
/// (Kafka's `num.partitions` and `default.replication.factor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct TopicDefaults {
    /// The partition count of topics created without one.
    pub partitions: u32,
    /// The replication factor of topics created without one.
    pub replication_factor: u16,
}

impl Default for TopicDefaults {
    /// Kafka's defaults: one partition, one replica.
    fn default() -> Self {
        Self {
            partitions: 1,
            replication_factor: 1,
        }
    }
}

/// What creating a topic writes: its record and one record per partition, by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPlan {
    /// The topic record, with normalised configs.
    pub topic: TopicRecord,
    /// The initial partition records; element `i` is partition `i`.
    pub partitions: Vec<PartitionRecord>,
}

/// Validates `request` against `view` and plans the topic with id `id`.
///
/// `placement_start` rotates replica placement (see [`place_replicas`]); callers pick it at
/// random. Each partition starts with its first replica as leader at leader epoch 0, every
/// replica in the ISR, and partition epoch 0.
pub fn plan_create_topic(
    request: &NewTopic,
    defaults: &TopicDefaults,
    view: &ClusterView,
    id: TopicId,
    placement_start: usize,
) -> Result<TopicPlan> {
    let name = validate_name(&request.name, view)?;
    let partitions = partition_count(request.partitions, defaults)?;
    let replication_factor = replication_factor(request.replication_factor, defaults, view)?;
    let configs = validate_topic_configs(&request.configs, replication_factor)?;
    let brokers = view.placement_brokers();
    let loads = view.broker_loads();
    let placement = place_replicas(&PlacementRequest {
        brokers: &brokers,
        loads: &loads,
        partitions,
        replication_factor,
        start: placement_start,
    })?;
    let partitions_records = placement
        .into_iter()
        .map(|replicas| PartitionRecord {
            leader: replicas.first().copied(),
            leader_epoch: LeaderEpoch::new(0),
            isr: replicas.clone(),
            replicas,
            partition_epoch: 0,
        })
        .collect();
    Ok(TopicPlan {
        topic: TopicRecord {
            id,
            name,
            partitions,
            replication_factor,
            configs,
        },
        partitions: partitions_records,
    })
}

/// Parses a topic name a request carries: one that breaks the naming rules is
/// `INVALID_TOPIC_EXCEPTION`, whatever the request.
pub(crate) fn parse_topic_name(raw: &str) -> Result<TopicName> {
    TopicName::new(raw).map_err(|e| match e {
        strom_types::Error::InvalidTopicName { name, reason } => {
            Error::InvalidTopicName { name, reason }
        }
        // `TopicName::new` reports nothing else; keep the name if that ever changes.
        _ => Error::InvalidTopicName {
            name: raw.to_owned(),
            reason: "not a valid topic name",
        },
    })
}

/// Checks the name's syntax, that no topic has it, and that it does not collide with an
/// existing name differing only in `.` versus `_`.
fn validate_name(raw: &str, view: &ClusterView) -> Result<TopicName> {
    let name = parse_topic_name(raw)?;
    if view.topic_by_name(&name).is_some() {
        return Err(Error::TopicAlreadyExists { topic: name });
    }
    let folded = fold_name(name.as_str());
    let colliding = view
        .topics
        .values()
        .find(|topic| fold_name(topic.name.as_str()) == folded);
    if let Some(existing) = colliding {
        return Err(Error::TopicNameCollision {
            topic: name,
            existing: existing.name.clone(),
        });
    }
    Ok(name)
}

/// Kafka's collision key: `.` and `_` become the same character in metric names.
fn fold_name(name: &str) -> String {
    name.replace('.', "_")
}

/// The requested partition count, or the default for 0, within `1..=MAX_PARTITIONS_PER_TOPIC`.
fn partition_count(requested: i32, defaults: &TopicDefaults) -> Result<u32> {
    let count = match requested {
        0 => i64::from(defaults.partitions),
        n => i64::from(n),
    };
    if count < 1 {
        return Err(Error::InvalidPartitions {
            requested: count,
            reason: "a topic needs at least one partition",
        });
    }
    u32::try_from(count)
        .ok()
        .filter(|c| *c <= MAX_PARTITIONS_PER_TOPIC)
        .ok_or(Error::InvalidPartitions {
            requested: count,
            reason: "more than 10000 partitions per topic",
        })
}

/// The requested replication factor, or the default for 0, between 1 and the number of live
/// brokers.
fn replication_factor(requested: i32, defaults: &TopicDefaults, view: &ClusterView) -> Result<u16> {
    let factor = match requested {
        0 => i64::from(defaults.replication_factor),
        n => i64::from(n),
    };
    let live_brokers = view.brokers.len();
    u16::try_from(factor)
        .ok()
        .filter(|f| *f >= 1 && usize::from(*f) <= live_brokers)
        .ok_or(Error::InvalidReplicationFactor {
            requested: factor,
            live_brokers,
        })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use strom_proto::common::v1::ErrorCode;
    use strom_types::BrokerId;

    use super::*;
    use crate::topic_config::{MIN_INSYNC_REPLICAS, RETENTION_MS, UNCLEAN_LEADER_ELECTION_ENABLE};
    use crate::view::LiveBroker;

    const ID: TopicId = TopicId::new(0xabc);

    fn view(brokers: i32) -> ClusterView {
        let mut view = ClusterView::default();
        for id in 1..=brokers {
            view.brokers.insert(
                BrokerId::new(id),
                LiveBroker {
                    broker_epoch: i64::from(id),
                    rack: None,
                    address: format!("b{id}:9092"),
                },
            );
        }
        view
    }

    fn with_topic(mut view: ClusterView, name: &str) -> ClusterView {
        let id = TopicId::new(view.topics.len() as u128 + 1);
        view.topics.insert(
            id,
            TopicRecord {
                id,
                name: TopicName::new(name).unwrap(),
                partitions: 1,
                replication_factor: 1,
                configs: BTreeMap::new(),
            },
        );
        view
    }

    fn request(name: &str, partitions: i32, rf: i32, configs: &[(&str, &str)]) -> NewTopic {
        NewTopic {
            name: name.to_owned(),
            partitions,
            replication_factor: rf,
            configs: configs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    fn plan(request: &NewTopic, view: &ClusterView) -> Result<TopicPlan> {
        plan_create_topic(request, &TopicDefaults::default(), view, ID, 0)
    }

    fn code(request: &NewTopic, view: &ClusterView) -> ErrorCode {
        plan(request, view).unwrap_err().code()
    }

    #[test]
    fn a_valid_topic_is_planned_with_initial_partition_records() {
        let req = request("orders", 6, 3, &[(UNCLEAN_LEADER_ELECTION_ENABLE, "TRUE")]);
        let plan = plan(&req, &view(3)).unwrap();
        assert_eq!(plan.topic.id, ID);
        assert_eq!(plan.topic.name.as_str(), "orders");
        assert_eq!(
            (plan.topic.partitions, plan.topic.replication_factor),
            (6, 3)
        );
        assert_eq!(plan.topic.configs[UNCLEAN_LEADER_ELECTION_ENABLE], "true");
        assert_eq!(plan.partitions.len(), 6);
        let mut leaders = BTreeMap::new();
        for record in &plan.partitions {
            assert_eq!(record.replicas.len(), 3);
            assert_eq!(record.replicas.iter().collect::<BTreeSet<_>>().len(), 3);
            assert_eq!(record.leader, Some(record.replicas[0]));
            assert_eq!(record.isr, record.replicas);
            assert_eq!(record.leader_epoch, LeaderEpoch::new(0));
            assert_eq!(record.partition_epoch, 0);
            *leaders.entry(record.replicas[0]).or_insert(0) += 1;
        }
        assert!(leaders.values().all(|n| *n == 2), "{leaders:?}");
    }

    #[test]
    fn zero_takes_the_cluster_defaults() {
        let defaults = TopicDefaults {
            partitions: 4,
            replication_factor: 2,
        };
        let plan = plan_create_topic(&request("t", 0, 0, &[]), &defaults, &view(3), ID, 5).unwrap();
        assert_eq!(
            (plan.topic.partitions, plan.topic.replication_factor),
            (4, 2)
        );
        // A default larger than the cluster is still checked.
        let big = TopicDefaults {
            partitions: 1,
            replication_factor: 5,
        };
        let err = plan_create_topic(&request("t", 0, 0, &[]), &big, &view(3), ID, 0).unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidReplicationFactor {
                requested: 5,
                live_brokers: 3
            }
        ));
    }

    #[test]
    fn invalid_names_are_rejected() {
        for name in ["", ".", "..", "a b", "ünicode", &"x".repeat(250)] {
            assert_eq!(
                code(&request(name, 1, 1, &[]), &view(1)),
                ErrorCode::InvalidTopicException
            );
        }
        assert!(plan(&request(&"x".repeat(249), 1, 1, &[]), &view(1)).is_ok());
    }

    #[test]
    fn existing_and_colliding_names_are_rejected() {
        let view = with_topic(view(1), "metrics.eu");
        let err = plan(&request("metrics.eu", 1, 1, &[]), &view).unwrap_err();
        assert!(matches!(err, Error::TopicAlreadyExists { .. }));
        assert_eq!(err.code(), ErrorCode::TopicAlreadyExists);
        let err = plan(&request("metrics_eu", 1, 1, &[]), &view).unwrap_err();
        assert!(
            matches!(err, Error::TopicNameCollision { ref existing, .. } if existing.as_str() == "metrics.eu")
        );
        assert_eq!(err.code(), ErrorCode::InvalidTopicException);
        assert!(err.to_string().contains("'.' versus '_'"), "{err}");
        assert!(plan(&request("metrics-eu", 1, 1, &[]), &view).is_ok());
    }

    #[test]
    fn bad_partition_counts_are_rejected() {
        for partitions in [-1, -100, 10_001, i32::MAX] {
            assert_eq!(
                code(&request("t", partitions, 1, &[]), &view(1)),
                ErrorCode::InvalidPartitions
            );
        }
        assert!(plan(&request("t", 10_000, 1, &[]), &view(1)).is_ok());
        let none = TopicDefaults {
            partitions: 0,
            replication_factor: 1,
        };
        let err = plan_create_topic(&request("t", 0, 1, &[]), &none, &view(1), ID, 0).unwrap_err();
        assert!(matches!(err, Error::InvalidPartitions { requested: 0, .. }));
    }

    #[test]
    fn bad_replication_factors_are_rejected() {
        for rf in [-1, 4, 70_000] {
            assert_eq!(
                code(&request("t", 1, rf, &[]), &view(3)),
                ErrorCode::InvalidReplicationFactor
            );
        }
        assert_eq!(
            code(&request("t", 1, 1, &[]), &view(0)),
            ErrorCode::InvalidReplicationFactor
        );
    }

    #[test]
    fn bad_configs_are_rejected() {
        let unknown = plan(&request("t", 1, 1, &[("retention.days", "1")]), &view(1)).unwrap_err();
        assert!(matches!(
            unknown,
            Error::TopicConfig(strom_topic_config::Error::UnknownConfig { .. })
        ));
        assert_eq!(unknown.code(), ErrorCode::InvalidConfig);
        let bad = request("t", 1, 1, &[(RETENTION_MS, "-7")]);
        assert_eq!(code(&bad, &view(1)), ErrorCode::InvalidConfig);
        let min_isr = request("t", 1, 2, &[(MIN_INSYNC_REPLICAS, "3")]);
        let err = plan(&min_isr, &view(3)).unwrap_err();
        assert!(matches!(
            err,
            Error::TopicConfig(
                strom_topic_config::Error::MinInsyncReplicasAboveReplicationFactor { .. }
            )
        ));
        assert_eq!(err.code(), ErrorCode::InvalidConfig);
        assert!(plan(&request("t", 1, 3, &[(MIN_INSYNC_REPLICAS, "3")]), &view(3)).is_ok());
    }

    #[test]
    fn the_name_is_checked_before_the_rest() {
        let view = with_topic(view(1), "t");
        assert_eq!(
            code(&request("t", -1, 9, &[("x", "y")]), &view),
            ErrorCode::TopicAlreadyExists
        );
        assert_eq!(
            code(&request("u", -1, 9, &[("x", "y")]), &view),
            ErrorCode::InvalidPartitions
        );
        assert_eq!(
            code(&request("u", 1, 9, &[("x", "y")]), &view),
            ErrorCode::InvalidReplicationFactor
        );
    }
}
