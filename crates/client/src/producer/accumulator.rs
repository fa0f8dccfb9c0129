//! Per-partition record accumulation: the open batch records are appended to, and the closed
//! batches waiting for the partition's sender.
//!
//! `send` appends straight into the open batch's [`BatchBuilder`] under a short lock, with no
//! channel send per record. A batch closes when it reaches `batch_size` (or the next record
//! would not fit), when the sender takes it after `linger`, or when a flush seals it. The
//! sender is woken only when a batch opens or closes. Batch ids count up from 0 per partition
//! in creation order, which is also the order the sender takes and sequences them in.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use strom_record::{BatchBuilder, Compression};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use super::delivery::{BatchDelivery, Completion, batch_channel};
use crate::{Error, Result, lock};

/// A batch still being filled, or closed and not yet taken by the sender.
#[derive(Debug)]
pub(crate) struct OpenBatch {
    /// Position in the partition's creation order.
    pub(crate) id: u64,
    /// The records so far.
    pub(crate) builder: BatchBuilder,
    /// When the first record was appended; linger and delivery timeouts count from here.
    pub(crate) created: Instant,
    /// Buffer-memory permits held by the batch's records.
    pub(crate) reserved: usize,
    /// Reports the outcome to the records' futures.
    pub(crate) completion: Completion,
    /// Handed to the futures of records appended later.
    delivery: BatchDelivery,
}

/// A record borrowed for appending.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RecordRef<'a> {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: &'a [(&'a str, Option<&'a [u8]>)],
    /// Buffer-memory permits the caller acquired for it.
    pub(crate) reserved: usize,
}

/// Where an appended record went.
#[derive(Debug)]
pub(crate) struct Appended {
    pub(crate) delivery: BatchDelivery,
    /// The record's index in its batch, which is its offset delta.
    pub(crate) index: i32,
}

/// What the sender may do next with the queue.
#[derive(Debug)]
pub(crate) enum Take {
    /// A batch to send now.
    Batch(OpenBatch),
    /// The open batch becomes sendable at this instant.
    LingerUntil(Instant),
    /// Nothing is buffered.
    Empty,
}

#[derive(Debug, Default)]
struct QueueState {
    open: Option<OpenBatch>,
    closed: VecDeque<OpenBatch>,
    next_id: u64,
    shut: bool,
}

/// The accumulator of one partition, shared by `send` and the partition's sender.
#[derive(Debug)]
pub(crate) struct PartitionQueue {
    state: Mutex<QueueState>,
    /// Wakes the sender: a batch opened or closed.
    pub(crate) wake: Notify,
    /// Batches closed so far; the sticky partitioner moves on when it changes.
    generation: AtomicU64,
    /// Every batch with a lower id has finished; flush waits on it.
    finished_below: watch::Sender<u64>,
    /// Whether the partition's sender task was started.
    started: AtomicBool,
}

impl Default for PartitionQueue {
    fn default() -> Self {
        Self {
            state: Mutex::new(QueueState::default()),
            wake: Notify::new(),
            generation: AtomicU64::new(0),
            finished_below: watch::Sender::new(0),
            started: AtomicBool::new(false),
        }
    }
}

impl PartitionQueue {
    /// Appends `record`, closing the open batch first when the record would push it past
    /// `batch_size`, and after when the record filled it.
    pub(crate) fn append(
        &self,
        record: RecordRef<'_>,
        batch_size: usize,
        compression: Compression,
    ) -> Result<Appended> {
        let mut wake = false;
        let mut state = lock(&self.state);
        if state.shut {
            return Err(Error::Closed);
        }
        if let Some(open) = &state.open {
            let size = open.builder.estimated_size_with(
                record.timestamp,
                record.key,
                record.value,
                record.headers,
            );
            if size > batch_size {
                self.close_open(&mut state);
                wake = true;
            }
        }
        let appended = match state.open.as_mut() {
            Some(open) => append_to(open, record)?,
            None => {
                // Only a batch holding a record gets an id, so ids have no gaps.
                let mut open = new_batch(state.next_id, compression);
                let appended = append_to(&mut open, record)?;
                state.next_id += 1;
                state.open = Some(open);
                wake = true;
                appended
            }
        };
        if state
            .open
            .as_ref()
            .is_some_and(|open| open.builder.estimated_size() >= batch_size)
        {
            self.close_open(&mut state);
            wake = true;
        }
        drop(state);
        if wake {
            self.wake.notify_one();
        }
        Ok(appended)
    }

