//! `strom cluster describe` and `strom cluster drain`.

use std::time::Duration;

use clap::Subcommand;
use serde::Serialize;

use crate::context::{Context, parse_duration};
use crate::error::{Error, Result};
use crate::output::{Render, Table, cell, label, print};

/// Cluster subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Brokers, racks, the active controller and its epoch, coordinators, partition health.
    #[command(after_help = "Example:\n  strom cluster describe -o yaml")]
    Describe,
    /// Move every partition leadership off a broker before stopping it, and wait until it
    /// leads none. New leaderships stay off it until it registers again (restarts).
    #[command(
        after_help = "Example:\n  strom cluster drain 2 --wait 30s && systemctl stop strom-broker"
    )]
    Drain {
        /// The broker id.
        broker: i32,
        /// How long to wait for the leaderships to move (e.g. 30s); exits 1 if some remain.
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        wait: Duration,
    },
}

/// What a drain did.
#[derive(Debug, Serialize)]
struct DrainView {
    broker: i32,
    moved: i32,
    remaining: i32,
}

impl Render for DrainView {
    fn tables(&self) -> Vec<Table> {
        let mut table = Table::new(["BROKER", "LEADERSHIPS MOVED", "REMAINING"]);
        table.row([
            self.broker.to_string(),
            self.moved.to_string(),
            self.remaining.to_string(),
        ]);
        vec![table]
    }
}

/// Asks for the drain until no leadership remains or `wait` is over.
async fn drain(context: &Context, broker: i32, wait: Duration) -> Result<()> {
    let admin = context.admin().await?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut view = DrainView {
        broker,
        moved: 0,
        remaining: 0,
    };
    loop {
        let (moved, remaining) = admin.drain_broker(broker).await?;
        view.moved = view.moved.saturating_add(moved);
        view.remaining = remaining;
        if remaining == 0 {
            return print(context.format, &view);
        }
        if tokio::time::Instant::now() >= deadline {
            print(context.format, &view)?;
            return Err(Error::Incomplete(format!(
                "broker {broker} still leads {remaining} partition(s) after {wait:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl ClusterCommand {
    /// Runs the subcommand.
    pub(crate) async fn run(self, context: &Context) -> Result<()> {
        if let Self::Drain { broker, wait } = self {
            return drain(context, broker, wait).await;
        }
        let admin = context.admin().await?;
        let cluster = admin.describe_cluster().await?;
        let view = ClusterView {
            cluster_id: cluster.cluster_id,
            controller: cluster.controller.map(|c| ControllerView {
                id: c.controller_id,
                epoch: c.controller_epoch,
                address: c.address,
            }),
            brokers: cluster
                .brokers
                .into_iter()
                .map(|b| {
                    let state = label(b.state().as_str_name(), "BROKER_STATE_");
                    let broker = b.broker.unwrap_or_default();
                    BrokerView {
                        id: broker.broker_id,
                        address: broker.address,
                        rack: broker.rack,
                        state,
                        epoch: b.broker_epoch,
                        leaders: b.leader_count,
                        replicas: b.replica_count,
                    }
                })
                .collect(),
            coordinators: cluster
                .coordinators
                .into_iter()
                .map(|c| CoordinatorView {
                    id: c.coordinator_id,
                    address: c.address,
                    groups: c.group_count,
                })
                .collect(),
            topics: cluster.topic_count,
            partitions: cluster.partition_count,
            under_replicated_partitions: cluster.under_replicated_partitions,
            offline_partitions: cluster.offline_partitions,
        };
        print(context.format, &view)
    }
}

#[derive(Debug, Serialize)]
struct ControllerView {
    id: i32,
    epoch: i64,
    address: String,
}

#[derive(Debug, Serialize)]
struct BrokerView {
    id: i32,
    address: String,
    rack: String,
    state: String,
    epoch: Option<i64>,
    leaders: i32,
    replicas: i32,
}

#[derive(Debug, Serialize)]
struct CoordinatorView {
    id: i32,
    address: String,
    groups: i32,
}

#[derive(Debug, Serialize)]
struct ClusterView {
    cluster_id: String,
    controller: Option<ControllerView>,
    brokers: Vec<BrokerView>,
    coordinators: Vec<CoordinatorView>,
    topics: i32,
    partitions: i32,
    under_replicated_partitions: i32,
    offline_partitions: i32,
}

impl Render for ClusterView {
    fn tables(&self) -> Vec<Table> {
        let mut summary = Table::new([
            "CLUSTER",
            "CONTROLLER",
            "EPOCH",
            "TOPICS",
            "PARTITIONS",
            "UNDER-REPLICATED",
            "OFFLINE",
        ]);
        summary.row([
            self.cluster_id.clone(),
            self.controller
                .as_ref()
                .map_or("none".to_owned(), |c| format!("{} ({})", c.id, c.address)),
            cell(self.controller.as_ref().map(|c| c.epoch)),
            self.topics.to_string(),
            self.partitions.to_string(),
            self.under_replicated_partitions.to_string(),
            self.offline_partitions.to_string(),
        ]);
        let mut brokers = Table::new(["BROKER", "ADDRESS", "RACK", "STATE", "LEADERS", "REPLICAS"]);
        for b in &self.brokers {
            brokers.row([
                b.id.to_string(),
                b.address.clone(),
                if b.rack.is_empty() {
                    "-".to_owned()
                } else {
                    b.rack.clone()
                },
                b.state.clone(),
                b.leaders.to_string(),
                b.replicas.to_string(),
            ]);
        }
        let mut coordinators = Table::new(["COORDINATOR", "ADDRESS", "GROUPS"]);
        for c in &self.coordinators {
            coordinators.row([c.id.to_string(), c.address.clone(), c.groups.to_string()]);
        }
        vec![summary, brokers, coordinators]
    }
}
