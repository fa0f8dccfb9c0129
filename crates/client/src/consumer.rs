//! Reading one partition through a FetchStream subscription to its leader.
//!
//! The subscription stays open across polls; the broker moves its position past every batch
//! it sends, and the consumer moves its own position the same way. A seek, a failure or a
//! poll that was cancelled drops the subscription, and the next poll subscribes again from
//! the consumer's position, so nothing is skipped.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strom_proto::broker::v1 as pb;
use strom_record::{BatchHeader, RecordIter, peek_batch_size};
use tokio::time::Instant;
use tonic::{Status, Streaming};

use crate::{Client, ConsumerConfig, Error, Result, StartOffset};

/// One record read from a partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConsumerRecord {
    /// The topic the record was read from; shared by every record of the partition.
    pub topic: Arc<str>,
    /// The partition the record was read from.
    pub partition: i32,
    /// The record's offset.
    pub offset: i64,
    /// Milliseconds since the Unix epoch (create time, or the broker's append time).
    pub timestamp: i64,
    /// The key; `None` is distinct from empty.
    pub key: Option<Bytes>,
    /// The value; `None` (a tombstone) is distinct from empty.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Reads one partition of one topic, in offset order.
#[derive(Debug)]
pub struct PartitionConsumer {
    client: Client,
    topic: Arc<str>,
    partition: i32,
    config: ConsumerConfig,
    position: i64,
    high_watermark: Option<i64>,
    log_start_offset: Option<i64>,
    subscription: Option<Streaming<pb::FetchResponse>>,
}

impl PartitionConsumer {
    /// A consumer of `partition` of `topic`, positioned by `config.start` (earliest and latest
    /// are looked up on the leader).
    pub async fn new(
        client: Client,
        topic: impl Into<String>,
        partition: i32,
        config: ConsumerConfig,
    ) -> Result<PartitionConsumer> {
        config.validate()?;
        let start = config.start;
        let mut consumer = PartitionConsumer {
            client,
            topic: Arc::from(topic.into()),
            partition,
            config,
            position: 0,
            high_watermark: None,
            log_start_offset: None,
            subscription: None,
        };
        consumer.seek_to(start).await?;
        Ok(consumer)
    }

    /// The topic read.
    #[must_use]
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition read.
    #[must_use]
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// The offset of the next record to return.
    #[must_use]
    pub fn position(&self) -> i64 {
        self.position
    }

    /// The partition's high watermark from the last response: the offset after the last
    /// record that may be consumed. `None` before the first response.
    #[must_use]
    pub fn high_watermark(&self) -> Option<i64> {
        self.high_watermark
    }

    /// The partition's log start offset from the last response.
    #[must_use]
    pub fn log_start_offset(&self) -> Option<i64> {
        self.log_start_offset
    }

    /// Continues reading at `offset`.
    pub fn seek(&mut self, offset: i64) {
        self.position = offset;
        self.subscription = None;
    }

    /// Continues reading at `start`, looking earliest and latest up on the leader.
    pub async fn seek_to(&mut self, start: StartOffset) -> Result<()> {
        let offset = match start {
            StartOffset::Offset(offset) => offset,
            StartOffset::Earliest => self.list_offset(pb::OffsetSpec::Earliest).await?,
            StartOffset::Latest => self.list_offset(pb::OffsetSpec::Latest).await?,
        };
        self.seek(offset);
        Ok(())
    }

    /// The next records at or after the position, waiting up to `fetch_max_wait` for them;
    /// an empty result means none arrived in time.
    ///
    /// Retriable failures (leader moves, broken connections) are retried for up to the
    /// client's `request_timeout`. `OFFSET_OUT_OF_RANGE` is returned as an error with its
    /// code; the position is left for the caller to [`seek`](Self::seek).
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>> {
        let records = self.next_records().await?;
        match decode(&records, self.position, &self.topic, self.partition) {
            Ok((decoded, next)) => {
                self.advance(next);
                Ok(decoded)
            }
            Err(error) => {
                self.subscription = None;
                Err(error)
            }
        }
    }

    /// As [`poll`](Self::poll), returning whole record batches (RecordBatch v2, as stored)
    /// instead of records, for callers that decode themselves. Only headers are parsed here:
    /// the CRC is not checked, and the first batch may hold records below the position.
    pub async fn poll_batches(&mut self) -> Result<Vec<Bytes>> {
        let records = self.next_records().await?;
        match split_batches(&records) {
            Ok((batches, next)) => {
                self.advance(next);
                Ok(batches)
            }
            Err(error) => {
                self.subscription = None;
                Err(error)
            }
        }
    }

    fn advance(&mut self, next: Option<i64>) {
        if let Some(next) = next {
            self.position = self.position.max(next);
        }
    }

    /// The records area of the next response for this partition, retrying retriable
    /// failures.
    async fn next_records(&mut self) -> Result<Bytes> {
        let mut retry = RetryBudget::new(&self.client, &self.config);
        loop {
            match self.try_next_records().await {
                Ok(records) => return Ok(records),
                Err(error) => retry.after(error, &self.client, &self.topic).await?,
            }
        }
    }

