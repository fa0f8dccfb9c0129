//! Consumer groups against a real etcd, a broker and two coordinator processes: incremental
//! rebalancing, offset commits fenced by member epochs, bad input, session expiry and
//! coordinator failover.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::groups::{GroupCluster, RawMember, assert_single_owner_per_epoch, commit, committed};
use strom_proto::common::v1::ErrorCode;
use strom_proto::coordinator::v1 as pb;

/// Heartbeats every member in turn until each owns `want(i)` partitions and no assignment is
/// pending; returns how many rounds it took.
async fn settle(
    members: &mut [RawMember],
    client: &mut strom_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient<
        tonic::transport::Channel,
    >,
    total: usize,
) -> usize {
    for round in 0..50 {
        let mut pending = false;
        for member in members.iter_mut() {
            let response = member.beat(client).await.unwrap();
            pending |= response.heartbeat_interval_ms < 500 || response.assignment.is_some();
        }
        let owned: usize = members.iter().map(RawMember::count).sum();
        if !pending && owned == total {
            return round;
        }
    }
    panic!("the group did not settle");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifth_member_takes_only_what_moves_and_no_partition_is_owned_twice() {
    let Some(cluster) = GroupCluster::start("groups-rebalance", 12, 5).await else {
        return;
    };
    let (_, mut client) = cluster.coordinator_for("rebalance").await;
    let mut members: Vec<RawMember> = (1..=4)
        .map(|i| RawMember::new("rebalance", &format!("member-{i}")))
        .collect();
    settle(&mut members, &mut client, 12).await;
    assert!(members.iter().all(|m| m.count() == 3), "3 partitions each");
    let before: Vec<_> = members.iter().map(RawMember::partitions).collect();
    let revocations_before: Vec<usize> = members.iter().map(|m| m.history.len()).collect();

    members.push(RawMember::new("rebalance", "member-5"));
    settle(&mut members, &mut client, 12).await;
    let counts: Vec<usize> = members.iter().map(RawMember::count).collect();
    assert_eq!(counts.iter().sum::<usize>(), 12);
    assert!(counts.iter().all(|c| (2..=3).contains(c)), "{counts:?}");
    let mut moved = 0;
    for (member, old) in members.iter().zip(&before) {
        let now = member.partitions();
        assert!(now.is_subset(old), "{} gained partitions", member.member_id);
        moved += old.len() - now.len();
        // A member that kept everything never saw an assignment without its partitions.
        if now == *old {
            let index = members
                .iter()
                .position(|m| m.member_id == member.member_id)
                .unwrap();
            for (_, owned) in &member.history[revocations_before[index]..] {
                let held: std::collections::BTreeSet<i32> =
                    owned.values().flatten().copied().collect();
                assert_eq!(
                    &held, old,
                    "{} stopped owning a partition",
                    member.member_id
                );
            }
        }
    }
    assert_eq!(moved, 2, "only the new member's share moves");
    let refs: Vec<&RawMember> = members.iter().collect();
    assert_single_owner_per_epoch(&refs);

    let described = client
        .describe_groups(pb::DescribeGroupsRequest {
            group_ids: vec!["rebalance".to_owned()],
            include_lag: true,
        })
        .await
        .unwrap()
        .into_inner();
    let group = &described.groups[0];
    assert!(group.error.is_none(), "{group:?}");
    assert_eq!(group.state, pb::GroupState::Stable as i32);
    assert_eq!(group.members.len(), 5);
    let rows: Vec<_> = group.topics.iter().flat_map(|t| &t.partitions).collect();
    assert_eq!(rows.len(), 12);
    assert!(
        rows.iter()
            .all(|r| r.high_watermark == Some(5) && !r.member_id.is_empty())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_fenced_validated_and_survive_coordinator_failover() {
    let Some(mut cluster) = GroupCluster::start("groups-commit", 4, 10).await else {
        return;
    };
    let (owner_id, mut client) = cluster.coordinator_for("billing").await;
    let mut a = RawMember::new("billing", "a");
    let mut b = RawMember::new("billing", "b");
    let mut pair = [a, b];
    settle(&mut pair, &mut client, 4).await;
    [a, b] = pair;
    let pa: Vec<i32> = a.partitions().into_iter().collect();
    let ok = commit(&mut client, "billing", "a", a.epoch, &[(pa[0], 4)], "m")
        .await
        .unwrap();
    assert_eq!(ok, vec![None]);

    // Bad input: a definite code for each, and nothing stored.
    let snapshot = committed(&mut client, "billing").await;
    assert_eq!(snapshot.get(&pa[0]), Some(&4));
    let cases: Vec<(&str, i32, i64, String, ErrorCode)> = vec![
        ("a", a.epoch, -1, String::new(), ErrorCode::OffsetOutOfRange),
        ("a", a.epoch, 11, String::new(), ErrorCode::OffsetOutOfRange),
        (
            "a",
            a.epoch,
            5,
            "x".repeat(5000),
            ErrorCode::OffsetMetadataTooLarge,
        ),
        (
            "a",
            a.epoch,
            3,
            String::new(),
            ErrorCode::CommitOffsetBehind,
        ),
    ];
    for (member, epoch, offset, metadata, expected) in cases {
        let got = commit(
            &mut client,
            "billing",
            member,
            epoch,
            &[(pa[0], offset)],
            &metadata,
        )
        .await
        .unwrap();
        assert_eq!(got, vec![Some(expected)], "offset {offset}");
    }
    let unknown = commit(&mut client, "billing", "nobody", 1, &[(pa[0], 5)], "").await;
    assert_eq!(unknown, Err(ErrorCode::UnknownMemberId));
    let stale = commit(&mut client, "billing", "a", a.epoch - 1, &[(pa[0], 5)], "").await;
    assert_eq!(stale, Err(ErrorCode::StaleMemberEpoch));
    let fenced = commit(&mut client, "billing", "a", a.epoch + 1, &[(pa[0], 5)], "").await;
    assert_eq!(fenced, Err(ErrorCode::FencedMemberEpoch));
    let outsider = commit(&mut client, "billing", "", 0, &[(pa[0], 5)], "").await;
    assert_eq!(
        outsider,
        Err(ErrorCode::UnknownMemberId),
        "the group has members"
    );
    let empty_id = commit(&mut client, "", "a", a.epoch, &[(pa[0], 5)], "").await;
    assert_eq!(empty_id, Err(ErrorCode::InvalidGroupId));
    let mut bad_timeout = RawMember::new("billing", "c");
    bad_timeout.session_timeout_ms = 10;
    assert_eq!(
        bad_timeout.beat(&mut client).await.err(),
        Some(ErrorCode::InvalidSessionTimeout)
    );
    let mut no_id = RawMember::new("billing", "");
    assert_eq!(
        no_id.beat(&mut client).await.err(),
        Some(ErrorCode::MemberIdRequired)
    );
    assert_eq!(
        committed(&mut client, "billing").await,
        snapshot,
        "nothing stored"
    );

    // A member that goes silent past its session timeout is expelled; its commit is rejected.
    let silent_epoch = b.epoch;
    let pb_parts: Vec<i32> = b.partitions().into_iter().collect();
    let started = Instant::now();
    let mut solo = [a];
    loop {
        solo[0].beat(&mut client).await.unwrap();
        if solo[0].count() == 4 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2 + 2 + 2),
            "b was not expelled in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let late = commit(
        &mut client,
        "billing",
        "b",
        silent_epoch,
        &[(pb_parts[0], 9)],
        "",
    )
    .await;
    assert_eq!(late, Err(ErrorCode::UnknownMemberId));
    assert_eq!(
        committed(&mut client, "billing").await,
        snapshot,
        "the late commit was not stored"
    );
    let [mut a] = solo;
    let all: Vec<(i32, i64)> = (0..4).map(|p| (p, 7)).collect();
    let ok = commit(&mut client, "billing", "a", a.epoch, &all, "")
        .await
        .unwrap();
    assert!(ok.iter().all(Option::is_none), "{ok:?}");
    let before_failover = committed(&mut client, "billing").await;

    // kill -9 the owning coordinator: the other one takes the group over within the lease TTL
    // (2 s) + 2 s, with the same epochs and offsets.
    let index = cluster
        .coordinators
        .iter()
        .position(|c| c.id == owner_id)
        .unwrap();
    cluster.coordinators[index].kill9().await;
    let killed = Instant::now();
    let (new_owner, mut client) = loop {
        let (id, mut candidate) = cluster.coordinator_for("billing").await;
        if id != owner_id && a.beat(&mut candidate).await.is_ok() {
            break (id, candidate);
        }
        assert!(killed.elapsed() < Duration::from_secs(8), "no takeover");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let takeover = killed.elapsed();
    assert_ne!(new_owner, owner_id);
    assert!(
        takeover < Duration::from_secs(4),
        "takeover took {takeover:?}"
    );
    assert_eq!(a.count(), 4, "the member kept its partitions");
    assert_eq!(committed(&mut client, "billing").await, before_failover);
    let behind = commit(&mut client, "billing", "a", a.epoch, &[(0, 6)], "")
        .await
        .unwrap();
    assert_eq!(behind, vec![Some(ErrorCode::CommitOffsetBehind)]);
    let forward = commit(&mut client, "billing", "a", a.epoch, &[(0, 8)], "")
        .await
        .unwrap();
    assert_eq!(forward, vec![None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regex_subscription_picks_up_topics_created_later() {
    let Some(cluster) = GroupCluster::start("groups-regex", 2, 1).await else {
        return;
    };
    let (_, mut client) = cluster.coordinator_for("auditors").await;
    let mut members: Vec<RawMember> = ["x", "y"]
        .iter()
        .map(|id| {
            let mut member = RawMember::new("auditors", id);
            member.topic_regex = "orders|audit-.*".to_owned();
            member
        })
        .collect();
    settle(&mut members, &mut client, 2).await;
    let epoch_before: Vec<i32> = members.iter().map(|m| m.epoch).collect();

    // A matching topic shows up, and one that does not.
    cluster.create_topic("audit-eu", 4).await;
    cluster.create_topic("payments", 3).await;
    let started = Instant::now();
    loop {
        for member in &mut members {
            member.beat(&mut client).await.unwrap();
        }
        if members.iter().map(RawMember::count).sum::<usize>() == 6 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the new topic was not assigned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    settle(&mut members, &mut client, 6).await;
    assert!(members.iter().all(|m| m.count() == 3), "balanced");
    assert!(
        members
            .iter()
            .zip(&epoch_before)
            .all(|(m, before)| m.epoch > *before),
        "the new topic bumped the epochs"
    );
    let topics: std::collections::BTreeSet<&String> =
        members.iter().flat_map(|m| m.owned.keys()).collect();
    assert_eq!(topics.len(), 2, "orders and audit-eu, not payments");
    let refs: Vec<&RawMember> = members.iter().collect();
    assert_single_owner_per_epoch(&refs);
}
