//! Settings of a [`GroupConsumer`](crate::GroupConsumer): the group, membership timeouts,
//! offset commits and fetching, with Kafka-like defaults.

use std::time::Duration;

use crate::{ConsumerConfig, Error, Result, StartOffset};

/// Which topics a group member reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subscription {
    /// These topics, by name.
    Topics(Vec<String>),
    /// Every topic whose name matches this regular expression, as evaluated by the
    /// coordinator (topics created later are picked up as they appear).
    Regex(String),
}

impl Subscription {
    /// A subscription to `topics` by name.
    pub fn topics<I, S>(topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::Topics(topics.into_iter().map(Into::into).collect())
    }

    /// A subscription to every topic matching `pattern`.
    pub fn regex(pattern: impl Into<String>) -> Self {
        Self::Regex(pattern.into())
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let empty = match self {
            Self::Topics(topics) => topics.is_empty() || topics.iter().any(String::is_empty),
            Self::Regex(pattern) => pattern.is_empty(),
        };
        if empty {
            return Err(Error::Config {
                setting: "subscription",
                reason: "must name at least one topic (and no empty name) or a pattern",
            });
        }
        Ok(())
    }
}

/// Where a group member starts reading a partition the group has no committed offset for
/// (Kafka's `auto.offset.reset`). Also applied when the committed offset is out of range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OffsetReset {
    /// The partition's log start offset: everything still stored.
    Earliest,
    /// The high watermark: only records produced from now on.
    #[default]
    Latest,
}

impl From<OffsetReset> for StartOffset {
    fn from(reset: OffsetReset) -> Self {
        match reset {
            OffsetReset::Earliest => StartOffset::Earliest,
            OffsetReset::Latest => StartOffset::Latest,
        }
    }
}

/// How a [`GroupConsumer`](crate::GroupConsumer) takes part in its group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConsumerConfig {
    /// The consumer group to join. Required.
    pub group_id: String,
    /// A static instance id (Kafka's `group.instance.id`): a member that restarts with the
    /// same id gets its partitions back without a rebalance, if it returns within the session
    /// timeout. `None` (the default) joins as a dynamic member.
    pub instance_id: Option<String>,
    /// The rack the consumer runs in, for rack-aware assignors. Default `None`.
    pub rack: Option<String>,
    /// How long the coordinator keeps the member without a heartbeat. `None` (the default)
    /// uses the coordinator's default.
    pub session_timeout: Option<Duration>,
    /// How long the member may take to release revoked partitions, i.e. the longest gap
    /// between two [`poll`](crate::GroupConsumer::poll) calls while partitions are being
    /// revoked, before the coordinator fences it. Default 60 s.
    pub rebalance_timeout: Duration,
    /// The server-side assignor to ask for; `None` (the default) uses the group's.
    pub assignor: Option<String>,
    /// Commit the positions of returned records periodically, on revocation and on close.
    /// Default `true`.
    pub auto_commit: bool,
    /// The least time between two automatic commits. Default 5 s.
    pub auto_commit_interval: Duration,
    /// Where to start without a committed offset. Default [`OffsetReset::Latest`].
    pub reset: OffsetReset,
    /// The most records one `poll` returns. Default 500.
    pub max_poll_records: usize,
    /// How long [`poll`](crate::GroupConsumer::poll) waits when no records are buffered.
    /// Default 1 s.
    pub poll_timeout: Duration,
    /// How each partition is fetched; its `start` is ignored (committed offsets and `reset`
    /// decide where reading starts).
    pub fetch: ConsumerConfig,
    /// The first pause before retrying a failed coordinator request. Default 100 ms.
    pub retry_backoff: Duration,
    /// The longest pause between retries; pauses double up to it. Default 1 s.
    pub retry_backoff_max: Duration,
}

