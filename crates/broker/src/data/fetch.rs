//! Consumer fetch on the leader: whole batches below the high watermark, long-polling up to
//! `max_wait_ms` for `min_bytes`.

use std::time::Duration;

use strom_proto::broker::v1 as pb;
use strom_proto::common::v1::{Error as PbError, ErrorCode};
use strom_storage::ReadBound;
use strom_types::Offset;
use tokio::time::Instant;

use super::lookup::Lookup;
use super::produce::storage_error;
use super::wait;

/// Bytes per partition when the request does not say.
const DEFAULT_PARTITION_MAX_BYTES: usize = 1024 * 1024;
/// Bytes per response when the request does not say, and the most any response carries.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// The longest a fetch may wait.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// Serves one fetch request.
pub async fn fetch(lookup: &Lookup, request: &pb::FetchRequest) -> pb::FetchResponse {
    let started = std::time::Instant::now();
    let response = fetch_waiting(lookup, request).await;
    for topic in &response.topics {
        let bytes = topic.partitions.iter().map(|p| p.records.len()).sum();
        lookup.metrics.sent(&topic.topic, bytes);
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
        .answered(crate::metrics::Api::Fetch, started, errors);
    response
}

/// Reads until `min_bytes` are there or the wait is over.
async fn fetch_waiting(lookup: &Lookup, request: &pb::FetchRequest) -> pb::FetchResponse {
    if request.max_bytes < 0 || request.min_bytes < 0 || request.max_wait_ms < 0 {
        return pb::FetchResponse {
            error: Some(PbError::new(
                ErrorCode::InvalidFetchSize,
                "max_bytes, min_bytes and max_wait_ms must not be negative",
            )),
            topics: Vec::new(),
        };
    }
    let deadline = wait::deadline(request.max_wait_ms, MAX_WAIT);
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    loop {
        let (response, bytes, mut activity) = fetch_once(lookup, request).await;
        // min_bytes 0 answers at once, with whatever is there.
        if bytes >= min_bytes || Instant::now() >= deadline {
            return response;
        }
        wait::any_activity(&mut activity, deadline).await;
    }
}

async fn fetch_once(
    lookup: &Lookup,
    request: &pb::FetchRequest,
) -> (
    pb::FetchResponse,
    usize,
    Vec<tokio::sync::watch::Receiver<u64>>,
) {
    let mut budget = match request.max_bytes {
        0 => MAX_RESPONSE_BYTES,
        n => usize::try_from(n)
            .unwrap_or(MAX_RESPONSE_BYTES)
            .min(MAX_RESPONSE_BYTES),
    };
    let mut total = 0;
    let mut activity = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in &topic.partitions {
            let result =
                match lookup.leader(&topic.topic, wanted.partition, wanted.current_leader_epoch) {
                    Err(error) => pb::FetchPartitionResult {
                        partition: wanted.partition,
                        error: Some(error),
                        ..Default::default()
                    },
                    Ok((replica, _)) => {
                        activity.push(replica.activity.subscribe());
                        let limit = match wanted.partition_max_bytes {
                            n if n < 0 => {
                                partitions.push(pb::FetchPartitionResult {
                                    partition: wanted.partition,
                                    error: Some(PbError::new(
                                        ErrorCode::InvalidFetchSize,
                                        "partition_max_bytes must not be negative",
                                    )),
                                    ..Default::default()
                                });
                                continue;
                            }
                            0 => DEFAULT_PARTITION_MAX_BYTES,
                            n => usize::try_from(n).unwrap_or(DEFAULT_PARTITION_MAX_BYTES),
                        }
                        .min(budget.max(1));
                        read(
                            &replica.log,
                            wanted.partition,
                            Offset::new(wanted.fetch_offset),
                            limit,
                        )
                        .await
                    }
                };
            total += result.records.len();
            budget = budget.saturating_sub(result.records.len());
            partitions.push(result);
        }
        topics.push(pb::FetchTopicResult {
            topic: topic.topic.clone(),
            partitions,
        });
    }
    (
        pb::FetchResponse {
            error: None,
            topics,
        },
        total,
        activity,
    )
}

async fn read(
    log: &std::sync::Arc<strom_storage::PartitionLog>,
    partition: i32,
    offset: Offset,
    limit: usize,
) -> pb::FetchPartitionResult {
    let log = log.clone();
    let outcome = tokio::task::spawn_blocking(move || -> strom_storage::Result<Result<strom_storage::ReadResult, (Offset, Offset, Offset)>> {
        let (start, end, hw) = (log.log_start_offset()?, log.log_end_offset()?, log.high_watermark()?);
        if offset < start || offset > end {
            return Ok(Err((start, end, hw)));
        }
        log.read(offset, limit, ReadBound::HighWatermark).map(Ok)
    })
    .await;
    match outcome {
        Ok(Ok(Ok(read))) => pb::FetchPartitionResult {
            partition,
            error: None,
            high_watermark: read.high_watermark.get(),
            log_start_offset: read.log_start_offset.get(),
            records: read.records,
        },
        Ok(Ok(Err((start, end, hw)))) => pb::FetchPartitionResult {
            partition,
            error: Some(PbError::new(
                ErrorCode::OffsetOutOfRange,
                format!("offset {offset} is outside [{start}, {end}]"),
            )),
            high_watermark: hw.get(),
            log_start_offset: start.get(),
            records: bytes::Bytes::new(),
        },
        Ok(Err(error)) => pb::FetchPartitionResult {
            partition,
            error: Some(storage_error(&error)),
            ..Default::default()
        },
        Err(error) => pb::FetchPartitionResult {
            partition,
            error: Some(PbError::new(
                ErrorCode::UnknownServerError,
                error.to_string(),
            )),
            ..Default::default()
        },
    }
}
