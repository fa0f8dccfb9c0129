//! Data-plane throughput and latency over loopback gRPC with the Rust client, side by side with
//! the yardsticks measured in the same sitting (run with `make bench-data-plane`):
//!
//! - single-stream loopback TCP bandwidth (`iperf3`);
//! - NATS JetStream (`nats-server -js`, file storage): one server, and a three-server cluster
//!   with a replicas=3 stream; async publish with acks pipelined, pull consumer.
//!
//! Strom runs as real `strom-broker` processes (release build) with real etcd. Each figure is
//! the median of `STROM_BENCH_TRIALS` runs (default 3), each on a fresh topic or stream.
//! `STROM_BENCH_SCALE` (default 1.0) scales the record counts.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

#[path = "../../tests/common/mod.rs"]
mod common;
mod iperf;
mod nats;
mod strom;

use std::time::Duration;

use strom_client::Acks;

use crate::nats::NatsCluster;
use crate::strom::StromCluster;

/// Records moved by one run, and how long it took.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    records: u64,
    bytes: u64,
    elapsed: Duration,
}

impl Throughput {
    pub fn new(records: u64, size: usize, elapsed: Duration) -> Self {
        Self {
            records,
            bytes: records * size as u64,
            elapsed,
        }
    }

    fn bytes_per_sec(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64()
    }

    fn records_per_sec(&self) -> f64 {
        self.records as f64 / self.elapsed.as_secs_f64()
    }
}

/// Produce-to-consume latencies of one run.
pub struct Latency {
    samples: Vec<Duration>,
}

