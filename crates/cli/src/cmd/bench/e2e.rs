//! `strom bench e2e`: produce and consume at once; latency from send to delivery.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use hdrhistogram::Histogram;
use strom_client::{
    Compression, ConsumerConfig, PartitionConsumer, Producer, ProducerConfig, ProducerRecord,
    StartOffset,
};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{LatencyMs, Progress, Report, histogram};
use crate::cmd::AcksArg;
use crate::context::{Context, parse_duration};
use crate::error::{Error, Result};

/// Bytes of the send time stamped at the start of every value.
const STAMP: usize = 20;

/// `bench e2e` arguments.
#[derive(Debug, Args)]
pub(crate) struct E2eBench {
    /// The topic (it must exist).
    #[arg(long, short = 't')]
    topic: String,
    /// Records to produce and consume.
    #[arg(long, short = 'n', default_value_t = 100_000)]
    records: u64,
    /// Bytes per record value (at least 20: the send time is stamped into it).
    #[arg(long, default_value_t = 100)]
    record_size: usize,
    /// Records per second; 0 is as fast as possible (latency then measures queueing).
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// How long a batch waits for more records.
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    linger: Duration,
    /// Batch compression: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: Compression,
    /// Acknowledgement the producer waits for.
    #[arg(long, value_enum, default_value = "all")]
    acks: AcksArg,
    /// Give up after this long.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    timeout: Duration,
}

fn now_micros() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
}

/// A value of `size` bytes starting with the send time in microseconds.
fn stamped(size: usize) -> Vec<u8> {
    let mut value = format!("{:0width$}", now_micros(), width = STAMP).into_bytes();
    value.resize(size.max(STAMP), b'x');
    value
}

fn stamp_of(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value.get(..STAMP)?).ok()?.parse().ok()
}

impl E2eBench {
    pub(crate) async fn run(self, context: &Context) -> Result<Report> {
        if self.record_size < STAMP {
            return Err(Error::usage(format!(
                "--record-size must be at least {STAMP}"
            )));
        }
        let client = context.client().await?;
        let count = client.partition_count(&self.topic).await?;
        let received = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let deadline = started + self.timeout;
        let mut readers: JoinSet<Result<Histogram<u64>>> = JoinSet::new();
        for partition in 0..count {
            let config = ConsumerConfig {
                start: StartOffset::Latest,
                fetch_max_wait: Duration::from_millis(100),
                ..ConsumerConfig::default()
            };
            let mut consumer =
                PartitionConsumer::new(client.clone(), &self.topic, partition, config).await?;
            let (received, total) = (Arc::clone(&received), self.records);
            readers.spawn(async move {
                let mut latency = histogram();
                while received.load(Ordering::Relaxed) < total && Instant::now() < deadline {
                    for record in consumer.poll().await? {
                        let now = now_micros();
                        if let Some(sent) = record.value.as_deref().and_then(stamp_of) {
                            let _ = latency.record(now.saturating_sub(sent).max(1));
                        }
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(latency)
            });
        }
        let config = ProducerConfig {
            acks: self.acks.into(),
            linger: self.linger,
            compression: self.compression,
            enable_idempotence: self.acks == AcksArg::All,
            ..ProducerConfig::default()
        };
        let producer = Producer::new(client, config)?;
        let progress = Progress::start("delivered", Some(self.records));
        let interval = (self.rate > 0).then(|| Duration::from_secs_f64(1.0 / self.rate as f64));
        let delivered = progress.counter();
        let sending = Instant::now();
        let mut deliveries = Vec::new();
        for seq in 0..self.records {
            if let Some(every) = interval {
                tokio::time::sleep_until(sending + every.mul_f64(seq as f64)).await;
            }
            let record = ProducerRecord::new(&self.topic, stamped(self.record_size));
            deliveries.push(producer.send(record).await?);
            delivered.store(received.load(Ordering::Relaxed), Ordering::Relaxed);
        }
        let mut failed = 0;
        for delivery in deliveries {
            if delivery.await.is_err() {
                failed += 1;
            }
        }
        producer.close().await;
        let mut latency = histogram();
        let mut outcome = Ok(());
        while let Some(joined) = readers.join_next().await {
            match joined {
                Ok(Ok(part)) => {
                    let _ = latency.add(&part);
                }
                Ok(Err(error)) => outcome = Err(error),
                Err(e) => return Err(Error::usage(format!("a consumer task failed: {e}"))),
            }
        }
        progress.finish().await;
        outcome?;
        let elapsed = started.elapsed();
        let got = received.load(Ordering::Relaxed);
        if got + failed < self.records {
            return Err(Error::Unreachable(format!(
                "only {got} of {} records arrived within {:?}",
                self.records, self.timeout
            )));
        }
        let size = self.record_size as u64;
        let mut report = Report::new("e2e", &self.topic, got, got * size, elapsed);
        report.latency_ms = Some(LatencyMs::from_micros(&latency));
        report.failed = Some(failed);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        let value = stamped(64);
        assert_eq!(value.len(), 64);
        let stamp = stamp_of(&value).unwrap();
        assert!(now_micros() >= stamp);
        assert_eq!(stamp_of(b"short"), None);
    }
}
