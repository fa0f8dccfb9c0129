//! ReplicationService on the leader: follower fetches (with divergence detection by leader
//! epoch, high-watermark advance and ISR expansion proposals) and leader-epoch lookups.

use std::time::Duration;

use bytes::Bytes;
use strom_proto::common::v1::{Error as PbError, ErrorCode};
use strom_proto::replication::v1 as pb;
use strom_proto::replication::v1::replication_service_server::ReplicationService;
use strom_storage::ReadBound;
use strom_types::{BrokerId, LeaderEpoch, Offset, PartitionId, TopicId, TopicName};
use tokio::time::Instant;
use tonic::{Request, Response, Status};

use super::isr::IsrProposals;
use crate::metrics::{Api, BrokerMetrics};
use crate::replicas::{Replica, Replicas, Role};
use strom_meta::MetadataCache;

/// Bytes returned per partition when the follower does not say.
const DEFAULT_PARTITION_MAX_BYTES: usize = 1024 * 1024;
/// Bytes returned per response when the follower does not say.
const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;
/// The longest a follower fetch may wait for data.
const MAX_WAIT_CAP: Duration = Duration::from_secs(10);

/// The leader side of replication.
#[derive(Debug, Clone)]
pub struct ReplicationGrpc {
    me: BrokerId,
    cache: MetadataCache,
    replicas: Replicas,
    proposals: IsrProposals,
    metrics: BrokerMetrics,
}

impl ReplicationGrpc {
    /// A service for broker `me`.
    pub fn new(
        me: BrokerId,
        cache: MetadataCache,
        replicas: Replicas,
        proposals: IsrProposals,
        metrics: BrokerMetrics,
    ) -> Self {
        Self {
            me,
            cache,
            replicas,
            proposals,
            metrics,
        }
    }

    fn partition_error(
        partition: i32,
        code: ErrorCode,
        message: impl Into<String>,
    ) -> pb::FollowerFetchPartitionResult {
        pb::FollowerFetchPartitionResult {
            partition,
            error: Some(PbError::new(code, message)),
            ..Default::default()
        }
    }

    /// Activity receivers of every requested partition this broker holds.
    fn subscriptions(
        &self,
        request: &pb::FollowerFetchRequest,
    ) -> Vec<tokio::sync::watch::Receiver<u64>> {
        let mut receivers = Vec::new();
        for topic in &request.topics {
            let Ok(topic_id) = topic.topic_id.parse::<TopicId>() else {
                continue;
            };
            for wanted in &topic.partitions {
                let Ok(partition) = PartitionId::try_new(wanted.partition) else {
                    continue;
                };
                if let Some(replica) = self.replicas.get(topic_id, partition) {
                    receivers.push(replica.activity.subscribe());
                }
            }
        }
        receivers
    }

