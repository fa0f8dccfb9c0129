//! `strom topic`: create, list, describe, delete, alter-config, describe-config.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;
use strom_client::{ConfigChange, NewTopic};
use strom_proto::admin::v1 as pb;

use super::key_value;
use crate::context::{Context, parse_duration};
use crate::error::{Error, Result};
use crate::output::{Render, Table, cell, ids, label, print};

/// Topic subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TopicCommand {
    /// Create a topic.
    #[command(
        after_help = "Example:\n  strom topic create orders -p 12 -r 3 -c retention.ms=86400000"
    )]
    Create(CreateArgs),
    /// List the topics.
    #[command(after_help = "Example:\n  strom topic list -o json")]
    List,
    /// Show partitions, leaders, replicas, ISR and offsets of topics.
    #[command(after_help = "Example:\n  strom topic describe orders")]
    Describe {
        /// The topics.
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// Delete topics and their data.
    #[command(after_help = "Example:\n  strom topic delete orders")]
    Delete {
        /// The topics.
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// Set or remove config overrides of a topic.
    #[command(
        after_help = "Example:\n  strom topic alter-config orders --set retention.ms=3600000 --delete segment.bytes"
    )]
    AlterConfig(AlterArgs),
    /// Show a topic's effective configs and where each value comes from.
    #[command(after_help = "Example:\n  strom topic describe-config orders --docs")]
    DescribeConfig {
        /// The topic.
        topic: String,
        /// Also show what each config does.
        #[arg(long)]
        docs: bool,
    },
}

/// `topic create` arguments.
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// The topic name.
    name: String,
    /// The number of partitions (default: the cluster's).
    #[arg(long, short = 'p')]
    partitions: Option<i32>,
    /// Replicas per partition (default: the cluster's).
    #[arg(long, short = 'r')]
    replication_factor: Option<i32>,
    /// A config override, repeatable.
    #[arg(long = "topic-config", short = 'c', value_name = "KEY=VALUE", value_parser = key_value)]
    configs: Vec<(String, String)>,
    /// Only check that the topic could be created.
    #[arg(long)]
    validate_only: bool,
    /// How long to wait for every partition to get a leader.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    wait: Duration,
}

/// `topic alter-config` arguments.
#[derive(Debug, Args)]
pub(crate) struct AlterArgs {
    /// The topic.
    topic: String,
    /// Set an override, repeatable.
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    set: Vec<(String, String)>,
    /// Remove an override, repeatable.
    #[arg(long, value_name = "KEY")]
    delete: Vec<String>,
    /// Only check the changes.
    #[arg(long)]
    validate_only: bool,
}

impl TopicCommand {
    /// Runs the subcommand.
    pub(crate) async fn run(self, context: &Context) -> Result<()> {
        let admin = context.admin().await?;
        match self {
            Self::Create(args) => {
                let topic = NewTopic {
                    name: args.name,
                    partitions: args.partitions,
                    replication_factor: args.replication_factor,
                    configs: args.configs.into_iter().collect(),
                };
                let created = admin
                    .create_topic(topic, args.wait, args.validate_only)
                    .await?;
                print(
                    context.format,
                    &Created {
                        topic: created.topic,
                        topic_id: created.topic_id,
                        partitions: created.partitions,
                        replication_factor: created.replication_factor,
                        validate_only: args.validate_only,
                    },
                )
            }
            Self::List => {
                let topics = admin.describe_topics(&[]).await?;
                print(
                    context.format,
                    &Listing(topics.iter().map(summary).collect()),
                )
            }
            Self::Describe { topics } => {
                let described = admin.describe_topics(&topics).await?;
                print(
                    context.format,
                    &Described(described.iter().map(describe).collect()),
                )
            }
            Self::Delete { topics } => {
                for topic in &topics {
                    admin.delete_topic(topic, context.timeout).await?;
                }
                print(context.format, &Deleted { deleted: topics })
            }
            Self::AlterConfig(args) => {
                if args.set.is_empty() && args.delete.is_empty() {
                    return Err(Error::usage("give at least one --set or --delete"));
                }
                let mut changes: Vec<ConfigChange> = args
                    .set
                    .into_iter()
                    .map(|(name, value)| ConfigChange::Set { name, value })
                    .collect();
                changes.extend(
                    args.delete
                        .into_iter()
                        .map(|name| ConfigChange::Delete { name }),
                );
                admin
                    .alter_topic_config(&args.topic, changes, args.validate_only)
                    .await?;
                let entries = admin.describe_topic_config(&args.topic, false).await?;
                print(context.format, &Configs::new(&args.topic, &entries, false))
            }
            Self::DescribeConfig { topic, docs } => {
                let entries = admin.describe_topic_config(&topic, docs).await?;
                print(context.format, &Configs::new(&topic, &entries, docs))
            }
        }
    }
}

#[derive(Debug, Serialize)]
struct Created {
    topic: String,
    topic_id: String,
    partitions: i32,
    replication_factor: i32,
    validate_only: bool,
}

impl Render for Created {
    fn tables(&self) -> Vec<Table> {
        let mut table = Table::new(["TOPIC", "ID", "PARTITIONS", "REPLICATION"]);
        table.row([
            self.topic.clone(),
            if self.validate_only {
                "(validated only)".to_owned()
            } else {
                self.topic_id.clone()
            },
            self.partitions.to_string(),
            self.replication_factor.to_string(),
        ]);
        vec![table]
    }
}

