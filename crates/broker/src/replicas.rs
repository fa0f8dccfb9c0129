//! The replicas this broker holds: one partition log per assigned partition, created when the
//! controller assigns it and deleted when the assignment or the topic goes away, with the
//! role (leader or follower) this broker plays for each.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use strom_meta::records::PartitionRecord;
use strom_storage::{Clock, LogConfig, PartitionLog, StateStore};
use strom_topic_config::{LogSettings, log_settings};
use strom_types::{BrokerId, LeaderEpoch, Offset, PartitionId, TopicId, TopicPartition};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::replication::{FetcherManager, LeaderProgress};
use crate::{Error, Result};
use strom_meta::{ClusterState, MetadataCache};

/// The file in each partition directory naming the topic id the log belongs to, so a log left
/// by a deleted topic is never taken for a re-created topic of the same name.
const PARTITION_METADATA: &str = "partition.metadata";

/// What this broker does for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Serves produce and fetch at this leader epoch.
    Leader(LeaderEpoch),
    /// Follows the leader at this epoch (or waits for one).
    Follower(LeaderEpoch),
}

/// One local replica.
#[derive(Debug, Clone)]
pub struct Replica {
    /// The partition's topic id.
    pub topic_id: TopicId,
    /// The partition's name.
    pub partition: TopicPartition,
    /// The log.
    pub log: Arc<PartitionLog>,
    /// The role, as of the last metadata applied.
    pub role: Role,
    /// The partition record the role was derived from.
    pub record: PartitionRecord,
    /// While leader: the log end offset when this leadership began, where the current leader
    /// epoch starts in this log.
    pub leader_start: Offset,
    /// While leader: what the followers have fetched. Fresh for every role change.
    pub progress: Arc<Mutex<LeaderProgress>>,
    /// Bumped after every append and high-watermark move, so long polls wake up.
    pub activity: Arc<watch::Sender<u64>>,
    /// The topic's log settings the log was last configured with.
    pub settings: LogSettings,
}

impl Replica {
    /// Wakes everyone waiting for new data or a higher high watermark.
    pub fn signal_activity(&self) {
        self.activity.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Runs `f` on the follower progress (a short critical section, never held across awaits).
    pub fn with_progress<T>(&self, f: impl FnOnce(&mut LeaderProgress) -> T) -> T {
        let mut guard = self
            .progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

/// The local replicas, shared with request handlers.
#[derive(Debug, Clone, Default)]
pub struct Replicas {
    inner: Arc<RwLock<BTreeMap<(TopicId, PartitionId), Replica>>>,
}

impl Replicas {
    /// The replica of a partition, if this broker holds it.
    pub fn get(&self, topic: TopicId, partition: PartitionId) -> Option<Replica> {
        let map = self
            .inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(&(topic, partition)).cloned()
    }

    /// How many replicas this broker holds and how many it leads.
    pub fn counts(&self) -> (usize, usize) {
        let map = self
            .inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let leaders = map
            .values()
            .filter(|r| matches!(r.role, Role::Leader(_)))
            .count();
        (map.len(), leaders)
    }

    /// Every replica.
    pub fn snapshot(&self) -> BTreeMap<(TopicId, PartitionId), Replica> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn insert(&self, key: (TopicId, PartitionId), replica: Replica) {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key, replica);
    }

    fn remove(&self, key: &(TopicId, PartitionId)) -> Option<Replica> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key)
    }
}

/// Brings the local replicas in line with the metadata cache.
#[derive(Debug)]
pub struct ReplicaManager {
    me: BrokerId,
    logs_dir: PathBuf,
    state_store: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
    replicas: Replicas,
}

