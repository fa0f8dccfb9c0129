//! Data-plane helpers: a cluster with one topic, raw gRPC produce/fetch requests, and finding
//! the partition leader.

use std::time::Duration;

use strom_meta::testing::EtcdServer;
use strom_proto::admin::v1 as admin;
use strom_proto::broker::v1 as pb;
use strom_proto::broker::v1::broker_service_client::BrokerServiceClient;
use strom_record::{BatchBuilder, Compression, batches, decode_records};
use strom_types::{ProducerEpoch, ProducerId, Sequence};

use super::{BrokerProc, InProcController, wait_for};

pub const TOPIC: &str = "events";

/// Now, in milliseconds since the epoch: record timestamps must be recent, or time retention
/// (checked every second in tests) deletes the records.
pub fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

/// A batch (lz4) of records with these values, stamped now.
pub fn batch(values: &[&str]) -> bytes::Bytes {
    let mut builder = BatchBuilder::new(Compression::Lz4);
    for value in values {
        builder
            .append(now_ms(), None, Some(value.as_bytes()), &[])
            .unwrap();
    }
    builder.build().unwrap()
}

/// An idempotent batch (lz4) of producer `id` at epoch 0, starting at sequence `seq`.
pub fn idempotent_batch(id: i64, seq: i32, values: &[&str]) -> bytes::Bytes {
    let mut builder = BatchBuilder::new(Compression::Lz4).producer(
        ProducerId::new(id),
        ProducerEpoch::new(0),
        Sequence::new(seq),
    );
    for value in values {
        builder
            .append(now_ms(), None, Some(value.as_bytes()), &[])
            .unwrap();
    }
    builder.build().unwrap()
}

pub fn produce_request(acks: i32, records: bytes::Bytes) -> pb::ProduceRequest {
    pb::ProduceRequest {
        acks,
        timeout_ms: 10_000,
        topics: vec![pb::ProduceTopic {
            topic: TOPIC.to_owned(),
            partitions: vec![pb::ProducePartition {
                partition: 0,
                records,
            }],
        }],
    }
}

pub async fn client(broker: &BrokerProc) -> BrokerServiceClient<tonic::transport::Channel> {
    BrokerServiceClient::connect(format!("http://{}", broker.address))
        .await
        .unwrap()
}

/// Every record value in `records`, in order.
pub fn values(records: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for item in batches(records) {
        let (_, bytes) = item.unwrap();
        for record in decode_records(bytes).unwrap() {
            out.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
        }
    }
    out
}

/// A fetch of partition 0 of [`TOPIC`] from `offset`.
pub fn fetch_request(offset: i64, max_wait_ms: i32, min_bytes: i32) -> pb::FetchRequest {
    pb::FetchRequest {
        max_wait_ms,
        min_bytes,
        max_bytes: 0,
        topics: vec![pb::FetchTopic {
            topic: TOPIC.to_owned(),
            partitions: vec![pb::FetchPartition {
                partition: 0,
                fetch_offset: offset,
                partition_max_bytes: 0,
                current_leader_epoch: None,
            }],
        }],
    }
}

pub async fn fetch_all(broker: &BrokerProc) -> pb::FetchPartitionResult {
    let request = fetch_request(0, 0, 0);
    let response = client(broker)
        .await
        .fetch(request)
        .await
        .unwrap()
        .into_inner();
    response.topics[0].partitions[0].clone()
}

/// The index in `brokers` of partition 0's leader, with full ISR when `full_isr`.
pub async fn leader_of(brokers: &[BrokerProc], skip: Option<usize>, isr: usize) -> usize {
    let witness = (0..brokers.len()).find(|i| Some(*i) != skip).unwrap();
    wait_for(Duration::from_secs(20), "a leader", || async {
        let metadata = brokers[witness].metadata().await?;
        // The topic can show up before its partition records do.
        let p = metadata
            .topics
            .iter()
            .find(|t| t.topic == TOPIC)?
            .partitions
            .first()?;
        let leader = p.leader_id?;
        let index = brokers.iter().position(|b| b.id == leader)?;
        if Some(index) == skip || p.isr.len() < isr {
            return None;
        }
        // The leader itself must have caught up with the metadata and serve the partition.
        let latest = pb::ListOffsetsPartition {
            partition: 0,
            spec: pb::OffsetSpec::Latest as i32,
            timestamp_ms: 0,
            current_leader_epoch: None,
        };
        let request = pb::ListOffsetsRequest {
            topics: vec![pb::ListOffsetsTopic {
                topic: TOPIC.to_owned(),
                partitions: vec![latest],
            }],
        };
        let answer = client(&brokers[index])
            .await
            .list_offsets(request)
            .await
            .ok()?
            .into_inner();
        answer
            .topics
            .first()?
            .partitions
            .first()?
            .error
            .is_none()
            .then_some(index)
    })
    .await
}

/// A running test cluster: etcd, one controller and `count` brokers, with the topic created.
pub struct Cluster {
    pub etcd: EtcdServer,
    pub controller: InProcController,
    pub brokers: Vec<BrokerProc>,
}

impl Cluster {
    /// Starts the cluster and creates [`TOPIC`] with one partition, replication factor `count`
    /// and `configs`; `None` when etcd is not installed.
    pub async fn start(name: &str, count: i32, configs: &[(&str, &str)]) -> Option<Self> {
        let etcd = EtcdServer::start().await?;
        let controller = InProcController::start(1, name, &etcd).await;
        let brokers: Vec<BrokerProc> = (1..=count)
            .map(|id| BrokerProc::spawn(id, name, &etcd.endpoint()))
            .collect();
        let expected = usize::try_from(count).unwrap();
        wait_for(
            Duration::from_secs(20),
            "every broker registered",
            || async { (brokers[0].metadata().await?.brokers.len() == expected).then_some(()) },
        )
        .await;
        let create = admin::CreateTopicsRequest {
            topics: vec![admin::NewTopic {
                topic: TOPIC.to_owned(),
                partitions: 1,
                replication_factor: count,
                configs: configs
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            }],
            timeout_ms: 0,
            validate_only: false,
        };
        let created = brokers[0]
            .admin()
            .await
            .create_topics(create)
            .await
            .unwrap()
            .into_inner();
        assert!(created.topics[0].error.is_none(), "{created:?}");
        Some(Self {
            etcd,
            controller,
            brokers,
        })
    }
}
