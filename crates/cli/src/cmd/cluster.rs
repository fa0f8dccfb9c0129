//! `strom cluster describe`.

use clap::Subcommand;
use serde::Serialize;

use crate::context::Context;
use crate::error::Result;
use crate::output::{Render, Table, cell, label, print};

/// Cluster subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Brokers, racks, the active controller and its epoch, coordinators, partition health.
    #[command(after_help = "Example:\n  strom cluster describe -o yaml")]
    Describe,
}

impl ClusterCommand {
    /// Runs the subcommand.
    pub(crate) async fn run(self, context: &Context) -> Result<()> {
        let admin = context.admin().await?;
        let Self::Describe = self;
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
