//! The `strom` binary against a real etcd, a controller, a broker and two coordinators: every
//! command group in table and JSON output, and the error paths with their exit codes.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;

use common::groups::GroupCluster;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// What one run of `strom` did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "{self:?}");
        self
    }
}

async fn strom(broker: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(common::binary("strom"))
        .args(["--brokers", broker])
        .args(args)
        .env_remove("STROM_BROKERS")
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
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("strom finishes")
        .unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `strom ARGS -o json`, which must succeed, and parses its output.
async fn json(broker: &str, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["-o", "json"]);
    strom(broker, &args, None).await.ok().json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_records_groups_and_the_cluster_from_the_command_line() {
    let Some(cluster) = GroupCluster::start("cli", 1, 0).await else {
        return;
    };
    let broker = cluster.broker.address.as_str();

    // Topics.
    let created = strom(
        broker,
        &["topic", "create", "events", "-p", "3", "-r", "1"],
        None,
    )
    .await;
    assert!(created.ok().stdout.contains("events"));
    let listed = json(broker, &["topic", "list"]).await;
    let events = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "events")
        .unwrap();
    assert_eq!(events["partitions"], 3);
    let yaml = strom(broker, &["topic", "list", "-o", "yaml"], None)
        .await
        .ok();
    assert!(yaml.stdout.contains("topic: events"), "{yaml:?}");
    let described = json(broker, &["topic", "describe", "events"]).await;
    let partitions = described[0]["partitions"].as_array().unwrap();
    assert_eq!(partitions.len(), 3);
    assert!(
        partitions
            .iter()
            .all(|p| p["leader"] == 1 && p["under_replicated"] == false)
    );
    let table = strom(broker, &["topic", "describe", "events"], None)
        .await
        .ok();
    assert!(table.stdout.contains("HIGH-WATERMARK"), "{table:?}");

    strom(
        broker,
        &[
            "topic",
            "alter-config",
            "events",
            "--set",
            "retention.ms=3600000",
        ],
        None,
    )
    .await
    .ok();
    let configs = json(broker, &["topic", "describe-config", "events"]).await;
    let retention = configs["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "retention.ms")
        .unwrap();
    assert_eq!(retention["value"], "3600000");
    assert_eq!(retention["source"], "topic");

    // Ten lines in, ten records out, directly and through a group.
    let lines: String = (0..10).map(|i| format!("line-{i}\n")).collect();
    let produced = strom(broker, &["produce", "events", "-o", "json"], Some(&lines))
        .await
        .ok()
        .json();
    assert_eq!(produced["records"], 10);
    let after = json(broker, &["topic", "describe", "events"]).await;
    let ends: i64 = after[0]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["log_start_offset"], 0, "{p}");
            p["high_watermark"].as_i64().unwrap()
        })
        .sum();
    assert_eq!(ends, 10, "{after}");
    let consumed = strom(
        broker,
        &[
            "consume",
            "events",
            "--from",
            "beginning",
            "--num",
            "10",
            "-o",
            "json",
        ],
        None,
    )
    .await
    .ok();
    let mut values: Vec<String> = consumed
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["value"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    values.sort();
    let mut expected: Vec<String> = (0..10).map(|i| format!("line-{i}")).collect();
    expected.sort();
    assert_eq!(values, expected);
    let templated = strom(
        broker,
        &[
            "consume",
            "events",
            "-p",
            "0",
            "--from",
            "beginning",
            "--format",
            "{partition}:{offset}:{value}",
        ],
        None,
    )
    .await
    .ok();
    assert!(
        templated.stdout.lines().all(|l| l.starts_with("0:")),
        "{templated:?}"
    );

    let grouped = strom(
        broker,
        &[
            "consume",
            "events",
            "--group",
            "readers",
            "--from",
            "beginning",
            "--num",
            "10",
        ],
        None,
    )
    .await
    .ok();
    assert_eq!(grouped.stdout.lines().count(), 10, "{grouped:?}");
    let group = json(broker, &["group", "describe", "readers"]).await;
    assert_eq!(group["totals"]["lag_records"], 0, "{group}");
    let groups = json(broker, &["group", "list"]).await;
    assert!(
        groups
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["group"] == "readers")
    );
    let reset = json(
        broker,
        &[
            "group",
            "reset-offsets",
            "readers",
            "--topic",
            "events",
            "--to-earliest",
        ],
    )
    .await;
    assert!(
        reset["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["new_offset"] == 0)
    );
    let lagging = json(broker, &["group", "describe", "readers"]).await;
    assert_eq!(lagging["totals"]["lag_records"], 10);

    let overview = json(broker, &["cluster", "describe"]).await;
    assert_eq!(overview["brokers"].as_array().unwrap().len(), 1);
    assert_eq!(overview["coordinators"].as_array().unwrap().len(), 2);
    assert!(overview["controller"]["epoch"].as_i64().unwrap() > 0);
    assert_eq!(overview["under_replicated_partitions"], 0);

    // Error paths: a definite code and hint, and the documented exit codes.
    let unknown = strom(broker, &["topic", "describe", "nope"], None).await;
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert!(
        unknown.stderr.contains("UNKNOWN_TOPIC_OR_PARTITION"),
        "{unknown:?}"
    );
    assert!(unknown.stderr.contains("hint:"), "{unknown:?}");
    assert_eq!(unknown.stderr.lines().count(), 1, "one line: {unknown:?}");
    let produce_unknown = strom(broker, &["produce", "nope"], Some("x\n")).await;
    assert_eq!(produce_unknown.code, 1, "{produce_unknown:?}");
    let exists = strom(broker, &["topic", "create", "events"], None).await;
    assert_eq!(exists.code, 1);
    assert!(exists.stderr.contains("TOPIC_ALREADY_EXISTS"), "{exists:?}");
    let dead = format!("127.0.0.1:{}", common::free_port());
    let unreachable = strom(&dead, &["topic", "list", "--timeout", "1s"], None).await;
    assert_eq!(unreachable.code, 3, "{unreachable:?}");
    assert!(!unreachable.stderr.contains("panicked"), "{unreachable:?}");
    for bad in [
        vec!["topic", "create"],
        vec!["consume", "events", "--from", "yesterday"],
        vec!["group", "reset-offsets", "readers", "--topic", "events"],
        vec!["produce", "events", "--acks", "2"],
    ] {
        let run = strom(broker, &bad, None).await;
        assert_eq!(run.code, 2, "{bad:?}: {run:?}");
    }
    let no_separator = strom(broker, &["produce", "events", "-k", ":"], Some("novalue\n")).await;
    assert_eq!(no_separator.code, 2, "{no_separator:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_figures_agree_with_an_independent_count() {
    let Some(cluster) = GroupCluster::start("cli-bench", 1, 0).await else {
        return;
    };
    let broker = cluster.broker.address.as_str();
    strom(
        broker,
        &["topic", "create", "load", "-p", "3", "-r", "1"],
        None,
    )
    .await
    .ok();
    let produced = json(
        broker,
        &[
            "bench",
            "produce",
            "--topic",
            "load",
            "--records",
            "5000",
            "--producers",
            "2",
        ],
    )
    .await;
    assert_eq!(produced["records"], 5000, "{produced}");
    assert_eq!(produced["failed"], 0, "{produced}");
    assert_eq!(produced["bytes"], 5000 * 100);
    assert!(
        produced["latency_ms"]["p99"].as_f64().unwrap() > 0.0,
        "{produced}"
    );
    let described = json(broker, &["topic", "describe", "load"]).await;
    let stored: i64 = described[0]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["high_watermark"].as_i64().unwrap())
        .sum();
    assert_eq!(stored, 5000, "every acknowledged record is in the log");
    let consumed = json(
        broker,
        &["bench", "consume", "--topic", "load", "--consumers", "2"],
    )
    .await;
    assert_eq!(consumed["records"], 5000, "{consumed}");
    assert_eq!(consumed["bytes"], 5000 * 100);
    let table = strom(
        broker,
        &["bench", "produce", "--topic", "load", "--records", "100"],
        None,
    )
    .await
    .ok();
    assert!(table.stdout.contains("RECORDS/S"), "{table:?}");
    let e2e = json(
        broker,
        &[
            "bench",
            "e2e",
            "--topic",
            "load",
            "--records",
            "2000",
            "--rate",
            "2000",
        ],
    )
    .await;
    assert_eq!(e2e["records"], 2000, "{e2e}");
    let p50 = e2e["latency_ms"]["p50"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 < 5_000.0, "{e2e}");
    let missing = strom(broker, &["bench", "produce", "--topic", "nope"], None).await;
    assert_eq!(missing.code, 1, "{missing:?}");
}
