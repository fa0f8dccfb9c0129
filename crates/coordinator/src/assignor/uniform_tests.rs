//! Tests of the uniform assignor: worked examples of balance and stickiness, and proptests of
//! the contract, balance, determinism and minimal movement.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use strom_types::TopicId;

use super::super::{AssignmentSpec, Assignor, GroupAssignment, MemberSpec, TopicPartitions};
use super::UniformAssignor;
use super::test_support::{
    arb_spec, check_contract, fresh, homogeneous, load_values, loads, member, moved, parts, spec,
    triples_of,
};

fn assign(spec: &AssignmentSpec) -> GroupAssignment {
    let assignment = UniformAssignor.assign(spec);
    check_contract(spec, &assignment);
    assignment
}

#[test]
fn name_is_uniform() {
    assert_eq!(UniformAssignor.name(), "uniform");
}

#[test]
fn empty_spec_gives_empty_assignment() {
    assert!(assign(&AssignmentSpec::default()).is_empty());
}

#[test]
fn members_without_subscriptions_get_empty_entries() {
    let s = spec(
        &[(1, 4)],
        vec![
            ("a", member(&[], parts(&[(1, &[0, 1])]))),
            ("b", member(&[1], parts(&[]))),
        ],
    );
    let out = assign(&s);
    assert!(out["a"].is_empty());
    assert_eq!(out["b"], parts(&[(1, &[0, 1, 2, 3])]));
}

#[test]
fn fresh_assignment_spreads_every_topic_round_robin() {
    let s = homogeneous(&[(1, 4), (2, 4)], &[1, 2], &fresh(&["a", "b", "c"]));
    let out = assign(&s);
    assert_eq!(out["a"], parts(&[(1, &[0, 3]), (2, &[2])]));
    assert_eq!(out["b"], parts(&[(1, &[1]), (2, &[0, 3])]));
    assert_eq!(out["c"], parts(&[(1, &[2]), (2, &[1])]));
}

#[test]
fn more_members_than_partitions_leaves_some_empty() {
    let out = assign(&homogeneous(&[(1, 2)], &[1], &fresh(&["a", "b", "c"])));
    assert_eq!(load_values(&out), [1, 1, 0]);
}

#[test]
fn unknown_and_empty_topics_are_assigned_to_nobody() {
    // Topic 2 is subscribed but missing from `topics`; topic 3 has no partitions.
    let s = homogeneous(&[(1, 2), (3, 0)], &[1, 2, 3], &fresh(&["a", "b"]));
    let out = assign(&s);
    assert_eq!(out["a"], parts(&[(1, &[0])]));
    assert_eq!(out["b"], parts(&[(1, &[1])]));
}

#[test]
fn adding_a_member_moves_only_two_partitions_from_different_members() {
    let before = assign(&homogeneous(
        &[(1, 12)],
        &[1],
        &fresh(&["a", "b", "c", "d"]),
    ));
    assert_eq!(load_values(&before), [3, 3, 3, 3]);
    let mut current = before.clone();
    current.insert("e".to_owned(), TopicPartitions::new());
    let after = assign(&homogeneous(&[(1, 12)], &[1], &current));
    assert_eq!(load_values(&after), [2, 2, 3, 3, 2]);
    assert_eq!(moved(&before, &after), 2);
    let losers: BTreeSet<&String> = before
        .keys()
        .filter(|id| triples_of(&before, id) != triples_of(&after, id))
        .collect();
    assert_eq!(
        losers.len(),
        2,
        "each moved partition comes from a different member"
    );
    for id in before.keys() {
        assert!(triples_of(&after, id).is_subset(&triples_of(&before, id)));
    }
}

