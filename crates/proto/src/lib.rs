//! Strom's gRPC contracts: prost messages and tonic clients and servers for every v1 package.
//!
//! The `.proto` files under the workspace's `proto/` directory are the source of truth; this
//! crate compiles them at build time and never checks generated code in. Each package
//! `strom.<area>.v1` becomes the module `<area>::v1`:
//!
//! - [`common::v1`]: the shared [`ErrorCode`](common::v1::ErrorCode) and
//!   [`Error`](common::v1::Error) result, leader hints and broker addresses.
//! - [`broker::v1`]: produce, fetch, offsets and metadata, served by brokers to clients.
//! - [`admin::v1`]: topics, configs and the cluster overview, served by the controller and
//!   forwarded by brokers.
//! - [`coordinator::v1`]: consumer group membership and committed offsets.
//! - [`replication::v1`]: follower fetch and leader-epoch lookups between brokers.
//! - [`controller::v1`]: ISR changes and producer id blocks, from brokers to the controller.
//!
//! Every `bytes` field is a [`bytes::Bytes`], so record batches are shared, not copied.

mod error_code;

/// Types shared by every service (`strom.common.v1`).
pub mod common {
    /// Version 1 of the shared types.
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("strom.common.v1");
    }
}

/// The broker's client-facing data plane (`strom.broker.v1`).
pub mod broker {
    /// Version 1 of the broker service.
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("strom.broker.v1");
    }
}

/// Cluster administration (`strom.admin.v1`).
pub mod admin {
    /// Version 1 of the admin service.
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("strom.admin.v1");
    }
}

/// Consumer groups and committed offsets (`strom.coordinator.v1`).
pub mod coordinator {
    /// Version 1 of the coordinator service.
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("strom.coordinator.v1");
    }
}

/// Broker-to-broker replication (`strom.replication.v1`).
pub mod replication {
    /// Version 1 of the replication service.
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("strom.replication.v1");
    }
}

/// Broker-to-controller requests (`strom.controller.v1`).
pub mod controller {
    /// Version 1 of the controller service.
    #[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
    pub mod v1 {
        tonic::include_proto!("strom.controller.v1");
    }
}

/// The encoded `FileDescriptorSet` of every Strom package, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("strom_descriptor");
