//! gRPC serving defaults shared by the services: accepted connections get TCP_NODELAY (small
//! responses must not wait for Nagle and delayed ACKs), and HTTP/2 flow-control windows are
//! large enough that a batch of records does not stall on window updates.

use std::io;

use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};
use tracing::debug;

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
