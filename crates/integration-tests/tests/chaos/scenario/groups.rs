//! Consumer-group faults: the group's coordinator killed, a member killed or paused past its
//! session. Ownership must never be doubled at one epoch and commits must never go backward.

use std::time::Duration;

use strom_proto::coordinator::v1 as pb;
use strom_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;

use super::start;
use crate::cluster::{ChaosCluster, PARTITIONS, SETTLE};
use crate::common::wait_for;
use crate::workload::{GROUP, Workload};

/// The index in `coordinators` of the one that owns the group now, once it is not `not`
/// (a killed owner stays registered until its lease expires).
async fn group_coordinator(cluster: &ChaosCluster, not: Option<usize>) -> usize {
    wait_for(SETTLE, "the group's coordinator", || async {
        let address = format!("http://{}", cluster.brokers[0].address);
        let mut client = CoordinatorServiceClient::connect(address).await.ok()?;
        let request = pb::FindCoordinatorRequest {
            group_ids: vec![GROUP.to_owned()],
        };
        let found = client.find_coordinator(request).await.ok()?.into_inner();
        let location = found.coordinators.into_iter().next()?;
        if location.error.is_some() {
            return None;
        }
        cluster
            .coordinators
            .iter()
            .position(|c| c.id == location.coordinator_id)
            .filter(|index| Some(*index) != not)
    })
    .await
}

/// Waits until every partition is owned by some member of the workload.
async fn wait_all_owned(workload: &Workload) {
    wait_for(SETTLE, "every partition owned by a member", || async {
        let owned: usize = workload.members.iter().map(|m| m.owned().len()).sum();
        (owned == PARTITIONS as usize).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "chaos scenario: make chaos"]
async fn kill_the_coordinator() {
    let Some((mut cluster, workload)) = start("chaos-kill-coordinator", &[], 2).await else {
        return;
    };
    wait_all_owned(&workload).await;
    let recorder = workload.recorder.clone();
    let owner = group_coordinator(&cluster, None).await;
    let id = cluster.coordinators[owner].id;
    let fault = recorder.fault(format!("kill -9 the group's coordinator {id}"));
    cluster.coordinators[owner].kill9().await;
    group_coordinator(&cluster, Some(owner)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.coordinators[owner].start();
    wait_all_owned(&workload).await;
    recorder.healed(fault);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = workload.finish(&cluster, "kill_the_coordinator").await;
    let window = &report.unavailability[0];
    assert!(
        window.commit_ms.is_some(),
        "no commit after the coordinator died"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "chaos scenario: make chaos"]
async fn kill_a_group_member() {
    let Some((cluster, mut workload)) = start("chaos-kill-member", &[], 2).await else {
        return;
    };
    wait_all_owned(&workload).await;
    let recorder = workload.recorder.clone();
    let fault = recorder.fault("kill -9 group member 0");
    workload.members[0].kill9().await;
    // Its session (3 s) expires and the survivor takes every partition.
    workload.members[1]
        .wait_owned(PARTITIONS as usize, SETTLE)
        .await;
    workload.restart_member(0);
    wait_for(SETTLE, "the restarted member to own partitions", || async {
        (!workload.members[0].owned().is_empty()).then_some(())
    })
    .await;
    wait_all_owned(&workload).await;
    recorder.healed(fault);
    let report = workload.finish(&cluster, "kill_a_group_member").await;
    assert!(report.unavailability[0].assign_ms.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_a_group_member_past_its_session() {
    let Some((cluster, workload)) = start("chaos-pause-member", &[], 2).await else {
        return;
    };
    wait_all_owned(&workload).await;
    let recorder = workload.recorder.clone();
    let fault = recorder.fault("SIGSTOP group member 0 for 6 s (session 3 s)");
    workload.members[0].signal("STOP");
    workload.members[1]
        .wait_owned(PARTITIONS as usize, SETTLE)
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let resumed = tokio::time::Instant::now();
    workload.members[0].signal("CONT");
    // The resumed member finds itself fenced and rejoins; its stale commits are refused.
    workload.members[0]
        .wait_event("assigned", resumed, SETTLE)
        .await;
    wait_all_owned(&workload).await;
    recorder.healed(fault);
    workload
        .finish(&cluster, "pause_a_group_member_past_its_session")
        .await;
}
