//! FetchStream: a long-poll subscription. Each response is a regular fetch; afterwards every
//! partition's position moves past the batches sent, partitions that answered with an error
//! leave the subscription, and the stream ends when none is left or the client goes away.

use futures::Stream;
use strom_proto::broker::v1 as pb;

use super::fetch::fetch;
use super::lookup::Lookup;

/// The responses of one subscription, produced as the client reads them (gRPC flow control
/// paces the broker to the reader; nothing is buffered ahead).
pub fn fetch_stream(
    lookup: Lookup,
    mut request: pb::FetchRequest,
) -> impl Stream<Item = pb::FetchResponse> + Send + 'static {
    // A subscription answers when data arrives or the wait passes: with min_bytes 0 it would
    // send empty responses as fast as the client reads them.
    request.min_bytes = request.min_bytes.max(1);
    futures::stream::unfold(Some(request), move |state| {
        let lookup = lookup.clone();
        async move {
            let mut request = state?;
            if request.topics.iter().all(|t| t.partitions.is_empty()) {
                return None;
            }
            let response = fetch(&lookup, &request).await;
            if response.error.is_some() {
                // A request-level error ends the subscription after reporting it.
                return Some((response, None));
            }
            advance(&mut request, &response);
            Some((response, Some(request)))
        }
    })
}

/// Moves each partition past what `response` returned and drops the ones that failed.
fn advance(request: &mut pb::FetchRequest, response: &pb::FetchResponse) {
    for (topic, result) in request.topics.iter_mut().zip(&response.topics) {
        let mut keep = Vec::with_capacity(topic.partitions.len());
        for (mut position, answer) in topic.partitions.drain(..).zip(&result.partitions) {
            if answer.error.is_some() {
                continue;
            }
            if let Some(next) = next_offset(&answer.records) {
                position.fetch_offset = next;
            }
            keep.push(position);
        }
        topic.partitions = keep;
    }
}

/// The offset after the last whole batch in `records`.
fn next_offset(records: &[u8]) -> Option<i64> {
    strom_record::batches(records)
        .filter_map(Result::ok)
        .map(|(header, _)| header.next_offset())
        .last()
}

#[cfg(test)]
mod tests {
    use strom_record::{BatchBuilder, Compression};

    use super::*;

    fn batch(base: i64, count: usize) -> bytes::Bytes {
        let mut builder = BatchBuilder::new(Compression::None).base_offset(base);
        for _ in 0..count {
            builder.append(0, None, Some(b"v"), &[]).unwrap();
        }
        builder.build().unwrap()
    }

    fn position(partition: i32, fetch_offset: i64) -> pb::FetchPartition {
        pb::FetchPartition {
            partition,
            fetch_offset,
            partition_max_bytes: 0,
            current_leader_epoch: None,
        }
    }

    #[test]
    fn positions_move_past_sent_batches_and_failed_partitions_leave() {
        let mut request = pb::FetchRequest {
            max_wait_ms: 100,
            min_bytes: 1,
            max_bytes: 0,
            topics: vec![pb::FetchTopic {
                topic: "t".to_owned(),
                partitions: vec![position(0, 0), position(1, 5), position(2, 9)],
            }],
        };
        let mut records = batch(0, 3).to_vec();
        records.extend_from_slice(&batch(3, 2));
        let response = pb::FetchResponse {
            error: None,
            topics: vec![pb::FetchTopicResult {
                topic: "t".to_owned(),
                partitions: vec![
                    pb::FetchPartitionResult {
                        partition: 0,
                        records: records.into(),
                        ..Default::default()
                    },
                    pb::FetchPartitionResult {
                        partition: 1,
                        ..Default::default()
                    },
                    pb::FetchPartitionResult {
                        partition: 2,
                        error: Some(strom_proto::common::v1::Error::new(
                            strom_proto::common::v1::ErrorCode::OffsetOutOfRange,
                            "x",
                        )),
                        ..Default::default()
                    },
                ],
            }],
        };
        advance(&mut request, &response);
        let left: Vec<(i32, i64)> = request.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition, p.fetch_offset))
            .collect();
        assert_eq!(left, [(0, 5), (1, 5)]);
    }
}
