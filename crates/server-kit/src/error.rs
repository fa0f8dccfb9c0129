//! The crate's error type.
//!
//! Config errors name the key that is wrong and the [`Layer`] (defaults, file, env var or
//! flag) that supplied it, so an operator can fix the right place without guessing.
//! [`UnitError`] is the narrow `FromStr` error of the unit newtypes; inside config loading it
//! surfaces as the `reason` of [`Error::BadValue`].

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Where a config value came from. Later layers override earlier ones in the order listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    /// The config type's `Default` impl.
    Default,
    /// The TOML file at this path.
    File(PathBuf),
    /// An environment variable, by name (e.g. `STROM_BROKER__LOG__SEGMENT_BYTES`).
    Env(String),
    /// A `--set key=value` flag; holds the dotted key as written on the command line.
    Flag(String),
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("built-in defaults"),
            Self::File(path) => write!(f, "file {}", path.display()),
            Self::Env(var) => write!(f, "env var {var}"),
            Self::Flag(key) => write!(f, "flag --set {key}=..."),
        }
    }
}

/// Everything that can go wrong in process scaffolding.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file could not be read.
    #[error("cannot read config file {}", path.display())]
    FileUnreadable {
        /// The path that was given.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The config file is not valid TOML.
    #[error("config file {} is not valid TOML: {message}", path.display())]
    TomlParse {
        /// The file's path.
        path: PathBuf,
        /// The parser's message, including line and column.
        message: String,
    },
    /// A key that the config type does not define.
    #[error("unknown config key `{key}` (from {layer})")]
    UnknownKey {
        /// Dotted path of the key, e.g. `log.segment-bytes`.
        key: String,
        /// The layer that supplied it.
        layer: Layer,
    },
    /// A key whose value has the wrong type or format.
    #[error("bad value for config key `{key}` (from {layer}): {reason}")]
    BadValue {
        /// Dotted path of the key.
        key: String,
        /// The layer that supplied the value.
        layer: Layer,
        /// What was expected.
        reason: String,
    },
    /// An env var or `--set` key that cannot be mapped to a config path (e.g. empty segments).
    #[error("malformed config key `{key}` (from {layer})")]
    MalformedKey {
        /// The key as given.
        key: String,
        /// Where it was given.
        layer: Layer,
    },
    /// The merged config could not be deserialized and the error could not be pinned to a key.
    #[error("config does not deserialize: {message}")]
    Deserialize {
        /// The deserializer's message.
        message: String,
    },
    /// The config could not be turned into TOML (e.g. an integer above `i64::MAX`).
    #[error("config does not serialize to TOML: {message}")]
    Serialize {
        /// The serializer's message.
        message: String,
    },
    /// A value that deserialized but failed [`Validate`](crate::Validate).
    #[error("invalid config `{field}`: {reason}")]
    Invalid {
        /// Dotted path of the offending field.
        field: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A log filter directive (config `level` or `RUST_LOG`) did not parse.
    #[error("bad log filter `{directive}` from {source_name}: {message}")]
    LogFilter {
        /// The directive text.
        directive: String,
        /// `"RUST_LOG"` or `"logging.level"`.
        source_name: &'static str,
        /// The parser's message.
        message: String,
    },
    /// The global tracing subscriber could not be installed (usually: one already is).
    #[error("cannot install tracing subscriber: {message}")]
    LoggingInit {
        /// The subscriber's message.
        message: String,
    },
    /// The server reflection service could not be built from the descriptor set.
    #[error("cannot build the gRPC reflection service: {message}")]
    Reflection {
        /// What tonic-reflection reported.
        message: String,
    },
    /// The metrics HTTP listener could not be bound.
    #[error("cannot listen for metrics on {address}")]
    MetricsBind {
        /// The configured address.
        address: std::net::SocketAddr,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// A function that needs a tokio runtime was called outside one.
    #[error("{what} must be called from within a tokio runtime")]
    NoRuntime {
        /// The function that was called.
        what: &'static str,
    },
    /// Installing an OS signal handler failed.
    #[error("cannot install {signal} handler")]
    Signal {
        /// The signal's name, e.g. `SIGTERM`.
        signal: &'static str,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Builds an [`Error::Invalid`]; meant for [`Validate`](crate::Validate) impls.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Prefixes the field of an [`Error::Invalid`] with `section.`, so a nested config's
    /// `validate` can report `level` and its parent turn that into `logging.level`.
    /// Other variants are returned unchanged.
    #[must_use]
    pub fn nested(self, section: &str) -> Self {
        match self {
            Self::Invalid { field, reason } => Self::Invalid {
                field: format!("{section}.{field}"),
                reason,
            },
            other => other,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a [`ByteSize`](crate::ByteSize) or [`HumanDuration`](crate::HumanDuration) string
/// did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// The input was empty or only whitespace.
    #[error("empty value")]
    Empty,
    /// The input was negative.
    #[error("`{input}` is negative")]
    Negative {
        /// The input.
        input: String,
    },
    /// A number was expected and not found (or was not a whole number).
    #[error("`{input}` is not a whole number followed by a unit")]
    InvalidNumber {
        /// The input.
        input: String,
    },
    /// The unit suffix is not one this type knows.
    #[error("unknown unit `{unit}` in `{input}`; expected one of {expected}")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole input.
        input: String,
        /// The accepted units, comma separated.
        expected: &'static str,
    },
    /// The value does not fit the type.
    #[error("`{input}` is too large")]
    Overflow {
        /// The input.
        input: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_key_and_layer() {
        let e = Error::UnknownKey {
            key: "log.bogus".into(),
            layer: Layer::Env("STROM_BROKER__LOG__BOGUS".into()),
        };
        assert_eq!(
            e.to_string(),
            "unknown config key `log.bogus` (from env var STROM_BROKER__LOG__BOGUS)"
        );
        let e = Error::BadValue {
            key: "a.b".into(),
            layer: Layer::File("/etc/x.toml".into()),
            reason: "nope".into(),
        };
        assert_eq!(
            e.to_string(),
            "bad value for config key `a.b` (from file /etc/x.toml): nope"
        );
    }

    #[test]
    fn nested_prefixes_invalid_only() {
        let e = Error::invalid("level", "bad").nested("logging");
        assert!(matches!(e, Error::Invalid { ref field, .. } if field == "logging.level"));
        let e = Error::Deserialize {
            message: "m".into(),
        }
        .nested("logging");
        assert!(matches!(e, Error::Deserialize { .. }));
    }
}
