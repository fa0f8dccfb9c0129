//! `strom bench`: produce and consume load with throughput and latency figures.

mod consume;
mod e2e;
mod produce;
mod suite;

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Subcommand;
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use crate::context::Context;
use crate::error::Result;
use crate::output::{Render, Table};

/// Bench subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Produce generated records as fast as allowed; report records/s, MB/s and ack latency.
    #[command(
        after_help = "Example:\n  strom bench produce --topic bench --records 1000000 --record-size 100 --producers 2"
    )]
    Produce(produce::ProduceBench),
    /// Read a topic from the beginning; report records/s and MB/s.
    #[command(
        after_help = "Example:\n  strom bench consume --topic bench --records 1000000 --consumers 2"
    )]
    Consume(consume::ConsumeBench),
    /// Produce at a fixed rate while consuming; report the send-to-delivery latency.
    #[command(
        after_help = "Example:\n  strom bench e2e --topic bench --records 100000 --rate 10000"
    )]
    E2e(e2e::E2eBench),
    /// The standard set: produce (three shapes), read everything back, end-to-end latency; one
    /// table. Creates its own topics and deletes them afterwards.
    #[command(
        after_help = "Examples:\n  strom bench suite\n  strom bench suite --scale quick -o json"
    )]
    Suite(suite::SuiteBench),
}

impl BenchCommand {
    /// Runs the benchmark.
    pub(crate) async fn run(self, context: &Context) -> Result<()> {
        let report = match self {
            Self::Produce(args) => args.run(context).await?,
            Self::Consume(args) => args.run(context).await?,
            Self::E2e(args) => args.run(context).await?,
            Self::Suite(args) => {
                return crate::output::print(context.format, &args.run(context).await?);
            }
        };
        crate::output::print(context.format, &report)
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Serialize)]
pub(crate) struct LatencyMs {
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl LatencyMs {
    fn from_micros(histogram: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50: ms(histogram.value_at_quantile(0.5)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
        }
    }
}

/// The figures of one benchmark run.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    mode: &'static str,
    topic: String,
    records: u64,
    bytes: u64,
    seconds: f64,
    records_per_sec: f64,
    mb_per_sec: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<LatencyMs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<u64>,
}

impl Report {
    fn new(mode: &'static str, topic: &str, records: u64, bytes: u64, elapsed: Duration) -> Self {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Self {
            mode,
            topic: topic.to_owned(),
            records,
            bytes,
            seconds,
            records_per_sec: records as f64 / seconds,
            mb_per_sec: bytes as f64 / seconds / 1e6,
            latency_ms: None,
            failed: None,
        }
    }
}

impl Render for Report {
    fn tables(&self) -> Vec<Table> {
        let mut headers = vec!["MODE", "RECORDS", "SECONDS", "RECORDS/S", "MB/S"];
        if self.latency_ms.is_some() {
            headers.extend(["P50-MS", "P99-MS", "P99.9-MS", "MAX-MS"]);
        }
        if self.failed.is_some() {
            headers.push("FAILED");
        }
        let mut row = vec![
            self.mode.to_owned(),
            self.records.to_string(),
            format!("{:.2}", self.seconds),
            format!("{:.0}", self.records_per_sec),
            format!("{:.2}", self.mb_per_sec),
        ];
        if let Some(l) = &self.latency_ms {
            row.extend([l.p50, l.p99, l.p999, l.max].map(|v| format!("{v:.2}")));
        }
        if let Some(failed) = self.failed {
            row.push(failed.to_string());
        }
        let mut table =
            Table::new(headers).titled(format!("bench {} on {}", self.mode, self.topic));
        table.row(row);
        vec![table]
    }
}

/// A live progress line on stderr (only when stderr is a terminal), updated every second.
struct Progress {
    done: Arc<AtomicU64>,
    stop: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    fn start(what: &'static str, total: Option<u64>) -> Self {
        let done = Arc::new(AtomicU64::new(0));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let task = std::io::stderr().is_terminal().then(|| {
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let started = Instant::now();
                let mut ticker = tokio::time::interval(Duration::from_secs(1));
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                ticker.reset();
                loop {
                    tokio::select! {
                        _ = stopped.changed() => break,
                        _ = ticker.tick() => {}
                    }
                    let n = done.load(Ordering::Relaxed);
                    let rate = n as f64 / started.elapsed().as_secs_f64();
                    let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
                    let line = format!("\r{what} {n}{of} records, {rate:.0} records/s   ");
                    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
                }
                let _ = std::io::Write::write_all(&mut std::io::stderr(), b"\n");
            })
        });
        Self { done, stop, task }
    }

    fn counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.done)
    }

    async fn finish(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// A latency histogram in microseconds, from 1 µs to 10 minutes at 3 significant digits.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant histogram bounds are valid")
}

/// A value of `size` bytes, different for each record.
fn payload(size: usize, seq: u64) -> Vec<u8> {
    let mut value = vec![b'x'; size];
    let digits = seq.to_string();
    let n = digits.len().min(size);
    value[..n].copy_from_slice(&digits.as_bytes()[..n]);
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_asked_size_and_differ() {
        assert_eq!(payload(10, 7).len(), 10);
        assert_ne!(payload(10, 7), payload(10, 8));
        assert_eq!(payload(2, 12345), b"12".to_vec());
    }

    #[test]
    fn reports_compute_rates() {
        let report = Report::new("produce", "t", 1000, 100_000, Duration::from_secs(2));
        assert_eq!(report.records_per_sec, 500.0);
        assert_eq!(report.mb_per_sec, 0.05);
    }
}
