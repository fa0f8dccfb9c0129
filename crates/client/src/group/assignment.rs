//! Partition sets: what a member owns, what the coordinator assigns, and the difference
//! between the two that a member reconciles.

use std::collections::BTreeMap;
use std::fmt;

use strom_proto::coordinator::v1 as pb;

/// A partition of a topic, named by topic name and partition index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic name.
    pub topic: String,
    /// The partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// Partition `partition` of `topic`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// A set of partitions, each with the id of its topic (echoed back to the coordinator).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Assignment {
    partitions: BTreeMap<TopicPartition, String>,
}

/// What a member must do to move from the partitions it owns to a new assignment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Diff {
    /// Owned partitions that are not in the assignment: stop, commit and release them.
    pub(crate) revoked: Vec<TopicPartition>,
    /// Assigned partitions not owned yet: look up their committed offsets and start them.
    pub(crate) added: Vec<(TopicPartition, String)>,
}

impl Diff {
    /// Whether the assignment equals what is owned.
    pub(crate) fn is_empty(&self) -> bool {
        self.revoked.is_empty() && self.added.is_empty()
    }
}

impl Assignment {
    /// The partitions of a coordinator's assignment, named by their topic names.
    pub(crate) fn from_proto(assignment: &pb::Assignment) -> Self {
        let mut partitions = BTreeMap::new();
        for topic in &assignment.topic_partitions {
            for &partition in &topic.partitions {
                let key = TopicPartition::new(topic.topic.clone(), partition);
                partitions.insert(key, topic.topic_id.clone());
            }
        }
        Self { partitions }
    }

    /// The partitions grouped by topic, as a heartbeat reports them.
    pub(crate) fn to_proto(&self) -> Vec<pb::TopicPartitions> {
        let mut topics: Vec<pb::TopicPartitions> = Vec::new();
        for (key, topic_id) in &self.partitions {
            match topics.last_mut() {
                Some(last) if last.topic == key.topic && last.topic_id == *topic_id => {
                    last.partitions.push(key.partition);
                }
                _ => topics.push(pb::TopicPartitions {
                    topic_id: topic_id.clone(),
                    topic: key.topic.clone(),
                    partitions: vec![key.partition],
                }),
            }
        }
        topics
    }

    /// The partitions, in topic and partition order.
    pub(crate) fn partitions(&self) -> impl Iterator<Item = &TopicPartition> {
        self.partitions.keys()
    }

    /// Adds `partition` of the topic with id `topic_id`.
    pub(crate) fn insert(&mut self, partition: TopicPartition, topic_id: String) {
        self.partitions.insert(partition, topic_id);
    }

    /// Removes `partition`.
    pub(crate) fn remove(&mut self, partition: &TopicPartition) {
        self.partitions.remove(partition);
    }

    /// What changes from `self` (owned) to `target`. A partition whose topic id changed (the
    /// topic was deleted and created again) is both revoked and added.
    pub(crate) fn diff(&self, target: &Assignment) -> Diff {
        let revoked = self
            .partitions
            .iter()
            .filter(|(key, id)| target.partitions.get(*key) != Some(*id))
            .map(|(key, _)| key.clone())
            .collect();
        let added = target
            .partitions
            .iter()
            .filter(|(key, id)| self.partitions.get(*key) != Some(*id))
            .map(|(key, id)| (key.clone(), id.clone()))
            .collect();
        Diff { revoked, added }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(id: &str, name: &str, partitions: &[i32]) -> pb::TopicPartitions {
        pb::TopicPartitions {
            topic_id: id.into(),
            topic: name.into(),
            partitions: partitions.to_vec(),
        }
    }

    fn assignment(topics: Vec<pb::TopicPartitions>) -> Assignment {
        Assignment::from_proto(&pb::Assignment {
            topic_partitions: topics,
        })
    }

    #[test]
    fn diff_splits_into_revoked_and_added() {
        let owned = assignment(vec![topic("ia", "a", &[0, 1, 2]), topic("ib", "b", &[0])]);
        let target = assignment(vec![topic("ia", "a", &[1, 2, 3]), topic("ic", "c", &[5])]);
        let diff = owned.diff(&target);
        assert_eq!(
            diff.revoked,
            [TopicPartition::new("a", 0), TopicPartition::new("b", 0)]
        );
        assert_eq!(
            diff.added,
            [
                (TopicPartition::new("a", 3), "ia".to_owned()),
                (TopicPartition::new("c", 5), "ic".to_owned())
            ]
        );
        assert!(owned.diff(&owned.clone()).is_empty());
    }

    #[test]
    fn a_recreated_topic_is_revoked_and_added() {
        let owned = assignment(vec![topic("old", "a", &[0])]);
        let target = assignment(vec![topic("new", "a", &[0])]);
        let diff = owned.diff(&target);
        assert_eq!(diff.revoked, [TopicPartition::new("a", 0)]);
        assert_eq!(
            diff.added,
            [(TopicPartition::new("a", 0), "new".to_owned())]
        );
    }

    #[test]
    fn an_empty_assignment_revokes_everything() {
        let owned = assignment(vec![topic("ia", "a", &[0, 1])]);
        let diff = owned.diff(&Assignment::default());
        assert_eq!(diff.revoked.len(), 2);
        assert!(diff.added.is_empty());
    }

    #[test]
    fn the_heartbeat_form_groups_by_topic_and_echoes_ids() {
        let mut owned = assignment(vec![topic("ib", "b", &[2, 0]), topic("ia", "a", &[1])]);
        owned.insert(TopicPartition::new("b", 1), "ib".into());
        assert_eq!(
            owned.to_proto(),
            [topic("ia", "a", &[1]), topic("ib", "b", &[0, 1, 2])]
        );
        owned.remove(&TopicPartition::new("a", 1));
        assert_eq!(owned.partitions().count(), 3);
        assert!(Assignment::default().to_proto().is_empty());
        assert_eq!(TopicPartition::new("a", 1).to_string(), "a-1");
    }
}
