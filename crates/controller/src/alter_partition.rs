//! Validation of one AlterPartition proposal: a partition leader asks the controller to store
//! a new ISR (see `strom.controller.v1.AlterPartitionRequest`).
//!
//! The checks run in this order, each with its wire code:
//!
//! 1. the proposer's broker epoch is its live registration's (else `STALE_BROKER_EPOCH`);
//! 2. the proposal's leader epoch is the partition's (older: `FENCED_LEADER_EPOCH`, newer:
//!    `UNKNOWN_LEADER_EPOCH`) and the proposer is the leader (else `FENCED_LEADER_EPOCH`);
//! 3. the proposal's partition epoch is the partition's (else `INVALID_UPDATE_VERSION`);
//! 4. the new ISR is non-empty, has no duplicates and only replicas (else `INVALID_REQUEST`);
//! 5. every member is live under the broker epoch the proposal names for it (else
//!    `INELIGIBLE_REPLICA`), so a replica that restarted after catching up cannot join.
//!
//! A proposal that names the leader changes only the ISR and the partition epoch. One that
//! leaves the leader out is a resignation (a leader whose own copy of the log is damaged gives
//! up leadership): the first member in replica order becomes the leader, under the next leader
//! epoch.

use std::collections::{BTreeMap, BTreeSet};

use strom_meta::records::PartitionRecord;
use strom_types::{BrokerId, LeaderEpoch, PartitionId, TopicId};

use crate::view::LiveBroker;
use crate::{Error, Result};

/// One member of a proposed ISR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsrMember {
    /// The replica's broker id.
    pub broker: BrokerId,
    /// The epoch of the registration under which it caught up.
    pub broker_epoch: i64,
}

/// A leader's proposed ISR for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterPartitionProposal {
    /// The topic id.
    pub topic: TopicId,
    /// The partition index.
    pub partition: PartitionId,
    /// The proposer's leader epoch.
    pub leader_epoch: LeaderEpoch,
    /// The partition epoch the proposal is based on.
    pub partition_epoch: i32,
    /// The proposed ISR, leader included.
    pub new_isr: Vec<IsrMember>,
}

/// Checks `proposal`, sent by `proposer` under broker epoch `proposer_epoch`, against the
/// partition's `current` record and the `live` brokers; returns the record to store.
///
/// A proposal equal to the current ISR (in any order) returns `current` unchanged, with no
/// epoch bump: the caller compares the result with `current` and skips the write when they
/// are equal. Otherwise the new ISR is stored in replica order and the partition epoch grows
/// by one.
pub fn alter_partition(
    current: &PartitionRecord,
    proposer: BrokerId,
    proposer_epoch: i64,
    live: &BTreeMap<BrokerId, LiveBroker>,
    proposal: &AlterPartitionProposal,
) -> Result<PartitionRecord> {
    let (topic, partition) = (proposal.topic, proposal.partition);
    let registered = live.get(&proposer).map(|b| b.broker_epoch);
    if registered != Some(proposer_epoch) {
        return Err(Error::StaleBrokerEpoch {
            broker: proposer,
            sent: proposer_epoch,
            current: registered,
        });
    }
    check_leadership(current, proposer, proposal)?;
    if proposal.partition_epoch != current.partition_epoch {
        return Err(Error::InvalidUpdateVersion {
            topic,
            partition,
            sent: proposal.partition_epoch,
            current: current.partition_epoch,
        });
    }
    let members = check_shape(current, proposal)?;
    for member in &proposal.new_isr {
        let registered = live.get(&member.broker).map(|b| b.broker_epoch);
        if registered != Some(member.broker_epoch) {
            return Err(Error::IneligibleReplica {
                topic,
                partition,
                broker: member.broker,
                sent: member.broker_epoch,
                current: registered,
            });
        }
    }
    if members == current.isr.iter().copied().collect::<BTreeSet<_>>() {
        return Ok(current.clone());
    }
    let isr: Vec<BrokerId> = current
        .replicas
        .iter()
        .copied()
        .filter(|r| members.contains(r))
        .collect();
    let (leader, leader_epoch) = if members.contains(&proposer) {
        (current.leader, current.leader_epoch)
    } else {
        // A resignation: the ISR is non-empty, so it has a first member.
        (isr.first().copied(), current.leader_epoch.next())
    };
    Ok(PartitionRecord {
        replicas: current.replicas.clone(),
        leader,
        leader_epoch,
        isr,
        partition_epoch: current.partition_epoch + 1,
    })
}

