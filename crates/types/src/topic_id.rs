//! Topic ids: a random 128-bit identity that outlives renames and tells a re-created topic apart
//! from the deleted one that had the same name.

use std::fmt;
use std::str::FromStr;

use crate::{Error, Result};

/// A topic's unique id, shown as a UUID in its canonical form
/// (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lowercase hex), as the gRPC contracts carry it.
///
/// A new id is drawn for every created topic, so state left behind by a deleted topic (local logs,
/// committed offsets) never mixes with a new topic of the same name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct TopicId(u128);

impl TryFrom<String> for TopicId {
    type Error = Error;

    fn try_from(id: String) -> Result<Self> {
        id.parse()
    }
}

impl From<TopicId> for String {
    fn from(id: TopicId) -> String {
        id.to_string()
    }
}

impl TopicId {
    /// Wraps a raw id.
    pub const fn new(raw: u128) -> Self {
        Self(raw)
    }

    /// The raw 128-bit value.
    pub const fn get(self) -> u128 {
        self.0
    }
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = format!("{:032x}", self.0);
        write!(
            f,
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }
}

impl FromStr for TopicId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let invalid = || Error::InvalidTopicId { id: s.to_owned() };
        let groups: Vec<&str> = s.split('-').collect();
        let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        let hex_only = groups
            .iter()
            .all(|g| g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        if lengths != [8, 4, 4, 4, 12] || !hex_only {
            return Err(invalid());
        }
        u128::from_str_radix(&groups.concat(), 16)
            .map(Self)
            .map_err(|_| Error::InvalidTopicId { id: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_text_form() {
        let id = TopicId::new(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
        let text = id.to_string();
        assert_eq!(text, "01234567-89ab-cdef-0011-223344556677");
        assert_eq!(text.parse::<TopicId>().unwrap(), id);
        assert_eq!(
            TopicId::new(1).to_string(),
            "00000000-0000-0000-0000-000000000001"
        );
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            "xyz",
            "0123456789ABCDEF0011223344556677",
            "+123456789abcdef0011223344556677",
        ] {
            assert!(bad.parse::<TopicId>().is_err(), "{bad}");
        }
    }
}
