//! The chaos cluster: a real etcd, two controllers, three brokers and two coordinators, each
//! a process of its own on loopback, and one replicated topic.

use std::time::Duration;

use strom_meta::testing::EtcdServer;
use strom_proto::admin::v1 as admin;
use strom_proto::admin::v1::admin_service_client::AdminServiceClient;
use strom_proto::broker::v1 as pb;
use strom_proto::broker::v1::broker_service_client::BrokerServiceClient;
use tonic::transport::Channel;

use crate::common::groups::CoordinatorProc;
use crate::common::host::Host;
use crate::common::{BrokerProc, ControllerProc, single_active, wait_for};
use crate::network::Network;

/// The topic every scenario writes and reads.
pub const TOPIC: &str = "chaos";
/// Its partitions.
pub const PARTITIONS: i32 = 3;
/// Its replication factor (every broker holds every partition).
pub const REPLICAS: usize = 3;
/// The broker and controller lease TTL (see `BrokerProc` and `ControllerProc`).
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// How long a wait for the cluster to settle may take before the scenario fails.
pub const SETTLE: Duration = Duration::from_secs(45);

/// Where one partition stands, as the freshest broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// The index in `brokers` of the leader.
    pub leader: Option<usize>,
    pub leader_epoch: i32,
    /// The indexes in `brokers` of the in-sync replicas.
    pub isr: Vec<usize>,
}

pub struct ChaosCluster {
    pub etcd: EtcdServer,
    pub controllers: Vec<ControllerProc>,
    pub brokers: Vec<BrokerProc>,
    pub coordinators: Vec<CoordinatorProc>,
}

impl ChaosCluster {
    /// Starts the cluster and creates [`TOPIC`] (RF 3, `min.insync.replicas` 2, plus
    /// `configs`); `None` when etcd is not installed.
    pub async fn start(name: &str, configs: &[(&str, &str)]) -> Option<Self> {
        Self::start_in(name, configs, None).await
    }

    /// As [`ChaosCluster::start`], with every service in its place on `network` (the brokers
    /// in namespaces of their own, the rest in the core one) instead of on loopback.
    pub async fn start_in(
        name: &str,
        configs: &[(&str, &str)],
        network: Option<&Network>,
    ) -> Option<Self> {
        let core = network.map_or_else(Host::loopback, Network::core);
        let etcd = EtcdServer::start_on(&core.ip, core.netns.as_deref()).await?;
        let endpoint = etcd.endpoint();
        let controllers = (1..=2)
            .map(|id| ControllerProc::spawn_on(id, name, &endpoint, core.clone()))
            .collect();
        let brokers = (0..REPLICAS)
            .map(|index| {
                let host = network.map_or_else(Host::loopback, |n| n.broker(index));
                let id = i32::try_from(index).unwrap() + 1;
                BrokerProc::spawn_on(id, name, &endpoint, "2s", host)
            })
            .collect();
        let coordinators = (1..=2)
            .map(|id| CoordinatorProc::spawn_on(id, name, &endpoint, ("500ms", "1s"), core.clone()))
            .collect();
        let cluster = Self {
            etcd,
            controllers,
            brokers,
            coordinators,
        };
        cluster.active_controller().await;
        wait_for(SETTLE, "the controller sees every broker", || async {
            // The broker may not listen yet: a refused connection is a retry, not a failure.
            let address = format!("http://{}", cluster.brokers[0].address);
            let mut admin = AdminServiceClient::connect(address).await.ok()?;
            let request = admin::DescribeClusterRequest {};
            let view = admin.describe_cluster(request).await.ok()?.into_inner();
            (view.brokers.len() == cluster.brokers.len()).then_some(())
        })
        .await;
        let mut configs: Vec<(String, String)> = configs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        configs.push(("min.insync.replicas".into(), "2".into()));
        let create = admin::CreateTopicsRequest {
            topics: vec![admin::NewTopic {
                topic: TOPIC.to_owned(),
                partitions: PARTITIONS,
                replication_factor: i32::try_from(REPLICAS).unwrap(),
                configs: configs.into_iter().collect(),
            }],
            timeout_ms: 0,
            validate_only: false,
        };
        let mut admin = cluster.brokers[0].admin().await;
        let created = admin.create_topics(create).await.unwrap().into_inner();
        assert!(created.topics[0].error.is_none(), "{created:?}");
        cluster.wait_healthy().await;
        Some(cluster)
    }

    /// Every broker address.
    pub fn bootstrap(&self) -> Vec<String> {
        self.brokers.iter().map(|b| b.address.clone()).collect()
    }

    /// The index of the one active controller once the others answer NOT_CONTROLLER, with its
    /// epoch.
    pub async fn active_controller(&self) -> (usize, i64) {
        let procs: Vec<&ControllerProc> = self.controllers.iter().collect();
        wait_for(SETTLE, "one active controller", || single_active(&procs)).await
    }

