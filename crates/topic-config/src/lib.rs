//! The per-topic configs Strom understands, shared by the controller (which validates and stores
//! overrides) and the brokers (which apply them to partition logs and produce).
//!
//! This crate depends on no other workspace crate, so neither side pulls in the other's
//! dependencies.

mod error;
mod log_settings;
mod registry;

pub use error::{Error, Result};
pub use log_settings::{LogSettings, log_settings};
pub use registry::*;
