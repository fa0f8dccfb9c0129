//! AdminService on the controller.

use strom_proto::admin::v1 as pb;
use strom_proto::admin::v1::admin_service_server::AdminService;
use tonic::{Request, Response, Status};

use super::ControllerRouter;
use crate::shell::Command;

#[tonic::async_trait]
impl AdminService for ControllerRouter {
    async fn drain_broker(
        &self,
        request: Request<pb::DrainBrokerRequest>,
    ) -> Result<Response<pb::DrainBrokerResponse>, Status> {
        let request = request.into_inner();
        let response = self
            .respond(
                |r| Command::DrainBroker(request, r),
                |resp, e| resp.error = Some(e),
            )
            .await;
        Ok(Response::new(response))
    }

    async fn create_topics(
        &self,
        request: Request<pb::CreateTopicsRequest>,
    ) -> Result<Response<pb::CreateTopicsResponse>, Status> {
        let request = request.into_inner();
        let response = self
            .respond(
                |r| Command::CreateTopics(request, r),
                |resp, e| resp.error = Some(e),
            )
            .await;
        Ok(Response::new(response))
    }

    async fn delete_topics(
        &self,
        request: Request<pb::DeleteTopicsRequest>,
    ) -> Result<Response<pb::DeleteTopicsResponse>, Status> {
        let request = request.into_inner();
        let response = self
            .respond(
                |r| Command::DeleteTopics(request, r),
                |resp, e| resp.error = Some(e),
            )
            .await;
        Ok(Response::new(response))
    }

    async fn describe_topics(
        &self,
        request: Request<pb::DescribeTopicsRequest>,
    ) -> Result<Response<pb::DescribeTopicsResponse>, Status> {
        let request = request.into_inner();
        let response = self
            .respond(
                |r| Command::DescribeTopics(request, r),
                |resp, e| resp.error = Some(e),
            )
            .await;
        Ok(Response::new(response))
    }

    async fn describe_cluster(
        &self,
        _request: Request<pb::DescribeClusterRequest>,
    ) -> Result<Response<pb::DescribeClusterResponse>, Status> {
        let response = self
            .respond(Command::DescribeCluster, |resp, e| resp.error = Some(e))
            .await;
        Ok(Response::new(response))
    }

    async fn alter_configs(
        &self,
        request: Request<pb::AlterConfigsRequest>,
    ) -> Result<Response<pb::AlterConfigsResponse>, Status> {
        let request = request.into_inner();
        let response = self
            .respond(
                |r| Command::AlterConfigs(request, r),
                |resp, e| resp.error = Some(e),
            )
            .await;
        Ok(Response::new(response))
    }

    async fn describe_configs(
        &self,
        request: Request<pb::DescribeConfigsRequest>,
    ) -> Result<Response<pb::DescribeConfigsResponse>, Status> {
        let request = request.into_inner();
        let response = self
            .respond(
                |r| Command::DescribeConfigs(request, r),
                |resp, e| resp.error = Some(e),
            )
            .await;
        Ok(Response::new(response))
    }
}
