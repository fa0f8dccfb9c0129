//! Every service serves Prometheus metrics on `GET /metrics`, and the values follow what the
//! cluster does: bytes in and out grow with produce and fetch, a stopped follower makes the
//! partition under-replicated, a killed leader counts an election, and a group's lag follows
//! its commits.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::data::{Cluster, TOPIC, batch, client, fetch_request, leader_of, produce_request};
use common::groups::{GROUP_TOPIC, GroupCluster, RawMember, commit};
use common::wait_for;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The body of `GET /metrics` at `address`.
async fn scrape(address: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    body.to_owned()
}

/// The value of the sample `series` (name and labels exactly as rendered), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Scrapes until `series` satisfies `check`, returning its value.
async fn wait_value(address: &str, series: &str, check: impl Fn(f64) -> bool) -> f64 {
    wait_for(Duration::from_secs(30), series, || async {
        value(&scrape(address).await, series).filter(|v| check(*v))
    })
    .await
}

fn assert_names(text: &str, names: &[&str]) {
    for name in names {
        assert!(
            text.lines()
                .any(|l| l.starts_with(&format!("# TYPE {name} "))),
            "{name} missing from\n{text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_and_controller_metrics_follow_the_data_plane() {
    let Some(mut cluster) = Cluster::start("metrics", 3, &[]).await else {
        return;
    };
    let leader = leader_of(&cluster.brokers, None, 3).await;
    let at = cluster.brokers[leader].metrics.clone();
    let before = scrape(&at).await;
    assert_eq!(
        value(&before, "strom_broker_under_replicated_partitions"),
        Some(0.0)
    );
    let partition = format!("{{topic=\"{TOPIC}\",partition=\"0\"}}");
    let size_before = value(&before, &format!("strom_broker_log_size_bytes{partition}")).unwrap();

    let mut leader_client = client(&cluster.brokers[leader]).await;
    let produced = leader_client
        .produce(produce_request(
            strom_proto::broker::v1::Acks::All as i32,
            batch(&["a", "b", "c"]),
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        produced.topics[0].partitions[0].error.is_none(),
        "{produced:?}"
    );
    let fetched = leader_client
        .fetch(fetch_request(0, 0, 0))
        .await
        .unwrap()
        .into_inner();
    assert!(!fetched.topics[0].partitions[0].records.is_empty());

    let after = scrape(&at).await;
    assert_names(
        &after,
        &[
            "strom_build_info",
            "strom_grpc_server_started",
            "strom_grpc_server_handled",
            "strom_grpc_server_handling_seconds",
            "strom_broker_bytes_in",
            "strom_broker_bytes_out",
            "strom_broker_records_in",
            "strom_broker_requests",
            "strom_broker_request_duration_seconds",
            "strom_broker_under_replicated_partitions",
            "strom_broker_isr_shrinks",
            "strom_broker_isr_expands",
            "strom_broker_log_size_bytes",
            "strom_broker_log_end_offset",
        ],
    );
    let topic = format!("{{topic=\"{TOPIC}\"}}");
    assert!(value(&after, &format!("strom_broker_bytes_in_total{topic}")).unwrap() > 0.0);
    assert_eq!(
        value(&after, &format!("strom_broker_records_in_total{topic}")),
        Some(3.0)
    );
    assert!(value(&after, &format!("strom_broker_bytes_out_total{topic}")).unwrap() > 0.0);
    assert!(
        value(&after, &format!("strom_broker_log_size_bytes{partition}")).unwrap() > size_before
    );
    assert_eq!(
        value(&after, &format!("strom_broker_log_end_offset{partition}")),
        Some(3.0)
    );
    let produce_calls = "strom_grpc_server_handled_total{grpc_service=\"strom.broker.v1.BrokerService\",grpc_method=\"Produce\",grpc_code=\"OK\"}";
    assert_eq!(value(&after, produce_calls), Some(1.0), "{after}");
    assert_eq!(
        value(
            &after,
            "strom_broker_request_duration_seconds_count{api=\"produce\"}"
        ),
        Some(1.0)
    );

    let controller = cluster.controller.metrics.clone();
    let view = scrape(&controller).await;
    assert_names(
        &view,
        &[
            "strom_controller_active",
            "strom_controller_epoch",
            "strom_controller_offline_partitions",
            "strom_controller_under_replicated_partitions",
        ],
    );
    assert_eq!(value(&view, "strom_controller_active"), Some(1.0));
    assert!(value(&view, "strom_controller_epoch").unwrap() >= 1.0);
    assert_eq!(value(&view, "strom_controller_live_brokers"), Some(3.0));

    // A follower stops: the leader's ISR shrinks and the partition is under-replicated.
    let follower = (0..3).find(|i| *i != leader).unwrap();
    cluster.brokers[follower].kill9().await;
    wait_value(&at, "strom_broker_under_replicated_partitions", |v| {
        v == 1.0
    })
    .await;
    wait_value(
        &controller,
        "strom_controller_under_replicated_partitions",
        |v| v == 1.0,
    )
    .await;
    let shrinks = value(
        &scrape(&controller).await,
        "strom_controller_isr_shrinks_total",
    );
    let proposed = value(&scrape(&at).await, "strom_broker_isr_shrinks_total");
    assert!(
        shrinks.unwrap_or(0.0) + proposed.unwrap_or(0.0) >= 1.0,
        "an ISR shrink is counted by the controller (broker gone) or the leader (lagging)"
    );

    // The leader dies: the controller elects the remaining in-sync replica.
    cluster.brokers[leader].kill9().await;
    wait_value(
        &controller,
        "strom_controller_leader_elections_total{kind=\"clean\"}",
        |v| v >= 1.0,
    )
    .await;
    wait_value(&controller, "strom_controller_offline_partitions", |v| {
        v == 0.0
    })
    .await;
    cluster.controller.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinator_metrics_report_groups_rebalances_and_lag() {
    let Some(cluster) = GroupCluster::start("metrics-groups", 2, 10).await else {
        return;
    };
    let (owner, mut coordinator) = cluster.coordinator_for("billing").await;
    let at = cluster
        .coordinators
        .iter()
        .find(|c| c.id == owner)
        .unwrap()
        .metrics
        .clone();
    let mut member = RawMember::new("billing", "member-1");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while member.count() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "both partitions assigned"
        );
        // NOT_COORDINATOR and friends while the group is claimed: beat again.
        let _ = member.beat(&mut coordinator).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let errors = commit(
        &mut coordinator,
        "billing",
        "member-1",
        member.epoch,
        &[(0, 4), (1, 10)],
        "",
    )
    .await
    .unwrap();
    assert!(errors.iter().all(Option::is_none), "{errors:?}");

    let lag = |partition: i32| {
        format!(
            "strom_consumer_group_lag{{group=\"billing\",topic=\"{GROUP_TOPIC}\",partition=\"{partition}\"}}"
        )
    };
    let seconds = |partition: i32| {
        format!(
            "strom_consumer_group_lag_seconds{{group=\"billing\",topic=\"{GROUP_TOPIC}\",partition=\"{partition}\"}}"
        )
    };
    assert_eq!(wait_value(&at, &lag(0), |v| v == 6.0).await, 6.0);
    let text = scrape(&at).await;
    assert_names(
        &text,
        &[
            "strom_coordinator_groups",
            "strom_coordinator_group_members",
            "strom_coordinator_rebalances",
            "strom_consumer_group_lag",
            "strom_consumer_group_lag_seconds",
        ],
    );
    assert_eq!(value(&text, &lag(1)), Some(0.0));
    assert!(value(&text, &seconds(0)).unwrap() > 0.0, "{text}");
    assert_eq!(value(&text, &seconds(1)), Some(0.0));
    assert!(
        value(
            &text,
            "strom_coordinator_rebalances_total{group=\"billing\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(value(&text, "strom_coordinator_group_members"), Some(1.0));

    // Catching up brings the lag to zero.
    let errors = commit(
        &mut coordinator,
        "billing",
        "member-1",
        member.epoch,
        &[(0, 10)],
        "",
    )
    .await
    .unwrap();
    assert!(errors.iter().all(Option::is_none), "{errors:?}");
    wait_value(&at, &lag(0), |v| v == 0.0).await;
    wait_value(&at, &seconds(0), |v| v == 0.0).await;
}