impl Latency {
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Self { samples }
    }

    fn percentile(&self, p: f64) -> Duration {
        if self.samples.is_empty() {
            return Duration::ZERO;
        }
        let index = ((self.samples.len() - 1) as f64 * p).round() as usize;
        self.samples[index]
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The run with the median bytes per second.
fn median(mut runs: Vec<Throughput>) -> Throughput {
    runs.sort_by(|a, b| a.bytes_per_sec().total_cmp(&b.bytes_per_sec()));
    runs[runs.len() / 2]
}

fn mb(bytes_per_sec: f64) -> String {
    format!("{:.1} MB/s", bytes_per_sec / 1e6)
}

fn show(name: &str, runs: &[Throughput]) -> Throughput {
    let m = median(runs.to_vec());
    let all: Vec<String> = runs.iter().map(|r| mb(r.bytes_per_sec())).collect();
    println!(
        "{name:<44} {:>12} {:>12.0} rec/s   runs [{}]",
        mb(m.bytes_per_sec()),
        m.records_per_sec(),
        all.join(", ")
    );
    m
}

fn verdict(what: &str, ratio: f64, target: f64) {
    let mark = if ratio >= target { "met" } else { "MISSED" };
    println!("  {what:<60} {ratio:>7.2}x  (target >= {target}x: {mark})");
}

struct Sizes {
    trials: usize,
    large: u64,
    small: u64,
}

async fn run_nats(sizes: &Sizes, replicas: usize) -> Option<[Vec<Throughput>; 4]> {
    let cluster = NatsCluster::start(replicas).await?;
    let mut out: [Vec<Throughput>; 4] = Default::default();
    for trial in 0..sizes.trials {
        let (p, c) = nats::produce_and_consume(
            &cluster,
            &format!("big{trial}"),
            replicas,
            sizes.large,
            1024,
        )
        .await;
        out[0].push(p);
        out[1].push(c);
        let (p, c) = nats::produce_and_consume(
            &cluster,
            &format!("small{trial}"),
            replicas,
            sizes.small,
            100,
        )
        .await;
        out[2].push(p);
        out[3].push(c);
    }
    cluster.stop().await;
    Some(out)
}

async fn run_strom(
    sizes: &Sizes,
    brokers: i32,
    acks: Acks,
) -> Option<([Vec<Throughput>; 4], Latency)> {
    let name = format!("bench-rf{brokers}");
    let cluster = StromCluster::start(&name, brokers).await?;
    let min_isr = brokers.min(2);
    // Latency first, while the cluster carries no other data, so the figure is not shaped by
    // what the throughput runs leave behind (replication backlog, dirty pages in write-back).
    cluster
        .create_topic("bench-latency", brokers, min_isr)
        .await;
    let latency = strom::latency(
        &cluster.client,
        "bench-latency",
        10_000,
        Duration::from_secs(5),
        100,
        acks,
    )
    .await;
    let mut out: [Vec<Throughput>; 4] = Default::default();
    for trial in 0..sizes.trials {
        for (i, (size, count)) in [(1024usize, sizes.large), (100, sizes.small)]
            .into_iter()
            .enumerate()
        {
            let topic = format!("bench-{size}-{trial}");
            cluster.create_topic(&topic, brokers, min_isr).await;
            out[i * 2].push(strom::produce(&cluster.client, &topic, count, size, acks).await);
            out[i * 2 + 1].push(strom::consume(&cluster.client, &topic, count, size).await);
        }
    }
    cluster.stop().await;
    Some((out, latency))
}

#[tokio::main]
async fn main() {
    let scale: f64 = env_or("STROM_BENCH_SCALE", 1.0);
    let sizes = Sizes {
        trials: env_or("STROM_BENCH_TRIALS", 3usize).max(1),
        large: (300_000.0 * scale) as u64,
        small: (1_000_000.0 * scale) as u64,
    };
    println!(
        "data plane: {} trials, {} x 1 KiB and {} x 100 B records per run\n",
        sizes.trials, sizes.large, sizes.small
    );

    let mut tcp = Vec::new();
    for _ in 0..3 {
        tcp.extend(iperf::loopback_bandwidth(3).await);
    }
    tcp.sort_by(f64::total_cmp);
    let tcp = tcp.get(tcp.len() / 2).copied();
    match tcp {
        Some(bw) => println!("{:<44} {:>12}", "loopback TCP, one stream (iperf3)", mb(bw)),
        None => println!("iperf3 not installed: no TCP yardstick"),
    }

    let nats1 = run_nats(&sizes, 1).await;
    let nats3 = run_nats(&sizes, 3).await;
    if nats1.is_none() {
        println!("nats-server not installed: no NATS yardstick");
    }
    let Some((rf1, latency1)) = run_strom(&sizes, 1, Acks::Leader).await else {
        eprintln!("etcd is not installed: cannot run the Strom benchmark");
        return;
    };
    let Some((rf3, latency3)) = run_strom(&sizes, 3, Acks::All).await else {
        return;
    };

    println!();
    let s_p1k = show("strom RF1 acks=1 produce 1 KiB", &rf1[0]);
    let s_c1k = show("strom RF1 consume-all 1 KiB", &rf1[1]);
    let s_p100 = show("strom RF1 acks=1 produce 100 B", &rf1[2]);
    let s_c100 = show("strom RF1 consume-all 100 B", &rf1[3]);
    let s3_p1k = show("strom RF3 acks=all produce 1 KiB", &rf3[0]);
    show("strom RF3 consume-all 1 KiB", &rf3[1]);
    let s3_p100 = show("strom RF3 acks=all produce 100 B", &rf3[2]);
    show("strom RF3 consume-all 100 B", &rf3[3]);
    let nats_medians = |runs: &Option<[Vec<Throughput>; 4]>, label: &str| {
        runs.as_ref().map(|r| {
            [
                show(&format!("NATS {label} publish 1 KiB"), &r[0]),
                show(&format!("NATS {label} consume 1 KiB"), &r[1]),
                show(&format!("NATS {label} publish 100 B"), &r[2]),
                show(&format!("NATS {label} consume 100 B"), &r[3]),
            ]
        })
    };
    let n1 = nats_medians(&nats1, "1 server R1");
    let n3 = nats_medians(&nats3, "3 servers R3");
    for (name, l) in [("RF1 acks=1", &latency1), ("RF3 acks=all", &latency3)] {
        println!(
            "strom {name} end-to-end latency at 10,000 rec/s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} records)",
            l.percentile(0.5).as_secs_f64() * 1e3,
            l.percentile(0.99).as_secs_f64() * 1e3,
            l.percentile(1.0).as_secs_f64() * 1e3,
            l.samples.len()
        );
    }

    println!("\ntargets");
    if let Some(n1) = n1 {
        verdict(
            "RF1 produce 1 KiB vs NATS",
            s_p1k.bytes_per_sec() / n1[0].bytes_per_sec(),
            4.0,
        );
        verdict(
            "RF1 produce 100 B vs NATS",
            s_p100.bytes_per_sec() / n1[2].bytes_per_sec(),
            10.0,
        );
        verdict(
            "RF1 consume 100 B vs NATS",
            s_c100.bytes_per_sec() / n1[3].bytes_per_sec(),
            8.0,
        );
    }
    if let Some(bw) = tcp {
        verdict(
            "RF1 produce 1 KiB vs loopback TCP",
            s_p1k.bytes_per_sec() / bw,
            0.25,
        );
        verdict(
            "RF1 consume 1 KiB vs loopback TCP",
            s_c1k.bytes_per_sec() / bw,
            0.5,
        );
    }
    verdict(
        "RF3 acks=all produce 1 KiB vs RF1",
        s3_p1k.bytes_per_sec() / s_p1k.bytes_per_sec(),
        0.4,
    );
    verdict(
        "RF3 acks=all produce 100 B vs RF1",
        s3_p100.bytes_per_sec() / s_p100.bytes_per_sec(),
        0.4,
    );
    if let Some(n3) = n3 {
        verdict(
            "RF3 produce 1 KiB vs NATS R3",
            s3_p1k.bytes_per_sec() / n3[0].bytes_per_sec(),
            5.0,
        );
        verdict(
            "RF3 produce 100 B vs NATS R3",
            s3_p100.bytes_per_sec() / n3[2].bytes_per_sec(),
            5.0,
        );
    }
    let p99 = |l: &Latency| l.percentile(0.99).as_secs_f64() * 1e3;
    let mark = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "  {:<60} {:>7.2}ms (target <= 1 ms: {})",
        "RF1 end-to-end p99 at 10,000 rec/s",
        p99(&latency1),
        mark(p99(&latency1) <= 1.0)
    );
    println!(
        "  {:<60} {:>7.2}ms (target <= 3 ms: {})",
        "RF3 acks=all end-to-end p99 at 10,000 rec/s",
        p99(&latency3),
        mark(p99(&latency3) <= 3.0)
    );
}
