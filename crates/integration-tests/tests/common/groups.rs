//! Consumer-group test helpers: coordinator processes and a raw gRPC group member that
//! follows the heartbeat protocol step by step, so tests see every assignment it is given.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use strom_proto::common::v1::ErrorCode;
use strom_proto::coordinator::v1 as pb;
use strom_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;
use tokio::process::Child;

use super::host::Host;
use super::{BrokerProc, InProcController, spawn_service_on, wait_for};
use strom_meta::testing::EtcdServer;

/// The topic group tests consume.
pub const GROUP_TOPIC: &str = "orders";

/// One `strom-coordinator` process with test timings (lease 2 s, sessions from 1 s).
pub struct CoordinatorProc {
    pub id: i32,
    pub address: String,
    /// Where `GET /metrics` is served.
    pub metrics: String,
    config: PathBuf,
    host: Host,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl CoordinatorProc {
    pub fn spawn(id: i32, cluster: &str, etcd: &str) -> Self {
        Self::spawn_tuned(id, cluster, etcd, "500ms", "1s")
    }

    /// As [`spawn`](Self::spawn), with settled members heartbeating every `heartbeat` and
    /// sessions of at least `min_session` (which must be longer than `heartbeat`).
    pub fn spawn_tuned(
        id: i32,
        cluster: &str,
        etcd: &str,
        heartbeat: &str,
        min_session: &str,
    ) -> Self {
        Self::spawn_on(
            id,
            cluster,
            etcd,
            (heartbeat, min_session),
            Host::loopback(),
        )
    }

    /// As [`spawn_tuned`](Self::spawn_tuned) with `(heartbeat, min_session)`, listening on
    /// and running in `host`.
    pub fn spawn_on(
        id: i32,
        cluster: &str,
        etcd: &str,
        (heartbeat, min_session): (&str, &str),
        host: Host,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let address = host.address();
        let metrics = host.address();
        let text = format!(
            "id = {id}\ncluster = \"{cluster}\"\nlisten = \"{address}\"\nlease-ttl = \"2s\"\n\
             min-session-timeout = \"{min_session}\"\nsession-timeout = \"3s\"\nheartbeat-interval = \"{heartbeat}\"\n\
             lag-sample-interval = \"300ms\"\n\
             [etcd]\nendpoints = [\"{etcd}\"]\n[logging]\nlevel = \"warn\"\n[metrics]\nlisten = \"{metrics}\"\n"
        );
        let config = dir.path().join("coordinator.toml");
        std::fs::write(&config, text).unwrap();
        let mut proc = Self {
            id,
            address,
            metrics,
            config,
            host,
            child: None,
            _dir: dir,
        };
        proc.start();
        proc
    }

    pub fn start(&mut self) {
        self.child = Some(spawn_service_on(
            &self.host,
            "strom-coordinator",
            &self.config,
        ));
    }

    pub async fn kill9(&mut self) {
        super::kill9(&mut self.child).await;
    }
}

/// etcd, a controller, one broker, two coordinators and a topic of `partitions` partitions
/// holding `records_per_partition` records in each.
pub struct GroupCluster {
    pub etcd: EtcdServer,
    pub controller: InProcController,
    pub broker: BrokerProc,
    pub coordinators: Vec<CoordinatorProc>,
}

impl GroupCluster {
    pub async fn start(name: &str, partitions: i32, records_per_partition: usize) -> Option<Self> {
        Self::start_tuned(name, partitions, records_per_partition, "500ms", "1s").await
    }

    /// As [`start`](Self::start), with coordinators whose settled members heartbeat every
    /// `heartbeat` and whose sessions last at least `min_session`.
    pub async fn start_tuned(
        name: &str,
        partitions: i32,
        records_per_partition: usize,
        heartbeat: &str,
        min_session: &str,
    ) -> Option<Self> {
        let etcd = EtcdServer::start().await?;
        let controller = InProcController::start(1, name, &etcd).await;
        let broker = BrokerProc::spawn(1, name, &etcd.endpoint());
        let coordinators = (1..=2)
            .map(|id| {
                CoordinatorProc::spawn_tuned(id, name, &etcd.endpoint(), heartbeat, min_session)
            })
            .collect();
        wait_for(Duration::from_secs(20), "the broker registered", || async {
            (broker.metadata().await?.brokers.len() == 1).then_some(())
        })
        .await;
        // Topics are placed by the controller: wait until its view has the broker too.
        wait_for(
            Duration::from_secs(20),
            "the controller sees the broker",
            || async {
                let mut admin = broker.admin().await;
                let request = strom_proto::admin::v1::DescribeClusterRequest {};
                let cluster = admin.describe_cluster(request).await.ok()?.into_inner();
                (cluster.brokers.len() == 1).then_some(())
            },
        )
        .await;
        let cluster = Self {
            etcd,
            controller,
            broker,
            coordinators,
        };
        cluster.create_topic(GROUP_TOPIC, partitions).await;
        cluster.produce(partitions, 0..records_per_partition).await;
        Some(cluster)
    }

