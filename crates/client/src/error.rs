//! The client's one error type and its retry classification.

use std::sync::Arc;
use std::time::Duration;

use strom_proto::common::v1::{Error as PbError, ErrorCode};
use tonic::Code;

/// What went wrong in a client call, a produce or a fetch.
///
/// Cheap to clone: one failed batch hands the same error to every record in it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range or contradicts another one.
    #[error("invalid configuration: {setting} {reason}")]
    Config {
        /// The offending setting.
        setting: &'static str,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// A broker address could not be turned into an endpoint.
    #[error("invalid broker address {address:?}: {reason}")]
    InvalidAddress {
        /// The address as given.
        address: String,
        /// Why it is rejected.
        reason: String,
    },
    /// The gRPC call or stream failed below the Strom contract: connection refused or reset, a
    /// cancelled stream, an exceeded deadline, a message that did not decode.
    #[error("transport error: {0}")]
    Transport(#[from] tonic::Status),
    /// A broker answered with a Strom error code.
    #[error("broker error {}: {message}", code.as_str_name())]
    Broker {
        /// The code the broker sent; decides whether a retry can help.
        code: ErrorCode,
        /// The broker's human-readable detail.
        message: String,
    },
    /// A group coordinator answered with a Strom error code, e.g.
    /// `FENCED_MEMBER_EPOCH` for a commit from a member that lost its partitions, or
    /// `INVALID_GROUP_ID` when a group consumer cannot join at all.
    #[error("coordinator error {}: {message}", code.as_str_name())]
    Coordinator {
        /// The code the coordinator sent; decides whether a retry can help.
        code: ErrorCode,
        /// The coordinator's human-readable detail.
        message: String,
    },
    /// The coordinator did not commit the offset of one partition, e.g.
    /// `COMMIT_OFFSET_BEHIND` when the commit would move the group's offset backward.
    #[error("commit of {topic}-{partition} failed with {}: {message}", code.as_str_name())]
    Commit {
        /// The topic of the partition.
        topic: String,
        /// The partition index.
        partition: i32,
        /// The code the coordinator sent for this partition.
        code: ErrorCode,
        /// The coordinator's human-readable detail.
        message: String,
    },
    /// A broker's answer lacks something the contract promises (e.g. the result of a requested
    /// partition).
    #[error("malformed response: {reason}")]
    Protocol {
        /// What is missing or inconsistent.
        reason: &'static str,
    },
    /// An operation did not finish in time.
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        /// What timed out (e.g. `"delivery"`, `"metadata request"`).
        operation: &'static str,
        /// The limit that passed.
        after: Duration,
    },
    /// A record is larger than the producer can ever buffer or send.
    #[error("record of {size} bytes exceeds the limit of {max} bytes ({limit})")]
    RecordTooLarge {
        /// The record's estimated encoded size.
        size: usize,
        /// The limit it exceeds.
        max: usize,
        /// Which limit: `"buffer_memory"` or the largest batch.
        limit: &'static str,
    },
    /// A batch could not be built, or fetched bytes could not be decoded.
    #[error("record batch error: {0}")]
    Record(#[source] Arc<strom_record::Error>),
    /// The producer or consumer was closed (or dropped) before the operation finished.
    #[error("the client was closed")]
    Closed,
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<strom_record::Error> for Error {
    fn from(error: strom_record::Error) -> Self {
        Self::Record(Arc::new(error))
    }
}

impl From<PbError> for Error {
    fn from(error: PbError) -> Self {
        Self::Broker {
            code: error.code(),
            message: error.message,
        }
    }
}

impl Error {
    /// A broker error with `code` and `message`.
    pub(crate) fn broker(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Broker {
            code,
            message: message.into(),
        }
    }

    /// A coordinator error with `code` and `message`.
    pub(crate) fn coordinator(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Coordinator {
            code,
            message: message.into(),
        }
    }

    /// The error code, if a broker or coordinator answered with one.
    #[must_use]
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Broker { code, .. }
            | Self::Coordinator { code, .. }
            | Self::Commit { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether repeating the operation after a backoff (and a metadata refresh) may succeed.
    ///
    /// Transport failures and timeouts are retriable; broker codes follow
    /// [`ErrorCode::is_retriable`]. The producer additionally retries
    /// `OUT_OF_ORDER_SEQUENCE_NUMBER` when an earlier batch of the same partition failed, which
    /// this context-free check cannot know.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Transport(status) => transport_retriable(status.code()),
            Self::Broker { code, .. }
            | Self::Coordinator { code, .. }
            | Self::Commit { code, .. } => code.is_retriable(),
            Self::Timeout { .. } => true,
            Self::Config { .. }
            | Self::InvalidAddress { .. }
            | Self::Protocol { .. }
            | Self::RecordTooLarge { .. }
            | Self::Record(_)
            | Self::Closed => false,
        }
    }

    /// Whether a group coordinator said the member lost its membership
    /// (`FENCED_MEMBER_EPOCH` or `UNKNOWN_MEMBER_ID`): its partitions are gone and it rejoins.
    #[must_use]
    pub fn is_fenced(&self) -> bool {
        matches!(
            self.code(),
            Some(ErrorCode::FencedMemberEpoch | ErrorCode::UnknownMemberId)
        )
    }

    /// Whether the failure says nothing about which broker is right, so the caller should
    /// look the leader up again before retrying.
    pub(crate) fn needs_metadata_refresh(&self) -> bool {
        match self {
            Self::Transport(_) | Self::Timeout { .. } => true,
            Self::Broker { code, .. } => matches!(
                code,
                ErrorCode::NotLeaderOrFollower
                    | ErrorCode::LeaderNotAvailable
                    | ErrorCode::UnknownTopicOrPartition
                    | ErrorCode::FencedLeaderEpoch
                    | ErrorCode::UnknownLeaderEpoch
                    | ErrorCode::KafkaStorageError
                    | ErrorCode::UnknownTopicId
                    | ErrorCode::InconsistentTopicId
            ),
            _ => false,
        }
    }
}

/// gRPC status codes that describe a broken connection or call rather than a bad request.
fn transport_retriable(code: Code) -> bool {
    match code {
        Code::Unavailable
        | Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::Unknown
        | Code::Internal => true,
        Code::Ok
        | Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::ResourceExhausted
        | Code::FailedPrecondition
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::DataLoss
        | Code::Unauthenticated => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_moves_and_transient_broker_failures_are_retriable() {
        for code in [
            ErrorCode::NotLeaderOrFollower,
            ErrorCode::LeaderNotAvailable,
            ErrorCode::RequestTimedOut,
            ErrorCode::NotEnoughReplicas,
            ErrorCode::NotEnoughReplicasAfterAppend,
            ErrorCode::UnknownTopicOrPartition,
            ErrorCode::KafkaStorageError,
            ErrorCode::FencedLeaderEpoch,
            ErrorCode::UnknownLeaderEpoch,
        ] {
            assert!(Error::broker(code, "").is_retriable(), "{code:?}");
        }
    }

    #[test]
    fn bad_input_and_fencing_are_not_retriable() {
        for code in [
            ErrorCode::MessageTooLarge,
            ErrorCode::CorruptMessage,
            ErrorCode::InvalidRecord,
            ErrorCode::InvalidRequest,
            ErrorCode::InvalidProducerEpoch,
            ErrorCode::OutOfOrderSequenceNumber,
            ErrorCode::OffsetOutOfRange,
            ErrorCode::Unspecified,
        ] {
            assert!(!Error::broker(code, "").is_retriable(), "{code:?}");
        }
        assert!(!Error::Closed.is_retriable());
        assert!(
            !Error::Config {
                setting: "acks",
                reason: "x"
            }
            .is_retriable()
        );
    }

    #[test]
    fn broken_connections_are_retriable_but_rejected_calls_are_not() {
        assert!(Error::from(tonic::Status::unavailable("refused")).is_retriable());
        assert!(Error::from(tonic::Status::cancelled("reset")).is_retriable());
        assert!(!Error::from(tonic::Status::unimplemented("old broker")).is_retriable());
        assert!(!Error::from(tonic::Status::resource_exhausted("too big")).is_retriable());
        let timeout = Error::Timeout {
            operation: "metadata request",
            after: Duration::from_secs(1),
        };
        assert!(timeout.is_retriable() && timeout.needs_metadata_refresh());
    }

    #[test]
    fn coordinator_errors_classify_by_code() {
        let moved = Error::coordinator(ErrorCode::NotCoordinator, "elsewhere");
        assert!(moved.is_retriable() && !moved.is_fenced() && !moved.needs_metadata_refresh());
        let fenced = Error::coordinator(ErrorCode::FencedMemberEpoch, "old epoch");
        assert!(fenced.is_fenced() && !fenced.is_retriable());
        let behind = Error::Commit {
            topic: "t".into(),
            partition: 3,
            code: ErrorCode::CommitOffsetBehind,
            message: "backward".into(),
        };
        assert_eq!(behind.code(), Some(ErrorCode::CommitOffsetBehind));
        assert!(!behind.is_retriable());
        assert_eq!(
            behind.to_string(),
            "commit of t-3 failed with ERROR_CODE_COMMIT_OFFSET_BEHIND: backward"
        );
    }

    #[test]
    fn proto_errors_keep_their_code_and_message() {
        let error = Error::from(PbError::new(ErrorCode::NotLeaderOrFollower, "moved"));
        assert_eq!(error.code(), Some(ErrorCode::NotLeaderOrFollower));
        assert!(error.needs_metadata_refresh());
        assert_eq!(
            error.to_string(),
            "broker error ERROR_CODE_NOT_LEADER_OR_FOLLOWER: moved"
        );
    }
}
