//! The NATS JetStream yardstick: `nats-server -js` with file storage (one server, or a
//! three-server cluster with a replicas=3 stream), async publish with acks pipelined, and a
//! pull consumer reading everything back.

use std::collections::VecDeque;
use std::process::Stdio;
use std::time::Duration;

use async_nats::jetstream;
use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use bytes::Bytes;
use futures::StreamExt;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::Throughput;
use crate::common::free_port;

/// Publishes awaiting acknowledgement at once.
const PUBLISH_WINDOW: usize = 4096;

/// Running `nats-server` processes and the client URL of the first.
pub struct NatsCluster {
    servers: Vec<Child>,
    _dirs: Vec<tempfile::TempDir>,
    pub url: String,
}

impl NatsCluster {
    /// Starts `size` JetStream servers (clustered when more than one); `None` when
    /// `nats-server` is not installed.
    pub async fn start(size: usize) -> Option<Self> {
        let client_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let route_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let routes: Vec<String> = route_ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect();
        let mut servers = Vec::new();
        let mut dirs = Vec::new();
        for i in 0..size {
            let dir = tempfile::tempdir().ok()?;
            let mut command = Command::new("nats-server");
            command
                .args(["-a", "127.0.0.1", "-js", "-sd"])
                .arg(dir.path())
                .args(["-p", &client_ports[i].to_string()])
                .args(["--server_name", &format!("n{i}")]);
            if size > 1 {
                command
                    .args(["--cluster_name", "bench"])
                    .args(["--cluster", &routes[i]])
                    .args(["--routes", &routes.join(",")]);
            }
            let child = command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .ok()?;
            servers.push(child);
            dirs.push(dir);
        }
        Some(Self {
            servers,
            _dirs: dirs,
            url: format!("nats://127.0.0.1:{}", client_ports[0]),
        })
    }

    /// Stops every server.
    pub async fn stop(mut self) {
        for server in &mut self.servers {
            let _ = server.start_kill();
            let _ = server.wait().await;
        }
    }
}

async fn connect(url: &str) -> jetstream::Context {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(client) = async_nats::connect(url).await {
            return jetstream::new(client);
        }
        assert!(
            Instant::now() < deadline,
            "nats-server at {url} did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates a fresh file-backed stream `name` on subject `name`, retrying while a cluster
/// elects its meta leader.
async fn create_stream(js: &jetstream::Context, name: &str, replicas: usize) {
    let config = StreamConfig {
        name: name.to_owned(),
        subjects: vec![name.to_owned()],
        storage: StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match js.create_stream(config.clone()).await {
            Ok(_) => return,
            Err(error) => {
                assert!(Instant::now() < deadline, "cannot create stream: {error}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}

/// Publishes `count` records of `size` bytes to a new stream with acks pipelined, then reads
/// them all back with a pull consumer. Returns (produce, consume) throughput.
pub async fn produce_and_consume(
    cluster: &NatsCluster,
    stream: &str,
    replicas: usize,
    count: u64,
    size: usize,
) -> (Throughput, Throughput) {
    let js = connect(&cluster.url).await;
    create_stream(&js, stream, replicas).await;
    let payload = Bytes::from(vec![b'n'; size]);
    let started = Instant::now();
    let mut pending = VecDeque::with_capacity(PUBLISH_WINDOW);
    for _ in 0..count {
        if pending.len() == PUBLISH_WINDOW {
            let ack: jetstream::context::PublishAckFuture =
                pending.pop_front().expect("the window is full");
            ack.await.expect("publish acknowledged");
        }
        let ack = js
            .publish(stream.to_owned(), payload.clone())
            .await
            .expect("publish sent");
        pending.push_back(ack);
    }
    for ack in pending {
        ack.await.expect("publish acknowledged");
    }
    let produce = Throughput::new(count, size, started.elapsed());

    let consumer = js
        .get_stream(stream)
        .await
        .expect("the stream exists")
        .create_consumer(pull::Config {
            durable_name: Some(format!("{stream}-reader")),
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("consumer created");
    let started = Instant::now();
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(10_000)
        .messages()
        .await
        .expect("pull subscription");
    let mut seen = 0u64;
    while seen < count {
        let message = messages
            .next()
            .await
            .expect("the stream goes on")
            .expect("a message");
        assert_eq!(message.payload.len(), size);
        seen += 1;
    }
    let consume = Throughput::new(count, size, started.elapsed());
    (produce, consume)
}
