//! Follower fetchers: one task per source broker, fetching every partition this broker
//! follows from it in one request, appending what it gets and truncating where the leader
//! says the logs diverged.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use strom_proto::common::v1::ErrorCode;
use strom_proto::replication::v1 as pb;
use strom_proto::replication::v1::replication_service_client::ReplicationServiceClient;
use strom_server_kit::grpc;
use strom_types::{BrokerId, LeaderEpoch, Offset, PartitionId, TopicId};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, info, warn};

use crate::replicas::{Replica, Replicas, Role};
use strom_meta::MetadataCache;

/// How long the leader may hold a fetch open waiting for data.
const MAX_WAIT: Duration = Duration::from_millis(500);
/// The pause after a failed fetch.
const BACKOFF: Duration = Duration::from_millis(300);
/// The largest replication response accepted: the leader's 16 MiB budget, or one batch of up to
/// the record format's 64 MiB limit, with room for the framing.
const MAX_RESPONSE_BYTES: usize = 80 * 1024 * 1024;

type PartitionKey = (TopicId, PartitionId);

/// Starts, updates and stops one fetcher per source broker.
#[derive(Debug)]
pub struct FetcherManager {
    me: BrokerId,
    cache: MetadataCache,
    replicas: Replicas,
    epoch: watch::Receiver<Option<i64>>,
    fetchers: BTreeMap<BrokerId, (watch::Sender<BTreeSet<PartitionKey>>, CancellationToken)>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl FetcherManager {
    /// A manager for broker `me`; fetchers stop with `shutdown`.
    pub fn new(
        me: BrokerId,
        cache: MetadataCache,
        replicas: Replicas,
        epoch: watch::Receiver<Option<i64>>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            me,
            cache,
            replicas,
            epoch,
            fetchers: BTreeMap::new(),
            tasks: TaskTracker::new(),
            shutdown,
        }
    }

    /// Matches the fetchers to the replicas' current roles.
    pub fn update(&mut self) {
        let mut wanted: BTreeMap<BrokerId, BTreeSet<PartitionKey>> = BTreeMap::new();
        for (key, replica) in self.replicas.snapshot() {
            if let (Role::Follower(_), Some(leader)) = (replica.role, replica.record.leader)
                && leader != self.me
            {
                wanted.entry(leader).or_default().insert(key);
            }
        }
        self.fetchers.retain(|leader, (_, stop)| {
            let keep = wanted.contains_key(leader);
            if !keep {
                stop.cancel();
            }
            keep
        });
        for (leader, partitions) in wanted {
            if let Some((set, _)) = self.fetchers.get(&leader) {
                set.send_if_modified(|current| {
                    let changed = *current != partitions;
                    *current = partitions.clone();
                    changed
                });
                continue;
            }
            let (set, receiver) = watch::channel(partitions);
            let stop = self.shutdown.child_token();
            let fetcher = Fetcher {
                me: self.me,
                leader,
                cache: self.cache.clone(),
                replicas: self.replicas.clone(),
                epoch: self.epoch.clone(),
                partitions: receiver,
                client: None,
            };
            self.tasks.spawn(fetcher.run(stop.clone()));
            self.fetchers.insert(leader, (set, stop));
        }
    }

    /// Stops every fetcher and waits for them.
    pub async fn stop(self) {
        for (_, (_, stop)) in self.fetchers {
            stop.cancel();
        }
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// Fetches every partition this broker follows from one leader.
struct Fetcher {
    me: BrokerId,
    leader: BrokerId,
    cache: MetadataCache,
    replicas: Replicas,
    epoch: watch::Receiver<Option<i64>>,
    partitions: watch::Receiver<BTreeSet<PartitionKey>>,
    client: Option<(String, ReplicationServiceClient<Channel>)>,
}

impl Fetcher {
    async fn run(mut self, stop: CancellationToken) {
        debug!(leader = self.leader.get(), "fetcher started");
        while !stop.is_cancelled() {
            let fetched = tokio::select! {
                () = stop.cancelled() => return,
                fetched = self.fetch_round() => fetched,
            };
            if !fetched {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(BACKOFF) => {}
                }
            }
        }
    }

    /// One fetch and its handling; `false` when nothing could be fetched.
    async fn fetch_round(&mut self) -> bool {
        let Some(broker_epoch) = *self.epoch.borrow() else {
            return false;
        };
        let Some(address) = self
            .cache
            .snapshot()
            .brokers
            .get(&self.leader)
            .map(|b| b.registration.address.clone())
        else {
            return false;
        };
        let followed: Vec<(PartitionKey, Replica)> = self
            .partitions
            .borrow()
            .iter()
            .filter_map(|key| Some((*key, self.replicas.get(key.0, key.1)?)))
            .filter(|(_, r)| {
                matches!(r.role, Role::Follower(_)) && r.record.leader == Some(self.leader)
            })
            .collect();
        if followed.is_empty() {
            return false;
        }
        let request = match build_request(self.me, broker_epoch, &followed).await {
            Some(request) => request,
            None => return false,
        };
        let client = match &self.client {
            Some((cached, client)) if *cached == address => client.clone(),
            _ => {
                let Ok(endpoint) = Endpoint::from_shared(format!("http://{address}")) else {
                    return false;
                };
                let client = ReplicationServiceClient::new(
                    endpoint
                        .connect_timeout(Duration::from_secs(3))
                        .timeout(MAX_WAIT + Duration::from_secs(10))
                        .tcp_nodelay(true)
                        .initial_stream_window_size(grpc::STREAM_WINDOW)
                        .initial_connection_window_size(grpc::CONNECTION_WINDOW)
                        .connect_lazy(),
                )
                // A response holds up to 16 MiB of batches, and at least one whole batch.
                .max_decoding_message_size(MAX_RESPONSE_BYTES);
                self.client = Some((address.clone(), client.clone()));
                client
            }
        };
        let mut client = client;
        let response = match client.follower_fetch(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                debug!(leader = self.leader.get(), %address, error = %status.message(), "follower fetch failed");
                return false;
            }
        };
        if let Some(error) = response.error {
            debug!(leader = self.leader.get(), code = error.code, message = %error.message, "follower fetch refused");
            return false;
        }
        let by_key: BTreeMap<PartitionKey, Replica> = followed.into_iter().collect();
        for topic in response.topics {
            let Ok(topic_id) = topic.topic_id.parse::<TopicId>() else {
                continue;
            };
            for result in topic.partitions {
                let Ok(partition) = PartitionId::try_new(result.partition) else {
                    continue;
                };
                if let Some(replica) = by_key.get(&(topic_id, partition)) {
                    apply(replica, result).await;
                }
            }
        }
        true
    }
}

