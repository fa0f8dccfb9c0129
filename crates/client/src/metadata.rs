//! The client's cached view of the cluster: live brokers and each topic's partition leaders.
//!
//! The cache is plain data behind the client's lock; the client fills it from Metadata
//! responses and from leader hints carried by NOT_LEADER_OR_FOLLOWER errors.

use std::collections::HashMap;
use std::time::Duration;

use strom_proto::broker::v1 as pb;
use strom_proto::common::v1::{ErrorCode, LeaderHint};
use tokio::time::Instant;

use crate::Error;

/// Where a partition's leader is, as last learned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionLeader {
    /// The leader's broker id.
    pub broker_id: i32,
    /// The partition's leader epoch.
    pub leader_epoch: i32,
    /// The leader's advertised gRPC address, `host:port`.
    pub address: String,
}

/// One partition's placement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartitionEntry {
    leader: Option<i32>,
    leader_epoch: i32,
}

/// One topic as the last Metadata answer described it, or the error it got.
#[derive(Debug, Clone)]
struct TopicEntry {
    /// Distinguishes a recreated topic from the one cached before.
    topic_id: String,
    partitions: Result<Vec<PartitionEntry>, Error>,
    fetched_at: Instant,
}

/// What a lookup found in the cache.
#[derive(Debug, Clone)]
pub(crate) enum Cached<T> {
    /// A fresh answer.
    Hit(T),
    /// Nothing fresh; the caller should refresh and look again.
    Miss,
}

/// Brokers and topic placement, with the time each topic was fetched.
#[derive(Debug, Default)]
pub(crate) struct MetadataCache {
    brokers: HashMap<i32, String>,
    topics: HashMap<String, TopicEntry>,
}

impl MetadataCache {
    /// Takes in a Metadata answer received at `now`. Topics the answer describes replace
    /// their entries; the broker list is replaced when the answer has one.
    pub(crate) fn apply(&mut self, response: pb::MetadataResponse, now: Instant) {
        if !response.brokers.is_empty() {
            self.brokers = response
                .brokers
                .into_iter()
                .map(|b| (b.broker_id, b.address))
                .collect();
        }
        for topic in response.topics {
            let partitions = match topic.error {
                Some(error) => Err(Error::from(error)),
                None => {
                    let mut partitions = partition_entries(topic.partitions);
                    self.keep_newer_leaders(&topic.topic, &topic.topic_id, &mut partitions);
                    Ok(partitions)
                }
            };
            self.topics.insert(
                topic.topic,
                TopicEntry {
                    topic_id: topic.topic_id,
                    partitions,
                    fetched_at: now,
                },
            );
        }
    }

    /// Keeps cached leaders whose epoch is newer than the answer's: a broker's view may lag
    /// a leader hint received meanwhile. Only for the same topic id, since a recreated topic
    /// starts its epochs over.
    fn keep_newer_leaders(&self, topic: &str, topic_id: &str, partitions: &mut [PartitionEntry]) {
        let Some(TopicEntry {
            topic_id: cached_id,
            partitions: Ok(cached),
            ..
        }) = self.topics.get(topic)
        else {
            return;
        };
        if cached_id != topic_id {
            return;
        }
        for (fresh, cached) in partitions.iter_mut().zip(cached) {
            if cached.leader_epoch > fresh.leader_epoch {
                *fresh = *cached;
            }
        }
    }

    /// The advertised addresses of all known brokers.
    pub(crate) fn broker_addresses(&self) -> Vec<String> {
        self.brokers.values().cloned().collect()
    }

    /// When `topic` was last fetched, if it ever was.
    pub(crate) fn fetched_at(&self, topic: &str) -> Option<Instant> {
        self.topics.get(topic).map(|entry| entry.fetched_at)
    }

    /// The fresh entry of `topic`, or `None` when it is missing or older than `max_age`. An
    /// error (e.g. an unknown topic) counts as fresh only when fetched at or after `now`, so
    /// a topic created meanwhile is looked up again instead of failing from the cache.
    fn fresh(&self, topic: &str, max_age: Duration, now: Instant) -> Option<&TopicEntry> {
        self.topics.get(topic).filter(|entry| {
            now.saturating_duration_since(entry.fetched_at) < max_age
                && (entry.partitions.is_ok() || entry.fetched_at >= now)
        })
    }

