//! Fault scenarios checked against a recorded history (`strom-chaos`).
//!
//! Each scenario starts etcd, two controllers, three brokers and two coordinators as
//! processes; runs an idempotent acks=all producer writing unique values to a topic of three
//! partitions (RF 3, min ISR 2) and two group members reading and committing; injects its
//! faults and heals them; drains every partition with a fresh consumer; and fails on any
//! violation the checker finds. `make chaos` runs every scenario several times in a row and
//! summarises the results; `make test` runs the short ones.

// The scenarios report their timeline and findings on stdout (`--nocapture`).
#![allow(clippy::unwrap_used, clippy::print_stdout, unreachable_pub)]

#[path = "../common/mod.rs"]
mod common;

mod cluster;
mod network;
mod recorder;
mod scenario;
mod workload;
