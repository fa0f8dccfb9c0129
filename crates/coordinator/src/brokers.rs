//! What the coordinator asks partition leaders: log start and end offsets (to validate and
//! reset commits, and to report lag) and the timestamp of the first unconsumed record (lag in
//! time). One call per leader broker for any number of partitions.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use strom_meta::{ClusterState, MetadataCache};
use strom_proto::broker::v1::broker_service_client::BrokerServiceClient;
use strom_proto::broker::v1::{
    FetchPartition, FetchRequest, FetchTopic, ListOffsetsPartition, ListOffsetsRequest,
    ListOffsetsTopic, OffsetSpec,
};
use strom_types::{PartitionId, TopicName};
use tonic::transport::{Channel, Endpoint};

/// The outcome of one lookup: the offset and, for timestamp lookups, the record's timestamp.
pub(crate) type Lookup = std::result::Result<Option<i64>, String>;

/// Calls partition leaders.
#[derive(Debug)]
pub(crate) struct Brokers {
    cache: MetadataCache,
    timeout: Duration,
    channels: Mutex<HashMap<String, Channel>>,
}

impl Brokers {
    /// Lookups through the leaders named in `cache`.
    pub(crate) fn new(cache: MetadataCache, timeout: Duration) -> Self {
        Self {
            cache,
            timeout,
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn channel(&self, address: &str) -> std::result::Result<Channel, String> {
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(channel) = channels.get(address) {
            return Ok(channel.clone());
        }
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| format!("bad broker address {address}: {e}"))?
            .connect_timeout(self.timeout)
            .timeout(self.timeout)
            .tcp_nodelay(true);
        let channel = endpoint.connect_lazy();
        channels.insert(address.to_owned(), channel.clone());
        Ok(channel)
    }

    /// The address of the leader of `topic`/`partition`.
    fn leader(
        state: &ClusterState,
        topic: &str,
        partition: i32,
    ) -> std::result::Result<String, String> {
        let name = TopicName::new(topic).map_err(|e| e.to_string())?;
        let record = state.topics.get(&name).ok_or("unknown topic")?;
        let index = PartitionId::try_new(partition).map_err(|_| "bad partition")?;
        let partition = state
            .partitions
            .get(&(record.id, index))
            .ok_or("unknown partition")?;
        let leader = partition.leader.ok_or("the partition has no leader")?;
        let broker = state
            .brokers
            .get(&leader)
            .ok_or("the leader is not registered")?;
        Ok(broker.registration.address.clone())
    }

    /// Looks up `spec` (with `timestamp_ms` for timestamp lookups) in each partition of
    /// `topic`. Every partition gets an answer.
    pub(crate) async fn list_offsets(
        &self,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
        timestamp_ms: i64,
    ) -> BTreeMap<i32, Lookup> {
        let state = self.cache.snapshot();
        let mut by_leader: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        let mut out = BTreeMap::new();
        for &p in partitions {
            match Self::leader(&state, topic, p) {
                Ok(address) => by_leader.entry(address).or_default().push(p),
                Err(e) => {
                    out.insert(p, Err(e));
                }
            }
        }
        let calls = by_leader.into_iter().map(|(address, parts)| async move {
            let result = self
                .list_at(&address, topic, &parts, spec, timestamp_ms)
                .await;
            (parts, result)
        });
        for (parts, result) in futures::future::join_all(calls).await {
            match result {
                Ok(found) => {
                    for p in parts {
                        let lookup = found
                            .get(&p)
                            .cloned()
                            .unwrap_or_else(|| Err("the leader did not answer".to_owned()));
                        out.insert(p, lookup);
                    }
                }
                Err(e) => {
                    for p in parts {
                        out.insert(p, Err(e.clone()));
                    }
                }
            }
        }
        out
    }

    async fn list_at(
        &self,
        address: &str,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
        timestamp_ms: i64,
    ) -> std::result::Result<BTreeMap<i32, Lookup>, String> {
        let mut client = BrokerServiceClient::new(self.channel(address)?);
        let request = ListOffsetsRequest {
            topics: vec![ListOffsetsTopic {
                topic: topic.to_owned(),
                partitions: partitions
                    .iter()
                    .map(|&partition| ListOffsetsPartition {
                        partition,
                        spec: spec.into(),
                        timestamp_ms,
                        current_leader_epoch: None,
                    })
                    .collect(),
            }],
        };
        let response = client
            .list_offsets(request)
            .await
            .map_err(|s| format!("{address}: {}", s.message()))?
            .into_inner();
        if let Some(error) = response.error {
            return Err(error.message);
        }
        let mut out = BTreeMap::new();
        for result in response.topics.into_iter().flat_map(|t| t.partitions) {
            let lookup = match result.error {
                Some(error) => Err(error.message),
                None => Ok(result.offset),
            };
            out.insert(result.partition, lookup);
        }
        Ok(out)
    }

    /// The timestamp of the record at `offset` (or the first one after it), if the leader
    /// has one there.
    pub(crate) async fn timestamp_at(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> std::result::Result<Option<i64>, String> {
        let address = Self::leader(&self.cache.snapshot(), topic, partition)?;
        let mut client = BrokerServiceClient::new(self.channel(&address)?);
        let request = FetchRequest {
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 1,
            topics: vec![FetchTopic {
                topic: topic.to_owned(),
                partitions: vec![FetchPartition {
                    partition,
                    fetch_offset: offset,
                    partition_max_bytes: 1,
                    ..FetchPartition::default()
                }],
            }],
        };
        let response = client
            .fetch(request)
            .await
            .map_err(|s| format!("{address}: {}", s.message()))?
            .into_inner();
        let Some(result) = response
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .next()
        else {
            return Ok(None);
        };
        if let Some(error) = result.error {
            return Err(error.message);
        }
        for batch in strom_record::batches(&result.records) {
            let (_, bytes) = batch.map_err(|e| e.to_string())?;
            let records = strom_record::decode_records(bytes).map_err(|e| e.to_string())?;
            if let Some(record) = records.into_iter().find(|r| r.offset >= offset) {
                return Ok(Some(record.timestamp));
            }
        }
        Ok(None)
    }
}
