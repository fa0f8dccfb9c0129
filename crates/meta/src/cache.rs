//! A process's cache of cluster metadata (brokers, the active controller, coordinators,
//! topics and partitions), kept current by watches. Brokers and coordinators read it instead
//! of etcd on their request paths.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::records::{
    self, BrokerRegistration, ControllerRecord, CoordinatorRecord, PartitionRecord, TopicRecord,
};
use crate::{ClusterMeta, PrefixWatcher};
use strom_types::{BrokerId, PartitionId, TopicId, TopicName};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::error;

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveBroker {
    /// Its registration.
    pub registration: BrokerRegistration,
    /// Its broker epoch (the registration's create revision).
    pub epoch: i64,
}

/// One consistent snapshot of the cluster as this broker last saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterState {
    /// Registered brokers.
    pub brokers: BTreeMap<BrokerId, LiveBroker>,
    /// The active controller and its epoch.
    pub controller: Option<(ControllerRecord, i64)>,
    /// Registered coordinators by id.
    pub coordinators: BTreeMap<i32, CoordinatorRecord>,
    /// Topics by name.
    pub topics: BTreeMap<TopicName, TopicRecord>,
    /// Topic names by id.
    pub topic_names: BTreeMap<TopicId, TopicName>,
    /// Partition records.
    pub partitions: BTreeMap<(TopicId, PartitionId), PartitionRecord>,
}

impl ClusterState {
    /// The partitions of one topic, in index order.
    pub fn topic_partitions(
        &self,
        topic: TopicId,
    ) -> impl Iterator<Item = (PartitionId, &PartitionRecord)> {
        self.partitions
            .range((topic, PartitionId::new(0))..)
            .take_while(move |((t, _), _)| *t == topic)
            .map(|((_, p), record)| (*p, record))
    }
}

/// Shared, cheaply cloned access to the latest [`ClusterState`].
#[derive(Debug, Clone)]
pub struct MetadataCache {
    state: Arc<RwLock<Arc<ClusterState>>>,
    version: watch::Receiver<u64>,
}

impl MetadataCache {
    /// The latest snapshot.
    pub fn snapshot(&self) -> Arc<ClusterState> {
        let guard = self
            .state
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(&guard)
    }

    /// A receiver that changes whenever the snapshot does.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.version.clone()
    }
}

/// Keeps a [`MetadataCache`] current from four watches.
pub struct MetadataSync {
    meta: ClusterMeta,
    brokers: PrefixWatcher,
    controller: PrefixWatcher,
    coordinators: PrefixWatcher,
    topics: PrefixWatcher,
    partitions: PrefixWatcher,
    state: Arc<RwLock<Arc<ClusterState>>>,
    version: watch::Sender<u64>,
}

impl std::fmt::Debug for MetadataSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataSync").finish_non_exhaustive()
    }
}

impl MetadataSync {
    /// Lists the cluster state and returns the syncer and its cache, already filled.
    pub async fn start(
        meta: ClusterMeta,
        resync: Duration,
    ) -> crate::Result<(Self, MetadataCache)> {
        let store = meta.store().clone();
        let keys = meta.keys().clone();
        let brokers = PrefixWatcher::start(store.clone(), keys.brokers(), resync).await?;
        let controller = PrefixWatcher::start(store.clone(), keys.controller(), resync).await?;
        let coordinators = PrefixWatcher::start(store.clone(), keys.coordinators(), resync).await?;
        let topics = PrefixWatcher::start(store.clone(), keys.topics(), resync).await?;
        let partitions = PrefixWatcher::start(store, keys.all_partitions(), resync).await?;
        let (version, receiver) = watch::channel(0);
        let mut sync = Self {
            meta,
            brokers,
            controller,
            coordinators,
            topics,
            partitions,
            state: Arc::new(RwLock::new(Arc::new(ClusterState::default()))),
            version,
        };
        sync.rebuild();
        let cache = MetadataCache {
            state: Arc::clone(&sync.state),
            version: receiver,
        };
        Ok((sync, cache))
    }

    /// Follows the watches until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = self.brokers.next() => {}
                _ = self.controller.next() => {}
                _ = self.coordinators.next() => {}
                _ = self.topics.next() => {}
                _ = self.partitions.next() => {}
            }
            self.rebuild();
        }
    }

    /// Rebuilds the snapshot from the watchers' copies. Simple and always consistent with
    /// them; a cluster's metadata is small enough that this costs little next to a watch event.
    fn rebuild(&mut self) {
        let keys = self.meta.keys();
        let mut state = ClusterState::default();
        for kv in self.brokers.snapshot().values() {
            let Some(id) = keys.parse_broker(&kv.key) else {
                continue;
            };
            match records::decode::<BrokerRegistration>(&kv.key, &kv.value) {
                Ok(registration) => {
                    state.brokers.insert(
                        id,
                        LiveBroker {
                            registration,
                            epoch: kv.create_revision,
                        },
                    );
                }
                Err(e) => error!(error = %e, "ignoring a malformed broker registration"),
            }
        }
        if let Some(kv) = self.controller.snapshot().get(&keys.controller()) {
            match records::decode::<ControllerRecord>(&kv.key, &kv.value) {
                Ok(record) => state.controller = Some((record, kv.create_revision)),
                Err(e) => error!(error = %e, "ignoring a malformed controller record"),
            }
        }
        for kv in self.coordinators.snapshot().values() {
            match records::decode::<CoordinatorRecord>(&kv.key, &kv.value) {
                Ok(record) => {
                    state.coordinators.insert(record.id, record);
                }
                Err(e) => error!(error = %e, "ignoring a malformed coordinator registration"),
            }
        }
        for kv in self.topics.snapshot().values() {
            match records::decode::<TopicRecord>(&kv.key, &kv.value) {
                Ok(topic) => {
                    state.topic_names.insert(topic.id, topic.name.clone());
                    state.topics.insert(topic.name.clone(), topic);
                }
                Err(e) => error!(error = %e, "ignoring a malformed topic record"),
            }
        }
        for kv in self.partitions.snapshot().values() {
            let Some(id) = keys.parse_partition(&kv.key) else {
                continue;
            };
            // Partitions whose topic record is not (yet) visible are not part of the cluster.
            if !state.topic_names.contains_key(&id.0) {
                continue;
            }
            match records::decode::<PartitionRecord>(&kv.key, &kv.value) {
                Ok(record) => {
                    state.partitions.insert(id, record);
                }
                Err(e) => error!(error = %e, "ignoring a malformed partition record"),
            }
        }
        *self
            .state
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(state);
        self.version.send_modify(|v| *v += 1);
    }
}