#[test]
fn removing_a_member_moves_only_its_partitions() {
    let before = assign(&homogeneous(
        &[(1, 10), (2, 5)],
        &[1, 2],
        &fresh(&["a", "b", "c", "d"]),
    ));
    let mut current = before.clone();
    let gone = current.remove("b").unwrap_or_default();
    let after = assign(&homogeneous(&[(1, 10), (2, 5)], &[1, 2], &current));
    for id in current.keys() {
        assert!(triples_of(&after, id).is_superset(&triples_of(&before, id)));
    }
    assert_eq!(
        moved(&before, &after),
        gone.values().map(BTreeSet::len).sum::<usize>()
    );
    let counts = load_values(&after);
    assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1);
}

#[test]
fn stale_current_entries_are_ignored() {
    let s = spec(
        &[(1, 3), (2, 2)],
        vec![
            // Topic 2 is no longer subscribed, topic 9 is gone, partition 7 is out of range.
            (
                "a",
                member(&[1], parts(&[(1, &[0, 7]), (2, &[0]), (9, &[0])])),
            ),
            ("b", member(&[1, 2], parts(&[]))),
        ],
    );
    let out = assign(&s);
    // Topic 2 (only "b" can take it) is placed first, so "b" gets none of topic 1.
    assert_eq!(out["a"], parts(&[(1, &[0, 1, 2])]));
    assert_eq!(out["b"], parts(&[(2, &[0, 1])]));
}

#[test]
fn a_partition_claimed_twice_stays_with_the_first_member() {
    let s = spec(
        &[(1, 4)],
        vec![
            ("a", member(&[1], parts(&[(1, &[0, 1])]))),
            ("b", member(&[1], parts(&[(1, &[1, 2])]))),
        ],
    );
    let out = assign(&s);
    assert_eq!(out["a"], parts(&[(1, &[0, 1])]));
    assert_eq!(out["b"], parts(&[(1, &[2, 3])]));
}

#[test]
fn an_overloaded_member_gives_up_only_its_excess() {
    let s = homogeneous(
        &[(1, 6)],
        &[1],
        &BTreeMap::from([
            ("a".to_owned(), parts(&[(1, &[0, 1, 2, 3, 4, 5])])),
            ("b".to_owned(), parts(&[])),
            ("c".to_owned(), parts(&[])),
        ]),
    );
    let out = assign(&s);
    assert_eq!(out["a"], parts(&[(1, &[0, 1])]));
    assert_eq!(load_values(&out), [2, 2, 2]);
}

#[test]
fn heterogeneous_subscriptions_balance_across_shared_topics() {
    // Topic 1 only "a" and "b" can take; topic 2 only "b" and "c".
    let s = spec(
        &[(1, 4), (2, 2)],
        vec![
            ("a", member(&[1], parts(&[]))),
            ("b", member(&[1, 2], parts(&[]))),
            ("c", member(&[2], parts(&[]))),
        ],
    );
    let out = assign(&s);
    assert_eq!(load_values(&out), [2, 2, 2]);
    assert_eq!(out["c"], parts(&[(2, &[0, 1])]));
}

#[test]
fn heterogeneous_members_keep_partitions_within_balance() {
    // "a" holds all of topic 1; "c" joins subscribed to both topics, "b" only to topic 2.
    let s = spec(
        &[(1, 4), (2, 2)],
        vec![
            ("a", member(&[1], parts(&[(1, &[0, 1, 2, 3])]))),
            ("b", member(&[2], parts(&[(2, &[0, 1])]))),
            ("c", member(&[1, 2], parts(&[]))),
        ],
    );
    let out = assign(&s);
    assert_eq!(out["a"], parts(&[(1, &[0, 1])]));
    assert_eq!(out["b"], parts(&[(2, &[0, 1])]));
    assert_eq!(out["c"], parts(&[(1, &[2, 3])]));
}

