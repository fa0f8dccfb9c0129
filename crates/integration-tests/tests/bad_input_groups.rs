//! Bad input to the CoordinatorService, on the coordinator that owns a group, on one that does
//! not, and on a broker (which answers FindCoordinator and redirects the rest): invalid and
//! unknown group ids, missing and unknown members, fenced and absurd epochs, session and
//! rebalance timeouts out of range, bad subscriptions and assignors, unknown topics and
//! partitions, negative and absurd offsets, oversized metadata, bad state filters and reset
//! strategies. Every call answers within a bound with a definite code, a refused heartbeat
//! leaves the member as it was, a refused commit, delete or reset leaves FetchOffsets
//! unchanged, and every process keeps serving.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::bad_input::{
    CoordinatorClient, answer, code, commit_codes, connect_coordinator, describe_codes, edited,
    filler, redirect, reset,
};
use common::groups::{GROUP_TOPIC, GroupCluster, RawMember, committed};
use strom_proto::common::v1::ErrorCode;
use strom_proto::coordinator::v1 as pb;
use strom_proto::coordinator::v1::reset_offsets_request::Strategy;

const GROUP: &str = "bad-input";

/// Claims to own partitions of a topic id that is not a UUID.
fn owns_a_malformed_topic_id(request: &mut pb::HeartbeatRequest) {
    request.topic_partitions[0].topic_id = "not-a-uuid".to_owned();
}

/// The error code of a heartbeat's answer.
async fn beat_code(
    client: &mut CoordinatorClient,
    request: pb::HeartbeatRequest,
) -> Option<ErrorCode> {
    let response = answer("heartbeat", client.heartbeat(request)).await;
    code(response.error.as_ref())
}

/// The error code of a LeaveGroup of `member` or `instance` from `group`.
async fn leave_code(
    client: &mut CoordinatorClient,
    group: &str,
    member: &str,
    instance: &str,
) -> Option<ErrorCode> {
    let request = pb::LeaveGroupRequest {
        group_id: group.to_owned(),
        member_id: member.to_owned(),
        instance_id: instance.to_owned(),
        reason: "bad input".to_owned(),
    };
    let response = answer("leave group", client.leave_group(request)).await;
    code(response.error.as_ref())
}

/// Each group's error code in a FindCoordinator of `groups`.
async fn find_codes(client: &mut CoordinatorClient, groups: &[&str]) -> Vec<Option<ErrorCode>> {
    let request = pb::FindCoordinatorRequest {
        group_ids: groups.iter().map(|g| (*g).to_owned()).collect(),
    };
    let response = answer("find coordinator", client.find_coordinator(request)).await;
    assert!(response.error.is_none(), "{response:?}");
    response
        .coordinators
        .iter()
        .map(|c| code(c.error.as_ref()))
        .collect()
}

