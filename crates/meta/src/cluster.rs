//! [`ClusterMeta`]: typed reads and fenced writes of one cluster's records.

use std::sync::Arc;

use strom_types::{PartitionId, TopicId};

use crate::records::{
    self, BrokerRegistration, CoordinatorRecord, PartitionRecord, ProducerIdsRecord, TopicRecord,
};
use crate::store::{Compare, LeaseId, MAX_TXN_OPS, MetaStore, Op, Txn};
use crate::{Keys, Leadership, Result};

/// What a conditional write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The write applied at this revision.
    Applied {
        /// The revision of the write: the new mod revision of every key it wrote.
        revision: i64,
    },
    /// A condition failed: the writer's fence is gone, or the target changed since it was read.
    /// The caller tells the two apart with [`Election::is_current`](crate::Election::is_current).
    Rejected,
}

impl Written {
    fn from_outcome(outcome: crate::TxnOutcome) -> Self {
        if outcome.succeeded {
            Written::Applied {
                revision: outcome.revision,
            }
        } else {
            Written::Rejected
        }
    }
}

/// Typed access to one cluster's keys. Every controller write carries the controller's fence.
#[derive(Debug, Clone)]
pub struct ClusterMeta {
    store: Arc<dyn MetaStore>,
    keys: Keys,
}

