//! Conversions between the wire messages and the group types.

use strom_proto::coordinator::v1 as pb;
use strom_types::TopicId;

use crate::assignor::TopicPartitions;
use crate::group::{HeartbeatInput, Subscription, TopicsView};
use crate::{Error, Result};

/// An assignment as the wire carries it, with topic names filled in.
pub(crate) fn assignment_to_pb(assignment: &TopicPartitions, view: &TopicsView) -> pb::Assignment {
    pb::Assignment {
        topic_partitions: assignment
            .iter()
            .map(|(topic, parts)| pb::TopicPartitions {
                topic_id: topic.to_string(),
                topic: view.name_of(*topic).unwrap_or_default().to_owned(),
                partitions: parts
                    .iter()
                    .map(|p| i32::try_from(*p).unwrap_or(i32::MAX))
                    .collect(),
            })
            .collect(),
    }
}

/// Owned partitions from the wire; malformed topic ids or negative partitions are rejected.
pub(crate) fn owned_from_pb(owned: Vec<pb::TopicPartitions>) -> Result<TopicPartitions> {
    let mut out = TopicPartitions::new();
    for tp in owned {
        let topic: TopicId = tp.topic_id.parse().map_err(|_| Error::InvalidRequest {
            reason: format!(
                "owned partitions name a malformed topic id {:?}",
                tp.topic_id
            ),
        })?;
        let parts = out.entry(topic).or_default();
        for p in tp.partitions {
            let p = u32::try_from(p).map_err(|_| Error::InvalidRequest {
                reason: format!("owned partition {p} is negative"),
            })?;
            parts.insert(p);
        }
    }
    out.retain(|_, parts| !parts.is_empty());
    Ok(out)
}

/// Optional strings: the wire's empty string means "not set".
fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// A heartbeat request as the group logic takes it.
pub(crate) fn heartbeat_from_pb(request: pb::HeartbeatRequest) -> Result<HeartbeatInput> {
    Ok(HeartbeatInput {
        member_id: request.member_id,
        member_epoch: request.member_epoch,
        instance_id: non_empty(request.instance_id),
        rack: non_empty(request.rack_id),
        rebalance_timeout_ms: request.rebalance_timeout_ms,
        session_timeout_ms: request.session_timeout_ms,
        subscription: Subscription {
            topic_names: request.subscribed_topic_names.into_iter().collect(),
            topic_regex: non_empty(request.subscribed_topic_regex),
        },
        assignor: non_empty(request.server_assignor),
        owned: owned_from_pb(request.topic_partitions)?,
    })
}
