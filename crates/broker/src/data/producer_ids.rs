//! InitProducerId: producer ids handed out from blocks the controller reserves for this broker,
//! so ids are unique in the cluster without a metadata write per producer.

use std::sync::Arc;
use std::time::Duration;

use strom_proto::broker::v1 as pb;
use strom_proto::common::v1::{Error as PbError, ErrorCode};
use strom_proto::controller::v1 as controller_pb;
use strom_proto::controller::v1::controller_service_client::ControllerServiceClient;
use strom_types::BrokerId;
use tokio::sync::{Mutex, watch};
use tonic::transport::Endpoint;

use strom_meta::MetadataCache;

/// How long one InitProducerId may wait for a new block.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The ids of the current block not yet handed out: `next..end`.
#[derive(Debug, Default)]
struct Block {
    next: i64,
    end: i64,
}

/// Hands out producer ids from controller-reserved blocks.
#[derive(Debug, Clone)]
pub struct ProducerIds {
    me: BrokerId,
    cache: MetadataCache,
    epoch: watch::Receiver<Option<i64>>,
    // An async mutex: refilling awaits the controller while holding it, so concurrent callers
    // wait for one refill instead of each reserving a block.
    block: Arc<Mutex<Block>>,
}

impl ProducerIds {
    /// A pool for broker `me`.
    pub fn new(me: BrokerId, cache: MetadataCache, epoch: watch::Receiver<Option<i64>>) -> Self {
        Self {
            me,
            cache,
            epoch,
            block: Arc::default(),
        }
    }

    /// Serves InitProducerId: a fresh id at epoch 0.
    pub async fn init(&self) -> pb::InitProducerIdResponse {
        match tokio::time::timeout(BLOCK_TIMEOUT, self.next_id()).await {
            Ok(Ok(id)) => pb::InitProducerIdResponse {
                error: None,
                producer_id: id,
                producer_epoch: 0,
            },
            Ok(Err(error)) => pb::InitProducerIdResponse {
                error: Some(error),
                producer_id: -1,
                producer_epoch: -1,
            },
            Err(_) => pb::InitProducerIdResponse {
                error: Some(PbError::new(
                    ErrorCode::RequestTimedOut,
                    "the controller did not grant producer ids in time",
                )),
                producer_id: -1,
                producer_epoch: -1,
            },
        }
    }

    async fn next_id(&self) -> Result<i64, PbError> {
        let mut block = self.block.lock().await;
        if block.next >= block.end {
            let (first, count) = self.reserve().await?;
            *block = Block {
                next: first,
                end: first + i64::from(count),
            };
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }

    /// Asks the active controller for a block. Failures are COORDINATOR_NOT_AVAILABLE (retriable),
    /// as Kafka answers when it cannot hand out an id yet.
    async fn reserve(&self) -> Result<(i64, i32), PbError> {
        let unavailable =
            |message: String| PbError::new(ErrorCode::CoordinatorNotAvailable, message);
        let broker_epoch = (*self.epoch.borrow())
            .ok_or_else(|| unavailable("this broker is not registered".to_owned()))?;
        let address = self
            .cache
            .snapshot()
            .controller
            .as_ref()
            .map(|(c, _)| c.address.clone())
            .ok_or_else(|| {
                unavailable("no controller is active to grant producer ids".to_owned())
            })?;
        let endpoint = Endpoint::from_shared(format!("http://{address}"))
            .map_err(|e| unavailable(e.to_string()))?
            .connect_timeout(Duration::from_secs(3))
            .timeout(BLOCK_TIMEOUT);
        let mut client = ControllerServiceClient::new(endpoint.connect_lazy());
        let request = controller_pb::AllocateProducerIdsRequest {
            broker_id: self.me.get(),
            broker_epoch,
        };
        let response = client
            .allocate_producer_ids(request)
            .await
            .map_err(|status| {
                unavailable(format!("controller at {address}: {}", status.message()))
            })?
            .into_inner();
        match response.error {
            Some(error) => Err(error),
            None if response.count > 0 && response.first_producer_id >= 0 => {
                Ok((response.first_producer_id, response.count))
            }
            None => Err(PbError::new(
                ErrorCode::UnknownServerError,
                "the controller granted an empty producer id block",
            )),
        }
    }
}
