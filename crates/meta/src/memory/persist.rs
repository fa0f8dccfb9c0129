//! Keeping a [`MemoryStore`](super::MemoryStore) across restarts: the [`Persistence`] it
//! writes to, the encoding of its keys, and the writer thread that applies each revision in
//! order without blocking the runtime.
//!
//! Each committed revision becomes one atomic batch: the changed keys (with their revisions,
//! version and lease) plus the store revision and the next lease id. History and leases are not
//! kept: a reopened store has no past to replay, and the leases of the previous process ended
//! with it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use tokio::sync::{broadcast, oneshot};

use crate::store::{EventKind, KeyValue, LeaseId, WatchBatch, WatchEvent};
use crate::{Error, Result};

/// Puts and deletes applied together.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersistBatch {
    /// Entries to write.
    pub puts: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys to remove.
    pub deletes: Vec<Vec<u8>>,
}

/// Where a persisted [`MemoryStore`](super::MemoryStore) keeps its keys: an ordered byte
/// key-value space written in atomic batches (the dev mode gives it a RocksDB column family).
/// Calls block; the store makes them from its own thread.
pub trait Persistence: Send + Sync + fmt::Debug + 'static {
    /// Every entry.
    fn load(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;

    /// Applies `batch` atomically; it must survive a crash of the process once this returns.
    fn write(&self, batch: PersistBatch) -> Result<()>;
}

/// A [`Persistence`] in memory, for tests: share one between two stores to reopen.
#[derive(Debug, Default)]
pub struct MemoryPersistence {
    entries: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl Persistence for MemoryPersistence {
    fn load(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        Ok(entries
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn write(&self, batch: PersistBatch) -> Result<()> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for key in batch.deletes {
            entries.remove(&key);
        }
        entries.extend(batch.puts);
        Ok(())
    }
}

/// Stored keys live under this prefix; the two counters beside them.
const KEY_PREFIX: &[u8] = b"k/";
const REVISION: &[u8] = b"m/revision";
const NEXT_LEASE: &[u8] = b"m/next-lease";

/// The fixed part of an encoded key value: create revision, mod revision, version, lease.
const HEADER: usize = 32;

/// What a backend held.
#[derive(Debug, Default)]
pub(super) struct Loaded {
    /// The store revision; 0 when empty.
    pub(super) revision: i64,
    /// The next lease id to grant; 0 when empty.
    pub(super) next_lease: i64,
    /// Every key.
    pub(super) kvs: BTreeMap<String, KeyValue>,
}

/// Reads and decodes everything `backend` holds.
pub(super) fn load(backend: &dyn Persistence) -> Result<Loaded> {
    let mut loaded = Loaded::default();
    for (raw_key, raw_value) in backend.load()? {
        if raw_key == REVISION {
            loaded.revision = counter(REVISION, &raw_value)?;
        } else if raw_key == NEXT_LEASE {
            loaded.next_lease = counter(NEXT_LEASE, &raw_value)?;
        } else if let Some(key) = raw_key.strip_prefix(KEY_PREFIX) {
            let key = String::from_utf8(key.to_vec()).map_err(|e| Error::Decode {
                key: String::from_utf8_lossy(key).into_owned(),
                reason: e.to_string(),
            })?;
            let kv = decode(key, &raw_value)?;
            loaded.kvs.insert(kv.key.clone(), kv);
        }
    }
    Ok(loaded)
}

/// The batch recording one revision's events and the counters after it.
pub(super) fn revision_batch(
    events: &[WatchEvent],
    revision: i64,
    next_lease: i64,
) -> PersistBatch {
    let mut batch = counters_batch(revision, next_lease);
    for event in events {
        let mut key = KEY_PREFIX.to_vec();
        key.extend_from_slice(event.kv.key.as_bytes());
        match event.kind {
            EventKind::Put => batch.puts.push((key, encode(&event.kv))),
            EventKind::Delete => batch.deletes.push(key),
        }
    }
    batch
}

/// The batch recording only the counters.
pub(super) fn counters_batch(revision: i64, next_lease: i64) -> PersistBatch {
    PersistBatch {
        puts: vec![
            (REVISION.to_vec(), revision.to_be_bytes().to_vec()),
            (NEXT_LEASE.to_vec(), next_lease.to_be_bytes().to_vec()),
        ],
        deletes: Vec::new(),
    }
}

fn counter(key: &[u8], raw: &[u8]) -> Result<i64> {
    let bytes: [u8; 8] = raw.try_into().map_err(|_| Error::Decode {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: format!("expected 8 bytes, found {}", raw.len()),
    })?;
    Ok(i64::from_be_bytes(bytes))
}

fn encode(kv: &KeyValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + kv.value.len());
    out.extend_from_slice(&kv.create_revision.to_be_bytes());
    out.extend_from_slice(&kv.mod_revision.to_be_bytes());
    out.extend_from_slice(&kv.version.to_be_bytes());
    out.extend_from_slice(&kv.lease.map_or(0, |lease| lease.0).to_be_bytes());
    out.extend_from_slice(&kv.value);
    out
}

fn decode(key: String, raw: &[u8]) -> Result<KeyValue> {
    if raw.len() < HEADER {
        return Err(Error::Decode {
            key,
            reason: format!(
                "stored entry is {} bytes, shorter than its header",
                raw.len()
            ),
        });
    }
    let field = |i: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&raw[i * 8..(i + 1) * 8]);
        i64::from_be_bytes(bytes)
    };
    let lease = field(3);
    Ok(KeyValue {
        key,
        value: Bytes::copy_from_slice(&raw[HEADER..]),
        create_revision: field(0),
        mod_revision: field(1),
        version: field(2),
        lease: (lease != 0).then_some(LeaseId(lease)),
    })
}

