//! The pure logic of Strom's controller: everything the active controller decides, as
//! deterministic functions of the observed cluster state, with no I/O.
//!
//! - [`topic_config`]: the per-topic configs, their defaults and validation.
//! - [`place_replicas`]: replica placement for new partitions (rack-aware, balanced).
//! - [`ClusterView`]: the observed state (live brokers, topics, partition records).
//! - [`reconcile`]: the reducer that elects leaders and shrinks ISRs as brokers come and go,
//!   returning fenced [`Action`]s for the shell to write.
//! - [`alter_partition`]: validates a leader's ISR proposal.
//! - [`plan_create_topic`]: validates a new topic and plans its partitions.
//!
//! The I/O shell (etcd watches and fenced writes), the gRPC services and the binary build on
//! these; every decision lives here so it can be tested without etcd or a runtime.

mod alter_partition;
pub mod config;
mod create_topic;
mod error;
pub mod grpc;
pub mod metrics;
mod placement;
mod reducer;
pub mod server;
pub mod shell;
pub use strom_topic_config as topic_config;
mod view;

pub use alter_partition::{AlterPartitionProposal, IsrMember, alter_partition};
pub use create_topic::{
    MAX_PARTITIONS_PER_TOPIC, NewTopic, TopicDefaults, TopicPlan, plan_create_topic,
};
pub use error::{Error, Result};
pub use placement::{BrokerLoad, PlacementBroker, PlacementRequest, place_replicas};
pub use reducer::{Action, ReconcileOptions, UpdateReason, reconcile, reconcile_partition};
pub use view::{ClusterView, LiveBroker, PartitionState};
