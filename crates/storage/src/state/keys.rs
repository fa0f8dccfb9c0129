//! Key encodings for the state store.
//!
//! Every key starts with its partition's prefix: the partition directory name followed by a 0
//! byte. Topic names cannot contain 0, so no prefix is a prefix of another partition's prefix.
//! Numbers follow as big-endian with the sign bit flipped, so byte order equals numeric order.

use strom_types::TopicPartition;

/// The key prefix shared by all of one partition's entries.
pub(crate) fn partition_prefix(tp: &TopicPartition) -> Vec<u8> {
    let mut prefix = tp.dir_name().into_bytes();
    prefix.push(0);
    prefix
}

/// The smallest key greater than every key starting with `prefix`.
///
/// Trailing 0xFF bytes are dropped before incrementing (a prefix may end in an encoded number).
/// Every prefix here starts with a partition name, so it is never all 0xFF.
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while end.last() == Some(&0xFF) {
        end.pop();
    }
    match end.last_mut() {
        Some(last) => *last += 1,
        // Only an all-0xFF prefix gets here: no finite key bounds it, so use the longest one.
        None => end = vec![0xFF; prefix.len() + 9],
    }
    end
}

/// Encodes an `i64` so that bytewise order equals numeric order.
pub(crate) fn ordered_i64(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

/// Decodes [`ordered_i64`].
pub(crate) fn decode_ordered_i64(bytes: &[u8]) -> Option<i64> {
    let raw: [u8; 8] = bytes.try_into().ok()?;
    Some((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
}

/// `prefix` followed by an ordered `i64`.
pub(crate) fn key_i64(prefix: &[u8], value: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&ordered_i64(value));
    key
}

/// The `i64` that follows `prefix` in `key`.
pub(crate) fn suffix_i64(prefix: &[u8], key: &[u8]) -> Option<i64> {
    key.strip_prefix(prefix).and_then(decode_ordered_i64)
}

/// Reads a big-endian `i64` at `at`.
pub(crate) fn read_i64(bytes: &[u8], at: usize) -> Option<i64> {
    Some(i64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// Reads a big-endian `u64` at `at`.
pub(crate) fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use strom_types::{PartitionId, TopicName};

    proptest! {
        #[test]
        fn ordered_encoding_preserves_order(a: i64, b: i64) {
            prop_assert_eq!(a.cmp(&b), ordered_i64(a).cmp(&ordered_i64(b)));
            prop_assert_eq!(decode_ordered_i64(&ordered_i64(a)), Some(a));
        }
    }

    #[test]
    fn partition_prefixes_do_not_nest() {
        let p = |t: &str, n| {
            partition_prefix(&TopicPartition::new(
                TopicName::new(t).unwrap(),
                PartitionId::new(n),
            ))
        };
        let (a, b) = (p("t", 1), p("t", 10));
        assert!(!b.starts_with(&a));
        assert!(prefix_end(&a) > a);
        assert!(key_i64(&a, i64::MAX) < prefix_end(&a));
    }

    #[test]
    fn prefix_end_handles_trailing_ff() {
        // A segment base of 255 encodes with a final 0xFF byte.
        let prefix = key_i64(b"t-0\x00", 255);
        assert_eq!(prefix.last(), Some(&0xFF));
        let end = prefix_end(&prefix);
        assert!(end > prefix);
        assert!(key_i64(&prefix, i64::MAX) < end);
        assert!(key_i64(b"t-0\x00", 256) >= end);
    }
}
