//! Draining a broker (`strom cluster drain`, AdminService.DrainBroker) moves its leaderships to
//! other in-sync replicas while it keeps running, keeps preferred-leader restoration from
//! handing them back, and ends when the broker registers again.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::data::{Cluster, TOPIC, batch, client, leader_of, produce_request};
use common::wait_for;
use strom_proto::admin::v1 as pb;
use strom_proto::broker::v1::Acks;
use strom_proto::common::v1::ErrorCode;

async fn leader_id(cluster: &Cluster, witness: usize) -> Option<i32> {
    let metadata = cluster.brokers[witness].metadata().await?;
    metadata
        .topics
        .iter()
        .find(|t| t.topic == TOPIC)?
        .partitions
        .first()?
        .leader_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_broker_leads_nothing_until_it_restarts() {
    let Some(mut cluster) = Cluster::start("drain", 3, &[]).await else {
        return;
    };
    let leader = leader_of(&cluster.brokers, None, 3).await;
    let drained = cluster.brokers[leader].id;
    let witness = (leader + 1) % 3;

    let output = tokio::process::Command::new(common::binary("strom"))
        .args(["cluster", "drain", &drained.to_string(), "--wait", "20s"])
        .args(["-o", "json", "--brokers", &cluster.brokers[witness].address])
        .env("HOME", "/nonexistent")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answer: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(answer["remaining"], 0, "{answer}");
    assert_eq!(answer["moved"], 1, "{answer}");

    let moved_to = wait_for(
        Duration::from_secs(10),
        "metadata names the new leader",
        || async { leader_id(&cluster, witness).await.filter(|l| *l != drained) },
    )
    .await;
    let cluster_view = cluster.brokers[witness]
        .admin()
        .await
        .describe_cluster(pb::DescribeClusterRequest {})
        .await
        .unwrap()
        .into_inner();
    let state = cluster_view
        .brokers
        .iter()
        .find(|b| b.broker.as_ref().unwrap().broker_id == drained)
        .unwrap()
        .state();
    assert_eq!(state, pb::BrokerState::ShuttingDown);

    // The new leader takes writes; preferred-leader restoration (every 2 s here) leaves the
    // drained broker alone.
    let new_leader = cluster
        .brokers
        .iter()
        .position(|b| b.id == moved_to)
        .unwrap();
    wait_for(
        Duration::from_secs(10),
        "the new leader takes writes",
        || async {
            let response = client(&cluster.brokers[new_leader])
                .await
                .produce(produce_request(Acks::All as i32, batch(&["after-drain"])))
                .await
                .ok()?
                .into_inner();
            response.topics[0].partitions[0]
                .error
                .is_none()
                .then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(leader_id(&cluster, witness).await, Some(moved_to));

    // Draining a broker that is not registered is refused with a definite code.
    let refused = cluster.brokers[witness]
        .admin()
        .await
        .drain_broker(pb::DrainBrokerRequest { broker_id: 99 })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        refused.error.map(|e| e.code),
        Some(ErrorCode::BrokerNotAvailable as i32)
    );

    // A restart ends the drain: once back in sync, the preferred replica leads again.
    let preferred =
        common::placement(&cluster.brokers[witness].metadata().await.unwrap(), TOPIC).unwrap();
    let preferred = preferred[0].3.first().copied();
    cluster.brokers[leader].terminate().await;
    cluster.brokers[leader].start();
    if preferred == Some(drained) {
        wait_for(
            Duration::from_secs(40),
            "the preferred leader is back",
            || async { (leader_id(&cluster, witness).await == Some(drained)).then_some(()) },
        )
        .await;
    }
    cluster.controller.stop().await;
}