/// Whether no member can hand a partition, directly or along a chain of members each handing
/// one on to a subscriber of one of its topics, to a member at least two partitions lighter:
/// the balance the assignor promises for any subscriptions.
fn optimally_balanced(spec: &AssignmentSpec, out: &GroupAssignment) -> bool {
    let loads = loads(out);
    out.keys().all(|donor| {
        let mut reached = BTreeSet::from([donor]);
        let mut frontier = vec![donor];
        while let Some(giver) = frontier.pop() {
            for (id, m) in &spec.members {
                let takes = out[giver].keys().any(|t| m.subscribed.contains(t));
                if takes && reached.insert(id) {
                    frontier.push(id);
                }
            }
        }
        reached.iter().all(|id| loads[*id] + 2 > loads[donor])
    })
}

/// Each member's valid claims in `current` (subscribed, known, in range), every partition
/// credited to its first claimant by member id only, as the assignor settles double claims.
fn valid_claims(spec: &AssignmentSpec) -> Vec<BTreeSet<(TopicId, u32)>> {
    let mut claimed = BTreeSet::new();
    spec.members
        .values()
        .map(|m| {
            m.current
                .iter()
                .filter(|(t, _)| m.subscribed.contains(*t))
                .flat_map(|(t, ps)| ps.iter().map(move |&p| (*t, p)))
                .filter(|(t, p)| spec.topics.get(t).is_some_and(|&n| *p < n))
                .filter(|claim| claimed.insert(*claim))
                .collect()
        })
        .collect()
}

/// The most valid claims a homogeneous group can keep: each member up to the floor share,
/// plus one more for as many members as hold more than that and there are extra partitions.
fn max_kept_homogeneous(spec: &AssignmentSpec, total: usize) -> usize {
    let (quota, extra) = (total / spec.members.len(), total % spec.members.len());
    let held: Vec<usize> = valid_claims(spec).iter().map(BTreeSet::len).collect();
    let base: usize = held.iter().map(|&h| h.min(quota)).sum();
    base + extra.min(held.iter().filter(|&&h| h > quota).count())
}

/// How many valid claims the assignment kept with their claimant.
fn kept(spec: &AssignmentSpec, out: &GroupAssignment) -> usize {
    spec.members
        .keys()
        .zip(valid_claims(spec))
        .map(|(id, claims)| claims.intersection(&triples_of(out, id)).count())
        .sum()
}

proptest! {
    #[test]
    fn contract_holds_and_result_is_optimally_balanced(s in arb_spec(false)) {
        let out = assign(&s);
        prop_assert!(optimally_balanced(&s, &out));
        // Implied by the above, but the headline promise: same subscription, loads within one.
        let loads = loads(&out);
        for (a, b) in s.members.iter().flat_map(|a| s.members.iter().map(move |b| (a, b))) {
            if a.1.subscribed == b.1.subscribed {
                prop_assert!(loads[a.0] <= loads[b.0] + 1);
            }
        }
        prop_assert_eq!(&out, &UniformAssignor.assign(&s), "deterministic");
    }

    #[test]
    fn homogeneous_loads_differ_by_at_most_one(s in arb_spec(true)) {
        let out = assign(&s);
        let counts = load_values(&out);
        prop_assert!(counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1);
    }

    #[test]
    fn homogeneous_keeps_as_much_as_balance_allows(s in arb_spec(true)) {
        let out = assign(&s);
        let total = load_values(&out).iter().sum();
        prop_assert_eq!(kept(&s, &out), max_kept_homogeneous(&s, total));
    }

    #[test]
    fn reassigning_the_output_changes_nothing(s in arb_spec(false)) {
        let out = assign(&s);
        let mut again = s.clone();
        for (id, m) in &mut again.members {
            m.current = out[id].clone();
        }
        prop_assert_eq!(assign(&again), out);
    }

    #[test]
    fn adding_a_member_moves_only_its_share(s in arb_spec(true)) {
        let before = assign(&s);
        let mut grown = s.clone();
        for (id, m) in &mut grown.members {
            m.current = before[id].clone();
        }
        let subscribed = grown.members.values().next().map(|m| m.subscribed.clone()).unwrap();
        grown.members.insert("zz".to_owned(), MemberSpec { subscribed, ..Default::default() });
        let after = assign(&grown);
        let total: usize = load_values(&after).iter().sum();
        let newcomer = loads(&after)["zz"];
        prop_assert_eq!(moved(&before, &after), newcomer);
        // Balance requires the newcomer to take its floor share, and allows no more than the
        // ceiling.
        let subscribes = !grown.members["zz"].subscribed.is_empty();
        prop_assert!(newcomer <= total.div_ceil(grown.members.len()));
        prop_assert!(!subscribes || newcomer >= total / grown.members.len());
        for id in before.keys() {
            prop_assert!(triples_of(&after, id).is_subset(&triples_of(&before, id)));
        }
    }

    #[test]
    fn removing_a_member_moves_only_its_partitions_prop(
        s in arb_spec(true),
        pick in any::<prop::sample::Index>(),
    ) {
        let before = assign(&s);
        let mut shrunk = s.clone();
        for (id, m) in &mut shrunk.members {
            m.current = before[id].clone();
        }
        let gone = pick.get(&s.members.keys().cloned().collect::<Vec<_>>()).clone();
        shrunk.members.remove(&gone);
        let after = assign(&shrunk);
        for id in shrunk.members.keys() {
            prop_assert!(triples_of(&after, id).is_superset(&triples_of(&before, id)));
        }
        let orphans = before[&gone].values().map(BTreeSet::len).sum::<usize>();
        prop_assert_eq!(moved(&before, &after), orphans);
    }
}

