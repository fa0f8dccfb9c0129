//! The control plane end to end on a real etcd: topic creation and placement over three
//! brokers, Metadata agreement, leader failover after kill -9 of a broker, its return as a
//! follower that catches up, rejoins the ISR and gets its preferred leaderships back, admin
//! errors, and an etcd restart.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{BrokerProc, InProcController, placement, wait_for};
use strom_meta::testing::EtcdServer;
use strom_proto::admin::v1 as pb;
use strom_proto::common::v1::ErrorCode;
use tokio::time::Instant;

const TTL_PLUS_2S: Duration = Duration::from_secs(7);

fn new_topic(name: &str, partitions: i32, rf: i32) -> pb::NewTopic {
    pb::NewTopic {
        topic: name.to_owned(),
        partitions,
        replication_factor: rf,
        configs: Default::default(),
    }
}

async fn create(broker: &BrokerProc, topic: pb::NewTopic) -> pb::CreateTopicsResponse {
    let request = pb::CreateTopicsRequest {
        topics: vec![topic],
        timeout_ms: 0,
        validate_only: false,
    };
    broker
        .admin()
        .await
        .create_topics(request)
        .await
        .unwrap()
        .into_inner()
}

fn topic_code(response: &pb::CreateTopicsResponse) -> Option<i32> {
    response
        .error
        .as_ref()
        .or(response.topics[0].error.as_ref())
        .map(|e| e.code)
}

