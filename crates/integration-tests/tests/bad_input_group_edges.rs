//! Bad input at the edges of the CoordinatorService: request messages that do not decode and
//! messages above the 4 MiB limit, on the coordinators and on a broker; and the inputs for
//! which the contract names the answer: a refused request creates no group, a broker refuses
//! the group ids the coordinators refuse, and a bad partition, state filter or reset timestamp
//! gets the code that says what is wrong.
#![allow(clippy::unwrap_used)]

mod common;

use common::bad_input::{
    Checks, OVER_DEFAULT_LIMIT, Outcome, TRUNCATED_MESSAGE, answer, assert_too_large,
    assert_undecodable, code, commit_codes, connect_coordinator, describe_codes, filler, raw_unary,
    refusal, reset,
};
use common::groups::{GROUP_TOPIC, GroupCluster, RawMember, committed};
use strom_proto::common::v1::ErrorCode;
use strom_proto::coordinator::v1 as pb;
use strom_proto::coordinator::v1::reset_offsets_request::Strategy;

/// Every CoordinatorService method.
const METHODS: [&str; 9] = [
    "/strom.coordinator.v1.CoordinatorService/FindCoordinator",
    "/strom.coordinator.v1.CoordinatorService/Heartbeat",
    "/strom.coordinator.v1.CoordinatorService/LeaveGroup",
    "/strom.coordinator.v1.CoordinatorService/CommitOffsets",
    "/strom.coordinator.v1.CoordinatorService/FetchOffsets",
    "/strom.coordinator.v1.CoordinatorService/ListGroups",
    "/strom.coordinator.v1.CoordinatorService/DescribeGroups",
    "/strom.coordinator.v1.CoordinatorService/DeleteGroups",
    "/strom.coordinator.v1.CoordinatorService/ResetOffsets",
];

/// The error code of the first location of a FindCoordinator answer.
fn location_code(response: &pb::FindCoordinatorResponse) -> Option<ErrorCode> {
    code(response.coordinators.first()?.error.as_ref())
}

/// The request-level error code of a FetchOffsets answer, else that of its first partition.
fn fetched_code(response: &pb::FetchOffsetsResponse) -> Option<ErrorCode> {
    code(response.error.as_ref()).or_else(|| {
        let partition = response.topics.first()?.partitions.first()?;
        code(partition.error.as_ref())
    })
}

