//! Storage faults: a broker killed mid-append with the tail of its active segment cut, and
//! retention deleting segments under consumers that lag behind.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{WARM_UP, start};
use crate::cluster::{ChaosCluster, PARTITIONS, REPLICAS, SETTLE, TOPIC};
use crate::common::wait_for;
use crate::workload::Workload;

/// The segment files of `partition` on broker `index`, oldest first.
fn segments(cluster: &ChaosCluster, index: usize, partition: i32) -> Vec<PathBuf> {
    let dir = cluster.brokers[index]
        .data_dir()
        .join("logs")
        .join(format!("{TOPIC}-{partition}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .collect();
    files.sort();
    files
}

/// Cuts `bytes` off the end of `file`; the length it had.
fn cut_tail(file: &Path, bytes: u64) -> u64 {
    let len = std::fs::metadata(file).unwrap().len();
    let handle = std::fs::OpenOptions::new().write(true).open(file).unwrap();
    handle.set_len(len.saturating_sub(bytes)).unwrap();
    len
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "chaos scenario: make chaos"]
async fn kill_a_leader_mid_append_and_cut_its_segment_tail() {
    let Some((mut cluster, workload)) = start("chaos-cut-tail", &[], 2).await else {
        return;
    };
    let recorder = workload.recorder.clone();
    let leader = cluster.leader(0, None, REPLICAS).await;
    let id = cluster.brokers[leader].id;
    let fault = recorder.fault_on(
        0,
        format!("kill -9 the leader of partition 0 (broker {id}) mid-append, cut 100 bytes off its active segment"),
    );
    cluster.brokers[leader].kill9().await;
    let active = segments(&cluster, leader, 0).pop().unwrap();
    let len = cut_tail(&active, 100);
    println!("cut {} from {len} bytes", active.display());
    cluster.leader(0, Some(leader), 2).await;
    cluster.brokers[leader].start();
    cluster.wait_healthy().await;
    // The preferred-leader election (every 2 s) hands partition 0 back to the recovered
    // broker, so the drain reads its log.
    wait_for(
        SETTLE,
        "the recovered broker leading partition 0 again",
        || async {
            let state = cluster.partitions().await[0].clone()?;
            (state.leader == Some(leader) && cluster.serves(leader, 0).await).then_some(())
        },
    )
    .await;
    recorder.healed(fault);
    workload
        .finish(
            &cluster,
            "kill_a_leader_mid_append_and_cut_its_segment_tail",
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "chaos scenario: make chaos"]
async fn retention_deletes_segments_under_lagging_consumers() {
    let configs = [("segment.bytes", "4096"), ("retention.bytes", "16384")];
    let Some(cluster) = ChaosCluster::start("chaos-retention", &configs).await else {
        return;
    };
    // Members that take 100 ms per poll fall behind what retention keeps.
    let workload = Workload::start_with(&cluster, 2, &["--process-ms", "100"]).await;
    tokio::time::sleep(WARM_UP).await;
    let recorder = workload.recorder.clone();
    let fault = recorder.fault("retention deletes segments while members lag behind");
    tokio::time::sleep(Duration::from_secs(12)).await;
    for partition in 0..PARTITIONS {
        let start = cluster.log_start(partition).await;
        assert!(
            start > 0,
            "retention deleted nothing from partition {partition}"
        );
    }
    recorder.healed(fault);
    workload
        .finish(
            &cluster,
            "retention_deletes_segments_under_lagging_consumers",
        )
        .await;
}
