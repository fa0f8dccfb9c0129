//! CoordinatorService on a broker: it answers FindCoordinator, so clients can find a group's
//! coordinator from the bootstrap broker addresses alone, and redirects every other method to
//! the group's coordinator with NOT_COORDINATOR and the coordinator's address.

use std::sync::Arc;

use strom_meta::{Keys, MetaStore, MetadataCache, locate_coordinator};
use strom_proto::common::v1::{Error as PbError, ErrorCode, LeaderHint};
use strom_proto::coordinator::v1 as pb;
use strom_proto::coordinator::v1::coordinator_service_server::CoordinatorService;
use tonic::{Request, Response, Status};

/// Locates group coordinators for clients.
#[derive(Debug, Clone)]
pub struct CoordinatorLocator {
    store: Arc<dyn MetaStore>,
    keys: Keys,
    cache: MetadataCache,
}

impl CoordinatorLocator {
    /// A locator reading owners from `store` and live coordinators from `cache`.
    pub fn new(store: Arc<dyn MetaStore>, keys: Keys, cache: MetadataCache) -> Self {
        Self { store, keys, cache }
    }

    /// The coordinator of `group`, or why there is none.
    async fn locate(&self, group: &str) -> Result<(i32, String), PbError> {
        if let Some(reason) = strom_types::group_id_problem(group) {
            return Err(PbError::new(
                ErrorCode::InvalidGroupId,
                format!("invalid group id {group:?}: {reason}"),
            ));
        }
        let coordinators = self.cache.snapshot().coordinators.clone();
        match locate_coordinator(&*self.store, &self.keys, group, &coordinators).await {
            Ok(Some(found)) => Ok((found.id, found.address)),
            Ok(None) => Err(PbError::new(
                ErrorCode::CoordinatorNotAvailable,
                "no coordinator is registered",
            )),
            Err(e) => Err(PbError::new(
                ErrorCode::MetadataStoreUnavailable,
                e.to_string(),
            )),
        }
    }

    /// NOT_COORDINATOR with the group's coordinator as the hint.
    async fn redirect(&self, group: &str) -> PbError {
        match self.locate(group).await {
            Ok((id, address)) => PbError::new(
                ErrorCode::NotCoordinator,
                format!("brokers only locate coordinators; group {group:?} is served by coordinator {id} at {address}"),
            )
            .with_leader(LeaderHint {
                leader_id: id,
                leader_epoch: None,
                address,
            }),
            Err(e) => e,
        }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl CoordinatorService for CoordinatorLocator {
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
            match self.locate(&group_id).await {
                Ok((id, address)) => {
                    location.coordinator_id = id;
                    location.address = address;
                }
                Err(e) => location.error = Some(e),
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
        let r = request.into_inner();
        Ok(Response::new(pb::HeartbeatResponse {
            error: Some(self.redirect(&r.group_id).await),
            member_id: r.member_id,
            ..Default::default()
        }))
    }

    async fn leave_group(
        &self,
        request: Request<pb::LeaveGroupRequest>,
    ) -> Reply<pb::LeaveGroupResponse> {
        let group = request.into_inner().group_id;
        Ok(Response::new(pb::LeaveGroupResponse {
            error: Some(self.redirect(&group).await),
        }))
    }

    async fn commit_offsets(
        &self,
        request: Request<pb::CommitOffsetsRequest>,
    ) -> Reply<pb::CommitOffsetsResponse> {
        let group = request.into_inner().group_id;
        Ok(Response::new(pb::CommitOffsetsResponse {
            error: Some(self.redirect(&group).await),
            topics: Vec::new(),
        }))
    }

    async fn fetch_offsets(
        &self,
        request: Request<pb::FetchOffsetsRequest>,
    ) -> Reply<pb::FetchOffsetsResponse> {
        let group = request.into_inner().group_id;
        Ok(Response::new(pb::FetchOffsetsResponse {
            error: Some(self.redirect(&group).await),
            topics: Vec::new(),
        }))
    }

    async fn list_groups(
        &self,
        _request: Request<pb::ListGroupsRequest>,
    ) -> Reply<pb::ListGroupsResponse> {
        Ok(Response::new(pb::ListGroupsResponse {
            error: Some(self.any_coordinator()),
            groups: Vec::new(),
        }))
    }

    async fn describe_groups(
        &self,
        request: Request<pb::DescribeGroupsRequest>,
    ) -> Reply<pb::DescribeGroupsResponse> {
        let mut groups = Vec::new();
        for group_id in request.into_inner().group_ids {
            let error = Some(self.redirect(&group_id).await);
            groups.push(pb::GroupDescription {
                group_id,
                error,
                ..Default::default()
            });
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
            let error = Some(self.redirect(&group_id).await);
            groups.push(pb::DeleteGroupResult { group_id, error });
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
        let r = request.into_inner();
        Ok(Response::new(pb::ResetOffsetsResponse {
            error: Some(self.redirect(&r.group_id).await),
            topic: r.topic,
            partitions: Vec::new(),
        }))
    }
}

impl CoordinatorLocator {
    /// NOT_COORDINATOR pointing at any live coordinator (for cluster-wide calls).
    fn any_coordinator(&self) -> PbError {
        let state = self.cache.snapshot();
        match state.coordinators.values().next() {
            Some(c) => PbError::new(
                ErrorCode::NotCoordinator,
                format!("ask a coordinator, e.g. {} at {}", c.id, c.address),
            )
            .with_leader(LeaderHint {
                leader_id: c.id,
                leader_epoch: None,
                address: c.address.clone(),
            }),
            None => PbError::new(
                ErrorCode::CoordinatorNotAvailable,
                "no coordinator is registered",
            ),
        }
    }
}
