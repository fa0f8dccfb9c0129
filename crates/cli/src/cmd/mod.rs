//! The command line: global options and one module per subcommand.

mod bench;
mod cluster;
mod consume;
mod dev;
mod group;
mod health;
mod produce;
mod topic;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::context::{Context, parse_duration};
use crate::error::Result;
use crate::output::Format;

const AFTER_HELP: &str = "\
Brokers come from --brokers, else STROM_BROKERS, else `brokers = [...]` in the config file
(--config, STROM_CONFIG or ~/.config/strom/config.toml), else 127.0.0.1:9092.

Exit codes: 0 success, 1 the cluster refused the request (the error names its code),
2 invalid arguments, 3 the cluster could not be reached, 4 any other failure.

Examples:
  strom topic create orders --partitions 12 --replication-factor 3
  printf 'a\\nb\\n' | strom produce orders
  strom consume orders --from beginning --num 10
  strom group describe billing -o json";

/// Operate a Strom cluster.
#[derive(Debug, Parser)]
#[command(name = "strom", version, about, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    /// Bootstrap broker addresses (host:port), comma-separated.
    #[arg(
        long,
        short = 'b',
        global = true,
        env = "STROM_BROKERS",
        value_delimiter = ','
    )]
    brokers: Vec<String>,
    /// A TOML config file naming `brokers`.
    #[arg(long, global = true, env = "STROM_CONFIG")]
    config: Option<PathBuf>,
    /// How results are printed.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    /// How long each request may take (e.g. 500ms, 10s).
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    Client(ClientCommand),
    /// Run a whole cluster in this process (metadata store, controller, brokers, coordinator).
    Dev(dev::DevArgs),
}

/// The subcommands that talk to a running cluster.
#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Create, list, describe, delete and configure topics.
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Produce records read line by line from stdin or a file.
    Produce(produce::ProduceArgs),
    /// Consume records from a topic, alone or in a group.
    Consume(consume::ConsumeArgs),
    /// List, describe, delete consumer groups and reset their offsets.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Inspect the cluster.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Measure produce and consume throughput and latency.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Ask brokers, controllers or coordinators whether they are serving (gRPC health).
    Health(health::HealthArgs),
}

impl Cli {
    /// Runs the chosen subcommand. `brokers_given` says whether `--brokers` was on the command
    /// line (rather than from `STROM_BROKERS`): `strom dev` reads it as a broker count.
    pub(crate) async fn run(self, brokers_given: bool) -> Result<()> {
        match self.command {
            Command::Dev(args) => {
                args.run(brokers_given.then_some(self.brokers), self.output)
                    .await
            }
            Command::Client(command) => {
                let context =
                    Context::resolve(self.brokers, self.config, self.output, self.timeout)?;
                command.run(&context).await
            }
        }
    }
}

impl ClientCommand {
    async fn run(self, context: &Context) -> Result<()> {
        match self {
            Self::Topic(command) => command.run(context).await,
            Self::Produce(args) => args.run(context).await,
            Self::Consume(args) => args.run(context).await,
            Self::Group(command) => command.run(context).await,
            Self::Cluster(command) => command.run(context).await,
            Self::Bench(command) => command.run(context).await,
            Self::Health(args) => args.run(context).await,
        }
    }
}

/// Which acknowledgement a record waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AcksArg {
    /// Do not wait (offsets are unknown).
    #[value(name = "0")]
    Zero,
    /// The leader's append.
    #[value(name = "1")]
    One,
    /// Every in-sync replica.
    All,
}

impl From<AcksArg> for strom_client::Acks {
    fn from(acks: AcksArg) -> Self {
        match acks {
            AcksArg::Zero => Self::None,
            AcksArg::One => Self::Leader,
            AcksArg::All => Self::All,
        }
    }
}

/// Parses `key=value`.
pub(crate) fn key_value(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not key=value"))?;
    if key.is_empty() {
        return Err(format!("{text:?} has an empty key"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn key_values_need_a_key() {
        assert_eq!(key_value("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(key_value("=x").is_err());
        assert!(key_value("novalue").is_err());
    }
}
