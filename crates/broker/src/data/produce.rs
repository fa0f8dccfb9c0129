//! Produce on the leader: validate and append each partition's batches, then answer per
//! `acks` — at once (0), after the local append (1), or once the high watermark passes the
//! batches with at least `min.insync.replicas` in the ISR (all).

use std::time::Duration;

use strom_proto::broker::v1 as pb;
use strom_proto::common::v1::{Error as PbError, ErrorCode};
use strom_types::{Offset, TopicName};
use tokio::time::Instant;

use super::lookup::Lookup;
use super::wait;
use crate::replicas::Replica;

/// How long acks=all waits when the request does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest a produce may wait for replication.
const MAX_TIMEOUT: Duration = Duration::from_secs(300);

/// What the producer waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acks {
    None,
    Leader,
    All,
}

/// Serves one produce request.
pub async fn produce(lookup: &Lookup, request: pb::ProduceRequest) -> pb::ProduceResponse {
    complete(lookup, append_all(lookup, request).await).await
}

/// A produce request whose batches are appended and whose answer may still wait for
/// replication (acks=all).
#[derive(Debug)]
pub struct Appended {
    started: std::time::Instant,
    acks: Acks,
    deadline: Instant,
    response: pb::ProduceResponse,
    /// (topic index, partition index, replica, last offset) of appends awaiting replication.
    pending: Vec<(usize, usize, Replica, Offset)>,
}

/// Validates and appends every partition's batches, in request order. Pipelined callers append
/// one request after another and complete them concurrently.
pub async fn append_all(lookup: &Lookup, request: pb::ProduceRequest) -> Appended {
    let started = std::time::Instant::now();
    let deadline = Instant::now() + timeout_of(request.timeout_ms);
    let acks = match pb::Acks::try_from(request.acks) {
        Ok(pb::Acks::None) => Acks::None,
        Ok(pb::Acks::Leader) => Acks::Leader,
        Ok(pb::Acks::All | pb::Acks::Unspecified) => Acks::All,
        Err(_) => {
            let error = PbError::new(
                ErrorCode::InvalidRequiredAcks,
                format!("acks value {} is not 0, 1 or all", request.acks),
            );
            let response = pb::ProduceResponse {
                error: Some(error),
                topics: Vec::new(),
            };
            return Appended {
                started,
                acks: Acks::Leader,
                deadline,
                response,
                pending: Vec::new(),
            };
        }
    };
    let mut topics = Vec::with_capacity(request.topics.len());
    let mut pending = Vec::new();
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for partition in topic.partitions {
            let index = partition.partition;
            match append(lookup, &topic.topic, partition, acks).await {
                Ok((result, replica, last)) => {
                    if acks == Acks::All {
                        pending.push((topics.len(), partitions.len(), replica, last));
                    }
                    partitions.push(result);
                }
                Err(error) => partitions.push(pb::ProducePartitionResult {
                    partition: index,
                    error: Some(error),
                    ..Default::default()
                }),
            }
        }
        topics.push(pb::ProduceTopicResult {
            topic: topic.topic,
            partitions,
        });
    }
    Appended {
        started,
        acks,
        deadline,
        response: pb::ProduceResponse {
            error: None,
            topics,
        },
        pending,
    }
}

/// Waits for replication where acks=all asks for it and builds the answer.
pub async fn complete(lookup: &Lookup, appended: Appended) -> pb::ProduceResponse {
    let Appended {
        started,
        acks,
        deadline,
        mut response,
        pending,
    } = appended;
    for (t, p, replica, last) in pending {
        if let Err(error) = await_replication(lookup, &replica, last, deadline).await {
            let result = &mut response.topics[t].partitions[p];
            result.error = Some(error);
            result.base_offset = None;
            result.batch_base_offsets.clear();
        }
    }
    let errors = response.error.iter().chain(
        response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .filter_map(|p| p.error.as_ref()),
    );
    lookup
        .metrics
        .answered(crate::metrics::Api::Produce, started, errors);
    if acks == Acks::None {
        // acks=0: the producer is told nothing, not even offsets.
        for result in response
            .topics
            .iter_mut()
            .flat_map(|t| t.partitions.iter_mut())
        {
            result.base_offset = None;
            result.batch_base_offsets.clear();
        }
    }
    response
}

fn timeout_of(timeout_ms: i32) -> Duration {
    match timeout_ms {
        t if t <= 0 => DEFAULT_TIMEOUT,
        t => Duration::from_millis(u64::try_from(t).unwrap_or(0)).min(MAX_TIMEOUT),
    }
}

/// The topic's `min.insync.replicas` (1 when the topic is not known here).
fn min_insync_replicas(lookup: &Lookup, topic: &str) -> usize {
    let state = lookup.cache.snapshot();
    TopicName::new(topic)
        .ok()
        .and_then(|name| {
            state
                .topics
                .get(&name)
                .map(|t| strom_topic_config::min_insync_replicas(&t.configs))
        })
        .map_or(1, usize::from)
}

