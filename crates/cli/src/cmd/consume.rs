//! `strom consume`: read a topic's partitions directly or as a group member.

use std::time::Duration;

use clap::Args;
use serde::Serialize;
use strom_client::{
    Client, ConsumerConfig, ConsumerRecord, GroupConsumer, GroupConsumerConfig, OffsetReset,
    PartitionConsumer, StartOffset, Subscription,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::context::{Context, parse_duration};
use crate::error::{Error, Result};
use crate::output::{Format, write_stdout};

/// Where reading starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum From {
    Beginning,
    End,
    Offset(i64),
    Timestamp(i64),
}

fn parse_from(text: &str) -> Result<From, String> {
    match text {
        "beginning" | "earliest" => Ok(From::Beginning),
        "end" | "latest" => Ok(From::End),
        _ => {
            let (kind, number) = text.split_once(':').unwrap_or(("offset", text));
            let value: i64 = number
                .parse()
                .map_err(|_| format!("{text:?}: use beginning, end, offset:N or timestamp:MS"))?;
            if value < 0 {
                return Err(format!("{text:?} must not be negative"));
            }
            match kind {
                "offset" => Ok(From::Offset(value)),
                "timestamp" => Ok(From::Timestamp(value)),
                _ => Err(format!(
                    "{text:?}: use beginning, end, offset:N or timestamp:MS"
                )),
            }
        }
    }
}

/// `consume` arguments.
#[derive(Debug, Args)]
#[command(
    after_help = "Placeholders in --format: {topic} {partition} {offset} {timestamp} {key} {value} {headers}\n\n\
Examples:\n  strom consume orders --from beginning --num 10\n  \
strom consume orders --group billing --follow\n  \
strom consume orders --partitions 0,1 --from timestamp:1767225600000 --format '{partition}/{offset} {key}={value}'"
)]
pub(crate) struct ConsumeArgs {
    /// The topic.
    topic: String,
    /// Consume as a member of this group, committing what was printed.
    #[arg(long, short = 'g', conflicts_with = "partitions")]
    group: Option<String>,
    /// Only these partitions (comma-separated); default all.
    #[arg(long, short = 'p', value_delimiter = ',')]
    partitions: Vec<i32>,
    /// Where to start: beginning, end, offset:N (or N) or timestamp:MS. With --group it applies
    /// to partitions without a committed offset (beginning or end only).
    #[arg(long, default_value = "end", value_parser = parse_from)]
    from: From,
    /// Stop after this many records.
    #[arg(long, short = 'n')]
    num: Option<u64>,
    /// Keep waiting for new records instead of stopping at the end of the log.
    #[arg(long, short = 'F')]
    follow: bool,
    /// With --group and without --follow: stop once no record arrived for this long.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    idle: Duration,
    /// How each record is printed (with -o table).
    #[arg(long, default_value = "{value}")]
    format: String,
}

#[derive(Debug, Serialize)]
struct RecordView<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<(String, Option<String>)>,
}

fn text(bytes: Option<&bytes::Bytes>) -> Option<String> {
    bytes.map(|b| String::from_utf8_lossy(b).into_owned())
}

fn view(record: &ConsumerRecord) -> RecordView<'_> {
    RecordView {
        topic: &record.topic,
        partition: record.partition,
        offset: record.offset,
        timestamp: record.timestamp,
        key: text(record.key.as_ref()),
        value: text(record.value.as_ref()),
        headers: record
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), text(v.as_ref())))
            .collect(),
    }
}

/// Renders one record as a line.
fn render(format: Format, template: &str, record: &ConsumerRecord) -> Result<String> {
    let record = view(record);
    let encode = |e: String| Error::usage(format!("cannot encode a record: {e}"));
    Ok(match format {
        Format::Json => serde_json::to_string(&record).map_err(|e| encode(e.to_string()))? + "\n",
        Format::Yaml => {
            "---\n".to_owned()
                + &serde_yaml::to_string(&record).map_err(|e| encode(e.to_string()))?
        }
        Format::Table => {
            let headers: Vec<String> = record
                .headers
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("")))
                .collect();
            let mut line = template
                .replace("{topic}", record.topic)
                .replace("{partition}", &record.partition.to_string())
                .replace("{offset}", &record.offset.to_string())
                .replace("{timestamp}", &record.timestamp.to_string())
                .replace("{headers}", &headers.join(","))
                .replace("{key}", record.key.as_deref().unwrap_or(""))
                .replace("{value}", record.value.as_deref().unwrap_or(""));
            line.push('\n');
            line
        }
    })
}

impl ConsumeArgs {
    /// Runs the command.
    pub(crate) async fn run(self, context: &Context) -> Result<()> {
        let client = context.client().await?;
        let count = client.partition_count(&self.topic).await?;
        match self.group.clone() {
            Some(group) => self.run_group(context, client, group).await,
            None => self.run_partitions(context, client, count).await,
        }
    }