    /// One pass over the requested partitions. Returns the results and the bytes returned.
    async fn fetch_once(
        &self,
        request: &pb::FollowerFetchRequest,
        follower: BrokerId,
    ) -> (Vec<pb::FollowerFetchTopicResult>, usize) {
        let mut budget = usize::try_from(request.max_bytes)
            .ok()
            .filter(|b| *b > 0)
            .unwrap_or(DEFAULT_MAX_BYTES);
        let mut total = 0;
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for wanted in &topic.partitions {
                let result = self
                    .fetch_partition(
                        follower,
                        request.broker_epoch,
                        (&topic.topic, &topic.topic_id),
                        wanted,
                        budget,
                    )
                    .await;
                total += result.records.len();
                budget = budget.saturating_sub(result.records.len());
                partitions.push(result);
            }
            topics.push(pb::FollowerFetchTopicResult {
                topic: topic.topic.clone(),
                topic_id: topic.topic_id.clone(),
                partitions,
            });
        }
        (topics, total)
    }

    async fn fetch_partition(
        &self,
        follower: BrokerId,
        broker_epoch: i64,
        (topic, topic_id): (&str, &str),
        wanted: &pb::FollowerFetchPartition,
        budget: usize,
    ) -> pb::FollowerFetchPartitionResult {
        let index = wanted.partition;
        let key = topic_id
            .parse::<TopicId>()
            .ok()
            .zip(PartitionId::try_new(index).ok());
        let Some(replica) = key.and_then(|(t, p)| self.replicas.get(t, p)) else {
            let (code, message) = self.missing_replica(topic, topic_id);
            return Self::partition_error(index, code, message);
        };
        let Role::Leader(epoch) = replica.role else {
            return Self::partition_error(
                index,
                ErrorCode::NotLeaderOrFollower,
                "this broker is not the partition leader",
            );
        };
        if wanted.current_leader_epoch < epoch.get() {
            return Self::partition_error(
                index,
                ErrorCode::FencedLeaderEpoch,
                format!(
                    "leader epoch {} is older than {epoch}",
                    wanted.current_leader_epoch
                ),
            );
        }
        if wanted.current_leader_epoch > epoch.get() {
            return Self::partition_error(
                index,
                ErrorCode::UnknownLeaderEpoch,
                format!(
                    "leader epoch {} is newer than {epoch}",
                    wanted.current_leader_epoch
                ),
            );
        }
        if !replica.record.replicas.contains(&follower) {
            return Self::partition_error(
                index,
                ErrorCode::InvalidRequest,
                format!("broker {follower} is not a replica of this partition"),
            );
        }
        let limit = usize::try_from(wanted.partition_max_bytes)
            .ok()
            .filter(|b| *b > 0)
            .unwrap_or(DEFAULT_PARTITION_MAX_BYTES)
            .min(budget.max(1));
        let fetch = FollowerRead {
            fetch_offset: Offset::new(wanted.fetch_offset),
            last_fetched_epoch: wanted.last_fetched_epoch.map(LeaderEpoch::new),
            limit,
        };
        let log = replica.log.clone();
        let read = tokio::task::spawn_blocking(move || fetch.run(&log)).await;
        let outcome = match read {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) => {
                let error = crate::data::storage_error(&error);
                return Self::partition_error(index, error.code(), error.message);
            }
            Err(error) => {
                return Self::partition_error(
                    index,
                    ErrorCode::UnknownServerError,
                    error.to_string(),
                );
            }
        };
        match outcome {
            ReadOutcome::Diverging { epoch, end_offset } => pb::FollowerFetchPartitionResult {
                partition: index,
                diverging_epoch: Some(pb::EpochEndOffset {
                    epoch: epoch.get(),
                    end_offset: end_offset.get(),
                }),
                ..Default::default()
            },
            ReadOutcome::OutOfRange {
                log_start,
                log_end,
                high_watermark,
            } => pb::FollowerFetchPartitionResult {
                partition: index,
                error: Some(PbError::new(
                    ErrorCode::OffsetOutOfRange,
                    format!(
                        "fetch offset {} is outside [{log_start}, {log_end}]",
                        wanted.fetch_offset
                    ),
                )),
                high_watermark: high_watermark.get(),
                log_start_offset: log_start.get(),
                ..Default::default()
            },
            ReadOutcome::Records {
                records,
                log_start,
                log_end,
                high_watermark,
            } => {
                let high_watermark = self
                    .advance(
                        &replica,
                        follower,
                        broker_epoch,
                        Offset::new(wanted.fetch_offset),
                        log_end,
                        high_watermark,
                    )
                    .await;
                pb::FollowerFetchPartitionResult {
                    partition: index,
                    error: None,
                    high_watermark: high_watermark.get(),
                    log_start_offset: log_start.get(),
                    records,
                    diverging_epoch: None,
                }
            }
        }
    }

    /// Records the follower's position, moves the high watermark, and proposes the follower for
    /// the ISR once it has caught up.
    async fn advance(
        &self,
        replica: &Replica,
        follower: BrokerId,
        broker_epoch: i64,
        fetch_offset: Offset,
        log_end: Offset,
        current: Offset,
    ) -> Offset {
        let isr = &replica.record.isr;
        let (high_watermark, joiner) = replica.with_progress(|progress| {
            progress.record_fetch(
                follower,
                broker_epoch,
                fetch_offset,
                log_end,
                Instant::now(),
            );
            let hw = progress.high_watermark(self.me, log_end, isr, current);
            let joiner = (!isr.contains(&follower))
                .then(|| progress.eligible_for_isr(follower, hw, replica.leader_start))
                .flatten();
            (hw, joiner)
        });
        if high_watermark > current {
            let log = replica.log.clone();
            let _ = tokio::task::spawn_blocking(move || log.update_high_watermark(high_watermark))
                .await;
            replica.signal_activity();
        }
        if joiner.is_some() {
            self.proposals
                .propose_expansion(replica, follower, &self.cache.snapshot());
        }
        high_watermark
    }
}

