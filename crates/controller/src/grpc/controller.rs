//! ControllerService: requests from brokers.

use strom_proto::controller::v1 as pb;
use strom_proto::controller::v1::controller_service_server::ControllerService;
use tonic::{Request, Response, Status};

use super::ControllerRouter;
use crate::shell::Command;

#[tonic::async_trait]
impl ControllerService for ControllerRouter {
    async fn alter_partition(
        &self,
        request: Request<pb::AlterPartitionRequest>,
    ) -> Result<Response<pb::AlterPartitionResponse>, Status> {
        let request = request.into_inner();
        let response = self
            .respond(
                |r| Command::AlterPartition(request, r),
                |resp, e| resp.error = Some(e),
            )
            .await;
        Ok(Response::new(response))
    }

    async fn allocate_producer_ids(
        &self,
        request: Request<pb::AllocateProducerIdsRequest>,
    ) -> Result<Response<pb::AllocateProducerIdsResponse>, Status> {
        let request = request.into_inner();
        let response = self
            .respond(
                |r| Command::AllocateProducerIds(request, r),
                |resp, e| resp.error = Some(e),
            )
            .await;
        Ok(Response::new(response))
    }
}
