//! The consumer-group consumer: partitions assigned by the group's coordinator, committed
//! offsets, and rebalances, following Kafka's consumer group protocol (KIP-848) with
//! server-side assignment.
//!
//! A [`GroupConsumer`] has two halves. A background heartbeat task ([`heartbeat`]) joins the
//! group, keeps the session alive whatever the caller does, and hands each new target
//! assignment over through [`membership`]. The polling side, driven by
//! [`GroupConsumer::poll`], applies targets ([`reconcile`]): it owns one fetch task per
//! partition ([`fetcher`]) and the consumed positions ([`positions`]) that commits send
//! ([`commit`]).

mod assignment;
mod backoff;
mod commit;
mod config;
pub(crate) mod coordinator;
mod fetcher;
mod heartbeat;
mod listener;
mod membership;
mod positions;
mod reconcile;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::assignment::Assignment;
pub use self::assignment::TopicPartition;
use self::commit::Attempts;
pub use self::config::{GroupConsumerConfig, OffsetReset, Subscription};
use self::coordinator::CoordinatorLink;
use self::fetcher::Fetcher;
use self::heartbeat::Heartbeat;
pub use self::listener::RebalanceListener;
use self::membership::Shared;
use self::positions::{AutoCommit, Positions};
use crate::{Client, ConsumerRecord, Result};

/// Reads the partitions a consumer group's coordinator assigns to it, like Kafka's
/// `KafkaConsumer` with `subscribe`.
///
/// [`new`](Self::new) starts a background task that joins the group and heartbeats; records
/// come from [`poll`](Self::poll), which also applies assignment changes, so partitions move
/// only between polls. Positions advance as records are returned. With auto-commit (the
/// default) the positions of records returned by earlier polls are committed every
/// `auto_commit_interval`, when partitions are revoked and on [`close`](Self::close); without
/// it, use [`commit`](Self::commit) or [`commit_offsets`](Self::commit_offsets).
///
/// Call `close` to commit and leave the group at once. Dropping the consumer stops fetching
/// and leaves the group in the background, without committing.
pub struct GroupConsumer {
    client: Client,
    config: Arc<GroupConsumerConfig>,
    member_id: String,
    link: Arc<CoordinatorLink>,
    shared: Arc<Shared>,
    fetcher: Fetcher,
    positions: Positions,
    /// The partitions this side owns (fetch tasks running), with their topic ids.
    owned: Assignment,
    /// The membership generation `owned` belongs to.
    generation: u64,
    /// The member epoch the coordinator sent `owned` with; 0 while nothing was assigned.
    assignment_epoch: i32,
    /// Partitions lost (fenced or expired) with consumed positions never committed; the
    /// next explicit commit reports them, since their new owners read those records again.
    lost_uncommitted: BTreeSet<TopicPartition>,
    /// Behind a mutex only so the consumer is `Sync`; reached through `&mut self`.
    listener: Mutex<Option<Box<dyn RebalanceListener>>>,
    auto_commit: AutoCommit,
    cancel: CancellationToken,
    heartbeat: Option<JoinHandle<()>>,
}

impl GroupConsumer {
    /// A member of `config.group_id` reading `subscription`.
    ///
    /// Returns at once with a consumer that owns no partition yet: the member joins in the
    /// background and its first partitions arrive through `poll`. Fails only on an invalid
    /// `config` or `subscription`; errors of the join itself (e.g. an invalid group id or an
    /// unknown assignor) come from `poll`.
    pub async fn new(
        client: Client,
        config: GroupConsumerConfig,
        subscription: Subscription,
    ) -> Result<GroupConsumer> {
        config.validate()?;
        subscription.validate()?;
        let config = Arc::new(config);
        let member_id = format!("{:032x}", rand::random::<u128>());
        let link = Arc::new(CoordinatorLink::new(
            client.clone(),
            config.group_id.clone(),
        ));
        let shared = Arc::new(Shared::default());
        let cancel = CancellationToken::new();
        let heartbeat = Heartbeat {
            link: Arc::clone(&link),
            shared: Arc::clone(&shared),
            member_id: member_id.clone(),
            config: Arc::clone(&config),
            subscription,
            cancel: cancel.clone(),
        };
        let heartbeat = tokio::spawn(heartbeat.run());
        tracing::debug!(group_id = %config.group_id, %member_id, "joining the group");
        Ok(GroupConsumer {
            fetcher: Fetcher::new(client.clone(), &config, cancel.child_token()),
            auto_commit: AutoCommit::new(config.auto_commit_interval, Instant::now()),
            client,
            config,
            member_id,
            link,
            shared,
            positions: Positions::default(),
            owned: Assignment::default(),
            generation: 0,
            assignment_epoch: 0,
            lost_uncommitted: BTreeSet::new(),
            listener: Mutex::new(None),
            cancel,
            heartbeat: Some(heartbeat),
        })
    }

