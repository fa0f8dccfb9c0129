//! The coordinator at run time: registration under a lease, the groups it owns (each claimed
//! under that lease and fenced by its owner key), their persistence, session expiry, and the
//! request handlers the gRPC layer calls.

mod admin;
mod commit;
mod expiry;
mod lease;
mod membership;
mod slot;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use strom_meta::records::{self, CoordinatorRecord};
use strom_meta::{
    Keys, LeaseId, MetaStore, MetadataCache, Op, Txn, claim_group, group_owner, locate_coordinator,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::brokers::Brokers;
use crate::group::{Group, GroupLimits, TopicsView};
use crate::metrics::CoordinatorMetrics;
use crate::offsets::CommitQueue;
use crate::{Error, Result};
pub use admin::phase_to_pb;
pub use commit::{CommitOutcome, CommitPartition, CommittedOffset};
use slot::GroupRuntime;
pub use slot::GroupSlot;

pub use strom_types::MAX_GROUP_ID_LENGTH;

/// Settings the runtime needs beyond the group limits.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// This coordinator's registration.
    pub me: CoordinatorRecord,
    /// Registration lease TTL.
    pub lease_ttl: Duration,
    /// Limits applied to every group.
    pub limits: GroupLimits,
    /// Largest offset metadata, in bytes.
    pub max_offset_metadata: usize,
    /// Offset-commit transactions in flight.
    pub commit_concurrency: usize,
    /// Timeout of calls to brokers.
    pub request_timeout: Duration,
}

/// A running coordinator; cheap to clone.
#[derive(Debug, Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: RuntimeSettings,
    store: Arc<dyn MetaStore>,
    keys: Keys,
    cache: MetadataCache,
    lease: RwLock<Option<LeaseId>>,
    groups: Mutex<HashMap<String, Arc<GroupSlot>>>,
    commits: CommitQueue,
    brokers: Brokers,
    /// The last log end (high watermark) seen per partition; log ends only grow, so an offset
    /// at or below it needs no call to the leader.
    log_ends: Mutex<HashMap<(String, i32), i64>>,
    /// The topics view of the last metadata version seen, rebuilt only when metadata changes.
    topics: Mutex<Option<(u64, Arc<TopicsView>)>>,
    metrics: CoordinatorMetrics,
}

impl Coordinator {
    /// Builds the runtime and starts its background tasks (registration, commit batching,
    /// session expiry) on `tasks`; they stop when `shutdown` fires.
    pub fn start(
        settings: RuntimeSettings,
        store: Arc<dyn MetaStore>,
        keys: Keys,
        cache: MetadataCache,
        tasks: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let commits = CommitQueue::start(
            Arc::clone(&store),
            settings.commit_concurrency,
            shutdown.clone(),
            tasks,
        );
        let brokers = Brokers::new(cache.clone(), settings.request_timeout);
        let coordinator = Self {
            inner: Arc::new(Inner {
                settings,
                store,
                keys,
                cache,
                lease: RwLock::new(None),
                groups: Mutex::new(HashMap::new()),
                commits,
                brokers,
                log_ends: Mutex::new(HashMap::new()),
                topics: Mutex::new(None),
                metrics: CoordinatorMetrics::default(),
            }),
        };
        tasks.spawn(coordinator.clone().keep_registered(shutdown.clone()));
        tasks.spawn(coordinator.clone().expire_sessions(shutdown));
        coordinator
    }

    /// This coordinator's registration.
    pub fn me(&self) -> &CoordinatorRecord {
        &self.inner.settings.me
    }

    /// This coordinator's metrics.
    pub fn metrics(&self) -> &CoordinatorMetrics {
        &self.inner.metrics
    }

    /// The groups this coordinator owns right now, by name.
    pub fn owned_groups(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .groups()
            .values()
            .filter(|slot| !slot.is_dropped())
            .map(|slot| slot.name().to_owned())
            .collect();
        names.sort();
        names
    }

    /// Where `group` lives: its owner, or the coordinator that should claim it.
    pub async fn find_coordinator(&self, group: &str) -> Result<CoordinatorRecord> {
        validate_group_id(group)?;
        let coordinators = self.inner.cache.snapshot().coordinators.clone();
        locate_coordinator(&*self.inner.store, &self.inner.keys, group, &coordinators)
            .await?
            .ok_or_else(|| Error::CoordinatorNotAvailable {
                reason: "no coordinator is registered".to_owned(),
            })
    }

    /// The topics groups can subscribe to, as of the latest metadata.
    pub fn topics(&self) -> Arc<TopicsView> {
        let version = *self.inner.cache.changes().borrow();
        let mut memo = self
            .inner
            .topics
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &*memo {
            Some((seen, view)) if *seen == version => Arc::clone(view),
            _ => {
                let view = Arc::new(TopicsView::from_cluster(&self.inner.cache.snapshot()));
                *memo = Some((version, Arc::clone(&view)));
                view
            }
        }
    }

    fn cached_log_end(&self, topic: &str, partition: i32) -> Option<i64> {
        let ends = self
            .inner
            .log_ends
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        ends.get(&(topic.to_owned(), partition)).copied()
    }

