use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use strom_meta::records::TopicRecord;
use strom_types::{LeaderEpoch, TopicName};

use super::*;
use crate::view::{LiveBroker, PartitionState};

fn b(id: i32) -> BrokerId {
    BrokerId::new(id)
}

fn ids(ids: &[i32]) -> Vec<BrokerId> {
    ids.iter().map(|i| b(*i)).collect()
}

fn record(replicas: &[i32], leader: Option<i32>, isr: &[i32]) -> PartitionRecord {
    PartitionRecord {
        replicas: ids(replicas),
        leader: leader.map(b),
        leader_epoch: LeaderEpoch::new(5),
        isr: ids(isr),
        partition_epoch: 10,
    }
}

const T: TopicId = TopicId::new(1);
const P0: PartitionId = PartitionId::new(0);

/// A view with `live` brokers and topic `T` holding one partition with `record`.
fn view(live: &[i32], unclean: bool, record: PartitionRecord) -> ClusterView {
    let mut view = ClusterView::default();
    set_live(&mut view, live);
    view.topics.insert(T, topic(T, unclean));
    view.partitions.insert(
        (T, P0),
        PartitionState {
            record,
            mod_revision: 100,
        },
    );
    view
}

fn topic(id: TopicId, unclean: bool) -> TopicRecord {
    let mut configs = BTreeMap::new();
    if unclean {
        configs.insert(
            topic_config::UNCLEAN_LEADER_ELECTION_ENABLE.to_owned(),
            "true".to_owned(),
        );
    }
    TopicRecord {
        id,
        name: TopicName::new(format!("t{}", id.get())).unwrap(),
        partitions: 1,
        replication_factor: 3,
        configs,
    }
}

fn set_live(view: &mut ClusterView, live: &[i32]) {
    view.brokers = live
        .iter()
        .map(|id| {
            let broker = LiveBroker {
                broker_epoch: 1000 + i64::from(*id),
                rack: None,
                address: format!("b{id}:9092"),
            };
            (b(*id), broker)
        })
        .collect();
}

/// Applies actions as the shell would after its fenced writes succeed.
fn apply(view: &mut ClusterView, actions: &[Action]) {
    for action in actions {
        match action {
            Action::UpdatePartition {
                topic,
                partition,
                expected_mod_revision,
                record,
                ..
            } => {
                let state = view.partitions.get_mut(&(*topic, *partition)).unwrap();
                assert_eq!(state.mod_revision, *expected_mod_revision);
                state.record = record.clone();
                state.mod_revision += 1;
            }
            Action::DeleteOrphanPartitions { topic } => {
                assert!(!view.topics.contains_key(topic));
                view.partitions.retain(|(t, _), _| t != topic);
            }
        }
    }
}

/// Reconciles once and returns the single partition update.
fn update(view: &ClusterView, opts: &ReconcileOptions) -> (PartitionRecord, UpdateReason) {
    let actions = reconcile(view, opts);
    match actions.as_slice() {
        [
            Action::UpdatePartition {
                record,
                reason,
                expected_mod_revision: 100,
                ..
            },
        ] => (record.clone(), *reason),
        other => panic!("expected one update, got {other:?}"),
    }
}

const DEFAULT: ReconcileOptions = ReconcileOptions {
    restore_preferred_leaders: false,
};
const RESTORE: ReconcileOptions = ReconcileOptions {
    restore_preferred_leaders: true,
};

#[test]
fn a_healthy_cluster_needs_nothing() {
    let view = view(&[1, 2, 3], false, record(&[1, 2, 3], Some(1), &[1, 2, 3]));
    assert!(reconcile(&view, &DEFAULT).is_empty());
    assert!(reconcile(&view, &RESTORE).is_empty());
}

#[test]
fn a_dead_leader_is_replaced_by_the_first_live_isr_member_in_replica_order() {
    let view = view(&[2, 3], false, record(&[1, 2, 3], Some(1), &[1, 3, 2]));
    let (record, reason) = update(&view, &DEFAULT);
    assert_eq!(reason, UpdateReason::LeaderElection);
    assert_eq!(record.leader, Some(b(2)));
    assert_eq!(record.isr, ids(&[3, 2]));
    assert_eq!(record.replicas, ids(&[1, 2, 3]));
    assert_eq!(record.leader_epoch, LeaderEpoch::new(6));
    assert_eq!(record.partition_epoch, 11);
}

