//! The coordinator's error type: one enum whose variants carry the facts of each failure, and
//! the [`ErrorCode`] each one is reported with.

use std::net::SocketAddr;

use strom_meta::records::CoordinatorRecord;
use strom_proto::common::v1::{Error as PbError, ErrorCode, LeaderHint};

/// Everything a coordinator operation can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// A group id that breaks the naming rules.
    #[error("invalid group id {group:?}: {reason}")]
    InvalidGroupId {
        /// The rejected id.
        group: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A heartbeat without a member id.
    #[error("a member id is required: generate one and keep it for the consumer's lifetime")]
    MemberIdRequired,
    /// A session timeout outside the coordinator's bounds.
    #[error("session timeout {requested_ms} ms is outside the allowed {min_ms}..={max_ms} ms")]
    InvalidSessionTimeout {
        /// What the member asked for.
        requested_ms: i32,
        /// The smallest allowed.
        min_ms: i32,
        /// The largest allowed.
        max_ms: i32,
    },
    /// A malformed request.
    #[error("invalid request: {reason}")]
    InvalidRequest {
        /// What is wrong.
        reason: String,
    },
    /// The member is not (or no longer) in the group.
    #[error("member {member:?} is not in the group; rejoin with epoch 0")]
    UnknownMember {
        /// The member id.
        member: String,
    },
    /// The member's epoch is not one the coordinator accepts; it must rejoin.
    #[error("member {member:?} is fenced: epoch {epoch}, current {current}; rejoin with epoch 0")]
    FencedMemberEpoch {
        /// The member id.
        member: String,
        /// The epoch it sent.
        epoch: i32,
        /// Its current epoch.
        current: i32,
    },
    /// A commit carried an epoch older than the member's current one.
    #[error("member {member:?} committed at epoch {epoch}, its epoch is now {current}")]
    StaleMemberEpoch {
        /// The member id.
        member: String,
        /// The epoch it sent.
        epoch: i32,
        /// Its current epoch.
        current: i32,
    },
    /// No such assignor.
    #[error("unknown assignor {name:?}; known: uniform, range")]
    UnsupportedAssignor {
        /// The requested name.
        name: String,
    },
    /// A subscription regex that does not compile.
    #[error("invalid subscription regex {pattern:?}: {reason}")]
    InvalidRegex {
        /// The pattern.
        pattern: String,
        /// The compiler's complaint.
        reason: String,
    },
    /// The group is full.
    #[error("the group already has the maximum of {max} members")]
    GroupMaxSize {
        /// The limit.
        max: usize,
    },
    /// Another coordinator owns the group (or none does and this one could not claim it).
    #[error("this coordinator does not own group {group:?}")]
    NotCoordinator {
        /// The group.
        group: String,
        /// The owner, when known.
        owner: Option<CoordinatorRecord>,
    },
    /// The coordinator cannot serve groups right now (e.g. it is re-registering).
    #[error("coordinator not available: {reason}")]
    CoordinatorNotAvailable {
        /// Why.
        reason: String,
    },
    /// No such group.
    #[error("group {group:?} does not exist")]
    GroupNotFound {
        /// The group.
        group: String,
    },
    /// A timestamp to look offsets up by that no record can have.
    #[error("timestamp {timestamp} is negative; offsets are looked up by a time since the epoch")]
    InvalidTimestamp {
        /// The timestamp asked for, in milliseconds.
        timestamp: i64,
    },
    /// The operation needs a group without members.
    #[error("group {group:?} has {members} active member(s); stop them first")]
    NonEmptyGroup {
        /// The group.
        group: String,
        /// How many members it has.
        members: usize,
    },
    /// No such topic or partition.
    #[error("unknown topic or partition {topic}/{partition}")]
    UnknownTopicOrPartition {
        /// The topic name.
        topic: String,
        /// The partition, or -1 for the whole topic.
        partition: i32,
    },
    /// An offset outside the partition's range.
    #[error("offset {offset} for {topic}/{partition} is outside 0..={log_end}")]
    OffsetOutOfRange {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offending offset.
        offset: i64,
        /// The partition's log end (high watermark).
        log_end: i64,
    },
    /// A commit that would move the committed offset backward.
    #[error(
        "offset {offset} for {topic}/{partition} is behind the committed {committed}; only \
         reset-offsets moves a committed offset back"
    )]
    CommitBehind {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset sent.
        offset: i64,
        /// The committed offset.
        committed: i64,
    },
    /// Offset metadata over the limit.
    #[error("offset metadata of {size} bytes exceeds the limit of {max}")]
    MetadataTooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A partition's log end could not be learned from its leader.
    #[error("cannot read the log end of {topic}/{partition}: {reason}")]
    LogEndUnavailable {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// Why.
        reason: String,
    },
    /// The operation did not finish in time.
    #[error("timed out: {operation}")]
    Timeout {
        /// What timed out.
        operation: &'static str,
    },
    /// The listen address could not be bound.
    #[error("cannot bind {address}: {reason}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The OS error.
        reason: String,
    },
    /// The gRPC server failed.
    #[error("gRPC server failed: {reason}")]
    Serve {
        /// What failed.
        reason: String,
    },
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Meta(#[from] strom_meta::Error),
}