    /// The next records of the owned partitions, waiting up to `poll_timeout` when none are
    /// buffered; see [`poll_timeout`](Self::poll_timeout).
    pub async fn poll(&mut self) -> Result<Vec<ConsumerRecord>> {
        self.poll_timeout(self.config.poll_timeout).await
    }

    /// The next records (at most `max_poll_records`) of the owned partitions, waiting up to
    /// `timeout` when none are buffered; an empty result means none arrived in time.
    ///
    /// First commits, when auto-commit is due, the positions of the records returned by
    /// earlier polls; then applies assignment changes, calling the listener. Records of one
    /// partition come in offset order. Fails with the error that stopped the member (e.g.
    /// `INVALID_GROUP_ID`), with a fetch error that retries cannot cure, or when committed
    /// offsets of new partitions cannot be read (the next poll tries again).
    pub async fn poll_timeout(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let deadline = Instant::now() + timeout;
        self.check_fatal()?;
        self.maybe_auto_commit().await;
        loop {
            self.reconcile().await?;
            let records = self
                .fetcher
                .take(self.config.max_poll_records, &mut self.positions)?;
            if !records.is_empty() {
                return Ok(records);
            }
            let shared = Arc::clone(&self.shared);
            let more = tokio::select! {
                biased;
                () = shared.wake_poll.notified() => true,
                received = self.fetcher.wait(deadline) => received,
            };
            self.check_fatal()?;
            if !more && !self.fetcher.has_buffered() {
                return Ok(Vec::new());
            }
        }
    }

    /// Commits the positions of every record returned by `poll` so far (only those not
    /// committed yet), retrying retriable failures up to the request timeout.
    ///
    /// Fails with `FENCED_MEMBER_EPOCH` or `UNKNOWN_MEMBER_ID` when the member lost its
    /// partitions (it rejoins by itself) — also when the loss happened since the last commit
    /// and records returned from the lost partitions were never committed: their new owners
    /// read them again. Fails with [`Error::Commit`](crate::Error::Commit) when the
    /// coordinator refused a partition's offset.
    pub async fn commit(&mut self) -> Result<()> {
        self.check_fatal()?;
        self.drop_lost();
        let offsets = self.positions.uncommitted(|_| true);
        let outcome = self.commit_positions(offsets, Attempts::UntilTimeout).await;
        let lost = std::mem::take(&mut self.lost_uncommitted);
        if outcome.is_ok() && !lost.is_empty() {
            let names: Vec<String> = lost.iter().map(ToString::to_string).collect();
            return Err(crate::Error::coordinator(
                crate::ErrorCode::FencedMemberEpoch,
                format!(
                    "the member was fenced before it committed what it read from {}; \
                     their new owners read those records again",
                    names.join(", ")
                ),
            ));
        }
        outcome
    }

    /// Commits explicit positions (the offset of the next record to read) as [`commit`]
    /// does; partitions the member does not own may be committed too.
    ///
    /// [`commit`]: Self::commit
    pub async fn commit_offsets<I>(&mut self, offsets: I) -> Result<()>
    where
        I: IntoIterator<Item = (TopicPartition, i64)>,
    {
        self.check_fatal()?;
        let offsets = offsets.into_iter().collect();
        self.commit_positions(offsets, Attempts::UntilTimeout).await
    }

