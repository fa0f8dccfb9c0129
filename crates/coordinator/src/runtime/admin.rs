//! Group administration: list, describe (with lag), delete and reset offsets.

use std::collections::{BTreeMap, BTreeSet};

use strom_meta::records::{self, CoordinatorRecord};
use strom_meta::{Op, Txn};
use strom_proto::broker::v1::OffsetSpec;
use strom_proto::coordinator::v1 as pb;
use strom_proto::coordinator::v1::reset_offsets_request::Strategy;
use tracing::info;

use super::Coordinator;
use super::commit::{CommitPartition, now_ms};
use crate::convert::assignment_to_pb;
use crate::group::{Group, GroupPhase};
use crate::{Error, Result};

/// The wire state of a group phase.
pub fn phase_to_pb(phase: GroupPhase) -> pb::GroupState {
    match phase {
        GroupPhase::Empty => pb::GroupState::Empty,
        GroupPhase::Assigning => pb::GroupState::Assigning,
        GroupPhase::Reconciling => pb::GroupState::Reconciling,
        GroupPhase::Stable => pb::GroupState::Stable,
    }
}

impl Coordinator {
    /// Every group of the cluster, read from etcd.
    pub async fn list_groups(&self) -> Result<Vec<pb::GroupListing>> {
        let keys = &self.inner.keys;
        let listing = self.inner.store.list(&keys.groups()).await?;
        let mut groups: BTreeMap<String, pb::GroupListing> = BTreeMap::new();
        for kv in listing.kvs {
            let Some((group, what)) = keys.parse_group(&kv.key) else {
                continue;
            };
            let entry = groups
                .entry(group.to_owned())
                .or_insert_with(|| pb::GroupListing {
                    group_id: group.to_owned(),
                    state: pb::GroupState::Empty.into(),
                    coordinator_id: None,
                });
            match what {
                "state" => {
                    let stored = records::decode::<Group>(&kv.key, &kv.value)?;
                    entry.state = phase_to_pb(stored.phase()).into();
                }
                "owner" => {
                    let owner = records::decode::<CoordinatorRecord>(&kv.key, &kv.value)?;
                    entry.coordinator_id = Some(owner.id);
                }
                _ => {}
            }
        }
        Ok(groups.into_values().collect())
    }

    /// Describes one group; with `include_lag`, asks partition leaders for log ends and the
    /// age of the first unconsumed record.
    pub async fn describe_group(
        &self,
        group: &str,
        include_lag: bool,
    ) -> Result<pb::GroupDescription> {
        let slot = self.slot(group, false).await?;
        let runtime = slot.runtime.lock().await;
        let view = self.topics();
        let g = &runtime.group;
        let members = g
            .members
            .values()
            .map(|m| pb::MemberDescription {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone().unwrap_or_default(),
                rack_id: m.rack.clone().unwrap_or_default(),
                member_epoch: m.epoch,
                subscribed_topic_names: m.topic_names.iter().cloned().collect(),
                subscribed_topic_regex: m.topic_regex.clone().unwrap_or_default(),
                assignment: Some(assignment_to_pb(&m.assigned, &view)),
                target_assignment: Some(assignment_to_pb(
                    &g.target.get(&m.id).cloned().unwrap_or_default(),
                    &view,
                )),
            })
            .collect();
        // Every partition with a committed offset, an owner, or in a subscribed topic.
        let owners = g.owners();
        let mut rows: BTreeMap<(String, i32), pb::GroupPartitionOffset> = BTreeMap::new();
        let mut row = |topic: &str, partition: i32| {
            rows.entry((topic.to_owned(), partition))
                .or_insert_with(|| pb::GroupPartitionOffset {
                    partition,
                    ..Default::default()
                })
                .partition
        };
        for (topic, count) in &g.topics {
            if let Some(name) = view.name_of(*topic) {
                for p in 0..*count {
                    row(name, i32::try_from(p).unwrap_or(i32::MAX));
                }
            }
        }
        for (topic, partition) in owners.keys() {
            if let Some(name) = view.name_of(*topic) {
                row(name, i32::try_from(*partition).unwrap_or(i32::MAX));
            }
        }
        for (key, slot) in &runtime.offsets {
            if slot.committed.is_some() {
                row(&key.0, key.1);
            }
        }
        for ((topic, partition), entry) in rows.iter_mut() {
            entry.committed_offset = runtime
                .offsets
                .get(&(topic.clone(), *partition))
                .and_then(|s| s.committed.as_ref())
                .map(|r| r.offset);
            let tid = view.topics.get(topic).map(|(id, _)| *id);
            entry.member_id = tid
                .and_then(|id| owners.get(&(id, u32::try_from(*partition).unwrap_or(u32::MAX))))
                .cloned()
                .unwrap_or_default();
        }
        let description = pb::GroupDescription {
            group_id: group.to_owned(),
            error: None,
            state: phase_to_pb(g.phase()).into(),
            group_epoch: g.epoch,
            assignment_epoch: g.assignment_epoch,
            assignor: g.assignor.clone(),
            members,
            topics: Vec::new(),
        };
        drop(runtime);
        if include_lag {
            self.fill_lag(&mut rows).await;
        }
        let mut topics: BTreeMap<String, Vec<pb::GroupPartitionOffset>> = BTreeMap::new();
        for ((topic, _), entry) in rows {
            topics.entry(topic).or_default().push(entry);
        }
        Ok(pb::GroupDescription {
            topics: topics
                .into_iter()
                .map(|(topic, partitions)| pb::GroupTopicOffsets { topic, partitions })
                .collect(),
            ..description
        })
    }

