//! The Rust client against three brokers and real etcd: an idempotent acks=all producer keeps
//! writing while the partition leader is killed -9 three times, and every acknowledged record
//! is read back exactly once, at its acknowledged offset, with dense offsets in send order.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::data::{Cluster, TOPIC, leader_of};
use common::wait_for;
use strom_client::{
    Client, ClientConfig, ConsumerConfig, PartitionConsumer, Producer, ProducerConfig,
    ProducerRecord, RecordMetadata, StartOffset,
};

/// The ISR size of partition 0 as broker `witness` sees it.
async fn isr_len(cluster: &Cluster, witness: usize) -> Option<usize> {
    let metadata = cluster.brokers[witness].metadata().await?;
    let partition = &metadata
        .topics
        .iter()
        .find(|t| t.topic == TOPIC)?
        .partitions[0];
    Some(partition.isr.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_three_leader_kills_exactly_once() {
    let Some(mut cluster) = Cluster::start("kill-leader", 3, &[("min.insync.replicas", "2")]).await
    else {
        return;
    };
    leader_of(&cluster.brokers, None, 3).await;
    let bootstrap: Vec<String> = cluster.brokers.iter().map(|b| b.address.clone()).collect();
    let client = Client::connect(ClientConfig::new(bootstrap)).await.unwrap();
    let config = ProducerConfig {
        linger: Duration::from_millis(2),
        request_timeout: Duration::from_secs(10),
        ..ProducerConfig::default()
    };
    let producer = Arc::new(Producer::new(client.clone(), config).unwrap());

    // Unique values v000000, v000001, ... sent at about 2,000 records/s until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (producer, stop) = (Arc::clone(&producer), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut deliveries = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let record = ProducerRecord::new(TOPIC, format!("v{i:06}")).partition(0);
                deliveries.push((i, producer.send(record).await.unwrap()));
                i += 1;
                if i.is_multiple_of(20) {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            deliveries
        })
    };

    for round in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let leader = leader_of(&cluster.brokers, None, 3).await;
        cluster.brokers[leader].kill9().await;
        let next = leader_of(&cluster.brokers, Some(leader), 2).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        cluster.brokers[leader].start();
        wait_for(
            Duration::from_secs(30),
            &format!("round {round}: the killed broker to rejoin the ISR"),
            || async { (isr_len(&cluster, next).await? == 3).then_some(()) },
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    let deliveries = writer.await.unwrap();
    producer.flush().await;
    let mut acked: BTreeMap<String, RecordMetadata> = BTreeMap::new();
    let mut failed = 0;
    for (i, delivery) in deliveries {
        match delivery.await {
            Ok(metadata) => {
                acked.insert(format!("v{i:06}"), metadata);
            }
            Err(_) => failed += 1,
        }
    }
    assert!(
        acked.len() > 1000,
        "only {} records acknowledged",
        acked.len()
    );
    assert_eq!(
        failed, 0,
        "with a 120 s delivery timeout every record is delivered"
    );

    // Read everything back from the start.
    let consumer_config = ConsumerConfig {
        start: StartOffset::Earliest,
        ..ConsumerConfig::default()
    };
    let mut consumer = PartitionConsumer::new(client.clone(), TOPIC, 0, consumer_config)
        .await
        .unwrap();
    let mut read: Vec<(i64, String)> = Vec::new();
    while read.len() < acked.len() {
        for record in consumer.poll().await.unwrap() {
            let value = String::from_utf8(record.value.unwrap().to_vec()).unwrap();
            read.push((record.offset, value));
        }
    }
    let mut seen = HashSet::new();
    for (index, (offset, value)) in read.iter().enumerate() {
        assert_eq!(*offset, index as i64, "offsets are dense from 0");
        assert!(seen.insert(value.clone()), "{value} was written twice");
        if index > 0 {
            assert!(read[index - 1].1 < *value, "records keep their send order");
        }
    }
    for (value, metadata) in &acked {
        let offset = usize::try_from(metadata.offset).unwrap();
        assert_eq!(
            read.get(offset).map(|(_, v)| v),
            Some(value),
            "{value} was acknowledged at offset {offset}"
        );
    }
    Arc::into_inner(producer).unwrap().close().await;
    cluster.controller.stop().await;
}
