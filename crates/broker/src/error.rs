//! The broker's error type.

use strom_proto::common::v1::ErrorCode;

/// Why a broker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The metadata store failed.
    #[error("metadata store: {0}")]
    Meta(#[from] strom_meta::Error),
    /// Local storage failed.
    #[error("storage: {0}")]
    Storage(#[from] strom_storage::Error),
    /// A filesystem operation outside the partition logs failed.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The path involved.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {reason}")]
    Bind {
        /// The address.
        address: std::net::SocketAddr,
        /// What the OS reported.
        reason: String,
    },
    /// The gRPC server failed.
    #[error("gRPC server failed: {reason}")]
    Serve {
        /// What the transport reported.
        reason: String,
    },
    /// No controller is active, or the active one could not be reached.
    #[error("no reachable active controller: {reason}")]
    NoController {
        /// Why.
        reason: String,
    },
    /// A blocking storage task panicked or was cancelled.
    #[error("a storage task did not finish: {reason}")]
    TaskFailed {
        /// What the runtime reported.
        reason: String,
    },
}

impl Error {
    /// The wire code this error is reported with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Meta(e) if e.is_retriable() => ErrorCode::MetadataStoreUnavailable,
            Error::NoController { .. } => ErrorCode::NotController,
            _ => ErrorCode::UnknownServerError,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
