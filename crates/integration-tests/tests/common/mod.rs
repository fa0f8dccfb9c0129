//! A test cluster: real etcd, in-process controllers, and broker processes (the real
//! `strom-broker` binary, so a test can kill -9 one).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use strom_controller::config::ControllerConfig;
use strom_controller::server::BoundController;
use strom_meta::testing::EtcdServer;
use strom_proto::admin::v1::admin_service_client::AdminServiceClient;
use strom_proto::broker::v1 as broker_pb;
use strom_proto::broker::v1::broker_service_client::BrokerServiceClient;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A workspace binary next to this test executable (`target/<profile>/<name>`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `strom-broker` process; its data directory outlives restarts.
pub struct BrokerProc {
    pub id: i32,
    pub address: String,
    config: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl BrokerProc {
    pub fn spawn(id: i32, cluster: &str, etcd: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let text = format!(
            "id = {id}\ncluster = \"{cluster}\"\nlisten = \"{address}\"\nrack = \"rack-{id}\"\n\
             data-dir = \"{}\"\nlease-ttl = \"5s\"\n[etcd]\nendpoints = [\"{etcd}\"]\n\
             [logging]\nlevel = \"warn\"\n",
            dir.path().join("data").display()
        );
        let config = dir.path().join("broker.toml");
        std::fs::write(&config, text).unwrap();
        let mut proc = Self {
            id,
            address,
            config,
            child: None,
            _dir: dir,
        };
        proc.start();
        proc
    }

    pub fn start(&mut self) {
        let child = Command::new(binary("strom-broker"))
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    pub async fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.start_kill().unwrap();
            child.wait().await.unwrap();
        }
    }

    pub async fn admin(&self) -> AdminServiceClient<tonic::transport::Channel> {
        AdminServiceClient::connect(format!("http://{}", self.address))
            .await
            .unwrap()
    }

    /// Metadata for every topic, or `None` while the broker is not answering.
    pub async fn metadata(&self) -> Option<broker_pb::MetadataResponse> {
        let mut client = BrokerServiceClient::connect(format!("http://{}", self.address))
            .await
            .ok()?;
        let request = broker_pb::MetadataRequest {
            topics: Vec::new(),
            all_topics: true,
        };
        let call = tokio::time::timeout(Duration::from_secs(2), client.metadata(request));
        Some(call.await.ok()?.ok()?.into_inner())
    }
}

/// A controller running in this test process.
pub struct InProcController {
    pub address: String,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl InProcController {
    pub async fn start(id: i32, cluster: &str, etcd: &EtcdServer) -> Self {
        let config = ControllerConfig {
            id,
            cluster: cluster.to_owned(),
            listen: "127.0.0.1:0".parse().unwrap(),
            preferred_leader_interval: strom_server_kit::HumanDuration(Duration::from_secs(2)),
            ..ControllerConfig::default()
        };
        let bound = BoundController::bind(config, etcd.store().await)
            .await
            .unwrap();
        let address = bound.local_addr().to_string();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            bound.serve(token).await.unwrap();
        });
        Self {
            address,
            stop,
            task,
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

/// Polls until `check` returns `Some`, failing after `limit`.
pub async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The placement of every partition of `topic` as one broker reports it:
/// (partition, leader, leader epoch, replicas, isr).
pub type Placement = Vec<(i32, Option<i32>, i32, Vec<i32>, Vec<i32>)>;

pub fn placement(metadata: &broker_pb::MetadataResponse, topic: &str) -> Option<Placement> {
    let topic = metadata.topics.iter().find(|t| t.topic == topic)?;
    Some(
        topic
            .partitions
            .iter()
            .map(|p| {
                (
                    p.partition,
                    p.leader_id,
                    p.leader_epoch,
                    p.replicas.clone(),
                    p.isr.clone(),
                )
            })
            .collect(),
    )
}
