//! Settings of the client, the producer and the consumer, with Kafka-like defaults.

use std::time::Duration;

use strom_proto::broker::v1 as pb;
use strom_record::{Compression, MAX_BATCH_SIZE};

use crate::{Error, Result};

/// How a [`Client`](crate::Client) finds and talks to the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Broker addresses (`host:port`) to ask for metadata first; any one reachable broker is
    /// enough, the others are learned from its answer.
    pub bootstrap: Vec<String>,
    /// The longest a unary request (metadata, offsets, producer ids) may take. Default 30 s.
    pub request_timeout: Duration,
    /// How long cached topic metadata is trusted before it is fetched again. Default 5 min.
    pub metadata_max_age: Duration,
    /// The longest a TCP connection to a broker may take to open. Default 10 s.
    pub connect_timeout: Duration,
}

impl ClientConfig {
    /// The defaults with `bootstrap` as the initial brokers.
    pub fn new<I, S>(bootstrap: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            bootstrap: bootstrap.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.bootstrap.is_empty() {
            return Err(Error::Config {
                setting: "bootstrap",
                reason: "must name at least one broker",
            });
        }
        positive("request_timeout", self.request_timeout)?;
        positive("connect_timeout", self.connect_timeout)
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            bootstrap: Vec::new(),
            request_timeout: Duration::from_secs(30),
            metadata_max_age: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// How many replicas must have a batch before the producer counts it as delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Acks {
    /// Do not wait for the broker (acks=0): records count as delivered once sent, with offset
    /// -1, and failures go unnoticed.
    None,
    /// Wait for the leader's append (acks=1).
    Leader,
    /// Wait until every in-sync replica has the batch (acks=all).
    #[default]
    All,
}

impl Acks {
    pub(crate) fn to_proto(self) -> pb::Acks {
        match self {
            Self::None => pb::Acks::None,
            Self::Leader => pb::Acks::Leader,
            Self::All => pb::Acks::All,
        }
    }
}

/// How a [`Producer`](crate::Producer) batches, sends and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// The durability to wait for. Default [`Acks::All`].
    pub acks: Acks,
    /// How long a batch waits for more records before it is sent. Default 5 ms.
    pub linger: Duration,
    /// The size (uncompressed) at which a batch is closed and sent. Default 64 KiB; a record
    /// larger than this gets a batch of its own.
    pub batch_size: usize,
    /// The codec of every batch. Default [`Compression::None`].
    pub compression: Compression,
    /// Stamp batches with a producer id and sequence numbers so retries are never written
    /// twice. Default `true`; requires [`Acks::All`].
    pub enable_idempotence: bool,
    /// The most time from `send` to a reported outcome, retries included. Default 120 s.
    pub delivery_timeout: Duration,
    /// How long the broker may wait for replication, and the client for an answer, per
    /// request. Default 30 s.
    pub request_timeout: Duration,
    /// The pause before a failed batch is sent again. Default 100 ms.
    pub retry_backoff: Duration,
    /// Batches of one partition sent and not yet answered. Default 5.
    pub max_in_flight_per_partition: usize,
    /// Bytes of records buffered and not yet acknowledged; `send` waits when they would
    /// exceed this. Default 32 MiB.
    pub buffer_memory: usize,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size: 64 * 1024,
            compression: Compression::None,
            enable_idempotence: true,
            delivery_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(30),
            retry_backoff: Duration::from_millis(100),
            max_in_flight_per_partition: 5,
            buffer_memory: 32 * 1024 * 1024,
        }
    }
}

/// The most `buffer_memory` the producer accepts: its semaphore counts permits in `u32`.
const MAX_BUFFER_MEMORY: usize = u32::MAX as usize;

