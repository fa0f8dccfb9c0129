//! What the producer takes in and what it reports back.

use bytes::Bytes;

/// Encoding overhead of a record beyond its key, value and headers, used for buffer
/// accounting: length, attributes, deltas and field lengths are a few varints each.
const RECORD_OVERHEAD: usize = 32;

/// One record to produce.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerRecord {
    /// The topic to write to.
    pub topic: String,
    /// The partition; `None` lets the partitioner choose (by key hash, or sticky without key).
    pub partition: Option<i32>,
    /// The key; `None` is distinct from empty.
    pub key: Option<Bytes>,
    /// The value; `None` (a tombstone) is distinct from empty.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Milliseconds since the Unix epoch; `None` uses the time of `send`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with `value` and no key, partition or headers.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            value: Some(value.into()),
            ..Self::default()
        }
    }

    /// A record with `key` and `value`; the key picks the partition.
    pub fn with_key(
        topic: impl Into<String>,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> Self {
        Self {
            key: Some(key.into()),
            ..Self::new(topic, value)
        }
    }

    /// Sends the record to `partition` instead of letting the partitioner choose.
    #[must_use]
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the record's timestamp (milliseconds since the Unix epoch).
    #[must_use]
    pub fn timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// Appends a header.
    #[must_use]
    pub fn header(mut self, key: impl Into<String>, value: Option<Bytes>) -> Self {
        self.headers.push((key.into(), value));
        self
    }

    /// An upper estimate of the record's encoded size, for buffer accounting.
    pub(crate) fn estimated_size(&self) -> usize {
        let field = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len);
        self.headers.iter().fold(
            RECORD_OVERHEAD + field(&self.key) + field(&self.value),
            |sum, (k, v)| sum.saturating_add(k.len() + field(v) + 10),
        )
    }
}

/// Where an acknowledged record was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The record's offset, or -1 when unknown (acks=none, or a duplicate whose offset the
    /// broker no longer remembers).
    pub offset: i64,
    /// The record's timestamp: the one it was sent with, or the broker's append time when
    /// the topic uses LogAppendTime.
    pub timestamp: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_fill_the_fields() {
        let record = ProducerRecord::with_key("t", "k", "v")
            .partition(3)
            .timestamp(10)
            .header("h", None);
        assert_eq!(record.topic, "t");
        assert_eq!(record.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(record.value.as_deref(), Some(&b"v"[..]));
        assert_eq!((record.partition, record.timestamp), (Some(3), Some(10)));
        assert_eq!(record.headers.len(), 1);
        assert!(record.estimated_size() >= RECORD_OVERHEAD + 3);
    }
}