/// A follower read, run off the async runtime.
#[derive(Debug, Clone, Copy)]
struct FollowerRead {
    fetch_offset: Offset,
    last_fetched_epoch: Option<LeaderEpoch>,
    limit: usize,
}

enum ReadOutcome {
    Diverging {
        epoch: LeaderEpoch,
        end_offset: Offset,
    },
    OutOfRange {
        log_start: Offset,
        log_end: Offset,
        high_watermark: Offset,
    },
    Records {
        records: Bytes,
        log_start: Offset,
        log_end: Offset,
        high_watermark: Offset,
    },
}

impl FollowerRead {
    fn run(self, log: &strom_storage::PartitionLog) -> strom_storage::Result<ReadOutcome> {
        // The follower's last epoch must end, in this log, at or after its fetch offset;
        // otherwise its log diverged and it must truncate first (KIP-320).
        if let Some(last) = self.last_fetched_epoch {
            match log.epoch_end_offset(last)? {
                Some(end) if end.epoch == last && end.end_offset >= self.fetch_offset => {}
                Some(end) => {
                    return Ok(ReadOutcome::Diverging {
                        epoch: end.epoch,
                        end_offset: end.end_offset,
                    });
                }
                None => {
                    return Ok(ReadOutcome::Diverging {
                        epoch: last,
                        end_offset: log.log_start_offset()?,
                    });
                }
            }
        }
        let (log_start, log_end, high_watermark) = (
            log.log_start_offset()?,
            log.log_end_offset()?,
            log.high_watermark()?,
        );
        if self.fetch_offset < log_start || self.fetch_offset > log_end {
            return Ok(ReadOutcome::OutOfRange {
                log_start,
                log_end,
                high_watermark,
            });
        }
        let read = log.read(self.fetch_offset, self.limit, ReadBound::LogEnd)?;
        Ok(ReadOutcome::Records {
            records: read.records,
            log_start: read.log_start_offset,
            log_end: read.log_end_offset,
            high_watermark: read.high_watermark,
        })
    }
}

#[tonic::async_trait]
impl ReplicationService for ReplicationGrpc {
    async fn follower_fetch(
        &self,
        request: Request<pb::FollowerFetchRequest>,
    ) -> Result<Response<pb::FollowerFetchResponse>, Status> {
        let started = std::time::Instant::now();
        let request = request.into_inner();
        let whole = |code: ErrorCode, message: String| pb::FollowerFetchResponse {
            error: Some(PbError::new(code, message)),
            topics: Vec::new(),
        };
        let Ok(follower) = BrokerId::try_new(request.replica_id) else {
            return Ok(Response::new(whole(
                ErrorCode::InvalidRequest,
                format!("replica id {} is negative", request.replica_id),
            )));
        };
        let negative_partition_size = request
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .any(|p| p.partition_max_bytes < 0);
        if request.max_bytes < 0
            || request.min_bytes < 0
            || request.max_wait_ms < 0
            || negative_partition_size
        {
            return Ok(Response::new(whole(
                ErrorCode::InvalidFetchSize,
                "max_bytes, min_bytes, max_wait_ms and partition_max_bytes must not be negative"
                    .to_owned(),
            )));
        }
        let registered = self
            .cache
            .snapshot()
            .brokers
            .get(&follower)
            .map(|b| b.epoch);
        if registered != Some(request.broker_epoch) {
            let message = format!(
                "broker {follower} epoch {} is not its current registration ({registered:?})",
                request.broker_epoch
            );
            return Ok(Response::new(whole(ErrorCode::StaleBrokerEpoch, message)));
        }
        let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0))
            .min(MAX_WAIT_CAP);
        let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
        let deadline = Instant::now() + wait;
        loop {
            // Subscribe before reading, so an append between the read and the wait is not missed.
            let mut activity = self.subscriptions(&request);
            let (topics, bytes) = self.fetch_once(&request, follower).await;
            let any_error = topics
                .iter()
                .flat_map(|t| &t.partitions)
                .any(|p| p.error.is_some() || p.diverging_epoch.is_some());
            // min_bytes 0 answers at once, as Fetch does.
            if bytes >= min_bytes || any_error || Instant::now() >= deadline {
                self.metrics.replicated_out(bytes);
                let errors = topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .filter_map(|p| p.error.as_ref());
                self.metrics.answered(Api::FollowerFetch, started, errors);
                return Ok(Response::new(pb::FollowerFetchResponse {
                    error: None,
                    topics,
                }));
            }
            crate::data::wait::any_activity(&mut activity, deadline).await;
        }
    }

    async fn offsets_for_leader_epoch(
        &self,
        request: Request<pb::OffsetsForLeaderEpochRequest>,
    ) -> Result<Response<pb::OffsetsForLeaderEpochResponse>, Status> {
        let request = request.into_inner();
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in request.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for lookup in topic.partitions {
                let result = if request.replica_id.is_some_and(|id| id < 0) {
                    pb::OffsetsForLeaderEpochPartitionResult {
                        partition: lookup.partition,
                        error: Some(PbError::new(
                            ErrorCode::InvalidRequest,
                            "replica_id must not be negative",
                        )),
                        ..Default::default()
                    }
                } else {
                    self.epoch_lookup((&topic.topic, &topic.topic_id), &lookup)
                        .await
                };
                partitions.push(result);
            }
            topics.push(pb::OffsetsForLeaderEpochTopicResult {
                topic: topic.topic,
                partitions,
            });
        }
        Ok(Response::new(pb::OffsetsForLeaderEpochResponse {
            error: None,
            topics,
        }))
    }
}

