//! Offset-commit throughput and latency through one coordinator.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use strom_proto::coordinator::v1 as pb;
use strom_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::common::groups::{GROUP_TOPIC, GroupCluster, RawMember};
use crate::{Latencies, median, ms, trials};

type Client = CoordinatorServiceClient<tonic::transport::Channel>;

const GROUPS: usize = 16;
const PARTITIONS: i32 = 64;
const RECORDS: usize = 500;
const RUN: Duration = Duration::from_secs(10);
/// The paced run's target, in committed partition offsets per second.
const PACED_RATE: f64 = 20_000.0;

/// One run's figures.
pub struct Figures {
    pub rate: f64,
    pub p99_ms: f64,
}

/// Medians over the trials.
pub struct Summary {
    pub saturated: Figures,
    pub paced: Figures,
    pub paced_target: f64,
}

/// A member of its own group that owns every partition of the topic, kept alive by a
/// heartbeat task; commits read its epoch.
struct Committer {
    group: String,
    epoch: Arc<AtomicI32>,
}

async fn join(
    client: &mut Client,
    group: &str,
    tasks: &mut JoinSet<()>,
    stop: &CancellationToken,
) -> Committer {
    let mut member = RawMember::new(group, "m");
    while member.count() < PARTITIONS as usize {
        member.beat(client).await.unwrap();
    }
    let epoch = Arc::new(AtomicI32::new(member.epoch));
    let shared = Arc::clone(&epoch);
    let mut client = client.clone();
    let stop = stop.clone();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            if member.beat(&mut client).await.is_ok() {
                shared.store(member.epoch, Ordering::Relaxed);
            }
        }
    });
    Committer {
        group: group.to_owned(),
        epoch,
    }
}

fn request(committer: &Committer, offset: i64) -> pb::CommitOffsetsRequest {
    pb::CommitOffsetsRequest {
        group_id: committer.group.clone(),
        member_id: "m".to_owned(),
        member_epoch: committer.epoch.load(Ordering::Relaxed),
        topics: vec![pb::CommitOffsetsTopic {
            topic: GROUP_TOPIC.to_owned(),
            partitions: (0..PARTITIONS)
                .map(|partition| pb::CommitOffsetsPartition {
                    partition,
                    offset,
                    leader_epoch: None,
                    metadata: String::new(),
                })
                .collect(),
        }],
    }
}

/// Commits for `RUN` from every committer, each sending a request every `interval` (or
/// back to back without one); returns offsets committed per second and request latencies.
async fn drive(
    client: &Client,
    committers: Vec<Committer>,
    interval: Option<Duration>,
) -> (f64, Latencies) {
    let started = Instant::now();
    let deadline = started + RUN;
    let mut runs = JoinSet::new();
    for committer in committers {
        let mut client = client.clone();
        runs.spawn(async move {
            let mut latencies = Vec::new();
            let mut committed = 0_u64;
            let mut failed = 0_u64;
            let mut tick = interval.map(|every| {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
                tick
            });
            let mut round = 0_i64;
            while Instant::now() < deadline {
                if let Some(tick) = tick.as_mut() {
                    tick.tick().await;
                }
                round += 1;
                // Offsets only move forward; at the log end they stay there (still a write).
                let offset = round.min(RECORDS as i64);
                let sent = Instant::now();
                let response = client
                    .commit_offsets(request(&committer, offset))
                    .await
                    .unwrap()
                    .into_inner();
                latencies.push(sent.elapsed());
                if response.error.is_some() {
                    failed += u64::from(PARTITIONS as u32);
                    continue;
                }
                for p in response.topics.iter().flat_map(|t| &t.partitions) {
                    if p.error.is_none() {
                        committed += 1;
                    } else {
                        failed += 1;
                    }
                }
            }
            (committed, failed, latencies)
        });
    }
    let mut committed = 0;
    let mut failed = 0;
    let mut latencies = Vec::new();
    while let Some(run) = runs.join_next().await {
        let (c, f, l) = run.unwrap();
        committed += c;
        failed += f;
        latencies.extend(l);
    }
    let elapsed = started.elapsed();
    assert_eq!(failed, 0, "{failed} offsets were refused");
    (
        committed as f64 / elapsed.as_secs_f64(),
        Latencies::new(latencies),
    )
}

async fn trial(client: &mut Client, name: &str, interval: Option<Duration>) -> Figures {
    let stop = CancellationToken::new();
    let mut heartbeats = JoinSet::new();
    let mut committers = Vec::new();
    for g in 0..GROUPS {
        committers.push(join(client, &format!("{name}-{g}"), &mut heartbeats, &stop).await);
    }
    let (rate, latencies) = drive(client, committers, interval).await;
    stop.cancel();
    while heartbeats.join_next().await.is_some() {}
    println!(
        "{name}: {rate:.0} offsets/s, {} requests of {PARTITIONS}, latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.count(),
        ms(latencies.percentile(0.5)),
        ms(latencies.percentile(0.99)),
        ms(latencies.percentile(1.0)),
    );
    Figures {
        rate,
        p99_ms: ms(latencies.percentile(0.99)),
    }
}

/// Runs the closed-loop and the paced trials; `None` without etcd.
pub async fn run() -> Option<Summary> {
    let cluster = GroupCluster::start("bench-commits", PARTITIONS, RECORDS).await?;
    let coordinator = &cluster.coordinators[0];
    let mut client = Client::connect(format!("http://{}", coordinator.address))
        .await
        .unwrap();
    let per_group_rate = PACED_RATE / GROUPS as f64 / f64::from(PARTITIONS);
    let interval = Duration::from_secs_f64(1.0 / per_group_rate);
    let (mut saturated, mut paced) = (Vec::new(), Vec::new());
    for t in 0..trials(3) {
        saturated.push(trial(&mut client, &format!("closed-{t}"), None).await);
        paced.push(trial(&mut client, &format!("paced-{t}"), Some(interval)).await);
    }
    let owners = client
        .list_groups(pb::ListGroupsRequest { states: Vec::new() })
        .await
        .unwrap()
        .into_inner();
    assert!(
        owners
            .groups
            .iter()
            .all(|g| g.coordinator_id == Some(coordinator.id)),
        "every group is owned by the coordinator under test: {owners:?}"
    );
    let summarize = |figures: &[Figures]| Figures {
        rate: median(figures.iter().map(|f| f.rate).collect()),
        p99_ms: median(figures.iter().map(|f| f.p99_ms).collect()),
    };
    Some(Summary {
        saturated: summarize(&saturated),
        paced: summarize(&paced),
        paced_target: PACED_RATE,
    })
}
