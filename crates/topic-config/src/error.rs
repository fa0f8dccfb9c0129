//! Why a topic config override was refused.

/// A rejected topic config override.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A value that is not allowed for its config.
    #[error("invalid value {value:?} for config {name}: {reason}")]
    InvalidConfig {
        /// The config name.
        name: String,
        /// The rejected value, as sent.
        value: String,
        /// Why it is not allowed.
        reason: &'static str,
    },
    /// `min.insync.replicas` is larger than the replication factor, so acks=all could never
    /// succeed.
    #[error(
        "min.insync.replicas {min_insync_replicas} is larger than the replication factor \\
         {replication_factor}"
    )]
    MinInsyncReplicasAboveReplicationFactor {
        /// The configured `min.insync.replicas`.
        min_insync_replicas: i64,
        /// The topic's replication factor.
        replication_factor: u16,
    },
    /// A config name that is not known.
    #[error("unknown topic config {name:?}")]
    UnknownConfig {
        /// The name as sent.
        name: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
