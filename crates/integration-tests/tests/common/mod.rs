//! A test cluster: real etcd, controllers in-process or as processes, and broker processes
//! (the real `strom-broker` and `strom-controller` binaries, so a test can kill -9, SIGSTOP and
//! SIGCONT them).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod bad_input;
pub mod data;
pub mod groups;
pub mod host;
pub mod members;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use strom_controller::config::ControllerConfig;
use strom_controller::server::BoundController;
use strom_meta::testing::EtcdServer;
use strom_proto::admin::v1 as pb;
use strom_proto::admin::v1::admin_service_client::AdminServiceClient;
use strom_proto::broker::v1 as broker_pb;
use strom_proto::broker::v1::broker_service_client::BrokerServiceClient;
use strom_proto::common::v1::ErrorCode;
use tokio::process::Child;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::host::Host;

/// A workspace binary next to this test executable (`target/<profile>/<name>`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `make build` (or `make test`) first",
        path.display()
    );
    path
}

pub use strom_meta::testing::free_port;

/// One `strom-broker` process; its data directory outlives restarts.
pub struct BrokerProc {
    pub id: i32,
    pub address: String,
    /// Where `GET /metrics` is served.
    pub metrics: String,
    config: PathBuf,
    host: Host,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl BrokerProc {
    /// A broker with test timings: followers leave the ISR after 2 s without catching up.
    pub fn spawn(id: i32, cluster: &str, etcd: &str) -> Self {
        Self::spawn_with_lag(id, cluster, etcd, "2s")
    }

    /// A broker whose `replica-lag-time-max` is `lag` (benchmarks use the 10 s default).
    pub fn spawn_with_lag(id: i32, cluster: &str, etcd: &str, lag: &str) -> Self {
        Self::spawn_on(id, cluster, etcd, lag, Host::loopback())
    }

    /// As [`BrokerProc::spawn_with_lag`], listening on and running in `host`.
    pub fn spawn_on(id: i32, cluster: &str, etcd: &str, lag: &str, host: Host) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let address = host.address();
        let metrics = host.address();
        let text = format!(
            "id = {id}\ncluster = \"{cluster}\"\nlisten = \"{address}\"\nrack = \"rack-{id}\"\n\
             data-dir = \"{}\"\nlease-ttl = \"5s\"\nreplica-lag-time-max = \"{lag}\"\nlog-retention-check-interval = \"1s\"\n[etcd]\nendpoints = [\"{etcd}\"]\n\
             [logging]\nlevel = \"warn\"\n[metrics]\nlisten = \"{metrics}\"\n",
            dir.path().join("data").display()
        );
        let config = dir.path().join("broker.toml");
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
        self.child = Some(spawn_service_on(&self.host, "strom-broker", &self.config));
    }

    /// Whether the process was started and not killed or stopped since (it may be paused).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn signal(&self, signal: &str) {
        let pid = self
            .child
            .as_ref()
            .and_then(Child::id)
            .expect("the broker is running");
        send_signal(pid, signal);
    }

    pub async fn kill9(&mut self) {
        kill9(&mut self.child).await;
    }

    /// SIGTERM, then waits for a clean exit.
    pub async fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                send_signal(pid, "TERM");
            }
            let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
                .await
                .expect("the broker exits after SIGTERM")
                .unwrap();
            assert!(status.success(), "broker {} exited with {status}", self.id);
        }
    }

    /// The broker's data directory (`logs/`, `state/`).
    pub fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    pub async fn admin(&self) -> AdminServiceClient<tonic::transport::Channel> {
        AdminServiceClient::connect(format!("http://{}", self.address))
            .await
            .unwrap()
    }

    /// Metadata for every topic, or `None` while the broker is not answering.
    pub async fn metadata(&self) -> Option<broker_pb::MetadataResponse> {
        // Bounded as a whole: a paused broker accepts connections but never answers.
        let call = async {
            let address = format!("http://{}", self.address);
            let mut client = BrokerServiceClient::connect(address).await.ok()?;
            let request = broker_pb::MetadataRequest {
                topics: Vec::new(),
                all_topics: true,
            };
            Some(client.metadata(request).await.ok()?.into_inner())
        };
        tokio::time::timeout(Duration::from_secs(2), call)
            .await
            .ok()?
    }
}