/// Step 2: the proposal comes from the current leader at the current leader epoch.
fn check_leadership(
    current: &PartitionRecord,
    proposer: BrokerId,
    proposal: &AlterPartitionProposal,
) -> Result<()> {
    let (topic, partition) = (proposal.topic, proposal.partition);
    let (sent, stored) = (proposal.leader_epoch, current.leader_epoch);
    if sent < stored {
        return Err(Error::FencedLeaderEpoch {
            topic,
            partition,
            sent,
            current: stored,
        });
    }
    if sent > stored {
        return Err(Error::UnknownLeaderEpoch {
            topic,
            partition,
            sent,
            current: stored,
        });
    }
    if current.leader != Some(proposer) {
        return Err(Error::NotLeader {
            topic,
            partition,
            broker: proposer,
            leader: current.leader,
        });
    }
    Ok(())
}

/// Step 4: the new ISR is a non-empty set of replicas; returns it as a set.
fn check_shape(
    current: &PartitionRecord,
    proposal: &AlterPartitionProposal,
) -> Result<BTreeSet<BrokerId>> {
    let invalid = |reason| Error::InvalidIsr {
        topic: proposal.topic,
        partition: proposal.partition,
        reason,
    };
    if proposal.new_isr.is_empty() {
        return Err(invalid("the ISR must not be empty"));
    }
    let mut members = BTreeSet::new();
    for member in &proposal.new_isr {
        if !members.insert(member.broker) {
            return Err(invalid("the ISR names a broker twice"));
        }
        if !current.replicas.contains(&member.broker) {
            return Err(invalid("the ISR names a broker that is not a replica"));
        }
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    use strom_proto::common::v1::ErrorCode;

    use super::*;

    const T: TopicId = TopicId::new(3);
    const P: PartitionId = PartitionId::new(1);

    fn b(id: i32) -> BrokerId {
        BrokerId::new(id)
    }

    /// Replicas 1, 2, 3; leader 1 at epoch 4; ISR [1, 2]; partition epoch 9.
    fn current() -> PartitionRecord {
        PartitionRecord {
            replicas: vec![b(1), b(2), b(3)],
            leader: Some(b(1)),
            leader_epoch: LeaderEpoch::new(4),
            isr: vec![b(1), b(2)],
            partition_epoch: 9,
        }
    }

    /// Brokers 1, 2, 3 live with epoch `100 + id`.
    fn live() -> BTreeMap<BrokerId, LiveBroker> {
        (1..=3)
            .map(|id| {
                let broker = LiveBroker {
                    broker_epoch: 100 + i64::from(id),
                    rack: None,
                    address: String::new(),
                };
                (b(id), broker)
            })
            .collect()
    }

    fn member(id: i32) -> IsrMember {
        IsrMember {
            broker: b(id),
            broker_epoch: 100 + i64::from(id),
        }
    }

    fn proposal(members: &[i32]) -> AlterPartitionProposal {
        AlterPartitionProposal {
            topic: T,
            partition: P,
            leader_epoch: LeaderEpoch::new(4),
            partition_epoch: 9,
            new_isr: members.iter().map(|id| member(*id)).collect(),
        }
    }

    fn propose(proposal: &AlterPartitionProposal) -> Result<PartitionRecord> {
        alter_partition(&current(), b(1), 101, &live(), proposal)
    }

    fn code(result: Result<PartitionRecord>) -> ErrorCode {
        result.unwrap_err().code()
    }

    #[test]
    fn expanding_the_isr_bumps_only_the_partition_epoch() {
        let record = propose(&proposal(&[3, 1, 2])).unwrap();
        assert_eq!(
            record.isr,
            vec![b(1), b(2), b(3)],
            "stored in replica order"
        );
        assert_eq!(record.partition_epoch, 10);
        assert_eq!(record.leader, Some(b(1)));
        assert_eq!(record.leader_epoch, LeaderEpoch::new(4));
        assert_eq!(record.replicas, current().replicas);
    }

    #[test]
    fn shrinking_the_isr_to_the_leader_is_allowed() {
        let record = propose(&proposal(&[1])).unwrap();
        assert_eq!((record.isr, record.partition_epoch), (vec![b(1)], 10));
    }

    #[test]
    fn an_unchanged_isr_is_not_a_change() {
        assert_eq!(propose(&proposal(&[2, 1])).unwrap(), current());
    }

    #[test]
    fn a_stale_or_unregistered_proposer_is_rejected() {
        let stale = alter_partition(&current(), b(1), 99, &live(), &proposal(&[1]));
        assert!(matches!(
            stale,
            Err(Error::StaleBrokerEpoch {
                sent: 99,
                current: Some(101),
                ..
            })
        ));
        assert_eq!(code(stale), ErrorCode::StaleBrokerEpoch);
        let mut gone = live();
        gone.remove(&b(1));
        let unregistered = alter_partition(&current(), b(1), 101, &gone, &proposal(&[1]));
        assert!(matches!(
            unregistered,
            Err(Error::StaleBrokerEpoch { current: None, .. })
        ));
    }

    #[test]
    fn old_leader_epochs_and_non_leaders_are_fenced() {
        let mut old = proposal(&[1, 2]);
        old.leader_epoch = LeaderEpoch::new(3);
        assert_eq!(code(propose(&old)), ErrorCode::FencedLeaderEpoch);

        let not_leader = alter_partition(&current(), b(2), 102, &live(), &proposal(&[1, 2]));
        assert!(matches!(
            not_leader,
            Err(Error::NotLeader {
                leader: Some(_),
                ..
            })
        ));
        assert_eq!(code(not_leader), ErrorCode::FencedLeaderEpoch);

        let mut offline = current();
        offline.leader = None;
        let result = alter_partition(&offline, b(1), 101, &live(), &proposal(&[1, 2]));
        assert_eq!(code(result), ErrorCode::FencedLeaderEpoch);
    }

    #[test]
    fn newer_leader_epochs_are_unknown() {
        let mut newer = proposal(&[1, 2]);
        newer.leader_epoch = LeaderEpoch::new(5);
        assert_eq!(code(propose(&newer)), ErrorCode::UnknownLeaderEpoch);
    }

    #[test]
    fn a_partition_epoch_mismatch_is_an_invalid_update_version() {
        for epoch in [8, 10] {
            let mut stale = proposal(&[1, 2, 3]);
            stale.partition_epoch = epoch;
            let result = propose(&stale);
            assert!(matches!(
                result,
                Err(Error::InvalidUpdateVersion { current: 9, .. })
            ));
            assert_eq!(code(result), ErrorCode::InvalidUpdateVersion);
        }
    }

    #[test]
    fn malformed_isrs_are_invalid_requests() {
        let cases: [(&[i32], &str); 3] = [
            (&[], "empty"),
            (&[1, 2, 2], "twice"),
            (&[1, 4], "not a replica"),
        ];
        for (members, why) in cases {
            let mut p = proposal(members);
            // Broker 4 is live, so only the replica check can reject it.
            let mut brokers = live();
            brokers.insert(
                b(4),
                LiveBroker {
                    broker_epoch: 104,
                    rack: None,
                    address: String::new(),
                },
            );
            p.new_isr
                .iter_mut()
                .for_each(|m| m.broker_epoch = 100 + i64::from(m.broker.get()));
            let result = alter_partition(&current(), b(1), 101, &brokers, &p);
            match &result {
                Err(Error::InvalidIsr { reason, .. }) => assert!(reason.contains(why), "{reason}"),
                other => panic!("{members:?}: {other:?}"),
            }
            assert_eq!(code(result), ErrorCode::InvalidRequest);
        }
    }

    #[test]
    fn a_leader_leaving_itself_out_resigns_to_the_first_member() {
        let record = propose(&proposal(&[3, 2])).unwrap();
        assert_eq!(record.leader, Some(b(2)));
        assert_eq!(record.leader_epoch, LeaderEpoch::new(5));
        assert_eq!(record.isr, vec![b(2), b(3)]);
        assert_eq!(record.partition_epoch, 10);
        // The successor must be live under the epoch named for it, like any member.
        let mut brokers = live();
        brokers.remove(&b(2));
        let dead = alter_partition(&current(), b(1), 101, &brokers, &proposal(&[2]));
        assert_eq!(code(dead), ErrorCode::IneligibleReplica);
    }

    #[test]
    fn dead_or_restarted_members_are_ineligible() {
        let mut restarted = proposal(&[1, 2, 3]);
        restarted.new_isr[2].broker_epoch = 50;
        let result = propose(&restarted);
        assert!(matches!(
            result,
            Err(Error::IneligibleReplica {
                sent: 50,
                current: Some(103),
                ..
            })
        ));
        assert_eq!(code(result), ErrorCode::IneligibleReplica);

        let mut brokers = live();
        brokers.remove(&b(3));
        let dead = alter_partition(&current(), b(1), 101, &brokers, &proposal(&[1, 2, 3]));
        assert!(matches!(
            dead,
            Err(Error::IneligibleReplica { current: None, .. })
        ));
    }

    #[test]
    fn checks_run_in_order() {
        // Stale broker epoch wins over everything else.
        let mut bad = proposal(&[]);
        bad.leader_epoch = LeaderEpoch::new(1);
        bad.partition_epoch = 1;
        let result = alter_partition(&current(), b(1), 1, &live(), &bad);
        assert_eq!(code(result), ErrorCode::StaleBrokerEpoch);
        // Then the leader epoch, then the partition epoch, then the ISR's shape.
        assert_eq!(code(propose(&bad)), ErrorCode::FencedLeaderEpoch);
        bad.leader_epoch = LeaderEpoch::new(4);
        assert_eq!(code(propose(&bad)), ErrorCode::InvalidUpdateVersion);
        bad.partition_epoch = 9;
        assert_eq!(code(propose(&bad)), ErrorCode::InvalidRequest);
    }
}