    /// Creates topic `name` (replication factor 1) through the broker.
    pub async fn create_topic(&self, name: &str, partitions: i32) {
        let create = strom_proto::admin::v1::CreateTopicsRequest {
            topics: vec![strom_proto::admin::v1::NewTopic {
                topic: name.to_owned(),
                partitions,
                replication_factor: 1,
                configs: Default::default(),
            }],
            timeout_ms: 0,
            validate_only: false,
        };
        let created = self
            .broker
            .admin()
            .await
            .create_topics(create)
            .await
            .unwrap()
            .into_inner();
        assert!(created.topics[0].error.is_none(), "{created:?}");
    }

    /// Produces records `{p}-{i}` for each `i` in `indexes` to each of the first `partitions`
    /// partitions, and waits until all are acknowledged.
    pub async fn produce(&self, partitions: i32, indexes: std::ops::Range<usize>) {
        let client = strom_client::Client::connect(strom_client::ClientConfig::new([self
            .broker
            .address
            .clone()]))
        .await
        .unwrap();
        let producer =
            strom_client::Producer::new(client, strom_client::ProducerConfig::default()).unwrap();
        let mut deliveries = Vec::new();
        for p in 0..partitions {
            for i in indexes.clone() {
                let record = strom_client::ProducerRecord::new(GROUP_TOPIC, format!("{p}-{i}"))
                    .partition(p)
                    .timestamp(super::data::now_ms());
                deliveries.push(producer.send(record).await.unwrap());
            }
        }
        for delivery in deliveries {
            delivery.await.unwrap();
        }
        producer.close().await;
    }

    /// A coordinator client for `group`, found through the broker's FindCoordinator.
    pub async fn coordinator_for(
        &self,
        group: &str,
    ) -> (i32, CoordinatorServiceClient<tonic::transport::Channel>) {
        let broker = CoordinatorServiceClient::connect(format!("http://{}", self.broker.address))
            .await
            .unwrap();
        let (id, client) = wait_for(
            Duration::from_secs(20),
            "a coordinator for the group",
            || {
                let mut broker = broker.clone();
                let group = group.to_owned();
                async move {
                    let found = broker
                        .find_coordinator(pb::FindCoordinatorRequest {
                            group_ids: vec![group],
                        })
                        .await
                        .ok()?
                        .into_inner();
                    let location = found.coordinators.into_iter().next()?;
                    if location.error.is_some() {
                        return None;
                    }
                    // A killed owner stays registered until its lease expires: keep asking.
                    let address = format!("http://{}", location.address);
                    let client = CoordinatorServiceClient::connect(address).await.ok()?;
                    Some((location.coordinator_id, client))
                }
            },
        )
        .await;
        (id, client)
    }
}

/// Partitions by topic id.
pub type Owned = BTreeMap<String, BTreeSet<i32>>;

/// A group member speaking the protocol directly.
pub struct RawMember {
    pub group: String,
    pub member_id: String,
    pub epoch: i32,
    pub owned: Owned,
    pub instance_id: String,
    pub session_timeout_ms: i32,
    /// A subscription regex; empty subscribes to the group test topic by name.
    pub topic_regex: String,
    /// Every (epoch, owned) this member held, in order.
    pub history: Vec<(i32, Owned)>,
}

impl RawMember {
    pub fn new(group: &str, member_id: &str) -> Self {
        Self {
            group: group.to_owned(),
            member_id: member_id.to_owned(),
            epoch: 0,
            owned: Owned::new(),
            instance_id: String::new(),
            session_timeout_ms: 2000,
            topic_regex: String::new(),
            history: Vec::new(),
        }
    }

