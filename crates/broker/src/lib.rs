//! Strom's broker.
//!
//! A broker registers under an etcd lease ([`registration`]), mirrors cluster metadata with
//! watches ([`strom_meta::MetadataSync`]), keeps one partition log per replica assigned to it and knows its
//! role for each ([`replicas`]), answers Metadata from its cache and forwards admin calls to
//! the active controller ([`grpc`]), and replicates from leaders to followers
//! ([`replication`]). [`server`] wires these into a process.

pub mod config;
pub mod data;
mod error;
pub mod grpc;
pub mod maintenance;
pub mod metrics;
pub mod registration;
pub mod replicas;
pub mod replication;
pub mod server;

pub use error::{Error, Result};
