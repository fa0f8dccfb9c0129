//! The range assignor: per topic, contiguous partition ranges in member-id order, as Kafka's
//! range assignor gives them.
//!
//! Members with the same subscription and topics with equal partition counts get matching
//! ranges (co-partitioning), which is the reason to pick it over the uniform assignor. It is not
//! sticky: the result depends only on the subscriptions and partition counts, never on `current`.

use std::collections::BTreeSet;
use std::ops::Range;

use super::{AssignmentSpec, Assignor, GroupAssignment};

/// Kafka-style range assignor (`"range"`): for a topic of `n` partitions subscribed to by `k`
/// members sorted by member id, the first `n % k` members get `ceil(n / k)` contiguous
/// partitions and the rest `floor(n / k)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn assign(&self, spec: &AssignmentSpec) -> GroupAssignment {
        // Every member gets an entry, even one that ends up with nothing.
        let mut assignment: GroupAssignment = spec
            .members
            .keys()
            .map(|id| (id.clone(), Default::default()))
            .collect();
        for (&topic, &partitions) in &spec.topics {
            // `spec.members` is a `BTreeMap`, so subscribers come out sorted by member id.
            let subscribers: Vec<&String> = spec
                .members
                .iter()
                .filter(|(_, member)| member.subscribed.contains(&topic))
                .map(|(id, _)| id)
                .collect();
            for (index, id) in subscribers.iter().enumerate() {
                let range = member_range(partitions, subscribers.len(), index);
                if range.is_empty() {
                    // No empty per-topic sets in an assignment.
                    continue;
                }
                let partitions: BTreeSet<u32> = range.collect();
                if let Some(member) = assignment.get_mut(id.as_str()) {
                    member.insert(topic, partitions);
                }
            }
        }
        assignment
    }
}

/// The partitions of a topic with `partitions` partitions that go to the `index`-th of
/// `members` subscribers (in member-id order).
fn member_range(partitions: u32, members: usize, index: usize) -> Range<u32> {
    // Counts beyond `u32::MAX` members get nothing anyway, so saturating is exact here.
    let members = u32::try_from(members).unwrap_or(u32::MAX).max(1);
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    let base = partitions / members;
    let extra = partitions % members;
    // The first `extra` members each take one more partition, shifting everyone after them.
    let start = index.saturating_mul(base).saturating_add(index.min(extra));
    let len = base + u32::from(index < extra);
    start..start.saturating_add(len).min(partitions)
}

#[cfg(test)]
#[path = "range_tests.rs"]
mod tests;