/// The error code of a ListGroups answer.
fn listed_code(response: &pb::ListGroupsResponse) -> Option<ErrorCode> {
    code(response.error.as_ref())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_and_oversized_group_messages_are_refused() {
    let Some(cluster) = GroupCluster::start("bad-groups-wire", 1, 1).await else {
        return;
    };
    let group = "wire";
    let (_, mut client) = cluster.coordinator_for(group).await;
    let mut addresses: Vec<&str> = cluster
        .coordinators
        .iter()
        .map(|c| c.address.as_str())
        .collect();
    addresses.push(&cluster.broker.address);

    // Every method on every process that serves it refuses what does not decode, and
    // FindCoordinator refuses what is above the limit.
    for address in &addresses {
        for path in METHODS {
            assert_undecodable(raw_unary(address, path, TRUNCATED_MESSAGE).await);
        }
        let mut process = connect_coordinator(address).await;
        let request = pb::FindCoordinatorRequest {
            group_ids: vec![filler(OVER_DEFAULT_LIMIT)],
        };
        let call = process.find_coordinator(request);
        assert_too_large(&refusal("an oversized find", call).await);
    }

    // An oversized commit stores nothing, and the owner still serves the group.
    let position = pb::CommitOffsetsPartition {
        partition: 0,
        offset: 1,
        leader_epoch: None,
        metadata: filler(OVER_DEFAULT_LIMIT),
    };
    let request = pb::CommitOffsetsRequest {
        group_id: group.to_owned(),
        member_id: String::new(),
        member_epoch: 0,
        topics: vec![pb::CommitOffsetsTopic {
            topic: GROUP_TOPIC.to_owned(),
            partitions: vec![position],
        }],
    };
    let call = client.commit_offsets(request);
    assert_too_large(&refusal("an oversized commit", call).await);
    assert!(committed(&mut client, group).await.is_empty());
    let mut member = RawMember::new(group, "m");
    member.beat(&mut client).await.unwrap();
    assert_eq!(describe_codes(&mut client, &[group]).await, [None]);
}

/// Inputs for which the contract names the answer: a heartbeat or reset refused for what it
/// says creates no group (DescribeGroups answers GROUP_ID_NOT_FOUND and ListGroups does not
/// list it); a broker's FindCoordinator refuses the ids every coordinator refuses; a negative
/// partition is an unknown partition; an unknown state filter is an invalid request; and a
/// reset to a negative timestamp is an invalid timestamp, not a retriable leader problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_inputs_get_the_answers_the_contract_names() {
    let Some(cluster) = GroupCluster::start("bad-groups-contract", 1, 3).await else {
        return;
    };
    let mut checks = Checks::default();
    let bad_id = Outcome::Answer(Some(ErrorCode::InvalidGroupId));

    // Refused heartbeats and resets on groups nobody has used.
    let mut no_member = RawMember::new("phantom-no-member", "");
    let mut short_session = RawMember::new("phantom-session", "m");
    short_session.session_timeout_ms = 10;
    let mut bad_regex = RawMember::new("phantom-regex", "m");
    bad_regex.topic_regex = "(".to_owned();
    let refused = [
        (&mut no_member, ErrorCode::MemberIdRequired),
        (&mut short_session, ErrorCode::InvalidSessionTimeout),
        (&mut bad_regex, ErrorCode::InvalidRegularExpression),
    ];
    let mut phantoms = Vec::new();
    for (member, want) in refused {
        let (_, mut client) = cluster.coordinator_for(&member.group).await;
        assert_eq!(member.beat(&mut client).await.err(), Some(want));
        phantoms.push(member.group.clone());
    }
    let (_, mut client) = cluster.coordinator_for("phantom-reset").await;
    let latest = Strategy::Latest(pb::ResetToLatest {});
    let refused = reset(&mut client, "phantom-reset", "nope", &[], latest, false).await;
    assert_eq!(refused, Err(ErrorCode::UnknownTopicOrPartition));
    phantoms.push("phantom-reset".to_owned());
    for group in &phantoms {
        let (_, mut client) = cluster.coordinator_for(group).await;
        let got = Outcome::Answer(describe_codes(&mut client, &[group.as_str()]).await[0]);
        let not_found = Outcome::Answer(Some(ErrorCode::GroupIdNotFound));
        checks.check(format!("describing {group}"), got, not_found);
    }
    let call = client.list_groups(pb::ListGroupsRequest::default());
    let listed = answer("list groups", call).await.groups;
    let leaked = listed.iter().filter(|g| phantoms.contains(&g.group_id));
    let leaked = Outcome::Value(i64::try_from(leaked.count()).unwrap());
    checks.check("refused groups that are listed", leaked, Outcome::Value(0));

    // The broker locates groups: it refuses the ids the coordinators refuse.
    let mut broker = connect_coordinator(&cluster.broker.address).await;
    let long_group = filler(256);
    let ids = [
        ("with a space", "has space"),
        ("of 256 bytes", long_group.as_str()),
        ("with a tab", "a\tb"),
    ];
    for (label, group) in ids {
        let request = pb::FindCoordinatorRequest {
            group_ids: vec![group.to_owned()],
        };
        let got = Outcome::of_call(broker.find_coordinator(request), location_code).await;
        checks.check(format!("a broker locating a group id {label}"), got, bad_id);
    }

    // A group with a committed offset and no members.
    let (_, mut client) = cluster.coordinator_for("ledger").await;
    let first = [(GROUP_TOPIC, 0, 1, "")];
    let done = commit_codes(&mut client, "ledger", "", 0, &first).await;
    assert_eq!(done, Ok(vec![None]));
    let wanted = pb::FetchOffsetsTopic {
        topic: GROUP_TOPIC.to_owned(),
        partitions: vec![-1],
    };
    let request = pb::FetchOffsetsRequest {
        group_id: "ledger".to_owned(),
        topics: vec![wanted],
    };
    let got = Outcome::of_call(client.fetch_offsets(request), fetched_code).await;
    let unknown = Outcome::Answer(Some(ErrorCode::UnknownTopicOrPartition));
    checks.check("fetching the offset of partition -1", got, unknown);
    let request = pb::ListGroupsRequest { states: vec![99] };
    let got = Outcome::of_call(client.list_groups(request), listed_code).await;
    let invalid = Outcome::Answer(Some(ErrorCode::InvalidRequest));
    checks.check("listing groups in state 99", got, invalid);
    let past = Strategy::ToTimestampMs(-1);
    let outcome = reset(&mut client, "ledger", GROUP_TOPIC, &[0], past, false).await;
    let got = match outcome {
        Err(error) => Some(error),
        Ok(partitions) => partitions.into_iter().find_map(|(_, r)| r.err()),
    };
    let bad_time = Outcome::Answer(Some(ErrorCode::InvalidTimestamp));
    checks.check("resetting to timestamp -1", Outcome::Answer(got), bad_time);
    let kept = committed(&mut client, "ledger").await.get(&0).copied();
    let kept = Outcome::Value(kept.unwrap_or(-1));
    checks.check("the committed offset", kept, Outcome::Value(1));
    checks.assert_all();
}
