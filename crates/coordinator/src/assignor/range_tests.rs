//! Tests of the range assignor: Kafka's worked examples and proptests of the contract and of
//! the range shapes.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::super::uniform::test_support::{arb_spec, check_contract, member, parts, spec};
use super::super::{AssignmentSpec, Assignor, GroupAssignment};
use super::{RangeAssignor, member_range};

fn assign(spec: &AssignmentSpec) -> GroupAssignment {
    let assignment = RangeAssignor.assign(spec);
    check_contract(spec, &assignment);
    assignment
}

#[test]
fn name_is_range() {
    assert_eq!(RangeAssignor.name(), "range");
}

#[test]
fn first_members_get_the_larger_ranges() {
    let s = spec(
        &[(1, 10)],
        vec![
            ("c", member(&[1], parts(&[]))),
            ("a", member(&[1], parts(&[]))),
            ("b", member(&[1], parts(&[]))),
        ],
    );
    let out = assign(&s);
    assert_eq!(out["a"], parts(&[(1, &[0, 1, 2, 3])]));
    assert_eq!(out["b"], parts(&[(1, &[4, 5, 6])]));
    assert_eq!(out["c"], parts(&[(1, &[7, 8, 9])]));
}

#[test]
fn equal_topics_are_co_partitioned() {
    let s = spec(
        &[(1, 5), (2, 5)],
        vec![
            ("a", member(&[1, 2], parts(&[]))),
            ("b", member(&[1, 2], parts(&[]))),
        ],
    );
    let out = assign(&s);
    assert_eq!(out["a"], parts(&[(1, &[0, 1, 2]), (2, &[0, 1, 2])]));
    assert_eq!(out["b"], parts(&[(1, &[3, 4]), (2, &[3, 4])]));
}

#[test]
fn fewer_partitions_than_members_leaves_the_last_empty() {
    let s = spec(
        &[(1, 2)],
        vec![
            ("a", member(&[1], parts(&[]))),
            ("b", member(&[1], parts(&[]))),
            ("c", member(&[1], parts(&[]))),
        ],
    );
    let out = assign(&s);
    assert_eq!(out["a"], parts(&[(1, &[0])]));
    assert_eq!(out["b"], parts(&[(1, &[1])]));
    assert!(out["c"].is_empty(), "no empty per-topic set, but an entry");
}

#[test]
fn ranges_are_per_topic_subscribers_and_ignore_current() {
    // Topic 2 is missing from `topics`, topic 3 has no partitions.
    let s = spec(
        &[(1, 4), (3, 0)],
        vec![
            ("a", member(&[1, 2, 3], parts(&[(1, &[3])]))),
            ("b", member(&[], parts(&[(1, &[0])]))),
            ("c", member(&[1], parts(&[]))),
        ],
    );
    let out = assign(&s);
    assert_eq!(out["a"], parts(&[(1, &[0, 1])]));
    assert!(out["b"].is_empty());
    assert_eq!(out["c"], parts(&[(1, &[2, 3])]));
}

#[test]
fn member_ranges_tile_the_topic() {
    for partitions in 0..20 {
        for members in 1..8 {
            let tiled: Vec<u32> = (0..members)
                .flat_map(|index| member_range(partitions, members, index))
                .collect();
            assert_eq!(tiled, (0..partitions).collect::<Vec<_>>());
        }
    }
}

proptest! {
    #[test]
    fn contract_holds_with_contiguous_ranges_of_range_sizes(s in arb_spec(false)) {
        let out = assign(&s);
        prop_assert_eq!(&out, &RangeAssignor.assign(&s), "deterministic");
        for (&t, &n) in &s.topics {
            let subscribers: Vec<&String> = s
                .members
                .iter()
                .filter(|(_, m)| m.subscribed.contains(&t))
                .map(|(id, _)| id)
                .collect();
            let mut next = 0;
            for (index, id) in subscribers.iter().enumerate() {
                let held = out[*id].get(&t).cloned().unwrap_or_default();
                let k = subscribers.len() as u32;
                let size = n / k + u32::from((index as u32) < n % k);
                let expected: BTreeSet<u32> = (next..next + size).collect();
                prop_assert_eq!(held, expected);
                next += size;
            }
        }
    }
}