impl GroupConsumerConfig {
    /// The defaults for joining `group_id`.
    pub fn new(group_id: impl Into<String>) -> Self {
        Self {
            group_id: group_id.into(),
            ..Self::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.group_id.is_empty() {
            return Err(config("group_id", "must not be empty"));
        }
        if self.instance_id.as_ref().is_some_and(String::is_empty) {
            return Err(config("instance_id", "must not be empty when set"));
        }
        if self.max_poll_records == 0 {
            return Err(config("max_poll_records", "must be at least 1"));
        }
        millis("rebalance_timeout", Some(self.rebalance_timeout))?;
        millis("session_timeout", self.session_timeout)?;
        millis("auto_commit_interval", Some(self.auto_commit_interval))?;
        millis("retry_backoff", Some(self.retry_backoff))?;
        if self.retry_backoff_max < self.retry_backoff {
            return Err(config(
                "retry_backoff_max",
                "must be at least retry_backoff",
            ));
        }
        self.fetch.validate()
    }

    /// `rebalance_timeout` in milliseconds, as the wire carries it.
    pub(crate) fn rebalance_timeout_ms(&self) -> i32 {
        to_ms(self.rebalance_timeout)
    }

    /// `session_timeout` in milliseconds, 0 for the coordinator's default.
    pub(crate) fn session_timeout_ms(&self) -> i32 {
        self.session_timeout.map_or(0, to_ms)
    }
}

impl Default for GroupConsumerConfig {
    fn default() -> Self {
        Self {
            group_id: String::new(),
            instance_id: None,
            rack: None,
            session_timeout: None,
            rebalance_timeout: Duration::from_secs(60),
            assignor: None,
            auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            reset: OffsetReset::Latest,
            max_poll_records: 500,
            poll_timeout: Duration::from_secs(1),
            fetch: ConsumerConfig::default(),
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_secs(1),
        }
    }
}

fn config(setting: &'static str, reason: &'static str) -> Error {
    Error::Config { setting, reason }
}

/// Checks that `value`, when set, is a positive number of milliseconds that fits the wire.
fn millis(setting: &'static str, value: Option<Duration>) -> Result<()> {
    match value {
        Some(value) if value.as_millis() == 0 || value.as_millis() > i32::MAX as u128 => {
            Err(config(setting, "must be between 1 ms and i32::MAX ms"))
        }
        _ => Ok(()),
    }
}

fn to_ms(value: Duration) -> i32 {
    i32::try_from(value.as_millis()).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafka_like_and_need_a_group() {
        let config = GroupConsumerConfig::new("g");
        config.validate().unwrap();
        assert!(config.auto_commit);
        assert_eq!(config.reset, OffsetReset::Latest);
        assert_eq!(config.session_timeout_ms(), 0);
        assert_eq!(config.rebalance_timeout_ms(), 60_000);
        assert!(GroupConsumerConfig::default().validate().is_err());
    }

    #[test]
    fn out_of_range_settings_are_rejected() {
        let base = GroupConsumerConfig::new("g");
        let bad = [
            GroupConsumerConfig {
                session_timeout: Some(Duration::ZERO),
                ..base.clone()
            },
            GroupConsumerConfig {
                rebalance_timeout: Duration::from_secs(u64::MAX / 2),
                ..base.clone()
            },
            GroupConsumerConfig {
                instance_id: Some(String::new()),
                ..base.clone()
            },
            GroupConsumerConfig {
                max_poll_records: 0,
                ..base.clone()
            },
            GroupConsumerConfig {
                retry_backoff_max: Duration::from_millis(1),
                ..base.clone()
            },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
        let with_session = GroupConsumerConfig {
            session_timeout: Some(Duration::from_secs(45)),
            ..base
        };
        assert_eq!(with_session.session_timeout_ms(), 45_000);
    }

    #[test]
    fn subscriptions_must_name_something() {
        Subscription::topics(["a", "b"]).validate().unwrap();
        Subscription::regex("orders-.*").validate().unwrap();
        assert!(
            Subscription::topics(Vec::<String>::new())
                .validate()
                .is_err()
        );
        assert!(Subscription::topics([""]).validate().is_err());
        assert!(Subscription::regex("").validate().is_err());
        assert_eq!(
            StartOffset::from(OffsetReset::Earliest),
            StartOffset::Earliest
        );
    }
}
