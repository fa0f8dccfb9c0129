//! The cluster handle: bootstrap, the metadata cache and one gRPC channel per broker.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strom_proto::broker::v1 as pb;
use strom_proto::broker::v1::broker_service_client::BrokerServiceClient;
use strom_proto::common::v1::LeaderHint;
use strom_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint};

use crate::metadata::{Cached, MetadataCache, PartitionLeader};
use crate::{ClientConfig, Error, Result, lock};

/// The largest gRPC message the client sends or accepts: a 64 MiB batch plus framing.
const MAX_MESSAGE_SIZE: usize = 64 * 1024 * 1024 + 64 * 1024;
/// HTTP/2 flow-control windows; large enough that one stream can carry hundreds of MB/s.
const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;

/// A handle on a Strom cluster, shared by producers and consumers.
///
/// Holds the cached cluster metadata (brokers, partition leaders) and one gRPC channel per
/// broker address; every stream and request to that broker is multiplexed over it. Cloning is
/// cheap and clones share everything.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ClientConfig,
    channels: Mutex<HashMap<String, Channel>>,
    metadata: Mutex<MetadataCache>,
    /// Serialises Metadata requests so a burst of lookups after a leader change costs one.
    refreshing: tokio::sync::Mutex<()>,
    /// Grows with every applied Metadata answer.
    version: AtomicU64,
    /// The address that answered last; asked first next time.
    last_good: Mutex<Option<String>>,
}

impl Client {
    /// Validates `config` and asks a bootstrap broker for the cluster's brokers.
    ///
    /// Fails when no bootstrap broker answers.
    pub async fn connect(config: ClientConfig) -> Result<Client> {
        config.validate()?;
        let client = Client {
            inner: Arc::new(Inner {
                config,
                channels: Mutex::new(HashMap::new()),
                metadata: Mutex::new(MetadataCache::default()),
                refreshing: tokio::sync::Mutex::new(()),
                version: AtomicU64::new(0),
                last_good: Mutex::new(None),
            }),
        };
        for address in &client.inner.config.bootstrap {
            client.channel(address)?;
        }
        client.refresh_topics(&[], Instant::now()).await?;
        Ok(client)
    }