    pub fn request(&self) -> pb::HeartbeatRequest {
        pb::HeartbeatRequest {
            group_id: self.group.clone(),
            member_id: self.member_id.clone(),
            member_epoch: self.epoch,
            instance_id: self.instance_id.clone(),
            rebalance_timeout_ms: 10_000,
            session_timeout_ms: self.session_timeout_ms,
            subscribed_topic_names: if self.topic_regex.is_empty() {
                vec![GROUP_TOPIC.to_owned()]
            } else {
                Vec::new()
            },
            subscribed_topic_regex: self.topic_regex.clone(),
            topic_partitions: self
                .owned
                .iter()
                .map(|(topic_id, parts)| pb::TopicPartitions {
                    topic_id: topic_id.clone(),
                    topic: String::new(),
                    partitions: parts.iter().copied().collect(),
                })
                .collect(),
            ..Default::default()
        }
    }

    /// One heartbeat; applies the assignment at once (revoking is instantaneous here).
    pub async fn beat(
        &mut self,
        client: &mut CoordinatorServiceClient<tonic::transport::Channel>,
    ) -> Result<pb::HeartbeatResponse, ErrorCode> {
        let response = client.heartbeat(self.request()).await.unwrap().into_inner();
        if let Some(error) = &response.error {
            return Err(ErrorCode::try_from(error.code).unwrap());
        }
        self.epoch = response.member_epoch;
        if let Some(assignment) = &response.assignment {
            self.owned = assignment
                .topic_partitions
                .iter()
                .filter(|tp| !tp.partitions.is_empty())
                .map(|tp| (tp.topic_id.clone(), tp.partitions.iter().copied().collect()))
                .collect();
        }
        self.history.push((self.epoch, self.owned.clone()));
        Ok(response)
    }

    pub fn count(&self) -> usize {
        self.owned.values().map(BTreeSet::len).sum()
    }

    pub fn partitions(&self) -> BTreeSet<i32> {
        self.owned.values().flatten().copied().collect()
    }
}

/// Commits `offset` for each partition in `partitions` as `member` at `epoch`; returns the
/// request-level error or each partition's error code.
pub async fn commit(
    client: &mut CoordinatorServiceClient<tonic::transport::Channel>,
    group: &str,
    member: &str,
    epoch: i32,
    partitions: &[(i32, i64)],
    metadata: &str,
) -> Result<Vec<Option<ErrorCode>>, ErrorCode> {
    let request = pb::CommitOffsetsRequest {
        group_id: group.to_owned(),
        member_id: member.to_owned(),
        member_epoch: epoch,
        topics: vec![pb::CommitOffsetsTopic {
            topic: GROUP_TOPIC.to_owned(),
            partitions: partitions
                .iter()
                .map(|(partition, offset)| pb::CommitOffsetsPartition {
                    partition: *partition,
                    offset: *offset,
                    leader_epoch: None,
                    metadata: metadata.to_owned(),
                })
                .collect(),
        }],
    };
    let response = client.commit_offsets(request).await.unwrap().into_inner();
    if let Some(error) = response.error {
        return Err(ErrorCode::try_from(error.code).unwrap());
    }
    Ok(response
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .map(|p| p.error.map(|e| ErrorCode::try_from(e.code).unwrap()))
        .collect())
}

/// The committed offsets of `group` in the test topic, by partition.
pub async fn committed(
    client: &mut CoordinatorServiceClient<tonic::transport::Channel>,
    group: &str,
) -> BTreeMap<i32, i64> {
    let response = client
        .fetch_offsets(pb::FetchOffsetsRequest {
            group_id: group.to_owned(),
            topics: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(response.error.is_none(), "{response:?}");
    response
        .topics
        .into_iter()
        .flat_map(|t| t.partitions)
        .filter_map(|p| Some((p.partition, p.offset?)))
        .collect()
}

/// Checks that no partition was held by two members at the same epoch in the members'
/// histories.
pub fn assert_single_owner_per_epoch(members: &[&RawMember]) {
    let mut owners: BTreeMap<(i32, &str, i32), &str> = BTreeMap::new();
    for member in members {
        for (epoch, owned) in &member.history {
            for (topic, partitions) in owned {
                for p in partitions {
                    let key = (*epoch, topic.as_str(), *p);
                    if let Some(other) = owners.insert(key, &member.member_id) {
                        assert_eq!(
                            other, member.member_id,
                            "partition {topic}/{p} owned by {other} and {} at epoch {epoch}",
                            member.member_id
                        );
                    }
                }
            }
        }
    }
}
