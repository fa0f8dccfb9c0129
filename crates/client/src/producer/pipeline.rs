//! One partition's window of sent batches and the rules for retrying them, without I/O.
//!
//! Batches are sent in id order, which is also sequence order. Up to `max_in_flight` are
//! outstanding at once. The rules:
//!
//! - **Retriable failure** (see [`Error::is_retriable`]): the batch moves to the retry list.
//!   Nothing new is sent until every outstanding batch has answered ("draining"), because
//!   the broker must see sequences in order. Then, after `retry_backoff` and a metadata
//!   refresh, the retry list is resent oldest first with the same bytes, ahead of new
//!   batches.
//! - **OUT_OF_ORDER_SEQUENCE_NUMBER** is retriable while an earlier batch of the partition is
//!   failing or still unanswered: that batch was not written, so this one could not be.
//! - **Fatal broker error** (the batch was not appended): the batch fails. With idempotence,
//!   every later batch's sequence moves down by the failed batch's record count, as Kafka's
//!   producer does, so the broker sees no gap; outstanding later batches come back out of
//!   order and are resent restamped.
//! - **Unresolved sequence state** (a fatal sequence or producer-id error, an answer that
//!   says nothing certain, or a sent batch outliving its delivery timeout): the partition is
//!   "poisoned". Outstanding batches that fail are failed, not retried; once all have
//!   answered, the retry list fails too and the partition starts over with a new producer id
//!   from sequence 0. Without idempotence only the expired batches fail.
//! - **Lost connection**: every outstanding batch joins the retry list.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use strom_proto::common::v1::ErrorCode;
use tokio::time::Instant;

use super::delivery::{BatchOutcome, Completion};
use super::sequence;
use crate::Error;

/// A built batch on its way to the broker.
#[derive(Debug)]
pub(crate) struct Batch {
    /// Position in the partition's creation order.
    pub(crate) id: u64,
    /// The whole RecordBatch v2.
    pub(crate) records: Bytes,
    /// Records in the batch.
    pub(crate) record_count: i32,
    /// The first record's sequence number (unused without idempotence).
    pub(crate) base_sequence: i32,
    /// When the first record was appended; the delivery timeout counts from here.
    pub(crate) created: Instant,
    /// Buffer-memory permits to give back when the batch finishes.
    pub(crate) reserved: usize,
    /// Reports the outcome; `None` once reported early (acks=none).
    pub(crate) completion: Option<Completion>,
    /// The header must be rewritten before the next send: its sequence moved.
    pub(crate) restamp: bool,
}

/// A batch whose outcome is final.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) batch: Batch,
    pub(crate) outcome: BatchOutcome,
}

#[derive(Debug)]
struct InFlight {
    correlation_id: u64,
    /// When the answer is overdue and the connection counts as broken.
    deadline: Instant,
    batch: Batch,
}

/// What a fatal error means for the partition's sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SequenceImpact {
    /// The batch was certainly not written: later sequences move down.
    Shift,
    /// Nobody knows what the broker has: start over with a new producer id.
    Unresolved,
}

fn sequence_impact(error: &Error) -> SequenceImpact {
    match error {
        Error::Broker { code, .. } => match code {
            ErrorCode::OutOfOrderSequenceNumber
            | ErrorCode::UnknownProducerId
            | ErrorCode::InvalidProducerEpoch
            | ErrorCode::DuplicateSequenceNumber => SequenceImpact::Unresolved,
            _ => SequenceImpact::Shift,
        },
        _ => SequenceImpact::Unresolved,
    }
}

/// The in-flight window and retry state of one partition.
#[derive(Debug)]
pub(crate) struct Pipeline {
    max_in_flight: usize,
    idempotent: bool,
    /// Ascending by id.
    in_flight: Vec<InFlight>,
    /// Ascending by id.
    retry: VecDeque<Batch>,
    /// A batch failed while others were outstanding; send nothing until they answer.
    draining: bool,
    /// Sending resumes at this instant (after a failure's backoff).
    retry_at: Option<Instant>,
    /// Refresh metadata before resuming.
    refresh_due: bool,
    /// Set while the broker's sequence state for this producer is unknown.
    poison: Option<Error>,
    /// Sending waits for a new producer id.
    new_identity_needed: bool,
    next_sequence: i32,
}

impl Pipeline {
    pub(crate) fn new(max_in_flight: usize, idempotent: bool) -> Self {
        Self {
            max_in_flight,
            idempotent,
            in_flight: Vec::with_capacity(max_in_flight),
            retry: VecDeque::new(),
            draining: false,
            retry_at: None,
            refresh_due: false,
            poison: None,
            new_identity_needed: false,
            next_sequence: 0,
        }
    }

