//! The workload every scenario runs: an idempotent acks=all producer writing unique values
//! round-robin over the partitions, and group members (processes) reading and committing;
//! then the final drain of every partition and the check.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use strom_chaos::checker::{Report, check};
use strom_chaos::history::{Op, OpKind, Outcome, Record};
use strom_client::{
    Client, ClientConfig, ConsumerConfig, PartitionConsumer, Producer, ProducerConfig,
    ProducerRecord, StartOffset,
};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::cluster::{ChaosCluster, PARTITIONS, TOPIC};
use crate::common::members::MemberProc;
use crate::recorder::Recorder;

/// The consumer group the members form.
pub const GROUP: &str = "chaos-readers";
/// The producer's process number in the history; members are numbered from 10.
const PRODUCER: u32 = 1;
const FIRST_MEMBER: u32 = 10;
/// The drain's process number.
const DRAIN: u32 = 99;

/// A running workload.
pub struct Workload {
    pub recorder: Recorder,
    pub client: Client,
    stop: CancellationToken,
    producer: JoinHandle<()>,
    /// The live group members; `retired` keeps the ones replaced, for their events.
    pub members: Vec<MemberProc>,
    retired: Vec<MemberProc>,
    bootstrap: String,
    flags: Vec<String>,
    /// Timings a scenario measured itself (e.g. a controller takeover), in milliseconds.
    measurements: Vec<(String, u64)>,
}

impl Workload {
    /// Starts the producer and `members` group members against `cluster`.
    pub async fn start(cluster: &ChaosCluster, members: usize) -> Self {
        Self::start_with(cluster, members, &[]).await
    }

    /// As [`start`](Self::start), with `flags` for every member (e.g. `--process-ms 100`).
    pub async fn start_with(cluster: &ChaosCluster, members: usize, flags: &[&str]) -> Self {
        let recorder = Recorder::new();
        let client = Client::connect(ClientConfig::new(cluster.bootstrap()))
            .await
            .unwrap();
        let stop = CancellationToken::new();
        let producer = tokio::spawn(produce(client.clone(), recorder.clone(), stop.clone()));
        let bootstrap = cluster.bootstrap().join(",");
        let flags: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
        let members = (0..members)
            .map(|i| spawn_member(&bootstrap, i, &flags))
            .collect();
        Self {
            recorder,
            client,
            stop,
            producer,
            members,
            retired: Vec::new(),
            bootstrap,
            flags,
            measurements: Vec::new(),
        }
    }

    /// Replaces member `index` (killed or exited) with a new process under a new member id.
    pub fn restart_member(&mut self, index: usize) {
        let name = self.retired.len() + self.members.len();
        let fresh = spawn_member(&self.bootstrap, name, &self.flags);
        let old = std::mem::replace(&mut self.members[index], fresh);
        self.retired.push(old);
    }

    /// Keeps a timing the scenario measured, for the report.
    pub fn measure(&mut self, name: &str, since: Instant) {
        let ms = u64::try_from(since.elapsed().as_millis()).unwrap();
        println!("{:>7} ms  {name}: {ms} ms", self.recorder.now());
        self.measurements.push((name.to_owned(), ms));
    }

    /// A timing kept with [`Workload::measure`].
    pub fn measurement(&self, name: &str) -> Option<u64> {
        self.measurements
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, ms)| *ms)
    }

    /// Stops the workload, drains every partition with a fresh consumer, checks the history
    /// and fails the test on any violation. The history and the report are written under
    /// `$STROM_CHAOS_OUT` when it is set.
    pub async fn finish(mut self, cluster: &ChaosCluster, scenario: &str) -> Report {
        // Let the members catch up with the last writes before they stop.
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.stop.cancel();
        self.producer.await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        for member in &mut self.members {
            member.kill9().await;
        }
        let start = self.recorder.clone();
        for (index, member) in self.retired.iter().chain(&self.members).enumerate() {
            let process = FIRST_MEMBER + u32::try_from(index).unwrap();
            for op in member_ops(member, process, &start) {
                self.recorder.push(op);
            }
        }
        for partition in 0..PARTITIONS {
            let start = cluster.log_start(partition).await;
            drain(self.client.clone(), &self.recorder, partition, start).await;
        }
        let history = self.recorder.history();
        let report = check(&history);
        save(scenario, &history, &report, &self.measurements);
        println!(
            "{scenario}: attempted {}, acknowledged {}, violations {}",
            report.attempted,
            report.acknowledged,
            report.violations()
        );
        for window in &report.unavailability {
            println!(
                "  {}: produce {:?} ms, read {:?} ms, assign {:?} ms",
                window.fault, window.send_ms, window.read_ms, window.assign_ms
            );
        }
        assert!(
            report.is_valid(),
            "{}",
            serde_json::to_string_pretty(&report).unwrap()
        );
        assert!(report.acknowledged > 500, "{}", report.acknowledged);
        report
    }
}

fn spawn_member(bootstrap: &str, number: usize, extra: &[String]) -> MemberProc {
    let name = format!("member-{number}");
    let mut flags = vec![
        "--commit",
        "poll",
        "--session-timeout-ms",
        "3000",
        "--max-poll-records",
        "200",
    ];
    flags.extend(extra.iter().map(String::as_str));
    MemberProc::spawn_on(&name, bootstrap, GROUP, TOPIC, &flags)
}

