//! AdminService on a broker: every call is forwarded to the active controller, so clients need
//! only a broker address.

use std::time::Duration;

use strom_proto::admin::v1 as pb;
use strom_proto::admin::v1::admin_service_client::AdminServiceClient;
use strom_proto::admin::v1::admin_service_server::AdminService;
use strom_proto::common::v1::{Error as PbError, ErrorCode};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};

use strom_meta::MetadataCache;

/// Forwards admin calls to the active controller named in the metadata cache.
#[derive(Debug, Clone)]
pub struct AdminForwarder {
    cache: MetadataCache,
    timeout: Duration,
}

impl AdminForwarder {
    /// A forwarder reading the controller's address from `cache`.
    pub fn new(cache: MetadataCache, timeout: Duration) -> Self {
        Self { cache, timeout }
    }

    fn controller_address(&self) -> Option<String> {
        self.cache
            .snapshot()
            .controller
            .as_ref()
            .map(|(record, _)| record.address.clone())
    }

    fn client(&self, address: &str) -> Result<AdminServiceClient<Channel>, PbError> {
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| unavailable(format!("bad controller address {address:?}: {e}")))?
            .connect_timeout(Duration::from_secs(3))
            .timeout(self.timeout);
        Ok(AdminServiceClient::new(endpoint.connect_lazy()))
    }

    /// Calls the active controller; follows one NOT_CONTROLLER hint (the cache may lag an
    /// election by a moment).
    async fn forward<Req, Resp, F, Fut>(
        &self,
        request: Req,
        call: F,
        error_of: fn(&Resp) -> Option<&PbError>,
    ) -> Result<Resp, PbError>
    where
        Req: Clone,
        F: Fn(AdminServiceClient<Channel>, Req) -> Fut,
        Fut: std::future::Future<Output = Result<Response<Resp>, Status>>,
    {
        let mut address = self
            .controller_address()
            .ok_or_else(|| unavailable("no controller is active".to_owned()))?;
        for attempt in 0..2 {
            let client = self.client(&address)?;
            let response = call(client, request.clone())
                .await
                .map_err(|status| refused(&address, &status))?
                .into_inner();
            let hint = error_of(&response)
                .filter(|e| e.code == ErrorCode::NotController as i32)
                .and_then(|e| e.leader.as_ref())
                .map(|hint| hint.address.clone())
                .filter(|hinted| !hinted.is_empty() && *hinted != address);
            match hint {
                Some(hinted) if attempt == 0 => address = hinted,
                _ => return Ok(response),
            }
        }
        Err(unavailable(
            "the controller moved while the call was forwarded".to_owned(),
        ))
    }
}

fn unavailable(message: String) -> PbError {
    PbError::new(ErrorCode::NotController, message)
}

/// The error for a call the controller answered with a gRPC status. Statuses about the
/// request itself are final (retrying the same request cannot help); the others mean the
/// controller could not be reached or gave up, which a retry after a metadata refresh may cure.
fn refused(address: &str, status: &Status) -> PbError {
    let message = format!("controller at {address}: {}", status.message());
    let code = match status.code() {
        tonic::Code::OutOfRange | tonic::Code::ResourceExhausted => ErrorCode::MessageTooLarge,
        tonic::Code::InvalidArgument | tonic::Code::Unimplemented => ErrorCode::InvalidRequest,
        _ => return unavailable(message),
    };
    PbError::new(code, message)
}

macro_rules! forward {
    ($self:ident, $request:ident, $method:ident, $resp:ty) => {{
        let request = $request.into_inner();
        let response = $self
            .forward(
                request,
                |mut client, req| async move { client.$method(req).await },
                |r: &$resp| r.error.as_ref(),
            )
            .await
            .unwrap_or_else(|error| <$resp>::default_with_error(error));
        Ok(Response::new(response))
    }};
}

/// Responses whose whole-request error can be set.
trait WithError: Default {
    fn set_error(&mut self, error: PbError);
    fn default_with_error(error: PbError) -> Self {
        let mut response = Self::default();
        response.set_error(error);
        response
    }
}

macro_rules! with_error {
    ($($t:ty),*) => {$(
        impl WithError for $t {
            fn set_error(&mut self, error: PbError) {
                self.error = Some(error);
            }
        }
    )*};
}

with_error!(
    pb::CreateTopicsResponse,
    pb::DeleteTopicsResponse,
    pb::DescribeTopicsResponse,
    pb::DescribeClusterResponse,
    pb::AlterConfigsResponse,
    pb::DescribeConfigsResponse,
    pb::DrainBrokerResponse
);

#[tonic::async_trait]
impl AdminService for AdminForwarder {
    async fn create_topics(
        &self,
        request: Request<pb::CreateTopicsRequest>,
    ) -> Result<Response<pb::CreateTopicsResponse>, Status> {
        forward!(self, request, create_topics, pb::CreateTopicsResponse)
    }

    async fn delete_topics(
        &self,
        request: Request<pb::DeleteTopicsRequest>,
    ) -> Result<Response<pb::DeleteTopicsResponse>, Status> {
        forward!(self, request, delete_topics, pb::DeleteTopicsResponse)
    }

    async fn describe_topics(
        &self,
        request: Request<pb::DescribeTopicsRequest>,
    ) -> Result<Response<pb::DescribeTopicsResponse>, Status> {
        forward!(self, request, describe_topics, pb::DescribeTopicsResponse)
    }

    async fn describe_cluster(
        &self,
        request: Request<pb::DescribeClusterRequest>,
    ) -> Result<Response<pb::DescribeClusterResponse>, Status> {
        forward!(self, request, describe_cluster, pb::DescribeClusterResponse)
    }

    async fn alter_configs(
        &self,
        request: Request<pb::AlterConfigsRequest>,
    ) -> Result<Response<pb::AlterConfigsResponse>, Status> {
        forward!(self, request, alter_configs, pb::AlterConfigsResponse)
    }

    async fn describe_configs(
        &self,
        request: Request<pb::DescribeConfigsRequest>,
    ) -> Result<Response<pb::DescribeConfigsResponse>, Status> {
        forward!(self, request, describe_configs, pb::DescribeConfigsResponse)
    }

    async fn drain_broker(
        &self,
        request: Request<pb::DrainBrokerRequest>,
    ) -> Result<Response<pb::DrainBrokerResponse>, Status> {
        forward!(self, request, drain_broker, pb::DrainBrokerResponse)
    }
}
