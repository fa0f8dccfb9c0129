//! Helpers shared by the assignor tests: spec builders, the contract check every assignor must
//! pass, and proptest strategies for random specs.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use strom_types::TopicId;

use super::super::{AssignmentSpec, GroupAssignment, MemberSpec, TopicPartitions};

/// A topic id from a small number.
pub(crate) fn topic(raw: u128) -> TopicId {
    TopicId::new(raw)
}

/// Partitions by topic from `(topic, partitions)` pairs.
pub(crate) fn parts(entries: &[(u128, &[u32])]) -> TopicPartitions {
    entries
        .iter()
        .map(|(t, ps)| (topic(*t), ps.iter().copied().collect()))
        .collect()
}

/// A member subscribed to `subscribed` and currently holding `current`.
pub(crate) fn member(subscribed: &[u128], current: TopicPartitions) -> MemberSpec {
    MemberSpec {
        subscribed: subscribed.iter().map(|&t| topic(t)).collect(),
        rack: None,
        current,
    }
}

/// A spec from `(topic, partition count)` pairs and `(member id, member)` pairs.
pub(crate) fn spec(topics: &[(u128, u32)], members: Vec<(&str, MemberSpec)>) -> AssignmentSpec {
    AssignmentSpec {
        members: members
            .into_iter()
            .map(|(id, m)| (id.to_owned(), m))
            .collect(),
        topics: topics.iter().map(|&(t, n)| (topic(t), n)).collect(),
    }
}

/// A spec where every member subscribes to `subscribed` and holds what `current` gives it.
pub(crate) fn homogeneous(
    topics: &[(u128, u32)],
    subscribed: &[u128],
    current: &GroupAssignment,
) -> AssignmentSpec {
    let members = current
        .iter()
        .map(|(id, held)| (id.as_str(), member(subscribed, held.clone())))
        .collect();
    spec(topics, members)
}

/// How many partitions each member holds.
pub(crate) fn loads(assignment: &GroupAssignment) -> BTreeMap<String, usize> {
    assignment
        .iter()
        .map(|(id, held)| (id.clone(), held.values().map(BTreeSet::len).sum()))
        .collect()
}

/// Every `(member, topic, partition)` of an assignment.
pub(crate) fn triples(assignment: &GroupAssignment) -> BTreeSet<(String, TopicId, u32)> {
    assignment
        .iter()
        .flat_map(|(id, held)| {
            held.iter()
                .flat_map(move |(&t, ps)| ps.iter().map(move |&p| (id.clone(), t, p)))
        })
        .collect()
}

/// How many `(member, partition)` pairs of `before` are gone from `after`: the partitions that
/// moved (or were dropped) between the two.
pub(crate) fn moved(before: &GroupAssignment, after: &GroupAssignment) -> usize {
    triples(before).difference(&triples(after)).count()
}

/// An empty current assignment for each of `ids`.
pub(crate) fn fresh(ids: &[&str]) -> GroupAssignment {
    ids.iter()
        .map(|id| ((*id).to_owned(), TopicPartitions::new()))
        .collect()
}

/// The partitions `id` holds.
pub(crate) fn triples_of(assignment: &GroupAssignment, id: &str) -> BTreeSet<(TopicId, u32)> {
    triples(assignment)
        .into_iter()
        .filter(|(owner, _, _)| owner == id)
        .map(|(_, t, p)| (t, p))
        .collect()
}

/// Every member's load, in member-id order.
pub(crate) fn load_values(assignment: &GroupAssignment) -> Vec<usize> {
    loads(assignment).into_values().collect()
}

/// Checks the assignor contract: an entry per member and no other, no empty per-topic sets,
/// and every partition of every subscribed, known topic held by exactly one subscriber.
pub(crate) fn check_contract(spec: &AssignmentSpec, assignment: &GroupAssignment) {
    let members: Vec<&String> = spec.members.keys().collect();
    let assigned: Vec<&String> = assignment.keys().collect();
    assert_eq!(members, assigned, "one entry per member");
    let mut seen = BTreeSet::new();
    for (id, held) in assignment {
        let subscribed = &spec.members[id].subscribed;
        for (t, partitions) in held {
            assert!(!partitions.is_empty(), "{id} has an empty set for {t}");
            assert!(subscribed.contains(t), "{id} got unsubscribed topic {t}");
            let count = spec.topics[t];
            for &p in partitions {
                assert!(p < count, "{id} got {t}/{p} of {count}");
                assert!(seen.insert((*t, p)), "{t}/{p} assigned twice");
            }
        }
    }
    let expected: BTreeSet<(TopicId, u32)> = spec
        .topics
        .iter()
        .filter(|(t, _)| spec.members.values().any(|m| m.subscribed.contains(*t)))
        .flat_map(|(&t, &n)| (0..n).map(move |p| (t, p)))
        .collect();
    assert_eq!(seen, expected, "every subscribed partition assigned");
}

/// Random specs: up to four topics (ids 1..=4) of up to 12 partitions, up to seven members
/// with random ids, subscriptions and `current` assignments full of stale entries (topic 5 is
/// unknown, partitions run past the counts, several members claim the same partitions). With
/// `homogeneous`, every member has the first member's subscription.
pub(crate) fn arb_spec(homogeneous: bool) -> impl Strategy<Value = AssignmentSpec> {
    let counts = prop::collection::vec(0u32..13, 1..5);
    let ids = prop::collection::btree_set("[a-f]{1,2}", 1..8);
    (counts, ids)
        .prop_flat_map(|(counts, ids)| {
            let topics = counts.len() as u128;
            let subscription = prop::collection::btree_set(1..=topics, 0..=counts.len());
            let current = prop::collection::btree_map(
                1..=topics + 1,
                prop::collection::btree_set(0u32..15, 1..6),
                0..4,
            );
            let members = prop::collection::vec((subscription, current), ids.len());
            (Just(counts), Just(ids), members)
        })
        .prop_map(move |(counts, ids, members)| {
            let first = members[0].0.clone();
            let members = ids
                .into_iter()
                .zip(members)
                .map(|(id, (subscribed, current))| {
                    let subscribed = if homogeneous {
                        first.clone()
                    } else {
                        subscribed
                    };
                    let current = current.into_iter().map(|(t, ps)| (topic(t), ps)).collect();
                    let subscribed = subscribed.into_iter().map(topic).collect();
                    (
                        id,
                        MemberSpec {
                            subscribed,
                            rack: None,
                            current,
                        },
                    )
                })
                .collect();
            let topics = (1..).zip(counts).map(|(t, n)| (topic(t), n)).collect();
            AssignmentSpec { members, topics }
        })
}
