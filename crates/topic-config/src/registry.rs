//! The registry: names, documentation, defaults and validation of every topic config.
//!
//! Topic configs are stored as strings in the topic record's `configs` map in etcd,
//! holding only the overrides; every other config takes its default. Values are validated and
//! normalised once, when they are set (`"TRUE"` is stored as `"true"`, `"+0100"` as `"100"`),
//! so readers can parse them without surprises.
//!
//! The defaults are those of the broker's `strom_storage::LogConfig::default()`, which follow
//! Kafka's. Kafka spells "never" as `i64::MAX` for `flush.messages` and `flush.ms` and
//! "unlimited" as `-1` for `retention.ms` and `retention.bytes`; these map to `None` there.

use std::collections::BTreeMap;

use crate::{Error, Result};

/// `cleanup.policy`: what happens to old segments. Only `delete` is supported.
pub const CLEANUP_POLICY: &str = "cleanup.policy";
/// `compression.type`: the compression of stored batches.
pub const COMPRESSION_TYPE: &str = "compression.type";
/// `flush.messages`: fsync after this many appended records.
pub const FLUSH_MESSAGES: &str = "flush.messages";
/// `flush.ms`: fsync when the last flush is this old.
pub const FLUSH_MS: &str = "flush.ms";
/// `index.interval.bytes`: bytes between two offset index entries.
pub const INDEX_INTERVAL_BYTES: &str = "index.interval.bytes";
/// `max.message.bytes`: the largest batch a partition accepts.
pub const MAX_MESSAGE_BYTES: &str = "max.message.bytes";
/// `message.timestamp.type`: which timestamp stored records carry.
pub const MESSAGE_TIMESTAMP_TYPE: &str = "message.timestamp.type";
/// `min.insync.replicas`: the smallest ISR with which acks=all succeeds.
pub const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";
/// `retention.bytes`: the size limit of a partition's log.
pub const RETENTION_BYTES: &str = "retention.bytes";
/// `retention.ms`: the age limit of a partition's records.
pub const RETENTION_MS: &str = "retention.ms";
/// `segment.bytes`: the size at which a segment rolls.
pub const SEGMENT_BYTES: &str = "segment.bytes";
/// `segment.ms`: the age at which a segment rolls.
pub const SEGMENT_MS: &str = "segment.ms";
/// `unclean.leader.election.enable`: whether an out-of-sync replica may become leader.
pub const UNCLEAN_LEADER_ELECTION_ENABLE: &str = "unclean.leader.election.enable";

/// The smallest `max.message.bytes`: one RecordBatch v2 header (`strom_record::HEADER_SIZE`).
const MIN_MESSAGE_BYTES: i64 = 61;
/// The largest `max.message.bytes`: `strom_record::MAX_BATCH_SIZE`.
const MAX_BATCH_BYTES: i64 = 64 * 1024 * 1024;

/// The kind of value a config takes, with its allowed range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// A 64-bit integer in `min..=max`.
    Long {
        /// The smallest allowed value.
        min: i64,
        /// The largest allowed value.
        max: i64,
    },
    /// `true` or `false`, in any letter case.
    Boolean,
    /// One of a fixed set of words, in any letter case; stored in the spelling listed.
    Choice(&'static [&'static str]),
    /// `cleanup.policy`: a comma-separated list of `delete` and `compact`, of which only
    /// `delete` is supported.
    CleanupPolicy,
}

/// One topic config: its name, documentation, default and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDef {
    /// The config name, e.g. `retention.ms`.
    pub name: &'static str,
    /// What the config does, as DescribeConfigs shows it.
    pub doc: &'static str,
    /// The value used when the topic has no override.
    pub default: &'static str,
    /// The values it accepts.
    pub config_type: ConfigType,
}

const I64_MAX_TEXT: &str = "9223372036854775807";

