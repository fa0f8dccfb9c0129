//! The loopback yardstick: single-stream TCP bandwidth measured by `iperf3`.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::common::free_port;

/// Bytes per second of one TCP stream over loopback, measured for `seconds`; `None` when
/// `iperf3` is not installed or its output cannot be read.
pub async fn loopback_bandwidth(seconds: u64) -> Option<f64> {
    let port = free_port().to_string();
    let mut server = Command::new("iperf3")
        .args(["-s", "-1", "-B", "127.0.0.1", "-p", &port])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let output = Command::new("iperf3")
        .args(["-c", "127.0.0.1", "-p", &port, "-J", "-t"])
        .arg(seconds.to_string())
        .output()
        .await
        .ok()?;
    let _ = server.wait().await;
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    let bits = report["end"]["sum_received"]["bits_per_second"].as_f64()?;
    Some(bits / 8.0)
}
