//! The heartbeat task: joins the group, keeps the session alive, hands new assignments to the
//! polling side, rejoins after a loss and leaves the group when stopped.
//!
//! It runs independently of `poll`, so a consumer that processes slowly keeps its session;
//! only a revocation it does not complete within the rebalance timeout gets it fenced.

use std::sync::Arc;
use std::time::Duration;

use strom_proto::coordinator::v1 as pb;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::assignment::Assignment;
use super::backoff::Backoff;
use super::coordinator::CoordinatorLink;
use super::membership::Shared;
use super::{GroupConsumerConfig, Subscription};
use crate::{Error, Result};

/// The shortest pause between two heartbeats, whatever the coordinator asks for.
const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// The longest a leave may take; it is best effort.
const LEAVE_TIMEOUT: Duration = Duration::from_secs(5);
/// The member epoch that leaves the group.
const LEAVE_EPOCH: i32 = -1;
/// The member epoch that leaves while keeping a static member's assignment reserved.
const STATIC_LEAVE_EPOCH: i32 = -2;

/// One member's heartbeat loop.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    pub(crate) link: Arc<CoordinatorLink>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) member_id: String,
    pub(crate) config: Arc<GroupConsumerConfig>,
    pub(crate) subscription: Subscription,
    pub(crate) cancel: CancellationToken,
}

impl Heartbeat {
    /// Heartbeats until cancelled (then leaves the group) or until a non-retriable failure
    /// (which is handed to the polling side).
    pub(crate) async fn run(self) {
        let mut backoff = Backoff::new(self.config.retry_backoff, self.config.retry_backoff_max);
        let mut pause = Duration::ZERO;
        loop {
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                () = self.shared.wake_heartbeat.notified() => {}
                () = tokio::time::sleep(pause) => {}
            }
            let report = self.shared.report();
            let request = self.request(report.epoch, &report.owned);
            let answer = tokio::select! {
                biased;
                () = self.cancel.cancelled() => break,
                answer = self.link.heartbeat(request) => answer,
            };
            match self.handle(answer, &mut backoff) {
                Some(next) => pause = next,
                None => return,
            }
        }
        self.leave().await;
    }

    /// Takes in one heartbeat outcome; returns the pause before the next heartbeat, or
    /// `None` when the member must stop.
    fn handle(
        &self,
        answer: Result<pb::HeartbeatResponse>,
        backoff: &mut Backoff,
    ) -> Option<Duration> {
        let group_id = &self.config.group_id;
        match answer {
            Ok(response) => {
                backoff.reset();
                let target = response.assignment.as_ref().map(Assignment::from_proto);
                if let Some(target) = &target {
                    tracing::debug!(
                        group_id,
                        epoch = response.member_epoch,
                        partitions = target.partitions().count(),
                        "new target assignment"
                    );
                }
                self.shared.accepted(response.member_epoch, target);
                let interval = u64::try_from(response.heartbeat_interval_ms).unwrap_or(0);
                Some(Duration::from_millis(interval).max(MIN_INTERVAL))
            }
            Err(error) if error.is_fenced() => {
                tracing::warn!(group_id, %error, "member lost its partitions; rejoining");
                self.shared.lost();
                Some(backoff.next_pause())
            }
            Err(error) if error.is_retriable() => {
                tracing::debug!(group_id, %error, "heartbeat failed; retrying");
                Some(backoff.next_pause())
            }
            Err(error) => {
                tracing::error!(group_id, %error, "heartbeat rejected; the consumer stops");
                self.shared.fail(error);
                None
            }
        }
    }

    /// Leaves the group, retrying retriable failures for a short while.
    async fn leave(&self) {
        let epoch = if self.config.instance_id.is_some() {
            STATIC_LEAVE_EPOCH
        } else {
            LEAVE_EPOCH
        };
        let timeout = LEAVE_TIMEOUT.min(self.link.client().config().request_timeout);
        let deadline = Instant::now() + timeout;
        let mut backoff = Backoff::new(self.config.retry_backoff, self.config.retry_backoff_max);
        let group_id = &self.config.group_id;
        loop {
            let request = self.request(epoch, &Assignment::default());
            let answer = tokio::time::timeout_at(deadline, self.link.heartbeat(request)).await;
            let error = match answer {
                Ok(Ok(_)) => {
                    tracing::debug!(group_id, member_id = %self.member_id, "left the group");
                    return;
                }
                Ok(Err(error)) => error,
                Err(_) => Error::Timeout {
                    operation: "leaving the group",
                    after: timeout,
                },
            };
            let pause = backoff.next_pause();
            if !error.is_retriable() || Instant::now() + pause >= deadline {
                tracing::debug!(group_id, %error, "could not leave the group");
                return;
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// A heartbeat carrying the member's full state.
    fn request(&self, epoch: i32, owned: &Assignment) -> pb::HeartbeatRequest {
        let (names, regex) = match &self.subscription {
            Subscription::Topics(topics) => (topics.clone(), String::new()),
            Subscription::Regex(pattern) => (Vec::new(), pattern.clone()),
        };
        let config = &self.config;
        pb::HeartbeatRequest {
            group_id: config.group_id.clone(),
            member_id: self.member_id.clone(),
            member_epoch: epoch,
            instance_id: config.instance_id.clone().unwrap_or_default(),
            rack_id: config.rack.clone().unwrap_or_default(),
            rebalance_timeout_ms: config.rebalance_timeout_ms(),
            subscribed_topic_names: names,
            subscribed_topic_regex: regex,
            server_assignor: config.assignor.clone().unwrap_or_default(),
            topic_partitions: owned.to_proto(),
            session_timeout_ms: config.session_timeout_ms(),
        }
    }
}
