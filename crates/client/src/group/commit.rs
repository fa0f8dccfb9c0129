//! Committing positions and reading committed offsets through the coordinator.

use std::collections::{BTreeMap, HashMap};

use strom_proto::coordinator::v1 as pb;

use super::GroupConsumer;
use super::assignment::TopicPartition;
use super::backoff::{Backoff, Retry};
use super::positions::Positions;
use crate::{Error, ErrorCode, Result};

/// Whether a commit is retried on retriable failures or tried once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attempts {
    /// Retry until the request timeout (explicit commits, revocation, close).
    UntilTimeout,
    /// Try once; the next automatic commit tries again.
    Once,
}

impl GroupConsumer {
    /// Commits `offsets` with the current member epoch and notes what was committed.
    pub(crate) async fn commit_positions(
        &mut self,
        offsets: Vec<(TopicPartition, i64)>,
        attempts: Attempts,
    ) -> Result<()> {
        let mut pending = offsets;
        let mut retry = self.retry();
        while !pending.is_empty() {
            let (epoch, generation) = self.shared.epoch_and_generation();
            if generation != self.generation {
                return Err(Error::coordinator(
                    ErrorCode::FencedMemberEpoch,
                    "the member lost its partitions before the commit",
                ));
            }
            let request = commit_request(&self.config.group_id, &self.member_id, epoch, &pending);
            let outcome = match self.link.commit_offsets(request).await {
                Ok(response) => take_commit_response(&mut self.positions, &mut pending, response),
                Err(error) => Err(error),
            };
            match outcome {
                Ok(()) => {}
                Err(error) if attempts == Attempts::Once => return Err(error),
                Err(error) => retry.after(error).await?,
            }
        }
        Ok(())
    }

    /// The committed offsets of `partitions` (`None` where the group has none).
    pub(crate) async fn committed_offsets(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, Option<i64>>> {
        let mut retry = self.retry();
        loop {
            let request = fetch_offsets_request(&self.config.group_id, partitions);
            let answer = match self.link.fetch_offsets(request).await {
                Ok(response) => read_offsets(response),
                Err(error) => Err(error),
            };
            match answer {
                Ok(offsets) => return Ok(offsets),
                Err(error) => retry.after(error).await?,
            }
        }
    }

    /// A retry budget of one request timeout with the configured backoff.
    fn retry(&self) -> Retry {
        let backoff = Backoff::new(self.config.retry_backoff, self.config.retry_backoff_max);
        Retry::new(self.client.config().request_timeout, backoff)
    }
}

/// Notes the committed partitions of `response` and keeps the failed ones in `pending`;
/// returns the first failure, preferring a final one.
fn take_commit_response(
    positions: &mut Positions,
    pending: &mut Vec<(TopicPartition, i64)>,
    response: pb::CommitOffsetsResponse,
) -> Result<()> {
    let mut failures: HashMap<TopicPartition, Error> = HashMap::new();
    for topic in response.topics {
        for result in topic.partitions {
            if let Some(error) = result.error {
                let key = TopicPartition::new(topic.topic.clone(), result.partition);
                let error = Error::Commit {
                    topic: topic.topic.clone(),
                    partition: result.partition,
                    code: error.code(),
                    message: error.message,
                };
                failures.insert(key, error);
            }
        }
    }
    for (partition, offset) in pending.iter() {
        if !failures.contains_key(partition) {
            positions.committed(partition, *offset);
        }
    }
    pending.retain(|(partition, _)| failures.contains_key(partition));
    let mut failures: Vec<Error> = failures.into_values().collect();
    failures.sort_by_key(Error::is_retriable);
    failures.into_iter().next().map_or(Ok(()), Err)
}

/// A commit of `offsets`, grouped by topic.
fn commit_request(
    group_id: &str,
    member_id: &str,
    epoch: i32,
    offsets: &[(TopicPartition, i64)],
) -> pb::CommitOffsetsRequest {
    let mut topics: BTreeMap<&str, Vec<pb::CommitOffsetsPartition>> = BTreeMap::new();
    for (partition, offset) in offsets {
        topics
            .entry(&partition.topic)
            .or_default()
            .push(pb::CommitOffsetsPartition {
                partition: partition.partition,
                offset: *offset,
                leader_epoch: None,
                metadata: String::new(),
            });
    }
    pb::CommitOffsetsRequest {
        group_id: group_id.to_owned(),
        member_id: member_id.to_owned(),
        member_epoch: epoch,
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| pb::CommitOffsetsTopic {
                topic: topic.to_owned(),
                partitions,
            })
            .collect(),
    }
}