    fn remember_log_end(&self, topic: &str, partition: i32, end: i64) {
        let mut ends = self
            .inner
            .log_ends
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let slot = ends.entry((topic.to_owned(), partition)).or_insert(end);
        *slot = (*slot).max(end);
    }

    fn current_lease(&self) -> Option<LeaseId> {
        *self
            .inner
            .lease
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn groups(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<GroupSlot>>> {
        self.inner
            .groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The slot of a group this coordinator owns, claiming and loading it when nobody owns it.
    /// With `create` false, a group that has no state in etcd is [`Error::GroupNotFound`]
    /// and is not claimed.
    async fn slot(&self, group: &str, create: bool) -> Result<Arc<GroupSlot>> {
        validate_group_id(group)?;
        let lease = self
            .current_lease()
            .ok_or_else(|| Error::CoordinatorNotAvailable {
                reason: "the coordinator is (re-)registering".to_owned(),
            })?;
        let existing = self.groups().get(group).cloned();
        if let Some(slot) = existing {
            if slot.lease() == lease && !slot.is_dropped() {
                return Ok(slot);
            }
            self.drop_slot(&slot);
        }
        let (store, keys) = (&*self.inner.store, &self.inner.keys);
        if !create {
            let owner = group_owner(store, keys, group).await?;
            let known = owner.is_some()
                || store.get(&keys.group_state(group)).await?.is_some()
                || !store.list(&keys.group_offsets(group)).await?.kvs.is_empty();
            if !known {
                return Err(Error::GroupNotFound {
                    group: group.to_owned(),
                });
            }
        }
        let me = &self.inner.settings.me;
        let owner = claim_group(store, keys, group, me, lease).await?;
        let owner = match owner {
            Some(owner) if owner.lease == Some(lease) => owner,
            other => {
                return Err(Error::NotCoordinator {
                    group: group.to_owned(),
                    owner: other.map(|o| o.coordinator),
                });
            }
        };
        let runtime = GroupRuntime::load(store, keys, group).await?;
        let slot = Arc::new(GroupSlot::new(group.to_owned(), owner, lease, runtime));
        let mut groups = self.groups();
        let slot = match groups.get(group) {
            Some(raced) if raced.lease() == lease && !raced.is_dropped() => Arc::clone(raced),
            _ => {
                info!(
                    group,
                    revision = slot.owner().revision,
                    "took ownership of group"
                );
                groups.insert(group.to_owned(), Arc::clone(&slot));
                slot
            }
        };
        Ok(slot)
    }

    /// Forgets a group after losing it.
    fn drop_slot(&self, slot: &Arc<GroupSlot>) {
        slot.mark_dropped();
        let mut groups = self.groups();
        if groups
            .get(slot.name())
            .is_some_and(|current| Arc::ptr_eq(current, slot))
        {
            groups.remove(slot.name());
        }
    }

    /// Gives back the claim on a group that was never stored (no state, no offsets): deletes
    /// its owner key under the fence and drops the slot. If that fails the claim stays, and the
    /// group is listed (empty) until it expires.
    async fn release_unused(&self, slot: &Arc<GroupSlot>) {
        let keys = &self.inner.keys;
        let txn = Txn::new()
            .when([slot.owner().fence(keys, slot.name())])
            .then([Op::delete(keys.group_owner(slot.name()))]);
        if let Err(error) = self.inner.store.txn(txn).await {
            warn!(group = slot.name(), %error, "could not give back the claim on an unused group");
        }
        self.drop_slot(slot);
    }

    /// Writes `group` under the owner fence. On a lost fence the slot is dropped and the
    /// caller gets NOT_COORDINATOR.
    async fn persist(&self, slot: &Arc<GroupSlot>, group: &Group) -> Result<()> {
        let keys = &self.inner.keys;
        let value = records::encode(group)?;
        let txn = Txn::new()
            .when([slot.owner().fence(keys, slot.name())])
            .then([Op::put(keys.group_state(slot.name()), value)]);
        let outcome = self.inner.store.txn(txn).await?;
        if outcome.succeeded {
            return Ok(());
        }
        warn!(group = slot.name(), "lost ownership of group");
        self.drop_slot(slot);
        Err(self.not_coordinator(slot.name()).await)
    }

    /// NOT_COORDINATOR naming the current owner, when there is one.
    async fn not_coordinator(&self, group: &str) -> Error {
        let owner = group_owner(&*self.inner.store, &self.inner.keys, group)
            .await
            .ok()
            .flatten()
            .map(|o| o.coordinator);
        Error::NotCoordinator {
            group: group.to_owned(),
            owner,
        }
    }
}

/// Checks a group id against [`strom_types::group_id_problem`]: 1 to 255 printable
/// characters, no `/` (it separates etcd key segments) and no whitespace.
pub fn validate_group_id(group: &str) -> Result<()> {
    match strom_types::group_id_problem(group) {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidGroupId {
            group: group.to_owned(),
            reason,
        }),
    }
}
