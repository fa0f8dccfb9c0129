//! `strom group`: list, describe, delete, reset-offsets.

use clap::{ArgGroup, Args, Subcommand};
use serde::Serialize;
use strom_proto::coordinator::v1 as pb;
use strom_proto::coordinator::v1::reset_offsets_request::Strategy;

use crate::context::Context;
use crate::error::{Error, Result, code_name};
use crate::output::{Render, Table, cell, label, print};

/// Group subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// List the consumer groups.
    #[command(after_help = "Example:\n  strom group list")]
    List,
    /// Members, assignments, committed offsets and lag per partition.
    #[command(after_help = "Example:\n  strom group describe billing -o json")]
    Describe {
        /// The group id.
        group: String,
    },
    /// Delete a group without members, with its committed offsets.
    #[command(after_help = "Example:\n  strom group delete billing")]
    Delete {
        /// The group id.
        group: String,
    },
    /// Move a group's committed offsets for one topic (the group must have no members).
    #[command(
        after_help = "Examples:\n  strom group reset-offsets billing --topic orders --to-earliest\n  \
        strom group reset-offsets billing --topic orders --shift-by -100 --partitions 0,1 --dry-run"
    )]
    ResetOffsets(ResetArgs),
}

/// `group reset-offsets` arguments.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("strategy").required(true).args([
    "to_earliest", "to_latest", "to_offset", "to_timestamp", "shift_by"
])))]
pub(crate) struct ResetArgs {
    /// The group id.
    group: String,
    /// The topic whose offsets move.
    #[arg(long)]
    topic: String,
    /// Only these partitions (comma-separated); default all.
    #[arg(long, value_delimiter = ',')]
    partitions: Vec<i32>,
    /// To each partition's log start.
    #[arg(long)]
    to_earliest: bool,
    /// To each partition's end.
    #[arg(long)]
    to_latest: bool,
    /// To this offset (clamped to each partition's range).
    #[arg(long, allow_negative_numbers = true)]
    to_offset: Option<i64>,
    /// To the first record at or after this time, in milliseconds since the epoch.
    #[arg(long)]
    to_timestamp: Option<i64>,
    /// By this many records from the committed offset (negative moves back).
    #[arg(long, allow_negative_numbers = true)]
    shift_by: Option<i64>,
    /// Show the new offsets without committing them.
    #[arg(long)]
    dry_run: bool,
}

impl ResetArgs {
    fn strategy(&self) -> Result<Strategy> {
        Ok(if self.to_earliest {
            Strategy::Earliest(pb::ResetToEarliest {})
        } else if self.to_latest {
            Strategy::Latest(pb::ResetToLatest {})
        } else if let Some(offset) = self.to_offset {
            if offset < 0 {
                return Err(Error::usage("--to-offset must not be negative"));
            }
            Strategy::ToOffset(offset)
        } else if let Some(ms) = self.to_timestamp {
            Strategy::ToTimestampMs(ms)
        } else if let Some(n) = self.shift_by {
            Strategy::ShiftBy(n)
        } else {
            return Err(Error::usage("choose a reset strategy"));
        })
    }
}

impl GroupCommand {
    /// Runs the subcommand.
    pub(crate) async fn run(self, context: &Context) -> Result<()> {
        let admin = context.admin().await?;
        match self {
            Self::List => {
                let groups = admin.list_groups(&[]).await?;
                let rows = groups
                    .into_iter()
                    .map(|g| GroupRow {
                        state: state_name(g.state()),
                        group: g.group_id,
                        coordinator: g.coordinator_id,
                    })
                    .collect();
                print(context.format, &GroupList(rows))
            }
            Self::Describe { group } => {
                let description = admin.describe_group(&group, true).await?;
                print(context.format, &GroupView::from(description))
            }
            Self::Delete { group } => {
                admin.delete_group(&group).await?;
                print(context.format, &Deleted { deleted: group })
            }
            Self::ResetOffsets(args) => {
                let request = pb::ResetOffsetsRequest {
                    group_id: args.group.clone(),
                    topic: args.topic.clone(),
                    partitions: args.partitions.clone(),
                    strategy: Some(args.strategy()?),
                    dry_run: args.dry_run,
                };
                let response = admin.reset_offsets(request).await?;
                let rows: Vec<ResetRow> = response
                    .partitions
                    .iter()
                    .map(|p| ResetRow {
                        partition: p.partition,
                        previous_offset: p.previous_offset,
                        new_offset: p.error.is_none().then_some(p.new_offset),
                        error: p
                            .error
                            .as_ref()
                            .map(|e| format!("{}: {}", code_name(e.code()), e.message)),
                    })
                    .collect();
                let failed = rows.iter().filter(|r| r.error.is_some()).count();
                print(
                    context.format,
                    &Reset {
                        group: args.group,
                        topic: args.topic,
                        dry_run: args.dry_run,
                        partitions: rows,
                    },
                )?;
                if failed > 0 {
                    return Err(Error::Refused {
                        code: strom_client::ErrorCode::InvalidRequest,
                        message: format!("{failed} partition(s) were not reset"),
                    });
                }
                Ok(())
            }
        }
    }
}

fn state_name(state: pb::GroupState) -> String {
    label(state.as_str_name(), "GROUP_STATE_")
}

