//! The sender task of one partition: takes closed batches from the accumulator, stamps them
//! with the producer id and sequence, and pipelines them over one long-lived ProduceStream to
//! the partition's leader. The retry rules live in [`Pipeline`]; this file does the I/O.

use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use strom_proto::broker::v1 as pb;
use strom_proto::common::v1::{ErrorCode, LeaderHint};
use strom_record::NO_SEQUENCE;
use strom_types::{ProducerEpoch, ProducerId, Sequence};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::ProducerShared;
use super::accumulator::{OpenBatch, PartitionQueue, Take};
use super::delivery::{BatchAck, BatchOutcome};
use super::pipeline::{Batch, Finished, Pipeline};
use super::sequence::{self, Identity};
use crate::{Acks, Error, Result};

/// How long past `request_timeout` the sender waits for an answer before it counts the stream
/// as broken; the broker itself answers by `request_timeout`.
const ANSWER_GRACE: Duration = Duration::from_secs(2);

/// An open ProduceStream to the partition's leader.
#[derive(Debug)]
struct Connection {
    leader: i32,
    requests: mpsc::Sender<pb::ProduceStreamRequest>,
    responses: tonic::Streaming<pb::ProduceStreamResponse>,
}

/// The next batch to send.
enum Next {
    Retry(Batch),
    New(OpenBatch),
}

/// Drives one partition's batches from the accumulator to acknowledgement.
#[derive(Debug)]
pub(super) struct PartitionSender {
    shared: Arc<ProducerShared>,
    topic: Arc<str>,
    partition: i32,
    queue: Arc<PartitionQueue>,
    pipeline: Pipeline,
    identity: Option<Identity>,
    connection: Option<Connection>,
    next_correlation_id: u64,
    /// Every batch with a lower id was taken from the accumulator.
    taken_below: u64,
}

impl PartitionSender {
    pub(super) fn new(
        shared: Arc<ProducerShared>,
        topic: Arc<str>,
        partition: i32,
        queue: Arc<PartitionQueue>,
    ) -> Self {
        let pipeline = Pipeline::new(
            shared.config.max_in_flight_per_partition,
            shared.config.enable_idempotence,
        );
        Self {
            shared,
            topic,
            partition,
            queue,
            pipeline,
            identity: None,
            connection: None,
            next_correlation_id: 0,
            taken_below: 0,
        }
    }

