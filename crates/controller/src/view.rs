//! The observed cluster state the controller's pure logic works on.
//!
//! The I/O shell fills a [`ClusterView`] from its etcd watches (brokers, topics, partitions)
//! and hands it to [`reconcile`](crate::reconcile), [`plan_create_topic`](crate::plan_create_topic)
//! and [`alter_partition`](crate::alter_partition). The view is plain data: nothing here reads
//! a clock or a store.

use std::collections::BTreeMap;
use std::ops::Bound;

use strom_meta::records::{PartitionRecord, TopicRecord};
use strom_types::{BrokerId, PartitionId, TopicId, TopicName};

use crate::placement::{BrokerLoad, PlacementBroker};

/// A broker with a live registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveBroker {
    /// The create revision of its registration: changes every time the broker registers.
    pub broker_epoch: i64,
    /// Its rack, if configured.
    pub rack: Option<String>,
    /// Its advertised `host:port`.
    pub address: String,
}

/// A stored partition record with the store revision that last modified it, which fences the
/// controller's next write to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// The record.
    pub record: PartitionRecord,
    /// The store's mod revision of the record's key.
    pub mod_revision: i64,
}

/// Everything the controller has observed: live brokers, topics and partition records.
///
/// Partitions are keyed by topic *id*, so partitions left behind by a deleted topic (whose id
/// no longer has a topic record) are still visible and can be cleaned up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Brokers with a live registration.
    pub brokers: BTreeMap<BrokerId, LiveBroker>,
    /// Topic records by id.
    pub topics: BTreeMap<TopicId, TopicRecord>,
    /// Partition records by topic id and index.
    pub partitions: BTreeMap<(TopicId, PartitionId), PartitionState>,
    /// Brokers being drained (DrainBroker), with the registration epoch the drain applies to:
    /// a broker that registers again is no longer drained.
    pub draining: BTreeMap<BrokerId, i64>,
}

impl ClusterView {
    /// Whether `broker` has a live registration.
    pub fn is_live(&self, broker: BrokerId) -> bool {
        self.brokers.contains_key(&broker)
    }

    /// Whether `broker` is live and drained in its current registration: it keeps its
    /// replicas but leads nothing another live ISR member can lead.
    pub fn is_draining(&self, broker: BrokerId) -> bool {
        self.draining
            .get(&broker)
            .is_some_and(|epoch| self.broker_epoch(broker) == Some(*epoch))
    }

    /// The epoch of `broker`'s live registration.
    pub fn broker_epoch(&self, broker: BrokerId) -> Option<i64> {
        self.brokers.get(&broker).map(|b| b.broker_epoch)
    }

    /// The topic named `name`.
    pub fn topic_by_name(&self, name: &TopicName) -> Option<&TopicRecord> {
        self.topics.values().find(|topic| &topic.name == name)
    }

    /// One partition's record.
    pub fn partition(&self, topic: TopicId, partition: PartitionId) -> Option<&PartitionState> {
        self.partitions.get(&(topic, partition))
    }