    /// Whether another batch may be sent at `now`.
    pub(crate) fn can_send(&self, now: Instant) -> bool {
        !self.draining
            && !self.new_identity_needed
            && self.in_flight.len() < self.max_in_flight
            && self.retry_at.is_none_or(|at| now >= at)
    }

    /// When sending resumes after a backoff.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Ends the backoff; says whether metadata should be refreshed before resending.
    pub(crate) fn end_backoff(&mut self) -> bool {
        self.retry_at = None;
        std::mem::take(&mut self.refresh_due)
    }

    /// Pauses sending for `backoff` and asks for a metadata refresh (e.g. a connect failed).
    pub(crate) fn back_off(&mut self, now: Instant, backoff: Duration) {
        let until = now + backoff;
        self.retry_at = Some(self.retry_at.map_or(until, |at| at.max(until)));
        self.refresh_due = true;
    }

    /// Whether batches wait to be resent.
    #[cfg(test)]
    pub(crate) fn has_retries(&self) -> bool {
        !self.retry.is_empty()
    }

    /// The oldest batch waiting to be resent.
    pub(crate) fn pop_retry(&mut self) -> Option<Batch> {
        self.retry.pop_front()
    }

    /// Puts a batch taken with [`pop_retry`](Self::pop_retry) back, unsent.
    pub(crate) fn unpop_retry(&mut self, batch: Batch) {
        self.retry.push_front(batch);
    }

    /// The sequence number of the next new batch's first record.
    pub(crate) fn next_sequence(&self) -> i32 {
        self.next_sequence
    }

    /// Moves the next sequence past a new batch of `count` records.
    pub(crate) fn advance_sequence(&mut self, count: i32) {
        self.next_sequence = sequence::add(self.next_sequence, count);
    }

    /// Whether sending waits for a new producer id.
    pub(crate) fn needs_new_identity(&self) -> bool {
        self.new_identity_needed
    }

    /// A new producer id is in place: sequences start over at 0.
    pub(crate) fn identity_reset(&mut self) {
        self.new_identity_needed = false;
        self.next_sequence = 0;
    }

    /// Records that `batch` was sent with `correlation_id` and must be answered by
    /// `deadline`.
    pub(crate) fn sent(&mut self, correlation_id: u64, deadline: Instant, batch: Batch) {
        let at = self.in_flight.partition_point(|f| f.batch.id < batch.id);
        self.in_flight.insert(
            at,
            InFlight {
                correlation_id,
                deadline,
                batch,
            },
        );
    }

    /// Outstanding batches.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The earliest answer deadline of the outstanding batches.
    pub(crate) fn earliest_deadline(&self) -> Option<Instant> {
        self.in_flight.iter().map(|f| f.deadline).min()
    }

    /// The lowest id of a batch not yet finished.
    pub(crate) fn min_id(&self) -> Option<u64> {
        let in_flight = self.in_flight.first().map(|f| f.batch.id);
        let retry = self.retry.front().map(|b| b.id);
        in_flight.into_iter().chain(retry).min()
    }

    /// Removes an outstanding batch without judging its answer (acks=none).
    pub(crate) fn forget(&mut self, correlation_id: u64) -> Option<Batch> {
        let at = self
            .in_flight
            .iter()
            .position(|f| f.correlation_id == correlation_id)?;
        Some(self.in_flight.remove(at).batch)
    }

    /// Removes every outstanding batch without judging them (acks=none).
    pub(crate) fn forget_in_flight(&mut self) -> Vec<Batch> {
        self.in_flight.drain(..).map(|f| f.batch).collect()
    }

    /// Takes in the broker's answer for `correlation_id`; returns the batches whose outcome
    /// is now final. An unknown correlation id (from a dropped connection) is ignored.
    pub(crate) fn answer(
        &mut self,
        correlation_id: u64,
        outcome: BatchOutcome,
        now: Instant,
        backoff: Duration,
    ) -> Vec<Finished> {
        let Some(batch) = self.forget(correlation_id) else {
            return Vec::new();
        };
        let mut finished = Vec::new();
        match outcome {
            Ok(ack) => finished.push(Finished {
                batch,
                outcome: Ok(ack),
            }),
            Err(error) if self.poison.is_some() => finished.push(Finished {
                batch,
                outcome: Err(error),
            }),
            Err(error) if self.is_retriable(&error, batch.id) => {
                self.insert_retry(batch);
                self.draining = true;
            }
            Err(error) => {
                if self.idempotent {
                    match sequence_impact(&error) {
                        SequenceImpact::Shift => self.shift_after(batch.id, batch.record_count),
                        SequenceImpact::Unresolved => self.poison = Some(error.clone()),
                    }
                }
                finished.push(Finished {
                    batch,
                    outcome: Err(error),
                });
                self.draining = true;
            }
        }
        if self.draining && self.in_flight.is_empty() {
            finished.extend(self.drained(now, backoff));
        }
        finished
    }

