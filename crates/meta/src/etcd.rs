//! [`EtcdStore`]: the [`MetaStore`] backed by a real etcd cluster (v3 API).

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client as etcd;

use crate::store::{
    Check, Compare, EventKind, KeyValue, LeaseGrant, LeaseId, Listing, MetaStore, Op, Txn,
    TxnOutcome, WatchBatch, WatchEvent, WatchStream,
};
use crate::{Error, Result};

/// How to reach etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdOptions {
    /// Client URLs, e.g. `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// How long to wait for a connection.
    pub connect_timeout: Duration,
    /// How long to wait for any single request; keeps a stalled etcd from stalling callers.
    pub request_timeout: Duration,
}

impl EtcdOptions {
    /// Defaults for the given endpoints: 3 s to connect, 5 s per request.
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// A [`MetaStore`] over etcd. Cheap to clone; clones share connections.
#[derive(Clone)]
pub struct EtcdStore {
    client: etcd::Client,
    endpoints: Vec<String>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl EtcdStore {
    /// Connects to etcd. Connections are re-established by the client as needed afterwards, so
    /// an etcd restart shows up as [`Error::Unavailable`] on calls made while it is down.
    pub async fn connect(options: &EtcdOptions) -> Result<Self> {
        let connect = etcd::ConnectOptions::new()
            .with_connect_timeout(options.connect_timeout)
            .with_timeout(options.request_timeout)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3));
        let client = etcd::Client::connect(&options.endpoints, Some(connect))
            .await
            .map_err(|e| unavailable("connect", &e))?;
        Ok(Self {
            client,
            endpoints: options.endpoints.clone(),
        })
    }
}

fn unavailable(operation: &'static str, error: &etcd::Error) -> Error {
    Error::Unavailable {
        operation,
        reason: error.to_string(),
    }
}

/// Maps client errors: etcd's own verdicts become typed errors, the rest are outages.
fn map_error(operation: &'static str, error: &etcd::Error, lease: Option<LeaseId>) -> Error {
    // etcd says "requested lease not found" as a gRPC status on writes and as a keep-alive
    // stream error on refreshes.
    if error.to_string().contains("lease not found") {
        return Error::LeaseExpired {
            lease: lease.map_or(0, |l| l.0),
        };
    }
    if let etcd::Error::GRpcStatus(status) = error {
        let message = status.message();
        if message.contains("required revision has been compacted") {
            return Error::Compacted {
                requested: 0,
                compacted: 0,
            };
        }
        if matches!(
            status.code(),
            tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition
        ) {
            return Error::Rejected {
                reason: message.to_owned(),
            };
        }
    }
    unavailable(operation, error)
}

fn key_value(kv: &etcd::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
        lease: (kv.lease() != 0).then_some(LeaseId(kv.lease())),
    }
}

fn compare(compare: Compare) -> etcd::Compare {
    use etcd::CompareOp::Equal;
    match compare.check {
        Check::Absent => etcd::Compare::version(compare.key, Equal, 0),
        Check::CreateRevision(rev) => etcd::Compare::create_revision(compare.key, Equal, rev),
        Check::ModRevision(rev) => etcd::Compare::mod_revision(compare.key, Equal, rev),
        Check::Value(value) => etcd::Compare::value(compare.key, Equal, value.to_vec()),
    }
}

fn op(op: Op) -> etcd::TxnOp {
    match op {
        Op::Put { key, value, lease } => {
            let options = lease.map(|l| etcd::PutOptions::new().with_lease(l.0));
            etcd::TxnOp::put(key, value.to_vec(), options)
        }
        Op::Delete { key } => etcd::TxnOp::delete(key, None),
        Op::DeletePrefix { prefix } => {
            etcd::TxnOp::delete(prefix, Some(etcd::DeleteOptions::new().with_prefix()))
        }
    }
}

fn revision_of(header: Option<&etcd::ResponseHeader>) -> i64 {
    header.map_or(0, etcd::ResponseHeader::revision)
}

