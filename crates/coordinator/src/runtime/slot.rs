//! One owned group: its state, committed offsets and member deadlines, behind one lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use strom_meta::records::{self, OffsetRecord};
use strom_meta::{GroupOwner, Keys, LeaseId, MetaStore};
use tokio::sync::Mutex;
use tokio::time::{Duration, Instant};

use crate::Result;
use crate::group::{Group, MemberState};
use crate::offsets::{OffsetSlot, OffsetTable};

/// A group this coordinator owns.
#[derive(Debug)]
pub struct GroupSlot {
    name: String,
    owner: GroupOwner,
    lease: LeaseId,
    dropped: AtomicBool,
    /// The group's state; held across the etcd write of a change so changes apply in order.
    pub(super) runtime: Mutex<GroupRuntime>,
}

impl GroupSlot {
    pub(super) fn new(
        name: String,
        owner: GroupOwner,
        lease: LeaseId,
        runtime: GroupRuntime,
    ) -> Self {
        Self {
            name,
            owner,
            lease,
            dropped: AtomicBool::new(false),
            runtime: Mutex::new(runtime),
        }
    }

    /// The group id.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The ownership this slot holds.
    pub fn owner(&self) -> &GroupOwner {
        &self.owner
    }

    /// The lease it was claimed under.
    pub fn lease(&self) -> LeaseId {
        self.lease
    }

    /// Whether the coordinator lost the group.
    pub fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::Acquire)
    }

    pub(super) fn mark_dropped(&self) {
        self.dropped.store(true, Ordering::Release);
    }
}

/// A group's mutable state.
#[derive(Debug, Default)]
pub(super) struct GroupRuntime {
    /// The stored group.
    pub(super) group: Group,
    /// Whether `groups/<g>/state` exists.
    pub(super) stored: bool,
    /// Committed offsets.
    pub(super) offsets: OffsetTable,
    /// When each member's session ends unless it heartbeats.
    pub(super) sessions: HashMap<String, Instant>,
    /// When each member that is releasing partitions must have released them.
    pub(super) revocations: HashMap<String, Instant>,
}

impl GroupRuntime {
    /// Loads a group's state and offsets; every member starts a fresh session.
    pub(super) async fn load(store: &dyn MetaStore, keys: &Keys, group: &str) -> Result<Self> {
        let state_key = keys.group_state(group);
        let (group_state, stored) = match store.get(&state_key).await? {
            Some(kv) => (records::decode::<Group>(&state_key, &kv.value)?, true),
            None => (Group::default(), false),
        };
        let mut offsets = OffsetTable::new();
        for kv in store.list(&keys.group_offsets(group)).await?.kvs {
            let Some((_, topic, partition)) = keys.parse_offset(&kv.key) else {
                continue;
            };
            let record = records::decode::<OffsetRecord>(&kv.key, &kv.value)?;
            let partition = partition.get();
            offsets.insert(
                (topic.as_str().to_owned(), partition),
                OffsetSlot {
                    committed: Some(record),
                    pending: None,
                },
            );
        }
        let mut runtime = Self {
            group: group_state,
            stored,
            offsets,
            ..Self::default()
        };
        runtime.track(Instant::now());
        Ok(runtime)
    }

    /// Starts sessions for members without one, ends those of removed members, and tracks
    /// revocation deadlines.
    pub(super) fn track(&mut self, now: Instant) {
        let members = &self.group.members;
        self.sessions.retain(|id, _| members.contains_key(id));
        self.revocations.retain(|id, _| {
            members
                .get(id)
                .is_some_and(|m| m.state == MemberState::UnrevokedPartitions)
        });
        for member in members.values() {
            self.sessions
                .entry(member.id.clone())
                .or_insert_with(|| now + millis(member.session_timeout_ms));
            if member.state == MemberState::UnrevokedPartitions {
                self.revocations
                    .entry(member.id.clone())
                    .or_insert_with(|| now + millis(member.rebalance_timeout_ms));
            }
        }
    }

    /// Restarts a member's session.
    pub(super) fn touch(&mut self, member_id: &str, now: Instant) {
        if let Some(member) = self.group.members.get(member_id) {
            self.sessions.insert(
                member_id.to_owned(),
                now + millis(member.session_timeout_ms),
            );
        }
    }

    /// Members whose session or revocation deadline passed.
    pub(super) fn expired(&self, now: Instant) -> Vec<String> {
        let mut out: Vec<String> = self
            .sessions
            .iter()
            .chain(self.revocations.iter())
            .filter(|(_, deadline)| **deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Pushes every deadline back by `by` (after this process itself was stalled, so members
    /// are not blamed for the coordinator's pause).
    pub(super) fn extend(&mut self, by: Duration) {
        for deadline in self
            .sessions
            .values_mut()
            .chain(self.revocations.values_mut())
        {
            *deadline += by;
        }
    }
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
