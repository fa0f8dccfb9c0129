//! Process scaffolding shared by Strom's service binaries. No domain code lives here.
//!
//! - **Config** ([`load`], [`LoadOptions`], [`Validate`], [`render`]): layered loading,
//!   defaults < TOML file < env vars (`STROM_BROKER__LOG__SEGMENT_BYTES`) < `--set` flags, with
//!   errors that name the offending key and the layer it came from.
//! - **Units** ([`ByteSize`], [`HumanDuration`]): `"64MiB"` and `"30s"` in config files.
//! - **Logging** ([`init_tracing`], [`LoggingConfig`]): the one tracing setup, text or JSON.
//! - **Shutdown** ([`shutdown_token`], [`drain`]): SIGTERM/SIGINT cancel a
//!   `CancellationToken`; tracked tasks drain with a deadline.
//! - **CLI** ([`CommonArgs`], [`Startup`]): `--config`, `--set`, `--check-config`.
//! - **gRPC serving** ([`grpc`]): a server builder with wide HTTP/2 windows, and accepted
//!   connections with TCP_NODELAY.
//! - **Metrics** ([`metrics`]): the `[metrics]` section, a Prometheus registry served on
//!   `GET /metrics`, and per-RPC counters and latency histograms on every gRPC server.
//! - **Metadata store settings** ([`EtcdConfig`]): the `[etcd]` section every service shares
//!   (endpoints and timeouts only; the client itself lives in `strom-meta`).
//!
//! A service `main` then reads: parse flags, [`CommonArgs::resolve`], [`init_tracing`],
//! [`shutdown_token`], build, run until cancelled, [`drain`].

mod cli;
mod config;
mod error;
mod etcd;
pub mod grpc;
mod logging;
pub mod metrics;
mod shutdown;
mod units;

pub use cli::{CHECK_CONFIG_FAILED, CommonArgs, Startup, check_config};
pub use config::{LoadOptions, Validate, load, render};
pub use error::{Error, Layer, Result, UnitError};
pub use etcd::{EtcdConfig, Membership};
pub use logging::{LogFormat, LoggingConfig, init_tracing};
pub use shutdown::{cancel_on_signal, drain, shutdown_token};
pub use units::{ByteSize, HumanDuration};
