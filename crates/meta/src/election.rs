//! [`Election`]: one holder at a time of a key; the key's create revision is the holder's epoch.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::store::{Compare, EventKind, LeaseId, MetaStore, Op, Txn};
use crate::{Error, Result};

/// The pause before retrying after the store failed.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Campaigns for, and observes, one election key.
///
/// The winner creates the key attached to its lease; the key's create revision is the winner's
/// **epoch**, which only grows from one holder to the next. Every write the holder makes carries
/// [`Leadership::fence`], so once its lease lapses or a successor exists, its writes fail.
#[derive(Debug, Clone)]
pub struct Election {
    store: Arc<dyn MetaStore>,
    key: String,
}

/// Proof of holding an election key at one epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    key: String,
    epoch: i64,
    lease: LeaseId,
}

/// The current holder of an election key, as read from the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The value the holder stored (e.g. its id and address).
    pub value: Bytes,
    /// The holder's epoch.
    pub epoch: i64,
}

impl Leadership {
    /// The epoch: the revision at which the key was created.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// The lease the key is attached to.
    pub fn lease(&self) -> LeaseId {
        self.lease
    }

    /// The condition every write of the holder must carry.
    pub fn fence(&self) -> Compare {
        Compare::create_revision(self.key.clone(), self.epoch)
    }

    /// The error a write reports when its fence failed.
    pub fn lost_error(&self) -> Error {
        Error::NotHolder {
            key: self.key.clone(),
            epoch: self.epoch,
        }
    }
}

impl Election {
    /// An election on `key`.
    pub fn new(store: Arc<dyn MetaStore>, key: impl Into<String>) -> Self {
        Self {
            store,
            key: key.into(),
        }
    }

    /// The current holder, if any.
    pub async fn holder(&self) -> Result<Option<Holder>> {
        let kv = self.store.get(&self.key).await?;
        Ok(kv.map(|kv| Holder {
            value: kv.value,
            epoch: kv.create_revision,
        }))
    }

    /// Whether `leadership` is still current in the store.
    pub async fn is_current(&self, leadership: &Leadership) -> Result<bool> {
        let holder = self.holder().await?;
        Ok(holder.is_some_and(|h| h.epoch == leadership.epoch))
    }

    /// Waits until this candidate holds the key, storing `value` under `lease`.
    ///
    /// Store outages are retried. Fails with [`Error::LeaseExpired`] when the lease is gone and
    /// [`Error::Cancelled`] when `cancel` fires.
    pub async fn campaign(
        &self,
        value: Bytes,
        lease: LeaseId,
        cancel: &CancellationToken,
    ) -> Result<Leadership> {
        loop {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            match self.try_acquire(&value, lease).await {
                Ok(Some(leadership)) => {
                    info!(key = %self.key, epoch = leadership.epoch, "won election");
                    return Ok(leadership);
                }
                Ok(None) => {}
                Err(error @ Error::LeaseExpired { .. }) => return Err(error),
                Err(error) => {
                    warn!(key = %self.key, %error, "campaign step failed; retrying");
                    pause(cancel).await?;
                    continue;
                }
            }
            if let Err(error) = self.wait_for_vacancy(cancel).await {
                if matches!(error, Error::Cancelled) {
                    return Err(error);
                }
                debug!(key = %self.key, %error, "watch on the election key ended; re-checking");
                pause(cancel).await?;
            }
        }
    }

    /// Gives the key up if `leadership` still holds it, so a successor need not wait for the
    /// lease to expire.
    pub async fn resign(&self, leadership: &Leadership) -> Result<()> {
        let txn = Txn::new()
            .when([leadership.fence()])
            .then([Op::delete(self.key.clone())]);
        self.store.txn(txn).await?;
        Ok(())
    }

    /// Creates the key if it is free; returns the leadership if it is (now) ours.
    async fn try_acquire(&self, value: &Bytes, lease: LeaseId) -> Result<Option<Leadership>> {
        let txn = Txn::new()
            .when([Compare::absent(self.key.clone())])
            .then([Op::put_with_lease(self.key.clone(), value.clone(), lease)]);
        let outcome = self.store.txn(txn).await?;
        if outcome.succeeded {
            return Ok(Some(Leadership {
                key: self.key.clone(),
                epoch: outcome.revision,
                lease,
            }));
        }
        // A retried create whose first attempt applied but whose answer was lost shows up as
        // a key under our own lease: it is ours.
        match self.store.get(&self.key).await? {
            Some(kv) if kv.lease == Some(lease) => Ok(Some(Leadership {
                key: self.key.clone(),
                epoch: kv.create_revision,
                lease,
            })),
            _ => Ok(None),
        }
    }

    /// Returns once the key is (probably) free: deleted, or absent when checked.
    async fn wait_for_vacancy(&self, cancel: &CancellationToken) -> Result<()> {
        let Some(current) = self.store.get(&self.key).await? else {
            return Ok(());
        };
        let mut watch = self
            .store
            .watch(&self.key, current.mod_revision + 1)
            .await?;
        loop {
            let batch = tokio::select! {
                () = cancel.cancelled() => return Err(Error::Cancelled),
                batch = watch.next() => batch,
            };
            let batch = batch.ok_or_else(|| Error::WatchCancelled {
                prefix: self.key.clone(),
            })??;
            let vacated = batch
                .events
                .iter()
                .any(|e| e.kind == EventKind::Delete && e.kv.key == self.key);
            if vacated {
                return Ok(());
            }
        }
    }
}

async fn pause(cancel: &CancellationToken) -> Result<()> {
    tokio::select! {
        () = cancel.cancelled() => Err(Error::Cancelled),
        () = tokio::time::sleep(RETRY_PAUSE) => Ok(()),
    }
}
