//! The broker's gRPC services. Handlers convert, call the domain, and map the result.

mod admin;
mod broker;
mod coordinator;

pub use admin::AdminForwarder;
pub use broker::BrokerGrpc;
pub use coordinator::CoordinatorLocator;
