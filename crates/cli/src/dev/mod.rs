//! The single-process dev cluster behind `strom dev`: an embedded metadata store (the
//! in-memory twin of the etcd store, persisted to RocksDB through `strom-storage`), one controller, N brokers and one coordinator,
//! each served exactly as its own binary would serve it, all on one Tokio runtime.
//!
//! Layout of the data directory: `meta/` holds the metadata store, `broker-<id>/` each
//! broker's logs and local state. Everything survives a restart on the same directory.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use strom_server_kit::metrics::MetricsConfig;

use strom_broker::config::BrokerConfig;
use strom_broker::server::BoundBroker;
use strom_client::{Admin, Client, ClientConfig};
use strom_controller::config::ControllerConfig;
use strom_controller::server::BoundController;
use strom_coordinator::config::CoordinatorConfig;
use strom_coordinator::server::BoundCoordinator;
use strom_meta::{MemoryStore, MetaStore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::error;

use crate::error::{Error, Result};

mod metadata;

/// The most brokers one dev process runs.
pub(crate) const MAX_BROKERS: u16 = 9;

/// How long the cluster may take to elect a controller and register every member.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long shutdown waits for the services to deregister and close their logs.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);

/// What to run, and where.
#[derive(Debug, Clone)]
pub(crate) struct DevSettings {
    /// The directory holding every service's data.
    pub(crate) data_dir: PathBuf,
    /// The address every service listens on.
    pub(crate) host: IpAddr,
    /// The first broker's port; the controller takes the next, the coordinator the one after,
    /// further brokers the ports after that. 0 picks free ports for everything.
    pub(crate) port: u16,
    /// How many brokers.
    pub(crate) brokers: u16,
    /// The log filter directive.
    pub(crate) log_level: String,
}

/// Where each service of a running dev cluster listens.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    /// Broker ids and addresses, broker 1 first.
    pub(crate) brokers: Vec<(i32, SocketAddr)>,
    /// The controller's address.
    pub(crate) controller: SocketAddr,
    /// The coordinator's address.
    pub(crate) coordinator: SocketAddr,
}

/// A running dev cluster.
pub(crate) struct DevCluster {
    endpoints: Endpoints,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    failed: CancellationToken,
}

impl DevCluster {
    /// Opens the data directory, binds every port and starts every service.
    pub(crate) async fn start(settings: &DevSettings, shutdown: CancellationToken) -> Result<Self> {
        if settings.brokers == 0 || settings.brokers > MAX_BROKERS {
            return Err(Error::usage(format!(
                "--brokers must be between 1 and {MAX_BROKERS}"
            )));
        }
        let store = open_store(&settings.data_dir.join("meta")).await?;
        let addr = |offset: u16| {
            let port = match settings.port {
                0 => 0,
                base => base.checked_add(offset).unwrap_or(0),
            };
            SocketAddr::new(settings.host, port)
        };
        let logging = strom_server_kit::LoggingConfig {
            level: settings.log_level.clone(),
            ..Default::default()
        };

        let controller = BoundController::bind(
            ControllerConfig {
                listen: addr(1),
                // Replicate by default when there is more than one broker.
                default_replication_factor: settings.brokers.min(3),
                logging: logging.clone(),
                metrics: MetricsConfig::disabled(),
                ..ControllerConfig::default()
            },
            Arc::clone(&store),
        )
        .await
        .map_err(|e| startup("controller", &e))?;

        let mut brokers = Vec::new();
        for id in 1..=settings.brokers {
            let offset = if id == 1 { 0 } else { id + 1 };
            let config = BrokerConfig {
                id: i32::from(id),
                listen: addr(offset),
                data_dir: settings.data_dir.join(format!("broker-{id}")),
                logging: logging.clone(),
                metrics: MetricsConfig::disabled(),
                ..BrokerConfig::default()
            };
            let broker = BoundBroker::bind(config, Arc::clone(&store))
                .await
                .map_err(|e| startup("broker", &e))?;
            brokers.push((i32::from(id), broker));
        }

        let coordinator = BoundCoordinator::bind(
            CoordinatorConfig {
                listen: addr(2),
                logging,
                metrics: MetricsConfig::disabled(),
                ..CoordinatorConfig::default()
            },
            Arc::clone(&store),
        )
        .await
        .map_err(|e| startup("coordinator", &e))?;

        let endpoints = Endpoints {
            brokers: brokers
                .iter()
                .map(|(id, b)| (*id, b.local_addr()))
                .collect(),
            controller: controller.local_addr(),
            coordinator: coordinator.local_addr(),
        };
        let tasks = TaskTracker::new();
        let failed = CancellationToken::new();
        let services = shutdown.child_token();
        spawn_service(&tasks, &failed, "controller", {
            let token = services.clone();
            async move { controller.serve(token).await.map_err(|e| e.to_string()) }
        });
        for (_, broker) in brokers {
            let token = services.clone();
            spawn_service(&tasks, &failed, "broker", async move {
                broker.serve(token).await.map_err(|e| e.to_string())
            });
        }
        spawn_service(&tasks, &failed, "coordinator", {
            let token = services.clone();
            async move { coordinator.serve(token).await.map_err(|e| e.to_string()) }
        });
        tasks.close();
        // The store must outlive every service; the last task to hold it drops it.
        tasks.spawn({
            let services = services.clone();
            async move {
                services.cancelled().await;
                drop(store);
            }
        });
        Ok(Self {
            endpoints,
            shutdown: services,
            tasks,
            failed,
        })
    }

