//! Fetching the owned partitions: one task per partition reads through a
//! [`PartitionConsumer`] and passes what it reads to `poll` over one bounded channel.
//!
//! The channel bounds prefetching: each task waits while the channel is full, so at most
//! `CHANNEL_CAPACITY` responses plus one per partition are held. Every started task gets a
//! fresh id; what a stopped task had sent is recognised by its id and dropped, so no record
//! of a revoked partition reaches the user after its revocation.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::assignment::TopicPartition;
use super::positions::Positions;
use super::{GroupConsumerConfig, OffsetReset};
use crate::{Client, ConsumerConfig, ConsumerRecord, ErrorCode, PartitionConsumer, Result};
use crate::{Error, StartOffset};

/// Responses buffered between the fetch tasks and `poll`.
const CHANNEL_CAPACITY: usize = 16;

/// What one fetch task read: records (possibly none) and the position after them.
#[derive(Debug)]
struct Fetched {
    partition: TopicPartition,
    task: u64,
    result: Result<(VecDeque<ConsumerRecord>, i64)>,
}

/// The fetch tasks of the owned partitions and what they read.
#[derive(Debug)]
pub(crate) struct Fetcher {
    client: Client,
    config: ConsumerConfig,
    reset: OffsetReset,
    running: HashMap<TopicPartition, Running>,
    sender: mpsc::Sender<Fetched>,
    receiver: mpsc::Receiver<Fetched>,
    /// Received and not yet returned, in arrival order.
    buffered: VecDeque<Fetched>,
    tasks: TaskTracker,
    cancel: CancellationToken,
    next_task: u64,
}

#[derive(Debug)]
struct Running {
    task: u64,
    cancel: CancellationToken,
}

impl Fetcher {
    /// A fetcher whose tasks stop when `cancel` is cancelled.
    pub(crate) fn new(
        client: Client,
        config: &GroupConsumerConfig,
        cancel: CancellationToken,
    ) -> Self {
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        Self {
            client,
            config: config.fetch.clone(),
            reset: config.reset,
            running: HashMap::new(),
            sender,
            receiver,
            buffered: VecDeque::new(),
            tasks: TaskTracker::new(),
            cancel,
            next_task: 0,
        }
    }

    /// Starts reading `partition` at `start`, replacing any task already reading it.
    pub(crate) fn start(&mut self, partition: TopicPartition, start: StartOffset) {
        self.stop(&partition);
        self.next_task += 1;
        let cancel = self.cancel.child_token();
        let task = FetchTask {
            client: self.client.clone(),
            config: ConsumerConfig {
                start,
                ..self.config.clone()
            },
            reset: self.reset,
            partition: partition.clone(),
            task: self.next_task,
            sender: self.sender.clone(),
            cancel: cancel.clone(),
        };
        self.tasks.spawn(task.run());
        let running = Running {
            task: self.next_task,
            cancel,
        };
        self.running.insert(partition, running);
    }

    /// Stops reading `partition` and drops what was read and not returned.
    pub(crate) fn stop(&mut self, partition: &TopicPartition) {
        if let Some(running) = self.running.remove(partition) {
            running.cancel.cancel();
        }
        self.buffered
            .retain(|fetched| fetched.partition != *partition);
    }

    /// Stops every task and drops everything read and not returned.
    pub(crate) fn stop_all(&mut self) {
        for running in self.running.values() {
            running.cancel.cancel();
        }
        self.running.clear();
        self.buffered.clear();
    }

