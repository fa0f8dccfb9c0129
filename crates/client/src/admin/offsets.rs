//! Log start offsets and high watermarks for topic descriptions, asked of partition leaders.

use std::collections::BTreeMap;

use strom_proto::admin::v1 as admin_pb;
use strom_proto::broker::v1 as pb;

use super::Admin;
use crate::Result;

impl Admin {
    /// Fills each described partition's log start offset and high watermark where the answer
    /// left them unset, with one ListOffsets per leader and kind. A leader that does not answer
    /// leaves its partitions' offsets unset.
    pub(super) async fn fill_offsets(&self, topics: &mut [admin_pb::TopicDescription]) {
        let mut by_leader: BTreeMap<i32, Vec<(usize, usize)>> = BTreeMap::new();
        for (t, topic) in topics.iter().enumerate() {
            for (p, partition) in topic.partitions.iter().enumerate() {
                if let (Some(leader), None) = (partition.leader_id, partition.high_watermark) {
                    by_leader.entry(leader).or_default().push((t, p));
                }
            }
        }
        for slots in by_leader.into_values() {
            let Some(&(t, p)) = slots.first() else {
                continue;
            };
            let first = &topics[t];
            let leader = match self
                .client
                .leader(&first.topic, first.partitions[p].partition)
                .await
            {
                Ok(leader) => leader,
                Err(error) => {
                    tracing::debug!(%error, "no leader address for a topic description");
                    continue;
                }
            };
            for spec in [pb::OffsetSpec::Earliest, pb::OffsetSpec::Latest] {
                let found = match self
                    .list_offsets(&leader.address, topics, &slots, spec)
                    .await
                {
                    Ok(found) => found,
                    Err(error) => {
                        tracing::debug!(address = %leader.address, %error, "offsets unavailable");
                        continue;
                    }
                };
                for &(t, p) in &slots {
                    let partition = &mut topics[t].partitions[p];
                    let Some(offset) = found.get(&(t, partition.partition)) else {
                        continue;
                    };
                    match spec {
                        pb::OffsetSpec::Earliest => partition.log_start_offset = Some(*offset),
                        _ => partition.high_watermark = Some(*offset),
                    }
                }
            }
        }
    }

    async fn list_offsets(
        &self,
        address: &str,
        topics: &[admin_pb::TopicDescription],
        slots: &[(usize, usize)],
        spec: pb::OffsetSpec,
    ) -> Result<BTreeMap<(usize, i32), i64>> {
        let mut grouped: BTreeMap<usize, Vec<pb::ListOffsetsPartition>> = BTreeMap::new();
        for &(t, p) in slots {
            grouped
                .entry(t)
                .or_default()
                .push(pb::ListOffsetsPartition {
                    partition: topics[t].partitions[p].partition,
                    spec: spec.into(),
                    timestamp_ms: 0,
                    current_leader_epoch: None,
                });
        }
        let order: Vec<usize> = grouped.keys().copied().collect();
        let request = pb::ListOffsetsRequest {
            topics: grouped
                .into_iter()
                .map(|(t, partitions)| pb::ListOffsetsTopic {
                    topic: topics[t].topic.clone(),
                    partitions,
                })
                .collect(),
        };
        let mut rpc = self.client.broker_client(address)?;
        let response = self
            .client
            .unary("list offsets", rpc.list_offsets(request))
            .await?;
        if let Some(error) = response.error {
            return Err(error.into());
        }
        let mut found = BTreeMap::new();
        for result in response.topics {
            let Some(&t) = order.iter().find(|t| topics[**t].topic == result.topic) else {
                continue;
            };
            for p in result.partitions {
                if let (None, Some(offset)) = (&p.error, p.offset) {
                    found.insert((t, p.partition), offset);
                }
            }
        }
        Ok(found)
    }
}
