//! Heartbeats and LeaveGroup: apply them to the group, persist any change under the owner
//! fence, and only then answer.

use tokio::time::Instant;
use tracing::info;

use super::Coordinator;
use crate::group::{HeartbeatInput, HeartbeatOutput, validate_heartbeat};
use crate::{Error, Result};

impl Coordinator {
    /// Handles a member's heartbeat for `group`.
    ///
    /// A heartbeat refused for its own content claims nothing; one refused by a group that
    /// was never stored gives the claim on it back, so no phantom group is listed.
    pub async fn heartbeat(&self, group: &str, input: HeartbeatInput) -> Result<HeartbeatOutput> {
        validate_heartbeat(&input, &self.inner.settings.limits)?;
        let slot = self.slot(group, true).await?;
        let mut runtime = slot.runtime.lock().await;
        let view = self.topics();
        let mut next = runtime.group.clone();
        let member_id = input.member_id.clone();
        let joining = input.member_epoch == 0;
        let output = match next.heartbeat(input, &view, &self.inner.settings.limits) {
            Ok(output) => output,
            Err(error) => {
                if !runtime.stored && runtime.offsets.is_empty() {
                    self.release_unused(&slot).await;
                }
                return Err(error);
            }
        };
        if output.changed || !runtime.stored {
            self.persist(&slot, &next).await?;
            runtime.stored = true;
        }
        if joining {
            info!(group, member = %member_id, epoch = output.member_epoch, "member joined");
        }
        if let Some(replaced) = &output.replaced {
            info!(group, member = %member_id, replaced = %replaced, "static member rejoined");
        }
        let epoch_moved = next.epoch != runtime.group.epoch;
        runtime.group = next;
        let now = Instant::now();
        runtime.track(now);
        runtime.touch(&member_id, now);
        if epoch_moved {
            self.inner.metrics.rebalanced(group);
            info!(
                group,
                epoch = runtime.group.epoch,
                "group epoch moved; new target assignment"
            );
        }
        Ok(output)
    }

    /// Removes a member by id or by static instance id (an admin action, or a consumer that
    /// leaves without a final heartbeat).
    pub async fn leave_group(
        &self,
        group: &str,
        member_id: &str,
        instance_id: &str,
        reason: &str,
    ) -> Result<()> {
        let slot = self.slot(group, false).await?;
        let mut runtime = slot.runtime.lock().await;
        let found = runtime
            .group
            .members
            .values()
            .find(|m| {
                (!member_id.is_empty() && m.id == member_id)
                    || (!instance_id.is_empty() && m.instance_id.as_deref() == Some(instance_id))
            })
            .map(|m| m.id.clone());
        let Some(found) = found else {
            return Err(Error::UnknownMember {
                member: if member_id.is_empty() {
                    instance_id.to_owned()
                } else {
                    member_id.to_owned()
                },
            });
        };
        let view = self.topics();
        let mut next = runtime.group.clone();
        next.remove_member(&found);
        next.refresh(&view, &self.inner.settings.limits);
        self.persist(&slot, &next).await?;
        if next.epoch != runtime.group.epoch {
            self.inner.metrics.rebalanced(group);
        }
        runtime.group = next;
        runtime.track(Instant::now());
        info!(group, member = %found, reason, "member removed by LeaveGroup");
        Ok(())
    }
}
