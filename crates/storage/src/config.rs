//! Per-partition log settings, named after the Kafka topic configs they mirror.

use crate::{Error, Result};

/// How a partition log rolls, indexes, flushes and retains its segments.
///
/// Defaults follow Kafka's: 1 GiB / 7 day segments, 7 day time retention, unlimited size retention,
/// an index entry every 4 KiB, no forced fsync (replication is the main durability).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll the active segment once an append would take it past this size.
    pub segment_bytes: u64,
    /// `segment.ms`: roll the active segment once its first append is this old.
    pub segment_ms: i64,
    /// `retention.ms`: delete sealed segments whose newest record is older than this; `None` keeps forever.
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: delete the oldest segments while the log is larger than this; `None` = no limit.
    pub retention_bytes: Option<u64>,
    /// `index.interval.bytes`: bytes appended between two sparse index entries.
    pub index_interval_bytes: u64,
    /// `max.message.bytes`: the largest batch accepted.
    pub max_batch_bytes: usize,
    /// `flush.messages`: fsync once this many records were appended since the last flush.
    pub flush_messages: Option<u64>,
    /// `flush.ms`: fsync when the last flush is this old (checked on append and by [`crate::PartitionLog::flush_if_due`]).
    pub flush_ms: Option<i64>,
}

impl From<&strom_topic_config::LogSettings> for LogConfig {
    /// The log config for a topic's settings (its stored configs with defaults filled in).
    fn from(settings: &strom_topic_config::LogSettings) -> Self {
        Self {
            segment_bytes: settings.segment_bytes,
            segment_ms: settings.segment_ms,
            retention_ms: settings.retention_ms,
            retention_bytes: settings.retention_bytes,
            index_interval_bytes: settings.index_interval_bytes,
            max_batch_bytes: settings.max_message_bytes,
            flush_messages: settings.flush_messages,
            flush_ms: settings.flush_ms,
        }
    }
}

/// Smallest allowed `segment.bytes`, as in Kafka (14 bytes less than a batch is useless).
pub const MIN_SEGMENT_BYTES: u64 = 14;

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 60 * 60 * 1000,
            retention_ms: Some(7 * 24 * 60 * 60 * 1000),
            retention_bytes: None,
            index_interval_bytes: 4096,
            max_batch_bytes: 1024 * 1024 + 12,
            flush_messages: None,
            flush_ms: None,
        }
    }
}

impl LogConfig {
    /// Checks every value's range; call before opening a log with this config.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason| Err(Error::InvalidConfig { field, reason });
        if self.segment_bytes < MIN_SEGMENT_BYTES || self.segment_bytes > i32::MAX as u64 {
            return invalid("segment-bytes", "must be between 14 bytes and 2 GiB");
        }
        if self.segment_ms < 1 {
            return invalid("segment-ms", "must be at least 1 ms");
        }
        if matches!(self.retention_ms, Some(ms) if ms < 0) {
            return invalid("retention-ms", "must not be negative");
        }
        if self.index_interval_bytes == 0 {
            return invalid("index-interval-bytes", "must be positive");
        }
        if self.max_batch_bytes < strom_record::HEADER_SIZE {
            return invalid("max-batch-bytes", "must hold at least one batch header");
        }
        if self.max_batch_bytes > strom_record::MAX_BATCH_SIZE {
            return invalid(
                "max-batch-bytes",
                "exceeds the largest batch the format allows",
            );
        }
        if matches!(self.flush_messages, Some(0)) {
            return invalid("flush-messages", "must be positive when set");
        }
        if matches!(self.flush_ms, Some(ms) if ms < 0) {
            return invalid("flush-ms", "must not be negative");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        LogConfig::default().validate().unwrap();
    }

    #[test]
    fn out_of_range_values_are_rejected() {
        let bad = [
            LogConfig {
                segment_bytes: 10,
                ..LogConfig::default()
            },
            LogConfig {
                segment_ms: 0,
                ..LogConfig::default()
            },
            LogConfig {
                retention_ms: Some(-5),
                ..LogConfig::default()
            },
            LogConfig {
                index_interval_bytes: 0,
                ..LogConfig::default()
            },
            LogConfig {
                max_batch_bytes: 10,
                ..LogConfig::default()
            },
            LogConfig {
                flush_messages: Some(0),
                ..LogConfig::default()
            },
        ];
        for config in bad {
            assert!(
                matches!(config.validate(), Err(Error::InvalidConfig { .. })),
                "{config:?}"
            );
        }
    }
}