/// Every topic config, sorted by name.
static DEFINITIONS: [ConfigDef; 13] = [
    ConfigDef {
        name: CLEANUP_POLICY,
        doc: "What happens to old log segments: \"delete\" removes them by retention.ms and \
              retention.bytes. Log compaction (\"compact\") is not supported.",
        default: "delete",
        config_type: ConfigType::CleanupPolicy,
    },
    ConfigDef {
        name: COMPRESSION_TYPE,
        doc: "The compression of stored batches. \"producer\" keeps the producer's codec; \
              Strom never recompresses, so other values only document the expected codec.",
        default: "producer",
        config_type: ConfigType::Choice(&[
            "producer",
            "uncompressed",
            "gzip",
            "snappy",
            "lz4",
            "zstd",
        ]),
    },
    ConfigDef {
        name: FLUSH_MESSAGES,
        doc: "Force an fsync once this many records were appended since the last one. The \
              default (i64::MAX) never forces one: replication is the main durability.",
        default: I64_MAX_TEXT,
        config_type: ConfigType::Long {
            min: 1,
            max: i64::MAX,
        },
    },
    ConfigDef {
        name: FLUSH_MS,
        doc: "Force an fsync when the last one is this many milliseconds old. The default \
              (i64::MAX) never forces one.",
        default: I64_MAX_TEXT,
        config_type: ConfigType::Long {
            min: 0,
            max: i64::MAX,
        },
    },
    ConfigDef {
        name: INDEX_INTERVAL_BYTES,
        doc: "How many bytes are appended between two entries of the sparse offset index.",
        default: "4096",
        config_type: ConfigType::Long {
            min: 1,
            max: i32::MAX as i64,
        },
    },
    ConfigDef {
        name: MAX_MESSAGE_BYTES,
        doc: "The largest record batch (after compression) a partition accepts, in bytes.",
        default: "1048588",
        config_type: ConfigType::Long {
            min: MIN_MESSAGE_BYTES,
            max: MAX_BATCH_BYTES,
        },
    },
    ConfigDef {
        name: MESSAGE_TIMESTAMP_TYPE,
        doc: "Whether records keep the producer's timestamp (CreateTime) or get the broker's \
              append time (LogAppendTime).",
        default: "CreateTime",
        config_type: ConfigType::Choice(&["CreateTime", "LogAppendTime"]),
    },
    ConfigDef {
        name: MIN_INSYNC_REPLICAS,
        doc: "The smallest ISR with which a produce with acks=all succeeds; at most the \
              replication factor.",
        default: "1",
        config_type: ConfigType::Long {
            min: 1,
            max: i16::MAX as i64,
        },
    },
    ConfigDef {
        name: RETENTION_BYTES,
        doc: "Delete the oldest segments while a partition's log is larger than this many \
              bytes; -1 means no size limit.",
        default: "-1",
        config_type: ConfigType::Long {
            min: -1,
            max: i64::MAX,
        },
    },
    ConfigDef {
        name: RETENTION_MS,
        doc: "Delete segments whose newest record is older than this many milliseconds; -1 \
              keeps records forever.",
        default: "604800000",
        config_type: ConfigType::Long {
            min: -1,
            max: i64::MAX,
        },
    },
    ConfigDef {
        name: SEGMENT_BYTES,
        doc: "Roll the active segment once an append would take it past this many bytes \
              (14 bytes to 2 GiB).",
        default: "1073741824",
        config_type: ConfigType::Long {
            min: 14,
            max: i32::MAX as i64,
        },
    },
    ConfigDef {
        name: SEGMENT_MS,
        doc: "Roll the active segment once its first append is this many milliseconds old.",
        default: "604800000",
        config_type: ConfigType::Long {
            min: 1,
            max: i64::MAX,
        },
    },
    ConfigDef {
        name: UNCLEAN_LEADER_ELECTION_ENABLE,
        doc: "Let a replica outside the ISR become leader when no ISR member is live. This \
              keeps the partition available but loses the records only the ISR had.",
        default: "false",
        config_type: ConfigType::Boolean,
    },
];

/// Every topic config, sorted by name.
pub fn definitions() -> &'static [ConfigDef] {
    &DEFINITIONS
}

/// The config named `name`, if there is one.
pub fn definition(name: &str) -> Option<&'static ConfigDef> {
    DEFINITIONS.iter().find(|def| def.name == name)
}