impl ReplicaManager {
    /// A manager for broker `me` keeping logs under `logs_dir`.
    pub fn new(
        me: BrokerId,
        logs_dir: PathBuf,
        state_store: Arc<dyn StateStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            me,
            logs_dir,
            state_store,
            clock,
            replicas: Replicas::default(),
        }
    }

    /// The replicas, for request handlers.
    pub fn replicas(&self) -> Replicas {
        self.replicas.clone()
    }

    /// Follows metadata and registration changes until `shutdown` — opening and deleting logs,
    /// setting roles and running the follower fetchers — then closes every log.
    pub async fn run(
        self,
        cache: MetadataCache,
        mut epoch: watch::Receiver<Option<i64>>,
        shutdown: CancellationToken,
    ) {
        let mut changes = cache.changes();
        let mut fetchers = FetcherManager::new(
            self.me,
            cache.clone(),
            self.replicas.clone(),
            epoch.clone(),
            shutdown.child_token(),
        );
        self.remove_leftovers().await;
        let mut first = true;
        loop {
            let registered = epoch.borrow_and_update().is_some();
            let state = cache.snapshot();
            if let Err(error) = self.reconcile(&state, registered, first).await {
                warn!(%error, "could not bring local replicas in line with metadata; will retry");
            }
            fetchers.update();
            first = false;
            tokio::select! {
                () = shutdown.cancelled() => break,
                changed = changes.changed() => if changed.is_err() { break },
                changed = epoch.changed() => if changed.is_err() { break },
                () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            }
        }
        fetchers.stop().await;
        self.close_all().await;
    }

    /// Opens, deletes and re-roles replicas. Without a registration, nothing is led.
    async fn reconcile(&self, state: &ClusterState, registered: bool, startup: bool) -> Result<()> {
        let mut wanted = BTreeMap::new();
        for ((topic_id, partition), record) in &state.partitions {
            if !record.replicas.contains(&self.me) {
                continue;
            }
            let Some(name) = state.topic_names.get(topic_id) else {
                continue;
            };
            let role = match record.leader {
                Some(leader) if leader == self.me && registered => {
                    Role::Leader(record.leader_epoch)
                }
                _ => Role::Follower(record.leader_epoch),
            };
            let tp = TopicPartition::new(name.clone(), *partition);
            let settings = state
                .topics
                .get(name)
                .map(|t| log_settings(&t.configs))
                .unwrap_or_else(|| log_settings(&BTreeMap::new()));
            wanted.insert(
                (*topic_id, *partition),
                (tp, role, record.clone(), settings),
            );
        }
        let current = self.replicas.snapshot();
        for (key, replica) in &current {
            if !wanted.contains_key(key) {
                info!(partition = %replica.partition, topic_id = %key.0, "replica unassigned; deleting its log");
                self.replicas.remove(key);
                let log = Arc::clone(&replica.log);
                blocking(move || log.delete().map_err(Error::from)).await?;
            }
        }
        for (key, (tp, role, record, settings)) in wanted {
            let mut existing = current.get(&key).cloned();
            if let Some(replica) = existing.as_mut()
                && replica.settings != settings
            {
                let log = Arc::clone(&replica.log);
                blocking(move || {
                    log.set_config(LogConfig::from(&settings))
                        .map_err(Error::from)
                })
                .await?;
                info!(partition = %tp, "topic configs changed; log reconfigured");
                replica.settings = settings;
                self.replicas.insert(key, replica.clone());
            }
            match existing {
                Some(existing) if existing.role == role && existing.record == record => {}
                Some(existing) if existing.role == role => {
                    self.replicas.insert(key, Replica { record, ..existing });
                }
                Some(existing) => {
                    info!(partition = %tp, ?role, "replica role changed");
                    let replica = fresh_role(existing, role, record)?;
                    self.replicas.insert(key, replica);
                }
                None => {
                    let log = self
                        .open(key.0, tp.clone(), LogConfig::from(&settings))
                        .await?;
                    info!(partition = %tp, ?role, "replica created");
                    let replica = Replica {
                        topic_id: key.0,
                        partition: tp,
                        log,
                        role,
                        record: record.clone(),
                        leader_start: Offset::ZERO,
                        progress: Arc::default(),
                        activity: Arc::new(watch::channel(0).0),
                        settings,
                    };
                    self.replicas
                        .insert(key, fresh_role(replica, role, record)?);
                }
            }
        }
        if startup {
            self.remove_strays().await;
        }
        Ok(())
    }

    /// Opens (creating if needed) the log of `tp`, replacing a log left by another topic id.
    async fn open(
        &self,
        topic_id: TopicId,
        tp: TopicPartition,
        config: LogConfig,
    ) -> Result<Arc<PartitionLog>> {
        let (dir, store, clock) = (
            self.logs_dir.clone(),
            self.state_store.clone(),
            self.clock.clone(),
        );
        blocking(move || {
            let partition_dir = dir.join(tp.dir_name());
            let marker = partition_dir.join(PARTITION_METADATA);
            if let Ok(text) = std::fs::read_to_string(&marker)
                && text.trim() != topic_id.to_string()
            {
                info!(
                    partition = %tp,
                    old_topic_id = text.trim(),
                    "deleting a log of an earlier topic with the same name"
                );
                let old = PartitionLog::open(
                    &dir,
                    tp.clone(),
                    LogConfig::default(),
                    store.clone(),
                    clock.clone(),
                )?;
                old.delete()?;
            }
            let log = PartitionLog::open(&dir, tp, config, store, clock)?;
            std::fs::write(&marker, format!("{topic_id}\n")).map_err(|source| Error::Io {
                operation: "write",
                path: marker,
                source,
            })?;
            Ok(Arc::new(log))
        })
        .await
    }

    /// Removes `*.deleted` directories that an interrupted delete left behind.
    async fn remove_leftovers(&self) {
        let dir = self.logs_dir.clone();
        let removed = blocking(move || {
            let mut removed = 0;
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(_) => return Ok(0),
            };
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().ends_with(".deleted") {
                    let path = entry.path();
                    std::fs::remove_dir_all(&path).map_err(|source| Error::Io {
                        operation: "remove",
                        path,
                        source,
                    })?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await;
        match removed {
            Ok(0) => {}
            Ok(n) => info!(directories = n, "removed partially deleted partition logs"),
            Err(error) => warn!(%error, "could not remove partially deleted partition logs"),
        }
    }

    /// Deletes partition directories that no current assignment accounts for (topics deleted
    /// or moved while this broker was down). Runs once, after the first full metadata load.
    async fn remove_strays(&self) {
        let held: Vec<String> = self
            .replicas
            .snapshot()
            .values()
            .map(|r| r.partition.dir_name())
            .collect();
        let (dir, store, clock) = (
            self.logs_dir.clone(),
            self.state_store.clone(),
            self.clock.clone(),
        );
        let outcome = blocking(move || delete_strays(&dir, &held, store, clock)).await;
        if let Err(error) = outcome {
            warn!(%error, "could not delete stray partition logs");
        }
    }

    async fn close_all(&self) {
        for (_, replica) in self.replicas.snapshot() {
            let log = Arc::clone(&replica.log);
            if let Err(error) = blocking(move || log.close().map_err(Error::from)).await {
                warn!(partition = %replica.partition, %error, "could not close a partition log cleanly");
            }
        }
    }
}

/// A replica entering `role`: follower progress starts over, and a new leadership starts at
/// the current log end.
fn fresh_role(replica: Replica, role: Role, record: PartitionRecord) -> Result<Replica> {
    let leader_start = replica.log.log_end_offset()?;
    Ok(Replica {
        role,
        record,
        leader_start,
        progress: Arc::default(),
        ..replica
    })
}

fn delete_strays(
    dir: &Path,
    held: &[String],
    store: Arc<dyn StateStore>,
    clock: Arc<dyn Clock>,
) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if held.contains(&name) || !entry.path().is_dir() {
            continue;
        }
        let Ok(tp) = TopicPartition::from_dir_name(&name) else {
            continue;
        };
        info!(partition = %tp, "deleting a stray partition log no assignment accounts for");
        let log = PartitionLog::open(
            dir,
            tp,
            LogConfig::default(),
            Arc::clone(&store),
            Arc::clone(&clock),
        )?;
        log.delete()?;
    }
    Ok(())
}

/// Runs blocking storage work off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::TaskFailed {
            reason: e.to_string(),
        })?
}
