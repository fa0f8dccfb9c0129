//! `strom health`: the gRPC health check of any Strom process (broker, controller, coordinator).

use std::time::Duration;

use clap::Args;
use serde::Serialize;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::output::{Render, Table, print};

/// `health` arguments.
#[derive(Debug, Args)]
#[command(after_help = "\
Exits 0 when every address answers SERVING, 1 when one answers otherwise (a broker before it
registers, or after it lost its lease), 3 when one cannot be reached. Suits container health
checks.

Examples:
  strom health                          # the bootstrap brokers
  strom health 127.0.0.1:9093 127.0.0.1:9094
  strom health -o json")]
pub(crate) struct HealthArgs {
    /// Addresses (host:port) to check; default: the bootstrap brokers.
    addresses: Vec<String>,
}

/// One address's answer.
#[derive(Debug, Serialize)]
pub(crate) struct Check {
    address: String,
    status: String,
}

#[derive(Debug, Serialize)]
#[serde(transparent)]
pub(crate) struct Checks(Vec<Check>);

impl Render for Checks {
    fn tables(&self) -> Vec<Table> {
        let mut table = Table::new(vec!["ADDRESS", "STATUS"]);
        for check in &self.0 {
            table.row(vec![check.address.clone(), check.status.clone()]);
        }
        vec![table]
    }
}

impl HealthArgs {
    pub(crate) async fn run(self, context: &Context) -> Result<()> {
        let addresses = if self.addresses.is_empty() {
            context.brokers.clone()
        } else {
            self.addresses
        };
        let mut checks = Vec::new();
        let mut first_error = None;
        for address in addresses {
            let status = match check(&address, context.timeout).await {
                Ok(ServingStatus::Serving) => "SERVING".to_owned(),
                Ok(other) => {
                    let name = other
                        .as_str_name()
                        .trim_start_matches("SERVING_STATUS_")
                        .to_owned();
                    first_error.get_or_insert(Error::Unhealthy(format!("{address} is {name}")));
                    name
                }
                Err(error) => {
                    first_error.get_or_insert(error);
                    "UNREACHABLE".to_owned()
                }
            };
            checks.push(Check { address, status });
        }
        print(context.format, &Checks(checks))?;
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

async fn check(address: &str, timeout: Duration) -> Result<ServingStatus> {
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| Error::usage(format!("{address:?} is not host:port: {e}")))?
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .timeout(timeout);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| Error::Unreachable(format!("{address}: {e}")))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .map_err(|status| Error::Unreachable(format!("{address}: {}", status.message())))?;
    Ok(response.into_inner().status())
}
