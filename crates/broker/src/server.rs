//! Process wiring: open local state, load metadata, register, and serve until shutdown.
//! Tests run brokers in-process or as processes through [`BoundBroker`] and the binary.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use strom_meta::records::BrokerRegistration;
use strom_meta::{ClusterMeta, EtcdOptions, EtcdStore, Keys, MetaStore};
use strom_proto::admin::v1::admin_service_server::AdminServiceServer;
use strom_proto::broker::v1::broker_service_server::BrokerServiceServer;
use strom_proto::coordinator::v1::coordinator_service_server::CoordinatorServiceServer;
use strom_proto::replication::v1::replication_service_server::ReplicationServiceServer;
use strom_storage::{RocksStateStore, StateStore, SystemClock};
use strom_types::BrokerId;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::config::BrokerConfig;
use crate::data::{Lookup, ProducerIds};
use crate::grpc::{AdminForwarder, BrokerGrpc, CoordinatorLocator};
use crate::maintenance::run_log_maintenance;
use crate::metrics::BrokerMetrics;
use crate::replicas::ReplicaManager;
use crate::replication::{IsrProposals, ReplicationGrpc, run_lag_checker, run_proposer};
use crate::{Error, Result, registration};
use strom_meta::MetadataSync;
use strom_server_kit::metrics::{MetricsRegistry, MetricsServer, RpcMetrics};

/// Connects to the etcd named in `config`.
pub async fn connect_etcd(config: &BrokerConfig) -> Result<Arc<dyn MetaStore>> {
    let options = EtcdOptions {
        endpoints: config.etcd.endpoints.clone(),
        connect_timeout: config.etcd.connect_timeout.0,
        request_timeout: config.etcd.request_timeout.0,
    };
    Ok(Arc::new(EtcdStore::connect(&options).await?))
}

/// A broker whose port is bound, ready to serve.
#[derive(Debug)]
pub struct BoundBroker {
    listener: TcpListener,
    address: SocketAddr,
    advertised: String,
    config: BrokerConfig,
    store: Arc<dyn MetaStore>,
    metrics_server: Option<MetricsServer>,
}

