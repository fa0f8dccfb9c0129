//! The client data plane on the leader: produce, fetch and offset lookups.
//!
//! Requests name topics; [`Lookup`] resolves them against the metadata cache and the local
//! replicas, answering NOT_LEADER_OR_FOLLOWER (with the leader's address) or
//! UNKNOWN_TOPIC_OR_PARTITION where this broker cannot serve them.

mod fetch;
mod fetch_stream;
mod lookup;
mod offsets;
mod produce;
mod produce_stream;
mod producer_ids;
pub(crate) mod wait;

pub use fetch::fetch;
pub use fetch_stream::fetch_stream;
pub use lookup::Lookup;
pub use offsets::list_offsets;
pub(crate) use produce::storage_error;
pub use produce::{Appended, append_all, complete, produce};
pub use produce_stream::produce_stream;
pub use producer_ids::ProducerIds;