    /// Stops every task and waits until they have ended.
    pub(crate) async fn shutdown(&mut self) {
        self.stop_all();
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Up to `max` buffered records (and everything already received), advancing
    /// `positions` past them. A fetch error is returned when no record comes before it.
    pub(crate) fn take(
        &mut self,
        max: usize,
        positions: &mut Positions,
    ) -> Result<Vec<ConsumerRecord>> {
        while let Ok(fetched) = self.receiver.try_recv() {
            self.accept(fetched);
        }
        let mut out = Vec::new();
        while out.len() < max {
            let Some(mut fetched) = self.buffered.pop_front() else {
                break;
            };
            let (records, position) = match &mut fetched.result {
                Ok(read) => read,
                Err(_) if !out.is_empty() => {
                    self.buffered.push_front(fetched);
                    break;
                }
                Err(error) => return Err(error.clone()),
            };
            let room = max - out.len();
            if records.len() > room {
                let taken: Vec<ConsumerRecord> = records.drain(..room).collect();
                if let Some(last) = taken.last() {
                    positions.advance(&fetched.partition, last.offset + 1);
                }
                out.extend(taken);
                self.buffered.push_front(fetched);
                break;
            }
            positions.advance(&fetched.partition, *position);
            out.extend(records.drain(..));
        }
        Ok(out)
    }

    /// Whether something was received and not returned yet.
    pub(crate) fn has_buffered(&self) -> bool {
        !self.buffered.is_empty()
    }

    /// Waits until something is received from a running task or `deadline` passes; returns
    /// false on the deadline. Cancel-safe.
    pub(crate) async fn wait(&mut self, deadline: Instant) -> bool {
        loop {
            let received = tokio::select! {
                received = self.receiver.recv() => received,
                () = tokio::time::sleep_until(deadline) => return false,
            };
            // The fetcher holds a sender itself, so the channel never closes.
            let Some(fetched) = received else {
                return false;
            };
            if self.accept(fetched) {
                return true;
            }
        }
    }

    /// Buffers `fetched` if it comes from the partition's current task.
    fn accept(&mut self, fetched: Fetched) -> bool {
        let current = self
            .running
            .get(&fetched.partition)
            .is_some_and(|running| running.task == fetched.task);
        if current {
            self.buffered.push_back(fetched);
        }
        current
    }
}

/// One partition's fetch loop.
#[derive(Debug)]
struct FetchTask {
    client: Client,
    config: ConsumerConfig,
    reset: OffsetReset,
    partition: TopicPartition,
    task: u64,
    sender: mpsc::Sender<Fetched>,
    cancel: CancellationToken,
}

impl FetchTask {
    async fn run(self) {
        let cancel = self.cancel.clone();
        tokio::select! {
            () = cancel.cancelled() => {}
            () = self.fetch() => {}
        }
    }

    /// Opens the partition, reports the starting position, then reads until the channel
    /// closes. Retriable failures are retried quietly; others are reported and retried after
    /// a pause, as Kafka's consumer raises them on every poll until the user acts.
    async fn fetch(&self) {
        let backoff = self.config.retry_backoff.max(Duration::from_millis(10));
        let topic = self.partition.topic.clone();
        let mut consumer = loop {
            let opened = PartitionConsumer::new(
                self.client.clone(),
                topic.clone(),
                self.partition.partition,
                self.config.clone(),
            )
            .await;
            match opened {
                Ok(consumer) => break consumer,
                Err(error) => {
                    if !self.failed(error).await {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                }
            }
        };
        let mut reported = Some(consumer.position());
        if !self.send(Ok((VecDeque::new(), consumer.position()))).await {
            return;
        }
        loop {
            let position = consumer.position();
            let read = match consumer.poll().await {
                Ok(records) => Ok(records),
                Err(error) if error.code() == Some(ErrorCode::OffsetOutOfRange) => {
                    tracing::info!(partition = %self.partition, position, reset = ?self.reset,
                        "offset out of range; resetting");
                    consumer
                        .seek_to(self.reset.into())
                        .await
                        .map(|()| Vec::new())
                }
                Err(error) => Err(error),
            };
            match read {
                Ok(records) => {
                    let position = consumer.position();
                    if records.is_empty() && reported == Some(position) {
                        continue;
                    }
                    reported = Some(position);
                    if !self.send(Ok((records.into(), position))).await {
                        return;
                    }
                }
                Err(error) => {
                    if !self.failed(error).await {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }

    /// Logs a retriable `error` or reports another one; false when the channel is closed.
    async fn failed(&self, error: Error) -> bool {
        if error.is_retriable() {
            tracing::debug!(partition = %self.partition, %error, "fetch failed; retrying");
            return true;
        }
        tracing::warn!(partition = %self.partition, %error, "fetch failed");
        self.send(Err(error)).await
    }

    async fn send(&self, result: Result<(VecDeque<ConsumerRecord>, i64)>) -> bool {
        let fetched = Fetched {
            partition: self.partition.clone(),
            task: self.task,
            result,
        };
        self.sender.send(fetched).await.is_ok()
    }
}