#[test]
fn a_dead_follower_only_shrinks_the_isr() {
    let view = view(&[1, 2], false, record(&[1, 2, 3], Some(1), &[1, 2, 3]));
    let (record, reason) = update(&view, &DEFAULT);
    assert_eq!(reason, UpdateReason::IsrShrink);
    assert_eq!(record.leader, Some(b(1)));
    assert_eq!(record.isr, ids(&[1, 2]));
    assert_eq!(record.leader_epoch, LeaderEpoch::new(5));
    assert_eq!(record.partition_epoch, 11);
}

#[test]
fn losing_every_isr_member_takes_the_partition_offline_and_keeps_the_isr() {
    // 3 is live but out of sync: without unclean election it must not lead.
    let mut view = view(&[3], false, record(&[1, 2, 3], Some(1), &[1, 2]));
    let (offline, reason) = update(&view, &DEFAULT);
    assert_eq!(reason, UpdateReason::LeaderOffline);
    assert_eq!(offline.leader, None);
    assert_eq!(offline.isr, ids(&[1, 2]));
    assert_eq!(offline.leader_epoch, LeaderEpoch::new(6));
    let actions = reconcile(&view, &DEFAULT);
    apply(&mut view, &actions);
    assert!(reconcile(&view, &DEFAULT).is_empty());

    // An ISR member returns: it leads at once, and the ISR drops the one still missing.
    set_live(&mut view, &[2, 3]);
    let actions = reconcile(&view, &DEFAULT);
    apply(&mut view, &actions);
    let back = &view.partitions[&(T, P0)].record;
    assert_eq!(back.leader, Some(b(2)));
    assert_eq!(back.isr, ids(&[2]));
    assert_eq!(back.leader_epoch, LeaderEpoch::new(7));
    assert_eq!(back.partition_epoch, 12);
}

#[test]
fn unclean_election_picks_the_first_live_replica_when_enabled() {
    let view_ = view(&[3, 4], true, record(&[1, 4, 3], Some(1), &[1, 2]));
    let (record, reason) = update(&view_, &DEFAULT);
    assert_eq!(reason, UpdateReason::UncleanLeaderElection);
    assert_eq!(record.leader, Some(b(4)));
    assert_eq!(record.isr, ids(&[4]));
    assert_eq!(record.leader_epoch, LeaderEpoch::new(6));

    // With no replica live at all, even an unclean topic stays offline with its ISR.
    let none_live = view(&[9], true, self::record(&[1, 4, 3], Some(1), &[1, 2]));
    let (record, reason) = update(&none_live, &DEFAULT);
    assert_eq!(reason, UpdateReason::LeaderOffline);
    assert_eq!((record.leader, record.isr), (None, ids(&[1, 2])));
}

#[test]
fn an_offline_partition_of_an_unclean_topic_is_elected_when_a_replica_returns() {
    let view = view(&[3], true, record(&[1, 2, 3], None, &[1]));
    let (record, reason) = update(&view, &DEFAULT);
    assert_eq!(reason, UpdateReason::UncleanLeaderElection);
    assert_eq!((record.leader, record.isr), (Some(b(3)), ids(&[3])));
}

#[test]
fn a_returning_broker_does_not_rejoin_the_isr() {
    let view = view(&[1, 2, 3], false, record(&[1, 2, 3], Some(2), &[2]));
    assert!(reconcile(&view, &DEFAULT).is_empty());
}

#[test]
fn preferred_leaders_are_restored_only_when_asked_and_in_sync() {
    let in_sync = view(&[1, 2, 3], false, record(&[1, 2, 3], Some(2), &[2, 1]));
    assert!(reconcile(&in_sync, &DEFAULT).is_empty());
    let (record, reason) = update(&in_sync, &RESTORE);
    assert_eq!(reason, UpdateReason::PreferredLeaderElection);
    assert_eq!(record.leader, Some(b(1)));
    assert_eq!(record.isr, ids(&[2, 1]));
    assert_eq!(record.leader_epoch, LeaderEpoch::new(6));

    let out_of_sync = view(
        &[1, 2, 3],
        false,
        self::record(&[1, 2, 3], Some(2), &[2, 3]),
    );
    assert!(reconcile(&out_of_sync, &RESTORE).is_empty());
    let dead = view(&[2, 3], false, self::record(&[1, 2, 3], Some(2), &[2, 3]));
    assert!(reconcile(&dead, &RESTORE).is_empty());
}

