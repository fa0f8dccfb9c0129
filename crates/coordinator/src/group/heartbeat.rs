//! One heartbeat: validate it, apply joins, leaves and subscription changes, recompute the
//! target when the group epoch moved, and reconcile the member.

use std::collections::BTreeSet;

use super::reconcile::reconcile;
use super::target::{TopicsView, compile_subscription, refresh_target};
use super::{Group, Member, MemberState, filter};
use crate::assignor::{TopicPartitions, assignor};
use crate::{Error, Result};

/// What a member subscribes to: topic names or a regular expression (never both).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    /// Topic names.
    pub topic_names: BTreeSet<String>,
    /// A regular expression matched against whole topic names.
    pub topic_regex: Option<String>,
}

/// How a member leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// Epoch -1: the member is removed and its partitions are reassigned.
    Dynamic,
    /// Epoch -2: a static member steps away; its partitions stay reserved for its instance id
    /// until it comes back or its session times out.
    Static,
}

/// The bounds and defaults a coordinator applies to every group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLimits {
    /// Session timeout used when a member asks for none.
    pub default_session_timeout_ms: i32,
    /// Smallest session timeout a member may ask for.
    pub min_session_timeout_ms: i32,
    /// Largest session timeout a member may ask for.
    pub max_session_timeout_ms: i32,
    /// Heartbeat interval of members that own their target.
    pub heartbeat_interval_ms: i32,
    /// Heartbeat interval of members that are still moving towards their target.
    pub reconcile_interval_ms: i32,
    /// The assignor of groups whose members name none.
    pub default_assignor: String,
    /// Most members in one group.
    pub max_group_size: usize,
}

/// A heartbeat, validated at the gRPC edge for shape (ids, strings) but not yet for meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatInput {
    /// The member id.
    pub member_id: String,
    /// The member epoch: 0 joins, -1 / -2 leave, otherwise the epoch the member is at.
    pub member_epoch: i32,
    /// Static instance id.
    pub instance_id: Option<String>,
    /// The member's rack.
    pub rack: Option<String>,
    /// Rebalance timeout; 0 keeps the previous one (or the session timeout on join).
    pub rebalance_timeout_ms: i32,
    /// Session timeout; 0 uses the default.
    pub session_timeout_ms: i32,
    /// The subscription; empty on a heartbeat keeps the previous one.
    pub subscription: Subscription,
    /// The assignor the member asks for.
    pub assignor: Option<String>,
    /// The partitions the member owns now.
    pub owned: TopicPartitions,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatOutput {
    /// The member's epoch after the heartbeat (-1 / -2 after a leave).
    pub member_epoch: i32,
    /// When to heartbeat next.
    pub heartbeat_interval_ms: i32,
    /// The partitions the member may own now, when it must act on them.
    pub assignment: Option<TopicPartitions>,
    /// Whether the group changed and must be persisted before answering.
    pub changed: bool,
    /// The member id a static member replaced, if it took over an instance id.
    pub replaced: Option<String>,
}

impl Group {
    /// Handles a heartbeat.
    pub fn heartbeat(
        &mut self,
        input: HeartbeatInput,
        view: &TopicsView,
        limits: &GroupLimits,
    ) -> Result<HeartbeatOutput> {
        validate(&input, limits)?;
        match input.member_epoch {
            -1 => return self.leave(&input, Leave::Dynamic, limits),
            -2 => return self.leave(&input, Leave::Static, limits),
            0 => {}
            e if e < 0 => {
                return Err(Error::InvalidRequest {
                    reason: format!("member epoch {e} is neither a join, a leave nor an epoch"),
                });
            }
            _ => self.check_epoch(&input)?,
        }
        let mut changed = false;
        let mut replaced = None;
        if input.member_epoch == 0 {
            let (join_changed, old) = self.join(&input, limits)?;
            changed |= join_changed;
            replaced = old;
        }
        changed |= self.update_member(&input, limits);
        changed |= refresh_target(self, view, &limits.default_assignor);
        changed |= reconcile(self, &input.member_id, &input.owned);
        let member = self
            .members
            .get(&input.member_id)
            .ok_or_else(|| Error::UnknownMember {
                member: input.member_id.clone(),
            })?;
        let settled = member.state == MemberState::Stable && member.epoch == self.assignment_epoch;
        let must_act = member.assigned != input.owned || member.epoch != input.member_epoch;
        Ok(HeartbeatOutput {
            member_epoch: member.epoch,
            heartbeat_interval_ms: if settled {
                limits.heartbeat_interval_ms
            } else {
                limits.reconcile_interval_ms
            },
            assignment: must_act.then(|| member.assigned.clone()),
            changed,
            replaced,
        })
    }

