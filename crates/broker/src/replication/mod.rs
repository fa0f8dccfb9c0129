//! Replication between brokers: followers pull from leaders.
//!
//! - [`ReplicationGrpc`] (leader side) serves follower fetches: it detects diverged follower
//!   logs by leader epoch, advances the high watermark to the slowest ISR member, and proposes
//!   followers that caught up for the ISR.
//! - [`FetcherManager`] (follower side) runs one fetcher per source broker for every partition
//!   followed from it, appending what it gets and truncating where the leader says to.
//! - [`IsrProposals`] sends ISR changes to the active controller from a single task: expansions
//!   when followers catch up, and shrinks from [`run_lag_checker`] when they fall behind for
//!   longer than `replica-lag-time-max`.

mod fetcher;
mod isr;
mod lag;
mod progress;
mod service;

pub use fetcher::FetcherManager;
pub use isr::{IsrProposalQueue, IsrProposals, run_proposer};
pub use lag::run_lag_checker;
pub use progress::LeaderProgress;
pub use service::ReplicationGrpc;
