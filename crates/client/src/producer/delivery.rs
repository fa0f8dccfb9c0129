//! Delivery outcomes: one shared result per batch, one future per record.
//!
//! A batch's outcome is sent once through a oneshot channel; every record's
//! [`DeliveryFuture`] holds a shared handle on its receiver plus the record's index, so
//! `send` allocates nothing per record for its future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::Shared;

use crate::{Error, RecordMetadata, Result};

/// What the broker reported for a whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchAck {
    /// The offset of the batch's first record, or -1 when not known.
    pub(crate) base_offset: i64,
    /// The broker's append time, when the topic uses LogAppendTime.
    pub(crate) log_append_time: Option<i64>,
}

impl BatchAck {
    /// An acknowledgement without an offset (acks=none, or a forgotten duplicate).
    pub(crate) const UNKNOWN_OFFSET: BatchAck = BatchAck {
        base_offset: -1,
        log_append_time: None,
    };
}

/// A batch's outcome, shared by all of its records.
pub(crate) type BatchOutcome = Result<BatchAck>;

/// The receiving side, cloned into every record's future.
pub(crate) type BatchDelivery = Shared<oneshot::Receiver<BatchOutcome>>;

/// The sending side; dropping it unsent resolves the records with [`Error::Closed`].
#[derive(Debug)]
pub(crate) struct Completion(oneshot::Sender<BatchOutcome>);

impl Completion {
    /// Reports the batch's outcome to all of its records.
    pub(crate) fn complete(self, outcome: BatchOutcome) {
        // Nobody waiting is fine: the caller dropped the futures.
        let _ = self.0.send(outcome);
    }
}

/// A new outcome channel for one batch.
pub(crate) fn batch_channel() -> (Completion, BatchDelivery) {
    let (sender, receiver) = oneshot::channel();
    (Completion(sender), receiver.shared())
}

/// Resolves to where one sent record was written, once its batch is acknowledged (or failed).
///
/// Dropping it does not cancel the send.
#[derive(Debug)]
#[must_use = "the outcome of a send is only known by awaiting its DeliveryFuture"]
pub struct DeliveryFuture {
    delivery: BatchDelivery,
    topic: Arc<str>,
    partition: i32,
    index: i32,
    timestamp: i64,
}

impl DeliveryFuture {
    pub(crate) fn new(
        delivery: BatchDelivery,
        topic: Arc<str>,
        partition: i32,
        index: i32,
        timestamp: i64,
    ) -> Self {
        Self {
            delivery,
            topic,
            partition,
            index,
            timestamp,
        }
    }

    /// The partition the record was appended to.
    #[must_use]
    pub fn partition(&self) -> i32 {
        self.partition
    }

    fn metadata(&self, ack: BatchAck) -> RecordMetadata {
        let offset = if ack.base_offset < 0 {
            -1
        } else {
            ack.base_offset + i64::from(self.index)
        };
        RecordMetadata {
            topic: self.topic.to_string(),
            partition: self.partition,
            offset,
            timestamp: ack.log_append_time.unwrap_or(self.timestamp),
        }
    }
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match this.delivery.poll_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(oneshot::Canceled)) => Poll::Ready(Err(Error::Closed)),
            Poll::Ready(Ok(Err(error))) => Poll::Ready(Err(error)),
            Poll::Ready(Ok(Ok(ack))) => Poll::Ready(Ok(this.metadata(ack))),
        }
    }
}

#[cfg(test)]
mod tests {
    use strom_proto::common::v1::ErrorCode;

    use super::*;

    fn future(delivery: &BatchDelivery, index: i32) -> DeliveryFuture {
        DeliveryFuture::new(delivery.clone(), Arc::from("t"), 2, index, 1_000)
    }

    #[tokio::test]
    async fn every_record_gets_its_offset_from_the_batch() {
        let (completion, delivery) = batch_channel();
        let (first, third) = (future(&delivery, 0), future(&delivery, 2));
        completion.complete(Ok(BatchAck {
            base_offset: 40,
            log_append_time: None,
        }));
        let first = first.await.unwrap();
        assert_eq!(
            (first.partition, first.offset, first.timestamp),
            (2, 40, 1_000)
        );
        assert_eq!(third.await.unwrap().offset, 42);
    }

    #[tokio::test]
    async fn failures_and_dropped_batches_reach_every_record() {
        let (completion, delivery) = batch_channel();
        let record = future(&delivery, 0);
        completion.complete(Err(Error::broker(ErrorCode::MessageTooLarge, "big")));
        assert_eq!(
            record.await.unwrap_err().code(),
            Some(ErrorCode::MessageTooLarge)
        );
        let (completion, delivery) = batch_channel();
        let record = future(&delivery, 0);
        drop(completion);
        assert!(matches!(record.await, Err(Error::Closed)));
        let (completion, delivery) = batch_channel();
        let record = future(&delivery, 5);
        completion.complete(Ok(BatchAck::UNKNOWN_OFFSET));
        assert_eq!(record.await.unwrap().offset, -1);
    }
}
