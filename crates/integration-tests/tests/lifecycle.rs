//! Process lifecycle: `--check-config` on both binaries, and SIGTERM handing work over at once
//! (a controller resigns, a broker revokes its lease) instead of after a lease TTL.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{BrokerProc, ControllerProc, binary, single_active, wait_for};
use strom_meta::testing::EtcdServer;
use strom_proto::admin::v1 as pb;
use tokio::time::Instant;

/// Well under the 5 s lease TTL: the handover did not wait for an expiry.
const PROMPT: Duration = Duration::from_secs(3);

fn check_config(name: &str, args: &[&str]) -> i32 {
    let output = std::process::Command::new(binary(name))
        .arg("--check-config")
        .args(args)
        .output()
        .unwrap();
    output.status.code().unwrap()
}

#[test]
fn check_config_accepts_the_examples_and_refuses_bad_values() {
    let root =
        std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../config");
    for name in ["controller", "broker"] {
        let binary = format!("strom-{name}");
        let example = root.join(format!("{name}.example.toml"));
        assert_eq!(
            check_config(&binary, &["--config", example.to_str().unwrap()]),
            0,
            "{name}"
        );
        assert_eq!(
            check_config(&binary, &["--set", "lease-ttl=1s"]),
            2,
            "{name}: short lease"
        );
        assert_eq!(
            check_config(&binary, &["--set", "no-such-key=1"]),
            2,
            "{name}: unknown key"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_over_without_waiting_for_the_lease() {
    let Some(etcd) = EtcdServer::start().await else {
        return;
    };
    let cluster = "lifecycle";
    let mut controllers: Vec<ControllerProc> = (1..=2)
        .map(|id| ControllerProc::spawn(id, cluster, &etcd.endpoint()))
        .collect();
    let (active, epoch) = wait_for(Duration::from_secs(15), "an active controller", || {
        let procs: Vec<&ControllerProc> = controllers.iter().collect();
        async move { single_active(&procs).await }
    })
    .await;

    // Brokers first, so the active controller can place a topic.
    let brokers: Vec<BrokerProc> = (1..=2)
        .map(|id| BrokerProc::spawn(id, cluster, &etcd.endpoint()))
        .collect();
    wait_for(
        Duration::from_secs(20),
        "two registered brokers",
        || async { (brokers[0].metadata().await?.brokers.len() == 2).then_some(()) },
    )
    .await;
    let request = pb::CreateTopicsRequest {
        topics: vec![pb::NewTopic {
            topic: "t".to_owned(),
            partitions: 2,
            replication_factor: 2,
            configs: Default::default(),
        }],
        timeout_ms: 0,
        validate_only: false,
    };
    let created = brokers[1]
        .admin()
        .await
        .create_topics(request)
        .await
        .unwrap()
        .into_inner();
    assert!(created.topics[0].error.is_none(), "{created:?}");

    // SIGTERM the active controller: it resigns and the standby takes over at once.
    let stopped = Instant::now();
    controllers[active].signal("TERM");
    let (_, next_epoch) = wait_for(PROMPT, "the standby to take over", || {
        let others: Vec<&ControllerProc> = controllers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != active)
            .map(|(_, p)| p)
            .collect();
        async move { single_active(&others).await }
    })
    .await;
    assert!(next_epoch > epoch);
    assert_eq!(
        controllers[active].wait().await,
        Some(0),
        "clean exit after SIGTERM"
    );
    let controller_handover = stopped.elapsed();

    // SIGTERM a broker that leads: its leaderships move at once, not after the lease TTL.
    let view = wait_for(
        Duration::from_secs(20),
        "two in-sync replicas everywhere",
        || async {
            let view = common::placement(&brokers[0].metadata().await?, "t")?;
            view.iter().all(|p| p.4.len() == 2).then_some(view)
        },
    )
    .await;
    let leader = view[0].1.unwrap();
    let (leaving, staying) = if leader == brokers[0].id {
        (&brokers[0], &brokers[1])
    } else {
        (&brokers[1], &brokers[0])
    };
    let stopped = Instant::now();
    leaving.signal("TERM");
    wait_for(
        PROMPT,
        "leadership to move off the stopped broker",
        || async {
            let view = common::placement(&staying.metadata().await?, "t")?;
            view.iter().all(|p| p.1 != Some(leaving.id)).then_some(())
        },
    )
    .await;
    assert!(controller_handover < PROMPT && stopped.elapsed() < PROMPT);
}