    /// Moves the open batch, if any, to the closed queue.
    fn close_open(&self, state: &mut QueueState) {
        if let Some(open) = state.open.take() {
            state.closed.push_back(open);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The next batch to send: the oldest closed one, else the open one once it has lingered.
    pub(crate) fn take(&self, now: Instant, linger: Duration) -> Take {
        let mut state = lock(&self.state);
        if let Some(batch) = state.closed.pop_front() {
            return Take::Batch(batch);
        }
        let Some(open) = &state.open else {
            return Take::Empty;
        };
        let ready_at = open.created + linger;
        if now < ready_at {
            return Take::LingerUntil(ready_at);
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        state.open.take().map_or(Take::Empty, Take::Batch)
    }

    /// Returns a batch taken with [`take`](Self::take) and not sent, to the front of the queue.
    pub(crate) fn put_back(&self, batch: OpenBatch) {
        lock(&self.state).closed.push_front(batch);
    }

    /// Removes the oldest buffered batch if it was created at or before `cutoff`.
    pub(crate) fn pop_created_before(&self, cutoff: Instant) -> Option<OpenBatch> {
        let mut state = lock(&self.state);
        let oldest = state
            .closed
            .front()
            .or(state.open.as_ref())
            .map(|b| b.created)?;
        if oldest > cutoff {
            return None;
        }
        if state.closed.is_empty() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            return state.open.take();
        }
        state.closed.pop_front()
    }

    /// When the oldest buffered batch was created.
    pub(crate) fn oldest_created(&self) -> Option<Instant> {
        let state = lock(&self.state);
        state
            .closed
            .front()
            .or(state.open.as_ref())
            .map(|b| b.created)
    }

    /// Closes the open batch so it is sent without lingering, wakes the sender, and returns
    /// the id every batch buffered so far is below.
    pub(crate) fn seal(&self) -> u64 {
        let mut state = lock(&self.state);
        self.close_open(&mut state);
        let next = state.next_id;
        drop(state);
        self.wake.notify_one();
        next
    }

    /// Refuses further appends and returns every buffered batch.
    pub(crate) fn shut(&self) -> Vec<OpenBatch> {
        let mut state = lock(&self.state);
        state.shut = true;
        let mut batches: Vec<OpenBatch> = state.closed.drain(..).collect();
        batches.extend(state.open.take());
        batches
    }

    /// Batches closed so far.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Publishes that every batch below `id` has finished.
    pub(crate) fn set_finished_below(&self, id: u64) {
        self.finished_below.send_if_modified(|current| {
            let changed = *current != id;
            *current = id;
            changed
        });
    }

    /// Waits until every batch below `id` has finished.
    pub(crate) async fn wait_finished_below(&self, id: u64) {
        let mut finished = self.finished_below.subscribe();
        // The sender lives as long as the queue, so the channel never closes first.
        let _ = finished.wait_for(|below| *below >= id).await;
    }

    /// Marks the sender as started; true only for the first caller.
    pub(crate) fn start(&self) -> bool {
        !self.started.swap(true, Ordering::AcqRel)
    }

    /// Whether the sender was started.
    pub(crate) fn is_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }
}

fn new_batch(id: u64, compression: Compression) -> OpenBatch {
    let (completion, delivery) = batch_channel();
    OpenBatch {
        id,
        builder: BatchBuilder::new(compression),
        created: Instant::now(),
        reserved: 0,
        completion,
        delivery,
    }
}

fn append_to(open: &mut OpenBatch, record: RecordRef<'_>) -> Result<Appended> {
    open.builder
        .append(record.timestamp, record.key, record.value, record.headers)?;
    open.reserved += record.reserved;
    Ok(Appended {
        delivery: open.delivery.clone(),
        // A batch holds far fewer than 2^31 records: it is at most 64 MiB.
        index: i32::try_from(open.builder.len() - 1).unwrap_or(i32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINGER: Duration = Duration::from_millis(5);

    fn record(value: &[u8]) -> RecordRef<'_> {
        RecordRef {
            timestamp: 1_000,
            key: None,
            value: Some(value),
            headers: &[],
            reserved: value.len(),
        }
    }

    fn take_batch(queue: &PartitionQueue, now: Instant) -> OpenBatch {
        match queue.take(now, LINGER) {
            Take::Batch(batch) => batch,
            other => panic!("expected a batch, got {other:?}"),
        }
    }

    #[test]
    fn full_batches_close_and_are_taken_in_order() {
        let queue = PartitionQueue::default();
        let value = [7u8; 100];
        let mut indexes = Vec::new();
        for _ in 0..25 {
            indexes.push(
                queue
                    .append(record(&value), 1_000, Compression::None)
                    .unwrap()
                    .index,
            );
        }
        // 109 bytes per record: 8 fit after the 61-byte header, the 9th starts a new batch.
        let second_start = indexes.iter().skip(1).position(|&i| i == 0).unwrap() + 1;
        assert_eq!(second_start, 8);
        assert_eq!(indexes[..9], [0, 1, 2, 3, 4, 5, 6, 7, 0]);
        let now = Instant::now();
        let first = take_batch(&queue, now);
        let second = take_batch(&queue, now);
        assert_eq!((first.id, second.id), (0, 1));
        assert!(first.builder.estimated_size() <= 1_000);
        assert!(first.builder.estimated_size() + 110 > 1_000);
        assert_eq!(first.reserved, first.builder.len() * 100);
        // Records 1-24 filled three batches; the 25th is in an open one.
        assert_eq!(queue.generation(), 3);
        assert_eq!(take_batch(&queue, now).id, 2);
        // The rest is open and lingers.
        assert!(matches!(
            queue.take(now, Duration::from_secs(60)),
            Take::LingerUntil(_)
        ));
    }

    #[test]
    fn open_batches_are_sent_after_linger() {
        let queue = PartitionQueue::default();
        assert!(matches!(queue.take(Instant::now(), LINGER), Take::Empty));
        queue
            .append(record(b"a"), 1 << 20, Compression::None)
            .unwrap();
        let appended = queue
            .append(record(b"b"), 1 << 20, Compression::None)
            .unwrap();
        assert_eq!(appended.index, 1);
        let created = queue.oldest_created().unwrap();
        let Take::LingerUntil(at) = queue.take(created, LINGER) else {
            panic!("the open batch should linger");
        };
        assert_eq!(at, created + LINGER);
        let batch = take_batch(&queue, at);
        assert_eq!(batch.builder.len(), 2);
        assert_eq!(queue.generation(), 1);
        assert!(matches!(queue.take(at, LINGER), Take::Empty));
        // The next record opens a new batch with the next id.
        queue
            .append(record(b"c"), 1 << 20, Compression::None)
            .unwrap();
        assert_eq!(take_batch(&queue, at + LINGER).id, 1);
    }

    #[test]
    fn an_oversized_record_gets_a_batch_of_its_own() {
        let queue = PartitionQueue::default();
        queue
            .append(record(b"small"), 200, Compression::None)
            .unwrap();
        let big = [0u8; 500];
        let appended = queue.append(record(&big), 200, Compression::None).unwrap();
        assert_eq!(appended.index, 0);
        let now = Instant::now() + LINGER;
        assert_eq!(take_batch(&queue, now).builder.len(), 1);
        let second = take_batch(&queue, now);
        assert_eq!((second.id, second.builder.len()), (1, 1));
    }

    #[test]
    fn seal_skips_linger_and_shut_refuses_appends() {
        let queue = PartitionQueue::default();
        queue
            .append(record(b"a"), 1 << 20, Compression::None)
            .unwrap();
        assert_eq!(queue.seal(), 1);
        let batch = take_batch(&queue, Instant::now());
        assert_eq!(batch.id, 0);
        queue
            .append(record(b"b"), 1 << 20, Compression::None)
            .unwrap();
        assert_eq!(queue.shut().len(), 1);
        assert!(matches!(
            queue.append(record(b"c"), 1 << 20, Compression::None),
            Err(Error::Closed)
        ));
    }

    #[test]
    fn expired_batches_are_popped_oldest_first() {
        let queue = PartitionQueue::default();
        queue.append(record(b"a"), 1, Compression::None).unwrap();
        queue
            .append(record(b"b"), 1 << 20, Compression::None)
            .unwrap();
        let cutoff = queue.oldest_created().unwrap();
        assert_eq!(queue.pop_created_before(cutoff).unwrap().id, 0);
        let open_created = queue.oldest_created().unwrap();
        assert!(queue.pop_created_before(open_created - LINGER).is_none());
        assert_eq!(queue.pop_created_before(open_created).unwrap().id, 1);
        assert!(queue.oldest_created().is_none());
    }

    #[tokio::test]
    async fn flush_waits_for_the_finished_mark() {
        let queue = std::sync::Arc::new(PartitionQueue::default());
        let waiter = {
            let queue = queue.clone();
            tokio::spawn(async move { queue.wait_finished_below(2).await })
        };
        queue.set_finished_below(1);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        queue.set_finished_below(2);
        waiter.await.unwrap();
    }
}
