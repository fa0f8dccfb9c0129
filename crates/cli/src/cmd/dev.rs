//! `strom dev`: the whole system in this process, for trying Strom and for local development.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::dev::{DevCluster, DevSettings, Endpoints, MAX_BROKERS};
use crate::error::{Error, Result};
use crate::output::Format;

/// `strom dev` arguments. The number of brokers comes from the global `--brokers`, which here
/// is a count rather than a list of addresses.
#[derive(Debug, Args)]
#[command(after_help = "\
Runs an embedded metadata store, a controller, N brokers and a coordinator in this process,
with every file under --data-dir, kept across restarts. Stop it with ctrl-c.

Ports: broker 1 on --port (9092), the controller on the next (9093), the coordinator on the
one after (9094), further brokers on the ports after that (9095, ...). --port 0 picks free ones.

Examples:
  strom dev                          # one broker, data in ~/.local/share/strom/dev
  strom dev --brokers 3              # three brokers; topics replicate 3 ways by default
  strom dev --data-dir /tmp/strom --port 19092
  strom dev -o json                  # one JSON line with the addresses once ready")]
pub(crate) struct DevArgs {
    /// Where the metadata and every broker's logs live (default: $XDG_DATA_HOME/strom/dev,
    /// else ~/.local/share/strom/dev).
    #[arg(long, env = "STROM_DEV_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// The address every service listens on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// The first broker's port (see below for the others).
    #[arg(long, default_value_t = 9092)]
    port: u16,
    /// The services' log filter (RUST_LOG, when set, replaces it).
    #[arg(long, default_value = "info")]
    log_level: String,
}

/// What `-o json` prints once the cluster is ready.
#[derive(Debug, Serialize)]
struct Ready {
    ready_ms: u64,
    data_dir: String,
    brokers: Vec<BrokerAddress>,
    controller: String,
    coordinator: String,
    bootstrap: String,
}

#[derive(Debug, Serialize)]
struct BrokerAddress {
    id: i32,
    address: String,
}

impl DevArgs {
    /// Runs the cluster until ctrl-c or SIGTERM. `brokers` is the global `--brokers` as given
    /// on the command line (`None` when it was not).
    pub(crate) async fn run(self, brokers: Option<Vec<String>>, format: Format) -> Result<()> {
        let started = Instant::now();
        let count = broker_count(brokers)?;
        let data_dir = match self.data_dir {
            Some(dir) => dir,
            None => default_data_dir()?,
        };
        strom_server_kit::init_tracing(&strom_server_kit::LoggingConfig {
            level: self.log_level.clone(),
            ..Default::default()
        })
        .map_err(|e| Error::usage(format!("--log-level: {e}")))?;
        let signals = TaskTracker::new();
        let shutdown = strom_server_kit::shutdown_token(&signals)
            .map_err(|e| Error::Startup(format!("cannot install signal handlers: {e}")))?;
        let settings = DevSettings {
            data_dir: data_dir.clone(),
            host: self.host,
            port: self.port,
            brokers: count,
            log_level: self.log_level,
        };
        let cluster = DevCluster::start(&settings, shutdown.clone()).await?;
        let ready = tokio::select! {
            ready = cluster.wait_ready() => ready,
            () = shutdown.cancelled() => Ok(()),
        };
        if let Err(error) = ready {
            cluster.stop().await;
            return Err(error);
        }
        if !shutdown.is_cancelled() {
            let ready_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            print_ready(
                &Ready::new(ready_ms, &data_dir, cluster.endpoints()),
                format,
            )?;
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = cluster.failed() => {}
            }
        }
        let failed_on_its_own = !shutdown.is_cancelled();
        shutdown.cancel();
        let clean = cluster.stop().await;
        signals.close();
        if failed_on_its_own {
            return Err(Error::Startup(
                "a service stopped; the cluster was shut down (see the log above)".to_owned(),
            ));
        }
        if !clean {
            return Err(Error::Startup(
                "the services did not stop within 15s; some logs may need recovery on the next start"
                    .to_owned(),
            ));
        }
        Ok(())
    }
}

/// The broker count from the global `--brokers`: absent means 1, else one number.
fn broker_count(brokers: Option<Vec<String>>) -> Result<u16> {
    let Some(values) = brokers else { return Ok(1) };
    match values.as_slice() {
        [one] => one
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|n| (1..=MAX_BROKERS).contains(n))
            .ok_or_else(|| {
                Error::usage(format!(
                    "for `strom dev`, --brokers is how many brokers to run (1 to {MAX_BROKERS}), not {one:?}"
                ))
            }),
        _ => Err(Error::usage(format!(
            "for `strom dev`, --brokers is one number from 1 to {MAX_BROKERS}"
        ))),
    }
}

fn default_data_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("strom/dev"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Error::usage("HOME is not set; pass --data-dir"))?;
    Ok(PathBuf::from(home).join(".local/share/strom/dev"))
}

impl Ready {
    fn new(ready_ms: u64, data_dir: &std::path::Path, endpoints: &Endpoints) -> Self {
        let brokers: Vec<BrokerAddress> = endpoints
            .brokers
            .iter()
            .map(|(id, address)| BrokerAddress {
                id: *id,
                address: address.to_string(),
            })
            .collect();
        let bootstrap = brokers
            .iter()
            .map(|b| b.address.as_str())
            .collect::<Vec<_>>()
            .join(",");
        Self {
            ready_ms,
            data_dir: data_dir.display().to_string(),
            brokers,
            controller: endpoints.controller.to_string(),
            coordinator: endpoints.coordinator.to_string(),
            bootstrap,
        }
    }
}

#[allow(clippy::print_stdout)]
fn print_ready(ready: &Ready, format: Format) -> Result<()> {
    match format {
        Format::Json => {
            let line = serde_json::to_string(ready).map_err(|e| Error::Io {
                what: "encode the ready line".to_owned(),
                source: std::io::Error::other(e),
            })?;
            println!("{line}");
        }
        Format::Yaml | Format::Table => {
            let brokers: Vec<String> = ready
                .brokers
                .iter()
                .map(|b| format!("{} (id {})", b.address, b.id))
                .collect();
            let env = if ready.bootstrap == crate::context::DEFAULT_BROKER {
                String::new()
            } else {
                format!("  export STROM_BROKERS={}\n", ready.bootstrap)
            };
            println!(
                "Strom dev cluster ready in {:.2}s\n\
                 \x20 data         {}\n\
                 \x20 brokers      {}\n\
                 \x20 controller   {}\n\
                 \x20 coordinator  {}\n\
                 \n\
                 In another terminal:\n\
                 {env}\
                 \x20 strom topic create hello --partitions 3\n\
                 \x20 printf 'one\\ntwo\\nthree\\n' | strom produce hello\n\
                 \x20 strom consume hello --group demo --from beginning --num 3\n\
                 \x20 strom group describe demo\n\
                 \n\
                 Stop with ctrl-c; the data stays for the next `strom dev`.",
                Duration::from_millis(ready.ready_ms).as_secs_f64(),
                ready.data_dir,
                brokers.join(", "),
                ready.controller,
                ready.coordinator,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_count_is_one_number_in_range() {
        assert_eq!(broker_count(None).ok(), Some(1));
        assert_eq!(broker_count(Some(vec!["3".to_owned()])).ok(), Some(3));
        assert!(broker_count(Some(vec!["0".to_owned()])).is_err());
        assert!(broker_count(Some(vec!["127.0.0.1:9092".to_owned()])).is_err());
        assert!(broker_count(Some(vec!["1".to_owned(), "2".to_owned()])).is_err());
    }
}
