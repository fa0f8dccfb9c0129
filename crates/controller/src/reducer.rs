//! The reconcile reducer: from the observed [`ClusterView`] to the partition writes that bring
//! leadership and ISRs in line with which brokers are live.
//!
//! The rules follow KRaft's controller:
//!
//! - ISR members whose broker is not live leave the ISR, but the ISR never becomes empty: when
//!   no member is live it keeps its members, so the partition comes back with a replica that
//!   holds every acknowledged record, and the partition goes offline (no leader).
//! - A leader that is not live (or not in the ISR) is replaced by the first live ISR member in
//!   replica order; an offline partition gets that leader as soon as one is live again.
//! - With no live ISR member, a topic with `unclean.leader.election.enable` elects the first
//!   live replica and makes it the sole ISR member; otherwise the partition stays offline.
//! - With [`ReconcileOptions::restore_preferred_leaders`], leadership moves back to the
//!   preferred replica (the first) when it is live and in the ISR.
//! - A returning broker does not re-enter the ISR here: its leader proposes that with
//!   AlterPartition once it caught up.
//! - A draining broker ([`ClusterView::is_draining`]) gives up each leadership to the first
//!   other live ISR member in replica order, is not made leader again by preferred-leader
//!   restoration, and keeps a leadership only where no other live ISR member exists.
//!
//! Every leader change (to or from "no leader" included) bumps the leader epoch, every
//! change bumps the partition epoch, and a partition whose record is already right is not
//! touched, so reconciling the result again yields no actions.

use serde::{Deserialize, Serialize};
use strom_meta::records::PartitionRecord;
use strom_types::{BrokerId, PartitionId, TopicId};

use crate::topic_config;
use crate::view::ClusterView;

/// Tunables of [`reconcile`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReconcileOptions {
    /// Move leadership back to each partition's preferred replica when it is live and in
    /// sync (Kafka's `auto.leader.rebalance.enable`).
    pub restore_preferred_leaders: bool,
}

/// Why a partition record changes, most significant change first when there are several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateReason {
    /// A replica outside the ISR became leader because no ISR member was live and the topic
    /// allows unclean election; records only the old ISR had may be lost.
    UncleanLeaderElection,
    /// The leader was lost and no ISR member is live: the partition is offline.
    LeaderOffline,
    /// A live ISR member replaced a leader that is not live (or the partition was offline).
    LeaderElection,
    /// Leadership moved back to the preferred replica.
    PreferredLeaderElection,
    /// Leadership moved off a draining broker (a controlled shutdown).
    Drain,
    /// Only the ISR changed: members whose broker is not live were removed.
    IsrShrink,
}

/// A write the shell performs, each as one fenced transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Replace a partition record, if its key still has `expected_mod_revision`.
    UpdatePartition {
        /// The topic id.
        topic: TopicId,
        /// The partition index.
        partition: PartitionId,
        /// The mod revision the record was read at; the write is fenced on it.
        expected_mod_revision: i64,
        /// The new record.
        record: PartitionRecord,
        /// Why it changes.
        reason: UpdateReason,
    },
    /// Delete every partition record under `partitions/<topic>/`: its topic record is gone.
    DeleteOrphanPartitions {
        /// The id of the deleted topic.
        topic: TopicId,
    },
}

/// Computes the writes that bring `view` in line with the rules above, orphan deletions
/// first, then partition updates in (topic id, partition) order.
pub fn reconcile(view: &ClusterView, opts: &ReconcileOptions) -> Vec<Action> {
    let mut actions: Vec<Action> = view
        .orphan_topic_ids()
        .into_iter()
        .map(|topic| Action::DeleteOrphanPartitions { topic })
        .collect();
    for ((topic_id, partition), state) in &view.partitions {
        let Some(topic) = view.topics.get(topic_id) else {
            continue;
        };
        let unclean = topic_config::unclean_leader_election(&topic.configs);
        let is_live = |b: BrokerId| view.is_live(b);
        let preferred_draining = state
            .record
            .replicas
            .first()
            .is_some_and(|p| view.is_draining(*p));
        let opts = if preferred_draining {
            ReconcileOptions {
                restore_preferred_leaders: false,
            }
        } else {
            *opts
        };
        let reconciled = reconcile_partition(&state.record, is_live, unclean, &opts);
        let drained = move_off_draining(&state.record, reconciled.as_ref().map(|(r, _)| r), view);
        if let Some((record, reason)) = drained.or(reconciled) {
            tracing::debug!(
                topic = %topic.name,
                topic_id = %topic_id,
                partition = partition.get(),
                ?reason,
                leader = ?record.leader,
                leader_epoch = record.leader_epoch.get(),
                isr = ?record.isr,
                "partition needs an update"
            );
            actions.push(Action::UpdatePartition {
                topic: *topic_id,
                partition: *partition,
                expected_mod_revision: state.mod_revision,
                record,
                reason,
            });
        }
    }
    actions
}