/// Waits until every broker reports the same placement for `topic`; returns it.
async fn agreed(brokers: &[&BrokerProc], topic: &str, limit: Duration) -> common::Placement {
    wait_for(limit, "brokers to agree on metadata", || async {
        let mut seen = Vec::new();
        for broker in brokers {
            seen.push(placement(&broker.metadata().await?, topic)?);
        }
        let first = seen[0].clone();
        (!first.is_empty() && seen.iter().all(|p| *p == first)).then_some(first)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_placement_failover_and_admin_errors() {
    let Some(mut etcd) = EtcdServer::start().await else {
        return;
    };
    let cluster = "control-plane";
    let controllers = [
        InProcController::start(1, cluster, &etcd).await,
        InProcController::start(2, cluster, &etcd).await,
    ];
    let mut brokers: Vec<BrokerProc> = (1..=3)
        .map(|id| BrokerProc::spawn(id, cluster, &etcd.endpoint()))
        .collect();
    wait_for(
        Duration::from_secs(20),
        "three registered brokers and a controller",
        || async {
            let metadata = brokers[0].metadata().await?;
            (metadata.brokers.len() == 3 && metadata.controller_id.is_some()).then_some(())
        },
    )
    .await;

    // 6 partitions, RF 3 on 3 brokers: balanced, and every broker agrees within 1 s.
    let response = create(&brokers[0], new_topic("orders", 6, 3)).await;
    assert_eq!(topic_code(&response), None, "{response:?}");
    let created = Instant::now();
    let refs: Vec<&BrokerProc> = brokers.iter().collect();
    let layout = agreed(&refs, "orders", Duration::from_secs(1)).await;
    eprintln!(
        "metadata agreed on all brokers {:?} after creation",
        created.elapsed()
    );
    let mut leads: BTreeMap<i32, usize> = BTreeMap::new();
    for (_, leader, epoch, replicas, isr) in &layout {
        assert_eq!(replicas.len(), 3);
        assert_eq!(isr.len(), 3);
        assert_eq!(*epoch, 0);
        *leads.entry(leader.unwrap()).or_default() += 1;
    }
    assert_eq!(
        leads.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "{leads:?}"
    );

    // kill -9 a broker: each partition it led gets a new leader from the ISR, higher epoch.
    let victim = 1;
    let victim_id = brokers[victim].id;
    let led: Vec<_> = layout
        .iter()
        .filter(|p| p.1 == Some(victim_id))
        .cloned()
        .collect();
    let killed = Instant::now();
    brokers[victim].kill9().await;
    let survivors: Vec<&BrokerProc> = brokers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(_, b)| b)
        .collect();
    let after = wait_for(
        TTL_PLUS_2S,
        "new leaders for the killed broker's partitions",
        || async {
            let mut views = Vec::new();
            for broker in &survivors {
                views.push(placement(&broker.metadata().await?, "orders")?);
            }
            let moved = led.iter().all(|old| {
                views.iter().all(|view| {
                    view.iter().any(|p| {
                        p.0 == old.0 && p.1.is_some() && p.1 != Some(victim_id) && p.2 > old.2
                    })
                })
            });
            moved.then(|| views[0].clone())
        },
    )
    .await;
    eprintln!("leaders moved {:?} after kill -9", killed.elapsed());
    for old in &led {
        let now = after.iter().find(|p| p.0 == old.0).unwrap();
        assert!(
            old.4.contains(&now.1.unwrap()),
            "new leader {:?} was in the ISR {:?}",
            now.1,
            old.4
        );
        assert!(!now.4.contains(&victim_id), "the dead broker left the ISR");
    }

    // Restart it: it registers again and is a follower (a live replica, not a leader).
    brokers[victim].start();
    wait_for(
        Duration::from_secs(20),
        "the restarted broker to be live again",
        || async {
            let metadata = brokers[0].metadata().await?;
            let topic = metadata.topics.iter().find(|t| t.topic == "orders")?;
            let live = metadata.brokers.iter().any(|b| b.broker_id == victim_id);
            let offline = topic
                .partitions
                .iter()
                .any(|p| p.offline_replicas.contains(&victim_id));
            let leads = topic
                .partitions
                .iter()
                .any(|p| p.leader_id == Some(victim_id));
            (live && !offline && !leads).then_some(())
        },
    )
    .await;

    // It catches up, rejoins every ISR, and the preferred leaders come back.
    let restored = wait_for(
        Duration::from_secs(30),
        "full ISRs and preferred leaders",
        || async {
            let view = placement(&brokers[0].metadata().await?, "orders")?;
            view.iter()
                .all(|p| p.4.len() == 3 && p.1 == p.3.first().copied())
                .then_some(view)
        },
    )
    .await;
    let mut leads: BTreeMap<i32, usize> = BTreeMap::new();
    for p in &restored {
        *leads.entry(p.1.unwrap()).or_default() += 1;
    }
    assert_eq!(
        leads.values().copied().collect::<Vec<_>>(),
        [2, 2, 2],
        "{leads:?}"
    );
    eprintln!(
        "preferred leaders restored {:?} after the kill",
        killed.elapsed()
    );

    // Bad admin input gets the matching code and changes nothing.
    let long = "x".repeat(250);
    for (topic, code) in [
        (
            new_topic("bad name", 1, 1),
            ErrorCode::InvalidTopicException,
        ),
        (new_topic(&long, 1, 1), ErrorCode::InvalidTopicException),
        (
            new_topic("neg-partitions", -1, 1),
            ErrorCode::InvalidPartitions,
        ),
        (
            new_topic("too-many-replicas", 1, 4),
            ErrorCode::InvalidReplicationFactor,
        ),
        (
            new_topic("neg-replicas", 1, -2),
            ErrorCode::InvalidReplicationFactor,
        ),
        (new_topic("orders", 1, 1), ErrorCode::TopicAlreadyExists),
        (
            pb::NewTopic {
                configs: [("no.such.config".to_owned(), "1".to_owned())].into(),
                ..new_topic("c1", 1, 1)
            },
            ErrorCode::InvalidConfig,
        ),
        (
            pb::NewTopic {
                configs: [("retention.ms".to_owned(), "soon".to_owned())].into(),
                ..new_topic("c2", 1, 1)
            },
            ErrorCode::InvalidConfig,
        ),
    ] {
        let name = topic.topic.chars().take(20).collect::<String>();
        let response = create(&brokers[0], topic).await;
        assert_eq!(
            topic_code(&response),
            Some(code as i32),
            "{name}: {response:?}"
        );
    }
    let mut admin = brokers[2].admin().await;
    let deleted = admin
        .delete_topics(pb::DeleteTopicsRequest {
            topics: vec!["no-such-topic".to_owned()],
            timeout_ms: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        deleted.topics[0].error.as_ref().map(|e| e.code),
        Some(ErrorCode::UnknownTopicOrPartition as i32)
    );
    let described = admin
        .describe_topics(pb::DescribeTopicsRequest { topics: Vec::new() })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = described.topics.iter().map(|t| t.topic.as_str()).collect();
    assert_eq!(names, ["orders"], "rejected requests created nothing");

    // etcd restarts under everyone: watches, leases and the controller carry on.
    etcd.restart().await;
    let response = wait_for(
        Duration::from_secs(20),
        "topic creation after the etcd restart",
        || async {
            let response = create(&brokers[0], new_topic("after-restart", 3, 3)).await;
            (topic_code(&response).is_none()).then_some(response)
        },
    )
    .await;
    assert_eq!(response.topics[0].partitions, 3);
    let refs: Vec<&BrokerProc> = brokers.iter().collect();
    agreed(&refs, "after-restart", Duration::from_secs(5)).await;

    for controller in controllers {
        controller.stop().await;
    }
}
