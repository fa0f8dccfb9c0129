//! Group state machine tests: members heartbeat in turns, and after every step no partition is
//! in two members' `assigned ∪ revoking`.

use std::collections::BTreeMap;

use strom_types::TopicId;

use super::*;
use crate::Error;

const TOPIC: TopicId = TopicId::new(7);

fn view(partitions: u32) -> TopicsView {
    TopicsView::new(BTreeMap::from([("orders".to_owned(), (TOPIC, partitions))]))
}

fn limits() -> GroupLimits {
    GroupLimits {
        default_session_timeout_ms: 45_000,
        min_session_timeout_ms: 1_000,
        max_session_timeout_ms: 1_800_000,
        heartbeat_interval_ms: 1_000,
        reconcile_interval_ms: 100,
        default_assignor: "uniform".to_owned(),
        max_group_size: 100,
    }
}

/// A simulated client: what it owns and its epoch.
#[derive(Debug, Clone, Default)]
struct Client {
    epoch: i32,
    owned: crate::assignor::TopicPartitions,
    revocations: usize,
}

fn input(id: &str, client: &Client) -> HeartbeatInput {
    HeartbeatInput {
        member_id: id.to_owned(),
        member_epoch: client.epoch,
        instance_id: None,
        rack: None,
        rebalance_timeout_ms: 0,
        session_timeout_ms: 0,
        subscription: Subscription {
            topic_names: ["orders".to_owned()].into(),
            topic_regex: None,
        },
        assignor: None,
        owned: client.owned.clone(),
    }
}

fn beat(group: &mut Group, id: &str, client: &mut Client, topics: &TopicsView) {
    let out = group
        .heartbeat(input(id, client), topics, &limits())
        .unwrap();
    client.epoch = out.member_epoch;
    if let Some(assignment) = out.assignment {
        if !difference(&client.owned, &assignment).is_empty() {
            client.revocations += 1;
        }
        client.owned = assignment;
    }
    assert_single_ownership(group);
}

fn assert_single_ownership(group: &Group) {
    let mut seen = BTreeMap::new();
    for member in group.members.values() {
        for tp in partitions(&member.assigned).chain(partitions(&member.revoking)) {
            if let Some(other) = seen.insert(tp, member.id.clone()) {
                panic!("{tp:?} held by {other} and {}", member.id);
            }
        }
    }
}

fn settle(group: &mut Group, clients: &mut BTreeMap<String, Client>, topics: &TopicsView) {
    for _ in 0..20 {
        for (id, client) in clients.iter_mut() {
            beat(group, id, client, topics);
        }
        if group.phase() == GroupPhase::Stable {
            return;
        }
    }
    panic!("group did not settle: {group:#?}");
}

fn count(client: &Client) -> usize {
    partitions(&client.owned).count()
}

#[test]
fn four_members_split_twelve_partitions_and_a_fifth_moves_only_what_it_must() {
    let topics = view(12);
    let mut group = Group::default();
    let mut clients: BTreeMap<String, Client> = (1..=4)
        .map(|i| (format!("m{i}"), Client::default()))
        .collect();
    settle(&mut group, &mut clients, &topics);
    assert!(clients.values().all(|c| count(c) == 3), "{clients:?}");
    let before: BTreeMap<_, _> = clients
        .iter()
        .map(|(id, c)| (id.clone(), c.owned.clone()))
        .collect();

    clients.insert("m5".to_owned(), Client::default());
    settle(&mut group, &mut clients, &topics);
    let counts: Vec<usize> = clients.values().map(count).collect();
    assert_eq!(counts.iter().sum::<usize>(), 12);
    assert!(counts.iter().all(|c| (2..=3).contains(c)), "{counts:?}");
    let mut moved = 0;
    for (id, old) in &before {
        let lost = partitions(&difference(old, &clients[id].owned)).count();
        assert!(lost <= 1, "{id} lost {lost}");
        moved += lost;
        assert!(
            difference(&clients[id].owned, old).is_empty(),
            "{id} gained partitions"
        );
    }
    assert_eq!(moved, 2, "only what the new member needs moves");
    assert_eq!(group.members["m5"].epoch, group.assignment_epoch);
}

