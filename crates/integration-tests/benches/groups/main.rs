//! Consumer-group benchmarks against a real etcd, a broker and two `strom-coordinator`
//! processes (release build; run with `make bench-groups`):
//!
//! - offset commits through one coordinator: many groups, each with a member that commits
//!   all of its partitions per request; once as fast as they go (closed loop) and once paced
//!   at a target rate. Reports committed partition offsets per second and request latency
//!   p50 / p99 / max.
//! - rebalance after a join: a stable group of 10 `GroupConsumer`s on 100 partitions, an 11th
//!   joins; the time until every partition has exactly one owner, the owners are balanced and
//!   every moved partition has delivered a record to its new owner. Coordinators use their
//!   default 1 s heartbeat interval.
//!
//! Each figure is the median of `STROM_BENCH_TRIALS` runs (default 3 for commits, 5 for
//! rebalances).
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod commits;
#[path = "../../tests/common/mod.rs"]
mod common;
mod rebalance;

use std::time::Duration;

/// Sorted latency samples.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Self(samples)
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((self.0.len() as f64) * p).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    pub fn count(&self) -> usize {
        self.0.len()
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn trials(default: usize) -> usize {
    std::env::var("STROM_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of `values` (the upper one for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn mark(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects one scenario.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let mut summary = Vec::new();
    if wanted("commits") {
        let Some(figures) = commits::run().await else {
            eprintln!("etcd is not installed: skipping");
            return;
        };
        summary.push(format!(
            "offset commits, closed loop: {:.0} offsets/s (target >= 20000: {}), p99 {:.1} ms",
            figures.saturated.rate,
            mark(figures.saturated.rate >= 20_000.0),
            figures.saturated.p99_ms,
        ));
        summary.push(format!(
            "offset commits paced at {:.0}/s: achieved {:.0}/s, p99 {:.1} ms (target <= 50 ms: {})",
            figures.paced_target,
            figures.paced.rate,
            figures.paced.p99_ms,
            mark(figures.paced.p99_ms <= 50.0 && figures.paced.rate >= 0.95 * figures.paced_target),
        ));
    }
    if wanted("rebalance") {
        let Some(seconds) = rebalance::run().await else {
            eprintln!("etcd is not installed: skipping");
            return;
        };
        summary.push(format!(
            "rebalance after a join (10 -> 11 members, 100 partitions): median {seconds:.2} s \
             (target <= 2 s: {})",
            mark(seconds <= 2.0)
        ));
    }
    println!("\nsummary (medians)");
    for line in summary {
        println!("  {line}");
    }
}