/// One batch for the writer thread, with the watch events to publish once it is written.
struct Job {
    batch: PersistBatch,
    publish: Option<Arc<WatchBatch>>,
    done: oneshot::Sender<Result<()>>,
}

/// Writes batches in the order they were submitted, on a thread of its own, then publishes
/// their watch events (so watchers see a revision only once it is on disk, and in order).
/// After a failed write it refuses everything, so no later revision lands without an earlier.
pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    failed: Arc<Mutex<Option<Error>>>,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

/// A submitted batch: resolves once it is written.
pub(super) struct Pending(oneshot::Receiver<Result<()>>);

impl Pending {
    /// Waits for the write.
    pub(super) async fn wait(self) -> Result<()> {
        self.0.await.unwrap_or_else(|_| Err(writer_stopped()))
    }
}

fn writer_stopped() -> Error {
    Error::Unavailable {
        operation: "persist",
        reason: "the metadata writer has stopped".to_owned(),
    }
}

impl Writer {
    /// Starts the writer thread.
    pub(super) fn start(
        backend: Arc<dyn Persistence>,
        events: broadcast::Sender<Arc<WatchBatch>>,
    ) -> Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let failed = Arc::new(Mutex::new(None));
        let flag = Arc::clone(&failed);
        let thread = std::thread::Builder::new()
            .name("strom-meta-writer".to_owned())
            .spawn(move || {
                for job in queue {
                    let earlier = flag.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    let result = match earlier {
                        Some(error) => Err(error),
                        None => backend.write(job.batch),
                    };
                    match &result {
                        Ok(()) => {
                            if let Some(batch) = job.publish {
                                // No receiver just means nobody watches.
                                let _ = events.send(batch);
                            }
                        }
                        Err(error) => {
                            *flag.lock().unwrap_or_else(|p| p.into_inner()) = Some(error.clone());
                        }
                    }
                    let _ = job.done.send(result);
                }
            })
            .map_err(|e| Error::Unavailable {
                operation: "persist",
                reason: format!("cannot start the metadata writer: {e}"),
            })?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
            failed,
        })
    }

    /// The error of a failed write, if one failed.
    pub(super) fn failure(&self) -> Option<Error> {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Queues `batch`; `publish` goes to watchers once it is written.
    pub(super) fn submit(&self, batch: PersistBatch, publish: Option<Arc<WatchBatch>>) -> Pending {
        let (done, wait) = oneshot::channel();
        let job = Job {
            batch,
            publish,
            done,
        };
        if let Some(jobs) = &self.jobs {
            // A send error drops the job and its `done`, which `Pending::wait` reports.
            let _ = jobs.send(job);
        }
        Pending(wait)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has written what was queued.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let kv = KeyValue {
            key: "/a".to_owned(),
            value: Bytes::from_static(b"value"),
            create_revision: 3,
            mod_revision: 9,
            version: 4,
            lease: Some(LeaseId(7)),
        };
        assert_eq!(decode("/a".to_owned(), &encode(&kv)).ok(), Some(kv));
        assert!(decode("/a".to_owned(), b"short").is_err());
    }

    #[test]
    fn a_revision_batch_loads_back() {
        let backend = MemoryPersistence::default();
        let kv = KeyValue {
            key: "/b".to_owned(),
            value: Bytes::from_static(b"1"),
            create_revision: 2,
            mod_revision: 2,
            version: 1,
            lease: None,
        };
        let put = WatchEvent {
            kind: EventKind::Put,
            kv,
        };
        backend
            .write(revision_batch(std::slice::from_ref(&put), 2, 5))
            .unwrap_or_else(|e| panic!("{e}"));
        let loaded = load(&backend).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((loaded.revision, loaded.next_lease), (2, 5));
        assert_eq!(loaded.kvs.get("/b"), Some(&put.kv));
    }
}