    /// The partition records stored under `topic`'s id, by index.
    pub fn topic_partitions(
        &self,
        topic: TopicId,
    ) -> impl Iterator<Item = (PartitionId, &PartitionState)> + '_ {
        self.partitions
            .range((
                Bound::Included((topic, PartitionId::new(i32::MIN))),
                Bound::Included((topic, PartitionId::new(i32::MAX))),
            ))
            .map(|((_, partition), state)| (*partition, state))
    }

    /// Topic ids that have partition records but no topic record: left behind by a deletion.
    pub fn orphan_topic_ids(&self) -> Vec<TopicId> {
        let mut orphans: Vec<TopicId> = self
            .partitions
            .keys()
            .map(|(topic, _)| *topic)
            .filter(|topic| !self.topics.contains_key(topic))
            .collect();
        orphans.dedup();
        orphans
    }

    /// How many replicas and preferred leaderships each broker holds, over every partition
    /// record (orphans included, since their data is still on disk). Brokers that hold
    /// nothing are absent.
    ///
    /// Leaders are counted by *preferred* leader (first replica), the leadership placement
    /// controls; the current leader may differ while a broker is down.
    pub fn broker_loads(&self) -> BTreeMap<BrokerId, BrokerLoad> {
        let mut loads: BTreeMap<BrokerId, BrokerLoad> = BTreeMap::new();
        for state in self.partitions.values() {
            for (i, broker) in state.record.replicas.iter().enumerate() {
                let load = loads.entry(*broker).or_default();
                load.replicas += 1;
                if i == 0 {
                    load.leaders += 1;
                }
            }
        }
        loads
    }

    /// How many partitions each broker currently leads. Brokers that lead nothing are absent.
    pub fn leader_counts(&self) -> BTreeMap<BrokerId, u32> {
        let mut counts = BTreeMap::new();
        for leader in self.partitions.values().filter_map(|s| s.record.leader) {
            *counts.entry(leader).or_insert(0) += 1;
        }
        counts
    }

    /// The live brokers as placement candidates.
    pub fn placement_brokers(&self) -> Vec<PlacementBroker> {
        self.brokers
            .iter()
            .map(|(id, broker)| PlacementBroker {
                id: *id,
                rack: broker.rack.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use strom_types::LeaderEpoch;

    use super::*;

    fn record(replicas: &[i32], leader: Option<i32>) -> PartitionState {
        let replicas: Vec<BrokerId> = replicas.iter().map(|b| BrokerId::new(*b)).collect();
        PartitionState {
            record: PartitionRecord {
                isr: replicas.clone(),
                replicas,
                leader: leader.map(BrokerId::new),
                leader_epoch: LeaderEpoch::new(0),
                partition_epoch: 0,
            },
            mod_revision: 1,
        }
    }

    fn topic(id: u128, name: &str) -> TopicRecord {
        TopicRecord {
            id: TopicId::new(id),
            name: TopicName::new(name).unwrap(),
            partitions: 2,
            replication_factor: 2,
            configs: BTreeMap::new(),
        }
    }

    fn view() -> ClusterView {
        let mut view = ClusterView::default();
        for (id, rack) in [(1, "a"), (2, "b")] {
            view.brokers.insert(
                BrokerId::new(id),
                LiveBroker {
                    broker_epoch: i64::from(id) * 10,
                    rack: Some(rack.to_owned()),
                    address: format!("b{id}:9092"),
                },
            );
        }
        view.topics.insert(TopicId::new(7), topic(7, "orders"));
        let t = TopicId::new(7);
        view.partitions
            .insert((t, PartitionId::new(0)), record(&[1, 2], Some(1)));
        view.partitions
            .insert((t, PartitionId::new(1)), record(&[2, 3], Some(2)));
        view.partitions.insert(
            (TopicId::new(9), PartitionId::new(0)),
            record(&[3, 1], None),
        );
        view.partitions.insert(
            (TopicId::new(9), PartitionId::new(1)),
            record(&[3, 2], Some(3)),
        );
        view
    }

    #[test]
    fn lookups() {
        let view = view();
        assert!(view.is_live(BrokerId::new(1)));
        assert!(!view.is_live(BrokerId::new(3)));
        assert_eq!(view.broker_epoch(BrokerId::new(2)), Some(20));
        assert_eq!(view.broker_epoch(BrokerId::new(3)), None);
        let name = TopicName::new("orders").unwrap();
        assert_eq!(view.topic_by_name(&name).unwrap().id, TopicId::new(7));
        assert!(
            view.topic_by_name(&TopicName::new("other").unwrap())
                .is_none()
        );
        let partitions: Vec<_> = view
            .topic_partitions(TopicId::new(7))
            .map(|(p, _)| p)
            .collect();
        assert_eq!(partitions, vec![PartitionId::new(0), PartitionId::new(1)]);
        assert!(
            view.partition(TopicId::new(7), PartitionId::new(2))
                .is_none()
        );
        assert_eq!(view.orphan_topic_ids(), vec![TopicId::new(9)]);
    }

    #[test]
    fn loads_count_replicas_and_preferred_leaders() {
        let view = view();
        let loads = view.broker_loads();
        let load = |b| loads.get(&BrokerId::new(b)).copied().unwrap_or_default();
        assert_eq!(
            load(1),
            BrokerLoad {
                replicas: 2,
                leaders: 1
            }
        );
        assert_eq!(
            load(2),
            BrokerLoad {
                replicas: 3,
                leaders: 1
            }
        );
        assert_eq!(
            load(3),
            BrokerLoad {
                replicas: 3,
                leaders: 2
            }
        );
        let leaders = view.leader_counts();
        assert_eq!(leaders.get(&BrokerId::new(3)), Some(&1));
        assert_eq!(view.placement_brokers().len(), 2);
        assert_eq!(view.placement_brokers()[0].rack.as_deref(), Some("a"));
    }
}
