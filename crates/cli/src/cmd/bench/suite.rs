//! `strom bench suite`: the standard set of benchmarks, run one after another on fresh topics,
//! printed as one table. Every step is an ordinary `strom bench` command line (listed in the
//! JSON and YAML output) so any figure can be reproduced alone; the consume step must read back every record
//! the produce steps had acknowledged.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, ValueEnum};
use serde::Serialize;
use strom_client::NewTopic;

use super::{BenchCommand, Report};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::output::{Render, Table};

/// How much load the suite generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Scale {
    /// A hundredth of the standard load: a check that everything runs, in seconds.
    Quick,
    /// The figures to quote.
    Standard,
}

/// `bench suite` arguments.
#[derive(Debug, Args)]
pub(crate) struct SuiteBench {
    /// How much load.
    #[arg(long, value_enum, default_value = "standard")]
    scale: Scale,
    /// Partitions of the benchmark topics.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Replicas per partition; default: 3, or the number of brokers when fewer.
    #[arg(long, short = 'r')]
    replication_factor: Option<i32>,
    /// Keep the benchmark topics instead of deleting them at the end.
    #[arg(long)]
    keep_topics: bool,
}

/// The suite's results.
#[derive(Debug, Serialize)]
pub(crate) struct SuiteReport {
    replication_factor: i32,
    partitions: i32,
    steps: Vec<Step>,
    /// Records the produce steps had acknowledged.
    produced: u64,
    /// Records the consume step read back.
    consumed: u64,
}

#[derive(Debug, Serialize)]
struct Step {
    name: &'static str,
    command: String,
    report: Report,
}

/// A step: its name and its `strom bench` arguments (`{topic}` is replaced).
struct Plan {
    name: &'static str,
    args: String,
    /// Whether it writes to the main topic (and so counts towards what consume must read).
    produces: bool,
}

fn plan(scale: Scale) -> Vec<Plan> {
    let n = |standard: u64| match scale {
        Scale::Quick => standard / 100,
        Scale::Standard => standard,
    };
    let step = |name, args: String, produces| Plan {
        name,
        args,
        produces,
    };
    vec![
        step(
            "produce 100B x1 acks=all",
            format!(
                "produce --topic {{topic}} --records {} --record-size 100",
                n(1_000_000)
            ),
            true,
        ),
        step(
            "produce 1KiB x4 acks=all",
            format!(
                "produce --topic {{topic}} --records {} --record-size 1024 --producers 4",
                n(200_000)
            ),
            true,
        ),
        step(
            "produce 100B x2 acks=1 lz4",
            format!(
                "produce --topic {{topic}} --records {} --record-size 100 --producers 2 --acks 1 --compression lz4",
                n(500_000)
            ),
            true,
        ),
        step(
            "consume all x2",
            "consume --topic {topic} --consumers 2".to_owned(),
            false,
        ),
        step(
            "e2e 10k/s acks=all",
            format!(
                "e2e --topic {{topic}}-e2e --records {} --rate 10000",
                n(100_000)
            ),
            false,
        ),
    ]
}

/// Parses one step's arguments as `strom bench` would.
#[derive(Debug, Parser)]
#[command(name = "bench")]
struct StepLine {
    #[command(subcommand)]
    command: BenchCommand,
}

impl SuiteBench {
    pub(crate) async fn run(self, context: &Context) -> Result<SuiteReport> {
        if self.partitions < 1 {
            return Err(Error::usage("--partitions must be at least 1"));
        }
        let admin = context.admin().await?;
        let replication_factor = match self.replication_factor {
            Some(rf) => rf,
            None => {
                let brokers = admin.describe_cluster().await?.brokers.len();
                i32::try_from(brokers.clamp(1, 3)).unwrap_or(1)
            }
        };
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let topic = format!("bench-suite-{stamp}");
        let topics = [topic.clone(), format!("{topic}-e2e")];
        for name in &topics {
            let new = NewTopic {
                name: name.clone(),
                partitions: Some(self.partitions),
                replication_factor: Some(replication_factor),
                ..NewTopic::default()
            };
            admin
                .create_topic(new, Duration::from_secs(30), false)
                .await?;
        }
        let outcome = run_steps(plan(self.scale), &topic, context).await;
        if !self.keep_topics {
            for name in &topics {
                // Best effort: the figures are what matter, and a leftover topic is named.
                if let Err(error) = admin.delete_topic(name, Duration::from_secs(30)).await {
                    warn(&format!("could not delete topic {name}: {error}"));
                }
            }
        }
        let (steps, produced, consumed) = outcome?;
        if consumed != produced {
            return Err(Error::Verification(format!(
                "bench consume read {consumed} records but the produce steps had {produced} acknowledged"
            )));
        }
        Ok(SuiteReport {
            replication_factor,
            partitions: self.partitions,
            steps,
            produced,
            consumed,
        })
    }
}

async fn run_steps(
    plans: Vec<Plan>,
    topic: &str,
    context: &Context,
) -> Result<(Vec<Step>, u64, u64)> {
    let (mut steps, mut produced, mut consumed) = (Vec::new(), 0, 0);
    for plan in plans {
        let args = plan.args.replace("{topic}", topic);
        let line =
            StepLine::try_parse_from(std::iter::once("bench").chain(args.split_whitespace()))
                .map_err(|e| Error::usage(format!("suite step {:?}: {e}", plan.name)))?;
        let report = match line.command {
            BenchCommand::Produce(bench) => bench.run(context).await?,
            BenchCommand::Consume(bench) => {
                let report = bench.run(context).await?;
                consumed = report.records;
                report
            }
            BenchCommand::E2e(bench) => bench.run(context).await?,
            BenchCommand::Suite(_) => {
                return Err(Error::usage("a suite step cannot be a suite"));
            }
        };
        if plan.produces {
            produced += report.records;
        }
        steps.push(Step {
            name: plan.name,
            command: format!("strom bench {args}"),
            report,
        });
    }
    Ok((steps, produced, consumed))
}

#[allow(clippy::print_stderr)]
fn warn(message: &str) {
    eprintln!("warning: {message}");
}

impl Render for SuiteReport {
    fn tables(&self) -> Vec<Table> {
        let mut table = Table::new(vec![
            "STEP",
            "RECORDS",
            "RECORDS/S",
            "MB/S",
            "P50-MS",
            "P99-MS",
            "P99.9-MS",
            "MAX-MS",
        ])
        .titled(format!(
            "bench suite: {} partitions, replication factor {}; read back {} of {} acknowledged records",
            self.partitions, self.replication_factor, self.consumed, self.produced
        ));
        for step in &self.steps {
            let r = &step.report;
            let mut row = vec![
                step.name.to_owned(),
                r.records.to_string(),
                format!("{:.0}", r.records_per_sec),
                format!("{:.2}", r.mb_per_sec),
            ];
            match &r.latency_ms {
                Some(l) => row.extend([l.p50, l.p99, l.p999, l.max].map(|v| format!("{v:.2}"))),
                None => row.extend(std::iter::repeat_n("-".to_owned(), 4)),
            }
            table.row(row);
        }
        vec![table]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_parses_as_a_bench_command() {
        for scale in [Scale::Quick, Scale::Standard] {
            for plan in plan(scale) {
                let args = plan.args.replace("{topic}", "t");
                let parsed = StepLine::try_parse_from(
                    std::iter::once("bench").chain(args.split_whitespace()),
                );
                assert!(parsed.is_ok(), "{}: {parsed:?}", plan.name);
            }
        }
    }
}
