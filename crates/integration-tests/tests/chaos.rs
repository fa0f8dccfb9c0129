//! Fault scenarios checked against a recorded history (`strom-chaos`): an idempotent acks=all
//! producer writes unique values, a reader follows the partition, faults are injected and
//! healed, a fresh consumer drains the partition from the start, and the checker must find no
//! lost, unseen, duplicated, inconsistent or unexpected value and no read going backward.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::data::{Cluster, TOPIC, leader_of};
use common::wait_for;
use strom_chaos::checker::{Report, check};
use strom_chaos::history::{Fault, History, Op, OpKind, Outcome, Record};
use strom_client::{
    Client, ClientConfig, ConsumerConfig, PartitionConsumer, Producer, ProducerConfig,
    ProducerRecord, StartOffset,
};
use tokio_util::sync::CancellationToken;

/// The broker lease TTL the test cluster runs with.
const LEASE_TTL: Duration = Duration::from_secs(5);

/// A history shared by the workload tasks, timed from the start of the run.
#[derive(Clone)]
struct Recorder {
    start: Instant,
    history: Arc<Mutex<History>>,
}

impl Recorder {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            history: Arc::new(Mutex::new(History::default())),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap()
    }

    fn op(&self, process: u32, invoked_ms: u64, outcome: Outcome, kind: OpKind) {
        let op = Op {
            process,
            invoked_ms,
            completed_ms: self.now(),
            outcome,
            kind,
        };
        self.history.lock().unwrap().ops.push(op);
    }

    fn fault(&self, name: String) -> usize {
        let mut history = self.history.lock().unwrap();
        history.faults.push(Fault {
            name,
            at_ms: self.now(),
            healed_ms: None,
        });
        history.faults.len() - 1
    }

    fn healed(&self, fault: usize) {
        let now = self.now();
        self.history.lock().unwrap().faults[fault].healed_ms = Some(now);
    }

    fn history(&self) -> History {
        self.history.lock().unwrap().clone()
    }
}

fn records(batch: Vec<strom_client::ConsumerRecord>) -> Vec<Record> {
    batch
        .into_iter()
        .map(|r| Record {
            offset: r.offset,
            value: String::from_utf8_lossy(&r.value.unwrap_or_default()).into_owned(),
        })
        .collect()
}

/// Process 1: sends unique values to partition 0 until `stop`, recording each delivery.
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
        let invoked = recorder.now();
        let record = ProducerRecord::new(TOPIC, value.clone()).partition(0);
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
                        partition: 0,
                        value,
                        offset,
                    };
                    recorder.op(1, invoked, outcome, kind);
                });
            }
            Err(_) => {
                let kind = OpKind::Send {
                    partition: 0,
                    value,
                    offset: None,
                };
                recorder.op(1, invoked, Outcome::Fail, kind);
            }
        }
        i += 1;
        if i.is_multiple_of(20) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    producer.flush().await;
    while deliveries.join_next().await.is_some() {}
    Arc::into_inner(producer).unwrap().close().await;
}

/// Process 2: follows partition 0 from the start until `stop`, recording each poll.
async fn follow(client: Client, recorder: Recorder, stop: CancellationToken) {
    let config = ConsumerConfig {
        start: StartOffset::Earliest,
        ..ConsumerConfig::default()
    };
    let mut consumer = PartitionConsumer::new(client, TOPIC, 0, config)
        .await
        .unwrap();
    while !stop.is_cancelled() {
        let invoked = recorder.now();
        let polled = tokio::select! {
            () = stop.cancelled() => break,
            polled = consumer.poll() => polled,
        };
        match polled {
            Ok(batch) => {
                let kind = OpKind::Poll {
                    partition: 0,
                    records: records(batch),
                };
                recorder.op(2, invoked, Outcome::Ok, kind);
            }
            Err(_) => {
                let kind = OpKind::Poll {
                    partition: 0,
                    records: Vec::new(),
                };
                recorder.op(2, invoked, Outcome::Fail, kind);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Reads partition 0 from the start with a fresh consumer up to its high watermark.
async fn drain(client: Client, recorder: &Recorder) {
    let config = ConsumerConfig {
        start: StartOffset::Earliest,
        ..ConsumerConfig::default()
    };
    let mut consumer = PartitionConsumer::new(client, TOPIC, 0, config)
        .await
        .unwrap();
    let invoked = recorder.now();
    let mut all = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let batch = consumer.poll().await.unwrap();
        all.extend(records(batch));
        let end = consumer.high_watermark().unwrap_or(0);
        if consumer.position() >= end && end > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "drain did not reach the end");
    }
    recorder.op(
        99,
        invoked,
        Outcome::Ok,
        OpKind::Drain {
            partition: 0,
            records: all,
        },
    );
}

fn assert_valid(report: &Report) {
    assert!(
        report.is_valid(),
        "{}",
        serde_json::to_string_pretty(report).unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_the_leader_repeatedly_chasing_the_new_one() {
    let Some(mut cluster) = Cluster::start("chaos-kill", 3, &[("min.insync.replicas", "2")]).await
    else {
        return;
    };
    leader_of(&cluster.brokers, None, 3).await;
    let bootstrap: Vec<String> = cluster.brokers.iter().map(|b| b.address.clone()).collect();
    let client = Client::connect(ClientConfig::new(bootstrap)).await.unwrap();
    let recorder = Recorder::new();
    let stop = CancellationToken::new();
    let producer = tokio::spawn(produce(client.clone(), recorder.clone(), stop.clone()));
    let follower = tokio::spawn(follow(client.clone(), recorder.clone(), stop.clone()));

    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let leader = leader_of(&cluster.brokers, None, 3).await;
        let id = cluster.brokers[leader].id;
        let fault = recorder.fault(format!("round {round}: kill -9 the leader, broker {id}"));
        cluster.brokers[leader].kill9().await;
        let next = leader_of(&cluster.brokers, Some(leader), 2).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        cluster.brokers[leader].start();
        wait_for(
            Duration::from_secs(30),
            "the killed broker back in the ISR",
            || async {
                let metadata = cluster.brokers[next].metadata().await?;
                let isr = metadata
                    .topics
                    .iter()
                    .find(|t| t.topic == TOPIC)?
                    .partitions[0]
                    .isr
                    .len();
                (isr == 3).then_some(())
            },
        )
        .await;
        recorder.healed(fault);
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.cancel();
    producer.await.unwrap();
    follower.await.unwrap();
    drain(client, &recorder).await;

    let report = check(&recorder.history());
    assert_valid(&report);
    assert!(report.acknowledged > 1000, "{}", report.acknowledged);
    for window in &report.unavailability {
        let send = window.send_ms.unwrap();
        println!("{}: produce unavailable for {send} ms", window.fault);
        // The controller moves leadership once the killed broker's lease expires.
        assert!(
            send <= u64::try_from((LEASE_TTL * 2).as_millis()).unwrap(),
            "{} left produce unavailable for {send} ms",
            window.fault
        );
    }
    cluster.controller.stop().await;
}
