//! The I/O shell around the pure controller logic: it campaigns in the etcd election, mirrors
//! cluster state into a [`ClusterView`](crate::ClusterView) with watches, runs the reducer and
//! performs its actions as fenced writes, and serves admin and broker requests while active.

mod active;
mod admin;
mod requests;
mod runner;
mod view_sync;

use std::time::Duration;

use strom_proto::admin::v1 as admin_pb;
use strom_proto::controller::v1 as controller_pb;
use tokio::sync::oneshot;

pub use runner::{ControllerRuntime, Role};

use crate::TopicDefaults;

/// What the shell needs to know, already validated.
#[derive(Debug, Clone)]
pub struct ShellSettings {
    /// The cluster name; keys live under `/strom/<cluster>/`.
    pub cluster: String,
    /// This controller's id.
    pub id: i32,
    /// The address brokers and clients reach this controller at.
    pub advertised_address: String,
    /// The election lease TTL: how long a dead active controller keeps its role.
    pub lease_ttl: Duration,
    /// How often every watch re-lists its prefix as a safety net.
    pub resync_interval: Duration,
    /// How often leadership is moved back to preferred replicas; `None` disables it.
    pub preferred_leader_interval: Option<Duration>,
    /// Defaults for CreateTopics fields left at 0.
    pub topic_defaults: TopicDefaults,
    /// Producer ids handed out per AllocateProducerIds call.
    pub producer_id_block_size: i64,
}

/// A request for the active controller, with the channel its answer goes back on.
#[derive(Debug)]
pub enum Command {
    /// AdminService.CreateTopics.
    CreateTopics(
        admin_pb::CreateTopicsRequest,
        oneshot::Sender<admin_pb::CreateTopicsResponse>,
    ),
    /// AdminService.DeleteTopics.
    DeleteTopics(
        admin_pb::DeleteTopicsRequest,
        oneshot::Sender<admin_pb::DeleteTopicsResponse>,
    ),
    /// AdminService.DescribeTopics.
    DescribeTopics(
        admin_pb::DescribeTopicsRequest,
        oneshot::Sender<admin_pb::DescribeTopicsResponse>,
    ),
    /// AdminService.DescribeCluster.
    DescribeCluster(oneshot::Sender<admin_pb::DescribeClusterResponse>),
    /// AdminService.AlterConfigs.
    AlterConfigs(
        admin_pb::AlterConfigsRequest,
        oneshot::Sender<admin_pb::AlterConfigsResponse>,
    ),
    /// AdminService.DescribeConfigs.
    DescribeConfigs(
        admin_pb::DescribeConfigsRequest,
        oneshot::Sender<admin_pb::DescribeConfigsResponse>,
    ),
    /// AdminService.DrainBroker.
    DrainBroker(
        admin_pb::DrainBrokerRequest,
        oneshot::Sender<admin_pb::DrainBrokerResponse>,
    ),
    /// ControllerService.AlterPartition.
    AlterPartition(
        controller_pb::AlterPartitionRequest,
        oneshot::Sender<controller_pb::AlterPartitionResponse>,
    ),
    /// ControllerService.AllocateProducerIds.
    AllocateProducerIds(
        controller_pb::AllocateProducerIdsRequest,
        oneshot::Sender<controller_pb::AllocateProducerIdsResponse>,
    ),
}
