//! `--log-format json` makes a service write one JSON object per log line on stderr.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use strom_meta::testing::EtcdServer;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_log_lines_parse_and_name_their_level_and_message() {
    let Some(etcd) = EtcdServer::start().await else {
        return;
    };
    let listen = format!("127.0.0.1:{}", common::free_port());
    let mut child = tokio::process::Command::new(common::binary("strom-controller"))
        .args(["--log-format", "json"])
        .args([
            "--set",
            "cluster=logging",
            "--set",
            &format!("listen={listen}"),
        ])
        .args(["--set", "metrics.enabled=false"])
        .args([
            "--set",
            &format!("etcd.endpoints=[\"{}\"]", etcd.endpoint()),
        ])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let event: serde_json::Value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(event["level"].is_string(), "{event}");
            assert!(event["timestamp"].is_string(), "{event}");
            seen.push(event.clone());
            if event["message"] == "controller listening" {
                return event;
            }
        }
        panic!("stderr closed before the listening line: {seen:?}");
    })
    .await
    .expect("the controller logs that it listens");
    assert_eq!(found["level"], "INFO");
    assert_eq!(found["address"], listen.as_str());
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}
