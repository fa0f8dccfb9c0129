//! `strom dev` as a newcomer uses it: start it, create a topic, produce, consume in a group,
//! see lag 0, benchmark; then stop it and start it again on the same data directory and find
//! everything still there. Needs no etcd: dev mode embeds its metadata store.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// A running `strom dev` and the bootstrap address it printed.
struct Dev {
    child: Child,
    ready: Value,
}

impl Dev {
    async fn start(data_dir: &Path, brokers: &str) -> Self {
        let mut child = Command::new(common::binary("strom"))
            .args(["dev", "--port", "0", "--log-level", "warn", "-o", "json"])
            .args(["--brokers", brokers])
            .arg("--data-dir")
            .arg(data_dir)
            .env_remove("STROM_BROKERS")
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("strom dev gets ready")
            .unwrap()
            .expect("strom dev prints a ready line");
        let ready: Value = serde_json::from_str(&line).unwrap();
        Self { child, ready }
    }

    fn bootstrap(&self) -> String {
        self.ready["bootstrap"].as_str().unwrap().to_owned()
    }

    /// Stops it as ctrl-c would and checks it exits cleanly.
    async fn stop(mut self) {
        let pid = self.child.id().unwrap();
        common::send_signal(pid, "INT");
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("strom dev stops")
            .unwrap();
        assert!(status.success(), "strom dev exited with {status}");
    }
}

/// What one run of `strom` did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// Runs `strom ARGS` with the brokers in `STROM_BROKERS`, as the dev banner suggests.
async fn strom(brokers: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(common::binary("strom"))
        .args(args)
        .env("STROM_BROKERS", brokers)
        .env_remove("STROM_CONFIG")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("strom finishes")
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn json(brokers: &str, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["-o", "json"]);
    strom(brokers, &args, None).await.ok().json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newcomer_flow_works_and_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let dev = Dev::start(data.path(), "3").await;
    assert_eq!(dev.ready["brokers"].as_array().unwrap().len(), 3);
    let brokers = dev.bootstrap();
    let b = brokers.as_str();

    let overview = json(b, &["cluster", "describe"]).await;
    assert_eq!(overview["brokers"].as_array().unwrap().len(), 3);
    assert_eq!(overview["coordinators"].as_array().unwrap().len(), 1);

    // With three brokers, topics replicate three ways unless told otherwise.
    strom(b, &["topic", "create", "hello", "--partitions", "3"], None)
        .await
        .ok();
    let described = json(b, &["topic", "describe", "hello"]).await;
    let partitions = described[0]["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3);
    for partition in partitions {
        assert_eq!(
            partition["replicas"].as_array().unwrap().len(),
            3,
            "{described}"
        );
    }

    let lines: String = (1..=10).map(|i| format!("line {i}\n")).collect();
    strom(b, &["produce", "hello", "--acks", "all"], Some(&lines))
        .await
        .ok();
    let consumed = strom(
        b,
        &[
            "consume",
            "hello",
            "--group",
            "demo",
            "--from",
            "beginning",
            "--num",
            "10",
        ],
        None,
    )
    .await
    .ok();
    let mut seen: Vec<&str> = consumed.stdout.lines().collect();
    seen.sort_unstable();
    let mut expected: Vec<String> = (1..=10).map(|i| format!("line {i}")).collect();
    expected.sort_unstable();
    assert_eq!(seen, expected);

    let group = json(b, &["group", "describe", "demo"]).await;
    assert_eq!(group["totals"]["lag_records"], 0, "{group}");
    let table = strom(b, &["group", "describe", "demo"], None).await.ok();
    assert!(table.stdout.contains("LAG"), "{table:?}");

    let produced = json(
        b,
        &["bench", "produce", "--topic", "hello", "--records", "2000"],
    )
    .await;
    assert_eq!(produced["records"], 2000, "{produced}");
    assert_eq!(produced["failed"], 0, "{produced}");
    let read = json(b, &["bench", "consume", "--topic", "hello"]).await;
    assert_eq!(
        read["records"], 2010,
        "bench consume reads everything produced"
    );

    // The README's benchmark step: the standard set at its quick scale, checked by its own
    // read-back count.
    let suite = json(b, &["bench", "suite", "--scale", "quick"]).await;
    assert_eq!(suite["produced"], 17_000, "{suite}");
    assert_eq!(suite["consumed"], 17_000, "{suite}");
    assert_eq!(suite["replication_factor"], 3, "{suite}");
    assert_eq!(suite["steps"].as_array().unwrap().len(), 5, "{suite}");
    let topics = json(b, &["topic", "list"]).await;
    assert_eq!(
        topics.as_array().unwrap().len(),
        1,
        "the suite deletes its topics: {topics}"
    );

    // Error paths against dev mode too.
    let unknown = strom(b, &["topic", "describe", "nope"], None).await;
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert!(
        unknown.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"),
        "{unknown:?}"
    );
    let invalid = strom(b, &["topic", "create", "bad", "--partitions", "x"], None).await;
    assert_eq!(invalid.code, 2, "{invalid:?}");

    dev.stop().await;
    let down = strom(&brokers, &["topic", "list", "--timeout", "1s"], None).await;
    assert_eq!(
        down.code, 3,
        "nothing answers once dev mode stopped: {down:?}"
    );

    // Everything is still there after a restart on the same directory.
    let dev = Dev::start(data.path(), "3").await;
    let brokers = dev.bootstrap();
    let b = brokers.as_str();
    // Followers catch up with the restarted leaders before the high watermarks are back.
    common::wait_for(
        Duration::from_secs(30),
        "high watermarks after restart",
        || async {
            let described = json(b, &["topic", "describe", "hello"]).await;
            let stored: i64 = described[0]["partitions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["high_watermark"].as_i64().unwrap_or(0))
                .sum();
            (stored == 2010).then_some(())
        },
    )
    .await;
    let group = json(b, &["group", "describe", "demo"]).await;
    let committed: i64 = group["offsets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["committed_offset"].as_i64().unwrap())
        .sum();
    assert_eq!(committed, 10, "committed offsets survive: {group}");
    strom(b, &["produce", "hello"], Some("after restart\n"))
        .await
        .ok();
    let read = json(b, &["bench", "consume", "--topic", "hello"]).await;
    assert_eq!(read["records"], 2011);
    dev.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_mode_refuses_bad_arguments_with_the_usage_exit_code() {
    let data = tempfile::tempdir().unwrap();
    for brokers in ["0", "many", "127.0.0.1:9092"] {
        let run = Command::new(common::binary("strom"))
            .args(["dev", "--port", "0", "--brokers", brokers])
            .arg("--data-dir")
            .arg(data.path())
            .output()
            .await
            .unwrap();
        assert_eq!(run.status.code(), Some(2), "--brokers {brokers}: {run:?}");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(stderr.contains("--brokers"), "{stderr}");
    }
}
