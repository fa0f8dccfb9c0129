//! Mirrors the watched prefixes into the [`ClusterView`] the reducer reads.

use std::collections::BTreeMap;

use strom_meta::records::{self, BrokerRegistration, PartitionRecord, TopicRecord};
use strom_meta::{Change, KeyValue, Keys};
use strom_types::{BrokerId, TopicId};
use tracing::error;

use crate::{ClusterView, LiveBroker, PartitionState};

/// The view plus what the shell needs beside it: each topic's mod revision (for fenced
/// updates and deletes).
#[derive(Debug, Default)]
pub(crate) struct MirroredView {
    pub(crate) view: ClusterView,
    pub(crate) topic_revisions: BTreeMap<TopicId, i64>,
}

impl MirroredView {
    /// Applies changes under `brokers/`. Returns the brokers that re-registered (a new broker
    /// epoch) without having been seen gone: a restart the controller must treat as a failure,
    /// since the new process may lack what the old one had acknowledged.
    pub(crate) fn apply_brokers(&mut self, keys: &Keys, changes: &[Change]) -> Vec<BrokerId> {
        let before: BTreeMap<BrokerId, i64> = self
            .view
            .brokers
            .iter()
            .map(|(id, b)| (*id, b.broker_epoch))
            .collect();
        for change in changes {
            let Some(id) = keys.parse_broker(change.key()) else {
                continue;
            };
            match change {
                Change::Put(kv) => {
                    match records::decode::<BrokerRegistration>(&kv.key, &kv.value) {
                        Ok(reg) => {
                            let broker = LiveBroker {
                                broker_epoch: kv.create_revision,
                                rack: reg.rack,
                                address: reg.address,
                            };
                            self.view.brokers.insert(id, broker);
                        }
                        Err(e) => error!(error = %e, "ignoring a malformed broker registration"),
                    }
                }
                Change::Delete(_) => {
                    self.view.brokers.remove(&id);
                }
            }
        }
        self.view
            .brokers
            .iter()
            .filter(|(id, b)| before.get(id).is_some_and(|epoch| *epoch != b.broker_epoch))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Records a partition as written at `revision`.
    pub(crate) fn set_partition(
        &mut self,
        key: (TopicId, strom_types::PartitionId),
        record: PartitionRecord,
        revision: i64,
    ) {
        let state = PartitionState {
            record,
            mod_revision: revision,
        };
        self.view.partitions.insert(key, state);
    }

    /// Applies changes under `topics/`.
    pub(crate) fn apply_topics(&mut self, changes: &[Change]) {
        for change in changes {
            match change {
                Change::Put(kv) => {
                    if let Some(topic) = decode_topic(kv) {
                        self.topic_revisions.insert(topic.id, kv.mod_revision);
                        self.view.topics.insert(topic.id, topic);
                    }
                }
                Change::Delete(kv) => {
                    if let Some(topic) = decode_topic(kv) {
                        self.topic_revisions.remove(&topic.id);
                        self.view.topics.remove(&topic.id);
                    }
                }
            }
        }
    }

    /// Applies changes under `partitions/`.
    pub(crate) fn apply_partitions(&mut self, keys: &Keys, changes: &[Change]) {
        for change in changes {
            let Some(id) = keys.parse_partition(change.key()) else {
                continue;
            };
            match change {
                Change::Put(kv) => match records::decode::<PartitionRecord>(&kv.key, &kv.value) {
                    Ok(record) => {
                        let state = PartitionState {
                            record,
                            mod_revision: kv.mod_revision,
                        };
                        self.view.partitions.insert(id, state);
                    }
                    Err(e) => error!(error = %e, "ignoring a malformed partition record"),
                },
                Change::Delete(_) => {
                    self.view.partitions.remove(&id);
                }
            }
        }
    }
}

fn decode_topic(kv: &KeyValue) -> Option<TopicRecord> {
    records::decode::<TopicRecord>(&kv.key, &kv.value)
        .map_err(|e| error!(error = %e, "ignoring a malformed topic record"))
        .ok()
}
