//! Finding a group's coordinator and calling it.
//!
//! The coordinator's address is cached. A transport failure or a coordinator answer saying it
//! does not own the group (`NOT_COORDINATOR`, `COORDINATOR_NOT_AVAILABLE`) forgets it, or
//! replaces it with the answer's hint, so the next call looks it up again through
//! FindCoordinator, which any broker answers.

use std::future::Future;
use std::sync::Mutex;

use strom_proto::common::v1 as common;
use strom_proto::common::v1::ErrorCode;
use strom_proto::coordinator::v1 as pb;
use strom_proto::coordinator::v1::coordinator_service_client::CoordinatorServiceClient;
use tonic::transport::Channel;

use crate::{Client, Error, Result, lock};

/// The way to one group's coordinator.
#[derive(Debug)]
pub(crate) struct CoordinatorLink {
    client: Client,
    group_id: String,
    address: Mutex<Option<String>>,
}

impl CoordinatorLink {
    /// A link for `group_id`; nothing is looked up until the first call.
    pub(crate) fn new(client: Client, group_id: String) -> Self {
        Self {
            client,
            group_id,
            address: Mutex::new(None),
        }
    }

    /// The client underneath.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Sends a heartbeat; the response's own error is returned as `Err`.
    pub(crate) async fn heartbeat(
        &self,
        request: pb::HeartbeatRequest,
    ) -> Result<pb::HeartbeatResponse> {
        let (address, mut response) = self
            .call("heartbeat", |mut rpc| async move {
                rpc.heartbeat(request).await
            })
            .await?;
        self.check(&address, response.error.take())?;
        Ok(response)
    }

    /// Sends an offset commit; request-level errors are returned as `Err`, per-partition
    /// errors are left in the response.
    pub(crate) async fn commit_offsets(
        &self,
        request: pb::CommitOffsetsRequest,
    ) -> Result<pb::CommitOffsetsResponse> {
        let (address, mut response) = self
            .call("commit offsets", |mut rpc| async move {
                rpc.commit_offsets(request).await
            })
            .await?;
        self.check(&address, response.error.take())?;
        Ok(response)
    }

    /// Reads committed offsets; request-level errors are returned as `Err`.
    pub(crate) async fn fetch_offsets(
        &self,
        request: pb::FetchOffsetsRequest,
    ) -> Result<pb::FetchOffsetsResponse> {
        let (address, mut response) = self
            .call("fetch offsets", |mut rpc| async move {
                rpc.fetch_offsets(request).await
            })
            .await?;
        self.check(&address, response.error.take())?;
        Ok(response)
    }

    /// Runs `call` on the coordinator (looked up first when not known), forgetting it when
    /// the call fails below the contract. Returns the address asked along with the answer.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        operation: &'static str,
        call: F,
    ) -> Result<(String, T)>
    where
        F: FnOnce(CoordinatorServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let address = self.address().await?;
        let rpc = self.client.coordinator_client(&address)?;
        match self.client.unary(operation, call(rpc)).await {
            Ok(answer) => Ok((address, answer)),
            Err(error) => {
                tracing::debug!(%address, %error, operation, "coordinator did not answer");
                self.forget(&address, None);
                Err(error)
            }
        }
    }

    /// Turns a response's error into `Err`, following coordinator moves.
    pub(crate) fn check(&self, address: &str, error: Option<common::Error>) -> Result<()> {
        let Some(error) = error else {
            return Ok(());
        };
        let code = error.code();
        if matches!(
            code,
            ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable
        ) {
            self.forget(address, error.leader.as_ref());
        }
        Err(Error::coordinator(code, error.message))
    }

    /// Drops `address` as the coordinator (unless another one was found meanwhile), taking
    /// the hint's address instead when there is one.
    fn forget(&self, address: &str, hint: Option<&common::LeaderHint>) {
        let mut current = lock(&self.address);
        if current.as_deref() != Some(address) {
            return;
        }
        *current = hint
            .map(|hint| hint.address.clone())
            .filter(|hinted| !hinted.is_empty() && hinted != address);
    }

    /// The coordinator's address, looked up when not known.
    async fn address(&self) -> Result<String> {
        if let Some(address) = lock(&self.address).clone() {
            return Ok(address);
        }
        let found = self.find().await?;
        tracing::debug!(group_id = %self.group_id, address = %found, "found the coordinator");
        *lock(&self.address) = Some(found.clone());
        Ok(found)
    }

    /// Asks the known brokers in turn where the group's coordinator is.
    async fn find(&self) -> Result<String> {
        let request = pb::FindCoordinatorRequest {
            group_ids: vec![self.group_id.clone()],
        };
        let mut last_error = None;
        for broker in self.client.broker_addresses() {
            let answer = match self.client.coordinator_client(&broker) {
                Ok(mut rpc) => {
                    let call = rpc.find_coordinator(request.clone());
                    self.client.unary("find coordinator", call).await
                }
                Err(error) => Err(error),
            };
            match answer.and_then(|response| self.location(response)) {
                Ok(address) => return Ok(address),
                Err(error) => {
                    tracing::debug!(%broker, %error, "no coordinator from this broker");
                    let final_answer = error.code().is_some() && !error.is_retriable();
                    if final_answer {
                        return Err(error);
                    }
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or(Error::Config {
            setting: "bootstrap",
            reason: "must name at least one broker",
        }))
    }

    /// The group's coordinator address in a FindCoordinator answer.
    fn location(&self, response: pb::FindCoordinatorResponse) -> Result<String> {
        if let Some(error) = response.error {
            return Err(Error::coordinator(error.code(), error.message));
        }
        let location = response
            .coordinators
            .into_iter()
            .find(|location| location.group_id == self.group_id)
            .ok_or(Error::Protocol {
                reason: "the find coordinator answer lacks the requested group",
            })?;
        if let Some(error) = location.error {
            return Err(Error::coordinator(error.code(), error.message));
        }
        if location.address.is_empty() {
            return Err(Error::Protocol {
                reason: "the find coordinator answer has no address",
            });
        }
        Ok(location.address)
    }
}
