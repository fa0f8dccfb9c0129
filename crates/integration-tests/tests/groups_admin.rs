//! Group administration against a real etcd, a broker and two coordinator processes: list,
//! describe with lag in records and in time, reset offsets by every strategy, delete — and
//! the refusals while the group has members.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::groups::{GROUP_TOPIC, GroupCluster, RawMember, commit, committed};
use strom_proto::common::v1::ErrorCode;
use strom_proto::coordinator::v1 as pb;
use strom_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;
use strom_proto::coordinator::v1::reset_offsets_request::Strategy;

type Client = CoordinatorServiceClient<tonic::transport::Channel>;

const GROUP: &str = "ledger";

fn code(error: Option<&strom_proto::common::v1::Error>) -> Option<ErrorCode> {
    error.map(|e| ErrorCode::try_from(e.code).unwrap())
}

async fn describe(client: &mut Client, group: &str) -> pb::GroupDescription {
    let response = client
        .describe_groups(pb::DescribeGroupsRequest {
            group_ids: vec![group.to_owned()],
            include_lag: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(response.error.is_none(), "{response:?}");
    response.groups.into_iter().next().unwrap()
}

async fn listed(client: &mut Client, states: &[pb::GroupState]) -> BTreeMap<String, i32> {
    let response = client
        .list_groups(pb::ListGroupsRequest {
            states: states.iter().map(|s| *s as i32).collect(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(response.error.is_none(), "{response:?}");
    response
        .groups
        .into_iter()
        .map(|g| (g.group_id, g.state))
        .collect()
}

/// Resets every partition of the test topic; returns the request error or the new offsets.
async fn reset(
    client: &mut Client,
    partitions: &[i32],
    strategy: Option<Strategy>,
    dry_run: bool,
) -> Result<BTreeMap<i32, Result<i64, ErrorCode>>, ErrorCode> {
    let response = client
        .reset_offsets(pb::ResetOffsetsRequest {
            group_id: GROUP.to_owned(),
            topic: GROUP_TOPIC.to_owned(),
            partitions: partitions.to_vec(),
            strategy,
            dry_run,
        })
        .await
        .unwrap()
        .into_inner();
    if let Some(error) = code(response.error.as_ref()) {
        return Err(error);
    }
    Ok(response
        .partitions
        .into_iter()
        .map(|p| {
            let outcome = match code(p.error.as_ref()) {
                Some(error) => Err(error),
                None => Ok(p.new_offset),
            };
            (p.partition, outcome)
        })
        .collect())
}

/// Deletes the group; returns the group's error code, if any.
async fn delete(client: &mut Client) -> Option<ErrorCode> {
    let deleted = client
        .delete_groups(pb::DeleteGroupsRequest {
            group_ids: vec![GROUP.to_owned()],
        })
        .await
        .unwrap()
        .into_inner();
    code(deleted.groups[0].error.as_ref())
}

fn all(offset: i64) -> BTreeMap<i32, Result<i64, ErrorCode>> {
    (0..3).map(|p| (p, Ok(offset))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_listed_described_reset_and_deleted() {
    let Some(cluster) = GroupCluster::start("groups-admin", 3, 10).await else {
        return;
    };
    let (_, mut client) = cluster.coordinator_for(GROUP).await;
    let mut member = RawMember::new(GROUP, "m");
    while member.count() < 3 {
        member.beat(&mut client).await.unwrap();
    }
    let epoch = member.epoch;
    let outcome = commit(&mut client, GROUP, "m", epoch, &[(0, 4), (1, 10)], "")
        .await
        .unwrap();
    assert_eq!(outcome, vec![None, None]);

    // Listing, with and without a state filter.
    assert_eq!(
        listed(&mut client, &[]).await.get(GROUP),
        Some(&(pb::GroupState::Stable as i32))
    );
    assert!(
        !listed(&mut client, &[pb::GroupState::Empty])
            .await
            .contains_key(GROUP)
    );

    // Lag in records and in time, per partition; p2 has no committed offset and so no lag.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let group = describe(&mut client, GROUP).await;
    assert!(group.error.is_none(), "{group:?}");
    assert_eq!(group.members.len(), 1);
    assert_eq!(group.members[0].member_epoch, epoch);
    let rows: BTreeMap<i32, &pb::GroupPartitionOffset> = group
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|row| (row.partition, row))
        .collect();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[&0].committed_offset, Some(4));
    assert_eq!(rows[&0].high_watermark, Some(10));
    assert_eq!(rows[&0].lag_records, Some(6));
    assert!(rows[&0].lag_ms.is_some_and(|ms| ms > 0), "{:?}", rows[&0]);
    assert_eq!(rows[&1].lag_records, Some(0));
    assert_eq!(rows[&1].lag_ms, Some(0));
    assert_eq!(rows[&2].committed_offset, None);
    assert_eq!(rows[&2].lag_records, None);
    assert!(rows.values().all(|row| row.member_id == "m"));

    // While the member is there: a dry run reports, a real reset and a delete are refused.
    let dry = reset(
        &mut client,
        &[],
        Some(Strategy::Earliest(pb::ResetToEarliest {})),
        true,
    )
    .await;
    assert_eq!(dry, Ok(all(0)));
    let refused = reset(
        &mut client,
        &[],
        Some(Strategy::Earliest(pb::ResetToEarliest {})),
        false,
    );
    assert_eq!(refused.await, Err(ErrorCode::NonEmptyGroup));
    assert_eq!(delete(&mut client).await, Some(ErrorCode::NonEmptyGroup));
    let stored = committed(&mut client, GROUP).await;
    assert_eq!(stored, BTreeMap::from([(0, 4), (1, 10)]), "nothing moved");

    let left = client
        .leave_group(pb::LeaveGroupRequest {
            group_id: GROUP.to_owned(),
            member_id: "m".to_owned(),
            instance_id: String::new(),
            reason: "test".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(left.error.is_none(), "{left:?}");
    assert_eq!(
        describe(&mut client, GROUP).await.state,
        pb::GroupState::Empty as i32
    );

    // Every strategy, each checked against what FetchOffsets then returns.
    let strategies: Vec<(Option<Strategy>, BTreeMap<i32, i64>)> = vec![
        (
            Some(Strategy::Earliest(pb::ResetToEarliest {})),
            [(0, 0), (1, 0), (2, 0)].into(),
        ),
        (Some(Strategy::ShiftBy(3)), [(0, 3), (1, 3), (2, 3)].into()),
        (
            Some(Strategy::Latest(pb::ResetToLatest {})),
            [(0, 10), (1, 10), (2, 10)].into(),
        ),
        (Some(Strategy::ShiftBy(-4)), [(0, 6), (1, 6), (2, 6)].into()),
        (Some(Strategy::ToOffset(2)), [(0, 2), (1, 2), (2, 2)].into()),
        // Clamped to the partition's range.
        (
            Some(Strategy::ToOffset(99)),
            [(0, 10), (1, 10), (2, 10)].into(),
        ),
        (
            Some(Strategy::ShiftBy(-50)),
            [(0, 0), (1, 0), (2, 0)].into(),
        ),
    ];
    for (strategy, want) in strategies {
        let got = reset(&mut client, &[], strategy, false).await;
        let want_results: BTreeMap<i32, Result<i64, ErrorCode>> =
            want.iter().map(|(p, o)| (*p, Ok(*o))).collect();
        assert_eq!(got, Ok(want_results), "{strategy:?}");
        assert_eq!(committed(&mut client, GROUP).await, want, "{strategy:?}");
    }

    // By timestamp: the first record appended at or after the instant, per partition.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let instant = common::data::now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    cluster.produce(3, 10..15).await;
    let by_time = reset(
        &mut client,
        &[1],
        Some(Strategy::ToTimestampMs(instant)),
        false,
    )
    .await;
    assert_eq!(by_time, Ok([(1, Ok(10))].into()));
    let future = reset(
        &mut client,
        &[2],
        Some(Strategy::ToTimestampMs(instant + 3_600_000)),
        false,
    )
    .await;
    assert_eq!(
        future,
        Ok([(2, Ok(15))].into()),
        "past every record: the end"
    );

    // Bad requests change nothing.
    let before = committed(&mut client, GROUP).await;
    assert_eq!(
        reset(&mut client, &[], None, false).await,
        Err(ErrorCode::InvalidRequest)
    );
    assert_eq!(
        reset(&mut client, &[7], Some(Strategy::ToOffset(1)), false).await,
        Err(ErrorCode::UnknownTopicOrPartition)
    );
    assert_eq!(committed(&mut client, GROUP).await, before);

    // Delete: gone from list, describe and fetch.
    assert_eq!(delete(&mut client).await, None);
    assert!(!listed(&mut client, &[]).await.contains_key(GROUP));
    let (_, mut client) = cluster.coordinator_for(GROUP).await;
    let gone = describe(&mut client, GROUP).await;
    assert_eq!(
        code(gone.error.as_ref()),
        Some(ErrorCode::GroupIdNotFound),
        "{gone:?}"
    );
    assert!(committed(&mut client, GROUP).await.is_empty());
}
