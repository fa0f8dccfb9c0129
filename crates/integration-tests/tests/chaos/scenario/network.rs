//! Network partitions, on a private network of namespaces ([`Network`]): the leader cut off
//! from its followers only, and the leader cut off from every other service while clients
//! still reach it.

use std::time::Duration;

use strom_chaos::history::OpKind;

use super::WARM_UP;
use crate::cluster::{ChaosCluster, LEASE_TTL, PARTITIONS, REPLICAS};
use crate::network::Network;
use crate::recorder::Recorder;
use crate::workload::Workload;

/// How long a partition lasts.
const HOLD: Duration = Duration::from_secs(10);

/// The cluster and workload on a fresh [`Network`].
async fn start_partitioned(name: &str) -> Option<(Network, ChaosCluster, Workload)> {
    let network = Network::create().unwrap_or_else(|why| {
        panic!("network partitions need network namespaces (root, iproute2, iptables): {why}")
    });
    let cluster = ChaosCluster::start_in(name, &[], Some(&network)).await?;
    let workload = Workload::start(&cluster, 2).await;
    tokio::time::sleep(WARM_UP).await;
    Some((network, cluster, workload))
}

/// The partitions broker `index` leads now.
async fn led_by(cluster: &ChaosCluster, index: usize) -> Vec<i32> {
    let states = cluster.partitions().await;
    (0..PARTITIONS)
        .filter(|p| {
            states[*p as usize]
                .as_ref()
                .is_some_and(|s| s.leader == Some(index))
        })
        .collect()
}

/// Fails when a write to one of `partitions` was acknowledged between the two times.
fn assert_none_acked(recorder: &Recorder, partitions: &[i32], from_ms: u64, to_ms: u64) {
    let acked: Vec<_> = recorder
        .acked_between(from_ms, to_ms)
        .into_iter()
        .filter(|op| matches!(&op.kind, OpKind::Send { partition, .. } if partitions.contains(partition)))
        .collect();
    assert!(
        acked.is_empty(),
        "{} writes to {partitions:?} acknowledged without min.insync.replicas: {:?}",
        acked.len(),
        acked.first()
    );
}

/// A cut made by [`cut_the_leader`].
struct Cut {
    /// The index of the cut-off leader.
    leader: usize,
    /// The partitions it led.
    led: Vec<i32>,
    /// The recorded fault.
    fault: usize,
    /// When every rule was in place.
    at_ms: u64,
}

/// Cuts the leader of partition 0 off from its followers, and from etcd, the controllers and
/// the coordinators too when `core`; the fault (named "off from `from`") counts from when
/// every rule is in place.
async fn cut_the_leader(
    network: &Network,
    cluster: &ChaosCluster,
    recorder: &Recorder,
    core: bool,
    from: &str,
) -> Cut {
    let leader = cluster.leader(0, None, REPLICAS).await;
    let led = led_by(cluster, leader).await;
    let mut peers: Vec<_> = (0..REPLICAS)
        .filter(|b| *b != leader)
        .map(|b| network.broker(b))
        .collect();
    if core {
        peers.push(network.core());
    }
    network.cut(leader, &peers);
    let id = cluster.brokers[leader].id;
    let fault = recorder.fault_on(
        0,
        format!("cut the leader of partition 0 (broker {id}) off from {from}"),
    );
    Cut {
        leader,
        led,
        fault,
        at_ms: recorder.now(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "chaos scenario: make chaos"]
async fn partition_the_leader_from_its_followers() {
    let Some((network, cluster, workload)) = start_partitioned("chaos-partition").await else {
        return;
    };
    let recorder = workload.recorder.clone();
    let Cut {
        leader,
        led,
        fault,
        at_ms: cut,
    } = cut_the_leader(&network, &cluster, &recorder, false, "its followers").await;
    tokio::time::sleep(HOLD).await;
    // The followers stop fetching, so the leader shrinks the ISR to itself (after the 2 s
    // replica lag time) and then refuses acks=all writes below min.insync.replicas; writes
    // still waiting for the followers when the ISR shrank must not be acknowledged either.
    assert_none_acked(&recorder, &led, cut + 1000, recorder.now());
    network.heal(leader);
    cluster.wait_healthy().await;
    recorder.healed(fault);
    workload
        .finish(&cluster, "partition_the_leader_from_its_followers")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "chaos scenario: make chaos"]
async fn isolate_the_leader_from_the_cluster() {
    let Some((network, cluster, workload)) = start_partitioned("chaos-isolate").await else {
        return;
    };
    let recorder = workload.recorder.clone();
    let from = "the cluster, not from clients";
    let Cut {
        leader,
        led,
        fault,
        at_ms: cut,
    } = cut_the_leader(&network, &cluster, &recorder, true, from).await;
    // Its lease lapses and the controller moves leadership to a follower. The isolated broker
    // could not shrink the ISR (the controller is out of reach) and nobody fetches from it,
    // so it must acknowledge nothing; the new leaders serve writes again.
    let moved = cluster.leader(0, Some(leader), 2).await;
    println!("broker {} leads partition 0 now", cluster.brokers[moved].id);
    tokio::time::sleep(HOLD.saturating_sub(LEASE_TTL)).await;
    let acked = recorder
        .acked_between(cut + 1000, recorder.now())
        .into_iter()
        .filter(|op| matches!(&op.kind, OpKind::Send { partition, .. } if led.contains(partition)))
        .count();
    println!("{acked} writes to {led:?} acknowledged during the isolation (by the new leaders)");
    network.heal(leader);
    cluster.wait_healthy().await;
    recorder.healed(fault);
    let report = workload
        .finish(&cluster, "isolate_the_leader_from_the_cluster")
        .await;
    // Clients stop asking the isolated broker once its lease lapsed: it no longer answers
    // Metadata, nor names itself in redirects.
    super::assert_produce_within(&report, "off from the cluster", super::FAILOVER_LIMIT);
}
