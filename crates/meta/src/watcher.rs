//! [`PrefixWatcher`]: a local copy of every key under a prefix, kept current by list-then-watch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, warn};

use crate::store::{EventKind, KeyValue, Listing, MetaStore, WatchBatch, WatchStream};
use crate::{Error, Result};

/// The longest pause between attempts while the store is unreachable.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One change to the watched prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A key was created or changed; the new key-value.
    Put(KeyValue),
    /// A key was deleted; the last key-value this watcher had for it.
    Delete(KeyValue),
}

impl Change {
    /// The key that changed.
    pub fn key(&self) -> &str {
        match self {
            Change::Put(kv) | Change::Delete(kv) => &kv.key,
        }
    }
}

/// A set of changes that brought the local copy up to `revision`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// The store revision the copy now reflects.
    pub revision: i64,
    /// The changes since the previous update, in order.
    pub changes: Vec<Change>,
    /// Whether the changes came from a re-list (after compaction, cancellation, an outage or the
    /// periodic resync) rather than from the watch.
    pub resync: bool,
}

/// Mirrors every key under a prefix.
///
/// It lists the prefix at revision R, watches from R + 1, and whenever the watch ends
/// (compaction, cancellation, a store restart) or the periodic resync comes due, it lists again
/// and reports the difference. Consumers apply [`Update`]s idempotently, so a resync that finds
/// nothing new reports nothing.
#[derive(Debug)]
pub struct PrefixWatcher {
    store: Arc<dyn MetaStore>,
    prefix: String,
    resync_every: Duration,
    cache: BTreeMap<String, KeyValue>,
    revision: i64,
    stream: Option<WatchStream>,
    next_resync: Instant,
    failures: u32,
}

impl PrefixWatcher {
    /// Lists `prefix` and prepares to watch it.
    pub async fn start(
        store: Arc<dyn MetaStore>,
        prefix: impl Into<String>,
        resync_every: Duration,
    ) -> Result<Self> {
        let prefix = prefix.into();
        let listing = store.list(&prefix).await?;
        let cache = listing
            .kvs
            .into_iter()
            .map(|kv| (kv.key.clone(), kv))
            .collect();
        Ok(Self {
            store,
            prefix,
            resync_every,
            cache,
            revision: listing.revision,
            stream: None,
            next_resync: Instant::now() + resync_every,
            failures: 0,
        })
    }

    /// The current local copy.
    pub fn snapshot(&self) -> &BTreeMap<String, KeyValue> {
        &self.cache
    }

    /// The store revision the local copy reflects.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    /// Waits for the next non-empty set of changes. Store failures are retried with backoff and
    /// never surface here. Cancel-safe: the copy changes only when an update is returned.
    pub async fn next(&mut self) -> Update {
        loop {
            if self.stream.is_none() {
                match self.store.watch(&self.prefix, self.revision + 1).await {
                    Ok(stream) => self.stream = Some(stream),
                    Err(error) => {
                        if let Some(update) = self.relist_after(&error).await {
                            return update;
                        }
                        continue;
                    }
                }
            }
            let Some(stream) = self.stream.as_mut() else {
                continue;
            };
            let item = tokio::select! {
                () = tokio::time::sleep_until(self.next_resync) => {
                    self.next_resync = Instant::now() + self.resync_every;
                    match self.relist().await {
                        Ok(Some(update)) => return update,
                        Ok(None) => continue,
                        Err(error) => {
                            warn!(prefix = %self.prefix, %error, "periodic resync failed");
                            continue;
                        }
                    }
                }
                item = stream.next() => item,
            };
            match item {
                Some(Ok(batch)) => {
                    self.failures = 0;
                    if let Some(update) = self.apply(batch) {
                        return update;
                    }
                }
                Some(Err(error)) => {
                    self.stream = None;
                    if let Some(update) = self.relist_after(&error).await {
                        return update;
                    }
                }
                None => {
                    self.stream = None;
                    let error = Error::WatchCancelled {
                        prefix: self.prefix.clone(),
                    };
                    if let Some(update) = self.relist_after(&error).await {
                        return update;
                    }
                }
            }
        }
    }

    fn apply(&mut self, batch: WatchBatch) -> Option<Update> {
        let mut changes = Vec::new();
        for event in batch.events {
            // Events at or below the listed revision are already in the copy.
            if event.kv.mod_revision <= self.revision {
                continue;
            }
            match event.kind {
                EventKind::Put => {
                    self.cache.insert(event.kv.key.clone(), event.kv.clone());
                    changes.push(Change::Put(event.kv));
                }
                EventKind::Delete => {
                    if let Some(previous) = self.cache.remove(&event.kv.key) {
                        changes.push(Change::Delete(previous));
                    }
                }
            }
        }
        let newest = changes.iter().map(|c| match c {
            Change::Put(kv) => kv.mod_revision,
            Change::Delete(_) => batch.revision,
        });
        self.revision = self
            .revision
            .max(batch.revision)
            .max(newest.max().unwrap_or(0));
        (!changes.is_empty()).then(|| Update {
            revision: self.revision,
            changes,
            resync: false,
        })
    }

    /// Re-lists after the watch could not go on, backing off while the store is unreachable.
    async fn relist_after(&mut self, error: &Error) -> Option<Update> {
        debug!(prefix = %self.prefix, %error, "watch interrupted; re-listing");
        if self.failures > 0 {
            let backoff = Duration::from_millis(100 << self.failures.min(5)).min(MAX_BACKOFF);
            tokio::time::sleep(backoff).await;
        }
        match self.relist().await {
            Ok(update) => update,
            Err(error) => {
                self.failures += 1;
                warn!(prefix = %self.prefix, %error, attempts = self.failures, "re-list failed");
                None
            }
        }
    }

    /// Lists the prefix and reports how it differs from the copy.
    async fn relist(&mut self) -> Result<Option<Update>> {
        let listing = self.store.list(&self.prefix).await?;
        self.failures = 0;
        Ok(self.replace(listing))
    }

    fn replace(&mut self, listing: Listing) -> Option<Update> {
        let mut fresh: BTreeMap<String, KeyValue> = listing
            .kvs
            .into_iter()
            .map(|kv| (kv.key.clone(), kv))
            .collect();
        let mut changes = Vec::new();
        for (key, old) in &self.cache {
            if !fresh.contains_key(key) {
                changes.push(Change::Delete(old.clone()));
            }
        }
        for (key, kv) in &fresh {
            let same = self
                .cache
                .get(key)
                .is_some_and(|old| old.mod_revision == kv.mod_revision);
            if !same {
                changes.push(Change::Put(kv.clone()));
            }
        }
        std::mem::swap(&mut self.cache, &mut fresh);
        // A listing older than what the watch already delivered cannot happen with a
        // linearizable store; keep the revision monotonic regardless.
        self.revision = self.revision.max(listing.revision);
        self.stream = None;
        (!changes.is_empty()).then(|| Update {
            revision: self.revision,
            changes,
            resync: true,
        })
    }
}