    /// The configuration the client was built with.
    #[must_use]
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// A BrokerService client for `address` (`host:port`) over the shared channel to it,
    /// accepting and sending messages of up to 64 MiB.
    pub fn broker_client(&self, address: &str) -> Result<BrokerServiceClient<Channel>> {
        Ok(BrokerServiceClient::new(self.channel(address)?)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE))
    }

    /// A CoordinatorService client for `address` (`host:port`) over the shared channel to it.
    ///
    /// Brokers answer its FindCoordinator method too, so any broker address can be used to
    /// locate a group's coordinator.
    pub fn coordinator_client(&self, address: &str) -> Result<CoordinatorServiceClient<Channel>> {
        Ok(CoordinatorServiceClient::new(self.channel(address)?)
            .max_decoding_message_size(MAX_MESSAGE_SIZE)
            .max_encoding_message_size(MAX_MESSAGE_SIZE))
    }

    /// The channel to `address`, created (lazily connecting) on first use.
    fn channel(&self, address: &str) -> Result<Channel> {
        let mut channels = lock(&self.inner.channels);
        if let Some(channel) = channels.get(address) {
            return Ok(channel.clone());
        }
        let uri = if address.contains("://") {
            address.to_owned()
        } else {
            format!("http://{address}")
        };
        let invalid = |reason: String| Error::InvalidAddress {
            address: address.to_owned(),
            reason,
        };
        let endpoint = Endpoint::from_shared(uri)
            .map_err(|e| invalid(e.to_string()))?
            .connect_timeout(self.inner.config.connect_timeout)
            .tcp_nodelay(true)
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20));
        let channel = endpoint.connect_lazy();
        channels.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }

    /// Fetches fresh metadata for `topics` (and the broker list) from any reachable broker.
    pub async fn refresh<S: AsRef<str>>(&self, topics: &[S]) -> Result<()> {
        let topics: Vec<&str> = topics.iter().map(AsRef::as_ref).collect();
        self.refresh_topics(&topics, Instant::now()).await
    }

    /// The number of partitions of `topic`, from the cache when it is fresh.
    pub async fn partition_count(&self, topic: &str) -> Result<i32> {
        let now = Instant::now();
        let max_age = self.inner.config.metadata_max_age;
        if let Cached::Hit(found) = lock(&self.inner.metadata).partition_count(topic, max_age, now)
        {
            return found;
        }
        self.refresh_topics(&[topic], now).await?;
        match lock(&self.inner.metadata).partition_count(topic, Duration::MAX, now) {
            Cached::Hit(found) => found,
            Cached::Miss => Err(Error::Protocol {
                reason: "the metadata response did not describe a requested topic",
            }),
        }
    }

    /// The leader of `partition` of `topic`, from the cache when it is fresh.
    ///
    /// A partition without a live leader is an `LEADER_NOT_AVAILABLE` broker error, which is
    /// retriable.
    pub async fn leader(&self, topic: &str, partition: i32) -> Result<PartitionLeader> {
        let now = Instant::now();
        let max_age = self.inner.config.metadata_max_age;
        if let Cached::Hit(found) =
            lock(&self.inner.metadata).leader(topic, partition, max_age, now)
        {
            return found;
        }
        self.refresh_topics(&[topic], now).await?;
        lock(&self.inner.metadata).leader_after_refresh(topic, partition, now)
    }

    /// The cached partition count of `topic`, without any request.
    pub(crate) fn cached_partition_count(&self, topic: &str) -> Option<i32> {
        match lock(&self.inner.metadata).partition_count(topic, Duration::MAX, Instant::now()) {
            Cached::Hit(Ok(count)) => Some(count),
            _ => None,
        }
    }

    /// A number that changes whenever new metadata is applied.
    pub(crate) fn metadata_version(&self) -> u64 {
        self.inner.version.load(Ordering::Acquire)
    }

    /// Takes in a redirect hint from a NOT_LEADER_OR_FOLLOWER answer.
    pub(crate) fn apply_leader_hint(&self, topic: &str, partition: i32, hint: &LeaderHint) {
        lock(&self.inner.metadata).apply_leader_hint(topic, partition, hint);
        self.inner.version.fetch_add(1, Ordering::AcqRel);
    }

    /// Asks any broker for metadata unless every topic in `topics` was fetched at or after
    /// `requested_at` (by a concurrent refresh).
    async fn refresh_topics(&self, topics: &[&str], requested_at: Instant) -> Result<()> {
        let _serial = self.inner.refreshing.lock().await;
        if !topics.is_empty() {
            let cache = lock(&self.inner.metadata);
            let fresh = topics
                .iter()
                .all(|t| cache.fetched_at(t).is_some_and(|at| at >= requested_at));
            if fresh {
                return Ok(());
            }
        }
        let request = pb::MetadataRequest {
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            all_topics: false,
        };
        let sent_at = Instant::now();
        let response = self
            .call_any("metadata request", move |mut rpc| {
                let request = request.clone();
                async move { rpc.metadata(request).await }
            })
            .await?;
        if let Some(error) = response.error {
            return Err(error.into());
        }
        lock(&self.inner.metadata).apply(response, sent_at);
        self.inner.version.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Gets a producer id and epoch for an idempotent producer from any broker.
    pub(crate) async fn init_producer_id(&self) -> Result<(i64, i16)> {
        let response = self
            .call_any("producer id request", |mut rpc| async move {
                rpc.init_producer_id(pb::InitProducerIdRequest {}).await
            })
            .await?;
        if let Some(error) = response.error {
            return Err(error.into());
        }
        let epoch = i16::try_from(response.producer_epoch).map_err(|_| Error::Protocol {
            reason: "the producer epoch does not fit 16 bits",
        })?;
        Ok((response.producer_id, epoch))
    }

    /// The offset of the first record of `topic`/`partition` whose timestamp is at or after
    /// `timestamp_ms`, asked of the partition's leader; `None` when every record is older.
    pub async fn offset_for_time(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<Option<i64>> {
        let leader = self.leader(topic, partition).await?;
        let mut rpc = self.broker_client(&leader.address)?;
        let request = pb::ListOffsetsRequest {
            topics: vec![pb::ListOffsetsTopic {
                topic: topic.to_owned(),
                partitions: vec![pb::ListOffsetsPartition {
                    partition,
                    spec: pb::OffsetSpec::ByTimestamp.into(),
                    timestamp_ms,
                    current_leader_epoch: None,
                }],
            }],
        };
        let response = self
            .unary("list offsets", rpc.list_offsets(request))
            .await?;
        if let Some(error) = response.error {
            return Err(error.into());
        }
        let result = response
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition == partition)
            .ok_or(Error::Protocol {
                reason: "the list offsets answer lacks the requested partition",
            })?;
        if let Some(error) = result.error {
            return Err(error.into());
        }
        Ok(result.offset)
    }

    /// Runs one unary call under the client's request timeout.
    pub(crate) async fn unary<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T> {
        let after = self.inner.config.request_timeout;
        match tokio::time::timeout(after, call).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => Err(Error::Transport(status)),
            Err(_) => Err(Error::Timeout { operation, after }),
        }
    }

    /// Every broker address worth asking, without repeats: the one that answered last, then
    /// the known brokers, then the bootstrap list.
    pub(crate) fn broker_addresses(&self) -> Vec<String> {
        let mut candidates: Vec<String> = lock(&self.inner.last_good).iter().cloned().collect();
        candidates.extend(lock(&self.inner.metadata).broker_addresses());
        candidates.extend(self.inner.config.bootstrap.iter().cloned());
        let mut unique = Vec::with_capacity(candidates.len());
        for address in candidates {
            if !unique.contains(&address) {
                unique.push(address);
            }
        }
        unique
    }

    /// Tries `call` on the broker that answered last, then every known broker, then the
    /// bootstrap list, and returns the first answer.
    async fn call_any<T, F, Fut>(&self, operation: &'static str, call: F) -> Result<T>
    where
        F: Fn(BrokerServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        self.call_any_broker(operation, |channel| {
            call(
                BrokerServiceClient::new(channel)
                    .max_decoding_message_size(MAX_MESSAGE_SIZE)
                    .max_encoding_message_size(MAX_MESSAGE_SIZE),
            )
        })
        .await
    }

    /// As `call_any`, for any service the brokers serve, given the channel to one of them.
    pub(crate) async fn call_any_broker<T, F, Fut>(
        &self,
        operation: &'static str,
        call: F,
    ) -> Result<T>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let mut last_error = None;
        for address in self.broker_addresses() {
            let rpc = match self.channel(&address) {
                Ok(rpc) => rpc,
                Err(error) => {
                    last_error = Some(error);
                    continue;
                }
            };
            match self.unary(operation, call(rpc)).await {
                Ok(answer) => {
                    *lock(&self.inner.last_good) = Some(address);
                    return Ok(answer);
                }
                Err(error) => {
                    tracing::debug!(%address, %error, operation, "broker did not answer");
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or(Error::Config {
            setting: "bootstrap",
            reason: "must name at least one broker",
        }))
    }
}
