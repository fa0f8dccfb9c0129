//! The state of one consumer group and the pure logic that moves it: members join, heartbeat,
//! leave and time out; the target assignment is recomputed whenever the group epoch moves; and
//! each member is reconciled towards its target one step at a time, so a partition is revoked
//! from its old owner before it is given to a new one.
//!
//! Nothing here does I/O. The runtime persists a [`Group`] (as JSON under
//! `groups/<g>/state`) after every change and answers the member only once that write is
//! durable, so a coordinator that takes the group over continues from the same epochs.

mod heartbeat;
mod member;
mod reconcile;
mod target;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strom_types::TopicId;

pub(crate) use heartbeat::validate as validate_heartbeat;
pub use heartbeat::{GroupLimits, HeartbeatInput, HeartbeatOutput, Leave, Subscription};
pub use member::{Member, MemberState};
pub use target::TopicsView;

use crate::assignor::TopicPartitions;

/// A consumer group as stored in etcd.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// The group epoch: bumped by every change to membership, subscriptions or the partitions
    /// of subscribed topics.
    pub epoch: i32,
    /// The group epoch the target assignment was computed for.
    pub assignment_epoch: i32,
    /// The assignor that computed the target.
    #[serde(default)]
    pub assignor: String,
    /// Partition counts of the subscribed topics the target was computed from.
    #[serde(default)]
    pub topics: BTreeMap<TopicId, u32>,
    /// Members by member id.
    #[serde(default)]
    pub members: BTreeMap<String, Member>,
    /// The target assignment by member id.
    #[serde(default)]
    pub target: BTreeMap<String, TopicPartitions>,
}

/// The externally visible state of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupPhase {
    /// No members.
    Empty,
    /// The target is behind the group epoch.
    Assigning,
    /// Some member has not reached its target.
    Reconciling,
    /// Every member owns exactly its target at the target epoch.
    Stable,
}

impl Group {
    /// The group's phase.
    pub fn phase(&self) -> GroupPhase {
        if self.members.is_empty() {
            GroupPhase::Empty
        } else if self.assignment_epoch < self.epoch {
            GroupPhase::Assigning
        } else if self.members.values().all(|m| {
            m.state == MemberState::Stable
                && m.epoch == self.assignment_epoch
                && self.target.get(&m.id).unwrap_or(&TopicPartitions::new()) == &m.assigned
        }) {
            GroupPhase::Stable
        } else {
            GroupPhase::Reconciling
        }
    }

    /// The member that holds `instance_id`, if any.
    pub fn static_member(&self, instance_id: &str) -> Option<&Member> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
    }

    /// Which member holds each partition now (assigned or still revoking).
    pub fn owners(&self) -> BTreeMap<(TopicId, u32), String> {
        let mut owners = BTreeMap::new();
        for member in self.members.values() {
            for (topic, partition) in
                partitions(&member.assigned).chain(partitions(&member.revoking))
            {
                owners.insert((topic, partition), member.id.clone());
            }
        }
        owners
    }

    /// Recomputes the target if the group epoch or the subscribed topics moved. Returns
    /// whether anything changed.
    pub fn refresh(&mut self, view: &TopicsView, limits: &GroupLimits) -> bool {
        target::refresh_target(self, view, &limits.default_assignor)
    }

    /// Removes a member, bumping the group epoch so the target is recomputed.
    pub fn remove_member(&mut self, member_id: &str) -> Option<Member> {
        let removed = self.members.remove(member_id)?;
        self.target.remove(member_id);
        self.epoch += 1;
        Some(removed)
    }
}

/// Every (topic, partition) pair of an assignment.
pub fn partitions(assignment: &TopicPartitions) -> impl Iterator<Item = (TopicId, u32)> + '_ {
    assignment
        .iter()
        .flat_map(|(topic, parts)| parts.iter().map(move |p| (*topic, *p)))
}

/// `a − b`.
pub fn difference(a: &TopicPartitions, b: &TopicPartitions) -> TopicPartitions {
    filter(a, |topic, p| !contains(b, topic, p))
}

/// `a ∩ b`.
pub fn intersection(a: &TopicPartitions, b: &TopicPartitions) -> TopicPartitions {
    filter(a, |topic, p| contains(b, topic, p))
}

/// `a ∪ b`.
pub fn union(a: &TopicPartitions, b: &TopicPartitions) -> TopicPartitions {
    let mut out = a.clone();
    for (topic, p) in partitions(b) {
        out.entry(topic).or_default().insert(p);
    }
    out
}

/// Whether `assignment` holds `(topic, p)`.
pub fn contains(assignment: &TopicPartitions, topic: TopicId, p: u32) -> bool {
    assignment
        .get(&topic)
        .is_some_and(|parts| parts.contains(&p))
}

/// The partitions of `a` for which `keep` holds, without empty topics.
pub fn filter(a: &TopicPartitions, keep: impl Fn(TopicId, u32) -> bool) -> TopicPartitions {
    let mut out = TopicPartitions::new();
    for (topic, p) in partitions(a) {
        if keep(topic, p) {
            out.entry(topic).or_default().insert(p);
        }
    }
    out
}
