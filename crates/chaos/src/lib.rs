//! Fault-injection support for Strom: the [`history`] a workload records while faults are
//! injected, and the [`checker`] that analyses it in the style of Jepsen's queue checks.
//!
//! A history is a list of completed operations ([`history::Op`]: invoked and completed
//! times, outcome ok / fail / unknown) and injected faults ([`history::Fault`]), kept as one
//! JSON object per line so a run can be re-checked later. [`checker::check`] reports every
//! violation it finds ([`checker::Report`]) and, per fault, how long producing, consuming and
//! rebalancing were unavailable afterwards.

pub mod checker;
mod error;
pub mod history;

pub use error::{Error, Result};
