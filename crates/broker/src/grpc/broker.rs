//! BrokerService: Metadata from the watch cache; Produce, ProduceStream, Fetch, FetchStream and
//! ListOffsets on the leader, and InitProducerId from controller-reserved blocks (see
//! [`crate::data`]).

use std::pin::Pin;

use strom_proto::broker::v1 as pb;
use strom_proto::broker::v1::broker_service_server::BrokerService;
use strom_proto::common::v1::{Broker, Error as PbError, ErrorCode};
use strom_types::TopicName;
use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::data::{self, Lookup, ProducerIds};
use strom_meta::{ClusterState, MetadataCache};

/// The client-facing broker service.
#[derive(Debug, Clone)]
pub struct BrokerGrpc {
    cluster: String,
    cache: MetadataCache,
    lookup: Lookup,
    producer_ids: ProducerIds,
    /// Cancelled when the broker shuts down: open ProduceStream and FetchStream calls end
    /// then, so the server's graceful shutdown does not wait for clients to hang up.
    closing: CancellationToken,
    /// The broker epoch while registered; `None` while the broker has no live registration.
    registered: watch::Receiver<Option<i64>>,
}

impl BrokerGrpc {
    /// A service answering from `cache` for cluster `cluster`, whose streams end when
    /// `closing` is cancelled, and which answers Metadata only while `registered`.
    pub fn new(
        cluster: String,
        lookup: Lookup,
        producer_ids: ProducerIds,
        closing: CancellationToken,
        registered: watch::Receiver<Option<i64>>,
    ) -> Self {
        Self {
            cluster,
            cache: lookup.cache.clone(),
            lookup,
            producer_ids,
            closing,
            registered,
        }
    }
}

/// Builds the Metadata answer from one snapshot.
fn metadata_response(
    cluster: &str,
    state: &ClusterState,
    request: &pb::MetadataRequest,
) -> pb::MetadataResponse {
    let brokers = state
        .brokers
        .iter()
        .map(|(id, broker)| Broker {
            broker_id: id.get(),
            address: broker.registration.address.clone(),
            rack: broker.registration.rack.clone().unwrap_or_default(),
        })
        .collect();
    let names: Vec<String> = if request.all_topics {
        state.topics.keys().map(ToString::to_string).collect()
    } else {
        request.topics.clone()
    };
    let topics = names
        .into_iter()
        .map(|name| topic_metadata(state, name))
        .collect();
    pb::MetadataResponse {
        error: None,
        cluster_id: cluster.to_owned(),
        controller_id: state.controller.as_ref().map(|(record, _)| record.id),
        brokers,
        topics,
    }
}

fn topic_metadata(state: &ClusterState, name: String) -> pb::TopicMetadata {
    let unknown = |name: String| pb::TopicMetadata {
        error: Some(PbError::new(
            ErrorCode::UnknownTopicOrPartition,
            format!("unknown topic {name:?}"),
        )),
        topic: name,
        ..Default::default()
    };
    let topic_name = match TopicName::new(name.as_str()) {
        Ok(topic_name) => topic_name,
        Err(error) => {
            return pb::TopicMetadata {
                error: Some(PbError::new(
                    ErrorCode::InvalidTopicException,
                    format!("invalid topic name {name:?}: {error}"),
                )),
                topic: name,
                ..Default::default()
            };
        }
    };
    let Some(topic) = state.topics.get(&topic_name) else {
        return unknown(name);
    };
    let partitions = state
        .topic_partitions(topic.id)
        .map(|(partition, record)| {
            let error = record.leader.is_none().then(|| {
                PbError::new(
                    ErrorCode::LeaderNotAvailable,
                    "no in-sync replica is live; the partition is offline",
                )
            });
            pb::PartitionMetadata {
                partition: partition.get(),
                error,
                leader_id: record.leader.map(|b| b.get()),
                leader_epoch: record.leader_epoch.get(),
                replicas: record.replicas.iter().map(|b| b.get()).collect(),
                isr: record.isr.iter().map(|b| b.get()).collect(),
                offline_replicas: record
                    .replicas
                    .iter()
                    .filter(|b| !state.brokers.contains_key(b))
                    .map(|b| b.get())
                    .collect(),
            }
        })
        .collect();
    pb::TopicMetadata {
        topic: name,
        topic_id: topic.id.to_string(),
        error: None,
        partitions,
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl BrokerService for BrokerGrpc {
    async fn produce(
        &self,
        request: Request<pb::ProduceRequest>,
    ) -> Result<Response<pb::ProduceResponse>, Status> {
        Ok(Response::new(
            data::produce(&self.lookup, request.into_inner()).await,
        ))
    }

    type ProduceStreamStream = BoxStream<pb::ProduceStreamResponse>;

    async fn produce_stream(
        &self,
        request: Request<Streaming<pb::ProduceStreamRequest>>,
    ) -> Result<Response<Self::ProduceStreamStream>, Status> {
        let answers = data::produce_stream(self.lookup.clone(), request.into_inner());
        // Answers still in flight at shutdown are not sent: the producer retries them
        // (idempotently) on the partitions' next leader.
        let answers =
            futures::StreamExt::take_until(answers, self.closing.clone().cancelled_owned());
        Ok(Response::new(Box::pin(answers)))
    }

    async fn fetch(
        &self,
        request: Request<pb::FetchRequest>,
    ) -> Result<Response<pb::FetchResponse>, Status> {
        Ok(Response::new(
            data::fetch(&self.lookup, &request.into_inner()).await,
        ))
    }

    type FetchStreamStream = BoxStream<pb::FetchResponse>;

    async fn fetch_stream(
        &self,
        request: Request<pb::FetchRequest>,
    ) -> Result<Response<Self::FetchStreamStream>, Status> {
        let responses = data::fetch_stream(self.lookup.clone(), request.into_inner());
        let responses =
            futures::StreamExt::take_until(responses, self.closing.clone().cancelled_owned());
        Ok(Response::new(Box::pin(responses.map(Ok))))
    }

    async fn list_offsets(
        &self,
        request: Request<pb::ListOffsetsRequest>,
    ) -> Result<Response<pb::ListOffsetsResponse>, Status> {
        Ok(Response::new(
            data::list_offsets(&self.lookup, &request.into_inner()).await,
        ))
    }

    async fn metadata(
        &self,
        request: Request<pb::MetadataRequest>,
    ) -> Result<Response<pb::MetadataResponse>, Status> {
        if self.registered.borrow().is_none() {
            // Unregistered (starting, or its lease lapsed — perhaps cut off from the metadata
            // store): its view may name it leader of partitions others lead by now. UNAVAILABLE
            // makes clients ask another broker.
            return Err(Status::unavailable(format!(
                "broker {} is not registered in the cluster; ask another broker",
                self.lookup.me
            )));
        }
        let request = request.into_inner();
        let state = self.cache.snapshot();
        Ok(Response::new(metadata_response(
            &self.cluster,
            &state,
            &request,
        )))
    }

    async fn init_producer_id(
        &self,
        _request: Request<pb::InitProducerIdRequest>,
    ) -> Result<Response<pb::InitProducerIdResponse>, Status> {
        Ok(Response::new(self.producer_ids.init().await))
    }
}