    /// Every partition as the broker with the newest leader epoch for it reports it; brokers
    /// that are down or paused are skipped.
    pub async fn partitions(&self) -> Vec<Option<PartitionState>> {
        let mut best: Vec<Option<PartitionState>> = vec![None; PARTITIONS as usize];
        for broker in self.brokers.iter().filter(|b| b.is_running()) {
            let Some(metadata) = broker.metadata().await else {
                continue;
            };
            let Some(topic) = metadata.topics.iter().find(|t| t.topic == TOPIC) else {
                continue;
            };
            for p in &topic.partitions {
                let Some(slot) = usize::try_from(p.partition)
                    .ok()
                    .and_then(|i| best.get_mut(i))
                else {
                    continue;
                };
                if slot
                    .as_ref()
                    .is_some_and(|s| s.leader_epoch >= p.leader_epoch)
                {
                    continue;
                }
                *slot = Some(PartitionState {
                    leader: p.leader_id.and_then(|id| self.index_of(id)),
                    leader_epoch: p.leader_epoch,
                    isr: p.isr.iter().filter_map(|id| self.index_of(*id)).collect(),
                });
            }
        }
        best
    }

    fn index_of(&self, id: i32) -> Option<usize> {
        self.brokers.iter().position(|b| b.id == id)
    }

    /// The leader of `partition` once it serves it, other than `not` and with at least `isr`
    /// in-sync replicas.
    pub async fn leader(&self, partition: i32, not: Option<usize>, isr: usize) -> usize {
        let what = format!("a leader of partition {partition}");
        wait_for(SETTLE, &what, || async {
            let state = self.partitions().await.get(partition as usize)?.clone()?;
            let leader = state.leader?;
            if Some(leader) == not || state.isr.len() < isr {
                return None;
            }
            self.serves(leader, partition).await.then_some(leader)
        })
        .await
    }

    /// Whether broker `index` answers ListOffsets for `partition` as its leader.
    pub async fn serves(&self, index: usize, partition: i32) -> bool {
        self.list_offset(index, partition, pb::OffsetSpec::Latest)
            .await
            .is_some()
    }

    /// The offset `spec` of `partition` as broker `index` answers it; `None` when it does not
    /// answer as the partition's leader.
    pub async fn list_offset(
        &self,
        index: usize,
        partition: i32,
        spec: pb::OffsetSpec,
    ) -> Option<i64> {
        let lookup = pb::ListOffsetsPartition {
            partition,
            spec: spec as i32,
            timestamp_ms: 0,
            current_leader_epoch: None,
        };
        let request = pb::ListOffsetsRequest {
            topics: vec![pb::ListOffsetsTopic {
                topic: TOPIC.to_owned(),
                partitions: vec![lookup],
            }],
        };
        let answer = self
            .call(index, |mut client| async move {
                client.list_offsets(request).await
            })
            .await?;
        let result = answer.topics.first()?.partitions.first()?.clone();
        if result.error.is_some() {
            return None;
        }
        result.offset
    }

    /// Fetches `partition` at `offset` straight from broker `index`, whatever it leads: the
    /// error code it answers (if any) and how many bytes of records it returned. `None` when it
    /// does not answer within 2 s.
    pub async fn fetch_at(
        &self,
        index: usize,
        partition: i32,
        offset: i64,
    ) -> Option<(Option<i32>, usize)> {
        let request = pb::FetchRequest {
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 1 << 20,
            topics: vec![pb::FetchTopic {
                topic: TOPIC.to_owned(),
                partitions: vec![pb::FetchPartition {
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes: 1 << 20,
                    current_leader_epoch: None,
                }],
            }],
        };
        let answer = self
            .call(
                index,
                |mut client| async move { client.fetch(request).await },
            )
            .await?;
        let result = answer.topics.first()?.partitions.first()?.clone();
        Some((result.error.map(|e| e.code), result.records.len()))
    }

    /// One call to broker `index`, bounded as a whole to 2 s (a paused broker accepts
    /// connections but never answers); `None` when it fails or times out.
    async fn call<T, F, Fut>(&self, index: usize, call: F) -> Option<T>
    where
        F: FnOnce(BrokerServiceClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let address = format!("http://{}", self.brokers[index].address);
        let answer = async {
            let client = BrokerServiceClient::connect(address).await.ok()?;
            Some(call(client).await.ok()?.into_inner())
        };
        tokio::time::timeout(Duration::from_secs(2), answer)
            .await
            .ok()?
    }

    /// The log start offset of `partition`, from its leader.
    pub async fn log_start(&self, partition: i32) -> i64 {
        let leader = self.leader(partition, None, 1).await;
        let what = format!("the log start of partition {partition}");
        wait_for(SETTLE, &what, || {
            self.list_offset(leader, partition, pb::OffsetSpec::Earliest)
        })
        .await
    }

    /// Waits until every partition has a serving leader and all replicas in sync.
    pub async fn wait_healthy(&self) {
        for partition in 0..PARTITIONS {
            self.leader(partition, None, REPLICAS).await;
        }
    }
}