#[async_trait]
impl MetaStore for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let response = self
            .client
            .clone()
            .get(key, None)
            .await
            .map_err(|e| map_error("get", &e, None))?;
        Ok(response.kvs().first().map(key_value))
    }

    async fn list(&self, prefix: &str) -> Result<Listing> {
        let options = etcd::GetOptions::new().with_prefix();
        let response = self
            .client
            .clone()
            .get(prefix, Some(options))
            .await
            .map_err(|e| map_error("list", &e, None))?;
        Ok(Listing {
            revision: revision_of(response.header()),
            kvs: response.kvs().iter().map(key_value).collect(),
        })
    }

    async fn txn(&self, txn: Txn) -> Result<TxnOutcome> {
        let lease = txn.ops.iter().find_map(|op| match op {
            Op::Put { lease, .. } => *lease,
            _ => None,
        });
        let request = etcd::Txn::new()
            .when(txn.compares.into_iter().map(compare).collect::<Vec<_>>())
            .and_then(txn.ops.into_iter().map(op).collect::<Vec<_>>());
        let response = self
            .client
            .clone()
            .txn(request)
            .await
            .map_err(|e| map_error("txn", &e, lease))?;
        Ok(TxnOutcome {
            succeeded: response.succeeded(),
            revision: revision_of(response.header()),
        })
    }

    async fn grant_lease(&self, ttl: Duration) -> Result<LeaseGrant> {
        if ttl.is_zero() {
            return Err(Error::InvalidTtl {
                ttl,
                reason: "must be positive",
            });
        }
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let secs = i64::try_from(secs).map_err(|_| Error::InvalidTtl {
            ttl,
            reason: "too long",
        })?;
        let response = self
            .client
            .clone()
            .lease_grant(secs, None)
            .await
            .map_err(|e| map_error("lease grant", &e, None))?;
        let granted = Duration::from_secs(u64::try_from(response.ttl()).unwrap_or(0));
        Ok(LeaseGrant {
            id: LeaseId(response.id()),
            ttl: granted,
        })
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<Duration> {
        let mut client = self.client.clone();
        let (mut keeper, mut stream) = client
            .lease_keep_alive(lease.0)
            .await
            .map_err(|e| map_error("keep-alive", &e, Some(lease)))?;
        keeper
            .keep_alive()
            .await
            .map_err(|e| map_error("keep-alive", &e, Some(lease)))?;
        match stream
            .message()
            .await
            .map_err(|e| map_error("keep-alive", &e, Some(lease)))?
        {
            Some(response) if response.ttl() > 0 => Ok(Duration::from_secs(
                u64::try_from(response.ttl()).unwrap_or(0),
            )),
            Some(_) => Err(Error::LeaseExpired { lease: lease.0 }),
            None => Err(Error::Unavailable {
                operation: "keep-alive",
                reason: "stream closed".to_owned(),
            }),
        }
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        match self.client.clone().lease_revoke(lease.0).await {
            Ok(_) => Ok(()),
            Err(e) => match map_error("lease revoke", &e, Some(lease)) {
                Error::LeaseExpired { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn watch(&self, prefix: &str, start_revision: i64) -> Result<WatchStream> {
        let mut options = etcd::WatchOptions::new().with_prefix();
        if start_revision > 0 {
            options = options.with_start_revision(start_revision);
        }
        let stream = self
            .client
            .clone()
            .watch(prefix, Some(options))
            .await
            .map_err(|e| map_error("watch", &e, None))?;
        let prefix = prefix.to_owned();
        let batches = futures::stream::unfold(Some(stream), move |stream| {
            let prefix = prefix.clone();
            async move {
                let mut stream = stream?;
                loop {
                    let response = match stream.message().await {
                        Ok(Some(response)) => response,
                        Ok(None) => return Some((Err(Error::WatchCancelled { prefix }), None)),
                        Err(e) => return Some((Err(map_error("watch", &e, None)), None)),
                    };
                    if response.compact_revision() > 0 {
                        let err = Error::Compacted {
                            requested: start_revision,
                            compacted: response.compact_revision(),
                        };
                        return Some((Err(err), None));
                    }
                    if response.canceled() {
                        return Some((Err(Error::WatchCancelled { prefix }), None));
                    }
                    if response.events().is_empty() {
                        continue;
                    }
                    let events = response
                        .events()
                        .iter()
                        .filter_map(|event| {
                            let kind = match event.event_type() {
                                etcd::EventType::Put => EventKind::Put,
                                etcd::EventType::Delete => EventKind::Delete,
                            };
                            event.kv().map(|kv| WatchEvent {
                                kind,
                                kv: key_value(kv),
                            })
                        })
                        .collect();
                    let batch = WatchBatch {
                        revision: revision_of(response.header()),
                        events,
                    };
                    return Some((Ok(batch), Some(stream)));
                }
            }
        });
        Ok(WatchStream::new(batches))
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        self.client
            .clone()
            .compact(
                revision,
                Some(etcd::CompactionOptions::new().with_physical()),
            )
            .await
            .map_err(|e| map_error("compact", &e, None))?;
        Ok(())
    }
}
