//! The HTTP endpoint: `GET /metrics` renders the registry; anything else is 404.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{MetricsConfig, MetricsRegistry};
use crate::error::{Error, Result};

/// The content type of the OpenMetrics text format.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A bound metrics listener, not serving yet.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    address: SocketAddr,
}

impl MetricsServer {
    /// Binds `config.listen` when metrics are enabled; `None` when they are not.
    pub async fn bind(config: &MetricsConfig) -> Result<Option<Self>> {
        if !config.enabled {
            return Ok(None);
        }
        let bind_error = |source| Error::MetricsBind {
            address: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_error)?;
        let address = listener.local_addr().map_err(bind_error)?;
        Ok(Some(Self { listener, address }))
    }

    /// The bound address (the real port when the config asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Serves `registry` until `shutdown`.
    pub async fn serve(self, registry: Arc<MetricsRegistry>, shutdown: CancellationToken) {
        info!(address = %self.address, "metrics listening on /metrics");
        let app = Router::new()
            .route("/metrics", get(scrape))
            .with_state(registry);
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(error) = served {
            warn!(%error, "metrics endpoint stopped");
        }
    }
}

async fn scrape(State(registry): State<Arc<MetricsRegistry>>) -> impl IntoResponse {
    // Refresh hooks may walk every partition: keep that off the async workers.
    let body = tokio::task::spawn_blocking(move || registry.render())
        .await
        .unwrap_or_else(|error| format!("# metrics render failed: {error}\n# EOF\n"));
    ([(CONTENT_TYPE, OPENMETRICS)], body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::RpcMetrics;

    async fn get_text(address: SocketAddr, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn serves_metrics_until_shutdown() {
        let config = MetricsConfig {
            enabled: true,
            listen: "127.0.0.1:0".parse().unwrap(),
        };
        let server = MetricsServer::bind(&config).await.unwrap().unwrap();
        let address = server.local_addr();
        let registry = MetricsRegistry::new("test", &RpcMetrics::default()).into_shared();
        let stop = CancellationToken::new();
        let task = tokio::spawn(server.serve(registry, stop.clone()));
        let answer = get_text(address, "/metrics").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("application/openmetrics-text"), "{answer}");
        assert!(answer.contains("strom_build_info"), "{answer}");
        let missing = get_text(address, "/nope").await;
        assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
        stop.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn disabled_binds_nothing() {
        assert!(
            MetricsServer::bind(&MetricsConfig::disabled())
                .await
                .unwrap()
                .is_none()
        );
    }

    #[tokio::test]
    async fn bind_conflict_names_the_address() {
        let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = MetricsConfig {
            enabled: true,
            listen: taken.local_addr().unwrap(),
        };
        let err = MetricsServer::bind(&config).await.unwrap_err();
        assert!(matches!(err, Error::MetricsBind { .. }), "{err:?}");
    }
}
