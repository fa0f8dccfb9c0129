//! ListOffsets on the leader: earliest, latest (the high watermark) and by timestamp.

use strom_proto::broker::v1 as pb;
use strom_proto::common::v1::{Error as PbError, ErrorCode};

use super::lookup::Lookup;
use super::produce::storage_error;

/// Serves one ListOffsets request.
pub async fn list_offsets(
    lookup: &Lookup,
    request: &pb::ListOffsetsRequest,
) -> pb::ListOffsetsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for wanted in &topic.partitions {
            let result =
                match lookup.leader(&topic.topic, wanted.partition, wanted.current_leader_epoch) {
                    Ok((replica, epoch)) => {
                        let log = replica.log.clone();
                        let (spec, timestamp) = (wanted.spec, wanted.timestamp_ms);
                        let found = tokio::task::spawn_blocking(move || {
                            lookup_offset(&log, spec, timestamp)
                        })
                        .await;
                        match found {
                            Ok(Ok((offset, timestamp_ms))) => pb::ListOffsetsPartitionResult {
                                partition: wanted.partition,
                                error: None,
                                offset,
                                timestamp_ms,
                                leader_epoch: Some(epoch.get()),
                            },
                            Ok(Err(error)) => failed(wanted.partition, error),
                            Err(error) => failed(
                                wanted.partition,
                                PbError::new(ErrorCode::UnknownServerError, error.to_string()),
                            ),
                        }
                    }
                    Err(error) => failed(wanted.partition, error),
                };
            partitions.push(result);
        }
        topics.push(pb::ListOffsetsTopicResult {
            topic: topic.topic.clone(),
            partitions,
        });
    }
    pb::ListOffsetsResponse {
        error: None,
        topics,
    }
}

fn failed(partition: i32, error: PbError) -> pb::ListOffsetsPartitionResult {
    pb::ListOffsetsPartitionResult {
        partition,
        error: Some(error),
        ..Default::default()
    }
}

/// The offset (and timestamp) a spec names; `None` offset when no record is that recent.
fn lookup_offset(
    log: &strom_storage::PartitionLog,
    spec: i32,
    timestamp: i64,
) -> Result<(Option<i64>, Option<i64>), PbError> {
    let storage = |e: strom_storage::Error| storage_error(&e);
    match pb::OffsetSpec::try_from(spec) {
        Ok(pb::OffsetSpec::Earliest) => {
            Ok((Some(log.log_start_offset().map_err(storage)?.get()), None))
        }
        Ok(pb::OffsetSpec::Latest) => {
            Ok((Some(log.high_watermark().map_err(storage)?.get()), None))
        }
        Ok(pb::OffsetSpec::ByTimestamp) => {
            if timestamp < 0 {
                return Err(PbError::new(
                    ErrorCode::InvalidTimestamp,
                    format!("timestamp {timestamp} is negative"),
                ));
            }
            let found = log.offset_for_timestamp(timestamp).map_err(storage)?;
            let hw = log.high_watermark().map_err(storage)?;
            // Only records consumers can see count.
            Ok(match found.filter(|f| f.offset < hw) {
                Some(f) => (Some(f.offset.get()), Some(f.timestamp)),
                None => (None, None),
            })
        }
        Ok(pb::OffsetSpec::MaxTimestamp) => Err(PbError::new(
            ErrorCode::InvalidRequest,
            "OFFSET_SPEC_MAX_TIMESTAMP is not supported by this broker version",
        )),
        _ => Err(PbError::new(
            ErrorCode::InvalidRequest,
            format!("unknown offset spec {spec}"),
        )),
    }
}