async fn build_request(
    me: BrokerId,
    broker_epoch: i64,
    followed: &[(PartitionKey, Replica)],
) -> Option<pb::FollowerFetchRequest> {
    // Every followed log's position, read in one trip off the runtime.
    let logs: Vec<_> = followed
        .iter()
        .map(|(_, replica)| Arc::clone(&replica.log))
        .collect();
    let positions = tokio::task::spawn_blocking(move || {
        logs.iter()
            .map(|log| -> strom_storage::Result<_> {
                if let Some(damaged) = log.damaged_from()? {
                    // A read found this log damaged: cut it there and fetch the rest again.
                    let end = log.truncate_to(damaged)?;
                    warn!(partition = %log.topic_partition(), log_end = end.get(), "truncated a damaged log to fetch it again");
                }
                Ok((
                    log.log_end_offset()?,
                    log.latest_epoch()?,
                    log.log_start_offset()?,
                ))
            })
            .collect::<Vec<_>>()
    })
    .await
    .ok()?;
    let mut topics: BTreeMap<TopicId, pb::FollowerFetchTopic> = BTreeMap::new();
    for (((topic_id, partition), replica), position) in followed.iter().zip(positions) {
        let Role::Follower(epoch) = replica.role else {
            continue;
        };
        let Ok((log_end, last_epoch, log_start)) = position else {
            continue;
        };
        topics
            .entry(*topic_id)
            .or_insert_with(|| pb::FollowerFetchTopic {
                topic: replica.partition.topic.to_string(),
                topic_id: topic_id.to_string(),
                partitions: Vec::new(),
            })
            .partitions
            .push(pb::FollowerFetchPartition {
                partition: partition.get(),
                fetch_offset: log_end.get(),
                current_leader_epoch: epoch.get(),
                last_fetched_epoch: last_epoch.map(LeaderEpoch::get),
                log_start_offset: log_start.get(),
                partition_max_bytes: 0,
            });
    }
    (!topics.is_empty()).then(|| pb::FollowerFetchRequest {
        replica_id: me.get(),
        broker_epoch,
        max_wait_ms: i32::try_from(MAX_WAIT.as_millis()).unwrap_or(i32::MAX),
        min_bytes: 1,
        max_bytes: 0,
        topics: topics.into_values().collect(),
    })
}

/// Applies one partition's fetch result to the local log.
async fn apply(replica: &Replica, result: pb::FollowerFetchPartitionResult) {
    let partition = replica.partition.clone();
    let log = replica.log.clone();
    let outcome = tokio::task::spawn_blocking(move || -> strom_storage::Result<Option<String>> {
        if let Some(diverging) = result.diverging_epoch {
            // Truncate to where both logs agree: the end of the leader's epoch, but no further
            // than this log's own end of that epoch.
            let ours = log.epoch_end_offset(LeaderEpoch::new(diverging.epoch))?;
            let mut target = Offset::new(diverging.end_offset);
            if let Some(ours) = ours.filter(|o| o.epoch.get() == diverging.epoch) {
                target = target.min(ours.end_offset);
            }
            let end = log.truncate_to(target)?;
            return Ok(Some(format!(
                "truncated to {end} after diverging at epoch {}",
                diverging.epoch
            )));
        }
        if let Some(error) = result.error {
            if error.code == ErrorCode::OffsetOutOfRange as i32
                && log.log_end_offset()?.get() < result.log_start_offset
            {
                log.truncate_fully_and_start_at(Offset::new(result.log_start_offset))?;
                return Ok(Some(format!(
                    "restarted at the leader's log start {}",
                    result.log_start_offset
                )));
            }
            return Ok(None);
        }
        if !result.records.is_empty() {
            log.append_as_follower(&result.records)?;
        }
        let leo = log.log_end_offset()?;
        log.update_high_watermark(Offset::new(result.high_watermark).min(leo))?;
        Ok(None)
    })
    .await;
    match outcome {
        Ok(Ok(Some(note))) => info!(%partition, "{note}"),
        Ok(Ok(None)) => {}
        Ok(Err(error)) => warn!(%partition, %error, "could not apply a follower fetch"),
        Err(error) => warn!(%partition, %error, "a follower fetch task failed"),
    }
}
