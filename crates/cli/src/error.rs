//! The command's errors: one line with the error code when the cluster sent one, a hint on
//! what to try, and an exit code scripts can branch on.

use std::process::ExitCode;

use strom_client::ErrorCode;

/// Exit codes, documented in `strom --help`.
pub(crate) mod exit {
    /// The cluster refused the request (the line names the error code).
    pub(crate) const REFUSED: u8 = 1;
    /// Invalid arguments or configuration (clap uses the same code for its own errors).
    pub(crate) const USAGE: u8 = 2;
    /// No broker, controller or coordinator could be reached in time.
    pub(crate) const UNREACHABLE: u8 = 3;
    /// Anything else: a local I/O failure, a malformed answer.
    pub(crate) const OTHER: u8 = 4;
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The cluster answered with an error code.
    #[error("{}: {message}", code_name(*code))]
    Refused {
        /// The code the server sent.
        code: ErrorCode,
        /// The server's detail.
        message: String,
    },
    /// An argument or setting is invalid.
    #[error("invalid argument: {0}")]
    Usage(String),
    /// Nothing answered.
    #[error("cannot reach the cluster: {0}")]
    Unreachable(String),
    /// Reading input or writing output failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or written.
        what: String,
        /// The failure.
        source: std::io::Error,
    },
    /// Any other client failure.
    #[error("{0}")]
    Client(strom_client::Error),
    /// The dev cluster could not start.
    #[error("{0}")]
    Startup(String),
    /// A process answered its health check with something other than SERVING.
    #[error("not serving: {0}")]
    Unhealthy(String),
    /// A wait ran out before the cluster got where it was asked to.
    #[error("not finished: {0}")]
    Incomplete(String),
    /// A benchmark's own count check failed: what was read back differs from what was written.
    #[error("verification failed: {0}")]
    Verification(String),
}

/// An error code's name as users see it, e.g. `UNKNOWN_TOPIC_OR_PARTITION`.
pub(crate) fn code_name(code: ErrorCode) -> &'static str {
    code.as_str_name().trim_start_matches("ERROR_CODE_")
}

/// The command's result type.
pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

impl From<strom_client::Error> for Error {
    fn from(error: strom_client::Error) -> Self {
        use strom_client::Error as E;
        match &error {
            E::Broker { code, message } | E::Coordinator { code, message } => Self::Refused {
                code: *code,
                message: message.clone(),
            },
            E::Commit { code, .. } => Self::Refused {
                code: *code,
                message: error.to_string(),
            },
            E::Transport(status) => Self::Unreachable(status.message().to_owned()),
            E::Timeout { .. } => Self::Unreachable(error.to_string()),
            E::Config { .. } | E::InvalidAddress { .. } => Self::Usage(error.to_string()),
            _ => Self::Client(error),
        }
    }
}

impl Error {
    /// A usage error.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }

    /// The process exit code for this error.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Refused { .. } | Self::Unhealthy(_) | Self::Incomplete(_) => exit::REFUSED,
            Self::Usage(_) => exit::USAGE,
            Self::Unreachable(_) => exit::UNREACHABLE,
            Self::Io { .. } | Self::Client(_) | Self::Startup(_) | Self::Verification(_) => {
                exit::OTHER
            }
        })
    }

    /// What the user could try next, when there is something useful to say.
    pub(crate) fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Refused { code, .. } => refused_hint(*code),
            Self::Unreachable(_) => Some(
                "check --brokers (or STROM_BROKERS) and that the cluster is up: `strom cluster describe`",
            ),
            Self::Usage(_) => Some("see `strom <command> --help`"),
            Self::Unhealthy(_) => Some(
                "a broker serves once it has registered; see its log, and `strom cluster describe`",
            ),
            Self::Incomplete(_) => Some(
                "a broker keeps the leadership of partitions where it is the only in-sync replica; see `strom topic describe`",
            ),
            Self::Startup(_) => Some(
                "another Strom may hold these ports or this data directory: try --port or --data-dir",
            ),
            Self::Io { .. } | Self::Client(_) | Self::Verification(_) => None,
        }
    }
}

fn refused_hint(code: ErrorCode) -> Option<&'static str> {
    Some(match code {
        ErrorCode::UnknownTopicOrPartition => "list the topics with `strom topic list`",
        ErrorCode::TopicAlreadyExists => {
            "pick another name, or inspect it with `strom topic describe`"
        }
        ErrorCode::InvalidReplicationFactor => {
            "the replication factor cannot exceed the live brokers: `strom cluster describe`"
        }
        ErrorCode::InvalidPartitions => "use at least one partition",
        ErrorCode::InvalidConfig => {
            "see the valid settings with `strom topic describe-config TOPIC --docs`"
        }
        ErrorCode::InvalidTopicException => {
            "topic names use letters, digits, '.', '_' and '-', at most 249 characters"
        }
        ErrorCode::NotController
        | ErrorCode::NotLeaderOrFollower
        | ErrorCode::LeaderNotAvailable => "leadership is moving; retry in a moment",
        ErrorCode::NotEnoughReplicas | ErrorCode::NotEnoughReplicasAfterAppend => {
            "too few in-sync replicas for acks=all; see `strom topic describe TOPIC`"
        }
        ErrorCode::GroupIdNotFound => "list the groups with `strom group list`",
        ErrorCode::NonEmptyGroup => {
            "stop the group's consumers first; see `strom group describe GROUP`"
        }
        ErrorCode::CoordinatorNotAvailable | ErrorCode::NotCoordinator => {
            "no coordinator serves the group right now; see `strom cluster describe`"
        }
        ErrorCode::MessageTooLarge | ErrorCode::RecordListTooLarge => {
            "the record exceeds the topic's max.message.bytes"
        }
        ErrorCode::OffsetOutOfRange => {
            "the offset is outside the partition's range; see `strom topic describe TOPIC`"
        }
        _ => return None,
    })
}