    /// Checks the epoch of a member that is already in the group.
    fn check_epoch(&self, input: &HeartbeatInput) -> Result<()> {
        let member = self
            .members
            .get(&input.member_id)
            .filter(|m| !m.departed)
            .ok_or_else(|| Error::UnknownMember {
                member: input.member_id.clone(),
            })?;
        if input.member_epoch == member.epoch {
            return Ok(());
        }
        // The member missed the response that moved it; it may continue as long as it owns
        // nothing it was not given.
        let owns_only_assigned = filter(&input.owned, |t, p| {
            !super::contains(&member.assigned, t, p) && !super::contains(&member.revoking, t, p)
        })
        .is_empty();
        if input.member_epoch == member.previous_epoch && owns_only_assigned {
            return Ok(());
        }
        Err(Error::FencedMemberEpoch {
            member: input.member_id.clone(),
            epoch: input.member_epoch,
            current: member.epoch,
        })
    }

    /// Adds a member, takes over a static member's place, or resets a member that rejoins.
    /// Returns whether the group changed and the member id replaced, if any.
    fn join(
        &mut self,
        input: &HeartbeatInput,
        limits: &GroupLimits,
    ) -> Result<(bool, Option<String>)> {
        if input.subscription.topic_names.is_empty() && input.subscription.topic_regex.is_none() {
            return Err(Error::InvalidRequest {
                reason: "a joining member must subscribe to topic names or a regex".to_owned(),
            });
        }
        let static_holder = input
            .instance_id
            .as_deref()
            .and_then(|i| self.static_member(i))
            .filter(|m| m.id != input.member_id)
            .map(|m| m.id.clone());
        if let Some(old_id) = static_holder {
            // A static member coming back (possibly after a crash, under a new member id):
            // it takes over the old member's epoch and partitions, with no rebalance.
            if let Some(mut member) = self.members.remove(&old_id) {
                member.id = input.member_id.clone();
                member.departed = false;
                if let Some(target) = self.target.remove(&old_id) {
                    self.target.insert(input.member_id.clone(), target);
                }
                self.members.insert(input.member_id.clone(), member);
            }
            return Ok((true, Some(old_id)));
        }
        if let Some(member) = self.members.get_mut(&input.member_id) {
            // The member lost its partitions (it was fenced, or restarted with the same id):
            // everything it had is free again, its target is unchanged.
            member.assigned.clear();
            member.revoking.clear();
            member.departed = false;
            member.state = MemberState::UnreleasedPartitions;
            return Ok((true, None));
        }
        if self.members.len() >= limits.max_group_size {
            return Err(Error::GroupMaxSize {
                max: limits.max_group_size,
            });
        }
        let session = effective_session_timeout(input, limits);
        self.members.insert(
            input.member_id.clone(),
            Member {
                id: input.member_id.clone(),
                instance_id: input.instance_id.clone(),
                rack: input.rack.clone(),
                epoch: 0,
                previous_epoch: 0,
                state: MemberState::Stable,
                topic_names: BTreeSet::new(),
                topic_regex: None,
                assignor: None,
                assigned: TopicPartitions::new(),
                revoking: TopicPartitions::new(),
                rebalance_timeout_ms: session,
                session_timeout_ms: session,
                departed: false,
            },
        );
        self.epoch += 1;
        Ok((true, None))
    }