/// Writes the history and the report under `$STROM_CHAOS_OUT`, if set.
fn save(
    scenario: &str,
    history: &strom_chaos::history::History,
    report: &Report,
    measurements: &[(String, u64)],
) {
    let Some(dir) = std::env::var_os("STROM_CHAOS_OUT") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let lines = history.to_json_lines().unwrap();
    std::fs::write(dir.join(format!("{scenario}.history.jsonl")), lines).unwrap();
    let mut summary = serde_json::to_value(report).unwrap();
    summary["scenario"] = Value::from(scenario);
    summary["violations"] = Value::from(report.violations());
    summary["measurements"] = measurements
        .iter()
        .map(|(name, ms)| (name.clone(), Value::from(*ms)))
        .collect::<serde_json::Map<_, _>>()
        .into();
    let text = serde_json::to_string_pretty(&summary).unwrap();
    std::fs::write(dir.join(format!("{scenario}.report.json")), text).unwrap();
}

/// Sends unique values round-robin over the partitions until `stop`, recording each delivery.
async fn produce(client: Client, recorder: Recorder, stop: CancellationToken) {
    let config = ProducerConfig {
        linger: Duration::from_millis(2),
        request_timeout: Duration::from_secs(10),
        ..ProducerConfig::default()
    };
    let producer = Arc::new(Producer::new(client, config).unwrap());
    let mut deliveries = tokio::task::JoinSet::new();
    let mut i = 0u64;
    while !stop.is_cancelled() {
        let value = format!("v{i:07}");
        let partition = i32::try_from(i % PARTITIONS as u64).unwrap();
        let invoked = recorder.now();
        let record = ProducerRecord::new(TOPIC, value.clone()).partition(partition);
        match producer.send(record).await {
            Ok(delivery) => {
                let recorder = recorder.clone();
                deliveries.spawn(async move {
                    let (outcome, offset) = match delivery.await {
                        Ok(meta) if meta.offset >= 0 => (Outcome::Ok, Some(meta.offset)),
                        Ok(_) => (Outcome::Ok, None),
                        // A delivery error after retries: the write may have landed.
                        Err(_) => (Outcome::Unknown, None),
                    };
                    let kind = OpKind::Send {
                        partition,
                        value,
                        offset,
                    };
                    recorder.op(PRODUCER, invoked, outcome, kind);
                });
            }
            Err(_) => {
                let kind = OpKind::Send {
                    partition,
                    value,
                    offset: None,
                };
                recorder.op(PRODUCER, invoked, Outcome::Fail, kind);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        i += 1;
        if i.is_multiple_of(20) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    producer.flush().await;
    while deliveries.join_next().await.is_some() {}
    if let Some(producer) = Arc::into_inner(producer) {
        producer.close().await;
    }
}

/// The history operations of one member's events: polls, accepted commits and assignments.
fn member_ops(member: &MemberProc, process: u32, recorder: &Recorder) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut committing = 0;
    for event in member.events() {
        let at = recorder.ms(event.at.into_std());
        if event.kind() == "committing" {
            committing = at;
            continue;
        }
        let invoked_ms = if event.kind() == "committed" {
            committing
        } else {
            at
        };
        let kind = match event.kind() {
            "records" => {
                let partition = i32::try_from(event.value["partition"].as_i64().unwrap()).unwrap();
                let offsets = event.value["offsets"].as_array().unwrap();
                let values = event.value["values"].as_array().unwrap();
                let records = offsets
                    .iter()
                    .zip(values)
                    .map(|(offset, value)| Record {
                        offset: offset.as_i64().unwrap(),
                        value: value.as_str().unwrap().to_owned(),
                    })
                    .collect();
                vec![OpKind::Poll { partition, records }]
            }
            "committed" => event.value["offsets"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(partition, offset)| OpKind::Commit {
                    group: GROUP.to_owned(),
                    partition: partition.parse().unwrap(),
                    offset: offset.as_i64().unwrap(),
                })
                .collect(),
            "owned" if event.value["epoch"].as_i64() > Some(0) => {
                let partitions = event.value["partitions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| i32::try_from(p.as_i64().unwrap()).unwrap())
                    .collect();
                vec![OpKind::Assign {
                    group: GROUP.to_owned(),
                    member: event.value["member_id"].as_str().unwrap().to_owned(),
                    epoch: i32::try_from(event.value["epoch"].as_i64().unwrap()).unwrap(),
                    partitions,
                }]
            }
            _ => Vec::new(),
        };
        ops.extend(kind.into_iter().map(|kind| Op {
            process,
            invoked_ms,
            completed_ms: at,
            outcome: Outcome::Ok,
            kind,
        }));
    }
    ops
}

/// Reads `partition` from its start (`start_offset`, the log start) with a fresh consumer up
/// to its high watermark.
async fn drain(client: Client, recorder: &Recorder, partition: i32, start_offset: i64) {
    let config = ConsumerConfig {
        start: StartOffset::Earliest,
        ..ConsumerConfig::default()
    };
    let mut consumer = PartitionConsumer::new(client, TOPIC, partition, config)
        .await
        .unwrap();
    let invoked = recorder.now();
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            Instant::now() < deadline,
            "the drain of partition {partition} did not reach the end"
        );
        let batch = match consumer.poll().await {
            Ok(batch) => batch,
            Err(error) => {
                println!("drain of partition {partition}: {error}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        records.extend(batch.into_iter().map(|r| Record {
            offset: r.offset,
            value: String::from_utf8_lossy(&r.value.unwrap_or_default()).into_owned(),
        }));
        let end = consumer.high_watermark().unwrap_or(0);
        if consumer.position() >= end && end > 0 {
            break;
        }
    }
    let kind = OpKind::Drain {
        partition,
        start_offset,
        records,
    };
    recorder.op(DRAIN, invoked, Outcome::Ok, kind);
}
