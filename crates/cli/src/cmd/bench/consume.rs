//! `strom bench consume`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use strom_client::{ConsumerConfig, PartitionConsumer, StartOffset};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::{Progress, Report};
use crate::context::{Context, parse_duration};
use crate::error::{Error, Result};

/// `bench consume` arguments.
#[derive(Debug, Args)]
pub(crate) struct ConsumeBench {
    /// The topic.
    #[arg(long, short = 't')]
    topic: String,
    /// Stop after reading this many records over all partitions; default: everything up to
    /// each partition's end at the start.
    #[arg(long, short = 'n')]
    records: Option<u64>,
    /// Give up after this long.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    timeout: Duration,
    /// Consumers in parallel; partitions are dealt out among them.
    #[arg(long, default_value_t = 1)]
    consumers: u32,
}

impl ConsumeBench {
    pub(crate) async fn run(self, context: &Context) -> Result<Report> {
        if self.consumers == 0 {
            return Err(Error::usage("--consumers must be at least 1"));
        }
        let client = context.client().await?;
        let count = client.partition_count(&self.topic).await?;
        let workers = usize::try_from(self.consumers).unwrap_or(1);
        let mut shares: Vec<Vec<i32>> =
            vec![Vec::new(); workers.min(usize::try_from(count).unwrap_or(1)).max(1)];
        for partition in 0..count {
            let slot = usize::try_from(partition).unwrap_or(0) % shares.len();
            shares[slot].push(partition);
        }
        let progress = Progress::start("consumed", self.records);
        let done = progress.counter();
        let bytes = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let deadline = started + self.timeout;
        let mut tasks: JoinSet<Result<()>> = JoinSet::new();
        for share in shares {
            let mut consumers = Vec::new();
            for partition in share {
                let config = ConsumerConfig {
                    start: StartOffset::Earliest,
                    ..ConsumerConfig::default()
                };
                consumers.push(
                    PartitionConsumer::new(client.clone(), &self.topic, partition, config).await?,
                );
            }
            let (done, bytes, limit) = (Arc::clone(&done), Arc::clone(&bytes), self.records);
            tasks.spawn(async move {
                // Each consumer reads until the end it saw first, or until the limit is met.
                let mut ends: Vec<Option<i64>> = vec![None; consumers.len()];
                loop {
                    let mut active = false;
                    for (consumer, end) in consumers.iter_mut().zip(ends.iter_mut()) {
                        if limit.is_some_and(|n| done.load(Ordering::Relaxed) >= n) {
                            return Ok(());
                        }
                        if end.is_some_and(|e| consumer.position() >= e) && limit.is_none() {
                            continue;
                        }
                        active = true;
                        let records = consumer.poll().await?;
                        if end.is_none() {
                            *end = consumer.high_watermark();
                        }
                        let size: usize = records
                            .iter()
                            .map(|r| r.value.as_ref().map_or(0, |v| v.len()))
                            .sum();
                        bytes.fetch_add(size as u64, Ordering::Relaxed);
                        done.fetch_add(records.len() as u64, Ordering::Relaxed);
                    }
                    if !active {
                        return Ok(());
                    }
                    if Instant::now() >= deadline {
                        return Err(Error::Unreachable(format!(
                            "the records did not arrive within {:?}",
                            deadline - started
                        )));
                    }
                }
            });
        }
        let mut outcome = Ok(());
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    outcome = Err(error);
                    tasks.abort_all();
                }
                // Aborted after another consumer failed.
                Err(e) if e.is_cancelled() => {}
                Err(e) => return Err(Error::usage(format!("a consumer task failed: {e}"))),
            }
        }
        let elapsed = started.elapsed();
        progress.finish().await;
        outcome?;
        let read = done.load(Ordering::Relaxed);
        Ok(Report::new(
            "consume",
            &self.topic,
            read,
            bytes.load(Ordering::Relaxed),
            elapsed,
        ))
    }
}
