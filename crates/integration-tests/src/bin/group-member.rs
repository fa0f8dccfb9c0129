//! A consumer-group member as a process, for scenarios that kill, pause or restart members.
//!
//! Runs a [`GroupConsumer`] on one topic and reports what happens as JSON lines on stdout:
//! `assigned`, `revoked` and `lost` partition sets, the whole assignment with the epoch it
//! came with whenever either changes (`owned`), the offsets and values each poll returned per
//! partition (`records`), and the outcome of every commit (`committed` with the offsets it
//! moved, or `commit_failed`).
//! Lines on stdin steer it: `commit` commits what was read so far, `close` leaves the group
//! and exits.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::time::Duration;

use clap::{Parser, ValueEnum};
use serde_json::{Value, json};
use strom_client::{
    Client, ClientConfig, GroupConsumer, GroupConsumerConfig, OffsetReset, RebalanceListener,
    Subscription, TopicPartition,
};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;

/// When the member commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CommitMode {
    /// The consumer's auto-commit, every `--auto-commit-interval-ms`.
    Auto,
    /// An explicit commit after every poll that returned records.
    Poll,
    /// Only when `commit` arrives on stdin.
    Manual,
}

#[derive(Debug, Parser)]
#[command(about = "Consumes a topic as a member of a consumer group, reporting JSON events")]
struct Args {
    /// Broker addresses (host:port), comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    broker: Vec<String>,
    /// The consumer group.
    #[arg(long)]
    group: String,
    /// The topic to consume.
    #[arg(long)]
    topic: String,
    /// A static instance id.
    #[arg(long)]
    instance_id: Option<String>,
    /// The session timeout asked of the coordinator.
    #[arg(long, default_value_t = 3000)]
    session_timeout_ms: u64,
    /// When offsets are committed.
    #[arg(long, value_enum, default_value_t = CommitMode::Poll)]
    commit: CommitMode,
    /// The auto-commit interval with `--commit auto`.
    #[arg(long, default_value_t = 500)]
    auto_commit_interval_ms: u64,
    /// The most records one poll returns.
    #[arg(long, default_value_t = 500)]
    max_poll_records: usize,
    /// A pause after each poll that returned records, as if processing them.
    #[arg(long, default_value_t = 0)]
    process_ms: u64,
}

/// Prints one event line; stdout is line-buffered, so each line reaches the reader whole.
fn emit(event: &Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout means the reader is gone: nothing left to report to.
    let _ = writeln!(out, "{event}");
}

fn partition_list(partitions: &[TopicPartition]) -> Value {
    partitions.iter().map(|p| p.partition).collect()
}

/// Reports partition ownership changes.
struct Events;

impl RebalanceListener for Events {
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        emit(&json!({"event": "assigned", "partitions": partition_list(partitions)}));
    }

    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        emit(&json!({"event": "revoked", "partitions": partition_list(partitions)}));
    }

    fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
        emit(&json!({"event": "lost", "partitions": partition_list(partitions)}));
    }
}

/// Forwards stdin lines; ends when stdin closes.
fn read_commands() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line.trim().to_owned()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Commits what was read; `last` is what earlier commits moved each partition to, so the
/// `committed` event lists only the offsets this commit moved.
async fn commit(consumer: &mut GroupConsumer, last: &mut BTreeMap<i32, i64>) {
    let owned = consumer.assignment();
    last.retain(|partition, _| owned.iter().any(|tp| tp.partition == *partition));
    let moved: BTreeMap<i32, i64> = owned
        .iter()
        .filter_map(|tp| Some((tp.partition, consumer.position(tp)?)))
        .filter(|(partition, offset)| last.get(partition) != Some(offset))
        .collect();
    // Marks when the commit was invoked: a member paused mid-commit reports the outcome late.
    emit(&json!({"event": "committing"}));
    match consumer.commit().await {
        Ok(()) => {
            last.extend(moved.iter().map(|(p, o)| (*p, *o)));
            let offsets: serde_json::Map<String, Value> = moved
                .into_iter()
                .map(|(p, o)| (p.to_string(), json!(o)))
                .collect();
            emit(&json!({
                "event": "committed",
                "epoch": consumer.member_epoch(),
                "offsets": offsets,
            }));
        }
        Err(error) => emit(&json!({
            "event": "commit_failed",
            "code": error.code().map(|code| code.as_str_name()),
            "message": error.to_string(),
        })),
    }
}

