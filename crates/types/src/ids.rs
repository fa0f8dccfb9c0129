//! Numeric identifiers: offsets, epochs, producer ids, timestamps.
//!
//! Each wraps the integer width used by the Kafka RecordBatch v2 wire format, so converting to and
//! from the wire is lossless. Constructors that take untrusted input check their range.

use std::fmt;

use crate::{Error, Result};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident($inner:ty), $what:literal, min = $min:expr) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default,
            serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name($inner);

        impl $name {
            /// Wraps a value already known to be valid (e.g. computed from valid values).
            pub const fn new(value: $inner) -> Self {
                Self(value)
            }

            /// Validates an untrusted raw value.
            pub fn try_new(value: $inner) -> Result<Self> {
                if value < $min {
                    return Err(Error::OutOfRange { what: $what, value: i64::from(value) });
                }
                Ok(Self(value))
            }

            /// The raw value, for the wire or for storage encodings.
            pub const fn get(self) -> $inner {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

id_type!(
    /// A record's position in a partition: dense, starting at 0.
    Offset(i64), "offset", min = 0
);
id_type!(
    /// The epoch of a partition's leadership; grows by one each time a new leader is elected.
    LeaderEpoch(i32), "leader epoch", min = 0
);
id_type!(
    /// A partition's index within its topic.
    PartitionId(i32), "partition", min = 0
);
id_type!(
    /// A broker's configured id.
    BrokerId(i32), "broker id", min = 0
);
id_type!(
    /// The id of an idempotent producer; `-1` on the wire means "none".
    ProducerId(i64), "producer id", min = -1
);
id_type!(
    /// The epoch of an idempotent producer id; `-1` on the wire means "none".
    ProducerEpoch(i16), "producer epoch", min = -1
);
id_type!(
    /// A per-partition producer sequence number; `-1` on the wire means "none".
    Sequence(i32), "sequence", min = -1
);
id_type!(
    /// Milliseconds since the Unix epoch; `-1` on the wire means "no timestamp".
    Timestamp(i64), "timestamp", min = -1
);

impl Offset {
    /// The first offset of every partition.
    pub const ZERO: Offset = Offset(0);

    /// The offset `n` records after this one.
    pub const fn plus(self, n: i64) -> Offset {
        Offset(self.0 + n)
    }

    /// The offset immediately after this one.
    pub const fn next(self) -> Offset {
        Offset(self.0 + 1)
    }
}

impl LeaderEpoch {
    /// The epoch that follows this one.
    pub const fn next(self) -> LeaderEpoch {
        LeaderEpoch(self.0 + 1)
    }
}

impl ProducerId {
    /// The wire value for "not an idempotent producer".
    pub const NONE: ProducerId = ProducerId(-1);
}

impl Timestamp {
    /// The wire value for "no timestamp".
    pub const NONE: Timestamp = Timestamp(-1);

    /// The timestamp `ms` milliseconds after this one.
    pub const fn plus_millis(self, ms: i64) -> Timestamp {
        Timestamp(self.0 + ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn try_new_rejects_values_below_the_minimum() {
        assert!(Offset::try_new(-1).is_err());
        assert_eq!(Offset::try_new(7).unwrap().get(), 7);
        assert!(ProducerId::try_new(-2).is_err());
        assert_eq!(ProducerId::try_new(-1).unwrap(), ProducerId::NONE);
    }

    #[test]
    fn arithmetic_helpers_move_forward() {
        assert_eq!(Offset::ZERO.plus(5).next(), Offset::new(6));
        assert_eq!(LeaderEpoch::new(3).next(), LeaderEpoch::new(4));
        assert_eq!(Timestamp::new(10).plus_millis(5), Timestamp::new(15));
    }
}