    /// Runs until the producer is closed or dropped, then fails whatever is left with
    /// [`Error::Closed`].
    pub(super) async fn run(mut self) {
        let cancel = self.shared.cancel.clone();
        loop {
            let wake = tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                wake = self.step() => wake,
            };
            self.publish_progress();
            let sleep = async {
                match wake {
                    Some(at) => sleep_until(at).await,
                    None => pending().await,
                }
            };
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                message = next_message(&mut self.connection) => self.on_message(message),
                () = self.queue.wake.notified() => {}
                () = sleep => {}
            }
            self.publish_progress();
        }
        self.shut_down();
    }

    /// Does everything due now and returns when to look again (besides wake-ups and answers).
    async fn step(&mut self) -> Option<Instant> {
        let config = &self.shared.config;
        let (backoff, delivery_timeout) = (config.retry_backoff, config.delivery_timeout);
        let now = Instant::now();
        if self.pipeline.earliest_deadline().is_some_and(|d| now >= d) {
            let error = Error::Timeout {
                operation: "produce request",
                after: config.request_timeout + ANSWER_GRACE,
            };
            self.lose_connection(now, &error);
        }
        if self.pipeline.retry_at().is_some_and(|at| now >= at) {
            if self.pipeline.end_backoff() {
                self.refresh_leader().await;
            }
            let expired = self.pipeline.expire(Instant::now(), delivery_timeout);
            self.finish_all(expired);
        }
        if self.pipeline.needs_new_identity() && self.pipeline.retry_at().is_none() {
            match self.shared.client.init_producer_id().await {
                Ok((producer_id, producer_epoch)) => {
                    self.identity = Some(Identity {
                        producer_id,
                        producer_epoch,
                    });
                    self.pipeline.identity_reset();
                }
                Err(error) => {
                    tracing::warn!(topic = %self.topic, partition = self.partition, %error,
                        "could not get a new producer id");
                    self.pipeline.back_off(Instant::now(), backoff);
                }
            }
        }
        self.expire_buffered(Instant::now());
        let linger = self.fill().await;
        self.next_wake(linger)
    }

    /// Sends batches while the window has room; returns when the open batch will have
    /// lingered, if that is what stopped it.
    async fn fill(&mut self) -> Option<Instant> {
        loop {
            let now = Instant::now();
            if !self.pipeline.can_send(now) {
                return None;
            }
            let next = match self.pipeline.pop_retry() {
                Some(batch) => Next::Retry(batch),
                None => match self.queue.take(now, self.shared.config.linger) {
                    Take::Batch(open) => Next::New(open),
                    Take::LingerUntil(at) => return Some(at),
                    Take::Empty => return None,
                },
            };
            if let Err(error) = self.prepare().await {
                // Expected while a leader is being elected; the batch waits in order.
                tracing::debug!(topic = %self.topic, partition = self.partition, %error,
                    "not ready to send; backing off");
                match next {
                    Next::Retry(batch) => self.pipeline.unpop_retry(batch),
                    Next::New(open) => self.queue.put_back(open),
                }
                self.pipeline
                    .back_off(Instant::now(), self.shared.config.retry_backoff);
                return None;
            }
            let batch = match next {
                Next::Retry(batch) => batch,
                Next::New(open) => match self.build(open) {
                    Some(batch) => batch,
                    None => continue,
                },
            };
            self.send(batch);
        }
    }

    /// Opens the stream to the leader and gets the producer id, where missing.
    async fn prepare(&mut self) -> Result<()> {
        if self.shared.config.enable_idempotence && self.identity.is_none() {
            self.identity = Some(self.shared.identity().await?);
        }
        if self.connection.is_none() {
            self.connection = Some(self.connect().await?);
        }
        Ok(())
    }

    async fn connect(&self) -> Result<Connection> {
        let client = &self.shared.client;
        let leader = client.leader(&self.topic, self.partition).await?;
        let mut rpc = client.broker_client(&leader.address)?;
        let capacity = self.shared.config.max_in_flight_per_partition + 1;
        let (requests, outgoing) = mpsc::channel(capacity);
        let after = self.shared.config.request_timeout;
        let opened = tokio::time::timeout(after, rpc.produce_stream(ReceiverStream::new(outgoing)))
            .await
            .map_err(|_| Error::Timeout {
                operation: "opening a produce stream",
                after,
            })??;
        tracing::debug!(topic = %self.topic, partition = self.partition,
            leader = leader.broker_id, address = %leader.address, "opened produce stream");
        Ok(Connection {
            leader: leader.broker_id,
            requests,
            responses: opened.into_inner(),
        })
    }

    /// Builds a batch taken from the accumulator with the next sequence; a batch that cannot
    /// be built fails at once.
    fn build(&mut self, open: OpenBatch) -> Option<Batch> {
        self.taken_below = open.id + 1;
        let OpenBatch {
            id,
            builder,
            created,
            reserved,
            completion,
            ..
        } = open;
        let record_count = i32::try_from(builder.len()).unwrap_or(i32::MAX);
        let (builder, base_sequence) = match self.identity {
            Some(identity) if self.shared.config.enable_idempotence => {
                let base = self.pipeline.next_sequence();
                let builder = builder.producer(
                    ProducerId::new(identity.producer_id),
                    ProducerEpoch::new(identity.producer_epoch),
                    Sequence::new(base),
                );
                (builder, base)
            }
            _ => (builder, NO_SEQUENCE),
        };
        match builder.build() {
            Ok(records) => {
                if base_sequence != NO_SEQUENCE {
                    self.pipeline.advance_sequence(record_count);
                }
                Some(Batch {
                    id,
                    records,
                    record_count,
                    base_sequence,
                    created,
                    reserved,
                    completion: Some(completion),
                    restamp: false,
                })
            }
            Err(error) => {
                self.release(reserved);
                completion.complete(Err(error.into()));
                None
            }
        }
    }

    /// Puts one batch on the stream as its own produce request.
    fn send(&mut self, mut batch: Batch) {
        let now = Instant::now();
        if batch.restamp
            && let Some(identity) = self.identity
        {
            match sequence::restamp(&batch.records, identity, batch.base_sequence) {
                Ok(records) => {
                    batch.records = records;
                    batch.restamp = false;
                }
                Err(error) => {
                    self.finish(Finished {
                        batch,
                        outcome: Err(error),
                    });
                    return;
                }
            }
        }
        let config = &self.shared.config;
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let request = pb::ProduceStreamRequest {
            correlation_id,
            request: Some(pb::ProduceRequest {
                acks: config.acks.to_proto().into(),
                timeout_ms: config.timeout_ms(),
                topics: vec![pb::ProduceTopic {
                    topic: self.topic.to_string(),
                    partitions: vec![pb::ProducePartition {
                        partition: self.partition,
                        records: batch.records.clone(),
                    }],
                }],
            }),
        };
        if config.acks == Acks::None
            && let Some(completion) = batch.completion.take()
        {
            completion.complete(Ok(BatchAck::UNKNOWN_OFFSET));
        }
        let deadline = now + config.request_timeout + ANSWER_GRACE;
        let queued = self
            .connection
            .as_ref()
            .is_some_and(|c| c.requests.try_send(request).is_ok());
        self.pipeline.sent(correlation_id, deadline, batch);
        if !queued {
            let error = Error::Transport(Status::unavailable("the produce stream is closed"));
            self.lose_connection(now, &error);
        }
    }

    /// Handles the next item of the response stream.
    fn on_message(&mut self, message: Option<Result<pb::ProduceStreamResponse, Status>>) {
        let now = Instant::now();
        let answer = match message {
            Some(Ok(answer)) => answer,
            Some(Err(status)) => return self.lose_connection(now, &Error::Transport(status)),
            None => {
                let status = Status::unavailable("the broker ended the produce stream");
                return self.lose_connection(now, &Error::Transport(status));
            }
        };
        let (outcome, hint) = batch_outcome(answer.response);
        if let Some(hint) = &hint {
            self.shared
                .client
                .apply_leader_hint(&self.topic, self.partition, hint);
        }
        if let Err(error) = &outcome {
            tracing::debug!(topic = %self.topic, partition = self.partition, %error,
                correlation_id = answer.correlation_id, "produce request failed");
        }
        if self.shared.config.acks == Acks::None {
            if let Some(batch) = self.pipeline.forget(answer.correlation_id) {
                self.release(batch.reserved);
            }
            return;
        }
        let backoff = self.shared.config.retry_backoff;
        let finished = self
            .pipeline
            .answer(answer.correlation_id, outcome, now, backoff);
        self.finish_all(finished);
    }

    /// Drops the stream; outstanding batches are resent on a new one after a backoff.
    fn lose_connection(&mut self, now: Instant, error: &Error) {
        tracing::debug!(topic = %self.topic, partition = self.partition, %error,
            in_flight = self.pipeline.in_flight(), "produce stream lost");
        self.connection = None;
        let backoff = self.shared.config.retry_backoff;
        if self.shared.config.acks == Acks::None {
            for batch in self.pipeline.forget_in_flight() {
                self.release(batch.reserved);
            }
            self.pipeline.back_off(now, backoff);
            return;
        }
        let finished = self.pipeline.connection_lost(now, backoff);
        self.finish_all(finished);
    }

    /// Refreshes metadata and drops an idle stream whose broker no longer leads.
    async fn refresh_leader(&mut self) {
        let client = &self.shared.client;
        if let Err(error) = client.refresh(&[&*self.topic]).await {
            tracing::debug!(topic = %self.topic, %error, "metadata refresh failed");
        }
        if self.pipeline.in_flight() > 0 {
            return;
        }
        let leader = client
            .leader(&self.topic, self.partition)
            .await
            .ok()
            .map(|l| l.broker_id);
        if self
            .connection
            .as_ref()
            .is_some_and(|c| Some(c.leader) != leader)
        {
            self.connection = None;
        }
    }

    /// Fails batches that waited in the accumulator past their delivery timeout.
    fn expire_buffered(&mut self, now: Instant) {
        let after = self.shared.config.delivery_timeout;
        let Some(cutoff) = now.checked_sub(after) else {
            return;
        };
        while let Some(open) = self.queue.pop_created_before(cutoff) {
            self.taken_below = open.id + 1;
            self.release(open.reserved);
            open.completion.complete(Err(Error::Timeout {
                operation: "delivery",
                after,
            }));
        }
    }

    fn next_wake(&self, linger: Option<Instant>) -> Option<Instant> {
        let expiry = self
            .queue
            .oldest_created()
            .map(|created| created + self.shared.config.delivery_timeout);
        [
            linger,
            self.pipeline.retry_at(),
            self.pipeline.earliest_deadline(),
            expiry,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Tells flush which batches are finished.
    fn publish_progress(&self) {
        let below = self.pipeline.min_id().unwrap_or(self.taken_below);
        self.queue.set_finished_below(below);
    }

    fn finish_all(&self, finished: Vec<Finished>) {
        for item in finished {
            self.finish(item);
        }
    }

    fn finish(&self, finished: Finished) {
        let Finished { batch, outcome } = finished;
        self.release(batch.reserved);
        if let Err(error) = &outcome {
            tracing::warn!(topic = %self.topic, partition = self.partition, %error,
                records = batch.record_count, "batch failed");
        }
        if let Some(completion) = batch.completion {
            completion.complete(outcome);
        }
    }

    fn release(&self, reserved: usize) {
        self.shared.memory.add_permits(reserved);
    }

    fn shut_down(mut self) {
        for open in self.queue.shut() {
            self.release(open.reserved);
            open.completion.complete(Err(Error::Closed));
        }
        for batch in self.pipeline.drain_all() {
            self.release(batch.reserved);
            if let Some(completion) = batch.completion {
                completion.complete(Err(Error::Closed));
            }
        }
        self.queue.set_finished_below(u64::MAX);
    }
}

/// The next item of the response stream, or never when there is no stream.
async fn next_message(
    connection: &mut Option<Connection>,
) -> Option<Result<pb::ProduceStreamResponse, Status>> {
    match connection {
        Some(connection) => connection.responses.next().await,
        None => pending().await,
    }
}

/// The outcome of a one-batch produce answer, and the leader hint of its error, if any.
fn batch_outcome(response: Option<pb::ProduceResponse>) -> (BatchOutcome, Option<LeaderHint>) {
    let Some(response) = response else {
        let reason = "a produce stream answer carried no response";
        return (Err(Error::Protocol { reason }), None);
    };
    if let Some(error) = response.error {
        let hint = error.leader.clone();
        return (Err(error.into()), hint);
    }
    let result = response
        .topics
        .into_iter()
        .next()
        .and_then(|topic| topic.partitions.into_iter().next());
    let Some(result) = result else {
        let reason = "the produce answer lacks the partition's result";
        return (Err(Error::Protocol { reason }), None);
    };
    if let Some(error) = result.error {
        // Written before, offset forgotten: delivered, as Kafka's producer treats it.
        if error.code() == ErrorCode::DuplicateSequenceNumber {
            return (Ok(BatchAck::UNKNOWN_OFFSET), None);
        }
        let hint = error.leader.clone();
        return (Err(error.into()), hint);
    }
    match result.base_offset {
        Some(base_offset) => (
            Ok(BatchAck {
                base_offset,
                log_append_time: result.log_append_time_ms,
            }),
            None,
        ),
        None => {
            let reason = "the produce answer has no base offset";
            (Err(Error::Protocol { reason }), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use strom_proto::common::v1::Error as PbError;

    use super::*;

    fn answer(result: pb::ProducePartitionResult) -> Option<pb::ProduceResponse> {
        Some(pb::ProduceResponse {
            error: None,
            topics: vec![pb::ProduceTopicResult {
                topic: "t".into(),
                partitions: vec![result],
            }],
        })
    }

    #[test]
    fn answers_map_to_batch_outcomes() {
        let ok = answer(pb::ProducePartitionResult {
            base_offset: Some(17),
            log_append_time_ms: Some(5),
            ..Default::default()
        });
        let (outcome, hint) = batch_outcome(ok);
        assert_eq!(
            outcome.unwrap(),
            BatchAck {
                base_offset: 17,
                log_append_time: Some(5)
            }
        );
        assert!(hint.is_none());

        let moved = PbError::new(ErrorCode::NotLeaderOrFollower, "moved")
            .with_leader(LeaderHint::partition_leader(3, 9, "b3:1"));
        let (outcome, hint) = batch_outcome(answer(pb::ProducePartitionResult {
            error: Some(moved),
            ..Default::default()
        }));
        assert_eq!(
            outcome.unwrap_err().code(),
            Some(ErrorCode::NotLeaderOrFollower)
        );
        assert_eq!(hint.unwrap().leader_id, 3);

        let duplicate = PbError::new(ErrorCode::DuplicateSequenceNumber, "");
        let (outcome, _) = batch_outcome(answer(pb::ProducePartitionResult {
            error: Some(duplicate),
            ..Default::default()
        }));
        assert_eq!(outcome.unwrap(), BatchAck::UNKNOWN_OFFSET);
    }

    #[test]
    fn request_level_errors_and_missing_results_fail_the_batch() {
        let (outcome, _) = batch_outcome(Some(pb::ProduceResponse {
            error: Some(PbError::new(ErrorCode::InvalidRequiredAcks, "")),
            topics: Vec::new(),
        }));
        assert_eq!(
            outcome.unwrap_err().code(),
            Some(ErrorCode::InvalidRequiredAcks)
        );
        assert!(matches!(
            batch_outcome(Some(pb::ProduceResponse::default())).0,
            Err(Error::Protocol { .. })
        ));
        assert!(matches!(batch_outcome(None).0, Err(Error::Protocol { .. })));
        let no_offset = answer(pb::ProducePartitionResult::default());
        assert!(matches!(
            batch_outcome(no_offset).0,
            Err(Error::Protocol { .. })
        ));
    }
}
