//! The scenarios, by what they break. Long ones are `#[ignore]`d in `make test` and run by
//! `make chaos`.

mod brokers;
mod control;
mod groups;
mod network;
mod storage;

use std::time::Duration;

use strom_chaos::checker::Report;

use crate::cluster::{ChaosCluster, LEASE_TTL, REPLICAS};
use crate::recorder::Recorder;
use crate::workload::Workload;

/// How long the workload runs before the first fault, and between faults.
const WARM_UP: Duration = Duration::from_secs(2);

/// The bound one run must stay within for producing to a partition whose leader was killed:
/// the lease must expire before the controller moves leadership. (The acceptance bound, lease
/// TTL + 2 s, applies to the median of runs, which `make chaos` reports.)
const FAILOVER_LIMIT: Duration = Duration::from_secs(LEASE_TTL.as_secs() * 2);

/// Starts the cluster (with topic `configs`) and the workload with `members` group members.
async fn start(
    name: &str,
    configs: &[(&str, &str)],
    members: usize,
) -> Option<(ChaosCluster, Workload)> {
    let cluster = ChaosCluster::start(name, configs).await?;
    let workload = Workload::start(&cluster, members).await;
    tokio::time::sleep(WARM_UP).await;
    Some((cluster, workload))
}

/// Fails when producing to a fault's partition stayed unavailable past `limit`, for every
/// fault whose name contains `which`.
fn assert_produce_within(report: &Report, which: &str, limit: Duration) {
    let limit_ms = u64::try_from(limit.as_millis()).unwrap();
    for window in report
        .unavailability
        .iter()
        .filter(|w| w.fault.contains(which))
    {
        let send = window.send_ms.expect("produce resumed after the fault");
        assert!(
            send <= limit_ms,
            "{}: produce unavailable for {send} ms",
            window.fault
        );
    }
}

/// kill -9 the leader of `partition`, wait for a new one, restart the killed broker and wait
/// until every partition is fully replicated again.
async fn kill_leader(cluster: &mut ChaosCluster, recorder: &Recorder, partition: i32) {
    let leader = cluster.leader(partition, None, REPLICAS).await;
    let id = cluster.brokers[leader].id;
    let fault = recorder.fault_on(
        partition,
        format!("kill -9 the leader of partition {partition} (broker {id})"),
    );
    cluster.brokers[leader].kill9().await;
    cluster.leader(partition, Some(leader), 2).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.brokers[leader].start();
    cluster.wait_healthy().await;
    recorder.healed(fault);
}