/// The record one partition should have, or `None` when it already has it.
///
/// `is_live` says whether a broker has a live registration; `unclean` is the topic's
/// `unclean.leader.election.enable`.
pub fn reconcile_partition(
    current: &PartitionRecord,
    is_live: impl Fn(BrokerId) -> bool,
    unclean: bool,
    opts: &ReconcileOptions,
) -> Option<(PartitionRecord, UpdateReason)> {
    let live_isr: Vec<BrokerId> = current
        .isr
        .iter()
        .copied()
        .filter(|b| is_live(*b))
        .collect();
    let (isr, leader, elected) = if live_isr.is_empty() {
        // Keep the last ISR: one of its members holds every acknowledged record.
        let unclean_leader = current.replicas.iter().copied().find(|b| is_live(*b));
        match unclean_leader.filter(|_| unclean) {
            Some(leader) => (
                vec![leader],
                Some(leader),
                UpdateReason::UncleanLeaderElection,
            ),
            None => (current.isr.clone(), None, UpdateReason::LeaderOffline),
        }
    } else {
        let keeps = current.leader.filter(|l| live_isr.contains(l));
        let preferred = current
            .replicas
            .first()
            .copied()
            .filter(|p| opts.restore_preferred_leaders && live_isr.contains(p));
        let leader = match (preferred, keeps) {
            (Some(p), Some(l)) if p != l => (p, UpdateReason::PreferredLeaderElection),
            (_, Some(l)) => (l, UpdateReason::IsrShrink),
            (Some(p), None) => (p, UpdateReason::LeaderElection),
            (None, None) => (
                first_in_replica_order(current, &live_isr),
                UpdateReason::LeaderElection,
            ),
        };
        (live_isr, Some(leader.0), leader.1)
    };

    let leader_changed = leader != current.leader;
    if !leader_changed && isr == current.isr {
        return None;
    }
    let record = PartitionRecord {
        replicas: current.replicas.clone(),
        leader,
        leader_epoch: if leader_changed {
            current.leader_epoch.next()
        } else {
            current.leader_epoch
        },
        isr,
        partition_epoch: current.partition_epoch + 1,
    };
    let reason = if leader_changed || elected == UpdateReason::UncleanLeaderElection {
        elected
    } else {
        UpdateReason::IsrShrink
    };
    Some((record, reason))
}

/// When the leader `current` (or the `reconciled` record replacing it) names is draining and
/// another live, non-draining ISR member exists: the record with that member as leader, as
/// one change from `current`.
fn move_off_draining(
    current: &PartitionRecord,
    reconciled: Option<&PartitionRecord>,
    view: &ClusterView,
) -> Option<(PartitionRecord, UpdateReason)> {
    let base = reconciled.unwrap_or(current);
    let leader = base.leader?;
    if !view.is_draining(leader) {
        return None;
    }
    let successor = base.replicas.iter().copied().find(|b| {
        *b != leader && base.isr.contains(b) && view.is_live(*b) && !view.is_draining(*b)
    })?;
    let record = PartitionRecord {
        replicas: base.replicas.clone(),
        leader: Some(successor),
        leader_epoch: current.leader_epoch.next(),
        isr: base.isr.clone(),
        partition_epoch: current.partition_epoch + 1,
    };
    Some((record, UpdateReason::Drain))
}

/// The first of `live_isr` (which is not empty) in replica order; when no live ISR member is
/// a replica (a record that breaks the invariant), the first live ISR member.
fn first_in_replica_order(current: &PartitionRecord, live_isr: &[BrokerId]) -> BrokerId {
    current
        .replicas
        .iter()
        .copied()
        .find(|r| live_isr.contains(r))
        .unwrap_or(live_isr[0])
}

#[cfg(test)]
mod tests;