/// Marks `id` draining in its current registration.
fn drain(view: &mut ClusterView, id: i32) {
    let epoch = view.broker_epoch(b(id)).unwrap();
    view.draining.insert(b(id), epoch);
}

#[test]
fn a_draining_leader_hands_over_to_the_next_live_isr_member() {
    let mut v = view(&[1, 2, 3], false, record(&[1, 2, 3], Some(1), &[1, 2, 3]));
    drain(&mut v, 1);
    let (next, reason) = update(&v, &DEFAULT);
    assert_eq!(reason, UpdateReason::Drain);
    assert_eq!(next.leader, Some(b(2)));
    assert_eq!(
        next.isr,
        ids(&[1, 2, 3]),
        "the drained broker stays in sync"
    );
    assert_eq!(next.leader_epoch, LeaderEpoch::new(6));
    assert_eq!(next.partition_epoch, 11);
    // Preferred-leader restoration does not hand it back while the drain lasts.
    let actions = reconcile(&v, &DEFAULT);
    apply(&mut v, &actions);
    assert!(reconcile(&v, &RESTORE).is_empty());
}

#[test]
fn a_drain_ends_with_the_registration_it_was_asked_for() {
    let mut v = view(&[1, 2, 3], false, record(&[1, 2, 3], Some(2), &[1, 2, 3]));
    drain(&mut v, 1);
    assert!(reconcile(&v, &RESTORE).is_empty());
    // Broker 1 registers again (a restart): the drain no longer applies.
    v.brokers.get_mut(&b(1)).unwrap().broker_epoch += 1;
    let (next, reason) = update(&v, &RESTORE);
    assert_eq!(reason, UpdateReason::PreferredLeaderElection);
    assert_eq!(next.leader, Some(b(1)));
}

#[test]
fn a_draining_sole_isr_member_keeps_its_leadership() {
    let mut v = view(&[1, 2], false, record(&[1, 2], Some(1), &[1]));
    drain(&mut v, 1);
    assert!(reconcile(&v, &DEFAULT).is_empty());
}

#[test]
fn an_election_skips_a_draining_broker_in_one_change() {
    // Leader 1 died; 2 is first in replica order but draining, so 3 leads at once.
    let mut v = view(&[2, 3], false, record(&[1, 2, 3], Some(1), &[1, 2, 3]));
    drain(&mut v, 2);
    let (next, reason) = update(&v, &DEFAULT);
    assert_eq!(reason, UpdateReason::Drain);
    assert_eq!(next.leader, Some(b(3)));
    assert_eq!(next.isr, ids(&[2, 3]));
    assert_eq!(next.leader_epoch, LeaderEpoch::new(6));
}

#[test]
fn orphaned_partitions_are_deleted_and_not_updated() {
    let mut view = view(&[1], false, record(&[1], Some(1), &[1]));
    let orphan = TopicId::new(0);
    for p in 0..3 {
        view.partitions.insert(
            (orphan, PartitionId::new(p)),
            PartitionState {
                record: record(&[7], Some(7), &[7]),
                mod_revision: 5,
            },
        );
    }
    // The live topic's partition also needs an update; deletions come first.
    set_live(&mut view, &[]);
    let actions = reconcile(&view, &DEFAULT);
    assert_eq!(actions.len(), 2);
    assert_eq!(actions[0], Action::DeleteOrphanPartitions { topic: orphan });
    assert!(matches!(
        actions[1],
        Action::UpdatePartition { topic: T, .. }
    ));
    apply(&mut view, &actions);
    assert!(reconcile(&view, &DEFAULT).is_empty());
}

const BROKERS: i32 = 6;