impl ProducerConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.enable_idempotence && self.acks != Acks::All {
            return Err(Error::Config {
                setting: "acks",
                reason: "must be All when enable_idempotence is set",
            });
        }
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return Err(Error::Config {
                setting: "batch_size",
                reason: "must be between 1 byte and 64 MiB",
            });
        }
        if self.max_in_flight_per_partition == 0 {
            return Err(Error::Config {
                setting: "max_in_flight_per_partition",
                reason: "must be at least 1",
            });
        }
        if self.buffer_memory < self.batch_size || self.buffer_memory > MAX_BUFFER_MEMORY {
            return Err(Error::Config {
                setting: "buffer_memory",
                reason: "must be at least batch_size and at most 4 GiB",
            });
        }
        positive("delivery_timeout", self.delivery_timeout)?;
        positive("request_timeout", self.request_timeout)
    }

    /// The broker-side replication timeout sent with each request.
    pub(crate) fn timeout_ms(&self) -> i32 {
        i32::try_from(self.request_timeout.as_millis()).unwrap_or(i32::MAX)
    }
}

/// Where a [`PartitionConsumer`](crate::PartitionConsumer) starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StartOffset {
    /// The partition's log start offset: everything still stored.
    #[default]
    Earliest,
    /// The high watermark: only records produced from now on.
    Latest,
    /// This exact offset.
    Offset(i64),
}

/// How a [`PartitionConsumer`](crate::PartitionConsumer) fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The longest the broker waits for `fetch_min_bytes` before answering. Default 500 ms.
    pub fetch_max_wait: Duration,
    /// The least data worth answering with before `fetch_max_wait` passes. Default 1 byte.
    pub fetch_min_bytes: i32,
    /// Upper bound on one response's records. Default 50 MiB.
    pub fetch_max_bytes: i32,
    /// Upper bound on the partition's records in one response. Default 8 MiB; the first batch
    /// is returned even when it alone is larger.
    pub partition_max_bytes: i32,
    /// Where to start. Default [`StartOffset::Earliest`].
    pub start: StartOffset,
    /// The pause before reconnecting after a failed fetch. Default 100 ms.
    pub retry_backoff: Duration,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        Self {
            fetch_max_wait: Duration::from_millis(500),
            fetch_min_bytes: 1,
            fetch_max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 8 * 1024 * 1024,
            start: StartOffset::Earliest,
            retry_backoff: Duration::from_millis(100),
        }
    }
}

impl ConsumerConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        if self.fetch_min_bytes < 0 || self.fetch_max_bytes < 0 || self.partition_max_bytes < 0 {
            return Err(Error::Config {
                setting: "fetch_min_bytes, fetch_max_bytes, partition_max_bytes",
                reason: "must not be negative",
            });
        }
        if let StartOffset::Offset(offset) = self.start
            && offset < 0
        {
            return Err(Error::Config {
                setting: "start",
                reason: "offset must not be negative",
            });
        }
        Ok(())
    }

    /// `fetch_max_wait` in milliseconds, as the wire carries it.
    pub(crate) fn max_wait_ms(&self) -> i32 {
        i32::try_from(self.fetch_max_wait.as_millis()).unwrap_or(i32::MAX)
    }
}

fn positive(setting: &'static str, value: Duration) -> Result<()> {
    if value.is_zero() {
        return Err(Error::Config {
            setting,
            reason: "must be greater than zero",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_kafka_like() {
        let producer = ProducerConfig::default();
        producer.validate().unwrap();
        assert_eq!(producer.acks, Acks::All);
        assert!(producer.enable_idempotence);
        assert_eq!(producer.max_in_flight_per_partition, 5);
        ConsumerConfig::default().validate().unwrap();
        ClientConfig::new(["localhost:9092"]).validate().unwrap();
    }

    #[test]
    fn idempotence_needs_acks_all() {
        let config = ProducerConfig {
            acks: Acks::Leader,
            ..ProducerConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(Error::Config {
                setting: "acks",
                ..
            })
        ));
        let relaxed = ProducerConfig {
            enable_idempotence: false,
            ..config
        };
        relaxed.validate().unwrap();
    }

    #[test]
    fn empty_bootstrap_and_zero_sizes_are_rejected() {
        assert!(ClientConfig::default().validate().is_err());
        let config = ProducerConfig {
            batch_size: 0,
            ..ProducerConfig::default()
        };
        assert!(config.validate().is_err());
        let config = ConsumerConfig {
            start: StartOffset::Offset(-1),
            ..ConsumerConfig::default()
        };
        assert!(config.validate().is_err());
    }
}