    async fn fill_lag(&self, rows: &mut BTreeMap<(String, i32), pb::GroupPartitionOffset>) {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in rows.keys() {
            by_topic.entry(topic.clone()).or_default().push(*partition);
        }
        for (topic, parts) in by_topic {
            let ends = self
                .inner
                .brokers
                .list_offsets(&topic, &parts, OffsetSpec::Latest, 0)
                .await;
            for (partition, end) in ends {
                if let (Ok(Some(end)), Some(row)) = (end, rows.get_mut(&(topic.clone(), partition)))
                {
                    row.high_watermark = Some(end);
                    self.remember_log_end(&topic, partition, end);
                }
            }
        }
        let now = now_ms();
        let lags = rows.iter().filter_map(|((topic, partition), row)| {
            let (committed, end) = (row.committed_offset?, row.high_watermark?);
            let topic = topic.clone();
            let partition = *partition;
            Some(async move {
                let records = (end - committed).max(0);
                let ms = if records == 0 {
                    Some(0)
                } else {
                    self.inner
                        .brokers
                        .timestamp_at(&topic, partition, committed)
                        .await
                        .ok()
                        .flatten()
                        .map(|ts| (now - ts).max(0))
                };
                ((topic, partition), records, ms)
            })
        });
        for (key, records, ms) in futures::future::join_all(lags).await {
            if let Some(row) = rows.get_mut(&key) {
                row.lag_records = Some(records);
                row.lag_ms = ms;
            }
        }
    }

    /// Deletes a group without members, with its committed offsets.
    pub async fn delete_group(&self, group: &str) -> Result<()> {
        let slot = self.slot(group, false).await?;
        let runtime = slot.runtime.lock().await;
        if !runtime.group.members.is_empty() {
            return Err(Error::NonEmptyGroup {
                group: group.to_owned(),
                members: runtime.group.members.len(),
            });
        }
        let keys = &self.inner.keys;
        let txn = Txn::new().when([slot.owner().fence(keys, group)]).then([
            Op::delete(keys.group_state(group)),
            Op::delete_prefix(keys.group_offsets(group)),
            Op::delete(keys.group_owner(group)),
        ]);
        let outcome = self.inner.store.txn(txn).await?;
        self.drop_slot(&slot);
        if !outcome.succeeded {
            return Err(self.not_coordinator(group).await);
        }
        info!(group, "group deleted");
        Ok(())
    }