fn arb_record() -> impl Strategy<Value = PartitionRecord> {
    let replicas =
        proptest::sample::subsequence((0..BROKERS).collect::<Vec<_>>(), 1..=4).prop_shuffle();
    (
        replicas,
        any::<u8>(),
        any::<bool>(),
        0..BROKERS + 2,
        0i32..50,
        0i32..50,
    )
        .prop_map(
            |(replicas, isr_mask, reverse, leader, leader_epoch, partition_epoch)| {
                let mut isr: Vec<i32> = replicas
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| isr_mask & (1 << i) != 0)
                    .map(|(_, r)| *r)
                    .collect();
                if reverse {
                    isr.reverse();
                }
                // Mostly a leader from the ISR, sometimes none or (a broken record) another.
                let leader = match leader {
                    l if l == BROKERS => None,
                    l if l == BROKERS + 1 => isr.first().copied(),
                    l => Some(l),
                };
                PartitionRecord {
                    replicas: ids(&replicas),
                    leader: leader.map(b),
                    leader_epoch: LeaderEpoch::new(leader_epoch),
                    isr: ids(&isr),
                    partition_epoch,
                }
            },
        )
}

fn arb_view() -> impl Strategy<Value = ClusterView> {
    let partitions = proptest::collection::vec((0u128..4, arb_record()), 0..12);
    (any::<u8>(), [any::<bool>(); 3], partitions).prop_map(|(live, unclean, partitions)| {
        let mut view = ClusterView::default();
        let live: Vec<i32> = (0..BROKERS).filter(|i| live & (1 << i) != 0).collect();
        set_live(&mut view, &live);
        // Topic ids 0..3 exist; partitions of topic id 3 are orphans.
        for (id, unclean) in unclean.into_iter().enumerate() {
            let id = TopicId::new(id as u128);
            view.topics.insert(id, topic(id, unclean));
        }
        for (i, (topic, record)) in partitions.into_iter().enumerate() {
            let state = PartitionState {
                record,
                mod_revision: i as i64,
            };
            view.partitions
                .insert((TopicId::new(topic), PartitionId::new(i as i32)), state);
        }
        view
    })
}

/// What every update must satisfy, given the view it was computed from.
fn check_update(view: &ClusterView, action: &Action) {
    let Action::UpdatePartition {
        topic,
        partition,
        record,
        reason,
        ..
    } = action
    else {
        return;
    };
    let old = &view.partitions[&(*topic, *partition)].record;
    let unclean = topic_config::unclean_leader_election(&view.topics[topic].configs);
    let old_isr: BTreeSet<_> = old.isr.iter().collect();
    let any_isr_live = old.isr.iter().any(|b| view.is_live(*b));
    assert_eq!(record.replicas, old.replicas);
    assert_eq!(record.partition_epoch, old.partition_epoch + 1);
    let bump = i32::from(record.leader != old.leader);
    assert_eq!(record.leader_epoch.get(), old.leader_epoch.get() + bump);
    assert_ne!(record, old, "an update must change something");
    if !old.isr.is_empty() {
        assert!(!record.isr.is_empty());
    }
    if let Some(leader) = record.leader {
        assert!(view.is_live(leader) && record.isr.contains(&leader));
    }
    if *reason == UpdateReason::UncleanLeaderElection {
        assert!(unclean && !any_isr_live);
        assert_eq!(record.isr.len(), 1);
    } else {
        assert!(
            record.isr.iter().all(|m| old_isr.contains(m)),
            "ISR only shrinks"
        );
    }
    if record.leader.is_none() {
        assert!(!any_isr_live);
        assert!(!unclean || !old.replicas.iter().any(|r| view.is_live(*r)));
        assert_eq!(record.isr, old.isr, "an offline partition keeps its ISR");
    }
}

proptest! {
    #[test]
    fn reconcile_is_idempotent_and_keeps_the_invariants(
        view in arb_view(),
        restore in any::<bool>(),
    ) {
        let opts = ReconcileOptions { restore_preferred_leaders: restore };
        let actions = reconcile(&view, &opts);
        for action in &actions {
            check_update(&view, action);
        }
        let mut next = view.clone();
        apply(&mut next, &actions);
        prop_assert_eq!(reconcile(&next, &opts), vec![]);
        // Every partition of a known topic with a live ISR member now has a live leader.
        for ((topic, _), state) in &next.partitions {
            prop_assert!(next.topics.contains_key(topic));
            if state.record.isr.iter().any(|b| next.is_live(*b)) {
                prop_assert!(state.record.leader.is_some());
            }
            if restore && state.record.leader.is_some() {
                let preferred = state.record.replicas[0];
                if next.is_live(preferred) && state.record.isr.contains(&preferred) {
                    prop_assert_eq!(state.record.leader, Some(preferred));
                }
            }
        }
    }
}