    /// Where the services listen.
    pub(crate) fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// Waits until a client of broker 1 sees an active controller, every broker and the
    /// coordinator, as `strom cluster describe` would.
    pub(crate) async fn wait_ready(&self) -> Result<()> {
        let first = self
            .endpoints
            .brokers
            .first()
            .map(|(_, address)| address.to_string())
            .ok_or_else(|| Error::usage("no brokers to wait for"))?;
        let mut config = ClientConfig::new(vec![first]);
        config.request_timeout = Duration::from_secs(2);
        config.connect_timeout = Duration::from_secs(1);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if self.failed.is_cancelled() {
                return Err(Error::Startup(
                    "a service stopped during startup (see the log above)".to_owned(),
                ));
            }
            let not_ready = match self.describe(&config).await {
                Ok(()) => return Ok(()),
                Err(reason) => reason,
            };
            if Instant::now() >= deadline {
                return Err(Error::Startup(format!(
                    "the cluster was not ready after {}s: {not_ready}",
                    READY_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn describe(&self, config: &ClientConfig) -> std::result::Result<(), String> {
        let client = Client::connect(config.clone())
            .await
            .map_err(|e| e.to_string())?;
        let cluster = Admin::new(client)
            .describe_cluster()
            .await
            .map_err(|e| e.to_string())?;
        if cluster.controller.is_none() {
            return Err("no active controller".to_owned());
        }
        if cluster.brokers.len() < self.endpoints.brokers.len() {
            return Err(format!(
                "{} of {} brokers registered",
                cluster.brokers.len(),
                self.endpoints.brokers.len()
            ));
        }
        if cluster.coordinators.is_empty() {
            return Err("no coordinator registered".to_owned());
        }
        Ok(())
    }

    /// Resolves when a service stopped on its own (an error, already logged).
    pub(crate) async fn failed(&self) {
        self.failed.cancelled().await;
    }

    /// Stops every service and waits for them to deregister and close their logs; `false`
    /// if they did not finish in time.
    pub(crate) async fn stop(self) -> bool {
        self.shutdown.cancel();
        tokio::time::timeout(DRAIN_TIMEOUT, self.tasks.wait())
            .await
            .is_ok()
    }
}

/// Runs one service; when it ends with an error, logs it and flags the cluster as failed.
fn spawn_service(
    tasks: &TaskTracker,
    failed: &CancellationToken,
    role: &'static str,
    serve: impl Future<Output = std::result::Result<(), String>> + Send + 'static,
) {
    let failed = failed.clone();
    tasks.spawn(async move {
        if let Err(reason) = serve.await {
            error!(role, %reason, "service stopped");
            failed.cancel();
        }
    });
}

/// Opens the metadata store kept in `path`.
async fn open_store(path: &Path) -> Result<Arc<dyn MetaStore>> {
    let path = path.to_path_buf();
    let backend = tokio::task::spawn_blocking(move || metadata::RocksMetadata::open(&path))
        .await
        .map_err(|e| Error::Startup(format!("cannot open the metadata store: {e}")))?
        .map_err(|e| Error::Startup(e.to_string()))?;
    let store = MemoryStore::open(backend)
        .await
        .map_err(|e| Error::Startup(e.to_string()))?;
    Ok(Arc::new(store))
}

fn startup(role: &str, error: &dyn std::fmt::Display) -> Error {
    Error::Startup(format!("cannot start the {role}: {error}"))
}
