//! gRPC serving defaults shared by the services: accepted connections get TCP_NODELAY (small
//! responses must not wait for Nagle and delayed ACKs), HTTP/2 flow-control windows are large
//! enough that a batch of records does not stall on window updates, and every server also
//! answers gRPC health checks (`grpc.health.v1.Health`) and server reflection (v1 and
//! v1alpha), so grpcurl, `buf curl`, grpc_health_probe and Kubernetes gRPC probes work, and
//! records per-RPC metrics ([`crate::metrics::RpcMetrics`]).

use std::io;

use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::Router;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::layer::util::{Identity, Stack};
use tracing::debug;

use crate::metrics::{RpcMetrics, RpcMetricsLayer};

/// The router [`standard_router`] returns: every call goes through the RPC metrics layer.
pub type StandardRouter = Router<Stack<RpcMetricsLayer, Identity>>;

/// The HTTP/2 window of one stream, in bytes.
pub const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
/// The HTTP/2 window of one connection (all its streams), in bytes.
pub const CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;

/// A tonic server builder with the windows above.
pub fn server() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
}

/// A server builder (see [`server`]) recording `rpc` for every call, with health and
/// reflection added, reflecting the services in `descriptors` and the health service itself.
/// The returned [`Health`] sets the overall status (service name `""`), which starts as
/// NOT_SERVING.
pub async fn standard_router(
    descriptors: &'static [u8],
    rpc: &RpcMetrics,
) -> crate::Result<(StandardRouter, Health)> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let reflection_error = |e: tonic_reflection::server::Error| crate::Error::Reflection {
        message: e.to_string(),
    };
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(descriptors)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(reflection_error)?;
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(descriptors)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(reflection_error)?;
    let router = server()
        .layer(rpc.layer())
        .add_service(health_service)
        .add_service(v1)
        .add_service(v1alpha);
    Ok((router, Health { reporter }))
}

/// Sets what a process's health checks answer.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health").finish_non_exhaustive()
    }
}

impl Health {
    /// SERVING when `serving`, else NOT_SERVING; watchers are told of a change.
    pub async fn set(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        self.reporter.set_service_status("", status).await;
    }
}

/// The connections accepted on `listener`, each with TCP_NODELAY set.
pub fn incoming(listener: TcpListener) -> impl Stream<Item = io::Result<TcpStream>> {
    TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        if let Err(error) = stream.set_nodelay(true) {
            debug!(%error, "could not set TCP_NODELAY on an accepted connection");
        }
        Ok(stream)
    })
}
