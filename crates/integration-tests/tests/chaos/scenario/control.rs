//! Control-plane faults: the active controller paused or killed, etcd restarted. The data
//! plane keeps serving meanwhile; a leader killed under the new controller must still fail
//! over in time.

use std::time::{Duration, Instant};

use super::{FAILOVER_LIMIT, assert_produce_within, kill_leader, start};
use crate::cluster::{ChaosCluster, LEASE_TTL, SETTLE};
use crate::common::wait_for;
use crate::workload::Workload;

/// How a scenario takes the active controller out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outage {
    Pause,
    Kill,
}

/// Takes the active controller out, measures the standby's takeover, kills a partition
/// leader under the new controller, then brings the old controller back: it must stay a
/// standby.
async fn controller_outage(
    cluster: &mut ChaosCluster,
    workload: &mut Workload,
    outage: Outage,
) -> usize {
    let recorder = workload.recorder.clone();
    let (active, epoch) = cluster.active_controller().await;
    let id = cluster.controllers[active].id;
    let standby = 1 - active;
    let name = match outage {
        Outage::Pause => format!("SIGSTOP the active controller {id} past its lease"),
        Outage::Kill => format!("kill -9 the active controller {id}"),
    };
    let fault = recorder.fault(name);
    let since = Instant::now();
    match outage {
        Outage::Pause => cluster.controllers[active].signal("STOP"),
        Outage::Kill => cluster.controllers[active].kill9().await,
    }
    wait_for(SETTLE, "the standby controller to take over", || async {
        let view = cluster.controllers[standby].describe().await.ok()?;
        (view.controller?.controller_epoch > epoch).then_some(())
    })
    .await;
    workload.measure("controller takeover", since);
    kill_leader(cluster, &recorder, 0).await;
    match outage {
        Outage::Pause => cluster.controllers[active].signal("CONT"),
        Outage::Kill => cluster.controllers[active].respawn(),
    }
    // The old controller's session is gone: it must come back as a standby.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (now_active, _) = cluster.active_controller().await;
    assert_eq!(now_active, standby, "the old controller took over again");
    cluster.wait_healthy().await;
    recorder.healed(fault);
    standby
}

fn assert_takeover_within(measured: u64, limit: Duration) {
    let limit_ms = u64::try_from(limit.as_millis()).unwrap();
    assert!(
        measured <= limit_ms,
        "controller takeover took {measured} ms"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "chaos scenario: make chaos"]
async fn pause_the_active_controller() {
    let Some((mut cluster, mut workload)) = start("chaos-pause-controller", &[], 2).await else {
        return;
    };
    controller_outage(&mut cluster, &mut workload, Outage::Pause).await;
    let takeover = workload.measurement("controller takeover").unwrap();
    let report = workload
        .finish(&cluster, "pause_the_active_controller")
        .await;
    assert_takeover_within(takeover, FAILOVER_LIMIT);
    assert_produce_within(&report, "kill -9 the leader", FAILOVER_LIMIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "chaos scenario: make chaos"]
async fn kill_the_active_controller() {
    let Some((mut cluster, mut workload)) = start("chaos-kill-controller", &[], 2).await else {
        return;
    };
    controller_outage(&mut cluster, &mut workload, Outage::Kill).await;
    let takeover = workload.measurement("controller takeover").unwrap();
    let report = workload
        .finish(&cluster, "kill_the_active_controller")
        .await;
    assert_takeover_within(takeover, FAILOVER_LIMIT);
    assert_produce_within(&report, "kill -9 the leader", FAILOVER_LIMIT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "chaos scenario: make chaos"]
async fn restart_etcd() {
    let Some((mut cluster, workload)) = start("chaos-restart-etcd", &[], 2).await else {
        return;
    };
    let recorder = workload.recorder.clone();
    let fault = recorder.fault("stop etcd for 3 s, then start it again");
    cluster.etcd.stop();
    // Shorter than the lease TTL: leases survive, nothing fails over.
    tokio::time::sleep(LEASE_TTL - Duration::from_secs(2)).await;
    cluster.etcd.restart().await;
    cluster.active_controller().await;
    cluster.wait_healthy().await;
    recorder.healed(fault);
    tokio::time::sleep(Duration::from_secs(2)).await;
    workload.finish(&cluster, "restart_etcd").await;
}
