//! Broker requests on the active controller (ISR changes, producer-id blocks) and the
//! dispatch of every [`Command`].

use strom_meta::Written;
use strom_proto::admin::v1 as admin_pb;
use strom_proto::common::v1::{Error as PbError, ErrorCode};
use strom_proto::controller::v1 as pb;
use strom_types::{BrokerId, LeaderEpoch, PartitionId, TopicId};

use super::Command;
use super::active::Active;
use super::admin::wire;
use crate::{AlterPartitionProposal, Error, IsrMember, alter_partition};

impl Active {
    /// Answers one request. A dropped reply channel means the caller gave up; nothing to do.
    pub(super) async fn handle(&mut self, command: Command) {
        match command {
            Command::CreateTopics(request, reply) => {
                let _ = reply.send(self.create_topics(request).await);
            }
            Command::DeleteTopics(request, reply) => {
                let _ = reply.send(self.delete_topics(request).await);
            }
            Command::DescribeTopics(request, reply) => {
                let _ = reply.send(self.describe_topics(&request));
            }
            Command::DescribeCluster(reply) => {
                let _ = reply.send(self.describe_cluster().await);
            }
            Command::AlterConfigs(request, reply) => {
                let _ = reply.send(self.alter_configs(request).await);
            }
            Command::DescribeConfigs(request, reply) => {
                let _ = reply.send(self.describe_configs(&request));
            }
            Command::AlterPartition(request, reply) => {
                let _ = reply.send(self.alter_partitions(request).await);
            }
            Command::AllocateProducerIds(request, reply) => {
                let _ = reply.send(self.allocate_producer_ids(&request).await);
            }
            Command::DrainBroker(request, reply) => {
                let _ = reply.send(self.drain_broker(&request).await);
            }
        }
    }

    /// Marks a broker draining for its current registration and moves its leaderships now.
    async fn drain_broker(
        &mut self,
        request: &admin_pb::DrainBrokerRequest,
    ) -> admin_pb::DrainBrokerResponse {
        let failed = |code, message: String| admin_pb::DrainBrokerResponse {
            error: Some(PbError::new(code, message)),
            ..Default::default()
        };
        let Ok(id) = BrokerId::try_new(request.broker_id) else {
            return failed(
                ErrorCode::InvalidRequest,
                format!("broker id {} is negative", request.broker_id),
            );
        };
        let Some(epoch) = self.mirror.view.broker_epoch(id) else {
            return failed(
                ErrorCode::BrokerNotAvailable,
                format!("broker {id} is not registered"),
            );
        };
        let view = &mut self.mirror.view;
        // Drains of registrations that ended are over.
        let live: std::collections::BTreeMap<BrokerId, i64> = view
            .brokers
            .iter()
            .map(|(b, live)| (*b, live.broker_epoch))
            .collect();
        view.draining.retain(|b, e| live.get(b) == Some(e));
        if view.draining.insert(id, epoch).is_none() {
            tracing::info!(broker = id.get(), broker_epoch = epoch, "draining broker");
        }
        let leads = |view: &crate::ClusterView| {
            view.partitions
                .values()
                .filter(|p| p.record.leader == Some(id))
                .count()
        };
        let before = leads(&self.mirror.view);
        // Writes that fail are retried by the run loop; the caller asks again for progress.
        let _ = self.reconcile(false).await;
        let remaining = leads(&self.mirror.view);
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        admin_pb::DrainBrokerResponse {
            error: None,
            moved: count(before.saturating_sub(remaining)),
            remaining: count(remaining),
        }
    }