    /// The number of partitions of `topic`, or the error the broker reported for it.
    pub(crate) fn partition_count(
        &self,
        topic: &str,
        max_age: Duration,
        now: Instant,
    ) -> Cached<Result<i32, Error>> {
        match self.fresh(topic, max_age, now) {
            None => Cached::Miss,
            Some(entry) => Cached::Hit(match &entry.partitions {
                Ok(partitions) => Ok(i32::try_from(partitions.len()).unwrap_or(i32::MAX)),
                Err(error) => Err(error.clone()),
            }),
        }
    }

    /// The leader of `partition`, or why there is none. A missing or stale topic and a
    /// partition without a leader are misses, so the caller refreshes first.
    pub(crate) fn leader(
        &self,
        topic: &str,
        partition: i32,
        max_age: Duration,
        now: Instant,
    ) -> Cached<Result<PartitionLeader, Error>> {
        let Some(entry) = self.fresh(topic, max_age, now) else {
            return Cached::Miss;
        };
        let partitions = match &entry.partitions {
            Ok(partitions) => partitions,
            Err(error) => return Cached::Hit(Err(error.clone())),
        };
        let Some(found) = usize::try_from(partition)
            .ok()
            .and_then(|i| partitions.get(i))
        else {
            return Cached::Hit(Err(Error::broker(
                ErrorCode::UnknownTopicOrPartition,
                format!("topic {topic:?} has no partition {partition}"),
            )));
        };
        let leader = found
            .leader
            .and_then(|id| self.brokers.get(&id).map(|address| (id, address)));
        match leader {
            Some((broker_id, address)) => Cached::Hit(Ok(PartitionLeader {
                broker_id,
                leader_epoch: found.leader_epoch,
                address: address.clone(),
            })),
            None => Cached::Miss,
        }
    }

    /// The leader of `partition` as fetched at or after `since`, with the reason when none is
    /// known; for answering after a refresh.
    pub(crate) fn leader_after_refresh(
        &self,
        topic: &str,
        partition: i32,
        since: Instant,
    ) -> Result<PartitionLeader, Error> {
        match self.leader(topic, partition, Duration::MAX, since) {
            Cached::Hit(result) => result,
            Cached::Miss if self.topics.contains_key(topic) => Err(Error::broker(
                ErrorCode::LeaderNotAvailable,
                format!("partition {partition} of {topic:?} has no live leader"),
            )),
            Cached::Miss => Err(Error::Protocol {
                reason: "the metadata response did not describe a requested topic",
            }),
        }
    }

    /// Takes in a redirect hint for `partition`, unless it is older than what is cached.
    pub(crate) fn apply_leader_hint(&mut self, topic: &str, partition: i32, hint: &LeaderHint) {
        if !hint.address.is_empty() {
            self.brokers.insert(hint.leader_id, hint.address.clone());
        }
        let entry = self
            .topics
            .get_mut(topic)
            .and_then(|entry| entry.partitions.as_mut().ok())
            .and_then(|partitions| partitions.get_mut(usize::try_from(partition).ok()?));
        if let Some(entry) = entry {
            let epoch = hint.leader_epoch.unwrap_or(entry.leader_epoch);
            if epoch >= entry.leader_epoch {
                entry.leader = Some(hint.leader_id);
                entry.leader_epoch = epoch;
            }
        }
    }
}

/// Partition entries indexed by partition number; gaps (which a correct broker never leaves)
/// become leaderless partitions.
fn partition_entries(mut partitions: Vec<pb::PartitionMetadata>) -> Vec<PartitionEntry> {
    partitions.sort_by_key(|p| p.partition);
    let count = partitions
        .last()
        .and_then(|p| usize::try_from(p.partition).ok())
        .map_or(0, |last| last + 1);
    let mut entries = vec![
        PartitionEntry {
            leader: None,
            leader_epoch: 0,
        };
        count
    ];
    for partition in partitions {
        if let Some(entry) = usize::try_from(partition.partition)
            .ok()
            .and_then(|i| entries.get_mut(i))
        {
            *entry = PartitionEntry {
                leader: partition.leader_id,
                leader_epoch: partition.leader_epoch,
            };
        }
    }
    entries
}

#[cfg(test)]
mod tests {
    use strom_proto::common::v1::{Broker, Error as PbError};

