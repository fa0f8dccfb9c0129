//! Consumer-group ids: the rule every service applies to them.

/// Longest group id, in bytes, as in Kafka.
pub const MAX_GROUP_ID_LENGTH: usize = 255;

/// Why `group` is not a valid group id, or `None` when it is: 1 to 255 bytes, no `/` (it
/// separates etcd key segments), no whitespace and no control characters.
pub fn group_id_problem(group: &str) -> Option<&'static str> {
    if group.is_empty() {
        Some("must not be empty")
    } else if group.len() > MAX_GROUP_ID_LENGTH {
        Some("must be at most 255 bytes")
    } else if group.contains('/') {
        Some("must not contain '/'")
    } else if group.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("must not contain whitespace or control characters")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_follow_the_rule() {
        for good in ["g", "orders-readers", "a.b_c:1", &"x".repeat(255)] {
            assert_eq!(group_id_problem(good), None, "{good}");
        }
        let long = "x".repeat(256);
        for bad in ["", "a/b", "has space", "a\tb", "nl\n", long.as_str()] {
            assert!(group_id_problem(bad).is_some(), "{bad:?}");
        }
    }
}
