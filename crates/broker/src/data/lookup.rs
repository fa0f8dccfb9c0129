//! Finding the local leader replica of a named partition.

use strom_proto::common::v1::{Error as PbError, ErrorCode, LeaderHint};
use strom_types::{BrokerId, LeaderEpoch, PartitionId, TopicName};

use crate::metrics::BrokerMetrics;
use crate::replicas::{Replica, Replicas, Role};
use strom_meta::MetadataCache;

/// Resolves partitions to the replicas this broker leads.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// This broker.
    pub me: BrokerId,
    /// Cluster metadata.
    pub cache: MetadataCache,
    /// Local replicas.
    pub replicas: Replicas,
    /// The broker's metrics, updated by every request.
    pub metrics: BrokerMetrics,
}

impl Lookup {
    /// The replica of `topic`/`partition` if this broker leads it (at `expected_epoch`, when
    /// given), or the error to answer with.
    pub fn leader(
        &self,
        topic: &str,
        partition: i32,
        expected_epoch: Option<i32>,
    ) -> Result<(Replica, LeaderEpoch), PbError> {
        let unknown = || {
            PbError::new(
                ErrorCode::UnknownTopicOrPartition,
                format!("unknown topic or partition {topic}-{partition}"),
            )
        };
        let state = self.cache.snapshot();
        let name = TopicName::new(topic).map_err(|error| {
            PbError::new(
                ErrorCode::InvalidTopicException,
                format!("invalid topic name {topic:?}: {error}"),
            )
        })?;
        let record = state.topics.get(&name).ok_or_else(unknown)?;
        let index = PartitionId::try_new(partition).map_err(|_| unknown())?;
        let partition_record = state
            .partitions
            .get(&(record.id, index))
            .ok_or_else(unknown)?;
        let replica = self.replicas.get(record.id, index);
        let led = replica.as_ref().and_then(|r| match r.role {
            Role::Leader(epoch) => Some(epoch),
            Role::Follower(_) => None,
        });
        let Some(epoch) = led else {
            let mut error = PbError::new(
                ErrorCode::NotLeaderOrFollower,
                format!("broker {} does not lead {topic}-{partition}", self.me),
            );
            if let Some(leader) = partition_record.leader.filter(|l| *l != self.me) {
                let address = state
                    .brokers
                    .get(&leader)
                    .map(|b| b.registration.address.clone())
                    .unwrap_or_default();
                error.leader = Some(LeaderHint {
                    leader_id: leader.get(),
                    leader_epoch: Some(partition_record.leader_epoch.get()),
                    address,
                });
            } else if partition_record.leader.is_none() {
                error = PbError::new(
                    ErrorCode::LeaderNotAvailable,
                    format!("{topic}-{partition} has no leader"),
                );
            }
            // Metadata naming this broker as the leader of a partition it does not lead is
            // stale here (its registration lapsed): no hint, so the client asks another broker.
            return Err(error);
        };
        match expected_epoch {
            Some(sent) if sent < epoch.get() => {
                return Err(PbError::new(
                    ErrorCode::FencedLeaderEpoch,
                    format!("leader epoch {sent} is older than {epoch}"),
                ));
            }
            Some(sent) if sent > epoch.get() => {
                return Err(PbError::new(
                    ErrorCode::UnknownLeaderEpoch,
                    format!("leader epoch {sent} is newer than {epoch}"),
                ));
            }
            _ => {}
        }
        // The replica exists: `led` was derived from it.
        replica.map(|r| (r, epoch)).ok_or_else(unknown)
    }
}
