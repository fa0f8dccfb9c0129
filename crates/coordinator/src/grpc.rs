//! The CoordinatorService handlers: convert, call the runtime, map the result. Request-level
//! failures go in each response's `error` field.

use std::collections::BTreeMap;

use strom_proto::coordinator::v1 as pb;
use strom_proto::coordinator::v1::coordinator_service_server::CoordinatorService;
use tonic::{Request, Response, Status};

use crate::convert::{assignment_to_pb, heartbeat_from_pb};
use crate::runtime::{CommitPartition, Coordinator};

/// Serves CoordinatorService from a [`Coordinator`].
#[derive(Debug, Clone)]
pub struct CoordinatorGrpc {
    coordinator: Coordinator,
}

impl CoordinatorGrpc {
    /// Handlers over `coordinator`.
    pub fn new(coordinator: Coordinator) -> Self {
        Self { coordinator }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl CoordinatorService for CoordinatorGrpc {
    async fn find_coordinator(
        &self,
        request: Request<pb::FindCoordinatorRequest>,
    ) -> Reply<pb::FindCoordinatorResponse> {
        let mut coordinators = Vec::new();
        for group_id in request.into_inner().group_ids {
            let mut location = pb::CoordinatorLocation {
                group_id: group_id.clone(),
                ..Default::default()
            };
            match self.coordinator.find_coordinator(&group_id).await {
                Ok(found) => {
                    location.coordinator_id = found.id;
                    location.address = found.address;
                }
                Err(e) => location.error = Some(e.to_pb()),
            }
            coordinators.push(location);
        }
        Ok(Response::new(pb::FindCoordinatorResponse {
            error: None,
            coordinators,
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Reply<pb::HeartbeatResponse> {
        let request = request.into_inner();
        let group = request.group_id.clone();
        let member_id = request.member_id.clone();
        let outcome = match heartbeat_from_pb(request) {
            Ok(input) => self.coordinator.heartbeat(&group, input).await,
            Err(e) => Err(e),
        };
        let response = match outcome {
            Ok(out) => pb::HeartbeatResponse {
                error: None,
                member_id,
                member_epoch: out.member_epoch,
                heartbeat_interval_ms: out.heartbeat_interval_ms,
                assignment: out
                    .assignment
                    .map(|a| assignment_to_pb(&a, &self.coordinator.topics())),
            },
            Err(e) => pb::HeartbeatResponse {
                error: Some(e.to_pb()),
                member_id,
                ..Default::default()
            },
        };
        Ok(Response::new(response))
    }

    async fn leave_group(
        &self,
        request: Request<pb::LeaveGroupRequest>,
    ) -> Reply<pb::LeaveGroupResponse> {
        let r = request.into_inner();
        let outcome = self
            .coordinator
            .leave_group(&r.group_id, &r.member_id, &r.instance_id, &r.reason)
            .await;
        Ok(Response::new(pb::LeaveGroupResponse {
            error: outcome.err().map(|e| e.to_pb()),
        }))
    }

    async fn commit_offsets(
        &self,
        request: Request<pb::CommitOffsetsRequest>,
    ) -> Reply<pb::CommitOffsetsResponse> {
        let r = request.into_inner();
        let partitions: Vec<CommitPartition> = r
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| CommitPartition {
                    topic: t.topic.clone(),
                    partition: p.partition,
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata: p.metadata.clone(),
                })
            })
            .collect();
        let outcome = self
            .coordinator
            .commit_offsets(&r.group_id, &r.member_id, r.member_epoch, partitions)
            .await;
        let response = match outcome {
            Ok(outcomes) => {
                let mut topics: BTreeMap<String, Vec<pb::CommitOffsetsPartitionResult>> =
                    BTreeMap::new();
                for (topic, partition, result) in outcomes {
                    topics
                        .entry(topic)
                        .or_default()
                        .push(pb::CommitOffsetsPartitionResult {
                            partition,
                            error: result.err().map(|e| e.to_pb()),
                        });
                }
                pb::CommitOffsetsResponse {
                    error: None,
                    topics: topics
                        .into_iter()
                        .map(|(topic, mut partitions)| {
                            partitions.sort_by_key(|p| p.partition);
                            pb::CommitOffsetsTopicResult { topic, partitions }
                        })
                        .collect(),
                }
            }
            Err(e) => pb::CommitOffsetsResponse {
                error: Some(e.to_pb()),
                topics: Vec::new(),
            },
        };
        Ok(Response::new(response))
    }

    async fn fetch_offsets(
        &self,
        request: Request<pb::FetchOffsetsRequest>,
    ) -> Reply<pb::FetchOffsetsResponse> {
        let r = request.into_inner();
        let wanted: BTreeMap<String, Vec<i32>> = r
            .topics
            .into_iter()
            .map(|t| (t.topic, t.partitions))
            .collect();
        let response = match self.coordinator.fetch_offsets(&r.group_id, &wanted).await {
            Ok(found) => {
                let mut topics: BTreeMap<String, Vec<pb::FetchOffsetsPartitionResult>> =
                    BTreeMap::new();
                for c in found {
                    let record = c.committed;
                    // No partition has a negative index: asking for one is a mistake, not a
                    // partition without a commit.
                    let error = (c.partition < 0).then(|| {
                        crate::Error::UnknownTopicOrPartition {
                            topic: c.topic.clone(),
                            partition: c.partition,
                        }
                        .to_pb()
                    });
                    topics
                        .entry(c.topic)
                        .or_default()
                        .push(pb::FetchOffsetsPartitionResult {
                            partition: c.partition,
                            error,
                            offset: record.as_ref().map(|r| r.offset),
                            leader_epoch: record.as_ref().and_then(|r| r.leader_epoch),
                            metadata: record.map(|r| r.metadata).unwrap_or_default(),
                        });
                }
                pb::FetchOffsetsResponse {
                    error: None,
                    topics: topics
                        .into_iter()
                        .map(|(topic, partitions)| pb::FetchOffsetsTopicResult {
                            topic,
                            partitions,
                        })
                        .collect(),
                }
            }
            Err(e) => pb::FetchOffsetsResponse {
                error: Some(e.to_pb()),
                topics: Vec::new(),
            },
        };
        Ok(Response::new(response))
    }

    async fn list_groups(
        &self,
        request: Request<pb::ListGroupsRequest>,
    ) -> Reply<pb::ListGroupsResponse> {
        let states = request.into_inner().states;
        let unknown = states.iter().find(|state| {
            **state == pb::GroupState::Unspecified as i32
                || pb::GroupState::try_from(**state).is_err()
        });
        if let Some(state) = unknown {
            let error = crate::Error::InvalidRequest {
                reason: format!("{state} is not a group state to filter by"),
            };
            return Ok(Response::new(pb::ListGroupsResponse {
                error: Some(error.to_pb()),
                groups: Vec::new(),
            }));
        }
        let response = match self.coordinator.list_groups().await {
            Ok(groups) => pb::ListGroupsResponse {
                error: None,
                groups: groups
                    .into_iter()
                    .filter(|g| states.is_empty() || states.contains(&g.state))
                    .collect(),
            },
            Err(e) => pb::ListGroupsResponse {
                error: Some(e.to_pb()),
                groups: Vec::new(),
            },
        };
        Ok(Response::new(response))
    }

    async fn describe_groups(
        &self,
        request: Request<pb::DescribeGroupsRequest>,
    ) -> Reply<pb::DescribeGroupsResponse> {
        let r = request.into_inner();
        let mut groups = Vec::new();
        for group_id in r.group_ids {
            let description = match self
                .coordinator
                .describe_group(&group_id, r.include_lag)
                .await
            {
                Ok(description) => description,
                Err(e) => pb::GroupDescription {
                    group_id,
                    error: Some(e.to_pb()),
                    ..Default::default()
                },
            };
            groups.push(description);
        }
        Ok(Response::new(pb::DescribeGroupsResponse {
            error: None,
            groups,
        }))
    }

    async fn delete_groups(
        &self,
        request: Request<pb::DeleteGroupsRequest>,
    ) -> Reply<pb::DeleteGroupsResponse> {
        let mut groups = Vec::new();
        for group_id in request.into_inner().group_ids {
            let error = self.coordinator.delete_group(&group_id).await.err();
            groups.push(pb::DeleteGroupResult {
                group_id,
                error: error.map(|e| e.to_pb()),
            });
        }
        Ok(Response::new(pb::DeleteGroupsResponse {
            error: None,
            groups,
        }))
    }

    async fn reset_offsets(
        &self,
        request: Request<pb::ResetOffsetsRequest>,
    ) -> Reply<pb::ResetOffsetsResponse> {
        let request = request.into_inner();
        let topic = request.topic.clone();
        let response = match self.coordinator.reset_offsets(request).await {
            Ok(partitions) => pb::ResetOffsetsResponse {
                error: None,
                topic,
                partitions,
            },
            Err(e) => pb::ResetOffsetsResponse {
                error: Some(e.to_pb()),
                topic,
                partitions: Vec::new(),
            },
        };
        Ok(Response::new(response))
    }
}