    use super::*;

    const AGE: Duration = Duration::from_secs(60);

    fn response() -> pb::MetadataResponse {
        pb::MetadataResponse {
            brokers: vec![
                Broker {
                    broker_id: 1,
                    address: "b1:9092".into(),
                    rack: String::new(),
                },
                Broker {
                    broker_id: 2,
                    address: "b2:9092".into(),
                    rack: String::new(),
                },
            ],
            topics: vec![
                pb::TopicMetadata {
                    topic: "events".into(),
                    partitions: vec![
                        pb::PartitionMetadata {
                            partition: 1,
                            leader_id: None,
                            leader_epoch: 4,
                            ..Default::default()
                        },
                        pb::PartitionMetadata {
                            partition: 0,
                            leader_id: Some(2),
                            leader_epoch: 3,
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                },
                pb::TopicMetadata {
                    topic: "missing".into(),
                    error: Some(PbError::new(ErrorCode::UnknownTopicOrPartition, "no")),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn lookups_answer_from_a_fresh_response() {
        let mut cache = MetadataCache::default();
        let now = Instant::now();
        cache.apply(response(), now);
        assert!(matches!(
            cache.partition_count("events", AGE, now),
            Cached::Hit(Ok(2))
        ));
        let leader = PartitionLeader {
            broker_id: 2,
            leader_epoch: 3,
            address: "b2:9092".into(),
        };
        assert!(matches!(cache.leader("events", 0, AGE, now), Cached::Hit(Ok(l)) if l == leader));
        // A leaderless partition is a miss, so the caller refreshes.
        assert!(matches!(cache.leader("events", 1, AGE, now), Cached::Miss));
        assert!(matches!(
            cache.leader_after_refresh("events", 1, now),
            Err(Error::Broker {
                code: ErrorCode::LeaderNotAvailable,
                ..
            })
        ));
        assert!(matches!(
            cache.leader("events", 7, AGE, now),
            Cached::Hit(Err(Error::Broker {
                code: ErrorCode::UnknownTopicOrPartition,
                ..
            }))
        ));
        assert!(matches!(
            cache.partition_count("missing", AGE, now),
            Cached::Hit(Err(_))
        ));
        // A cached error is not reused by a later lookup.
        assert!(matches!(
            cache.partition_count("missing", AGE, now + Duration::from_millis(1)),
            Cached::Miss
        ));
        assert!(matches!(
            cache.partition_count("other", AGE, now),
            Cached::Miss
        ));
        assert!(matches!(
            cache.partition_count("events", AGE, now + AGE),
            Cached::Miss
        ));
    }

    #[test]
    fn leader_hints_move_leaders_forward_only() {
        let mut cache = MetadataCache::default();
        let now = Instant::now();
        cache.apply(response(), now);
        cache.apply_leader_hint("events", 0, &LeaderHint::partition_leader(3, 5, "b3:9092"));
        let Cached::Hit(Ok(leader)) = cache.leader("events", 0, AGE, now) else {
            panic!("leader expected");
        };
        assert_eq!((leader.broker_id, leader.leader_epoch), (3, 5));
        assert_eq!(leader.address, "b3:9092");
        cache.apply_leader_hint("events", 0, &LeaderHint::partition_leader(1, 4, ""));
        let Cached::Hit(Ok(leader)) = cache.leader("events", 0, AGE, now) else {
            panic!("leader expected");
        };
        assert_eq!(leader.broker_id, 3);
        // A lagging broker's answer does not undo the newer hint...
        let mut lagging = response();
        lagging.brokers.push(Broker {
            broker_id: 3,
            address: "b3:9092".into(),
            rack: String::new(),
        });
        cache.apply(lagging, now);
        let Cached::Hit(Ok(leader)) = cache.leader("events", 0, AGE, now) else {
            panic!("leader expected");
        };
        assert_eq!((leader.broker_id, leader.leader_epoch), (3, 5));
        // ...unless the topic was recreated.
        let mut recreated = response();
        recreated.topics[0].topic_id = "other".into();
        cache.apply(recreated, now);
        let Cached::Hit(Ok(leader)) = cache.leader("events", 0, AGE, now) else {
            panic!("leader expected");
        };
        assert_eq!((leader.broker_id, leader.leader_epoch), (2, 3));
    }
}