impl ClusterMeta {
    /// Access to the cluster laid out by `keys` in `store`.
    pub fn new(store: Arc<dyn MetaStore>, keys: Keys) -> Self {
        Self { store, keys }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn MetaStore> {
        &self.store
    }

    /// The key layout.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Registers a broker under `lease`. Returns its broker epoch, or `None` while another
    /// registration of the same id still exists (e.g. the previous process's lease has not
    /// expired yet).
    pub async fn register_broker(
        &self,
        registration: &BrokerRegistration,
        lease: LeaseId,
    ) -> Result<Option<i64>> {
        let key = self.keys.broker(registration.id);
        let txn = Txn::new()
            .when([Compare::absent(key.clone())])
            .then([Op::put_with_lease(
                key,
                records::encode(registration)?,
                lease,
            )]);
        let outcome = self.store.txn(txn).await?;
        if outcome.succeeded {
            return Ok(Some(outcome.revision));
        }
        // A retried registration whose first attempt applied but whose answer was lost shows up
        // as a key under our own lease: it is ours.
        self.broker_epoch_after(registration, lease).await
    }

    async fn broker_epoch_after(
        &self,
        registration: &BrokerRegistration,
        lease: LeaseId,
    ) -> Result<Option<i64>> {
        let key = self.keys.broker(registration.id);
        Ok(self
            .store
            .get(&key)
            .await?
            .filter(|kv| kv.lease == Some(lease))
            .map(|kv| kv.create_revision))
    }

    /// One transaction under `fence` plus `compares`, applying `ops`.
    async fn fenced_write(
        &self,
        fence: &Leadership,
        compares: impl IntoIterator<Item = Compare>,
        ops: impl IntoIterator<Item = Op>,
    ) -> Result<Written> {
        let txn = Txn::new().when([fence.fence()]).when(compares).then(ops);
        Ok(Written::from_outcome(self.store.txn(txn).await?))
    }

    /// Creates a topic: its partition records first, in chunks that fit a transaction, then
    /// the topic record, which makes the topic visible. Rejected (with nothing visible) when the
    /// fence is gone or the name is taken; partition records written before a rejection are
    /// orphans that the controller's reconcile loop deletes.
    pub async fn create_topic(
        &self,
        fence: &Leadership,
        topic: &TopicRecord,
        partitions: &[PartitionRecord],
    ) -> Result<Written> {
        let mut puts = Vec::with_capacity(partitions.len());
        for (index, record) in partitions.iter().enumerate() {
            let index = i32::try_from(index).unwrap_or(i32::MAX);
            let key = self.keys.partition(topic.id, PartitionId::new(index));
            puts.push(Op::put(key, records::encode(record)?));
        }
        for chunk in puts.chunks(MAX_TXN_OPS) {
            let txn = Txn::new().when([fence.fence()]).then(chunk.iter().cloned());
            if !self.store.txn(txn).await?.succeeded {
                return Ok(Written::Rejected);
            }
        }
        let key = self.keys.topic(&topic.name);
        self.fenced_write(
            fence,
            [Compare::absent(key.clone())],
            [Op::put(key, records::encode(topic)?)],
        )
        .await
    }

    /// Rewrites a topic record (e.g. its configs) if it is unchanged since `mod_revision`.
    pub async fn update_topic(
        &self,
        fence: &Leadership,
        topic: &TopicRecord,
        mod_revision: i64,
    ) -> Result<Written> {
        let key = self.keys.topic(&topic.name);
        self.fenced_write(
            fence,
            [Compare::mod_revision(key.clone(), mod_revision)],
            [Op::put(key, records::encode(topic)?)],
        )
        .await
    }

    /// Deletes a topic record and all its partition records in one transaction, if the topic
    /// is unchanged since `mod_revision`.
    pub async fn delete_topic(
        &self,
        fence: &Leadership,
        topic: &TopicRecord,
        mod_revision: i64,
    ) -> Result<Written> {
        let key = self.keys.topic(&topic.name);
        self.fenced_write(
            fence,
            [Compare::mod_revision(key.clone(), mod_revision)],
            [
                Op::delete(key),
                Op::delete_prefix(self.keys.partitions(topic.id)),
            ],
        )
        .await
    }

    /// Deletes every partition record of a topic id (orphans of an unfinished creation).
    pub async fn delete_partitions(&self, fence: &Leadership, topic: TopicId) -> Result<Written> {
        self.fenced_write(fence, [], [Op::delete_prefix(self.keys.partitions(topic))])
            .await
    }

    /// Writes a partition record if it is unchanged since `mod_revision`.
    pub async fn update_partition(
        &self,
        fence: &Leadership,
        topic: TopicId,
        partition: PartitionId,
        mod_revision: i64,
        record: &PartitionRecord,
    ) -> Result<Written> {
        let key = self.keys.partition(topic, partition);
        self.fenced_write(
            fence,
            [Compare::mod_revision(key.clone(), mod_revision)],
            [Op::put(key, records::encode(record)?)],
        )
        .await
    }

    /// The registered coordinators, each with the number of groups it owns, by id.
    pub async fn coordinators(&self) -> Result<Vec<(CoordinatorRecord, usize)>> {
        let registered = self.store.list(&self.keys.coordinators()).await?;
        let mut coordinators = Vec::with_capacity(registered.kvs.len());
        for kv in &registered.kvs {
            coordinators.push((records::decode::<CoordinatorRecord>(&kv.key, &kv.value)?, 0));
        }
        let groups = self.store.list(&self.keys.groups()).await?;
        for kv in &groups.kvs {
            if self.keys.parse_group(&kv.key).map(|(_, what)| what) != Some("owner") {
                continue;
            }
            let owner = records::decode::<CoordinatorRecord>(&kv.key, &kv.value)?;
            if let Some((_, count)) = coordinators.iter_mut().find(|(c, _)| c.id == owner.id) {
                *count += 1;
            }
        }
        coordinators.sort_by_key(|(c, _)| c.id);
        Ok(coordinators)
    }

    /// Reads one partition record and its mod revision.
    pub async fn partition(
        &self,
        topic: TopicId,
        partition: PartitionId,
    ) -> Result<Option<(PartitionRecord, i64)>> {
        let key = self.keys.partition(topic, partition);
        match self.store.get(&key).await? {
            Some(kv) => Ok(Some((records::decode(&key, &kv.value)?, kv.mod_revision))),
            None => Ok(None),
        }
    }

    /// Reserves `count` producer ids; returns the first, or `None` when the fence is gone.
    /// Concurrent allocations by a stale controller cannot hand out the same ids: each
    /// allocation compares the record's mod revision as well as the fence.
    pub async fn allocate_producer_ids(
        &self,
        fence: &Leadership,
        count: i64,
    ) -> Result<Option<i64>> {
        let key = self.keys.producer_ids();
        loop {
            let current = self.store.get(&key).await?;
            let (next, mod_revision) = match &current {
                Some(kv) => (
                    records::decode::<ProducerIdsRecord>(&key, &kv.value)?.next_producer_id,
                    kv.mod_revision,
                ),
                None => (0, 0),
            };
            let record = ProducerIdsRecord {
                next_producer_id: next + count,
            };
            let txn = Txn::new()
                .when([
                    fence.fence(),
                    Compare::mod_revision(key.clone(), mod_revision),
                ])
                .then([Op::put(key.clone(), records::encode(&record)?)]);
            if self.store.txn(txn).await?.succeeded {
                return Ok(Some(next));
            }
            let fence_holds = self
                .store
                .get(&fence.fence().key)
                .await?
                .is_some_and(|kv| kv.create_revision == fence.epoch());
            if !fence_holds {
                return Ok(None);
            }
        }
    }
}
