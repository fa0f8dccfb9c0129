//! Control-plane timings against a real etcd, as medians (run with `make bench-control-plane`):
//!
//! - controller failover: kill -9 the active controller of three, until another answers admin
//!   calls;
//! - leader re-election: kill -9 a broker of three, until every partition it led has a new
//!   leader on the surviving brokers' Metadata;
//! - a 1,000-partition, RF 3 topic: from CreateTopics until every broker's Metadata shows all of
//!   its partitions with a leader.
//!
//! The lease TTL is the default 5 s, so failover figures are dominated by it by design.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Duration;

use common::{BrokerProc, ControllerProc, InProcController, single_active, wait_for};
use strom_meta::testing::EtcdServer;
use strom_proto::admin::v1 as pb;
use tokio::time::Instant;

const TRIALS: usize = 5;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn report(name: &str, samples: Vec<Duration>) {
    let shown: Vec<String> = samples
        .iter()
        .map(|d| format!("{:.2}s", d.as_secs_f64()))
        .collect();
    println!(
        "{name}: median {:.2}s over {} runs [{}]",
        median(samples.clone()).as_secs_f64(),
        samples.len(),
        shown.join(", ")
    );
}

async fn controller_failover(etcd: &EtcdServer) -> Vec<Duration> {
    let cluster = "bench-controllers";
    let mut procs: Vec<ControllerProc> = (1..=3)
        .map(|id| ControllerProc::spawn(id, cluster, &etcd.endpoint()))
        .collect();
    let mut samples = Vec::new();
    for _ in 0..TRIALS {
        let (active, _) = wait_for(Duration::from_secs(30), "one active controller", || {
            let procs: Vec<&ControllerProc> = procs.iter().collect();
            async move { single_active(&procs).await }
        })
        .await;
        let killed = Instant::now();
        procs[active].kill9().await;
        wait_for(Duration::from_secs(30), "a new active controller", || {
            let others: Vec<&ControllerProc> = procs
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != active)
                .map(|(_, p)| p)
                .collect();
            async move { single_active(&others).await }
        })
        .await;
        samples.push(killed.elapsed());
        procs[active].respawn();
    }
    samples
}

async fn leader_reelection(etcd: &EtcdServer) -> (Vec<Duration>, Vec<Duration>) {
    let cluster = "bench-brokers";
    let controllers = [
        InProcController::start(1, cluster, etcd).await,
        InProcController::start(2, cluster, etcd).await,
    ];
    let mut brokers: Vec<BrokerProc> = (1..=3)
        .map(|id| BrokerProc::spawn(id, cluster, &etcd.endpoint()))
        .collect();
    wait_for(Duration::from_secs(30), "three brokers", || async {
        let metadata = brokers[0].metadata().await?;
        (metadata.brokers.len() == 3 && metadata.controller_id.is_some()).then_some(())
    })
    .await;
    let request = pb::CreateTopicsRequest {
        topics: vec![pb::NewTopic {
            topic: "bench".to_owned(),
            partitions: 6,
            replication_factor: 3,
            configs: Default::default(),
        }],
        timeout_ms: 0,
        validate_only: false,
    };
    brokers[0]
        .admin()
        .await
        .create_topics(request)
        .await
        .unwrap();
    let mut samples = Vec::new();
    for trial in 0..TRIALS {
        let victim = trial % 3;
        let witness = (victim + 1) % 3;
        let victim_id = brokers[victim].id;
        let before = wait_for(
            Duration::from_secs(60),
            "full ISRs and preferred leaders",
            || async {
                let view = common::placement(&brokers[witness].metadata().await?, "bench")?;
                view.iter()
                    .all(|p| p.4.len() == 3 && p.1 == p.3.first().copied())
                    .then_some(view)
            },
        )
        .await;
        let led: Vec<_> = before
            .iter()
            .filter(|p| p.1 == Some(victim_id))
            .cloned()
            .collect();
        let killed = Instant::now();
        brokers[victim].kill9().await;
        wait_for(Duration::from_secs(30), "new leaders", || async {
            let view = common::placement(&brokers[witness].metadata().await?, "bench")?;
            led.iter()
                .all(|old| {
                    view.iter().any(|p| {
                        p.0 == old.0 && p.1.is_some() && p.1 != Some(victim_id) && p.2 > old.2
                    })
                })
                .then_some(())
        })
        .await;
        samples.push(killed.elapsed());
        brokers[victim].start();
    }
    // Metadata propagation of a large topic.
    let mut large = Vec::new();
    for trial in 0..3 {
        let name = format!("large-{trial}");
        let request = pb::CreateTopicsRequest {
            topics: vec![pb::NewTopic {
                topic: name.clone(),
                partitions: 1000,
                replication_factor: 3,
                configs: Default::default(),
            }],
            timeout_ms: 0,
            validate_only: false,
        };
        wait_for(Duration::from_secs(60), "three live brokers", || async {
            (brokers[0].metadata().await?.brokers.len() == 3).then_some(())
        })
        .await;
        let started = Instant::now();
        let response = brokers[0]
            .admin()
            .await
            .create_topics(request)
            .await
            .unwrap()
            .into_inner();
        assert!(response.topics[0].error.is_none(), "{response:?}");
        for broker in &brokers {
            wait_for(
                Duration::from_secs(60),
                "the large topic on every broker",
                || async {
                    let view = common::placement(&broker.metadata().await?, &name)?;
                    (view.len() == 1000 && view.iter().all(|p| p.1.is_some())).then_some(())
                },
            )
            .await;
        }
        large.push(started.elapsed());
    }
    for controller in controllers {
        controller.stop().await;
    }
    (samples, large)
}

#[tokio::main]
async fn main() {
    let Some(etcd) = EtcdServer::start().await else {
        eprintln!("etcd is not installed; nothing to measure");
        return;
    };
    report(
        "controller failover after kill -9 (lease TTL 5 s)",
        controller_failover(&etcd).await,
    );
    let (reelection, large) = leader_reelection(&etcd).await;
    report(
        "leader re-election after a broker kill -9 (lease TTL 5 s)",
        reelection,
    );
    report("1,000-partition RF 3 topic visible on all 3 brokers", large);
}