async fn append(
    lookup: &Lookup,
    topic: &str,
    partition: pb::ProducePartition,
    acks: Acks,
) -> Result<(pb::ProducePartitionResult, Replica, Offset), PbError> {
    let (replica, epoch) = lookup.leader(topic, partition.partition, None)?;
    let min_isr = min_insync_replicas(lookup, topic);
    if acks == Acks::All && replica.record.isr.len() < min_isr {
        return Err(PbError::new(
            ErrorCode::NotEnoughReplicas,
            format!(
                "the ISR has {} members, fewer than min.insync.replicas = {min_isr}",
                replica.record.isr.len()
            ),
        ));
    }
    let log = replica.log.clone();
    let records = partition.records;
    let bytes = records.len();
    let (me, isr, progress) = (
        lookup.me,
        replica.record.isr.clone(),
        replica.progress.clone(),
    );
    // One trip to a blocking thread appends and, since with no other ISR member the append
    // alone moves it, recomputes the high watermark.
    let appended = tokio::task::spawn_blocking(move || {
        let info = log.append_as_leader(&records, epoch)?;
        advance_high_watermark(&log, &progress, me, &isr)?;
        Ok::<_, strom_storage::Error>(info)
    })
    .await;
    let info = match appended {
        Ok(Ok(info)) => info,
        Ok(Err(error)) => return Err(storage_error(&error)),
        Err(error) => {
            return Err(PbError::new(
                ErrorCode::UnknownServerError,
                error.to_string(),
            ));
        }
    };
    replica.signal_activity();
    if !info.duplicate {
        lookup.metrics.appended(topic, bytes, info.record_count);
    }
    let result = pb::ProducePartitionResult {
        partition: partition.partition,
        error: None,
        base_offset: Some(info.first_offset.get()),
        log_append_time_ms: None,
        log_start_offset: info.log_start_offset.get(),
        batch_base_offsets: info.batch_base_offsets.iter().map(|o| o.get()).collect(),
    };
    Ok((result, replica, info.last_offset))
}

/// Recomputes the high watermark after a local append (on a blocking thread).
fn advance_high_watermark(
    log: &strom_storage::PartitionLog,
    progress: &std::sync::Mutex<crate::replication::LeaderProgress>,
    me: strom_types::BrokerId,
    isr: &[strom_types::BrokerId],
) -> strom_storage::Result<()> {
    let (leo, current) = (log.log_end_offset()?, log.high_watermark()?);
    let hw = progress
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .high_watermark(me, leo, isr, current);
    if hw > current {
        log.update_high_watermark(hw)?;
    }
    Ok(())
}

/// Waits until the high watermark passes `last` (acks=all).
async fn await_replication(
    lookup: &Lookup,
    replica: &Replica,
    last: Offset,
    deadline: Instant,
) -> Result<(), PbError> {
    let mut activity = replica.activity.subscribe();
    loop {
        let hw = replica
            .log
            .high_watermark()
            .map_err(|e| storage_error(&e))?;
        if hw > last {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(PbError::new(
                ErrorCode::RequestTimedOut,
                format!(
                    "not replicated to the ISR in time (high watermark {hw}, needed {})",
                    last.next()
                ),
            ));
        }
        // A leadership or ISR change while waiting is reported, not waited out.
        let current = lookup
            .replicas
            .get(replica.topic_id, replica.partition.partition);
        if current.as_ref().map(|r| r.role) != Some(replica.role) {
            return Err(PbError::new(
                ErrorCode::NotLeaderOrFollower,
                "leadership changed before the records were replicated",
            ));
        }
        wait::any_activity(
            std::slice::from_mut(&mut activity),
            deadline.min(Instant::now() + Duration::from_millis(100)),
        )
        .await;
    }
}

/// The wire code of a malformed produced batch: damage in transit (a wrong length or CRC, a
/// records area that does not decompress) is CORRUPT_MESSAGE; an unknown codec is
/// UNSUPPORTED_COMPRESSION_TYPE; a batch that arrived intact but breaks the format (magic,
/// counts, offset deltas, timestamps, record framing) is INVALID_RECORD.
fn batch_fault(error: &strom_record::Error) -> ErrorCode {
    use strom_record::Error as R;
    match error {
        R::Truncated { .. }
        | R::LengthMismatch { .. }
        | R::InvalidBatchLength { .. }
        | R::CrcMismatch { .. }
        | R::Compression { .. } => ErrorCode::CorruptMessage,
        R::UnknownCompression { .. } | R::UnknownCompressionName { .. } => {
            ErrorCode::UnsupportedCompressionType
        }
        _ => ErrorCode::InvalidRecord,
    }
}

/// Maps a storage rejection to its wire code.
pub(crate) fn storage_error(error: &strom_storage::Error) -> PbError {
    use strom_storage::Error as E;
    let code = match error {
        E::InvalidBatch { source, .. } => batch_fault(source),
        E::EmptyAppend => ErrorCode::InvalidRequest,
        E::BatchTooLarge { .. } => ErrorCode::MessageTooLarge,
        E::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        E::StaleLeaderEpoch { .. } => ErrorCode::FencedLeaderEpoch,
        E::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
        E::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
        E::InvalidIdempotentAppend { .. } => ErrorCode::InvalidRequest,
        // Retriable: the client looks the leader up again, and a damaged leader resigns.
        e if e.is_storage_fault() => ErrorCode::KafkaStorageError,
        _ => ErrorCode::UnknownServerError,
    };
    PbError::new(code, error.to_string())
}