    /// Moves a group's committed offsets for one topic (see `ResetOffsetsRequest`).
    pub async fn reset_offsets(
        &self,
        request: pb::ResetOffsetsRequest,
    ) -> Result<Vec<pb::ResetOffsetsPartitionResult>> {
        let group = request.group_id.as_str();
        let strategy = request.strategy.ok_or_else(|| Error::InvalidRequest {
            reason: "choose a reset strategy".to_owned(),
        })?;
        if let Strategy::ToTimestampMs(timestamp) = &strategy
            && *timestamp < 0
        {
            return Err(Error::InvalidTimestamp {
                timestamp: *timestamp,
            });
        }
        // Everything about the request is checked before the group is claimed, so a refused
        // reset of a never-used group id leaves no group behind.
        let view = self.topics();
        let count = view
            .topics
            .get(&request.topic)
            .map(|(_, n)| *n)
            .ok_or_else(|| Error::UnknownTopicOrPartition {
                topic: request.topic.clone(),
                partition: -1,
            })?;
        let all: BTreeSet<i32> = (0..i32::try_from(count).unwrap_or(i32::MAX)).collect();
        let selected: Vec<i32> = if request.partitions.is_empty() {
            all.iter().copied().collect()
        } else {
            request.partitions.clone()
        };
        if let Some(bad) = selected.iter().find(|p| !all.contains(p)) {
            return Err(Error::UnknownTopicOrPartition {
                topic: request.topic.clone(),
                partition: *bad,
            });
        }
        let slot = self.slot(group, true).await?;
        let members = slot.runtime.lock().await.group.members.len();
        if members > 0 && !request.dry_run {
            return Err(Error::NonEmptyGroup {
                group: group.to_owned(),
                members,
            });
        }
        let topic = request.topic.as_str();
        let brokers = &self.inner.brokers;
        let starts = brokers
            .list_offsets(topic, &selected, OffsetSpec::Earliest, 0)
            .await;
        let ends = brokers
            .list_offsets(topic, &selected, OffsetSpec::Latest, 0)
            .await;
        let by_time = match strategy {
            Strategy::ToTimestampMs(ts) => Some(
                brokers
                    .list_offsets(topic, &selected, OffsetSpec::ByTimestamp, ts)
                    .await,
            ),
            _ => None,
        };
        let previous: BTreeMap<i32, i64> = {
            let runtime = slot.runtime.lock().await;
            selected
                .iter()
                .filter_map(|p| {
                    let s = runtime.offsets.get(&(topic.to_owned(), *p))?;
                    Some((*p, s.committed.as_ref()?.offset))
                })
                .collect()
        };
        let mut results = Vec::new();
        let mut writes = Vec::new();
        for p in &selected {
            let bounds = match (starts.get(p), ends.get(p)) {
                (Some(Ok(Some(start))), Some(Ok(Some(end)))) => Ok((*start, *end)),
                (Some(Err(e)), _) | (_, Some(Err(e))) => Err(e.clone()),
                _ => Err("the leader did not report the partition's offsets".to_owned()),
            };
            let target = bounds.and_then(|(start, end)| {
                let raw = match strategy {
                    Strategy::Earliest(_) => start,
                    Strategy::Latest(_) => end,
                    Strategy::ToOffset(o) => o,
                    Strategy::ToTimestampMs(_) => match by_time.as_ref().and_then(|m| m.get(p)) {
                        Some(Ok(Some(o))) => *o,
                        Some(Ok(None)) => end,
                        Some(Err(e)) => return Err(e.clone()),
                        None => end,
                    },
                    Strategy::ShiftBy(n) => match previous.get(p) {
                        Some(c) => c.saturating_add(n),
                        None => return Err("no committed offset to shift".to_owned()),
                    },
                };
                Ok(raw.clamp(start, end))
            });
            let mut result = pb::ResetOffsetsPartitionResult {
                partition: *p,
                previous_offset: previous.get(p).copied(),
                ..Default::default()
            };
            match target {
                Ok(offset) => {
                    result.new_offset = offset;
                    writes.push(CommitPartition {
                        topic: topic.to_owned(),
                        partition: *p,
                        offset,
                        leader_epoch: None,
                        metadata: String::new(),
                    });
                }
                Err(reason) => {
                    let code = if reason.contains("no committed offset") {
                        Error::InvalidRequest { reason }
                    } else {
                        Error::LogEndUnavailable {
                            topic: topic.to_owned(),
                            partition: *p,
                            reason,
                        }
                    };
                    result.error = Some(code.to_pb());
                }
            }
            results.push(result);
        }
        if !request.dry_run {
            self.force_offsets(&slot, writes, &mut results).await;
        }
        Ok(results)
    }

    /// Writes reset offsets, which may move backward.
    async fn force_offsets(
        &self,
        slot: &std::sync::Arc<super::GroupSlot>,
        writes: Vec<CommitPartition>,
        results: &mut [pb::ResetOffsetsPartitionResult],
    ) {
        {
            let mut runtime = slot.runtime.lock().await;
            if !runtime.stored {
                let empty = runtime.group.clone();
                if let Err(e) = self.persist(slot, &empty).await {
                    for r in results.iter_mut().filter(|r| r.error.is_none()) {
                        r.error = Some(e.to_pb());
                    }
                    return;
                }
                runtime.stored = true;
            }
        }
        let indexes: Vec<usize> = (0..writes.len()).collect();
        let written = self.write_offsets(slot, &writes, &indexes).await;
        let mut runtime = slot.runtime.lock().await;
        for (p, (record, outcome)) in writes.iter().zip(written) {
            let entry = runtime
                .offsets
                .entry((p.topic.clone(), p.partition))
                .or_default();
            match outcome {
                Ok(()) => {
                    entry.committed = record;
                    entry.pending = None;
                }
                Err(e) => {
                    if let Some(r) = results.iter_mut().find(|r| r.partition == p.partition) {
                        r.error = Some(e.to_pb());
                    }
                }
            }
        }
        info!(
            group = slot.name(),
            topic = writes.first().map(|w| w.topic.as_str()),
            "offsets reset"
        );
    }
}
