//! Helpers on the shared error model of `strom.common.v1`: retriability of each
//! [`ErrorCode`] and constructors for [`Error`] and [`LeaderHint`].

use std::fmt;

use crate::common::v1::{Error, ErrorCode, LeaderHint};

impl ErrorCode {
    /// Whether the same operation may succeed if repeated after a backoff, possibly after
    /// refreshing metadata, the coordinator location or the member epoch.
    ///
    /// A code that is not retriable needs a changed request or changed client state (rejoin the
    /// group, get a new producer id, fix a config). [`ErrorCode::Unspecified`], which also stands
    /// for codes this build does not know, is treated like
    /// [`ErrorCode::UnknownServerError`]: not retriable.
    ///
    /// Every code is listed on purpose, without a wildcard, so adding a code to the proto forces
    /// a decision here.
    #[must_use]
    pub const fn is_retriable(self) -> bool {
        match self {
            Self::UnknownTopicOrPartition
            | Self::LeaderNotAvailable
            | Self::NotLeaderOrFollower
            | Self::RequestTimedOut
            | Self::CoordinatorLoadInProgress
            | Self::CoordinatorNotAvailable
            | Self::NotCoordinator
            | Self::NotEnoughReplicas
            | Self::NotEnoughReplicasAfterAppend
            | Self::NotController
            | Self::KafkaStorageError
            | Self::FencedLeaderEpoch
            | Self::UnknownLeaderEpoch
            | Self::OffsetNotAvailable
            | Self::PreferredLeaderNotAvailable
            | Self::UnknownTopicId
            | Self::InconsistentTopicId
            | Self::StaleMemberEpoch
            | Self::MetadataStoreUnavailable => true,
            Self::Unspecified
            | Self::OffsetOutOfRange
            | Self::BrokerNotAvailable
            | Self::CorruptMessage
            | Self::InvalidFetchSize
            | Self::MessageTooLarge
            | Self::StaleControllerEpoch
            | Self::OffsetMetadataTooLarge
            | Self::InvalidTopicException
            | Self::RecordListTooLarge
            | Self::InvalidRequiredAcks
            | Self::IllegalGeneration
            | Self::InvalidGroupId
            | Self::UnknownMemberId
            | Self::InvalidSessionTimeout
            | Self::RebalanceInProgress
            | Self::InvalidCommitOffsetSize
            | Self::InvalidTimestamp
            | Self::TopicAlreadyExists
            | Self::InvalidPartitions
            | Self::InvalidReplicationFactor
            | Self::InvalidConfig
            | Self::InvalidRequest
            | Self::UnsupportedForMessageFormat
            | Self::PolicyViolation
            | Self::OutOfOrderSequenceNumber
            | Self::DuplicateSequenceNumber
            | Self::InvalidProducerEpoch
            | Self::UnknownProducerId
            | Self::NonEmptyGroup
            | Self::GroupIdNotFound
            | Self::UnsupportedCompressionType
            | Self::StaleBrokerEpoch
            | Self::MemberIdRequired
            | Self::GroupMaxSizeReached
            | Self::FencedInstanceId
            | Self::InvalidRecord
            | Self::InvalidUpdateVersion
            | Self::BrokerIdNotRegistered
            | Self::IneligibleReplica
            | Self::NewLeaderElected
            | Self::FencedMemberEpoch
            | Self::UnreleasedInstanceId
            | Self::UnsupportedAssignor
            | Self::InvalidRegularExpression
            | Self::CommitOffsetBehind
            | Self::UnknownServerError => false,
        }
    }
}

impl Error {
    /// An error with `code` and a human-readable `message`, without a redirect hint.
    #[must_use]
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            leader: None,
        }
    }

    /// Adds a hint naming where the request should go instead.
    #[must_use]
    pub fn with_leader(mut self, leader: LeaderHint) -> Self {
        self.leader = Some(leader);
        self
    }

    /// Whether the caller may repeat the operation; see [`ErrorCode::is_retriable`].
    ///
    /// A code this build does not know decodes as [`ErrorCode::Unspecified`] and is not
    /// retriable.
    #[must_use]
    pub fn is_retriable(&self) -> bool {
        self.code().is_retriable()
    }
}

