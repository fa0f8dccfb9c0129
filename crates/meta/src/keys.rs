//! The key layout under `/strom/<cluster>/`: the one place that formats and parses keys.

use strom_types::{BrokerId, PartitionId, TopicId, TopicName};

/// Builds and parses the keys of one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    root: String,
}

impl Keys {
    /// The keys of cluster `cluster`, rooted at `/strom/<cluster>/`.
    pub fn new(cluster: &str) -> Self {
        Self::with_root(format!("/strom/{cluster}/"))
    }

    /// Keys under an arbitrary root ending in `/`; tests use it to share one store.
    pub fn with_root(root: impl Into<String>) -> Self {
        let mut root = root.into();
        if !root.ends_with('/') {
            root.push('/');
        }
        Self { root }
    }

    /// The root prefix, ending in `/`.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The controller election key.
    pub fn controller(&self) -> String {
        format!("{}controller", self.root)
    }

    /// The prefix of every broker registration.
    pub fn brokers(&self) -> String {
        format!("{}brokers/", self.root)
    }

    /// One broker's registration.
    pub fn broker(&self, id: BrokerId) -> String {
        format!("{}brokers/{id}", self.root)
    }

    /// The broker id in a registration key.
    pub fn parse_broker(&self, key: &str) -> Option<BrokerId> {
        let id = key.strip_prefix(&self.brokers())?.parse().ok()?;
        BrokerId::try_new(id).ok()
    }

    /// The prefix of every topic record.
    pub fn topics(&self) -> String {
        format!("{}topics/", self.root)
    }

    /// One topic's record.
    pub fn topic(&self, name: &TopicName) -> String {
        format!("{}topics/{name}", self.root)
    }

    /// The topic name in a topic key.
    pub fn parse_topic(&self, key: &str) -> Option<TopicName> {
        TopicName::new(key.strip_prefix(&self.topics())?).ok()
    }

    /// The prefix of every partition record.
    pub fn all_partitions(&self) -> String {
        format!("{}partitions/", self.root)
    }

    /// The prefix of one topic's partition records.
    pub fn partitions(&self, topic: TopicId) -> String {
        format!("{}partitions/{topic}/", self.root)
    }

    /// One partition's record.
    pub fn partition(&self, topic: TopicId, partition: PartitionId) -> String {
        format!("{}partitions/{topic}/{partition}", self.root)
    }

    /// The topic id and partition in a partition key.
    pub fn parse_partition(&self, key: &str) -> Option<(TopicId, PartitionId)> {
        let rest = key.strip_prefix(&self.all_partitions())?;
        let (topic, partition) = rest.split_once('/')?;
        let partition = PartitionId::try_new(partition.parse().ok()?).ok()?;
        Some((topic.parse().ok()?, partition))
    }

    /// The producer-id allocation record.
    pub fn producer_ids(&self) -> String {
        format!("{}producer-ids", self.root)
    }

    /// The prefix of every coordinator registration.
    pub fn coordinators(&self) -> String {
        format!("{}coordinators/", self.root)
    }

    /// One coordinator's registration.
    pub fn coordinator(&self, id: i32) -> String {
        format!("{}coordinators/{id}", self.root)
    }

    /// The prefix of every group's keys.
    pub fn groups(&self) -> String {
        format!("{}groups/", self.root)
    }

    /// The owner key of a group: the owning coordinator, attached to its lease. Its create
    /// revision fences the owner's writes. Group ids never contain `/`.
    pub fn group_owner(&self, group: &str) -> String {
        format!("{}groups/{group}/owner", self.root)
    }

    /// The membership and assignment state of a group.
    pub fn group_state(&self, group: &str) -> String {
        format!("{}groups/{group}/state", self.root)
    }

    /// The group id and the key's last segment (`owner` or `state`) of a group key.
    pub fn parse_group<'k>(&self, key: &'k str) -> Option<(&'k str, &'k str)> {
        let rest = key.strip_prefix(self.groups().as_str())?;
        rest.split_once('/')
    }

    /// The prefix of every committed offset.
    pub fn all_offsets(&self) -> String {
        format!("{}offsets/", self.root)
    }

    /// The prefix of one group's committed offsets.
    pub fn group_offsets(&self, group: &str) -> String {
        format!("{}offsets/{group}/", self.root)
    }

    /// One committed offset.
    pub fn offset(&self, group: &str, topic: &TopicName, partition: PartitionId) -> String {
        format!("{}offsets/{group}/{topic}/{partition}", self.root)
    }

    /// The group, topic and partition of a committed-offset key.
    pub fn parse_offset(&self, key: &str) -> Option<(String, TopicName, PartitionId)> {
        let rest = key.strip_prefix(self.all_offsets().as_str())?;
        let mut parts = rest.splitn(3, '/');
        let group = parts.next()?.to_owned();
        let topic = TopicName::new(parts.next()?).ok()?;
        let partition = PartitionId::try_new(parts.next()?.parse().ok()?).ok()?;
        Some((group, topic, partition))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_back() {
        let keys = Keys::new("prod");
        let id = TopicId::new(42);
        let key = keys.partition(id, PartitionId::new(7));
        assert_eq!(key, format!("/strom/prod/partitions/{id}/7"));
        assert_eq!(keys.parse_partition(&key), Some((id, PartitionId::new(7))));
        assert_eq!(
            keys.parse_broker(&keys.broker(BrokerId::new(3))),
            Some(BrokerId::new(3))
        );
        let topic = TopicName::new("orders").unwrap();
        assert_eq!(keys.parse_topic(&keys.topic(&topic)), Some(topic.clone()));
        assert_eq!(keys.parse_broker("/strom/prod/brokers/x"), None);
        let offset = keys.offset("billing", &topic, PartitionId::new(3));
        assert_eq!(offset, "/strom/prod/offsets/billing/orders/3");
        assert_eq!(
            keys.parse_offset(&offset),
            Some(("billing".to_owned(), topic.clone(), PartitionId::new(3)))
        );
        assert_eq!(
            keys.parse_group(&keys.group_owner("billing")),
            Some(("billing", "owner"))
        );
        assert_eq!(
            keys.parse_offset("/strom/prod/offsets/billing/orders"),
            None
        );
        assert_eq!(keys.parse_partition("/strom/prod/partitions/zz/1"), None);
    }
}
