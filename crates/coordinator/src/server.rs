//! Process wiring: connect to etcd, mirror cluster metadata, bind the gRPC port, run the
//! coordinator and serve until shutdown. Tests run several coordinators in one process through
//! [`BoundCoordinator`].

use std::net::SocketAddr;
use std::sync::Arc;

use strom_meta::records::CoordinatorRecord;
use strom_meta::{ClusterMeta, EtcdOptions, EtcdStore, Keys, MetaStore, MetadataSync};
use strom_proto::coordinator::v1::coordinator_service_server::CoordinatorServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::config::CoordinatorConfig;
use crate::grpc::CoordinatorGrpc;
use crate::metrics::run_sampler;
use crate::runtime::{Coordinator, RuntimeSettings};
use crate::{Error, Result};
use strom_server_kit::metrics::{MetricsRegistry, MetricsServer, RpcMetrics};

/// Connects to the etcd named in `config`.
pub async fn connect_etcd(config: &CoordinatorConfig) -> Result<Arc<dyn MetaStore>> {
    let options = EtcdOptions {
        endpoints: config.etcd.endpoints.clone(),
        connect_timeout: config.etcd.connect_timeout.0,
        request_timeout: config.etcd.request_timeout.0,
    };
    Ok(Arc::new(EtcdStore::connect(&options).await?))
}

/// A coordinator whose port is bound, ready to serve.
#[derive(Debug)]
pub struct BoundCoordinator {
    listener: TcpListener,
    address: SocketAddr,
    advertised: String,
    config: CoordinatorConfig,
    store: Arc<dyn MetaStore>,
    metrics_server: Option<MetricsServer>,
}

impl BoundCoordinator {
    /// Binds the listen address.
    pub async fn bind(config: CoordinatorConfig, store: Arc<dyn MetaStore>) -> Result<Self> {
        let bind_error = |source: std::io::Error| Error::Bind {
            address: config.listen,
            reason: source.to_string(),
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

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The bound metrics address, when metrics are enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(MetricsServer::local_addr)
    }

    /// Serves until `shutdown`; on the way out the lease is revoked so other coordinators take
    /// the groups over at once.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<()> {
        let config = &self.config;
        let keys = Keys::new(&config.cluster);
        let meta = ClusterMeta::new(Arc::clone(&self.store), keys.clone());
        let (sync, cache) = MetadataSync::start(meta, config.resync_interval.0).await?;
        let tasks = TaskTracker::new();
        tasks.spawn(sync.run(shutdown.clone()));
        let settings = RuntimeSettings {
            me: CoordinatorRecord {
                id: config.id,
                address: self.advertised.clone(),
            },
            lease_ttl: config.lease_ttl.0,
            limits: config.group_limits(),
            max_offset_metadata: usize::try_from(config.max_offset_metadata).unwrap_or(4096),
            commit_concurrency: usize::try_from(config.commit_concurrency).unwrap_or(4),
            request_timeout: config.request_timeout.0,
        };
        let coordinator = Coordinator::start(
            settings,
            Arc::clone(&self.store),
            keys,
            cache,
            &tasks,
            shutdown.clone(),
        );
        let rpc_metrics = RpcMetrics::default();
        if let Some(server) = self.metrics_server {
            let mut registry = MetricsRegistry::new("coordinator", &rpc_metrics);
            coordinator.metrics().register(registry.registry());
            tasks.spawn(run_sampler(
                coordinator.clone(),
                config.lag_sample_interval.0,
                shutdown.clone(),
            ));
            tasks.spawn(server.serve(registry.into_shared(), shutdown.clone()));
        }
        tasks.close();
        let (grpc, health) =
            strom_server_kit::grpc::standard_router(strom_proto::FILE_DESCRIPTOR_SET, &rpc_metrics)
                .await
                .map_err(|e| Error::Serve {
                    reason: e.to_string(),
                })?;
        health.set(true).await;
        info!(address = %self.address, id = config.id, "coordinator listening");
        let served = grpc
            .add_service(CoordinatorServiceServer::new(CoordinatorGrpc::new(
                coordinator,
            )))
            .serve_with_incoming_shutdown(
                strom_server_kit::grpc::incoming(self.listener),
                shutdown.cancelled(),
            )
            .await;
        shutdown.cancel();
        tasks.wait().await;
        served.map_err(|e| Error::Serve {
            reason: e.to_string(),
        })
    }
}