#[test]
fn a_leaving_member_frees_its_partitions_and_stale_epochs_are_fenced() {
    let topics = view(6);
    let mut group = Group::default();
    let mut clients: BTreeMap<String, Client> = (1..=2)
        .map(|i| (format!("m{i}"), Client::default()))
        .collect();
    settle(&mut group, &mut clients, &topics);
    let m1 = clients["m1"].clone();
    let mut leave = input("m1", &m1);
    leave.member_epoch = -1;
    assert_eq!(
        group
            .heartbeat(leave, &topics, &limits())
            .unwrap()
            .member_epoch,
        -1
    );
    clients.remove("m1");
    settle(&mut group, &mut clients, &topics);
    assert_eq!(count(&clients["m2"]), 6);

    let mut stale = input("m2", &clients["m2"]);
    stale.member_epoch += 5;
    let err = group.heartbeat(stale, &topics, &limits()).unwrap_err();
    assert!(matches!(err, Error::FencedMemberEpoch { .. }), "{err}");
    let err = group
        .heartbeat(input("m1", &m1), &topics, &limits())
        .unwrap_err();
    assert!(matches!(err, Error::UnknownMember { .. }), "{err}");
}

#[test]
fn a_static_member_that_comes_back_under_a_new_id_keeps_its_partitions() {
    let topics = view(4);
    let mut group = Group::default();
    let mut clients = BTreeMap::new();
    for i in 1..=2 {
        clients.insert(format!("m{i}"), Client::default());
    }
    let static_input = |id: &str, c: &Client| {
        let mut i = input(id, c);
        i.instance_id = Some(format!("instance-{id}"));
        i
    };
    for (id, client) in clients.iter_mut() {
        let out = group
            .heartbeat(static_input(id, client), &topics, &limits())
            .unwrap();
        client.epoch = out.member_epoch;
    }
    settle(&mut group, &mut clients, &topics);
    let epoch = group.epoch;
    let owned = clients["m1"].owned.clone();
    // m1 crashes and restarts as "m1b" with the same instance id.
    let mut rejoin = static_input("m1", &Client::default());
    rejoin.member_id = "m1b".to_owned();
    let out = group.heartbeat(rejoin, &topics, &limits()).unwrap();
    assert_eq!(out.assignment, Some(owned));
    assert_eq!(out.replaced.as_deref(), Some("m1"));
    assert_eq!(group.epoch, epoch, "no rebalance");
    assert_single_ownership(&group);
}

#[test]
fn new_partitions_are_picked_up() {
    let mut group = Group::default();
    let mut clients: BTreeMap<String, Client> = (1..=2)
        .map(|i| (format!("m{i}"), Client::default()))
        .collect();
    settle(&mut group, &mut clients, &view(2));
    settle(&mut group, &mut clients, &view(4));
    assert!(clients.values().all(|c| count(c) == 2), "{clients:?}");
}

#[test]
fn bad_heartbeats_get_definite_errors() {
    let topics = view(2);
    let mut group = Group::default();
    let client = Client::default();
    type Case = (Box<dyn Fn(&mut HeartbeatInput)>, fn(&Error) -> bool);
    let cases: Vec<Case> = vec![
        (Box::new(|i| i.member_id.clear()), |e| {
            matches!(e, Error::MemberIdRequired)
        }),
        (Box::new(|i| i.session_timeout_ms = 10), |e| {
            matches!(e, Error::InvalidSessionTimeout { .. })
        }),
        (
            Box::new(|i| i.subscription.topic_regex = Some("(".to_owned())),
            |e| matches!(e, Error::InvalidRequest { .. } | Error::InvalidRegex { .. }),
        ),
        (Box::new(|i| i.assignor = Some("nope".to_owned())), |e| {
            matches!(e, Error::UnsupportedAssignor { .. })
        }),
        (Box::new(|i| i.member_epoch = -5), |e| {
            matches!(e, Error::InvalidRequest { .. })
        }),
    ];
    for (mutate, expected) in cases {
        let mut bad = input("m", &client);
        mutate(&mut bad);
        let err = group.heartbeat(bad, &topics, &limits()).unwrap_err();
        assert!(expected(&err), "{err}");
        assert!(group.members.is_empty(), "nothing stored after {err}");
    }
}