    /// The connection broke: every outstanding batch will be resent after `backoff`.
    pub(crate) fn connection_lost(&mut self, now: Instant, backoff: Duration) -> Vec<Finished> {
        for in_flight in std::mem::take(&mut self.in_flight) {
            self.insert_retry(in_flight.batch);
        }
        self.drained(now, backoff)
    }

    /// Fails the batches waiting to be resent once one of them has outlived
    /// `delivery_timeout`. With idempotence all of them fail and the partition starts over
    /// with a new producer id, since nobody knows which were written.
    pub(crate) fn expire(&mut self, now: Instant, delivery_timeout: Duration) -> Vec<Finished> {
        let expired = |b: &Batch| now >= b.created + delivery_timeout;
        if !self.retry.iter().any(expired) {
            return Vec::new();
        }
        let error = Error::Timeout {
            operation: "delivery",
            after: delivery_timeout,
        };
        if self.idempotent {
            self.new_identity_needed = true;
            return fail_all(self.retry.drain(..), &error);
        }
        let (dead, alive): (Vec<Batch>, Vec<Batch>) = self.retry.drain(..).partition(expired);
        self.retry = alive.into();
        fail_all(dead, &error)
    }

    /// Removes every batch, for shutdown.
    pub(crate) fn drain_all(&mut self) -> Vec<Batch> {
        let mut all = self.forget_in_flight();
        all.extend(self.retry.drain(..));
        all
    }

    /// Whether a failed batch should be resent.
    fn is_retriable(&self, error: &Error, id: u64) -> bool {
        match error {
            Error::Broker {
                code: ErrorCode::OutOfOrderSequenceNumber,
                ..
            } => {
                self.draining
                    || self.retry.iter().any(|b| b.id < id)
                    || self.in_flight.iter().any(|f| f.batch.id < id)
            }
            error => error.is_retriable(),
        }
    }

    fn insert_retry(&mut self, batch: Batch) {
        let at = self.retry.partition_point(|b| b.id < batch.id);
        self.retry.insert(at, batch);
    }

    /// Moves the sequence of every batch after `id` down by `count`.
    fn shift_after(&mut self, id: u64, count: i32) {
        let later = self
            .in_flight
            .iter_mut()
            .map(|f| &mut f.batch)
            .chain(self.retry.iter_mut())
            .filter(|b| b.id > id);
        for batch in later {
            batch.base_sequence = sequence::add(batch.base_sequence, -count);
            batch.restamp = true;
        }
        self.next_sequence = sequence::add(self.next_sequence, -count);
    }

    /// Nothing is outstanding any more: schedule the resend, or settle a poisoned state.
    fn drained(&mut self, now: Instant, backoff: Duration) -> Vec<Finished> {
        self.draining = false;
        if let Some(error) = self.poison.take() {
            self.new_identity_needed = true;
            return fail_all(self.retry.drain(..), &error);
        }
        if !self.retry.is_empty() {
            self.back_off(now, backoff);
        }
        Vec::new()
    }
}

