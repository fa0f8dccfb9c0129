//! The fake broker: metadata, offsets and fetch streams of topic `t`.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use strom_proto::broker::v1 as bpb;
use strom_proto::broker::v1::broker_service_server::BrokerService;
use strom_proto::common::v1::Broker;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{Mock, TOPIC, TOPIC_ID};

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl BrokerService for Mock {
    async fn produce(
        &self,
        _: Request<bpb::ProduceRequest>,
    ) -> Result<Response<bpb::ProduceResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }

    type ProduceStreamStream = BoxStream<bpb::ProduceStreamResponse>;

    async fn produce_stream(
        &self,
        _: Request<tonic::Streaming<bpb::ProduceStreamRequest>>,
    ) -> Result<Response<Self::ProduceStreamStream>, Status> {
        Err(Status::unimplemented("mock"))
    }

    async fn fetch(
        &self,
        _: Request<bpb::FetchRequest>,
    ) -> Result<Response<bpb::FetchResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }

    type FetchStreamStream = ReceiverStream<Result<bpb::FetchResponse, Status>>;

    /// Sends the records from the fetch offset, then every 50 ms what was appended since.
    async fn fetch_stream(
        &self,
        request: Request<bpb::FetchRequest>,
    ) -> Result<Response<Self::FetchStreamStream>, Status> {
        let request = request.into_inner();
        let wanted = &request.topics[0].partitions[0];
        let (partition, mut next) = (wanted.partition, wanted.fetch_offset);
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        let state = Arc::clone(&self.state);
        tokio::spawn(async move {
            loop {
                let (records, end) = {
                    let state = state.lock().unwrap();
                    let log = &state.logs[partition as usize];
                    let from = usize::try_from(next).unwrap().min(log.len());
                    (log[from..].concat(), log.len() as i64)
                };
                next = next.max(end);
                let response = bpb::FetchResponse {
                    error: None,
                    topics: vec![bpb::FetchTopicResult {
                        topic: TOPIC.into(),
                        partitions: vec![bpb::FetchPartitionResult {
                            partition,
                            error: None,
                            high_watermark: end,
                            log_start_offset: 0,
                            records: records.into(),
                        }],
                    }],
                };
                if sender.send(Ok(response)).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(receiver)))
    }

    async fn list_offsets(
        &self,
        request: Request<bpb::ListOffsetsRequest>,
    ) -> Result<Response<bpb::ListOffsetsResponse>, Status> {
        let request = request.into_inner();
        let wanted = &request.topics[0].partitions[0];
        let end = self.state().logs[wanted.partition as usize].len() as i64;
        let offset = if wanted.spec() == bpb::OffsetSpec::Earliest {
            0
        } else {
            end
        };
        Ok(Response::new(bpb::ListOffsetsResponse {
            error: None,
            topics: vec![bpb::ListOffsetsTopicResult {
                topic: TOPIC.into(),
                partitions: vec![bpb::ListOffsetsPartitionResult {
                    partition: wanted.partition,
                    offset: Some(offset),
                    ..Default::default()
                }],
            }],
        }))
    }

    async fn metadata(
        &self,
        request: Request<bpb::MetadataRequest>,
    ) -> Result<Response<bpb::MetadataResponse>, Status> {
        let count = self.state().logs.len() as i32;
        let partitions = (0..count)
            .map(|partition| bpb::PartitionMetadata {
                partition,
                leader_id: Some(1),
                replicas: vec![1],
                isr: vec![1],
                ..Default::default()
            })
            .collect();
        let topics = if request.into_inner().topics.is_empty() {
            Vec::new()
        } else {
            vec![bpb::TopicMetadata {
                topic: TOPIC.into(),
                topic_id: TOPIC_ID.into(),
                error: None,
                partitions,
            }]
        };
        Ok(Response::new(bpb::MetadataResponse {
            brokers: vec![Broker {
                broker_id: 1,
                address: self.address.clone(),
                rack: String::new(),
            }],
            topics,
            ..Default::default()
        }))
    }

    async fn init_producer_id(
        &self,
        _: Request<bpb::InitProducerIdRequest>,
    ) -> Result<Response<bpb::InitProducerIdResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }
}
