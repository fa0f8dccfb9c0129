//! A one-process fake cluster for group consumer tests: one broker serving metadata, offsets
//! and fetch streams of topic `t`, which is also the coordinator of every group. The
//! coordinator assigns the partitions in `target` to whichever member heartbeats, and logs
//! heartbeats and commits in order.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

mod broker;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use strom_proto::broker::v1::broker_service_server::BrokerServiceServer;
use strom_proto::common::v1::{Error as PbError, ErrorCode};
use strom_proto::coordinator::v1 as cpb;
use strom_proto::coordinator::v1::coordinator_service_server::{
    CoordinatorService, CoordinatorServiceServer,
};
use strom_record::{BatchBuilder, Compression};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

pub const TOPIC: &str = "t";
pub const TOPIC_ID: &str = "00000000-0000-0000-0000-000000000001";

/// Something the coordinator saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A heartbeat: member epoch and the owned partitions of `t` it reported.
    Heartbeat { epoch: i32, owned: Vec<i32> },
    /// A commit: member epoch and `(partition, offset)` pairs.
    Commit {
        epoch: i32,
        offsets: Vec<(i32, i64)>,
    },
}

#[derive(Debug, Default)]
pub struct State {
    /// One single-record batch per offset, per partition.
    pub logs: Vec<Vec<Bytes>>,
    pub committed: HashMap<i32, i64>,
    pub events: Vec<Event>,
    pub heartbeats: Vec<cpb::HeartbeatRequest>,
    /// The partitions assigned to the member.
    pub target: Vec<i32>,
    /// Whether `target` changed since the member was last told.
    pub target_changed: bool,
    pub epoch: i32,
    /// Errors answered to the next heartbeats, one each.
    pub heartbeat_errors: VecDeque<ErrorCode>,
}

#[derive(Debug, Clone)]
pub struct Mock {
    pub address: String,
    pub state: Arc<Mutex<State>>,
}

impl Mock {
    /// Starts a cluster whose partition `i` holds `records[i]` records, all assigned.
    pub async fn start(records: &[usize]) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let mut state = State {
            target: (0..records.len() as i32).collect(),
            ..State::default()
        };
        for (partition, count) in records.iter().enumerate() {
            state.logs.push(Vec::new());
            for _ in 0..*count {
                append(&mut state, partition as i32);
            }
        }
        let mock = Mock {
            address,
            state: Arc::new(Mutex::new(state)),
        };
        let server = tonic::transport::Server::builder()
            .add_service(BrokerServiceServer::new(mock.clone()))
            .add_service(CoordinatorServiceServer::new(mock.clone()))
            .serve_with_incoming(TcpListenerStream::new(listener));
        tokio::spawn(server);
        mock
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    /// Assigns `partitions` from the next heartbeat on.
    pub fn assign(&self, partitions: &[i32]) {
        let mut state = self.state();
        state.target = partitions.to_vec();
        state.target_changed = true;
    }

    pub fn events(&self) -> Vec<Event> {
        self.state().events.clone()
    }
}

/// Appends one record (value = its offset) to `partition`.
pub fn append(state: &mut State, partition: i32) {
    let log = &mut state.logs[partition as usize];
    let offset = log.len() as i64;
    let mut builder = BatchBuilder::new(Compression::None).base_offset(offset);
    let value = offset.to_string();
    builder
        .append(1, None, Some(value.as_bytes()), &[])
        .unwrap();
    log.push(builder.build().unwrap());
}

fn owned_partitions(request: &cpb::HeartbeatRequest) -> Vec<i32> {
    let mut owned: Vec<i32> = request
        .topic_partitions
        .iter()
        .filter(|t| t.topic_id == TOPIC_ID)
        .flat_map(|t| t.partitions.clone())
        .collect();
    owned.sort_unstable();
    owned
}