impl ConfigDef {
    /// Checks `value` and returns it in its stored form.
    pub fn normalize(&self, value: &str) -> Result<String> {
        let trimmed = value.trim();
        let invalid = |reason| Error::InvalidConfig {
            name: self.name.to_owned(),
            value: value.to_owned(),
            reason,
        };
        match self.config_type {
            ConfigType::Long { min, max } => {
                let parsed: i64 = trimmed.parse().map_err(|_| invalid("not an integer"))?;
                if parsed < min {
                    return Err(invalid(below_reason(min)));
                }
                if parsed > max {
                    return Err(invalid("too large"));
                }
                Ok(parsed.to_string())
            }
            ConfigType::Boolean => match trimmed.to_ascii_lowercase().as_str() {
                "true" => Ok("true".to_owned()),
                "false" => Ok("false".to_owned()),
                _ => Err(invalid("must be \"true\" or \"false\"")),
            },
            ConfigType::Choice(choices) => choices
                .iter()
                .find(|choice| choice.eq_ignore_ascii_case(trimmed))
                .map(|choice| (*choice).to_owned())
                .ok_or_else(|| invalid(choice_reason(self.name))),
            ConfigType::CleanupPolicy => {
                let mut delete = false;
                for policy in trimmed.split(',').map(str::trim) {
                    if policy.eq_ignore_ascii_case("delete") {
                        delete = true;
                    } else if policy.eq_ignore_ascii_case("compact") {
                        return Err(invalid(
                            "log compaction is not supported; only \"delete\" is",
                        ));
                    } else {
                        return Err(invalid("must be \"delete\""));
                    }
                }
                if delete {
                    Ok("delete".to_owned())
                } else {
                    Err(invalid("must be \"delete\""))
                }
            }
        }
    }
}

/// The reason for a value below the minimum, naming the minimum (static, so it stays a
/// structured field rather than a formatted string).
fn below_reason(min: i64) -> &'static str {
    match min {
        -1 => "must be -1 (unlimited) or non-negative",
        0 => "must not be negative",
        1 => "must be at least 1",
        14 => "must be at least 14 bytes",
        MIN_MESSAGE_BYTES => "must hold at least one 61-byte batch header",
        _ => "too small",
    }
}

fn choice_reason(name: &str) -> &'static str {
    match name {
        COMPRESSION_TYPE => "must be one of producer, uncompressed, gzip, snappy, lz4, zstd",
        MESSAGE_TIMESTAMP_TYPE => "must be CreateTime or LogAppendTime",
        _ => "not one of the allowed values",
    }
}

/// Validates a set of overrides and returns them normalised, checked in name order.
///
/// An unknown name is [`Error::UnknownConfig`]; a bad value is [`Error::InvalidConfig`]. This
/// does not check `min.insync.replicas` against the replication factor; see
/// [`validate_topic_configs`].
pub fn validate_overrides<I, K, V>(overrides: I) -> Result<BTreeMap<String, String>>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    // Sorting first makes the reported error the same for any iteration order of the input.
    let sorted: BTreeMap<String, String> = overrides
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
        .collect();
    sorted
        .into_iter()
        .map(|(name, value)| {
            let def =
                definition(&name).ok_or_else(|| Error::UnknownConfig { name: name.clone() })?;
            Ok((name, def.normalize(&value)?))
        })
        .collect()
}

/// Validates the overrides of a topic with `replication_factor` replicas: every check of
/// [`validate_overrides`], plus `min.insync.replicas <= replication_factor`.
pub fn validate_topic_configs<I, K, V>(
    overrides: I,
    replication_factor: u16,
) -> Result<BTreeMap<String, String>>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<str>,
    V: AsRef<str>,
{
    let configs = validate_overrides(overrides)?;
    let min_insync = long_value(&configs, MIN_INSYNC_REPLICAS);
    if min_insync > i64::from(replication_factor) {
        return Err(Error::MinInsyncReplicasAboveReplicationFactor {
            min_insync_replicas: min_insync,
            replication_factor,
        });
    }
    Ok(configs)
}

/// Where an effective config value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// The built-in default.
    Default,
    /// An override set on the topic.
    Topic,
}

/// One config's effective value for a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The config's definition (name, documentation, default).
    pub def: &'static ConfigDef,
    /// The effective value.
    pub value: String,
    /// Whether the value is the default or the topic's override.
    pub source: ConfigSource,
}

/// Every config's effective value for a topic with the stored overrides `configs`, sorted by
/// name. Stored names this build does not know are left out.
pub fn effective_configs(configs: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    DEFINITIONS
        .iter()
        .map(|def| match configs.get(def.name) {
            Some(value) => ConfigEntry {
                def,
                value: value.clone(),
                source: ConfigSource::Topic,
            },
            None => ConfigEntry {
                def,
                value: def.default.to_owned(),
                source: ConfigSource::Default,
            },
        })
        .collect()
}

