//! `strom bench produce`.

use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Args;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use strom_client::{Compression, Producer, ProducerConfig, ProducerRecord};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{LatencyMs, Progress, Report, histogram, payload};
use crate::cmd::AcksArg;
use crate::context::{Context, parse_duration};
use crate::error::{Error, Result};

/// `bench produce` arguments.
#[derive(Debug, Args)]
pub(crate) struct ProduceBench {
    /// The topic (it must exist).
    #[arg(long, short = 't')]
    topic: String,
    /// Records to produce over all producers.
    #[arg(long, short = 'n', default_value_t = 100_000)]
    records: u64,
    /// Stop after this long instead, whatever the record count.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Bytes per record value.
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// Producers running in parallel, each with its own batches.
    #[arg(long, default_value_t = 1)]
    producers: u32,
    /// Batch size in bytes.
    #[arg(long, default_value_t = 64 * 1024)]
    batch_size: usize,
    /// How long a batch waits for more records.
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    linger: Duration,
    /// Batch compression: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: Compression,
    /// Acknowledgement to wait for.
    #[arg(long, value_enum, default_value = "all")]
    acks: AcksArg,
    /// Records per second over all producers; 0 is as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
}

/// What one producer task measured.
struct Outcome {
    sent: u64,
    failed: u64,
    latency: Histogram<u64>,
    first_error: Option<Error>,
}

impl ProduceBench {
    pub(crate) async fn run(self, context: &Context) -> Result<Report> {
        if self.producers == 0 || self.record_size == 0 {
            return Err(Error::usage(
                "--producers and --record-size must be at least 1",
            ));
        }
        let client = context.client().await?;
        client.partition_count(&self.topic).await?;
        let config = ProducerConfig {
            acks: self.acks.into(),
            batch_size: self.batch_size,
            linger: self.linger,
            compression: self.compression,
            enable_idempotence: self.acks == AcksArg::All,
            ..ProducerConfig::default()
        };
        let per_producer = self.records.div_ceil(u64::from(self.producers));
        let progress = Progress::start("produced", self.duration.is_none().then_some(self.records));
        let started = Instant::now();
        let deadline = self.duration.map(|d| started + d);
        let interval = (self.rate > 0)
            .then(|| Duration::from_secs_f64(f64::from(self.producers) / self.rate as f64));
        let mut tasks = JoinSet::new();
        for index in 0..u64::from(self.producers) {
            let producer = Producer::new(client.clone(), config.clone())?;
            let topic = self.topic.clone();
            let size = self.record_size;
            let count = per_producer.min(self.records.saturating_sub(index * per_producer));
            let done = progress.counter();
            tasks.spawn(async move {
                let outcome = drive(
                    &producer, &topic, size, count, deadline, interval, started, &done,
                )
                .await;
                producer.close().await;
                outcome
            });
        }
        let mut latency = histogram();
        let (mut sent, mut failed, mut first_error) = (0, 0, None);
        while let Some(joined) = tasks.join_next().await {
            let outcome =
                joined.map_err(|e| Error::usage(format!("a producer task failed: {e}")))?;
            sent += outcome.sent;
            failed += outcome.failed;
            // Both histograms share the bounds, so adding cannot fail.
            let _ = latency.add(&outcome.latency);
            first_error = first_error.or(outcome.first_error);
        }
        let elapsed = started.elapsed();
        progress.finish().await;
        if sent == 0
            && let Some(error) = first_error
        {
            return Err(error);
        }
        let size = self.record_size as u64;
        let mut report = Report::new("produce", &self.topic, sent, sent * size, elapsed);
        report.latency_ms = Some(LatencyMs::from_micros(&latency));
        report.failed = Some(failed);
        Ok(report)
    }
}

/// Sends `count` records (or until `deadline`), paced by `interval`, and collects each
/// record's send-to-acknowledgement latency.
#[allow(clippy::too_many_arguments)]
async fn drive(
    producer: &Producer,
    topic: &str,
    size: usize,
    count: u64,
    deadline: Option<Instant>,
    interval: Option<Duration>,
    started: Instant,
    done: &std::sync::atomic::AtomicU64,
) -> Outcome {
    let (tx, mut rx) = mpsc::channel(4096);
    let collector = async {
        let mut outcome = Outcome {
            sent: 0,
            failed: 0,
            latency: histogram(),
            first_error: None,
        };
        let mut pending = FuturesUnordered::new();
        let mut open = true;
        while open || !pending.is_empty() {
            tokio::select! {
                next = rx.recv(), if open => match next {
                    Some((sent_at, delivery)) => pending.push(async move {
                        (sent_at, delivery.await)
                    }),
                    None => open = false,
                },
                Some((sent_at, result)) = pending.next(), if !pending.is_empty() => {
                    let result: strom_client::Result<strom_client::RecordMetadata> = result;
                    match result {
                        Ok(_) => {
                            let micros = Instant::now().duration_since(sent_at).as_micros();
                            let _ = outcome.latency.record(u64::try_from(micros).unwrap_or(u64::MAX).max(1));
                            outcome.sent += 1;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(error) => {
                            outcome.failed += 1;
                            outcome.first_error.get_or_insert(error.into());
                        }
                    }
                }
            }
        }
        outcome
    };
    let sender = async {
        let mut first_error = None;
        for seq in 0..count {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            if let Some(every) = interval {
                let due = started + every.mul_f64(seq as f64);
                tokio::time::sleep_until(due).await;
            }
            let record = ProducerRecord::new(topic, payload(size, seq));
            let sent_at = Instant::now();
            match producer.send(record).await {
                Ok(delivery) => {
                    if tx.send((sent_at, delivery)).await.is_err() {
                        break;
                    }
                }
                Err(error) => {
                    first_error = Some(Error::from(error));
                    break;
                }
            }
        }
        drop(tx);
        first_error
    };
    let (mut outcome, send_error) = tokio::join!(collector, sender);
    if let Some(error) = send_error {
        outcome.first_error.get_or_insert(error);
    }
    outcome
}