fn fail_all(batches: impl IntoIterator<Item = Batch>, error: &Error) -> Vec<Finished> {
    batches
        .into_iter()
        .map(|batch| Finished {
            batch,
            outcome: Err(error.clone()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producer::delivery::BatchAck;

    const BACKOFF: Duration = Duration::from_millis(100);

    fn batch(id: u64, base_sequence: i32, record_count: i32, created: Instant) -> Batch {
        Batch {
            id,
            records: Bytes::from(vec![id as u8; 4]),
            record_count,
            base_sequence,
            created,
            reserved: 0,
            completion: None,
            restamp: false,
        }
    }

    /// A pipeline with batches 0, 1 and 2 of 10 records each in flight, correlation id = id.
    fn three_in_flight(now: Instant) -> Pipeline {
        let mut pipeline = Pipeline::new(5, true);
        for id in 0..3 {
            let b = batch(id, pipeline.next_sequence(), 10, now);
            pipeline.advance_sequence(10);
            pipeline.sent(id, now + BACKOFF, b);
        }
        pipeline
    }

    fn ack(base_offset: i64) -> BatchOutcome {
        Ok(BatchAck {
            base_offset,
            log_append_time: None,
        })
    }

    fn broker(code: ErrorCode) -> BatchOutcome {
        Err(Error::broker(code, "test"))
    }

    fn ids(finished: &[Finished]) -> Vec<u64> {
        finished.iter().map(|f| f.batch.id).collect()
    }

    #[test]
    fn retriable_failures_drain_then_resend_in_order_with_the_same_bytes() {
        let now = Instant::now();
        let mut pipeline = three_in_flight(now);
        assert!(pipeline.can_send(now));
        let done = pipeline.answer(0, broker(ErrorCode::NotEnoughReplicas), now, BACKOFF);
        assert!(done.is_empty());
        assert!(!pipeline.can_send(now), "sending waits while draining");
        // Later batches were rejected because batch 0 was not written: retried too.
        assert!(
            pipeline
                .answer(2, broker(ErrorCode::OutOfOrderSequenceNumber), now, BACKOFF)
                .is_empty()
        );
        assert!(
            pipeline
                .answer(1, broker(ErrorCode::OutOfOrderSequenceNumber), now, BACKOFF)
                .is_empty()
        );
        assert_eq!(pipeline.retry_at(), Some(now + BACKOFF));
        assert!(!pipeline.can_send(now));
        assert!(pipeline.can_send(now + BACKOFF));
        assert!(pipeline.end_backoff(), "a metadata refresh comes first");
        let resent: Vec<(u64, i32, bool)> = std::iter::from_fn(|| pipeline.pop_retry())
            .map(|b| {
                assert_eq!(b.records[0], b.id as u8);
                (b.id, b.base_sequence, b.restamp)
            })
            .collect();
        assert_eq!(resent, [(0, 0, false), (1, 10, false), (2, 20, false)]);
        assert_eq!(pipeline.next_sequence(), 30);
    }

    #[test]
    fn out_of_order_answers_are_retried_while_an_earlier_batch_is_unanswered() {
        let now = Instant::now();
        let mut pipeline = three_in_flight(now);
        // Batch 1's rejection arrives before batch 0's failure.
        assert!(
            pipeline
                .answer(1, broker(ErrorCode::OutOfOrderSequenceNumber), now, BACKOFF)
                .is_empty()
        );
        assert!(
            pipeline
                .answer(0, broker(ErrorCode::RequestTimedOut), now, BACKOFF)
                .is_empty()
        );
        let done = pipeline.answer(2, ack(100), now, BACKOFF);
        assert_eq!(ids(&done), [2]);
        assert!(pipeline.has_retries());
        assert_eq!(pipeline.min_id(), Some(0));
    }

    #[test]
    fn an_unexplained_sequence_gap_fails_and_restarts_with_a_new_producer_id() {
        let now = Instant::now();
        let mut pipeline = Pipeline::new(5, true);
        pipeline.sent(7, now + BACKOFF, batch(0, 0, 10, now));
        pipeline.advance_sequence(10);
        let done = pipeline.answer(7, broker(ErrorCode::OutOfOrderSequenceNumber), now, BACKOFF);
        assert_eq!(ids(&done), [0]);
        assert!(done[0].outcome.is_err());
        assert!(pipeline.needs_new_identity());
        assert!(!pipeline.can_send(now));
        pipeline.identity_reset();
        assert!(pipeline.can_send(now));
        assert_eq!(pipeline.next_sequence(), 0);
    }

    #[test]
    fn poisoned_partitions_fail_outstanding_failures_instead_of_retrying() {
        let now = Instant::now();
        let mut pipeline = three_in_flight(now);
        let done = pipeline.answer(0, broker(ErrorCode::UnknownProducerId), now, BACKOFF);
        assert_eq!(ids(&done), [0]);
        let done = pipeline.answer(1, ack(5), now, BACKOFF);
        assert!(done[0].outcome.is_ok());
        let done = pipeline.answer(2, broker(ErrorCode::OutOfOrderSequenceNumber), now, BACKOFF);
        assert_eq!(ids(&done), [2]);
        assert!(done[0].outcome.is_err());
        assert!(pipeline.needs_new_identity());
        assert!(!pipeline.has_retries());
    }

    #[test]
    fn a_rejected_batch_moves_later_sequences_down() {
        let now = Instant::now();
        let mut pipeline = three_in_flight(now);
        let done = pipeline.answer(0, broker(ErrorCode::MessageTooLarge), now, BACKOFF);
        assert_eq!(ids(&done), [0]);
        assert_eq!(
            done[0].outcome.as_ref().unwrap_err().code(),
            Some(ErrorCode::MessageTooLarge)
        );
        assert_eq!(pipeline.next_sequence(), 20);
        assert!(
            pipeline
                .answer(1, broker(ErrorCode::OutOfOrderSequenceNumber), now, BACKOFF)
                .is_empty()
        );
        assert!(
            pipeline
                .answer(2, broker(ErrorCode::OutOfOrderSequenceNumber), now, BACKOFF)
                .is_empty()
        );
        assert!(!pipeline.needs_new_identity());
        pipeline.end_backoff();
        let first = pipeline.pop_retry().unwrap();
        assert_eq!((first.id, first.base_sequence, first.restamp), (1, 0, true));
        assert_eq!(pipeline.pop_retry().unwrap().base_sequence, 10);
    }

    #[test]
    fn without_idempotence_failures_never_touch_sequences() {
        let now = Instant::now();
        let mut pipeline = Pipeline::new(5, false);
        pipeline.sent(0, now, batch(0, -1, 3, now));
        pipeline.sent(1, now, batch(1, -1, 3, now));
        let done = pipeline.answer(0, broker(ErrorCode::CorruptMessage), now, BACKOFF);
        assert_eq!(ids(&done), [0]);
        assert!(pipeline.answer(1, ack(0), now, BACKOFF)[0].outcome.is_ok());
        assert!(!pipeline.needs_new_identity());
        assert!(pipeline.can_send(now));
    }

    #[test]
    fn lost_connections_resend_everything_outstanding() {
        let now = Instant::now();
        let mut pipeline = three_in_flight(now);
        assert_eq!(pipeline.earliest_deadline(), Some(now + BACKOFF));
        assert!(pipeline.connection_lost(now, BACKOFF).is_empty());
        assert_eq!(pipeline.in_flight(), 0);
        assert_eq!(pipeline.retry_at(), Some(now + BACKOFF));
        // An answer on the old connection is ignored.
        assert!(pipeline.answer(1, ack(0), now, BACKOFF).is_empty());
        let order: Vec<u64> = std::iter::from_fn(|| pipeline.pop_retry())
            .map(|b| b.id)
            .collect();
        assert_eq!(order, [0, 1, 2]);
    }

    #[test]
    fn expired_retries_fail_together_when_idempotent() {
        let now = Instant::now();
        let timeout = Duration::from_secs(120);
        let mut pipeline = Pipeline::new(5, true);
        pipeline.sent(0, now, batch(0, 0, 1, now));
        pipeline.sent(1, now, batch(1, 1, 1, now + timeout));
        pipeline.connection_lost(now, BACKOFF);
        assert!(pipeline.expire(now + BACKOFF, timeout).is_empty());
        let done = pipeline.expire(now + timeout, timeout);
        assert_eq!(ids(&done), [0, 1]);
        assert!(matches!(
            done[1].outcome,
            Err(Error::Timeout {
                operation: "delivery",
                ..
            })
        ));
        assert!(pipeline.needs_new_identity());

        let mut pipeline = Pipeline::new(5, false);
        pipeline.sent(0, now, batch(0, -1, 1, now));
        pipeline.sent(1, now, batch(1, -1, 1, now + timeout));
        pipeline.connection_lost(now, BACKOFF);
        assert_eq!(ids(&pipeline.expire(now + timeout, timeout)), [0]);
        assert_eq!(pipeline.min_id(), Some(1));
    }

    #[test]
    fn the_window_is_bounded() {
        let now = Instant::now();
        let mut pipeline = Pipeline::new(2, true);
        pipeline.sent(0, now, batch(0, 0, 1, now));
        assert!(pipeline.can_send(now));
        pipeline.sent(1, now, batch(1, 1, 1, now));
        assert!(!pipeline.can_send(now));
        assert_eq!(pipeline.answer(0, ack(0), now, BACKOFF).len(), 1);
        assert!(pipeline.can_send(now));
        assert_eq!(pipeline.drain_all().len(), 1);
    }

    #[test]
    fn sequences_wrap_to_zero() {
        let mut pipeline = Pipeline::new(1, true);
        pipeline.advance_sequence(i32::MAX);
        assert_eq!(pipeline.next_sequence(), i32::MAX);
        pipeline.advance_sequence(3);
        assert_eq!(pipeline.next_sequence(), 2);
    }
}
