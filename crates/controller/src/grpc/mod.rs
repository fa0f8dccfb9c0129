//! The controller's gRPC services: AdminService and ControllerService. Handlers only route
//! requests to the active controller's queue; a standby answers NOT_CONTROLLER with a hint
//! naming the active controller.

mod admin;
mod controller;

use std::time::Duration;

use strom_meta::Election;
use strom_meta::records::{self, ControllerRecord};
use strom_proto::common::v1::{Error as PbError, ErrorCode, LeaderHint};
use tokio::sync::{oneshot, watch};

use crate::shell::{Command, Role};

/// Routes requests to the active controller of this process, if it is active.
#[derive(Debug, Clone)]
pub struct ControllerRouter {
    role: watch::Receiver<Role>,
    election: Election,
    timeout: Duration,
}

impl ControllerRouter {
    /// A router following `role`; requests wait at most `timeout` for an answer.
    pub fn new(role: watch::Receiver<Role>, election: Election, timeout: Duration) -> Self {
        Self {
            role,
            election,
            timeout,
        }
    }

    /// Sends a command to the active controller and waits for its answer.
    async fn call<R>(
        &self,
        command: impl FnOnce(oneshot::Sender<R>) -> Command,
    ) -> Result<R, PbError> {
        let commands = match &*self.role.borrow() {
            Role::Active { commands, .. } => commands.clone(),
            Role::Standby => return Err(self.not_controller_pending()),
        };
        let (reply, answer) = oneshot::channel();
        let timed_out = || {
            PbError::new(
                ErrorCode::RequestTimedOut,
                "the controller did not answer in time",
            )
        };
        tokio::time::timeout(self.timeout, commands.send(command(reply)))
            .await
            .map_err(|_| timed_out())?
            .map_err(|_| self.not_controller_pending())?;
        match tokio::time::timeout(self.timeout, answer).await {
            Ok(Ok(response)) => Ok(response),
            // The active controller stepped down before answering.
            Ok(Err(_)) => Err(self.not_controller_pending()),
            Err(_) => Err(timed_out()),
        }
    }

    /// NOT_CONTROLLER without a hint yet; [`ControllerRouter::with_hint`] adds it.
    fn not_controller_pending(&self) -> PbError {
        PbError::new(ErrorCode::NotController, "this controller is a standby")
    }

    /// Adds the active controller's id and address to a NOT_CONTROLLER error.
    async fn with_hint(&self, mut error: PbError) -> PbError {
        if error.code != ErrorCode::NotController as i32 {
            return error;
        }
        if let Ok(Some(holder)) = self.election.holder().await {
            if let Ok(record) = records::decode::<ControllerRecord>("controller", &holder.value) {
                error.message = format!(
                    "the active controller is {} at {}",
                    record.id, record.address
                );
                error.leader = Some(LeaderHint {
                    leader_id: record.id,
                    leader_epoch: None,
                    address: record.address,
                });
            }
        } else {
            error.message = "no controller is active; retry shortly".to_owned();
        }
        error
    }

    /// Runs a command; failures become the response's top-level error.
    async fn respond<R: Default>(
        &self,
        command: impl FnOnce(oneshot::Sender<R>) -> Command,
        set_error: impl FnOnce(&mut R, PbError),
    ) -> R {
        match self.call(command).await {
            Ok(response) => response,
            Err(error) => {
                let mut response = R::default();
                set_error(&mut response, self.with_hint(error).await);
                response
            }
        }
    }
}
