//! Topic names and topic-partition pairs.

use std::fmt;
use std::str::FromStr;

use crate::{Error, PartitionId, Result};

/// The longest topic name allowed, as in Kafka (leaves room for a partition suffix in file names).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// A validated topic name: 1 to 249 characters from `[a-zA-Z0-9._-]`, and not `.` or `..`.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct TopicName(String);

impl TryFrom<String> for TopicName {
    type Error = Error;

    fn try_from(name: String) -> Result<Self> {
        Self::new(name)
    }
}

impl From<TopicName> for String {
    fn from(name: TopicName) -> String {
        name.0
    }
}

impl TopicName {
    /// Validates a raw topic name.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let reason = if name.is_empty() {
            Some("must not be empty")
        } else if name.len() > MAX_TOPIC_NAME_LEN {
            Some("longer than 249 characters")
        } else if name == "." || name == ".." {
            Some("'.' and '..' are reserved")
        } else if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            Some("only ASCII letters, digits, '.', '_' and '-' are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidTopicName { name, reason }),
            None => Ok(Self(name)),
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for TopicName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

/// One partition of one topic: the unit of ordering, replication and storage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// The topic.
    pub topic: TopicName,
    /// The partition within the topic.
    pub partition: PartitionId,
}

impl TopicPartition {
    /// Pairs a topic with one of its partitions.
    pub fn new(topic: TopicName, partition: PartitionId) -> Self {
        Self { topic, partition }
    }

    /// The directory name of this partition's log: `<topic>-<partition>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }

    /// Parses a directory name written by [`TopicPartition::dir_name`].
    ///
    /// The partition is the part after the last `-`, since topic names may contain `-` too.
    pub fn from_dir_name(name: &str) -> Result<Self> {
        let invalid = || Error::InvalidPartitionDir {
            name: name.to_owned(),
        };
        let (topic, partition) = name.rsplit_once('-').ok_or_else(invalid)?;
        let partition: i32 = partition.parse().map_err(|_| invalid())?;
        let partition = PartitionId::try_new(partition).map_err(|_| invalid())?;
        let topic = TopicName::new(topic).map_err(|_| invalid())?;
        Ok(Self { topic, partition })
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(TopicName::new("orders.v1_eu-west").is_ok());
        assert!(TopicName::new("").is_err());
        assert!(TopicName::new(".").is_err());
        assert!(TopicName::new("..").is_err());
        assert!(TopicName::new("a b").is_err());
        assert!(TopicName::new("x".repeat(249)).is_ok());
        assert!(TopicName::new("x".repeat(250)).is_err());
    }

    #[test]
    fn dir_names_round_trip_with_dashes_in_the_topic() {
        let tp = TopicPartition::new(TopicName::new("a-b-c").unwrap(), PartitionId::new(12));
        assert_eq!(tp.dir_name(), "a-b-c-12");
        assert_eq!(TopicPartition::from_dir_name("a-b-c-12").unwrap(), tp);
        assert!(TopicPartition::from_dir_name("nodash").is_err());
        assert!(TopicPartition::from_dir_name("t-x").is_err());
        assert!(TopicPartition::from_dir_name("t-").is_err());
        assert!(TopicPartition::from_dir_name("-3").is_err());
    }
}