impl Error {
    /// The wire code this error is reported with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidGroupId { .. } => ErrorCode::InvalidGroupId,
            Error::MemberIdRequired => ErrorCode::MemberIdRequired,
            Error::InvalidSessionTimeout { .. } => ErrorCode::InvalidSessionTimeout,
            Error::InvalidRequest { .. } => ErrorCode::InvalidRequest,
            Error::UnknownMember { .. } => ErrorCode::UnknownMemberId,
            Error::FencedMemberEpoch { .. } => ErrorCode::FencedMemberEpoch,
            Error::StaleMemberEpoch { .. } => ErrorCode::StaleMemberEpoch,
            Error::UnsupportedAssignor { .. } => ErrorCode::UnsupportedAssignor,
            Error::InvalidRegex { .. } => ErrorCode::InvalidRegularExpression,
            Error::GroupMaxSize { .. } => ErrorCode::GroupMaxSizeReached,
            Error::NotCoordinator { .. } => ErrorCode::NotCoordinator,
            Error::CoordinatorNotAvailable { .. } => ErrorCode::CoordinatorNotAvailable,
            Error::GroupNotFound { .. } => ErrorCode::GroupIdNotFound,
            Error::NonEmptyGroup { .. } => ErrorCode::NonEmptyGroup,
            Error::InvalidTimestamp { .. } => ErrorCode::InvalidTimestamp,
            Error::UnknownTopicOrPartition { .. } => ErrorCode::UnknownTopicOrPartition,
            Error::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            Error::CommitBehind { .. } => ErrorCode::CommitOffsetBehind,
            Error::MetadataTooLarge { .. } => ErrorCode::OffsetMetadataTooLarge,
            Error::LogEndUnavailable { .. } => ErrorCode::LeaderNotAvailable,
            Error::Timeout { .. } => ErrorCode::RequestTimedOut,
            Error::Bind { .. } | Error::Serve { .. } => ErrorCode::UnknownServerError,
            Error::Meta(e) => meta_code(e),
        }
    }

    /// Whether the caller may repeat the operation; see [`ErrorCode::is_retriable`].
    pub fn is_retriable(&self) -> bool {
        self.code().is_retriable()
    }

    /// The wire form, with the owner's address on NOT_COORDINATOR when it is known.
    pub fn to_pb(&self) -> PbError {
        let error = PbError::new(self.code(), self.to_string());
        match self {
            Error::NotCoordinator {
                owner: Some(owner), ..
            } => error.with_leader(LeaderHint {
                leader_id: owner.id,
                leader_epoch: None,
                address: owner.address.clone(),
            }),
            _ => error,
        }
    }
}

/// A lost lease or ownership means another coordinator may own the group; an unreachable store
/// is transient; anything else (a malformed stored value) is a server fault.
fn meta_code(error: &strom_meta::Error) -> ErrorCode {
    match error {
        strom_meta::Error::NotHolder { .. } | strom_meta::Error::LeaseExpired { .. } => {
            ErrorCode::NotCoordinator
        }
        strom_meta::Error::Cancelled => ErrorCode::CoordinatorNotAvailable,
        e if e.is_retriable() => ErrorCode::MetadataStoreUnavailable,
        _ => ErrorCode::UnknownServerError,
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
