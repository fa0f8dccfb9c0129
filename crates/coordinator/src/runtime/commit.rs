//! CommitOffsets and FetchOffsets.

use std::collections::BTreeMap;

use strom_meta::records::{self, OffsetRecord};
use strom_proto::broker::v1::OffsetSpec;
use strom_types::{PartitionId, TopicName};

use super::Coordinator;
use crate::offsets::{OffsetKey, OffsetSlot};
use crate::{Error, Result};

/// One position to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The offset of the next record to consume.
    pub offset: i64,
    /// Leader epoch of the last consumed record.
    pub leader_epoch: Option<i32>,
    /// Free-form metadata.
    pub metadata: String,
}

/// The outcome of one partition's commit.
pub type CommitOutcome = (String, i32, Result<()>);

/// A committed position as FetchOffsets reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The committed record, when there is one for the topic as it exists now.
    pub committed: Option<OffsetRecord>,
}

impl Coordinator {
    /// Commits positions for `group` on behalf of `member_id` at `member_epoch` (empty member
    /// id: a commit from outside the group, accepted only while it has no members).
    pub async fn commit_offsets(
        &self,
        group: &str,
        member_id: &str,
        member_epoch: i32,
        partitions: Vec<CommitPartition>,
    ) -> Result<Vec<CommitOutcome>> {
        let slot = self.slot(group, true).await?;
        {
            let mut runtime = slot.runtime.lock().await;
            check_committer(&runtime.group, member_id, member_epoch)?;
            if !runtime.stored {
                let empty = runtime.group.clone();
                self.persist(&slot, &empty).await?;
                runtime.stored = true;
            }
        }
        let mut outcomes: Vec<CommitOutcome> = Vec::with_capacity(partitions.len());
        let mut accepted = Vec::new();
        let state = self.inner.cache.snapshot();
        for (index, p) in partitions.iter().enumerate() {
            match self.check_partition(&state, p) {
                Ok(()) => accepted.push(index),
                Err(e) => outcomes.push((p.topic.clone(), p.partition, Err(e))),
            }
        }
        let accepted = self
            .check_log_ends(&partitions, accepted, &mut outcomes)
            .await;
        // Reserve each offset in the table so a concurrent, lower commit cannot overtake it.
        let mut writes = Vec::new();
        {
            let mut runtime = slot.runtime.lock().await;
            for index in accepted {
                let p = &partitions[index];
                let key: OffsetKey = (p.topic.clone(), p.partition);
                let entry = runtime.offsets.entry(key).or_default();
                match entry.floor() {
                    Some(floor) if p.offset < floor => outcomes.push((
                        p.topic.clone(),
                        p.partition,
                        Err(Error::CommitBehind {
                            topic: p.topic.clone(),
                            partition: p.partition,
                            offset: p.offset,
                            committed: floor,
                        }),
                    )),
                    _ => {
                        entry.pending = Some(p.offset);
                        writes.push(index);
                    }
                }
            }
        }
        let results = self.write_offsets(&slot, &partitions, &writes).await;
        let mut runtime = slot.runtime.lock().await;
        for (index, (record, result)) in writes.into_iter().zip(results) {
            let p = &partitions[index];
            let entry = runtime
                .offsets
                .entry((p.topic.clone(), p.partition))
                .or_default();
            settle(entry, record, result.is_ok());
            outcomes.push((p.topic.clone(), p.partition, result));
        }
        Ok(outcomes)
    }

