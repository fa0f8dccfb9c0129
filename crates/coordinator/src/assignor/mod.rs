//! Server-side assignors: pure functions from a group's members and subscribed topics to a
//! target assignment.
//!
//! Two are built in, chosen per group by name:
//! - [`UniformAssignor`] (`"uniform"`, the default): spreads partitions evenly, so member
//!   counts differ by at most one among members with the same subscription, and keeps every
//!   partition with its current owner where that stays within balance (sticky), so a
//!   membership change moves as few partitions as possible.
//! - [`RangeAssignor`] (`"range"`): per topic, gives each subscribed member a contiguous range
//!   of partitions, in member-id order, as Kafka's range assignor does; members subscribed to
//!   the same topics with equal partition counts get co-partitioned ranges.

mod range;
mod uniform;

use std::collections::{BTreeMap, BTreeSet};

pub use range::RangeAssignor;
use strom_types::TopicId;
pub use uniform::UniformAssignor;

/// Partitions grouped by topic.
pub type TopicPartitions = BTreeMap<TopicId, BTreeSet<u32>>;

/// What an assignor knows about one member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberSpec {
    /// The topics the member subscribes to (already resolved from names or a regex, and
    /// limited to topics that exist).
    pub subscribed: BTreeSet<TopicId>,
    /// The member's rack, when known.
    pub rack: Option<String>,
    /// The partitions the member is assigned in the current target (for stickiness).
    pub current: TopicPartitions,
}

/// The input of an assignment: members by id and the partition count of every topic any of
/// them subscribes to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignmentSpec {
    /// Members by member id.
    pub members: BTreeMap<String, MemberSpec>,
    /// Partition counts by topic.
    pub topics: BTreeMap<TopicId, u32>,
}

/// A target assignment: the partitions of every member, by member id. Every member of the spec
/// has an entry, possibly empty.
pub type GroupAssignment = BTreeMap<String, TopicPartitions>;

/// A server-side assignor.
///
/// Contract, for every spec: each partition of each topic some member subscribes to is given to
/// exactly one member subscribed to that topic; partitions of topics no member subscribes to,
/// and topics missing from `spec.topics`, are given to nobody; the result is deterministic.
pub trait Assignor: Send + Sync + std::fmt::Debug {
    /// The name members use to ask for this assignor.
    fn name(&self) -> &'static str;

    /// Computes the target assignment.
    fn assign(&self, spec: &AssignmentSpec) -> GroupAssignment;
}

/// The assignor used when neither the member nor the group names one.
pub const DEFAULT_ASSIGNOR: &str = "uniform";

/// The names of the built-in assignors.
pub const ASSIGNOR_NAMES: [&str; 2] = ["uniform", "range"];

/// Looks up a built-in assignor by name.
pub fn assignor(name: &str) -> Option<&'static dyn Assignor> {
    match name {
        "uniform" => Some(&UniformAssignor),
        "range" => Some(&RangeAssignor),
        _ => None,
    }
}