    async fn alter_partitions(
        &mut self,
        request: pb::AlterPartitionRequest,
    ) -> pb::AlterPartitionResponse {
        let Ok(broker) = BrokerId::try_new(request.broker_id) else {
            let error = Error::InvalidRequest {
                reason: format!("broker id {} is negative", request.broker_id),
            };
            return pb::AlterPartitionResponse {
                error: Some(wire(&error)),
                topics: Vec::new(),
            };
        };
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in request.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for proposal in topic.partitions {
                let index = proposal.partition;
                let result = self
                    .alter_one(broker, request.broker_epoch, &topic.topic_id, proposal)
                    .await;
                partitions.push(self.partition_result(&topic.topic_id, index, result.err()));
            }
            topics.push(pb::AlterPartitionTopicResult {
                topic_id: topic.topic_id,
                partitions,
            });
        }
        pb::AlterPartitionResponse {
            error: None,
            topics,
        }
    }

    async fn alter_one(
        &mut self,
        broker: BrokerId,
        broker_epoch: i64,
        topic_id: &str,
        proposal: pb::AlterPartitionPartition,
    ) -> Result<(), Error> {
        let unknown = || Error::UnknownTopic {
            topic: topic_id.to_owned(),
        };
        let topic: TopicId = topic_id.parse().map_err(|_| unknown())?;
        let partition = PartitionId::try_new(proposal.partition).map_err(|_| unknown())?;
        let state = self
            .mirror
            .view
            .partition(topic, partition)
            .ok_or_else(unknown)?
            .clone();
        let mut new_isr = Vec::with_capacity(proposal.new_isr.len());
        for member in proposal.new_isr {
            let id = BrokerId::try_new(member.broker_id).map_err(|_| Error::InvalidRequest {
                reason: format!("ISR member id {} is negative", member.broker_id),
            })?;
            new_isr.push(IsrMember {
                broker: id,
                broker_epoch: member.broker_epoch,
            });
        }
        let proposal = AlterPartitionProposal {
            topic,
            partition,
            leader_epoch: LeaderEpoch::new(proposal.leader_epoch),
            partition_epoch: proposal.partition_epoch,
            new_isr,
        };
        let record = alter_partition(
            &state.record,
            broker,
            broker_epoch,
            &self.mirror.view.brokers,
            &proposal,
        )?;
        if record == state.record {
            return Ok(());
        }
        match self
            .meta
            .update_partition(
                &self.leadership,
                topic,
                partition,
                state.mod_revision,
                &record,
            )
            .await?
        {
            Written::Applied { revision } => {
                self.mirror
                    .set_partition((topic, partition), record, revision);
                Ok(())
            }
            Written::Rejected => {
                if let Some(error) = self.superseded_error().await {
                    return Err(error);
                }
                // The record changed under the proposal: refresh it so the answer carries the
                // stored state, and the leader retries against it.
                let fresh = self
                    .meta
                    .partition(topic, partition)
                    .await?
                    .ok_or_else(unknown)?;
                let current = fresh.0.partition_epoch;
                self.mirror
                    .set_partition((topic, partition), fresh.0, fresh.1);
                Err(Error::InvalidUpdateVersion {
                    topic,
                    partition,
                    sent: proposal.partition_epoch,
                    current,
                })
            }
        }
    }

    /// The result for one partition: the error, if any, and the record as now stored.
    fn partition_result(
        &self,
        topic_id: &str,
        index: i32,
        error: Option<Error>,
    ) -> pb::AlterPartitionPartitionResult {
        let stored = topic_id
            .parse::<TopicId>()
            .ok()
            .zip(PartitionId::try_new(index).ok())
            .and_then(|(t, p)| self.mirror.view.partition(t, p));
        let mut result = pb::AlterPartitionPartitionResult {
            partition: index,
            error: error.as_ref().map(wire),
            ..Default::default()
        };
        if let Some(state) = stored {
            result.leader_id = state.record.leader.map(|b| b.get());
            result.leader_epoch = state.record.leader_epoch.get();
            result.isr = state.record.isr.iter().map(|b| b.get()).collect();
            result.partition_epoch = state.record.partition_epoch;
        }
        result
    }

    async fn allocate_producer_ids(
        &mut self,
        request: &pb::AllocateProducerIdsRequest,
    ) -> pb::AllocateProducerIdsResponse {
        let failed = |code: ErrorCode, message: String| pb::AllocateProducerIdsResponse {
            error: Some(PbError::new(code, message)),
            first_producer_id: 0,
            count: 0,
        };
        let registered = BrokerId::try_new(request.broker_id)
            .ok()
            .and_then(|id| self.mirror.view.broker_epoch(id));
        if registered != Some(request.broker_epoch) {
            return failed(
                ErrorCode::StaleBrokerEpoch,
                format!(
                    "broker {} epoch {} is not its current registration ({registered:?})",
                    request.broker_id, request.broker_epoch
                ),
            );
        }
        let size = self.settings.producer_id_block_size;
        match self
            .meta
            .allocate_producer_ids(&self.leadership, size)
            .await
        {
            Ok(Some(first)) => pb::AllocateProducerIdsResponse {
                error: None,
                first_producer_id: first,
                count: i32::try_from(size).unwrap_or(i32::MAX),
            },
            Ok(None) => {
                self.superseded = true;
                failed(
                    ErrorCode::NotController,
                    "this controller was superseded".to_owned(),
                )
            }
            Err(error) => {
                let error = Error::Meta(error);
                failed(error.code(), error.to_string())
            }
        }
    }
}