    async fn try_next_records(&mut self) -> Result<Bytes> {
        // Held outside `self` while waiting: if this future is dropped, so is the
        // subscription, and the next poll resumes from the position.
        let mut subscription = match self.subscription.take() {
            Some(subscription) => subscription,
            None => self.subscribe().await?,
        };
        let after = self.client.config().request_timeout + self.config.fetch_max_wait;
        let message = tokio::time::timeout(after, subscription.message())
            .await
            .map_err(|_| Error::Timeout {
                operation: "fetch",
                after,
            })??;
        let Some(response) = message else {
            let status = Status::unavailable("the broker ended the fetch stream");
            return Err(Error::Transport(status));
        };
        let records = self.take_result(response)?;
        self.subscription = Some(subscription);
        Ok(records)
    }

    /// Opens a FetchStream from the position on the partition's leader.
    async fn subscribe(&self) -> Result<Streaming<pb::FetchResponse>> {
        let leader = self.client.leader(&self.topic, self.partition).await?;
        let request = pb::FetchRequest {
            max_wait_ms: self.config.max_wait_ms(),
            min_bytes: self.config.fetch_min_bytes,
            max_bytes: self.config.fetch_max_bytes,
            topics: vec![pb::FetchTopic {
                topic: self.topic.to_string(),
                partitions: vec![pb::FetchPartition {
                    partition: self.partition,
                    fetch_offset: self.position,
                    partition_max_bytes: self.config.partition_max_bytes,
                    current_leader_epoch: Some(leader.leader_epoch),
                }],
            }],
        };
        let mut rpc = self.client.broker_client(&leader.address)?;
        self.client
            .unary("opening a fetch stream", rpc.fetch_stream(request))
            .await
    }

    /// This partition's records from `response`, noting its high watermark; empty when the
    /// response has no news for it.
    fn take_result(&mut self, response: pb::FetchResponse) -> Result<Bytes> {
        if let Some(error) = response.error {
            return Err(self.broker_error(error));
        }
        let result = response
            .topics
            .into_iter()
            .filter(|t| *t.topic == *self.topic)
            .flat_map(|t| t.partitions)
            .find(|p| p.partition == self.partition);
        let Some(result) = result else {
            return Ok(Bytes::new());
        };
        if let Some(error) = result.error {
            return Err(self.broker_error(error));
        }
        self.high_watermark = Some(result.high_watermark);
        self.log_start_offset = Some(result.log_start_offset);
        Ok(result.records)
    }

    /// Converts a broker error, taking in its leader hint.
    fn broker_error(&self, error: strom_proto::common::v1::Error) -> Error {
        if let Some(hint) = &error.leader {
            self.client
                .apply_leader_hint(&self.topic, self.partition, hint);
        }
        error.into()
    }

    /// Looks an offset up on the leader, retrying retriable failures.
    async fn list_offset(&self, spec: pb::OffsetSpec) -> Result<i64> {
        let mut retry = RetryBudget::new(&self.client, &self.config);
        loop {
            match self.try_list_offset(spec).await {
                Ok(offset) => return Ok(offset),
                Err(error) => retry.after(error, &self.client, &self.topic).await?,
            }
        }
    }

    async fn try_list_offset(&self, spec: pb::OffsetSpec) -> Result<i64> {
        let leader = self.client.leader(&self.topic, self.partition).await?;
        let request = pb::ListOffsetsRequest {
            topics: vec![pb::ListOffsetsTopic {
                topic: self.topic.to_string(),
                partitions: vec![pb::ListOffsetsPartition {
                    partition: self.partition,
                    spec: spec.into(),
                    timestamp_ms: 0,
                    current_leader_epoch: Some(leader.leader_epoch),
                }],
            }],
        };
        let mut rpc = self.client.broker_client(&leader.address)?;
        let response = self
            .client
            .unary("list offsets", rpc.list_offsets(request))
            .await?;
        if let Some(error) = response.error {
            return Err(self.broker_error(error));
        }
        let result = response
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .find(|p| p.partition == self.partition)
            .ok_or(Error::Protocol {
                reason: "the list offsets answer lacks the partition's result",
            })?;
        if let Some(error) = result.error {
            return Err(self.broker_error(error));
        }
        result.offset.ok_or(Error::Protocol {
            reason: "the list offsets answer has no offset",
        })
    }
}

/// Retries retriable failures with a backoff until `request_timeout` has passed since the
/// first one.
#[derive(Debug)]
struct RetryBudget {
    first_failure: Option<Instant>,
    limit: Duration,
    backoff: Duration,
}

impl RetryBudget {
    fn new(client: &Client, config: &ConsumerConfig) -> Self {
        Self {
            first_failure: None,
            limit: client.config().request_timeout,
            backoff: config.retry_backoff,
        }
    }