    /// Writes the reserved offsets through the commit queue, concurrently, so they share
    /// transactions with each other and with other groups' commits.
    pub(super) async fn write_offsets(
        &self,
        slot: &super::GroupSlot,
        partitions: &[CommitPartition],
        writes: &[usize],
    ) -> Vec<(Option<OffsetRecord>, Result<()>)> {
        let keys = &self.inner.keys;
        let state = self.inner.cache.snapshot();
        let now = now_ms();
        let jobs = writes.iter().map(|&index| {
            let p = &partitions[index];
            let topic = TopicName::new(&p.topic).ok();
            let id = topic
                .as_ref()
                .and_then(|t| state.topics.get(t))
                .map(|t| t.id);
            async move {
                let (Some(topic), Some(topic_id)) = (topic, id) else {
                    return (None, Err(unknown(&p.topic, p.partition)));
                };
                let record = OffsetRecord {
                    topic_id,
                    offset: p.offset,
                    leader_epoch: p.leader_epoch,
                    metadata: p.metadata.clone(),
                    commit_timestamp_ms: now,
                };
                let value = match records::encode(&record) {
                    Ok(value) => value,
                    Err(e) => return (None, Err(e.into())),
                };
                let partition = PartitionId::new(p.partition);
                let key = keys.offset(slot.name(), &topic, partition);
                let fence = slot.owner().fence(keys, slot.name());
                let result = self
                    .inner
                    .commits
                    .commit(slot.name(), fence, key, value)
                    .await
                    .map_err(|e| match e {
                        Error::NotCoordinator { .. } => Error::NotCoordinator {
                            group: slot.name().to_owned(),
                            owner: None,
                        },
                        other => other,
                    });
                (Some(record), result)
            }
        });
        futures::future::join_all(jobs).await
    }

    /// Checks what can be checked without the leader: topic and partition exist, the offset is
    /// not negative, the metadata fits.
    fn check_partition(&self, state: &strom_meta::ClusterState, p: &CommitPartition) -> Result<()> {
        let topic = TopicName::new(&p.topic)
            .ok()
            .and_then(|t| state.topics.get(&t).cloned())
            .ok_or_else(|| unknown(&p.topic, p.partition))?;
        if p.partition < 0 || u32::try_from(p.partition).unwrap_or(u32::MAX) >= topic.partitions {
            return Err(unknown(&p.topic, p.partition));
        }
        if p.offset < 0 {
            return Err(Error::OffsetOutOfRange {
                topic: p.topic.clone(),
                partition: p.partition,
                offset: p.offset,
                log_end: 0,
            });
        }
        let max = self.inner.settings.max_offset_metadata;
        if p.metadata.len() > max {
            return Err(Error::MetadataTooLarge {
                size: p.metadata.len(),
                max,
            });
        }
        Ok(())
    }

    /// Keeps the accepted commits whose offset is at most the partition's log end, asking the
    /// leaders only for partitions whose cached log end is below the offset.
    async fn check_log_ends(
        &self,
        partitions: &[CommitPartition],
        accepted: Vec<usize>,
        outcomes: &mut Vec<CommitOutcome>,
    ) -> Vec<usize> {
        let mut unsure: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for &index in &accepted {
            let p = &partitions[index];
            if self.cached_log_end(&p.topic, p.partition) < Some(p.offset) {
                unsure.entry(&p.topic).or_default().push(p.partition);
            }
        }
        let mut fresh: BTreeMap<(String, i32), std::result::Result<i64, String>> = BTreeMap::new();
        for (topic, parts) in unsure {
            let found = self
                .inner
                .brokers
                .list_offsets(topic, &parts, OffsetSpec::Latest, 0)
                .await;
            for (partition, lookup) in found {
                let end = lookup.and_then(|o| o.ok_or_else(|| "no log end".to_owned()));
                if let Ok(end) = &end {
                    self.remember_log_end(topic, partition, *end);
                }
                fresh.insert((topic.to_owned(), partition), end);
            }
        }
        let mut kept = Vec::with_capacity(accepted.len());
        for index in accepted {
            let p = &partitions[index];
            let verdict = match fresh.get(&(p.topic.clone(), p.partition)) {
                None => Ok(()),
                Some(Ok(end)) if p.offset <= *end => Ok(()),
                Some(Ok(end)) => Err(Error::OffsetOutOfRange {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    offset: p.offset,
                    log_end: *end,
                }),
                Some(Err(reason)) => Err(Error::LogEndUnavailable {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    reason: reason.clone(),
                }),
            };
            match verdict {
                Ok(()) => kept.push(index),
                Err(e) => outcomes.push((p.topic.clone(), p.partition, Err(e))),
            }
        }
        kept
    }

