//! The producer: batches records per partition and pipelines them to partition leaders, with
//! idempotent retries.
//!
//! `send` picks the partition ([`partitioner`]), reserves buffer memory (waiting when the
//! buffer is full) and appends the record to the partition's open batch ([`accumulator`]).
//! Each partition that was written to has one sender task ([`sender`]) that keeps up to
//! `max_in_flight_per_partition` batches in flight on a ProduceStream to the leader and
//! retries by the rules of [`pipeline`].

mod accumulator;
mod delivery;
mod partitioner;
mod pipeline;
mod record;
mod sender;
mod sequence;
mod topic;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

pub use delivery::DeliveryFuture;
pub use partitioner::{murmur2, partition_for_key};
pub use record::{ProducerRecord, RecordMetadata};
use strom_proto::common::v1::ErrorCode;
use strom_record::MAX_BATCH_SIZE;
use tokio::sync::{OnceCell, Semaphore, TryAcquireError};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use self::accumulator::{PartitionQueue, RecordRef};
use self::sender::PartitionSender;
use self::sequence::Identity;
use self::topic::TopicState;
use crate::{Client, Error, ProducerConfig, Result, read, write};

/// Produces records to a Strom cluster.
///
/// Records are batched per partition and sent by one background task per partition, which
/// keeps several batches in flight and retries failures without duplicates (with
/// idempotence). Cloning is cheap and clones share the buffers and tasks. Call
/// [`close`](Self::close) to deliver what is buffered; dropping the last clone stops the
/// tasks and fails whatever was not yet delivered with [`Error::Closed`].
#[derive(Debug, Clone)]
pub struct Producer {
    shared: Arc<ProducerShared>,
    _stop_on_drop: Arc<DropGuard>,
}

/// What the producer handles and its sender tasks share.
#[derive(Debug)]
struct ProducerShared {
    client: Client,
    config: ProducerConfig,
    /// Buffer memory not held by records; one permit per byte.
    memory: Semaphore,
    /// The producer id and epoch, fetched when the first batch is sent.
    identity: OnceCell<Identity>,
    cancel: CancellationToken,
    tasks: TaskTracker,
    topics: RwLock<HashMap<String, Arc<TopicState>>>,
}

impl ProducerShared {
    /// The producer-wide identity, asking a broker for it on first use.
    async fn identity(&self) -> Result<Identity> {
        let identity = self
            .identity
            .get_or_try_init(|| async {
                let (producer_id, producer_epoch) = self.client.init_producer_id().await?;
                tracing::debug!(producer_id, producer_epoch, "got producer id");
                Ok::<_, Error>(Identity {
                    producer_id,
                    producer_epoch,
                })
            })
            .await?;
        Ok(*identity)
    }
}

impl Producer {
    /// A producer on `client`'s cluster. Fails only on an invalid `config`; nothing is sent
    /// until the first record.
    pub fn new(client: Client, config: ProducerConfig) -> Result<Producer> {
        config.validate()?;
        let cancel = CancellationToken::new();
        let stop_on_drop = Arc::new(cancel.clone().drop_guard());
        let shared = ProducerShared {
            memory: Semaphore::new(config.buffer_memory),
            client,
            config,
            identity: OnceCell::new(),
            cancel,
            tasks: TaskTracker::new(),
            topics: RwLock::new(HashMap::new()),
        };
        Ok(Producer {
            shared: Arc::new(shared),
            _stop_on_drop: stop_on_drop,
        })
    }

    /// The producer's configuration.
    #[must_use]
    pub fn config(&self) -> &ProducerConfig {
        &self.shared.config
    }