#[derive(Debug, Serialize)]
struct GroupRow {
    group: String,
    state: String,
    coordinator: Option<i32>,
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
struct GroupList(Vec<GroupRow>);

impl Render for GroupList {
    fn tables(&self) -> Vec<Table> {
        let mut table = Table::new(["GROUP", "STATE", "COORDINATOR"]);
        for g in &self.0 {
            table.row([g.group.clone(), g.state.clone(), cell(g.coordinator)]);
        }
        vec![table]
    }
}

#[derive(Debug, Serialize)]
struct MemberView {
    member_id: String,
    instance_id: Option<String>,
    member_epoch: i32,
    partitions: usize,
}

#[derive(Debug, Serialize)]
struct OffsetView {
    topic: String,
    partition: i32,
    committed_offset: Option<i64>,
    log_end_offset: Option<i64>,
    lag_records: Option<i64>,
    lag_seconds: Option<f64>,
    member_id: Option<String>,
}

#[derive(Debug, Serialize)]
struct Totals {
    lag_records: i64,
    max_lag_seconds: f64,
    partitions: usize,
}

#[derive(Debug, Serialize)]
struct GroupView {
    group: String,
    state: String,
    group_epoch: i32,
    assignor: String,
    members: Vec<MemberView>,
    offsets: Vec<OffsetView>,
    totals: Totals,
}

impl From<pb::GroupDescription> for GroupView {
    fn from(g: pb::GroupDescription) -> Self {
        let members = g
            .members
            .iter()
            .map(|m| MemberView {
                member_id: m.member_id.clone(),
                instance_id: (!m.instance_id.is_empty()).then(|| m.instance_id.clone()),
                member_epoch: m.member_epoch,
                partitions: m
                    .assignment
                    .iter()
                    .flat_map(|a| &a.topic_partitions)
                    .map(|tp| tp.partitions.len())
                    .sum(),
            })
            .collect();
        let offsets: Vec<OffsetView> = g
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| OffsetView {
                    topic: t.topic.clone(),
                    partition: p.partition,
                    committed_offset: p.committed_offset,
                    log_end_offset: p.high_watermark,
                    lag_records: p.lag_records,
                    lag_seconds: p.lag_ms.map(|ms| ms as f64 / 1000.0),
                    member_id: (!p.member_id.is_empty()).then(|| p.member_id.clone()),
                })
            })
            .collect();
        let totals = Totals {
            lag_records: offsets.iter().filter_map(|o| o.lag_records).sum(),
            max_lag_seconds: offsets
                .iter()
                .filter_map(|o| o.lag_seconds)
                .fold(0.0, f64::max),
            partitions: offsets.len(),
        };
        Self {
            state: state_name(g.state()),
            group: g.group_id,
            group_epoch: g.group_epoch,
            assignor: g.assignor,
            members,
            offsets,
            totals,
        }
    }
}

impl Render for GroupView {
    fn tables(&self) -> Vec<Table> {
        let mut summary = Table::new([
            "GROUP",
            "STATE",
            "EPOCH",
            "ASSIGNOR",
            "MEMBERS",
            "TOTAL-LAG",
            "MAX-LAG-SECONDS",
        ]);
        summary.row([
            self.group.clone(),
            self.state.clone(),
            self.group_epoch.to_string(),
            self.assignor.clone(),
            self.members.len().to_string(),
            self.totals.lag_records.to_string(),
            format!("{:.1}", self.totals.max_lag_seconds),
        ]);
        let mut members = Table::new(["MEMBER", "INSTANCE", "EPOCH", "PARTITIONS"]);
        for m in &self.members {
            members.row([
                m.member_id.clone(),
                m.instance_id.clone().unwrap_or_else(|| "-".to_owned()),
                m.member_epoch.to_string(),
                m.partitions.to_string(),
            ]);
        }
        let mut offsets = Table::new([
            "TOPIC",
            "PARTITION",
            "COMMITTED",
            "LOG-END",
            "LAG",
            "LAG-SECONDS",
            "MEMBER",
        ]);
        for o in &self.offsets {
            offsets.row([
                o.topic.clone(),
                o.partition.to_string(),
                cell(o.committed_offset),
                cell(o.log_end_offset),
                cell(o.lag_records),
                cell(o.lag_seconds.map(|s| format!("{s:.1}"))),
                o.member_id.clone().unwrap_or_else(|| "-".to_owned()),
            ]);
        }
        vec![summary, members, offsets]
    }
}

#[derive(Debug, Serialize)]
struct Deleted {
    deleted: String,
}

impl Render for Deleted {
    fn tables(&self) -> Vec<Table> {
        let mut table = Table::new(["DELETED"]);
        table.row([self.deleted.clone()]);
        vec![table]
    }
}

#[derive(Debug, Serialize)]
struct ResetRow {
    partition: i32,
    previous_offset: Option<i64>,
    new_offset: Option<i64>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct Reset {
    group: String,
    topic: String,
    dry_run: bool,
    partitions: Vec<ResetRow>,
}

impl Render for Reset {
    fn tables(&self) -> Vec<Table> {
        let title = if self.dry_run {
            format!(
                "{} / {} (dry run: nothing committed)",
                self.group, self.topic
            )
        } else {
            format!("{} / {}", self.group, self.topic)
        };
        let mut table = Table::new(["PARTITION", "PREVIOUS", "NEW", "ERROR"]).titled(title);
        for r in &self.partitions {
            table.row([
                r.partition.to_string(),
                cell(r.previous_offset),
                cell(r.new_offset),
                r.error.clone().unwrap_or_default(),
            ]);
        }
        vec![table]
    }
}
