//! The producer's state per topic: one accumulator per partition and the sticky choice for
//! records without a key.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use super::accumulator::PartitionQueue;
use super::partitioner::Sticky;
use crate::{Client, lock, read, write};

/// One topic the producer has written to.
#[derive(Debug)]
pub(crate) struct TopicState {
    pub(crate) name: Arc<str>,
    /// Indexed by partition; only grows, as topics only gain partitions.
    partitions: RwLock<Vec<Arc<PartitionQueue>>>,
    sticky: Mutex<Sticky>,
    /// The client metadata version the partition count was last taken from.
    metadata_version: AtomicU64,
}

impl TopicState {
    pub(crate) fn new(name: &str, partitions: i32, metadata_version: u64) -> Self {
        let count = usize::try_from(partitions).unwrap_or(0);
        Self {
            name: Arc::from(name),
            partitions: RwLock::new((0..count).map(|_| Arc::default()).collect()),
            sticky: Mutex::new(Sticky::default()),
            metadata_version: AtomicU64::new(metadata_version),
        }
    }

    /// The number of partitions known.
    pub(crate) fn partition_count(&self) -> i32 {
        i32::try_from(read(&self.partitions).len()).unwrap_or(i32::MAX)
    }

    /// Picks up a partition count the client learned since the last call.
    pub(crate) fn sync(&self, client: &Client) {
        let version = client.metadata_version();
        if self.metadata_version.swap(version, Ordering::AcqRel) == version {
            return;
        }
        let Some(count) = client
            .cached_partition_count(&self.name)
            .and_then(|c| usize::try_from(c).ok())
        else {
            return;
        };
        let mut partitions = write(&self.partitions);
        while partitions.len() < count {
            partitions.push(Arc::default());
        }
    }

    /// The accumulator of `partition`, if the topic has it.
    pub(crate) fn queue(&self, partition: i32) -> Option<Arc<PartitionQueue>> {
        let index = usize::try_from(partition).ok()?;
        read(&self.partitions).get(index).cloned()
    }

    /// Every partition's accumulator.
    pub(crate) fn queues(&self) -> Vec<Arc<PartitionQueue>> {
        read(&self.partitions).clone()
    }

    /// The partition for a record without a key (see [`Sticky`]).
    pub(crate) fn sticky_partition(&self) -> i32 {
        let partitions = read(&self.partitions);
        let count = i32::try_from(partitions.len()).unwrap_or(i32::MAX);
        let generation = |p: i32| {
            usize::try_from(p)
                .ok()
                .and_then(|i| partitions.get(i))
                .map_or(0, |q| q.generation())
        };
        lock(&self.sticky).partition(count, generation, &mut rand::thread_rng())
    }
}