impl BoundBroker {
    /// Binds the listen address.
    pub async fn bind(config: BrokerConfig, store: Arc<dyn MetaStore>) -> Result<Self> {
        let bind_error = |e: std::io::Error| Error::Bind {
            address: config.listen,
            reason: e.to_string(),
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        let metrics_server =
            MetricsServer::bind(&config.metrics)
                .await
                .map_err(|e| Error::Bind {
                    address: config.metrics.listen,
                    reason: e.to_string(),
                })?;
        let advertised = match &config.advertised_address {
            Some(advertised) => advertised.clone(),
            None if address.ip().is_unspecified() => format!("127.0.0.1:{}", address.port()),
            None => address.to_string(),
        };
        Ok(Self {
            listener,
            address,
            advertised,
            config,
            store,
            metrics_server,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The bound metrics address, when metrics are enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(MetricsServer::local_addr)
    }

    /// Serves until `shutdown`, then deregisters and closes every log.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<()> {
        let id = BrokerId::try_new(self.config.id).map_err(|_| Error::NoController {
            reason: "broker id must not be negative".to_owned(),
        })?;
        let state_store = open_state(&self.config.data_dir).await?;
        let meta = ClusterMeta::new(self.store.clone(), Keys::new(&self.config.cluster));
        let (sync, cache) =
            MetadataSync::start(meta.clone(), self.config.resync_interval.0).await?;
        let (epoch_tx, epoch_rx) = watch::channel(None);
        let health_epoch = epoch_rx.clone();
        let registered = epoch_rx.clone();
        let registration = BrokerRegistration {
            id,
            rack: self.config.rack.clone(),
            address: self.advertised.clone(),
            incarnation: format!("{:032x}", rand::random::<u128>()),
        };
        let manager = ReplicaManager::new(
            id,
            self.config.data_dir.join("logs"),
            state_store,
            Arc::new(SystemClock),
        );
        let replicas = manager.replicas();
        let (proposals, proposal_queue) = IsrProposals::channel();
        let producer_ids = ProducerIds::new(id, cache.clone(), epoch_rx.clone());
        let tasks = TaskTracker::new();
        let background = shutdown.child_token();
        let metrics = BrokerMetrics::default();
        let rpc_metrics = RpcMetrics::default();
        if let Some(server) = self.metrics_server {
            let mut registry = MetricsRegistry::new("broker", &rpc_metrics);
            metrics.register(&mut registry, replicas.clone());
            tasks.spawn(server.serve(registry.into_shared(), background.clone()));
        }
        tasks.spawn(sync.run(background.clone()));
        tasks.spawn(manager.run(cache.clone(), epoch_rx.clone(), background.clone()));
        tasks.spawn(run_log_maintenance(
            replicas.clone(),
            self.config.log_retention_check_interval.0,
            background.clone(),
        ));
        tasks.spawn(run_lag_checker(
            id,
            replicas.clone(),
            cache.clone(),
            proposals.clone(),
            self.config.replica_lag_time_max.0,
            background.clone(),
        ));
        tasks.spawn(run_proposer(
            id,
            proposal_queue,
            cache.clone(),
            epoch_rx,
            metrics.clone(),
            background.clone(),
        ));
        tasks.spawn(registration::run(
            meta,
            registration,
            self.config.lease_ttl.0,
            epoch_tx,
            background.clone(),
        ));
        let (grpc, health) =
            strom_server_kit::grpc::standard_router(strom_proto::FILE_DESCRIPTOR_SET, &rpc_metrics)
                .await
                .map_err(|e| Error::Serve {
                    reason: e.to_string(),
                })?;
        tasks.spawn(report_health(health, health_epoch, background.clone()));
        tasks.close();
        info!(address = %self.address, advertised = %self.advertised, broker = id.get(), "broker listening");
        let max_request = usize::try_from(self.config.max_request_size.0).unwrap_or(usize::MAX);
        let served = grpc
            .add_service(
                BrokerServiceServer::new(BrokerGrpc::new(
                    self.config.cluster.clone(),
                    Lookup {
                        me: id,
                        cache: cache.clone(),
                        replicas: replicas.clone(),
                        metrics: metrics.clone(),
                    },
                    producer_ids,
                    shutdown.clone(),
                    registered,
                ))
                .max_decoding_message_size(max_request),
            )
            .add_service(
                AdminServiceServer::new(AdminForwarder::new(
                    cache.clone(),
                    self.config.request_timeout.0,
                ))
                .max_decoding_message_size(max_request),
            )
            .add_service(CoordinatorServiceServer::new(CoordinatorLocator::new(
                self.store.clone(),
                Keys::new(&self.config.cluster),
                cache.clone(),
            )))
            .add_service(
                ReplicationServiceServer::new(ReplicationGrpc::new(
                    id, cache, replicas, proposals, metrics,
                ))
                .max_decoding_message_size(max_request),
            )
            .serve_with_incoming_shutdown(
                strom_server_kit::grpc::incoming(self.listener),
                shutdown.cancelled(),
            )
            .await;
        background.cancel();
        tasks.wait().await;
        info!(broker = id.get(), "broker stopped");
        served.map_err(|e| Error::Serve {
            reason: e.to_string(),
        })
    }
}

/// Health follows registration: SERVING while the broker holds a registration (and so may
/// lead partitions), NOT_SERVING before, after losing its lease, and on the way out.
async fn report_health<T>(
    health: strom_server_kit::grpc::Health,
    mut epoch: watch::Receiver<Option<T>>,
    stop: CancellationToken,
) {
    loop {
        let registered = epoch.borrow_and_update().is_some();
        health.set(registered).await;
        tokio::select! {
            changed = epoch.changed() => if changed.is_err() { break },
            () = stop.cancelled() => break,
        }
    }
    health.set(false).await;
}

/// Creates the data directories and opens the local state store.
async fn open_state(data_dir: &Path) -> Result<Arc<dyn StateStore>> {
    let data_dir = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let logs = data_dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|source| Error::Io {
            operation: "create",
            path: logs,
            source,
        })?;
        let store = RocksStateStore::open(data_dir.join("state"))?;
        Ok(Arc::new(store) as Arc<dyn StateStore>)
    })
    .await
    .map_err(|e| Error::TaskFailed {
        reason: e.to_string(),
    })?
}