    /// Committed positions of `group` in the requested partitions (topic → partitions; an
    /// empty request or partition list means all).
    pub async fn fetch_offsets(
        &self,
        group: &str,
        wanted: &BTreeMap<String, Vec<i32>>,
    ) -> Result<Vec<CommittedOffset>> {
        let slot = match self.slot(group, false).await {
            Ok(slot) => slot,
            Err(Error::GroupNotFound { .. }) => return Ok(unknown_group(wanted)),
            Err(e) => return Err(e),
        };
        let runtime = slot.runtime.lock().await;
        let state = self.inner.cache.snapshot();
        let current = |topic: &str, record: &OffsetRecord| {
            TopicName::new(topic)
                .ok()
                .and_then(|t| state.topics.get(&t))
                .is_some_and(|t| t.id == record.topic_id)
        };
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for ((topic, partition), slot) in &runtime.offsets {
            let selected = wanted.is_empty()
                || wanted
                    .get(topic)
                    .is_some_and(|ps| ps.is_empty() || ps.contains(partition));
            if !selected {
                continue;
            }
            seen.insert((topic.clone(), *partition));
            let committed = slot
                .committed
                .clone()
                .filter(|record| current(topic, record));
            out.push(CommittedOffset {
                topic: topic.clone(),
                partition: *partition,
                committed,
            });
        }
        for (topic, parts) in wanted {
            for partition in parts {
                if !seen.contains(&(topic.clone(), *partition)) {
                    out.push(CommittedOffset {
                        topic: topic.clone(),
                        partition: *partition,
                        committed: None,
                    });
                }
            }
        }
        Ok(out)
    }
}

/// Checks that a commit comes from a current member (or, with no member id, that the group
/// has no members).
fn check_committer(group: &crate::group::Group, member_id: &str, epoch: i32) -> Result<()> {
    if member_id.is_empty() {
        if group.members.is_empty() {
            return Ok(());
        }
        return Err(Error::UnknownMember {
            member: String::new(),
        });
    }
    let member = group
        .members
        .get(member_id)
        .filter(|m| !m.departed)
        .ok_or_else(|| Error::UnknownMember {
            member: member_id.to_owned(),
        })?;
    match epoch.cmp(&member.epoch) {
        std::cmp::Ordering::Equal => Ok(()),
        std::cmp::Ordering::Less => Err(Error::StaleMemberEpoch {
            member: member_id.to_owned(),
            epoch,
            current: member.epoch,
        }),
        std::cmp::Ordering::Greater => Err(Error::FencedMemberEpoch {
            member: member_id.to_owned(),
            epoch,
            current: member.epoch,
        }),
    }
}

/// Records a commit's outcome in the table.
fn settle(entry: &mut OffsetSlot, record: Option<OffsetRecord>, durable: bool) {
    let offset = record.as_ref().map(|r| r.offset);
    if durable {
        let newer = entry
            .committed
            .as_ref()
            .is_none_or(|c| offset.is_some_and(|o| o >= c.offset));
        if newer {
            entry.committed = record;
        }
    }
    if entry.pending == offset {
        entry.pending = None;
    }
}

fn unknown(topic: &str, partition: i32) -> Error {
    Error::UnknownTopicOrPartition {
        topic: topic.to_owned(),
        partition,
    }
}

fn unknown_group(wanted: &BTreeMap<String, Vec<i32>>) -> Vec<CommittedOffset> {
    wanted
        .iter()
        .flat_map(|(topic, parts)| {
            parts.iter().map(|p| CommittedOffset {
                topic: topic.clone(),
                partition: *p,
                committed: None,
            })
        })
        .collect()
}

/// Wall-clock time in Unix milliseconds.
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
