//! `strom-broker`: stores partition replicas and serves clients.

use std::process::ExitCode;

use clap::Parser;
use strom_broker::config::BrokerConfig;
use strom_broker::server::{BoundBroker, connect_etcd};
use strom_server_kit::{CommonArgs, Startup, init_tracing, shutdown_token};
use tokio_util::task::TaskTracker;

/// Runs one broker.
#[derive(Debug, Parser)]
#[command(name = "strom-broker", version, about)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let args = Args::parse();
    let config: BrokerConfig = match args.common.resolve("STROM_BROKER")? {
        Startup::Run(config) => config,
        Startup::Exit(code) => return Ok(code),
    };
    init_tracing(&config.logging)?;
    let signals = TaskTracker::new();
    let shutdown = shutdown_token(&signals)?;
    let store = connect_etcd(&config).await?;
    BoundBroker::bind(config, store)
        .await?
        .serve(shutdown)
        .await?;
    signals.close();
    Ok(ExitCode::SUCCESS)
}
