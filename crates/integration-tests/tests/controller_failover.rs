//! Controller failover against a real etcd: exactly one active controller; kill -9 moves the
//! role within lease TTL + 2 s; a controller paused past its lease has its pending write
//! rejected on resume and steps down.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{ControllerProc, single_active, wait_for};
use strom_meta::records::BrokerRegistration;
use strom_meta::testing::EtcdServer;
use strom_meta::{ClusterMeta, Keys, LeaseKeeper};
use strom_proto::admin::v1 as pb;
use strom_proto::common::v1::ErrorCode;
use strom_types::BrokerId;
use tokio::time::Instant;

const TTL_PLUS_2S: Duration = Duration::from_secs(7);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_active_controller_survives_kill_and_pause() {
    let Some(etcd) = EtcdServer::start().await else {
        return;
    };
    let cluster = "failover";
    // One registered broker, so topic creation can place a replica.
    let store = etcd.store().await;
    let meta = ClusterMeta::new(store.clone(), Keys::new(cluster));
    let broker_lease = LeaseKeeper::grant(store.clone(), Duration::from_secs(30))
        .await
        .unwrap();
    let registration = BrokerRegistration {
        id: BrokerId::new(1),
        rack: None,
        address: "127.0.0.1:1".to_owned(),
        incarnation: "test".to_owned(),
    };
    meta.register_broker(&registration, broker_lease.id())
        .await
        .unwrap()
        .unwrap();

    let mut procs: Vec<ControllerProc> = (1..=3)
        .map(|id| ControllerProc::spawn(id, cluster, &etcd.endpoint()))
        .collect();
    let (first, first_epoch) = wait_for(Duration::from_secs(15), "one active controller", || {
        let procs: Vec<&ControllerProc> = procs.iter().collect();
        async move { single_active(&procs).await }
    })
    .await;

    // kill -9 the active controller: another takes over within TTL + 2 s.
    let killed_at = Instant::now();
    procs[first].kill9().await;
    let (second, second_epoch) = wait_for(TTL_PLUS_2S, "a new active controller", || {
        let procs: Vec<&ControllerProc> = procs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != first)
            .map(|(_, p)| p)
            .collect();
        async move { single_active(&procs).await }
    })
    .await;
    let failover = killed_at.elapsed();
    assert!(failover <= TTL_PLUS_2S, "failover took {failover:?}");
    assert!(second_epoch > first_epoch);
    let survivors: Vec<usize> = (0..3).filter(|i| *i != first).collect();
    let second = survivors[second];
    let third = survivors.iter().copied().find(|i| *i != second).unwrap();

    // SIGSTOP the active one past its lease: the third takes over.
    procs[second].signal("STOP");
    let stopped_at = Instant::now();
    let third_epoch = wait_for(TTL_PLUS_2S, "the standby to take over", || {
        let proc = &procs[third];
        async move {
            proc.describe()
                .await
                .ok()
                .and_then(|r| r.controller.map(|c| c.controller_epoch))
        }
    })
    .await;
    assert!(
        third_epoch > second_epoch,
        "stopped for {:?}",
        stopped_at.elapsed()
    );

    // A write sent to the paused controller is rejected once it resumes, and it steps down.
    let mut client = procs[second].client().await.unwrap();
    let pending = tokio::spawn(async move {
        let request = pb::CreateTopicsRequest {
            topics: vec![pb::NewTopic {
                topic: "from-the-paused-one".to_owned(),
                partitions: 1,
                replication_factor: 1,
                configs: Default::default(),
            }],
            timeout_ms: 0,
            validate_only: false,
        };
        client.create_topics(request).await.map(|r| r.into_inner())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    procs[second].signal("CONT");
    let response = tokio::time::timeout(Duration::from_secs(15), pending)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let code = response
        .error
        .clone()
        .or_else(|| response.topics.first().and_then(|t| t.error.clone()))
        .map(|e| e.code);
    assert_eq!(code, Some(ErrorCode::NotController as i32), "{response:?}");
    assert!(
        store
            .get(&Keys::new(cluster).topic(&"from-the-paused-one".parse().unwrap()))
            .await
            .unwrap()
            .is_none()
    );
    let active = wait_for(
        Duration::from_secs(10),
        "the resumed controller to stand by",
        || {
            let procs: Vec<&ControllerProc> = [second, third].iter().map(|i| &procs[*i]).collect();
            async move { single_active(&procs).await }
        },
    )
    .await;
    assert_eq!(active.0, 1, "the controller that took over stays active");
    // The standby points clients at the active controller.
    let mut client = procs[second].client().await.unwrap();
    let response = client
        .describe_cluster(pb::DescribeClusterRequest {})
        .await
        .unwrap()
        .into_inner();
    let hint = response.error.unwrap().leader.unwrap();
    assert_eq!(hint.leader_id, procs[third].id);
    assert_eq!(hint.address, procs[third].address);
}