#[test]
fn topic_ids_order_ties() {
    // Equal loads: the lower member id gets the first partition of the lower topic id.
    let s = homogeneous(&[(2, 1), (1, 1)], &[1, 2], &fresh(&["b", "a"]));
    let out = assign(&s);
    assert_eq!(out["a"], parts(&[(1, &[0])]));
    assert_eq!(out["b"], parts(&[(2, &[0])]));
}

#[test]
fn chains_balance_what_single_moves_cannot() {
    // No single hand-over helps ("a" can only give to "b", which is one lighter, and "b" only to
    // "c", also one lighter), but the chain a -> b -> c evens the loads out.
    let s = spec(
        &[(1, 4), (2, 2)],
        vec![
            ("a", member(&[1], parts(&[(1, &[0, 1, 2])]))),
            ("b", member(&[1, 2], parts(&[(1, &[3]), (2, &[0])]))),
            ("c", member(&[2], parts(&[(2, &[1])]))),
        ],
    );
    let out = assign(&s);
    assert_eq!(out["a"], parts(&[(1, &[0, 1])]));
    assert_eq!(out["b"], parts(&[(1, &[2, 3])]));
    assert_eq!(out["c"], parts(&[(2, &[0, 1])]));
}

#[test]
fn a_larger_heterogeneous_group_is_balanced_and_stable() {
    // 60 members over 12 topics of 25 partitions, each on a pseudo-random, uneven mix of them
    // (every member subscribes to at least one, and an even spread of 5 each is possible).
    let topics: Vec<(u128, u32)> = (1..=12).map(|t| (t, 25)).collect();
    let members: Vec<(String, MemberSpec)> = (0..60u128)
        .map(|m| {
            let subscribed: Vec<u128> = (1..=12)
                .filter(|t| (m * m * 31 + t * t * 17 + m * t * 7) % 97 % 3 == 0)
                .collect();
            (format!("member-{m:02}"), member(&subscribed, parts(&[])))
        })
        .collect();
    let members = members
        .iter()
        .map(|(id, m)| (id.as_str(), m.clone()))
        .collect();
    let mut s = spec(&topics, members);
    let out = assign(&s);
    assert!(optimally_balanced(&s, &out));
    assert!(load_values(&out).iter().all(|&load| load == 5));
    for (id, m) in &mut s.members {
        m.current = out[id].clone();
    }
    assert_eq!(assign(&s), out);
}