    /// The client the producer sends through.
    #[must_use]
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// Appends `record` to its partition's batch and returns a future of its delivery.
    ///
    /// Waits while the buffer is full (backpressure) and, for a topic not yet known, while
    /// its metadata is fetched. Fails at once on an unknown partition, a record too large to
    /// buffer, or a closed producer; delivery failures come through the returned future.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let shared = &self.shared;
        if shared.cancel.is_cancelled() {
            return Err(Error::Closed);
        }
        let topic = self.topic(&record.topic).await?;
        topic.sync(&shared.client);
        let partition = choose_partition(&topic, &record)?;
        let queue = topic.queue(partition).ok_or(Error::Protocol {
            reason: "the chosen partition has no accumulator",
        })?;
        let size = record.estimated_size();
        self.reserve(size).await?;
        self.start_sender(&topic, partition, &queue);
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let headers: Vec<(&str, Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_deref()))
            .collect();
        let appended = queue.append(
            RecordRef {
                timestamp,
                key: record.key.as_deref(),
                value: record.value.as_deref(),
                headers: &headers,
                reserved: size,
            },
            shared.config.batch_size,
            shared.config.compression,
        );
        match appended {
            Ok(appended) => Ok(DeliveryFuture::new(
                appended.delivery,
                topic.name.clone(),
                partition,
                appended.index,
                timestamp,
            )),
            Err(error) => {
                shared.memory.add_permits(size);
                Err(error)
            }
        }
    }

    /// Sends everything buffered without waiting for `linger`, and waits until every record
    /// sent before the call has an outcome.
    pub async fn flush(&self) {
        let topics: Vec<Arc<TopicState>> = read(&self.shared.topics).values().cloned().collect();
        let marks: Vec<(Arc<PartitionQueue>, u64)> = topics
            .iter()
            .flat_map(|topic| topic.queues())
            .filter(|queue| queue.is_started())
            .map(|queue| {
                let mark = queue.seal();
                (queue, mark)
            })
            .collect();
        for (queue, mark) in marks {
            queue.wait_finished_below(mark).await;
        }
    }

    /// Flushes, then stops the sender tasks and waits for them to end. Affects every clone;
    /// later sends fail with [`Error::Closed`].
    pub async fn close(self) {
        self.flush().await;
        let shared = &self.shared;
        shared.cancel.cancel();
        shared.memory.close();
        shared.tasks.close();
        shared.tasks.wait().await;
    }

    /// The state of `name`, fetching its metadata on first use.
    async fn topic(&self, name: &str) -> Result<Arc<TopicState>> {
        if let Some(topic) = read(&self.shared.topics).get(name) {
            return Ok(topic.clone());
        }
        let client = &self.shared.client;
        let version = client.metadata_version();
        let count = self.wait_for_topic(name).await?;
        let mut topics = write(&self.shared.topics);
        let topic = topics
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(TopicState::new(name, count, version)));
        Ok(topic.clone())
    }

    /// The partition count of `name`, retrying retriable failures (a topic just created may
    /// not be known to every broker yet) for up to `request_timeout`.
    async fn wait_for_topic(&self, name: &str) -> Result<i32> {
        let config = &self.shared.config;
        let deadline = Instant::now() + config.request_timeout;
        loop {
            let error = match self.shared.client.partition_count(name).await {
                Ok(count) if count > 0 => return Ok(count),
                Ok(_) => Error::broker(
                    ErrorCode::LeaderNotAvailable,
                    format!("topic {name:?} has no partitions yet"),
                ),
                Err(error) => error,
            };
            if !error.is_retriable() || Instant::now() + config.retry_backoff >= deadline {
                return Err(error);
            }
            tokio::time::sleep(config.retry_backoff).await;
        }
    }

    /// Takes `size` bytes of buffer memory, waiting for them if need be.
    async fn reserve(&self, size: usize) -> Result<()> {
        let buffer = self.shared.config.buffer_memory;
        let (max, limit) = if buffer < MAX_BATCH_SIZE {
            (buffer, "buffer_memory")
        } else {
            (MAX_BATCH_SIZE, "the largest batch")
        };
        let too_large = Error::RecordTooLarge { size, max, limit };
        if size > max {
            return Err(too_large);
        }
        let permits = u32::try_from(size).map_err(|_| too_large)?;
        let memory = &self.shared.memory;
        match memory.try_acquire_many(permits) {
            Ok(permit) => permit.forget(),
            Err(TryAcquireError::NoPermits) => memory
                .acquire_many(permits)
                .await
                .map_err(|_| Error::Closed)?
                .forget(),
            Err(TryAcquireError::Closed) => return Err(Error::Closed),
        }
        Ok(())
    }

    /// Starts the partition's sender task on its first record.
    fn start_sender(&self, topic: &TopicState, partition: i32, queue: &Arc<PartitionQueue>) {
        if queue.is_started() || !queue.start() {
            return;
        }
        let sender = PartitionSender::new(
            self.shared.clone(),
            topic.name.clone(),
            partition,
            queue.clone(),
        );
        self.shared.tasks.spawn(sender.run());
    }
}

/// The record's partition: the one it names, else by key hash, else the sticky one.
fn choose_partition(topic: &TopicState, record: &ProducerRecord) -> Result<i32> {
    let count = topic.partition_count();
    match (record.partition, &record.key) {
        (Some(partition), _) if (0..count).contains(&partition) => Ok(partition),
        (Some(partition), _) => Err(Error::broker(
            ErrorCode::UnknownTopicOrPartition,
            format!(
                "topic {:?} has {count} partitions, no partition {partition}",
                topic.name
            ),
        )),
        (None, Some(key)) => Ok(partition_for_key(key, count)),
        (None, None) => Ok(topic.sticky_partition()),
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_go_to_their_named_keyed_or_sticky_partition() {
        let topic = TopicState::new("t", 6, 0);
        let named = ProducerRecord::new("t", "v").partition(4);
        assert_eq!(choose_partition(&topic, &named).unwrap(), 4);
        let missing = ProducerRecord::new("t", "v").partition(6);
        assert_eq!(
            choose_partition(&topic, &missing).unwrap_err().code(),
            Some(ErrorCode::UnknownTopicOrPartition)
        );
        let keyed = ProducerRecord::with_key("t", "foobar", "v");
        assert_eq!(choose_partition(&topic, &keyed).unwrap(), 1_357_151_166 % 6);
        let unkeyed = ProducerRecord::new("t", "v");
        let sticky = choose_partition(&topic, &unkeyed).unwrap();
        assert_eq!(choose_partition(&topic, &unkeyed).unwrap(), sticky);
    }

    #[test]
    fn sticky_partition_moves_when_its_batch_closes() {
        let topic = TopicState::new("t", 4, 0);
        let first = topic.sticky_partition();
        let queue = topic.queue(first).unwrap();
        let record = RecordRef {
            timestamp: 0,
            key: None,
            value: Some(b"v"),
            headers: &[],
            reserved: 1,
        };
        queue
            .append(record, 1 << 20, strom_record::Compression::None)
            .unwrap();
        assert_eq!(topic.sticky_partition(), first);
        queue.seal();
        assert_ne!(topic.sticky_partition(), first);
    }
}
