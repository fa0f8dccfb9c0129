//! Storage faults: a broker killed mid-append with the tail of its active segment cut, a bit
//! flipped in a follower's sealed segment, and retention deleting segments under consumers
//! that lag behind.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strom_proto::common::v1::ErrorCode;

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

/// The base offset a segment file is named for.
fn base_offset(file: &Path) -> i64 {
    file.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

/// Flips one bit of `file` at byte `position`.
fn flip_bit(file: &Path, position: u64) {
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .unwrap();
    let mut byte = [0u8; 1];
    handle.read_exact_at(&mut byte, position).unwrap();
    byte[0] ^= 1 << 3;
    handle.write_all_at(&byte, position).unwrap();
}

/// Fails unless every sealed segment of `partition` on broker `index` holds only batches that
/// pass their CRC check, back to back from the offset the file is named for.
fn assert_sealed_segments_intact(cluster: &ChaosCluster, index: usize, partition: i32) {
    let mut files = segments(cluster, index, partition);
    files.pop();
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let mut next = base_offset(&file);
        for batch in strom_record::batches(&bytes) {
            let (header, _) = batch.unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            assert_eq!(header.base_offset, next, "{}", file.display());
            next = header.next_offset();
        }
    }
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
async fn flip_a_bit_in_a_followers_sealed_segment() {
    let configs = [("segment.bytes", "4096")];
    let Some((mut cluster, mut workload)) = start("chaos-bit-flip", &configs, 2).await else {
        return;
    };
    let recorder = workload.recorder.clone();
    let leader = cluster.leader(0, None, REPLICAS).await;
    let state = cluster.partitions().await[0].clone().unwrap();
    // The first ISR member after the leader, in replica order, is the one the controller
    // makes leader when the leader dies.
    let follower = *state.isr.iter().find(|b| **b != leader).unwrap();
    let id = cluster.brokers[follower].id;
    let sealed = wait_for(SETTLE, "three segments on the follower", || async {
        let files = segments(&cluster, follower, 0);
        (files.len() >= 3).then(|| files[1].clone())
    })
    .await;
    let damaged = base_offset(&sealed);
    let fault = recorder.fault_on(
        0,
        format!("flip a bit in the batch at offset {damaged} of broker {id}'s sealed segment, make it lead"),
    );
    // Byte 70 is inside the first batch's records, which its CRC covers.
    flip_bit(&sealed, 70);
    cluster.brokers[leader].kill9().await;
    let new_leader = cluster.leader(0, Some(leader), 2).await;
    assert_eq!(
        new_leader, follower,
        "the damaged follower did not take over"
    );
    // Read the damaged batch from it: it must refuse rather than serve it, then resign.
    let probed = Instant::now();
    let (code, bytes) = wait_for(SETTLE, "an answer from the damaged leader", || {
        cluster.fetch_at(follower, 0, damaged)
    })
    .await;
    println!("the damaged leader answered {code:?} with {bytes} bytes");
    assert_eq!(bytes, 0, "the damaged batch was served");
    let refused = [ErrorCode::KafkaStorageError, ErrorCode::NotLeaderOrFollower].map(|c| c as i32);
    assert!(code.is_some_and(|c| refused.contains(&c)), "{code:?}");
    let successor = cluster.leader(0, Some(follower), 1).await;
    workload.measure("resign", probed);
    println!(
        "broker {} took over from the damaged replica",
        cluster.brokers[successor].id
    );
    cluster.brokers[leader].start();
    // Healthy means every replica is back in sync: the damaged one cut its log at the damage
    // and fetched the rest again.
    cluster.wait_healthy().await;
    recorder.healed(fault);
    workload
        .finish(&cluster, "flip_a_bit_in_a_followers_sealed_segment")
        .await;
    for index in 0..cluster.brokers.len() {
        assert_sealed_segments_intact(&cluster, index, 0);
    }
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