#[tonic::async_trait]
impl CoordinatorService for Mock {
    async fn find_coordinator(
        &self,
        request: Request<cpb::FindCoordinatorRequest>,
    ) -> Result<Response<cpb::FindCoordinatorResponse>, Status> {
        let coordinators = request
            .into_inner()
            .group_ids
            .into_iter()
            .map(|group_id| cpb::CoordinatorLocation {
                group_id,
                error: None,
                coordinator_id: 1,
                address: self.address.clone(),
            })
            .collect();
        Ok(Response::new(cpb::FindCoordinatorResponse {
            error: None,
            coordinators,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<cpb::HeartbeatRequest>,
    ) -> Result<Response<cpb::HeartbeatResponse>, Status> {
        let request = request.into_inner();
        let mut state = self.state();
        let owned = owned_partitions(&request);
        let epoch = request.member_epoch;
        state.events.push(Event::Heartbeat { epoch, owned });
        state.heartbeats.push(request.clone());
        let mut response = cpb::HeartbeatResponse {
            member_id: request.member_id.clone(),
            heartbeat_interval_ms: 50,
            ..Default::default()
        };
        if let Some(code) = state.heartbeat_errors.pop_front() {
            response.error = Some(PbError::new(code, "scripted"));
            if code == ErrorCode::FencedMemberEpoch {
                state.epoch += 1;
            }
            return Ok(Response::new(response));
        }
        if epoch < 0 {
            response.member_epoch = -1;
            return Ok(Response::new(response));
        }
        if epoch == 0 || state.target_changed {
            state.epoch += 1;
            state.target_changed = false;
            response.assignment = Some(cpb::Assignment {
                topic_partitions: vec![cpb::TopicPartitions {
                    topic_id: TOPIC_ID.into(),
                    topic: TOPIC.into(),
                    partitions: state.target.clone(),
                }],
            });
        }
        response.member_epoch = state.epoch;
        Ok(Response::new(response))
    }

    async fn leave_group(
        &self,
        _: Request<cpb::LeaveGroupRequest>,
    ) -> Result<Response<cpb::LeaveGroupResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }

    async fn commit_offsets(
        &self,
        request: Request<cpb::CommitOffsetsRequest>,
    ) -> Result<Response<cpb::CommitOffsetsResponse>, Status> {
        let request = request.into_inner();
        let mut state = self.state();
        let epoch = request.member_epoch;
        let rejected = epoch != state.epoch;
        let mut offsets = Vec::new();
        let mut topics = Vec::new();
        for topic in &request.topics {
            let mut results = Vec::new();
            for partition in &topic.partitions {
                offsets.push((partition.partition, partition.offset));
                if !rejected {
                    state
                        .committed
                        .insert(partition.partition, partition.offset);
                }
                results.push(cpb::CommitOffsetsPartitionResult {
                    partition: partition.partition,
                    error: None,
                });
            }
            topics.push(cpb::CommitOffsetsTopicResult {
                topic: topic.topic.clone(),
                partitions: results,
            });
        }
        state.events.push(Event::Commit { epoch, offsets });
        if rejected {
            let error = PbError::new(ErrorCode::FencedMemberEpoch, "wrong epoch");
            return Ok(Response::new(cpb::CommitOffsetsResponse {
                error: Some(error),
                topics: Vec::new(),
            }));
        }
        Ok(Response::new(cpb::CommitOffsetsResponse {
            error: None,
            topics,
        }))
    }

    async fn fetch_offsets(
        &self,
        request: Request<cpb::FetchOffsetsRequest>,
    ) -> Result<Response<cpb::FetchOffsetsResponse>, Status> {
        let state = self.state();
        let topics = request
            .into_inner()
            .topics
            .into_iter()
            .map(|topic| cpb::FetchOffsetsTopicResult {
                partitions: topic
                    .partitions
                    .iter()
                    .map(|&partition| cpb::FetchOffsetsPartitionResult {
                        partition,
                        offset: state.committed.get(&partition).copied(),
                        ..Default::default()
                    })
                    .collect(),
                topic: topic.topic,
            })
            .collect();
        Ok(Response::new(cpb::FetchOffsetsResponse {
            error: None,
            topics,
        }))
    }

    async fn list_groups(
        &self,
        _: Request<cpb::ListGroupsRequest>,
    ) -> Result<Response<cpb::ListGroupsResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }

    async fn describe_groups(
        &self,
        _: Request<cpb::DescribeGroupsRequest>,
    ) -> Result<Response<cpb::DescribeGroupsResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }

    async fn delete_groups(
        &self,
        _: Request<cpb::DeleteGroupsRequest>,
    ) -> Result<Response<cpb::DeleteGroupsResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }

    async fn reset_offsets(
        &self,
        _: Request<cpb::ResetOffsetsRequest>,
    ) -> Result<Response<cpb::ResetOffsetsResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }
}
