//! `strom-controller`: the active/standby controller of a Strom cluster.

use std::process::ExitCode;

use clap::Parser;
use strom_controller::config::ControllerConfig;
use strom_controller::server::{BoundController, connect_etcd};
use strom_server_kit::{CommonArgs, Startup, init_tracing, shutdown_token};
use tokio_util::task::TaskTracker;

/// Runs one controller; any number may run, one is active.
#[derive(Debug, Parser)]
#[command(name = "strom-controller", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let config: ControllerConfig = match args.common.resolve("STROM_CONTROLLER")? {
        Startup::Run(config) => config,
        Startup::Exit(code) => return Ok(code),
    };
    init_tracing(&config.logging)?;
    let signals = TaskTracker::new();
    let shutdown = shutdown_token(&signals)?;
    let store = connect_etcd(&config).await?;
    BoundController::bind(config, store)
        .await?
        .serve(shutdown)
        .await?;
    signals.close();
    Ok(ExitCode::SUCCESS)
}
