//! One member of a group as the coordinator records it.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::assignor::TopicPartitions;

/// Where a member is in its reconciliation towards the target assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberState {
    /// The member owns its target at the target epoch.
    Stable,
    /// The member was told to release `revoking` and has not yet confirmed it; its epoch stays
    /// where it was until it does.
    UnrevokedPartitions,
    /// The member is at the target epoch but some of its target partitions are still held by
    /// other members; it gets them once they are released.
    UnreleasedPartitions,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// The member id the client chose.
    pub id: String,
    /// The static instance id, for static members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// The member's rack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rack: Option<String>,
    /// The member epoch.
    pub epoch: i32,
    /// The epoch before the last bump; a heartbeat at this epoch is still accepted when the
    /// member missed the response that moved it.
    pub previous_epoch: i32,
    /// Reconciliation state.
    pub state: MemberState,
    /// Subscribed topic names.
    #[serde(default)]
    pub topic_names: BTreeSet<String>,
    /// Subscription regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_regex: Option<String>,
    /// The assignor the member asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignor: Option<String>,
    /// The partitions the member may own now.
    #[serde(default)]
    pub assigned: TopicPartitions,
    /// The partitions the member was told to release and still owns.
    #[serde(default)]
    pub revoking: TopicPartitions,
    /// How long the member may take to release partitions.
    pub rebalance_timeout_ms: i32,
    /// How long the coordinator waits for a heartbeat before expelling the member.
    pub session_timeout_ms: i32,
    /// A static member that left with epoch -2: its partitions stay reserved for its instance
    /// id until it rejoins or its session times out.
    #[serde(default)]
    pub departed: bool,
}
