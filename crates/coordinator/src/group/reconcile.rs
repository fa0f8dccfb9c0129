//! Moving one member towards its target assignment, one safe step at a time (KIP-848's
//! current-assignment builder).
//!
//! The invariant: a partition is in at most one member's `assigned ∪ revoking` at any time. A
//! member first loses the partitions its target no longer holds (they move to `revoking` and
//! its epoch stays), and only once it confirms their release does it move to the target epoch.
//! Partitions of its target still held by someone else are handed over on a later heartbeat,
//! after their holder releases them.

use super::{Group, MemberState, difference, filter, intersection, union};
use crate::assignor::TopicPartitions;

/// Advances member `member_id` given the partitions it reports owning. Returns whether the
/// member changed.
pub(super) fn reconcile(group: &mut Group, member_id: &str, owned: &TopicPartitions) -> bool {
    let Some(before) = group.members.get(member_id).cloned() else {
        return false;
    };
    let target_epoch = group.assignment_epoch;
    let target = group.target.get(member_id).cloned().unwrap_or_default();
    let mut member = before.clone();

    if member.state == MemberState::UnrevokedPartitions {
        if !intersection(owned, &member.revoking).is_empty() {
            // Still releasing; nothing moves until it confirms.
            return false;
        }
        member.revoking.clear();
    }
    let up_to_date = member.epoch == target_epoch && member.state == MemberState::Stable;
    if !up_to_date {
        let kept = intersection(&member.assigned, &target);
        let to_revoke = difference(&member.assigned, &target);
        if !to_revoke.is_empty() {
            member.assigned = kept;
            member.revoking = to_revoke;
            member.state = MemberState::UnrevokedPartitions;
        } else {
            if member.epoch != target_epoch {
                member.previous_epoch = member.epoch;
                member.epoch = target_epoch;
            }
            let held_elsewhere = held_by_others(group, member_id);
            let free = filter(&difference(&target, &kept), |topic, p| {
                !super::contains(&held_elsewhere, topic, p)
            });
            member.assigned = union(&kept, &free);
            member.state = if member.assigned == target {
                MemberState::Stable
            } else {
                MemberState::UnreleasedPartitions
            };
        }
    }
    let changed = member != before;
    group.members.insert(member_id.to_owned(), member);
    changed
}

/// Every partition assigned to or being revoked from a member other than `member_id`.
fn held_by_others(group: &Group, member_id: &str) -> TopicPartitions {
    let mut held = TopicPartitions::new();
    for member in group.members.values().filter(|m| m.id != member_id) {
        held = union(&held, &member.assigned);
        held = union(&held, &member.revoking);
    }
    held
}
