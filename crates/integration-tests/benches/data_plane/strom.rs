//! The Strom side: a local cluster (real etcd, an in-process controller, `strom-broker`
//! processes) driven through the Rust client.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use strom_client::{
    Acks, Client, ClientConfig, ConsumerConfig, PartitionConsumer, Producer, ProducerConfig,
    ProducerRecord, StartOffset,
};
use strom_meta::testing::EtcdServer;
use strom_proto::admin::v1 as admin;
use strom_record::BatchHeader;
use tokio::time::Instant;

use crate::common::{BrokerProc, InProcController, wait_for};
use crate::{Latency, Throughput};

/// Deliveries awaited at once; beyond this `send` waits for the oldest.
const DELIVERY_WINDOW: usize = 200_000;

/// etcd, a controller and `size` brokers.
pub struct StromCluster {
    _etcd: EtcdServer,
    controller: InProcController,
    brokers: Vec<BrokerProc>,
    pub client: Client,
}

impl StromCluster {
    /// Starts the cluster and connects a client; `None` without etcd.
    pub async fn start(name: &str, size: i32) -> Option<Self> {
        let etcd = EtcdServer::start().await?;
        let controller = InProcController::start(1, name, &etcd).await;
        let brokers: Vec<BrokerProc> = (1..=size)
            .map(|id| BrokerProc::spawn_with_lag(id, name, &etcd.endpoint(), "10s"))
            .collect();
        let expected = usize::try_from(size).ok()?;
        wait_for(
            Duration::from_secs(30),
            "every broker registered",
            || async { (brokers[0].metadata().await?.brokers.len() == expected).then_some(()) },
        )
        .await;
        let bootstrap: Vec<String> = brokers.iter().map(|b| b.address.clone()).collect();
        let client = Client::connect(ClientConfig::new(bootstrap)).await.ok()?;
        Some(Self {
            _etcd: etcd,
            controller,
            brokers,
            client,
        })
    }

    /// Creates a one-partition topic and waits until its leader has a full ISR.
    pub async fn create_topic(&self, topic: &str, replication: i32, min_isr: i32) {
        let request = admin::CreateTopicsRequest {
            topics: vec![admin::NewTopic {
                topic: topic.to_owned(),
                partitions: 1,
                replication_factor: replication,
                configs: [("min.insync.replicas".to_owned(), min_isr.to_string())].into(),
            }],
            timeout_ms: 0,
            validate_only: false,
        };
        let created = self.brokers[0]
            .admin()
            .await
            .create_topics(request)
            .await
            .expect("CreateTopics answers")
            .into_inner();
        assert!(created.topics[0].error.is_none(), "{created:?}");
        let full = usize::try_from(replication).unwrap_or(1);
        wait_for(Duration::from_secs(30), "the topic's full ISR", || async {
            let metadata = self.brokers[0].metadata().await?;
            let partition = metadata
                .topics
                .iter()
                .find(|t| t.topic == topic)?
                .partitions
                .first()?;
            (partition.leader_id.is_some() && partition.isr.len() == full).then_some(())
        })
        .await;
        self.client.refresh(&[topic]).await.expect("metadata");
    }

    /// Stops the brokers and the controller.
    pub async fn stop(self) {
        for mut broker in self.brokers {
            broker.kill9().await;
        }
        self.controller.stop().await;
    }
}

fn producer_config(acks: Acks, linger: Duration) -> ProducerConfig {
    ProducerConfig {
        acks,
        enable_idempotence: acks == Acks::All,
        linger,
        batch_size: 256 * 1024,
        buffer_memory: 256 * 1024 * 1024,
        ..ProducerConfig::default()
    }
}

/// Sends `count` records of `size` bytes to partition 0 and waits for every acknowledgement.
pub async fn produce(
    client: &Client,
    topic: &str,
    count: u64,
    size: usize,
    acks: Acks,
) -> Throughput {
    let producer = Producer::new(
        client.clone(),
        producer_config(acks, Duration::from_millis(5)),
    )
    .expect("valid producer config");
    let value = Bytes::from(vec![b's'; size]);
    let started = Instant::now();
    let mut pending = VecDeque::with_capacity(DELIVERY_WINDOW);
    for _ in 0..count {
        if pending.len() == DELIVERY_WINDOW {
            let oldest: strom_client::DeliveryFuture =
                pending.pop_front().expect("the window is full");
            oldest.await.expect("record acknowledged");
        }
        let record = ProducerRecord::new(topic, value.clone()).partition(0);
        pending.push_back(producer.send(record).await.expect("record accepted"));
    }
    producer.flush().await;
    for delivery in pending {
        delivery.await.expect("record acknowledged");
    }
    let elapsed = started.elapsed();
    producer.close().await;
    Throughput::new(count, size, elapsed)
}

/// Reads partition 0 from the start until `count` records of `size` bytes have arrived.
pub async fn consume(client: &Client, topic: &str, count: u64, size: usize) -> Throughput {
    let config = ConsumerConfig {
        start: StartOffset::Earliest,
        ..ConsumerConfig::default()
    };
    let started = Instant::now();
    let mut consumer = PartitionConsumer::new(client.clone(), topic, 0, config)
        .await
        .expect("consumer");
    let mut seen = 0u64;
    while seen < count {
        for batch in consumer.poll_batches().await.expect("fetch") {
            let header = BatchHeader::parse(&batch).expect("a whole batch");
            seen += u64::try_from(header.records_count).unwrap_or(0);
        }
    }
    Throughput::new(count, size, started.elapsed())
}

/// Produces `rate` records per second of `size` bytes (at least 8) for `duration` while a
/// consumer reads them from the end, and reports produce-to-consume latency.
pub async fn latency(
    client: &Client,
    topic: &str,
    rate: u64,
    duration: Duration,
    size: usize,
    acks: Acks,
) -> Latency {
    let base = Instant::now();
    let expected = rate * duration.as_secs();
    let config = ConsumerConfig {
        start: StartOffset::Latest,
        fetch_max_wait: Duration::from_millis(100),
        ..ConsumerConfig::default()
    };
    let mut consumer = PartitionConsumer::new(client.clone(), topic, 0, config)
        .await
        .expect("consumer");
    let reader = tokio::spawn(async move {
        let mut samples = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        while (samples.len() as u64) < expected {
            let records = consumer.poll().await.expect("fetch");
            let now = base.elapsed();
            for record in records {
                let value = record.value.expect("a value");
                let sent = u64::from_be_bytes(value[..8].try_into().expect("8 bytes"));
                samples.push(now.saturating_sub(Duration::from_nanos(sent)));
            }
        }
        samples
    });
    let producer = Producer::new(client.clone(), producer_config(acks, Duration::ZERO))
        .expect("valid producer config");
    let per_tick = rate / 1000;
    let mut ticks = tokio::time::interval(Duration::from_millis(1));
    let mut pending = VecDeque::new();
    for _ in 0..duration.as_millis() {
        ticks.tick().await;
        for _ in 0..per_tick {
            let mut value = vec![b'l'; size.max(8)];
            let sent = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
            value[..8].copy_from_slice(&sent.to_be_bytes());
            let record = ProducerRecord::new(topic, value).partition(0);
            pending.push_back(producer.send(record).await.expect("record accepted"));
        }
        while pending.len() > 10_000 {
            let oldest: strom_client::DeliveryFuture = pending.pop_front().expect("not empty");
            oldest.await.expect("record acknowledged");
        }
    }
    for delivery in pending {
        delivery.await.expect("record acknowledged");
    }
    producer.close().await;
    let samples = reader.await.expect("the reader finishes");
    Latency::new(samples)
}
