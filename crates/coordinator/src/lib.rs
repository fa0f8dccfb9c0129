//! Strom's consumer group coordinator.
//!
//! Any number of coordinators run; each registers under an etcd lease and owns the groups it
//! claimed under that lease (the `groups/<g>/owner` key, whose create revision fences every
//! write). When a coordinator dies or is paused past its lease, its owner keys vanish and the
//! next request for a group lets any live coordinator claim it and load its state from etcd.
//!
//! - [`group`]: the pure group state machine (KIP-848 style): joins, heartbeats, leaves,
//!   member epochs, target assignment and incremental reconciliation.
//! - [`assignor`]: the server-side assignors (`uniform`, `range`).
//! - [`offsets`]: the committed-offset table and the group-commit batcher.
//! - [`runtime`]: ownership, persistence, session expiry and the request handlers.
//! - [`grpc`] and [`server`]: the CoordinatorService and the process wiring.

pub mod assignor;
mod brokers;
pub mod config;
mod convert;
mod error;
pub mod group;
pub mod grpc;
pub mod metrics;
pub mod offsets;
pub mod runtime;
pub mod server;

pub use error::{Error, Result};
pub use runtime::validate_group_id;
