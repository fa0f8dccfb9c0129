//! Typed access to Strom's cluster metadata.
//!
//! etcd is the only source of truth for cluster metadata, and this crate is the only user of
//! the etcd client. It offers:
//!
//! - [`MetaStore`]: the store interface (reads, fenced transactions, leases, watches), with an
//!   etcd implementation ([`EtcdStore`]) and an in-memory twin ([`MemoryStore`]) that pass one
//!   conformance suite;
//! - [`Keys`] and [`records`]: the key layout and the JSON values stored under each key;
//! - [`LeaseKeeper`]: keeps a lease alive and says clearly when it is lost;
//! - [`Election`]: one holder at a time of a key, whose create revision is the holder's epoch
//!   and fences its writes;
//! - [`MetadataSync`] / [`MetadataCache`]: a process's watched copy of brokers, controller,
//!   coordinators, topics and partitions;
//! - [`locate_coordinator`]: which coordinator owns (or should own) a consumer group;
//! - [`PrefixWatcher`]: a cache of a prefix kept current by list-then-watch, which re-lists and
//!   diffs after compaction, cancellation or on a periodic resync.

mod error;
mod keys;
pub mod records;

pub use error::{Error, Result};
pub use keys::Keys;
mod cache;
mod cluster;
mod election;
mod etcd;
mod groups;
mod lease;
mod memory;
mod store;
mod watcher;

pub use cache::{ClusterState, LiveBroker, MetadataCache, MetadataSync};
pub use cluster::{ClusterMeta, Written};
pub use election::{Election, Holder, Leadership};
pub use etcd::{EtcdOptions, EtcdStore};
pub use groups::{GroupOwner, claim_group, group_owner, locate_coordinator, preferred_coordinator};
pub use lease::LeaseKeeper;
pub use memory::{HISTORY_LIMIT, MemoryPersistence, MemoryStore, PersistBatch, Persistence};
pub use store::{
    Check, Compare, EventKind, KeyValue, LeaseGrant, LeaseId, Listing, MAX_TXN_OPS, MetaStore, Op,
    Txn, TxnOutcome, WatchBatch, WatchEvent, WatchStream,
};
pub use watcher::{Change, PrefixWatcher, Update};
#[cfg(feature = "testing")]
pub mod testing;
