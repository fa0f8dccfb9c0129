//! Test support: a real etcd on free loopback ports (or in a network namespace the test
//! created) with a temporary data directory.
//!
//! Tests that need etcd call [`EtcdServer::start`] (a private instance, e.g. to restart it) or
//! [`shared_etcd`] (one instance per test binary; give each test its own key prefix). When the
//! `etcd` binary is missing they skip, unless `STROM_REQUIRE_ETCD=1` (set by CI) makes that a
//! failure. etcd runs under a small shell guard that stops it when the test process exits, even
//! on a panic or abort, so no etcd outlives its tests.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

use crate::{EtcdOptions, EtcdStore, MetaStore};

/// The environment variable that turns a missing etcd into a test failure.
pub const REQUIRE_ETCD_ENV: &str = "STROM_REQUIRE_ETCD";

/// The environment variable naming the etcd binary (default: `etcd` on `PATH`).
pub const ETCD_BIN_ENV: &str = "STROM_ETCD_BIN";

/// A running etcd owned by a test.
#[derive(Debug)]
pub struct EtcdServer {
    binary: PathBuf,
    data: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    /// The address it listens on.
    host: String,
    /// The network namespace it runs in (`ip netns exec`); `None` for the test's own.
    netns: Option<String>,
    guard: Option<(Child, ChildStdin)>,
}

/// A loopback port that is free now, for a server a test is about to start.
///
/// Ports come from below the kernel's ephemeral range (32768 and up on Linux): a port the
/// kernel handed out for `bind(0)` can be taken by any outgoing connection before the server
/// binds it, which busy multi-process tests hit. Each process starts at its own place in the
/// range and never hands out a port twice.
pub fn free_port() -> u16 {
    const FIRST: u32 = 20_000;
    const COUNT: u32 = 12_000;
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919) % COUNT;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(
            n < COUNT,
            "no free loopback port left below the ephemeral range"
        );
        let port = u16::try_from(FIRST + (start + n) % COUNT).expect("ports fit in u16");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn find_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os(ETCD_BIN_ENV) {
        return Some(PathBuf::from(bin));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
}

fn temp_root() -> PathBuf {
    // tmpfs keeps etcd's WAL preallocation and fsyncs cheap.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

impl EtcdServer {
    /// Starts a private etcd and waits until it answers; `None` (test skipped) when etcd is not
    /// installed and not required.
    pub async fn start() -> Option<Self> {
        Self::start_on("127.0.0.1", None).await
    }

    /// As [`EtcdServer::start`], listening on `host` inside network namespace `netns` (one
    /// the test created; `None` for the test's own).
    pub async fn start_on(host: &str, netns: Option<&str>) -> Option<Self> {
        let Some(binary) = find_binary() else {
            assert!(
                std::env::var(REQUIRE_ETCD_ENV).as_deref() != Ok("1"),
                "etcd is required ({REQUIRE_ETCD_ENV}=1) but no etcd binary was found"
            );
            #[allow(clippy::print_stderr)] // tell the person running tests why nothing ran
            {
                eprintln!("etcd not found on PATH: skipping a test that needs a real etcd");
            }
            return None;
        };
        let data = tempfile::Builder::new()
            .prefix("strom-etcd-")
            .tempdir_in(temp_root())
            .expect("create a temp dir for etcd");
        let mut server = Self {
            binary,
            data,
            client_port: free_port(),
            peer_port: free_port(),
            host: host.to_owned(),
            netns: netns.map(str::to_owned),
            guard: None,
        };
        server.launch().await;
        Some(server)
    }

    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.host, self.client_port)
    }

    /// Connection options for this server.
    pub fn options(&self) -> EtcdOptions {
        EtcdOptions::new(vec![self.endpoint()])
    }

    /// A new client of this server.
    pub async fn store(&self) -> Arc<dyn MetaStore> {
        Arc::new(
            EtcdStore::connect(&self.options())
                .await
                .expect("connect to the test etcd"),
        )
    }

    /// Stops etcd (SIGTERM), keeping its data directory for [`EtcdServer::restart`].
    pub fn stop(&mut self) {
        self.halt(true);
    }

    fn halt(&mut self, keep_data: bool) {
        if let Some((mut child, mut stdin)) = self.guard.take() {
            if keep_data {
                let _ = stdin.write_all(b"keep\n");
            }
            drop(stdin);
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports and data directory.
    pub async fn restart(&mut self) {
        self.stop();
        self.launch().await;
    }

    async fn launch(&mut self) {
        let name = "strom-test";
        let client = self.endpoint();
        let peer = format!("http://{}:{}", self.host, self.peer_port);
        let args = [
            "--logger=zap".to_owned(),
            "--log-level=error".to_owned(),
            format!("--name={name}"),
            format!("--data-dir={}", self.data.path().join("etcd").display()),
            format!("--listen-client-urls={client}"),
            format!("--advertise-client-urls={client}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster={name}={peer}"),
        ];
        // The guard shell stops etcd once its stdin closes: when the server is stopped or
        // dropped, or when the test process dies for any reason. Unless told to keep it, it
        // then deletes the data directory, which a static server's `TempDir` never would.
        let script = r#"bin="$1"; dir="$2"; shift 2; "$bin" "$@" & pid=$!
read -r cmd; kill "$pid"; wait "$pid" 2>/dev/null; [ "$cmd" = keep ] || rm -rf "$dir""#;
        let mut command = match &self.netns {
            Some(netns) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", netns, "sh"]);
                command
            }
            None => Command::new("sh"),
        };
        let mut child = command
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&self.binary)
            .arg(self.data.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn etcd");
        let stdin = child.stdin.take().expect("guard stdin is piped");
        self.guard = Some((child, stdin));
        self.wait_ready().await;
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(store) = EtcdStore::connect(&self.options()).await
                && store.list("/").await.is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd at {} did not become ready",
                self.endpoint()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.halt(false);
    }
}

/// One etcd per test binary, started on first use; `None` when etcd is not installed and not
/// required. Give each test a unique key prefix with [`unique_prefix`].
pub async fn shared_etcd() -> Option<&'static EtcdServer> {
    static SERVER: OnceLock<Option<EtcdServer>> = OnceLock::new();
    if let Some(server) = SERVER.get() {
        return server.as_ref();
    }
    // Tests race to start it; the loser's instance is dropped (and stopped) right away.
    let started = EtcdServer::start().await;
    let _ = SERVER.set(started);
    SERVER.get().and_then(Option::as_ref)
}

/// A key prefix no other test in this process uses.
pub fn unique_prefix(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("/strom-test/{}-{name}-{n}/", std::process::id())
}