/// The group's epoch and its members' ids and epochs, as the owner describes them.
async fn membership(client: &mut CoordinatorClient) -> (i32, Vec<(String, i32)>) {
    let request = pb::DescribeGroupsRequest {
        group_ids: vec![GROUP.to_owned()],
        include_lag: false,
    };
    let described = answer("describe groups", client.describe_groups(request)).await;
    let group = &described.groups[0];
    assert!(group.error.is_none(), "{group:?}");
    let members = group
        .members
        .iter()
        .map(|m| (m.member_id.clone(), m.member_epoch))
        .collect();
    (group.group_epoch, members)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_requests_with_bad_input_are_refused_and_the_member_stays() {
    let Some(cluster) = GroupCluster::start("bad-groups-members", 2, 5).await else {
        return;
    };
    let (owner, mut client) = cluster.coordinator_for(GROUP).await;
    let mut member = RawMember::new(GROUP, "m");
    member.session_timeout_ms = 30_000;
    while member.count() < 2 {
        member.beat(&mut client).await.unwrap();
    }
    let epoch = member.epoch;
    let before = membership(&mut client).await;

    // Heartbeats with bad ids, timeouts, subscriptions, assignors, epochs and owned partitions.
    let base = member.request();
    let ghost = RawMember::new(GROUP, "ghost").request();
    let long_group = filler(256);
    let requests = [
        edited(&base, |r| r.group_id = String::new()),
        edited(&base, |r| r.group_id = "a/b".to_owned()),
        edited(&base, |r| r.group_id = long_group.clone()),
        edited(&base, |r| r.group_id = "has space".to_owned()),
        edited(&base, |r| r.member_id = String::new()),
        edited(&base, |r| r.session_timeout_ms = 10),
        edited(&base, |r| r.session_timeout_ms = -1),
        edited(&base, |r| r.session_timeout_ms = i32::MAX),
        edited(&base, |r| r.rebalance_timeout_ms = -1),
        edited(&base, |r| r.subscribed_topic_regex = "o.*".to_owned()),
        edited(&base, |r| {
            r.subscribed_topic_names.clear();
            r.subscribed_topic_regex = "(".to_owned();
        }),
        edited(&base, |r| r.server_assignor = "nope".to_owned()),
        edited(&base, |r| r.member_epoch = -3),
        edited(&base, |r| r.member_epoch = i32::MIN),
        edited(&base, |r| r.member_epoch = epoch + 10),
        edited(&base, |r| r.member_epoch = i32::MAX),
        edited(&base, |r| r.member_epoch = -2),
        edited(&base, owns_a_malformed_topic_id),
        edited(&base, |r| r.topic_partitions[0].partitions.push(-1)),
        edited(&ghost, |r| r.member_epoch = 3),
        edited(&ghost, |r| r.member_epoch = -1),
        edited(&ghost, |r| r.subscribed_topic_names.clear()),
    ];
    let mut codes = Vec::new();
    for request in requests {
        codes.push(beat_code(&mut client, request).await);
    }
    let invalid = ErrorCode::InvalidRequest;
    let expected = [
        ErrorCode::InvalidGroupId,
        ErrorCode::InvalidGroupId,
        ErrorCode::InvalidGroupId,
        ErrorCode::InvalidGroupId,
        ErrorCode::MemberIdRequired,
        ErrorCode::InvalidSessionTimeout,
        ErrorCode::InvalidSessionTimeout,
        ErrorCode::InvalidSessionTimeout,
        invalid,
        invalid,
        ErrorCode::InvalidRegularExpression,
        ErrorCode::UnsupportedAssignor,
        invalid,
        invalid,
        ErrorCode::FencedMemberEpoch,
        ErrorCode::FencedMemberEpoch,
        invalid,
        invalid,
        invalid,
        ErrorCode::UnknownMemberId,
        ErrorCode::UnknownMemberId,
        invalid,
    ];
    assert_eq!(codes, expected.map(Some));
    assert_eq!(membership(&mut client).await, before, "nothing changed");

    // Another coordinator and the broker redirect to the owner; the broker checks the id.
    let other = cluster.coordinators.iter().find(|c| c.id != owner);
    let mut other = connect_coordinator(&other.unwrap().address).await;
    let mut broker = connect_coordinator(&cluster.broker.address).await;
    let to_owner = Some((ErrorCode::NotCoordinator, owner));
    for redirector in [&mut other, &mut broker] {
        let response = answer("heartbeat", redirector.heartbeat(member.request())).await;
        assert_eq!(redirect(response.error.as_ref()), to_owner);
    }
    let nameless = edited(&base, |r| r.group_id = String::new());
    let refused = beat_code(&mut broker, nameless).await;
    assert_eq!(refused, Some(ErrorCode::InvalidGroupId));

    // LeaveGroup of bad or unknown groups, members and instances.
    let leaves = [
        ("", "m", ""),
        ("never-seen", "m", ""),
        (GROUP, "ghost", ""),
        (GROUP, "", ""),
        (GROUP, "", "no-such-instance"),
    ];
    let mut codes = Vec::new();
    for (group, member_id, instance) in leaves {
        codes.push(leave_code(&mut client, group, member_id, instance).await);
    }
    let expected = [
        ErrorCode::InvalidGroupId,
        ErrorCode::GroupIdNotFound,
        ErrorCode::UnknownMemberId,
        ErrorCode::UnknownMemberId,
        ErrorCode::UnknownMemberId,
    ];
    assert_eq!(codes, expected.map(Some));
    let request = pb::LeaveGroupRequest {
        group_id: GROUP.to_owned(),
        member_id: "m".to_owned(),
        ..Default::default()
    };
    let response = answer("leave group", broker.leave_group(request)).await;
    assert_eq!(redirect(response.error.as_ref()), to_owner);
    assert_eq!(membership(&mut client).await, before, "still there");

    // FindCoordinator of bad ids, on the owner and on the broker, next to a good one.
    let ids = ["", "a/b", long_group.as_str(), "has space", GROUP];
    let codes = find_codes(&mut client, &ids).await;
    let bad_id = Some(ErrorCode::InvalidGroupId);
    assert_eq!(codes, [bad_id, bad_id, bad_id, bad_id, None]);
    let codes = find_codes(&mut broker, &["", "a/b", GROUP]).await;
    assert_eq!(codes, [bad_id, bad_id, None]);
    assert!(find_codes(&mut broker, &[]).await.is_empty());

    // The member goes on as before.
    let stayed = member.beat(&mut client).await.unwrap();
    assert_eq!((stayed.member_epoch, member.count()), (epoch, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_requests_with_bad_input_leave_the_offsets_alone() {
    let Some(cluster) = GroupCluster::start("bad-groups-offsets", 3, 10).await else {
        return;
    };
    let (_, mut client) = cluster.coordinator_for(GROUP).await;
    let mut broker = connect_coordinator(&cluster.broker.address).await;
    let mut member = RawMember::new(GROUP, "m");
    member.session_timeout_ms = 30_000;
    while member.count() < 3 {
        member.beat(&mut client).await.unwrap();
    }
    let epoch = member.epoch;
    let first = [(GROUP_TOPIC, 0, 4, ""), (GROUP_TOPIC, 1, 6, "")];
    let done = commit_codes(&mut client, GROUP, "m", epoch, &first).await;
    assert_eq!(done, Ok(vec![None, None]));
    let stored = BTreeMap::from([(0, 4), (1, 6)]);

    // Commits refused as a whole: bad group ids, unknown members, stale and fenced epochs.
    let good = [(GROUP_TOPIC, 2, 3, "")];
    let committers = [
        ("", "m", epoch),
        ("a/b", "m", epoch),
        (GROUP, "ghost", epoch),
        (GROUP, "", 0),
        (GROUP, "m", epoch - 1),
        (GROUP, "m", i32::MIN),
        (GROUP, "m", epoch + 1),
    ];
    let mut codes = Vec::new();
    for (group, member_id, member_epoch) in committers {
        let outcome = commit_codes(&mut client, group, member_id, member_epoch, &good).await;
        codes.push(outcome.err());
    }
    let expected = [
        ErrorCode::InvalidGroupId,
        ErrorCode::InvalidGroupId,
        ErrorCode::UnknownMemberId,
        ErrorCode::UnknownMemberId,
        ErrorCode::StaleMemberEpoch,
        ErrorCode::StaleMemberEpoch,
        ErrorCode::FencedMemberEpoch,
    ];
    assert_eq!(codes, expected.map(Some));

    // Positions refused one by one: unknown topics and partitions, offsets outside the log,
    // metadata over the limit, a commit behind the committed offset.
    let metadata = filler(4097);
    let positions = [
        ("nope", 0, 1, ""),
        ("", 0, 1, ""),
        (GROUP_TOPIC, -1, 1, ""),
        (GROUP_TOPIC, i32::MAX, 1, ""),
        (GROUP_TOPIC, 2, -1, ""),
        (GROUP_TOPIC, 2, i64::MIN, ""),
        (GROUP_TOPIC, 2, 11, ""),
        (GROUP_TOPIC, 2, i64::MAX, ""),
        (GROUP_TOPIC, 2, 3, metadata.as_str()),
        (GROUP_TOPIC, 0, 2, ""),
    ];
    let mut codes = Vec::new();
    for position in positions {
        let outcome = commit_codes(&mut client, GROUP, "m", epoch, &[position]).await;
        codes.push(outcome.unwrap()[0]);
    }
    let unknown = ErrorCode::UnknownTopicOrPartition;
    let out_of_range = ErrorCode::OffsetOutOfRange;
    let expected = [
        unknown,
        unknown,
        unknown,
        unknown,
        out_of_range,
        out_of_range,
        out_of_range,
        out_of_range,
        ErrorCode::OffsetMetadataTooLarge,
        ErrorCode::CommitOffsetBehind,
    ];
    assert_eq!(codes, expected.map(Some));
    assert_eq!(committed(&mut client, GROUP).await, stored);

    // A good and a bad position in one commit: only the good one is stored.
    let mixed = [(GROUP_TOPIC, 1, 8, ""), (GROUP_TOPIC, 2, -5, "")];
    let outcome = commit_codes(&mut client, GROUP, "m", epoch, &mixed).await;
    assert_eq!(outcome, Ok(vec![None, Some(out_of_range)]));
    let stored = BTreeMap::from([(0, 4), (1, 8)]);
    assert_eq!(committed(&mut client, GROUP).await, stored);

    // FetchOffsets: bad ids are refused; unknown groups and topics have nothing committed.
    let bad_id = Some(ErrorCode::InvalidGroupId);
    for bad in ["", "a/b"] {
        let request = pb::FetchOffsetsRequest {
            group_id: bad.to_owned(),
            topics: Vec::new(),
        };
        let response = answer("fetch offsets", client.fetch_offsets(request)).await;
        assert_eq!(code(response.error.as_ref()), bad_id);
    }
    for group in ["never-committed", GROUP] {
        let wanted = pb::FetchOffsetsTopic {
            topic: "nope".to_owned(),
            partitions: vec![0, 1],
        };
        let request = pb::FetchOffsetsRequest {
            group_id: group.to_owned(),
            topics: vec![wanted],
        };
        let response = answer("fetch offsets", client.fetch_offsets(request)).await;
        assert!(response.error.is_none(), "{response:?}");
        let results: Vec<_> = response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| (p.offset, p.error.is_some()))
            .collect();
        assert_eq!(results, [(None, false), (None, false)]);
    }

    // ListGroups with an unspecified state; DescribeGroups and DeleteGroups of bad ids.
    let invalid = Some(ErrorCode::InvalidRequest);
    for states in [vec![0], vec![pb::GroupState::Stable as i32, 0]] {
        let request = pb::ListGroupsRequest { states };
        let response = answer("list groups", client.list_groups(request)).await;
        assert_eq!(code(response.error.as_ref()), invalid);
        assert!(response.groups.is_empty());
    }
    let ids = ["", "a/b", "missing-group", GROUP];
    let codes = describe_codes(&mut client, &ids).await;
    let missing = Some(ErrorCode::GroupIdNotFound);
    assert_eq!(codes, [bad_id, bad_id, missing, None]);
    let request = pb::DeleteGroupsRequest {
        group_ids: ["", "missing-group", GROUP].map(str::to_owned).to_vec(),
    };
    let response = answer("delete groups", client.delete_groups(request)).await;
    let codes: Vec<_> = response
        .groups
        .iter()
        .map(|g| code(g.error.as_ref()))
        .collect();
    let busy = Some(ErrorCode::NonEmptyGroup);
    assert_eq!(codes, [bad_id, missing, busy]);
    assert_eq!(committed(&mut client, GROUP).await, stored);

    // The broker redirects every group call to the owner.
    let elsewhere = Some(ErrorCode::NotCoordinator);
    assert_eq!(describe_codes(&mut broker, &[GROUP]).await, [elsewhere]);
    let call = broker.list_groups(pb::ListGroupsRequest::default());
    let response = answer("list groups", call).await;
    assert_eq!(code(response.error.as_ref()), elsewhere);

    // ResetOffsets, once the group is empty: bad ids, topics, partitions and shifts.
    assert_eq!(leave_code(&mut client, GROUP, "m", "").await, None);
    let topic = GROUP_TOPIC;
    let latest = Strategy::Latest(pb::ResetToLatest {});
    let refusals = [
        reset(&mut client, "", topic, &[], latest, false).await,
        reset(&mut client, GROUP, "nope", &[], latest, false).await,
        reset(&mut client, GROUP, topic, &[-1], latest, false).await,
        reset(&mut client, GROUP, topic, &[i32::MAX], latest, false).await,
        reset(&mut broker, GROUP, topic, &[], latest, false).await,
    ];
    let codes: Vec<_> = refusals.into_iter().map(Result::err).collect();
    let expected = [
        ErrorCode::InvalidGroupId,
        unknown,
        unknown,
        unknown,
        ErrorCode::NotCoordinator,
    ];
    assert_eq!(codes, expected.map(Some));
    let shift = Strategy::ShiftBy(1);
    let shifted = reset(&mut client, GROUP, topic, &[2], shift, false).await;
    let nothing_to_shift: Result<i64, _> = Err(ErrorCode::InvalidRequest);
    assert_eq!(shifted, Ok(vec![(2, nothing_to_shift)]));
    assert_eq!(committed(&mut client, GROUP).await, stored);

    // Absurd targets are clamped to each partition's range (dry runs: nothing is written).
    let clamped = [
        (0, Strategy::ShiftBy(i64::MIN), 0),
        (0, Strategy::ShiftBy(i64::MAX), 10),
        (1, Strategy::ToOffset(-5), 0),
        (1, Strategy::ToOffset(i64::MAX), 10),
    ];
    for (partition, strategy, want) in clamped {
        let outcome = reset(&mut client, GROUP, topic, &[partition], strategy, true).await;
        assert_eq!(outcome, Ok(vec![(partition, Ok(want))]), "{strategy:?}");
    }
    assert_eq!(committed(&mut client, GROUP).await, stored);

    // The coordinator still takes a good commit.
    let outcome = commit_codes(&mut client, GROUP, "", 0, &[(topic, 2, 5, "")]).await;
    assert_eq!(outcome, Ok(vec![None]));
    let stored = BTreeMap::from([(0, 4), (1, 8), (2, 5)]);
    assert_eq!(committed(&mut client, GROUP).await, stored);
}