impl From<ErrorCode> for Error {
    fn from(code: ErrorCode) -> Self {
        Self::new(code, String::new())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match ErrorCode::try_from(self.code) {
            Ok(code) => code.as_str_name(),
            Err(_) => "ERROR_CODE_UNKNOWN",
        };
        write!(f, "{name} ({})", self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl LeaderHint {
    /// A hint naming a partition's leader: its broker id, leader epoch and address.
    #[must_use]
    pub fn partition_leader(broker_id: i32, leader_epoch: i32, address: impl Into<String>) -> Self {
        Self {
            leader_id: broker_id,
            leader_epoch: Some(leader_epoch),
            address: address.into(),
        }
    }

    /// A hint naming the active controller or a group coordinator, which have no leader epoch.
    #[must_use]
    pub fn node(id: i32, address: impl Into<String>) -> Self {
        Self {
            leader_id: id,
            leader_epoch: None,
            address: address.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code with its wire number. The numbers are part of the contract; changing one
    /// breaks every client that already knows it.
    const WIRE_NUMBERS: &[(ErrorCode, i32)] = &[
        (ErrorCode::Unspecified, 0),
        (ErrorCode::OffsetOutOfRange, 1),
        (ErrorCode::CorruptMessage, 2),
        (ErrorCode::UnknownTopicOrPartition, 3),
        (ErrorCode::InvalidFetchSize, 4),
        (ErrorCode::LeaderNotAvailable, 5),
        (ErrorCode::NotLeaderOrFollower, 6),
        (ErrorCode::RequestTimedOut, 7),
        (ErrorCode::BrokerNotAvailable, 8),
        (ErrorCode::MessageTooLarge, 10),
        (ErrorCode::StaleControllerEpoch, 11),
        (ErrorCode::OffsetMetadataTooLarge, 12),
        (ErrorCode::CoordinatorLoadInProgress, 14),
        (ErrorCode::CoordinatorNotAvailable, 15),
        (ErrorCode::NotCoordinator, 16),
        (ErrorCode::InvalidTopicException, 17),
        (ErrorCode::RecordListTooLarge, 18),
        (ErrorCode::NotEnoughReplicas, 19),
        (ErrorCode::NotEnoughReplicasAfterAppend, 20),
        (ErrorCode::InvalidRequiredAcks, 21),
        (ErrorCode::IllegalGeneration, 22),
        (ErrorCode::InvalidGroupId, 24),
        (ErrorCode::UnknownMemberId, 25),
        (ErrorCode::InvalidSessionTimeout, 26),
        (ErrorCode::RebalanceInProgress, 27),
        (ErrorCode::InvalidCommitOffsetSize, 28),
        (ErrorCode::InvalidTimestamp, 32),
        (ErrorCode::TopicAlreadyExists, 36),
        (ErrorCode::InvalidPartitions, 37),
        (ErrorCode::InvalidReplicationFactor, 38),
        (ErrorCode::InvalidConfig, 40),
        (ErrorCode::NotController, 41),
        (ErrorCode::InvalidRequest, 42),
        (ErrorCode::UnsupportedForMessageFormat, 43),
        (ErrorCode::PolicyViolation, 44),
        (ErrorCode::OutOfOrderSequenceNumber, 45),
        (ErrorCode::DuplicateSequenceNumber, 46),
        (ErrorCode::InvalidProducerEpoch, 47),
        (ErrorCode::KafkaStorageError, 56),
        (ErrorCode::UnknownProducerId, 59),
        (ErrorCode::NonEmptyGroup, 68),
        (ErrorCode::GroupIdNotFound, 69),
        (ErrorCode::FencedLeaderEpoch, 74),
        (ErrorCode::UnknownLeaderEpoch, 75),
        (ErrorCode::UnsupportedCompressionType, 76),
        (ErrorCode::StaleBrokerEpoch, 77),
        (ErrorCode::OffsetNotAvailable, 78),
        (ErrorCode::MemberIdRequired, 79),
        (ErrorCode::PreferredLeaderNotAvailable, 80),
        (ErrorCode::GroupMaxSizeReached, 81),
        (ErrorCode::FencedInstanceId, 82),
        (ErrorCode::InvalidRecord, 87),
        (ErrorCode::InvalidUpdateVersion, 95),
        (ErrorCode::UnknownTopicId, 100),
        (ErrorCode::BrokerIdNotRegistered, 102),
        (ErrorCode::InconsistentTopicId, 103),
        (ErrorCode::IneligibleReplica, 107),
        (ErrorCode::NewLeaderElected, 108),
        (ErrorCode::FencedMemberEpoch, 110),
        (ErrorCode::UnreleasedInstanceId, 111),
        (ErrorCode::UnsupportedAssignor, 112),
        (ErrorCode::StaleMemberEpoch, 113),
        (ErrorCode::InvalidRegularExpression, 128),
        (ErrorCode::UnknownServerError, 1000),
        (ErrorCode::MetadataStoreUnavailable, 1001),
        (ErrorCode::CommitOffsetBehind, 1002),
    ];

    #[test]
    fn wire_numbers_are_pinned() {
        for &(code, number) in WIRE_NUMBERS {
            assert_eq!(i32::from(code), number, "{}", code.as_str_name());
        }
        // The table lists every code: no number decodes to a code missing from it.
        let decodable = (-1..=2000)
            .filter(|n| ErrorCode::try_from(*n).is_ok())
            .count();
        assert_eq!(decodable, WIRE_NUMBERS.len());
    }

    #[test]
    fn redirects_and_transient_failures_are_retriable() {
        assert!(ErrorCode::NotLeaderOrFollower.is_retriable());
        assert!(ErrorCode::NotController.is_retriable());
        assert!(ErrorCode::NotCoordinator.is_retriable());
        assert!(ErrorCode::NotEnoughReplicas.is_retriable());
        assert!(ErrorCode::MetadataStoreUnavailable.is_retriable());
    }

    #[test]
    fn fencing_and_bad_input_are_not_retriable() {
        assert!(!ErrorCode::Unspecified.is_retriable());
        assert!(!ErrorCode::UnknownServerError.is_retriable());
        assert!(!ErrorCode::FencedMemberEpoch.is_retriable());
        assert!(!ErrorCode::InvalidProducerEpoch.is_retriable());
        assert!(!ErrorCode::CorruptMessage.is_retriable());
        assert!(!ErrorCode::InvalidRecord.is_retriable());
    }

    #[test]
    fn unknown_codes_decode_as_unspecified() {
        let error = Error {
            code: 4242,
            ..Error::default()
        };
        assert_eq!(error.code(), ErrorCode::Unspecified);
        assert!(!error.is_retriable());
        assert_eq!(error.to_string(), "ERROR_CODE_UNKNOWN (4242)");
    }

    #[test]
    fn constructors_fill_the_message() {
        let hint = LeaderHint::partition_leader(2, 7, "broker-2:9092");
        let error = Error::new(ErrorCode::NotLeaderOrFollower, "leader moved").with_leader(hint);
        assert_eq!(error.code(), ErrorCode::NotLeaderOrFollower);
        assert_eq!(error.message, "leader moved");
        let leader = error.leader.as_ref().expect("with_leader sets the hint");
        assert_eq!(leader.leader_id, 2);
        assert_eq!(leader.leader_epoch, Some(7));
        assert_eq!(leader.address, "broker-2:9092");
        assert!(error.is_retriable());
        assert_eq!(
            error.to_string(),
            "ERROR_CODE_NOT_LEADER_OR_FOLLOWER (6): leader moved"
        );

        let controller = LeaderHint::node(1, "controller-1:9093");
        assert_eq!(controller.leader_epoch, None);
        assert_eq!(Error::from(ErrorCode::InvalidRequest).message, "");
    }
}