    fn print(
        &self,
        context: &Context,
        records: &[ConsumerRecord],
        printed: &mut u64,
    ) -> Result<bool> {
        let mut out = String::new();
        for record in records {
            if self.num.is_some_and(|n| *printed >= n) {
                break;
            }
            out.push_str(&render(context.format, &self.format, record)?);
            *printed += 1;
        }
        write_stdout(&out)?;
        Ok(self.num.is_some_and(|n| *printed >= n))
    }

    async fn run_group(self, context: &Context, client: Client, group: String) -> Result<()> {
        let reset = match self.from {
            From::Beginning => OffsetReset::Earliest,
            From::End => OffsetReset::Latest,
            From::Offset(_) | From::Timestamp(_) => {
                return Err(Error::usage(
                    "with --group, --from is beginning or end (use `strom group reset-offsets` to move a group)",
                ));
            }
        };
        let mut config = GroupConsumerConfig::new(group);
        config.reset = reset;
        config.auto_commit = false;
        config.poll_timeout = Duration::from_millis(200);
        if let Some(n) = self.num {
            config.max_poll_records = usize::try_from(n.clamp(1, 500)).unwrap_or(500);
        }
        let subscription = Subscription::topics([self.topic.clone()]);
        let mut consumer = GroupConsumer::new(client, config, subscription).await?;
        let mut printed = 0;
        let mut last_record = tokio::time::Instant::now();
        let outcome = loop {
            let records = match consumer.poll().await {
                Ok(records) => records,
                Err(error) => break Err(error.into()),
            };
            if records.is_empty() {
                let idle = !self.follow
                    && !consumer.assignment().is_empty()
                    && last_record.elapsed() >= self.idle;
                if idle {
                    break Ok(());
                }
                continue;
            }
            last_record = tokio::time::Instant::now();
            let take =
                usize::try_from(self.num.map_or(u64::MAX, |n| n - printed)).unwrap_or(usize::MAX);
            let shown = &records[..records.len().min(take)];
            let done = match self.print(context, shown, &mut printed) {
                Ok(done) => done,
                Err(error) => break Err(error),
            };
            // Commit exactly what was printed.
            let positions = shown.iter().map(|r| {
                (
                    strom_client::TopicPartition::new(&*r.topic, r.partition),
                    r.offset + 1,
                )
            });
            if let Err(error) = consumer.commit_offsets(positions).await {
                break Err(error.into());
            }
            if done {
                break Ok(());
            }
        };
        let closed = consumer.close().await;
        outcome?;
        Ok(closed?)
    }

    async fn run_partitions(self, context: &Context, client: Client, count: i32) -> Result<()> {
        let partitions: Vec<i32> = if self.partitions.is_empty() {
            (0..count).collect()
        } else {
            self.partitions.clone()
        };
        if let Some(bad) = partitions.iter().find(|p| !(0..count).contains(*p)) {
            return Err(Error::Refused {
                code: strom_client::ErrorCode::UnknownTopicOrPartition,
                message: format!("{} has partitions 0..{}, not {bad}", self.topic, count - 1),
            });
        }
        let (tx, mut rx) = mpsc::channel::<Result<Vec<ConsumerRecord>>>(16);
        let mut tasks = JoinSet::new();
        for partition in partitions {
            let start = match self.from {
                From::Beginning => StartOffset::Earliest,
                From::End => StartOffset::Latest,
                From::Offset(offset) => StartOffset::Offset(offset),
                From::Timestamp(ms) => {
                    match client.offset_for_time(&self.topic, partition, ms).await? {
                        Some(offset) => StartOffset::Offset(offset),
                        None => StartOffset::Latest,
                    }
                }
            };
            let config = ConsumerConfig {
                start,
                ..ConsumerConfig::default()
            };
            let mut consumer =
                PartitionConsumer::new(client.clone(), &self.topic, partition, config).await?;
            let tx = tx.clone();
            let follow = self.follow;
            tasks.spawn(async move {
                loop {
                    let caught_up = consumer
                        .high_watermark()
                        .is_some_and(|hw| consumer.position() >= hw);
                    if caught_up && !follow {
                        return;
                    }
                    let polled = consumer.poll().await.map_err(Error::from);
                    let failed = polled.is_err();
                    if tx.send(polled).await.is_err() || failed {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut printed = 0;
        let mut outcome = Ok(());
        while let Some(polled) = rx.recv().await {
            match polled.and_then(|records| self.print(context, &records, &mut printed)) {
                Ok(true) => break,
                Ok(false) => {}
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
            }
        }
        tasks.shutdown().await;
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_positions_parse() {
        assert_eq!(parse_from("beginning"), Ok(From::Beginning));
        assert_eq!(parse_from("end"), Ok(From::End));
        assert_eq!(parse_from("42"), Ok(From::Offset(42)));
        assert_eq!(parse_from("offset:7"), Ok(From::Offset(7)));
        assert_eq!(parse_from("timestamp:1000"), Ok(From::Timestamp(1000)));
        assert!(parse_from("-3").is_err());
        assert!(parse_from("yesterday").is_err());
    }
}