/// Whether the topic with stored overrides `configs` allows unclean leader election.
///
/// A stored value that does not parse (written by hand) counts as `false`, the safe choice.
pub fn unclean_leader_election(configs: &BTreeMap<String, String>) -> bool {
    match configs.get(UNCLEAN_LEADER_ELECTION_ENABLE) {
        None => false,
        Some(value) => match value.trim().to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => {
                tracing::warn!(
                    config = UNCLEAN_LEADER_ELECTION_ENABLE,
                    value = %value,
                    "malformed stored topic config, using false"
                );
                false
            }
        },
    }
}

/// The topic's `min.insync.replicas` given its stored overrides `configs`.
///
/// A stored value that does not parse or is below 1 counts as the default, 1.
pub fn min_insync_replicas(configs: &BTreeMap<String, String>) -> u16 {
    let value = long_value(configs, MIN_INSYNC_REPLICAS);
    u16::try_from(value.clamp(1, i64::from(u16::MAX))).unwrap_or(1)
}

/// The stored integer value of `name`, or its default when absent or malformed.
pub(crate) fn long_value(configs: &BTreeMap<String, String>, name: &'static str) -> i64 {
    let default = definition(name)
        .and_then(|def| def.default.parse().ok())
        .unwrap_or_default();
    match configs.get(name) {
        None => default,
        Some(value) => value.trim().parse().unwrap_or_else(|_| {
            tracing::warn!(config = name, value = %value, "malformed stored topic config, using the default");
            default
        }),
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

    fn invalid_reason(name: &str, value: &str) -> &'static str {
        match validate_overrides([(name, value)]) {
            Err(Error::InvalidConfig {
                name: n,
                value: v,
                reason,
            }) => {
                assert_eq!((n.as_str(), v.as_str()), (name, value));
                reason
            }
            other => panic!("{name}={value}: expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn definitions_are_sorted_unique_and_defaults_are_valid() {
        let names: Vec<_> = definitions().iter().map(|d| d.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
        for def in definitions() {
            assert_eq!(
                def.normalize(def.default).unwrap(),
                def.default,
                "{}",
                def.name
            );
            assert!(!def.doc.is_empty());
            assert_eq!(definition(def.name), Some(def));
        }
    }

    #[test]
    fn defaults_match_the_storage_log_config() {
        // Mirrors `strom_storage::LogConfig::default()`, which this crate does not depend on.
        let default = |name| definition(name).unwrap().default;
        assert_eq!(default(SEGMENT_BYTES), (1u64 << 30).to_string());
        assert_eq!(
            default(SEGMENT_MS),
            (7i64 * 24 * 60 * 60 * 1000).to_string()
        );
        assert_eq!(
            default(RETENTION_MS),
            (7i64 * 24 * 60 * 60 * 1000).to_string()
        );
        assert_eq!(default(RETENTION_BYTES), "-1");
        assert_eq!(default(INDEX_INTERVAL_BYTES), "4096");
        assert_eq!(default(MAX_MESSAGE_BYTES), (1024 * 1024 + 12).to_string());
        assert_eq!(default(FLUSH_MESSAGES), i64::MAX.to_string());
        assert_eq!(default(FLUSH_MS), i64::MAX.to_string());
        assert_eq!(default(MIN_INSYNC_REPLICAS), "1");
        assert_eq!(default(UNCLEAN_LEADER_ELECTION_ENABLE), "false");
        assert_eq!(default(CLEANUP_POLICY), "delete");
    }

    #[test]
    fn valid_values_are_normalised() {
        let configs = validate_overrides(&map(&[
            (UNCLEAN_LEADER_ELECTION_ENABLE, "TRUE"),
            (RETENTION_MS, " -1 "),
            (SEGMENT_BYTES, "+0100"),
            (COMPRESSION_TYPE, "ZSTD"),
            (MESSAGE_TIMESTAMP_TYPE, "logappendtime"),
            (CLEANUP_POLICY, "Delete"),
            (FLUSH_MS, "0"),
        ]))
        .unwrap();
        assert_eq!(
            configs,
            map(&[
                (UNCLEAN_LEADER_ELECTION_ENABLE, "true"),
                (RETENTION_MS, "-1"),
                (SEGMENT_BYTES, "100"),
                (COMPRESSION_TYPE, "zstd"),
                (MESSAGE_TIMESTAMP_TYPE, "LogAppendTime"),
                (CLEANUP_POLICY, "delete"),
                (FLUSH_MS, "0"),
            ])
        );
    }

    #[test]
    fn every_bad_value_names_the_value_and_why() {
        assert!(invalid_reason(CLEANUP_POLICY, "compact").contains("compaction"));
        assert!(invalid_reason(CLEANUP_POLICY, "delete,compact").contains("compaction"));
        assert!(invalid_reason(CLEANUP_POLICY, "archive").contains("delete"));
        assert!(invalid_reason(CLEANUP_POLICY, "").contains("delete"));
        assert!(invalid_reason(RETENTION_MS, "-2").contains("-1"));
        assert!(invalid_reason(RETENTION_MS, "7d").contains("integer"));
        assert!(invalid_reason(RETENTION_BYTES, "-5").contains("-1"));
        assert!(invalid_reason(SEGMENT_BYTES, "13").contains("14"));
        assert!(invalid_reason(SEGMENT_BYTES, "2147483648").contains("large"));
        assert!(invalid_reason(SEGMENT_MS, "0").contains("at least 1"));
        assert!(invalid_reason(MAX_MESSAGE_BYTES, "60").contains("header"));
        assert!(invalid_reason(MAX_MESSAGE_BYTES, "67108865").contains("large"));
        assert!(invalid_reason(MIN_INSYNC_REPLICAS, "0").contains("at least 1"));
        assert!(invalid_reason(UNCLEAN_LEADER_ELECTION_ENABLE, "yes").contains("true"));
        assert!(invalid_reason(FLUSH_MESSAGES, "0").contains("at least 1"));
        assert!(invalid_reason(FLUSH_MS, "-1").contains("negative"));
        assert!(invalid_reason(MESSAGE_TIMESTAMP_TYPE, "Now").contains("CreateTime"));
        assert!(invalid_reason(COMPRESSION_TYPE, "brotli").contains("zstd"));
        assert!(invalid_reason(INDEX_INTERVAL_BYTES, "0").contains("at least 1"));
        assert!(invalid_reason(RETENTION_MS, "99999999999999999999").contains("integer"));
    }

    #[test]
    fn unknown_names_are_rejected() {
        let err = validate_overrides([("retention.hours", "1")]).unwrap_err();
        assert!(matches!(err, Error::UnknownConfig { ref name } if name == "retention.hours"));
    }

    #[test]
    fn errors_are_reported_in_name_order() {
        // Both are bad; the first by name wins, whatever order they came in.
        let pairs = [(SEGMENT_MS, "0"), (RETENTION_MS, "x")];
        for input in [pairs, [pairs[1], pairs[0]]] {
            let err = validate_overrides(input).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { ref name, .. } if name == RETENTION_MS));
        }
    }

    #[test]
    fn min_insync_replicas_is_checked_against_the_replication_factor() {
        let configs = map(&[(MIN_INSYNC_REPLICAS, "3")]);
        assert!(validate_topic_configs(&configs, 3).is_ok());
        let err = validate_topic_configs(&configs, 2).unwrap_err();
        assert!(matches!(
            err,
            Error::MinInsyncReplicasAboveReplicationFactor {
                min_insync_replicas: 3,
                replication_factor: 2
            }
        ));
        assert!(validate_topic_configs(&map(&[]), 1).is_ok());
    }

    #[test]
    fn effective_configs_mark_their_source() {
        let configs = map(&[(RETENTION_MS, "-1")]);
        let entries = effective_configs(&configs);
        assert_eq!(entries.len(), definitions().len());
        for entry in &entries {
            if entry.def.name == RETENTION_MS {
                assert_eq!(
                    (entry.value.as_str(), entry.source),
                    ("-1", ConfigSource::Topic)
                );
            } else {
                assert_eq!(entry.value, entry.def.default);
                assert_eq!(entry.source, ConfigSource::Default);
            }
        }
    }

    #[test]
    fn accessors_read_overrides_and_fall_back_safely() {
        assert!(!unclean_leader_election(&map(&[])));
        assert!(unclean_leader_election(&map(&[(
            UNCLEAN_LEADER_ELECTION_ENABLE,
            "true"
        )])));
        assert!(!unclean_leader_election(&map(&[(
            UNCLEAN_LEADER_ELECTION_ENABLE,
            "maybe"
        )])));
        assert_eq!(min_insync_replicas(&map(&[])), 1);
        assert_eq!(min_insync_replicas(&map(&[(MIN_INSYNC_REPLICAS, "2")])), 2);
        assert_eq!(min_insync_replicas(&map(&[(MIN_INSYNC_REPLICAS, "x")])), 1);
        assert_eq!(min_insync_replicas(&map(&[(MIN_INSYNC_REPLICAS, "-4")])), 1);
    }
}
