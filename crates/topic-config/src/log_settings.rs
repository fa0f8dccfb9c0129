//! The topic configs that shape a partition log, read from stored overrides.

use std::collections::BTreeMap;

use crate::registry::{
    FLUSH_MESSAGES, FLUSH_MS, INDEX_INTERVAL_BYTES, MAX_MESSAGE_BYTES, RETENTION_BYTES,
    RETENTION_MS, SEGMENT_BYTES, SEGMENT_MS, long_value,
};

/// What a broker needs to configure a partition log, with Kafka's sentinels already turned
/// into `None` ("unlimited" retention, "never" for flushes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `retention.ms`; `None` keeps data forever.
    pub retention_ms: Option<i64>,
    /// `retention.bytes`; `None` sets no size limit.
    pub retention_bytes: Option<u64>,
    /// `index.interval.bytes`.
    pub index_interval_bytes: u64,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_message_bytes: usize,
    /// `flush.messages`; `None` leaves flushing to the OS and replication.
    pub flush_messages: Option<u64>,
    /// `flush.ms`; `None` leaves flushing to the OS and replication.
    pub flush_ms: Option<i64>,
}

/// The log settings of a topic with the stored overrides `configs` (validated when they were
/// set; a malformed stored value falls back to its default).
pub fn log_settings(configs: &BTreeMap<String, String>) -> LogSettings {
    let long = |name| long_value(configs, name);
    let positive = |name| u64::try_from(long(name)).ok().filter(|v| *v > 0);
    let never = |value: i64| (value != i64::MAX && value >= 0).then_some(value);
    LogSettings {
        segment_bytes: positive(SEGMENT_BYTES).unwrap_or(1 << 30),
        segment_ms: long(SEGMENT_MS).max(1),
        retention_ms: u64::try_from(long(RETENTION_MS))
            .ok()
            .map(|_| long(RETENTION_MS)),
        retention_bytes: u64::try_from(long(RETENTION_BYTES)).ok(),
        index_interval_bytes: positive(INDEX_INTERVAL_BYTES).unwrap_or(4096),
        max_message_bytes: usize::try_from(long(MAX_MESSAGE_BYTES)).unwrap_or(1024 * 1024 + 12),
        flush_messages: never(long(FLUSH_MESSAGES)).and_then(|v| u64::try_from(v).ok()),
        flush_ms: never(long(FLUSH_MS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_follow_kafka_and_sentinels_become_none() {
        let defaults = log_settings(&BTreeMap::new());
        assert_eq!(defaults.segment_bytes, 1 << 30);
        assert_eq!(defaults.segment_ms, 7 * 24 * 60 * 60 * 1000);
        assert_eq!(defaults.retention_ms, Some(7 * 24 * 60 * 60 * 1000));
        assert_eq!(defaults.retention_bytes, None);
        assert_eq!(defaults.index_interval_bytes, 4096);
        assert_eq!(defaults.max_message_bytes, 1024 * 1024 + 12);
        assert_eq!((defaults.flush_messages, defaults.flush_ms), (None, None));
    }

    #[test]
    fn overrides_are_applied() {
        let settings = log_settings(&map(&[
            (RETENTION_MS, "-1"),
            (RETENTION_BYTES, "1000000"),
            (SEGMENT_BYTES, "1048576"),
            (FLUSH_MS, "1000"),
            (MAX_MESSAGE_BYTES, "2048"),
        ]));
        assert_eq!(settings.retention_ms, None);
        assert_eq!(settings.retention_bytes, Some(1_000_000));
        assert_eq!(settings.segment_bytes, 1_048_576);
        assert_eq!(settings.flush_ms, Some(1000));
        assert_eq!(settings.max_message_bytes, 2048);
    }
}
