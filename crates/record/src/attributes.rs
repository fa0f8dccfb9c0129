//! The batch `attributes` field: codec, timestamp type and flags.

use crate::{Compression, Result};

/// How the timestamps in a batch were assigned (attribute bit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// The producer set each record's timestamp when it created the record.
    #[default]
    CreateTime,
    /// The broker set the batch's max timestamp when it appended the batch; every record's
    /// timestamp reads as that value.
    LogAppendTime,
}

/// A batch's `attributes` field, kept as the raw wire value.
///
/// ```text
/// bit   15..7    6               5        4              3               2..0
///       unused   delete horizon  control  transactional  timestamp type  compression
/// ```
///
/// Bits this crate does not know are preserved, so reading and writing a batch never changes
/// them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Attributes(pub i16);

impl Attributes {
    /// Bit 3: set for [`TimestampType::LogAppendTime`].
    pub const TIMESTAMP_TYPE: i16 = 1 << 3;
    /// Bit 4: the batch is part of a transaction.
    pub const TRANSACTIONAL: i16 = 1 << 4;
    /// Bit 5: the batch holds a control record (transaction marker).
    pub const CONTROL: i16 = 1 << 5;
    /// Bit 6: `baseTimestamp` holds the compaction delete horizon, not the first timestamp.
    pub const DELETE_HORIZON: i16 = 1 << 6;

    /// The codec in bits 0-2; codes 5-7 are an error.
    pub fn compression(self) -> Result<Compression> {
        Compression::from_attributes(self.0)
    }

    /// The timestamp type in bit 3.
    pub const fn timestamp_type(self) -> TimestampType {
        if self.0 & Self::TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Whether bit 4 (transactional) is set.
    pub const fn is_transactional(self) -> bool {
        self.0 & Self::TRANSACTIONAL != 0
    }

    /// Whether bit 5 (control batch) is set.
    pub const fn is_control(self) -> bool {
        self.0 & Self::CONTROL != 0
    }

    /// Whether bit 6 (delete horizon) is set.
    pub const fn has_delete_horizon(self) -> bool {
        self.0 & Self::DELETE_HORIZON != 0
    }

    /// These attributes with the codec bits replaced.
    pub const fn with_compression(self, compression: Compression) -> Self {
        Self((self.0 & !Compression::MASK) | compression.to_attributes())
    }

    /// These attributes with the timestamp type bit replaced.
    pub const fn with_timestamp_type(self, timestamp_type: TimestampType) -> Self {
        let log_append = matches!(timestamp_type, TimestampType::LogAppendTime);
        self.with_flag(Self::TIMESTAMP_TYPE, log_append)
    }

    /// These attributes with the transactional bit set or cleared.
    pub const fn with_transactional(self, on: bool) -> Self {
        self.with_flag(Self::TRANSACTIONAL, on)
    }

    /// These attributes with the control bit set or cleared.
    pub const fn with_control(self, on: bool) -> Self {
        self.with_flag(Self::CONTROL, on)
    }

    const fn with_flag(self, bit: i16, on: bool) -> Self {
        if on {
            Self(self.0 | bit)
        } else {
            Self(self.0 & !bit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_where_kafka_puts_them() {
        let attrs = Attributes::default()
            .with_compression(Compression::Lz4)
            .with_timestamp_type(TimestampType::LogAppendTime)
            .with_transactional(true)
            .with_control(true);
        assert_eq!(attrs.0, 0b0011_1011);
        assert_eq!(attrs.compression().unwrap(), Compression::Lz4);
        assert_eq!(attrs.timestamp_type(), TimestampType::LogAppendTime);
        assert!(attrs.is_transactional() && attrs.is_control());
        assert!(!attrs.has_delete_horizon());
        assert!(Attributes(Attributes::DELETE_HORIZON).has_delete_horizon());
    }

    #[test]
    fn setters_clear_as_well_as_set() {
        let attrs = Attributes(-1)
            .with_compression(Compression::None)
            .with_timestamp_type(TimestampType::CreateTime)
            .with_transactional(false)
            .with_control(false);
        assert_eq!(attrs.compression().unwrap(), Compression::None);
        assert_eq!(attrs.timestamp_type(), TimestampType::CreateTime);
        assert!(!attrs.is_transactional() && !attrs.is_control());
        // Unknown high bits survive.
        assert!(attrs.has_delete_horizon());
        assert_eq!(attrs.0 as u16 & 0xff80, 0xff80);
    }

    #[test]
    fn unknown_codecs_are_reported() {
        for code in 5..=7 {
            assert!(Attributes(code).compression().is_err());
        }
    }
}