    /// The partitions the consumer reads now, in topic and partition order.
    #[must_use]
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.owned.partitions().cloned().collect()
    }

    /// The position of an owned partition: the offset after the last record returned, or
    /// where reading starts. `None` for a partition not owned or not positioned yet.
    #[must_use]
    pub fn position(&self, partition: &TopicPartition) -> Option<i64> {
        self.positions.consumed(partition)
    }

    /// The member id, generated once and kept across rejoins.
    #[must_use]
    pub fn member_id(&self) -> &str {
        &self.member_id
    }

    /// The member epoch: 0 until the member has joined (and while it rejoins).
    #[must_use]
    pub fn member_epoch(&self) -> i32 {
        self.shared.epoch()
    }

    /// The member epoch the current assignment came with: the coordinator hands a partition
    /// to one member per epoch, so this is what to compare ownership by. It can be older than
    /// [`member_epoch`](Self::member_epoch) while a newer target waits for the next `poll`;
    /// 0 before the first assignment and after the partitions were lost.
    #[must_use]
    pub fn assignment_epoch(&self) -> i32 {
        self.assignment_epoch
    }

    /// The consumer's configuration.
    #[must_use]
    pub fn config(&self) -> &GroupConsumerConfig {
        &self.config
    }

    /// Calls `listener` on every later change of the owned partitions, replacing any
    /// listener set before.
    pub fn set_listener(&mut self, listener: impl RebalanceListener + 'static) {
        *self
            .listener
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Box::new(listener));
    }

    /// Leaves the group: commits the positions of returned records (with auto-commit), tells
    /// the listener the partitions are revoked, stops fetching and heartbeating, and sends
    /// the leave (epoch -1, or -2 for a static member, whose partitions stay reserved until
    /// its session times out).
    ///
    /// The member leaves even when the commit fails; the commit's failure is returned.
    pub async fn close(mut self) -> Result<()> {
        let mut outcome = Ok(());
        if self.shared.fatal().is_none() {
            self.drop_lost();
            if self.config.auto_commit {
                let offsets = self.positions.uncommitted(|_| true);
                outcome = self.commit_positions(offsets, Attempts::UntilTimeout).await;
            }
            let owned = self.assignment();
            self.revoke(&owned, false).await;
        }
        self.fetcher.shutdown().await;
        self.cancel.cancel();
        if let Some(heartbeat) = self.heartbeat.take()
            && let Err(error) = heartbeat.await
        {
            tracing::warn!(%error, "the heartbeat task failed");
        }
        outcome
    }

    /// Returns the error that stopped the member, if one did.
    fn check_fatal(&self) -> Result<()> {
        self.shared.fatal().map_or(Ok(()), Err)
    }

    /// Commits the positions of records returned by earlier polls if the interval passed.
    /// Failures are logged; the next interval tries again.
    async fn maybe_auto_commit(&mut self) {
        let now = Instant::now();
        if !self.config.auto_commit || !self.auto_commit.is_due(now) {
            return;
        }
        self.auto_commit.schedule(now);
        self.drop_lost();
        let lost = std::mem::take(&mut self.lost_uncommitted);
        if !lost.is_empty() {
            tracing::warn!(group_id = %self.config.group_id, partitions = lost.len(),
                "partitions were lost before their positions were committed");
        }
        let offsets = self.positions.uncommitted(|_| true);
        if let Err(error) = self.commit_positions(offsets, Attempts::Once).await {
            tracing::warn!(group_id = %self.config.group_id, %error, "auto-commit failed");
        }
    }
}

impl fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group_id", &self.config.group_id)
            .field("member_id", &self.member_id)
            .field("member_epoch", &self.shared.epoch())
            .field("assignment", &self.assignment())
            .finish_non_exhaustive()
    }
}

impl Drop for GroupConsumer {
    /// Stops the fetch tasks; the heartbeat task sends a best-effort leave (bounded to a few
    /// seconds) and ends.
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
