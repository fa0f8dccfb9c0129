//! Consumer-group administration: list, describe (with lag), delete, reset offsets.

use strom_proto::common::v1::ErrorCode;
use strom_proto::coordinator::v1 as pb;
use strom_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;

use super::{Admin, one};
use crate::group::coordinator::CoordinatorLink;
use crate::{Error, Result};

impl Admin {
    /// Every group of the cluster, optionally only those in one of `states`.
    pub async fn list_groups(&self, states: &[pb::GroupState]) -> Result<Vec<pb::GroupListing>> {
        let request = pb::ListGroupsRequest {
            states: states.iter().map(|state| i32::from(*state)).collect(),
        };
        // Brokers answer a cluster-wide group call by naming a live coordinator.
        let redirect = self
            .client
            .call_any_broker("list groups", |channel| {
                let request = request.clone();
                async move {
                    CoordinatorServiceClient::new(channel)
                        .list_groups(request)
                        .await
                }
            })
            .await?;
        let response = match redirect.error {
            Some(error) if error.code() == ErrorCode::NotCoordinator => {
                let code = error.code();
                let address = error
                    .leader
                    .map(|hint| hint.address)
                    .filter(|address| !address.is_empty())
                    .ok_or_else(|| Error::coordinator(code, error.message))?;
                let mut rpc = self.client.coordinator_client(&address)?;
                self.client
                    .unary("list groups", rpc.list_groups(request))
                    .await?
            }
            Some(error) => return Err(Error::coordinator(error.code(), error.message)),
            None => redirect,
        };
        if let Some(error) = response.error {
            return Err(Error::coordinator(error.code(), error.message));
        }
        Ok(response.groups)
    }

    /// Describes a group: members, assignments, committed offsets and, with `include_lag`,
    /// each partition's high watermark and lag in records and milliseconds.
    pub async fn describe_group(
        &self,
        group: &str,
        include_lag: bool,
    ) -> Result<pb::GroupDescription> {
        let request = pb::DescribeGroupsRequest {
            group_ids: vec![group.to_owned()],
            include_lag,
        };
        let link = CoordinatorLink::new(self.client.clone(), group.to_owned());
        let (address, response) = link
            .call("describe groups", |mut rpc| async move {
                rpc.describe_groups(request).await
            })
            .await?;
        link.check(&address, response.error)?;
        let mut description = one(response.groups)?;
        link.check(&address, description.error.take())?;
        Ok(description)
    }

    /// Deletes a group without members, with its committed offsets.
    pub async fn delete_group(&self, group: &str) -> Result<()> {
        let request = pb::DeleteGroupsRequest {
            group_ids: vec![group.to_owned()],
        };
        let link = CoordinatorLink::new(self.client.clone(), group.to_owned());
        let (address, response) = link
            .call("delete groups", |mut rpc| async move {
                rpc.delete_groups(request).await
            })
            .await?;
        link.check(&address, response.error)?;
        link.check(&address, one(response.groups)?.error)
    }

    /// Moves a group's committed offsets for one topic (the group must have no members,
    /// except for a dry run). Per-partition failures are left in the answer.
    pub async fn reset_offsets(
        &self,
        request: pb::ResetOffsetsRequest,
    ) -> Result<pb::ResetOffsetsResponse> {
        let link = CoordinatorLink::new(self.client.clone(), request.group_id.clone());
        let (address, mut response) = link
            .call("reset offsets", |mut rpc| async move {
                rpc.reset_offsets(request).await
            })
            .await?;
        link.check(&address, response.error.take())?;
        Ok(response)
    }
}