    /// Returns `error` when it is final; otherwise refreshes metadata if the leader may have
    /// moved, waits the backoff and returns `Ok` for another try.
    async fn after(&mut self, error: Error, client: &Client, topic: &str) -> Result<()> {
        let first = *self.first_failure.get_or_insert_with(Instant::now);
        if !error.is_retriable() || first.elapsed() >= self.limit {
            return Err(error);
        }
        tracing::debug!(topic, %error, "fetch failed; retrying");
        if error.needs_metadata_refresh()
            && let Err(refresh) = client.refresh(&[topic]).await
        {
            tracing::debug!(topic, error = %refresh, "metadata refresh failed");
        }
        tokio::time::sleep(self.backoff).await;
        Ok(())
    }
}

/// Splits concatenated batches into one `Bytes` per batch (sharing `records`), reading only
/// their headers; also returns the offset after the last batch.
fn split_batches(records: &Bytes) -> Result<(Vec<Bytes>, Option<i64>)> {
    let mut batches = Vec::new();
    let mut next = None;
    let mut at = 0;
    while at < records.len() {
        let rest = &records[at..];
        let size = match peek_batch_size(rest) {
            Some(size) => size?,
            None => {
                return Err(strom_record::Error::Truncated {
                    needed: strom_record::LOG_OVERHEAD,
                    available: rest.len(),
                }
                .into());
            }
        };
        if size > rest.len() {
            return Err(strom_record::Error::Truncated {
                needed: size,
                available: rest.len(),
            }
            .into());
        }
        let header = BatchHeader::parse(rest)?;
        next = Some(header.next_offset());
        batches.push(records.slice(at..at + size));
        at += size;
    }
    Ok((batches, next))
}

/// Decodes (and CRC-checks) every record at or after `position`, skipping control batches;
/// also returns the offset after the last batch.
fn decode(
    records: &Bytes,
    position: i64,
    topic: &Arc<str>,
    partition: i32,
) -> Result<(Vec<ConsumerRecord>, Option<i64>)> {
    let (batches, next) = split_batches(records)?;
    let mut out = Vec::new();
    for batch in batches {
        let iter = RecordIter::from_bytes(batch)?;
        if iter.header().is_control() {
            continue;
        }
        for record in iter {
            let record = record?;
            if record.offset < position {
                continue;
            }
            out.push(ConsumerRecord {
                topic: Arc::clone(topic),
                partition,
                offset: record.offset,
                timestamp: record.timestamp,
                key: record.key,
                value: record.value,
                headers: record
                    .headers
                    .into_iter()
                    .map(|h| (h.key, h.value))
                    .collect(),
            });
        }
    }
    Ok((out, next))
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use strom_record::{BatchBuilder, Compression, set_base_offset};

    use super::*;

    fn batch(base_offset: i64, values: &[&str], compression: Compression) -> Bytes {
        let mut builder = BatchBuilder::new(compression);
        for value in values {
            builder
                .append(7, Some(b"k"), Some(value.as_bytes()), &[("h", None)])
                .unwrap();
        }
        let mut bytes = BytesMut::from(&builder.build().unwrap()[..]);
        set_base_offset(&mut bytes, base_offset);
        bytes.freeze()
    }

    fn concat(parts: &[Bytes]) -> Bytes {
        parts.concat().into()
    }

    #[test]
    fn decoding_skips_records_below_the_position() {
        let records = concat(&[
            batch(10, &["a", "b", "c"], Compression::None),
            batch(13, &["d", "e"], Compression::Zstd),
        ]);
        let topic: Arc<str> = Arc::from("t");
        let (decoded, next) = decode(&records, 11, &topic, 2).unwrap();
        let offsets: Vec<i64> = decoded.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, [11, 12, 13, 14]);
        assert_eq!(next, Some(15));
        assert_eq!(decoded[0].value.as_deref(), Some(&b"b"[..]));
        assert_eq!(decoded[0].headers, [("h".to_owned(), None)]);
        assert_eq!(decoded[3].timestamp, 7);
        assert_eq!((&*decoded[3].topic, decoded[3].partition), ("t", 2));
    }

    #[test]
    fn batches_split_without_copying() {
        let first = batch(0, &["a"], Compression::None);
        let second = batch(1, &["b", "c"], Compression::Lz4);
        let records = concat(&[first.clone(), second.clone()]);
        let (batches, next) = split_batches(&records).unwrap();
        assert_eq!(batches, [first, second]);
        assert_eq!(next, Some(3));
        assert_eq!(split_batches(&Bytes::new()).unwrap(), (Vec::new(), None));
    }

    #[test]
    fn truncated_or_corrupt_batches_are_errors() {
        let whole = batch(0, &["a", "b"], Compression::None);
        let cut = whole.slice(..whole.len() - 1);
        assert!(matches!(split_batches(&cut), Err(Error::Record(_))));
        assert!(matches!(
            split_batches(&whole.slice(..5)),
            Err(Error::Record(_))
        ));
        let mut corrupt = BytesMut::from(&whole[..]);
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        assert!(matches!(
            decode(&corrupt.freeze(), 0, &Arc::from("t"), 0),
            Err(Error::Record(_))
        ));
    }
}