    /// Applies the heartbeat's subscription and settings; a changed subscription or assignor
    /// bumps the group epoch. Returns whether the member changed.
    fn update_member(&mut self, input: &HeartbeatInput, limits: &GroupLimits) -> bool {
        let Some(member) = self.members.get_mut(&input.member_id) else {
            return false;
        };
        let before = member.clone();
        let sub = &input.subscription;
        if !sub.topic_names.is_empty() || sub.topic_regex.is_some() {
            member.topic_names = sub.topic_names.clone();
            member.topic_regex = sub.topic_regex.clone();
        }
        if input.assignor.is_some() {
            member.assignor = input.assignor.clone();
        }
        if input.rack.is_some() {
            member.rack = input.rack.clone();
        }
        if input.session_timeout_ms > 0 || input.member_epoch == 0 {
            member.session_timeout_ms = effective_session_timeout(input, limits);
        }
        if input.rebalance_timeout_ms > 0 {
            member.rebalance_timeout_ms = input.rebalance_timeout_ms;
        }
        let resubscribed = member.topic_names != before.topic_names
            || member.topic_regex != before.topic_regex
            || member.assignor != before.assignor;
        let changed = *member != before;
        if resubscribed && before.epoch > 0 {
            self.epoch += 1;
        }
        changed
    }

    /// Handles a leave.
    fn leave(
        &mut self,
        input: &HeartbeatInput,
        how: Leave,
        limits: &GroupLimits,
    ) -> Result<HeartbeatOutput> {
        let known = self
            .members
            .get(&input.member_id)
            .is_some_and(|m| !m.departed);
        if !known {
            return Err(Error::UnknownMember {
                member: input.member_id.clone(),
            });
        }
        let epoch = match how {
            Leave::Dynamic => {
                self.remove_member(&input.member_id);
                -1
            }
            Leave::Static => {
                let member = self
                    .members
                    .get_mut(&input.member_id)
                    .filter(|m| m.instance_id.is_some())
                    .ok_or_else(|| Error::InvalidRequest {
                        reason: "only a static member (with an instance id) leaves with epoch -2"
                            .to_owned(),
                    })?;
                member.departed = true;
                -2
            }
        };
        Ok(HeartbeatOutput {
            member_epoch: epoch,
            heartbeat_interval_ms: limits.heartbeat_interval_ms,
            assignment: None,
            changed: true,
            replaced: None,
        })
    }
}

/// The session timeout a heartbeat asks for, with the default filled in.
fn effective_session_timeout(input: &HeartbeatInput, limits: &GroupLimits) -> i32 {
    if input.session_timeout_ms == 0 {
        limits.default_session_timeout_ms
    } else {
        input.session_timeout_ms
    }
}

/// Checks what can be checked without the group.
pub(crate) fn validate(input: &HeartbeatInput, limits: &GroupLimits) -> Result<()> {
    if input.member_id.is_empty() {
        return Err(Error::MemberIdRequired);
    }
    let session = input.session_timeout_ms;
    if session != 0
        && !(limits.min_session_timeout_ms..=limits.max_session_timeout_ms).contains(&session)
    {
        return Err(Error::InvalidSessionTimeout {
            requested_ms: session,
            min_ms: limits.min_session_timeout_ms,
            max_ms: limits.max_session_timeout_ms,
        });
    }
    if input.rebalance_timeout_ms < 0 {
        return Err(Error::InvalidRequest {
            reason: format!(
                "rebalance timeout {} ms is negative",
                input.rebalance_timeout_ms
            ),
        });
    }
    let sub = &input.subscription;
    if !sub.topic_names.is_empty() && sub.topic_regex.is_some() {
        return Err(Error::InvalidRequest {
            reason: "subscribe by topic names or by regex, not both".to_owned(),
        });
    }
    if let Some(pattern) = &sub.topic_regex {
        compile_subscription(pattern).map_err(|e| Error::InvalidRegex {
            pattern: pattern.clone(),
            reason: e.to_string(),
        })?;
    }
    if let Some(name) = input.assignor.as_ref().filter(|n| assignor(n).is_none()) {
        return Err(Error::UnsupportedAssignor { name: name.clone() });
    }
    Ok(())
}