impl ReplicationGrpc {
    /// Why this broker holds no replica of `topic` under `topic_id`: the id is malformed or
    /// not the topic's current one (it was deleted and created again), or the broker is simply
    /// not a replica of the partition.
    fn missing_replica(&self, topic: &str, topic_id: &str) -> (ErrorCode, &'static str) {
        let current = TopicName::new(topic)
            .ok()
            .and_then(|name| self.cache.snapshot().topics.get(&name).map(|t| t.id));
        match (topic_id.parse::<TopicId>(), current) {
            (Err(_), _) if !topic_id.is_empty() => (
                ErrorCode::InconsistentTopicId,
                "the topic id is not a valid id",
            ),
            (Ok(id), Some(current)) if id != current => (
                ErrorCode::InconsistentTopicId,
                "the topic id is not the topic's current id",
            ),
            _ => (
                ErrorCode::NotLeaderOrFollower,
                "this broker holds no replica of the partition",
            ),
        }
    }

    async fn epoch_lookup(
        &self,
        (topic, topic_id): (&str, &str),
        lookup: &pb::OffsetsForLeaderEpochPartition,
    ) -> pb::OffsetsForLeaderEpochPartitionResult {
        let failed = |code: ErrorCode, message: String| pb::OffsetsForLeaderEpochPartitionResult {
            partition: lookup.partition,
            error: Some(PbError::new(code, message)),
            ..Default::default()
        };
        if lookup.leader_epoch < 0 {
            return failed(
                ErrorCode::InvalidRequest,
                format!("leader epoch {} is negative", lookup.leader_epoch),
            );
        }
        let key = topic_id
            .parse::<TopicId>()
            .ok()
            .zip(PartitionId::try_new(lookup.partition).ok());
        let Some(replica) = key.and_then(|(t, p)| self.replicas.get(t, p)) else {
            let (code, message) = self.missing_replica(topic, topic_id);
            return failed(code, message.to_owned());
        };
        let Role::Leader(epoch) = replica.role else {
            return failed(
                ErrorCode::NotLeaderOrFollower,
                "this broker is not the partition leader".to_owned(),
            );
        };
        match lookup.current_leader_epoch {
            Some(current) if current < epoch.get() => {
                return failed(
                    ErrorCode::FencedLeaderEpoch,
                    format!("leader epoch {current} is older than {epoch}"),
                );
            }
            Some(current) if current > epoch.get() => {
                return failed(
                    ErrorCode::UnknownLeaderEpoch,
                    format!("leader epoch {current} is newer than {epoch}"),
                );
            }
            _ => {}
        }
        let log = replica.log.clone();
        let asked = LeaderEpoch::new(lookup.leader_epoch);
        match tokio::task::spawn_blocking(move || log.epoch_end_offset(asked)).await {
            Ok(Ok(Some(end))) => pb::OffsetsForLeaderEpochPartitionResult {
                partition: lookup.partition,
                error: None,
                leader_epoch: end.epoch.get(),
                end_offset: end.end_offset.get(),
            },
            Ok(Ok(None)) => failed(
                ErrorCode::UnknownLeaderEpoch,
                format!("epoch {asked} is before this log's history"),
            ),
            Ok(Err(error)) => failed(ErrorCode::UnknownServerError, error.to_string()),
            Err(error) => failed(ErrorCode::UnknownServerError, error.to_string()),
        }
    }
}