/// A controller running in this test process.
pub struct InProcController {
    pub address: String,
    /// Where `GET /metrics` is served.
    pub metrics: String,
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
            metrics: strom_server_kit::metrics::MetricsConfig {
                enabled: true,
                listen: "127.0.0.1:0".parse().unwrap(),
            },
            ..ControllerConfig::default()
        };
        let bound = BoundController::bind(config, etcd.store().await)
            .await
            .unwrap();
        let address = bound.local_addr().to_string();
        let metrics = bound.metrics_addr().unwrap().to_string();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            bound.serve(token).await.unwrap();
        });
        Self {
            address,
            metrics,
            stop,
            task,
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap();
    }
}

/// kill -9 of a child process, if it runs, waiting for it to exit.
pub async fn kill9(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
}

/// Starts the workspace binary `name` with `--config config`, killed when dropped.
pub fn spawn_service(name: &str, config: &std::path::Path) -> Child {
    spawn_service_on(&Host::loopback(), name, config)
}

/// As [`spawn_service`], on `host`.
pub fn spawn_service_on(host: &Host, name: &str, config: &std::path::Path) -> Child {
    host.command(binary(name))
        .arg("--config")
        .arg(config)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// One `strom-controller` process.
pub struct ControllerProc {
    pub id: i32,
    pub address: String,
    /// Where `GET /metrics` is served.
    pub metrics: String,
    config: PathBuf,
    host: Host,
    child: Child,
    _dir: tempfile::TempDir,
}

impl ControllerProc {
    /// Starts controller `id` of `cluster` against `etcd`.
    pub fn spawn(id: i32, cluster: &str, etcd: &str) -> Self {
        Self::spawn_on(id, cluster, etcd, Host::loopback())
    }

    /// As [`ControllerProc::spawn`], listening on and running in `host`.
    pub fn spawn_on(id: i32, cluster: &str, etcd: &str, host: Host) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let address = host.address();
        let metrics = host.address();
        let config = format!(
            "id = {id}\ncluster = \"{cluster}\"\nlisten = \"{address}\"\nlease-ttl = \"5s\"\n\
             preferred-leader-interval = \"2s\"\n[etcd]\nendpoints = [\"{etcd}\"]\n\
             [logging]\nlevel = \"warn\"\n[metrics]\nlisten = \"{metrics}\"\n"
        );
        let path = dir.path().join("controller.toml");
        std::fs::write(&path, config).unwrap();
        let child = spawn_service_on(&host, "strom-controller", &path);
        Self {
            id,
            address,
            metrics,
            config: path,
            host,
            child,
            _dir: dir,
        }
    }

    /// Starts the process again after [`ControllerProc::kill9`], with the same config.
    pub fn respawn(&mut self) {
        self.child = spawn_service_on(&self.host, "strom-controller", &self.config);
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    /// Waits for the process to exit; its exit code.
    pub async fn wait(&mut self) -> Option<i32> {
        tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .ok()?
            .ok()?
            .code()
    }

    pub async fn kill9(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    pub async fn client(&self) -> Option<AdminServiceClient<tonic::transport::Channel>> {
        AdminServiceClient::connect(format!("http://{}", self.address))
            .await
            .ok()
    }

    /// DescribeCluster on this controller: `Ok(epoch)` when it is active, `Err(code)` otherwise.
    pub async fn describe(&self) -> Result<pb::DescribeClusterResponse, Option<ErrorCode>> {
        // Bounded as a whole: a paused controller accepts connections but never answers.
        let call = async {
            let mut client = self.client().await?;
            let call = client.describe_cluster(pb::DescribeClusterRequest {});
            Some(call.await.ok()?.into_inner())
        };
        let response = tokio::time::timeout(Duration::from_secs(2), call)
            .await
            .map_err(|_| None)?
            .ok_or(None)?;
        match response.error {
            None => Ok(response),
            Some(error) => Err(ErrorCode::try_from(error.code).ok()),
        }
    }
}

/// Sends `signal` (e.g. "TERM", "STOP") to a process this test started.
pub fn send_signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid} failed");
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

/// The index of the one active controller among `procs`, once exactly one is active and every
/// other live one answers NOT_CONTROLLER.
pub async fn single_active(procs: &[&ControllerProc]) -> Option<(usize, i64)> {
    let mut active = None;
    for (i, proc) in procs.iter().enumerate() {
        match proc.describe().await {
            Ok(response) => {
                if active.is_some() {
                    return None;
                }
                active = Some((i, response.controller?.controller_epoch));
            }
            Err(Some(ErrorCode::NotController)) => {}
            Err(_) => return None,
        }
    }
    active
}
