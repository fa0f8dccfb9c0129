//! The Rust client of Strom: a pipelined, idempotent [`Producer`], a [`PartitionConsumer`]
//! and a consumer-group [`GroupConsumer`], on top of a shared [`Client`] that caches cluster
//! metadata and keeps one gRPC channel per broker (and per group coordinator).
//!
//! # Producing and consuming
//!
//! ```no_run
//! use strom_client::{
//!     Client, ClientConfig, ConsumerConfig, PartitionConsumer, Producer, ProducerConfig,
//!     ProducerRecord, StartOffset,
//! };
//!
//! # async fn example() -> strom_client::Result<()> {
//! let client = Client::connect(ClientConfig::new(["localhost:9092"])).await?;
//!
//! let producer = Producer::new(client.clone(), ProducerConfig::default())?;
//! let delivery = producer
//!     .send(ProducerRecord::with_key("events", "user-1", "signed up"))
//!     .await?;
//! let written = delivery.await?;
//! producer.close().await;
//!
//! let config = ConsumerConfig {
//!     start: StartOffset::Offset(written.offset),
//!     ..ConsumerConfig::default()
//! };
//! let mut consumer = PartitionConsumer::new(client, "events", written.partition, config).await?;
//! for record in consumer.poll().await? {
//!     assert!(record.offset >= written.offset);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Consuming as a group
//!
//! Members of a group share the partitions of the topics they subscribe to; the group's
//! coordinator assigns them and moves them when members come and go. Positions are committed
//! to the group, so a partition's next owner continues where the last one stopped.
//!
//! ```no_run
//! use strom_client::{
//!     Client, ClientConfig, GroupConsumer, GroupConsumerConfig, RebalanceListener,
//!     Subscription, TopicPartition,
//! };
//!
//! struct Log;
//!
//! impl RebalanceListener for Log {
//!     fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
//!         tracing::info!(?partitions, "assigned");
//!     }
//! }
//!
//! # async fn example() -> strom_client::Result<()> {
//! let client = Client::connect(ClientConfig::new(["localhost:9092"])).await?;
//! let config = GroupConsumerConfig {
//!     auto_commit: false,
//!     ..GroupConsumerConfig::new("billing")
//! };
//! let mut consumer =
//!     GroupConsumer::new(client, config, Subscription::topics(["events"])).await?;
//! consumer.set_listener(Log);
//! for _ in 0..100 {
//!     for record in consumer.poll().await? {
//!         tracing::info!(topic = %record.topic, record.partition, record.offset, "got");
//!     }
//!     // Everything returned so far is processed: commit it.
//!     consumer.commit().await?;
//! }
//! consumer.close().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Delivery guarantees
//!
//! With the defaults (`acks = All`, idempotence on) a record whose future resolves `Ok` is
//! replicated to the in-sync replicas, and retries never write a batch twice: each batch
//! carries the producer id and a per-partition sequence number, is resent with the same
//! bytes, and the broker answers a repeat with the original offset. Records of one partition
//! are written in `send` order.

mod admin;
mod client;
mod config;
mod consumer;
mod error;
mod group;
mod metadata;
mod producer;

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub use admin::{Admin, ConfigChange, NewTopic};
pub use client::Client;
pub use config::{Acks, ClientConfig, ConsumerConfig, ProducerConfig, StartOffset};
pub use consumer::{ConsumerRecord, PartitionConsumer};
pub use error::{Error, Result};
pub use group::{
    GroupConsumer, GroupConsumerConfig, OffsetReset, RebalanceListener, Subscription,
    TopicPartition,
};
pub use metadata::PartitionLeader;
pub use producer::{
    DeliveryFuture, Producer, ProducerRecord, RecordMetadata, murmur2, partition_for_key,
};
pub use strom_proto::common::v1::ErrorCode;
pub use strom_record::Compression;

/// Locks `mutex`, ignoring poisoning: every critical section leaves its data consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Read-locks `lock`, ignoring poisoning.
pub(crate) fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Write-locks `lock`, ignoring poisoning.
pub(crate) fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_and_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}

    #[test]
    fn handles_and_their_futures_cross_tasks() {
        send_and_sync::<Client>();
        send_and_sync::<Producer>();
        send_and_sync::<DeliveryFuture>();
        send_and_sync::<Error>();
        fn producer_future(producer: &Producer) {
            send(&producer.send(ProducerRecord::new("t", "v")));
            send(&producer.flush());
            send(&producer.clone().close());
        }
        fn consumer_future(consumer: &mut PartitionConsumer) {
            send(consumer);
            send(&consumer.poll());
        }
        fn group_future(consumer: &mut GroupConsumer) {
            send(consumer);
            send(&consumer.poll());
            send(&consumer.commit());
        }
        let _ = (producer_future, consumer_future, group_future);
        send_and_sync::<GroupConsumer>();
    }
}