#[derive(Debug, Serialize)]
struct TopicSummary {
    topic: String,
    topic_id: String,
    partitions: usize,
    replication_factor: usize,
    under_replicated_partitions: usize,
    offline_partitions: usize,
}

fn summary(topic: &pb::TopicDescription) -> TopicSummary {
    TopicSummary {
        topic: topic.topic.clone(),
        topic_id: topic.topic_id.clone(),
        partitions: topic.partitions.len(),
        replication_factor: topic.partitions.first().map_or(0, |p| p.replicas.len()),
        under_replicated_partitions: topic
            .partitions
            .iter()
            .filter(|p| p.isr.len() < p.replicas.len())
            .count(),
        offline_partitions: topic
            .partitions
            .iter()
            .filter(|p| p.leader_id.is_none())
            .count(),
    }
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Listing(Vec<TopicSummary>);

impl Render for Listing {
    fn tables(&self) -> Vec<Table> {
        let mut table = Table::new([
            "TOPIC",
            "PARTITIONS",
            "REPLICATION",
            "UNDER-REPLICATED",
            "OFFLINE",
            "ID",
        ]);
        for t in &self.0 {
            table.row([
                t.topic.clone(),
                t.partitions.to_string(),
                t.replication_factor.to_string(),
                t.under_replicated_partitions.to_string(),
                t.offline_partitions.to_string(),
                t.topic_id.clone(),
            ]);
        }
        vec![table]
    }
}

#[derive(Debug, Serialize)]
struct PartitionView {
    partition: i32,
    leader: Option<i32>,
    leader_epoch: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
    offline_replicas: Vec<i32>,
    log_start_offset: Option<i64>,
    high_watermark: Option<i64>,
    log_end_offset: Option<i64>,
    under_replicated: bool,
}

#[derive(Debug, Serialize)]
struct TopicView {
    topic: String,
    topic_id: String,
    partitions: Vec<PartitionView>,
}

fn describe(topic: &pb::TopicDescription) -> TopicView {
    TopicView {
        topic: topic.topic.clone(),
        topic_id: topic.topic_id.clone(),
        partitions: topic
            .partitions
            .iter()
            .map(|p| PartitionView {
                partition: p.partition,
                leader: p.leader_id,
                leader_epoch: p.leader_epoch,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                offline_replicas: p.offline_replicas.clone(),
                log_start_offset: p.log_start_offset,
                high_watermark: p.high_watermark,
                log_end_offset: p.log_end_offset,
                under_replicated: p.isr.len() < p.replicas.len(),
            })
            .collect(),
    }
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
struct Described(Vec<TopicView>);

impl Render for Described {
    fn tables(&self) -> Vec<Table> {
        self.0
            .iter()
            .map(|topic| {
                let mut table = Table::new([
                    "PARTITION",
                    "LEADER",
                    "EPOCH",
                    "REPLICAS",
                    "ISR",
                    "LOG-START",
                    "HIGH-WATERMARK",
                    "LOG-END",
                    "",
                ])
                .titled(format!("topic {} (id {})", topic.topic, topic.topic_id));
                for p in &topic.partitions {
                    let mark = match (p.leader, p.under_replicated) {
                        (None, _) => "offline",
                        (Some(_), true) => "under-replicated",
                        _ => "",
                    };
                    table.row([
                        p.partition.to_string(),
                        cell(p.leader),
                        p.leader_epoch.to_string(),
                        ids(&p.replicas),
                        ids(&p.isr),
                        cell(p.log_start_offset),
                        cell(p.high_watermark),
                        cell(p.log_end_offset),
                        mark.to_owned(),
                    ]);
                }
                table
            })
            .collect()
    }
}

#[derive(Debug, Serialize)]
struct Deleted {
    deleted: Vec<String>,
}

impl Render for Deleted {
    fn tables(&self) -> Vec<Table> {
        let mut table = Table::new(["DELETED"]);
        for topic in &self.deleted {
            table.row([topic.clone()]);
        }
        vec![table]
    }
}

#[derive(Debug, Serialize)]
struct ConfigView {
    name: String,
    value: Option<String>,
    source: String,
    read_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    documentation: Option<String>,
}

#[derive(Debug, Serialize)]
struct Configs {
    topic: String,
    configs: Vec<ConfigView>,
}

impl Configs {
    fn new(topic: &str, entries: &[pb::ConfigEntry], docs: bool) -> Self {
        let configs = entries
            .iter()
            .map(|e| ConfigView {
                name: e.name.clone(),
                value: e.value.clone(),
                source: label(e.source().as_str_name(), "CONFIG_SOURCE_"),
                read_only: e.read_only,
                documentation: docs.then(|| e.documentation.clone()),
            })
            .collect();
        Self {
            topic: topic.to_owned(),
            configs,
        }
    }
}

impl Render for Configs {
    fn tables(&self) -> Vec<Table> {
        let with_docs = self.configs.iter().any(|c| c.documentation.is_some());
        let mut headers = vec!["NAME", "VALUE", "SOURCE"];
        if with_docs {
            headers.push("DOCUMENTATION");
        }
        let mut table = Table::new(headers).titled(format!("topic {}", self.topic));
        for c in &self.configs {
            let mut row = vec![c.name.clone(), cell(c.value.clone()), c.source.clone()];
            if let Some(docs) = &c.documentation {
                row.push(docs.clone());
            }
            table.row(row);
        }
        vec![table]
    }
}
