//! ISR changes (expansions, lag shrinks and resignations) proposed by a leader to the active
//! controller, sent by one task so a burst of fetches never becomes a burst of AlterPartition
//! calls.

use std::collections::BTreeMap;
use std::time::Duration;

use strom_proto::controller::v1 as pb;
use strom_proto::controller::v1::controller_service_client::ControllerServiceClient;
use strom_types::{BrokerId, PartitionId, TopicId};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;
use tracing::{debug, info, warn};

use crate::metrics::BrokerMetrics;
use crate::replicas::Replica;
use strom_meta::{ClusterState, MetadataCache};

/// Proposals waiting to be sent; more are dropped (a later fetch proposes again).
const QUEUE: usize = 256;
/// The same proposal is not repeated sooner than this.
const REPEAT_AFTER: Duration = Duration::from_secs(1);

/// One proposed ISR for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proposal {
    topic: TopicId,
    partition: PartitionId,
    leader_epoch: i32,
    partition_epoch: i32,
    isr: Vec<(BrokerId, i64)>,
    /// Fewer members than the current ISR.
    shrink: bool,
}

/// The sending side, cloned into request handlers.
#[derive(Debug, Clone)]
pub struct IsrProposals {
    queue: mpsc::Sender<Proposal>,
}

impl IsrProposals {
    /// A queue and the receiver its [`run_proposer`] task drains.
    pub fn channel() -> (Self, IsrProposalQueue) {
        let (queue, receiver) = mpsc::channel(QUEUE);
        (Self { queue }, IsrProposalQueue { receiver })
    }

    /// Proposes adding `follower` to the ISR of `replica`'s partition.
    pub fn propose_expansion(&self, replica: &Replica, follower: BrokerId, state: &ClusterState) {
        let mut members = replica.record.isr.clone();
        members.push(follower);
        self.propose(replica, members, state);
    }

    /// Proposes removing `laggards` from the ISR of `replica`'s partition.
    pub fn propose_shrink(&self, replica: &Replica, laggards: &[BrokerId], state: &ClusterState) {
        let members = replica
            .record
            .isr
            .iter()
            .copied()
            .filter(|m| !laggards.contains(m))
            .collect();
        self.propose(replica, members, state);
    }

    /// Proposes the ISR of `replica`'s partition without this broker, `me`: a resignation, so
    /// the controller hands leadership to another member. Nothing is proposed when no other
    /// member is in sync; the leader then stays, serving what it can.
    pub fn propose_resignation(&self, replica: &Replica, me: BrokerId, state: &ClusterState) {
        let members: Vec<BrokerId> = replica
            .record
            .isr
            .iter()
            .copied()
            .filter(|m| *m != me)
            .collect();
        if !members.is_empty() {
            self.propose(replica, members, state);
        }
    }

    /// Proposes `members` as the ISR of `replica`'s partition (this broker must lead it).
    fn propose(&self, replica: &Replica, members: Vec<BrokerId>, state: &ClusterState) {
        let crate::replicas::Role::Leader(leader_epoch) = replica.role else {
            return;
        };
        let leader_epoch = leader_epoch.get();
        let mut isr = Vec::with_capacity(members.len());
        for member in members {
            // Every member is named with its current registration.
            let Some(broker) = state.brokers.get(&member) else {
                return;
            };
            isr.push((member, broker.epoch));
        }
        let proposal = Proposal {
            topic: replica.topic_id,
            partition: replica.partition.partition,
            leader_epoch,
            partition_epoch: replica.record.partition_epoch,
            shrink: isr.len() < replica.record.isr.len(),
            isr,
        };
        // A full queue means the proposer is busy; the next fetch proposes again.
        let _ = self.queue.try_send(proposal);
    }
}

/// The receiving side, handed to [`run_proposer`].
#[derive(Debug)]
pub struct IsrProposalQueue {
    receiver: mpsc::Receiver<Proposal>,
}

/// Sends queued proposals to the active controller until `shutdown`.
pub async fn run_proposer(
    me: BrokerId,
    mut queue: IsrProposalQueue,
    cache: MetadataCache,
    epoch: watch::Receiver<Option<i64>>,
    metrics: BrokerMetrics,
    shutdown: CancellationToken,
) {
    let mut recent: BTreeMap<(TopicId, PartitionId), (Proposal, Instant)> = BTreeMap::new();
    loop {
        let proposal = tokio::select! {
            () = shutdown.cancelled() => return,
            proposal = queue.receiver.recv() => match proposal {
                Some(proposal) => proposal,
                None => return,
            },
        };
        let key = (proposal.topic, proposal.partition);
        if recent
            .get(&key)
            .is_some_and(|(sent, at)| *sent == proposal && at.elapsed() < REPEAT_AFTER)
        {
            continue;
        }
        let Some(broker_epoch) = *epoch.borrow() else {
            continue;
        };
        let Some(address) = cache
            .snapshot()
            .controller
            .as_ref()
            .map(|(c, _)| c.address.clone())
        else {
            debug!("no active controller to send an ISR proposal to");
            continue;
        };
        recent.insert(key, (proposal.clone(), Instant::now()));
        let request = pb::AlterPartitionRequest {
            broker_id: me.get(),
            broker_epoch,
            topics: vec![pb::AlterPartitionTopic {
                topic_id: proposal.topic.to_string(),
                partitions: vec![pb::AlterPartitionPartition {
                    partition: proposal.partition.get(),
                    leader_epoch: proposal.leader_epoch,
                    partition_epoch: proposal.partition_epoch,
                    new_isr: proposal
                        .isr
                        .iter()
                        .map(|(id, epoch)| pb::IsrMember {
                            broker_id: id.get(),
                            broker_epoch: *epoch,
                        })
                        .collect(),
                }],
            }],
        };
        let call = async {
            let endpoint = Endpoint::from_shared(format!("http://{address}"))
                .map_err(|e| e.to_string())?
                .connect_timeout(Duration::from_secs(3))
                .timeout(Duration::from_secs(10));
            let mut client = ControllerServiceClient::new(endpoint.connect_lazy());
            client
                .alter_partition(request)
                .await
                .map(|r| r.into_inner())
                .map_err(|s| s.message().to_owned())
        };
        let outcome = tokio::select! {
            () = shutdown.cancelled() => return,
            outcome = call => outcome,
        };
        match outcome {
            Ok(response) => {
                let error = response
                    .error
                    .or_else(|| response.topics.first()?.partitions.first()?.error.clone());
                match error {
                    None => {
                        metrics.isr_changed(proposal.shrink);
                        info!(topic_id = %proposal.topic, partition = proposal.partition.get(), isr = ?proposal.isr.iter().map(|m| m.0.get()).collect::<Vec<_>>(), "ISR changed")
                    }
                    Some(error) => {
                        debug!(topic_id = %proposal.topic, code = error.code, message = %error.message, "ISR proposal not applied")
                    }
                }
            }
            Err(error) => warn!(%error, "could not reach the controller with an ISR proposal"),
        }
    }
}