/// A committed-offset lookup of `partitions`, grouped by topic.
fn fetch_offsets_request(group_id: &str, partitions: &[TopicPartition]) -> pb::FetchOffsetsRequest {
    let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for partition in partitions {
        topics
            .entry(&partition.topic)
            .or_default()
            .push(partition.partition);
    }
    pb::FetchOffsetsRequest {
        group_id: group_id.to_owned(),
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| pb::FetchOffsetsTopic {
                topic: topic.to_owned(),
                partitions,
            })
            .collect(),
    }
}

/// The committed offsets in `response`; the first per-partition error fails the lookup.
fn read_offsets(
    response: pb::FetchOffsetsResponse,
) -> Result<HashMap<TopicPartition, Option<i64>>> {
    let mut offsets = HashMap::new();
    for topic in response.topics {
        for result in topic.partitions {
            if let Some(error) = result.error {
                return Err(Error::coordinator(error.code(), error.message));
            }
            offsets.insert(
                TopicPartition::new(topic.topic.clone(), result.partition),
                result.offset,
            );
        }
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use strom_proto::common::v1::Error as PbError;

    use super::*;

    fn tp(topic: &str, partition: i32) -> TopicPartition {
        TopicPartition::new(topic, partition)
    }

    #[test]
    fn commits_group_partitions_by_topic() {
        let offsets = [(tp("b", 1), 7), (tp("a", 0), 3), (tp("b", 0), 5)];
        let request = commit_request("g", "m", 4, &offsets);
        assert_eq!((request.member_epoch, request.member_id.as_str()), (4, "m"));
        let topics: Vec<(&str, Vec<(i32, i64)>)> = request
            .topics
            .iter()
            .map(|t| {
                let parts = t.partitions.iter().map(|p| (p.partition, p.offset));
                (t.topic.as_str(), parts.collect())
            })
            .collect();
        assert_eq!(topics, [("a", vec![(0, 3)]), ("b", vec![(1, 7), (0, 5)])]);
        let lookup = fetch_offsets_request("g", &[tp("b", 2), tp("a", 1), tp("b", 0)]);
        assert_eq!(lookup.topics[1].partitions, [2, 0]);
    }

    fn result(
        topic: &str,
        partition: i32,
        code: Option<ErrorCode>,
    ) -> pb::CommitOffsetsTopicResult {
        pb::CommitOffsetsTopicResult {
            topic: topic.into(),
            partitions: vec![pb::CommitOffsetsPartitionResult {
                partition,
                error: code.map(|code| PbError::new(code, "no")),
            }],
        }
    }

    #[test]
    fn commit_results_keep_failed_partitions_and_prefer_final_errors() {
        let mut positions = Positions::default();
        for partition in 0..3 {
            positions.start(tp("a", partition), None);
            positions.advance(&tp("a", partition), 10);
        }
        let mut pending = positions.uncommitted(|_| true);
        let response = pb::CommitOffsetsResponse {
            error: None,
            topics: vec![
                result("a", 0, None),
                result("a", 1, Some(ErrorCode::CoordinatorLoadInProgress)),
                result("a", 2, Some(ErrorCode::CommitOffsetBehind)),
            ],
        };
        let error = take_commit_response(&mut positions, &mut pending, response).unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::CommitOffsetBehind));
        assert!(matches!(error, Error::Commit { partition: 2, .. }));
        assert_eq!(pending, [(tp("a", 1), 10), (tp("a", 2), 10)]);
        assert_eq!(positions.uncommitted(|_| true), pending);
        let retried = pb::CommitOffsetsResponse {
            error: None,
            topics: vec![result("a", 1, None), result("a", 2, None)],
        };
        take_commit_response(&mut positions, &mut pending, retried).unwrap();
        assert!(pending.is_empty() && positions.uncommitted(|_| true).is_empty());
    }

    #[test]
    fn committed_offsets_may_be_unset_and_errors_fail_the_lookup() {
        let response = pb::FetchOffsetsResponse {
            error: None,
            topics: vec![pb::FetchOffsetsTopicResult {
                topic: "a".into(),
                partitions: vec![
                    pb::FetchOffsetsPartitionResult {
                        partition: 0,
                        offset: Some(12),
                        ..Default::default()
                    },
                    pb::FetchOffsetsPartitionResult {
                        partition: 1,
                        ..Default::default()
                    },
                ],
            }],
        };
        let offsets = read_offsets(response.clone()).unwrap();
        assert_eq!(offsets[&tp("a", 0)], Some(12));
        assert_eq!(offsets[&tp("a", 1)], None);
        let mut failed = response;
        failed.topics[0].partitions[1].error =
            Some(PbError::new(ErrorCode::GroupIdNotFound, "gone"));
        let error = read_offsets(failed).unwrap_err();
        assert_eq!(error.code(), Some(ErrorCode::GroupIdNotFound));
    }
}
