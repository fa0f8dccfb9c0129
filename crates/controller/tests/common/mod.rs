//! Controller processes for tests: the real `strom-controller` binary, so tests can kill -9,
//! SIGSTOP and SIGCONT it.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use strom_proto::admin::v1 as pb;
use strom_proto::admin::v1::admin_service_client::AdminServiceClient;
use strom_proto::common::v1::ErrorCode;
use tokio::process::{Child, Command};
use tokio::time::Instant;

/// One `strom-controller` process.
pub struct ControllerProc {
    pub id: i32,
    pub address: String,
    child: Child,
    _dir: tempfile::TempDir,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl ControllerProc {
    /// Starts controller `id` of `cluster` against `etcd`.
    pub fn spawn(id: i32, cluster: &str, etcd: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let address = format!("127.0.0.1:{}", free_port());
        let config = format!(
            "id = {id}\ncluster = \"{cluster}\"\nlisten = \"{address}\"\nlease-ttl = \"5s\"\n\
             preferred-leader-interval = \"2s\"\n[etcd]\nendpoints = [\"{etcd}\"]\n\
             [logging]\nlevel = \"warn\"\n"
        );
        let path = dir.path().join("controller.toml");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_strom-controller"))
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self {
            id,
            address,
            child,
            _dir: dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
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
        let mut client = self.client().await.ok_or(None)?;
        let call = client.describe_cluster(pb::DescribeClusterRequest {});
        let response = tokio::time::timeout(Duration::from_secs(2), call)
            .await
            .map_err(|_| None)?
            .map_err(|_| None)?
            .into_inner();
        match response.error {
            None => Ok(response),
            Some(error) => Err(ErrorCode::try_from(error.code).ok()),
        }
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
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
