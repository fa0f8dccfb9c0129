//! The error type for validating raw values into domain types.

/// Why a raw value was rejected when converting it into a domain type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A topic name breaks the naming rules (length, characters, reserved names).
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopicName {
        /// The rejected name.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A numeric value lies outside the range its type allows.
    #[error("{what} out of range: {value}")]
    OutOfRange {
        /// The kind of value, e.g. "offset".
        what: &'static str,
        /// The rejected value.
        value: i64,
    },
    /// A topic id is not a canonical lowercase UUID.
    #[error("invalid topic id {id:?}")]
    InvalidTopicId {
        /// The rejected id.
        id: String,
    },
    /// A partition directory name is not `<topic>-<partition>`.
    #[error("invalid partition directory name {name:?}")]
    InvalidPartitionDir {
        /// The rejected directory name.
        name: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
