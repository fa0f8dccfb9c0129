//! Process wiring: connect to etcd, bind the gRPC port, run the election loop and serve until
//! shutdown. Tests run several controllers in one process through [`BoundController`].

use std::net::SocketAddr;
use std::sync::Arc;

use strom_meta::{ClusterMeta, EtcdOptions, EtcdStore, Keys, MetaStore};
use strom_proto::admin::v1::admin_service_server::AdminServiceServer;
use strom_proto::controller::v1::controller_service_server::ControllerServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::config::ControllerConfig;
use crate::grpc::ControllerRouter;
use crate::shell::ControllerRuntime;
use crate::{Error, Result};
use strom_server_kit::metrics::{MetricsRegistry, MetricsServer, RpcMetrics};

/// A controller whose port is bound and whose store is connected, ready to serve.
#[derive(Debug)]
pub struct BoundController {
    listener: TcpListener,
    address: SocketAddr,
    runtime: ControllerRuntime,
    config: ControllerConfig,
    metrics_server: Option<MetricsServer>,
}

/// Connects to the etcd named in `config`.
pub async fn connect_etcd(config: &ControllerConfig) -> Result<Arc<dyn MetaStore>> {
    let options = EtcdOptions {
        endpoints: config.etcd.endpoints.clone(),
        connect_timeout: config.etcd.connect_timeout.0,
        request_timeout: config.etcd.request_timeout.0,
    };
    Ok(Arc::new(EtcdStore::connect(&options).await?))
}

impl BoundController {
    /// Binds the listen address and prepares the election over `store`.
    pub async fn bind(config: ControllerConfig, store: Arc<dyn MetaStore>) -> Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                address: config.listen,
                reason: source.to_string(),
            })?;
        let address = listener.local_addr().map_err(|source| Error::Bind {
            address: config.listen,
            reason: source.to_string(),
        })?;
        let advertised = match &config.advertised_address {
            Some(advertised) => advertised.clone(),
            None if address.ip().is_unspecified() => format!("127.0.0.1:{}", address.port()),
            None => address.to_string(),
        };
        let metrics_server =
            MetricsServer::bind(&config.metrics)
                .await
                .map_err(|e| Error::Bind {
                    address: config.metrics.listen,
                    reason: e.to_string(),
                })?;
        let meta = ClusterMeta::new(store, Keys::new(&config.cluster));
        let runtime = ControllerRuntime::new(config.shell_settings(advertised), meta);
        Ok(Self {
            listener,
            address,
            runtime,
            config,
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

    /// Serves until `shutdown`; an active controller resigns on the way out.
    pub async fn serve(self, shutdown: CancellationToken) -> Result<()> {
        let router = ControllerRouter::new(
            self.runtime.role(),
            self.runtime.election(),
            self.config.request_timeout.0,
        );
        let tracker = TaskTracker::new();
        let rpc_metrics = RpcMetrics::default();
        if let Some(server) = self.metrics_server {
            let mut registry = MetricsRegistry::new("controller", &rpc_metrics);
            self.runtime.metrics().register(registry.registry());
            tracker.spawn(server.serve(registry.into_shared(), shutdown.clone()));
        }
        tracker.spawn(self.runtime.run(shutdown.clone()));
        tracker.close();
        let (grpc, health) =
            strom_server_kit::grpc::standard_router(strom_proto::FILE_DESCRIPTOR_SET, &rpc_metrics)
                .await
                .map_err(|e| Error::Serve {
                    reason: e.to_string(),
                })?;
        // Active or standby, a controller that serves is healthy: a standby answers with the
        // active controller's address.
        health.set(true).await;
        info!(address = %self.address, id = self.config.id, "controller listening");
        let served = grpc
            .add_service(AdminServiceServer::new(router.clone()))
            .add_service(ControllerServiceServer::new(router))
            .serve_with_incoming_shutdown(
                strom_server_kit::grpc::incoming(self.listener),
                shutdown.cancelled(),
            )
            .await;
        // The election loop sees the same token; wait for its resignation.
        shutdown.cancel();
        tracker.wait().await;
        served.map_err(|e| Error::Serve {
            reason: e.to_string(),
        })
    }
}