fn report_records(records: &[strom_client::ConsumerRecord]) {
    let mut by_partition: BTreeMap<i32, (Vec<i64>, Vec<String>)> = BTreeMap::new();
    for record in records {
        let (offsets, values) = by_partition.entry(record.partition).or_default();
        offsets.push(record.offset);
        let value = record.value.as_deref().unwrap_or_default();
        values.push(String::from_utf8_lossy(value).into_owned());
    }
    for (partition, (offsets, values)) in by_partition {
        emit(&json!({
            "event": "records",
            "partition": partition,
            "offsets": offsets,
            "values": values,
        }));
    }
}

/// Reports the assignment when it or the epoch it came with changed since `last`.
fn report_owned(consumer: &GroupConsumer, last: &mut (i32, Vec<i32>)) {
    let owned = (
        consumer.assignment_epoch(),
        consumer
            .assignment()
            .iter()
            .map(|tp| tp.partition)
            .collect(),
    );
    if owned != *last {
        emit(&json!({
            "event": "owned",
            "member_id": consumer.member_id(),
            "epoch": owned.0,
            "partitions": owned.1,
        }));
        *last = owned;
    }
}

async fn run(args: Args) -> Result<(), strom_client::Error> {
    let client = Client::connect(ClientConfig::new(args.broker.clone())).await?;
    let mut config = GroupConsumerConfig::new(args.group.clone());
    config.instance_id = args.instance_id.clone();
    config.session_timeout = Some(Duration::from_millis(args.session_timeout_ms));
    config.auto_commit = args.commit == CommitMode::Auto;
    config.auto_commit_interval = Duration::from_millis(args.auto_commit_interval_ms);
    config.max_poll_records = args.max_poll_records;
    config.poll_timeout = Duration::from_millis(100);
    config.reset = OffsetReset::Earliest;
    let subscription = Subscription::topics([args.topic.clone()]);
    let mut consumer = GroupConsumer::new(client, config, subscription).await?;
    consumer.set_listener(Events);
    emit(&json!({"event": "started", "member_id": consumer.member_id()}));
    let mut commands = read_commands();
    let mut committed = BTreeMap::new();
    let mut owned = (0, Vec::new());
    // `poll` returns within its 100 ms timeout, so commands wait at most that long; it is
    // not raced against stdin, as an abandoned poll could abandon a rebalance step.
    'member: loop {
        loop {
            match commands.try_recv() {
                Ok(command) => match command.as_str() {
                    "commit" => commit(&mut consumer, &mut committed).await,
                    "close" => break 'member,
                    other => emit(&json!({"event": "unknown_command", "command": other})),
                },
                Err(TryRecvError::Empty) => break,
                // stdin closed: whoever steered the member is gone.
                Err(TryRecvError::Disconnected) => break 'member,
            }
        }
        let records = consumer.poll().await?;
        report_owned(&consumer, &mut owned);
        if records.is_empty() {
            continue;
        }
        report_records(&records);
        if args.process_ms > 0 {
            tokio::time::sleep(Duration::from_millis(args.process_ms)).await;
        }
        if args.commit == CommitMode::Poll {
            commit(&mut consumer, &mut committed).await;
        }
    }
    let closed = consumer.close().await;
    emit(&json!({"event": "closed", "error": closed.err().map(|e| e.to_string())}));
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            emit(&json!({"event": "failed", "error": error.to_string()}));
            std::process::ExitCode::FAILURE
        }
    }
}
