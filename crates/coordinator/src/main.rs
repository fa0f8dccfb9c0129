//! `strom-coordinator`: owns consumer groups and their committed offsets.

use std::process::ExitCode;

use clap::Parser;
use strom_coordinator::config::CoordinatorConfig;
use strom_coordinator::server::{BoundCoordinator, connect_etcd};
use strom_server_kit::{CommonArgs, Startup, init_tracing, shutdown_token};
use tokio_util::task::TaskTracker;

/// Runs one coordinator; any number may run, groups spread over them.
#[derive(Debug, Parser)]
#[command(name = "strom-coordinator", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let config: CoordinatorConfig = match args.common.resolve("STROM_COORDINATOR")? {
        Startup::Run(config) => config,
        Startup::Exit(code) => return Ok(code),
    };
    init_tracing(&config.logging)?;
    let signals = TaskTracker::new();
    let shutdown = shutdown_token(&signals)?;
    let store = connect_etcd(&config).await?;
    BoundCoordinator::bind(config, store)
        .await?
        .serve(shutdown)
        .await?;
    signals.close();
    Ok(ExitCode::SUCCESS)
}
