//! Waiting for activity on any of several replicas, for long polls.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Waits until one of `receivers` sees activity or `deadline` passes.
pub(crate) async fn any_activity(receivers: &mut [watch::Receiver<u64>], deadline: Instant) {
    if receivers.is_empty() {
        tokio::time::sleep_until(deadline).await;
        return;
    }
    let changes = receivers
        .iter_mut()
        .map(|rx| Box::pin(async move { rx.changed().await }));
    let _ = tokio::time::timeout_at(deadline, futures::future::select_all(changes)).await;
}

/// A long-poll deadline: `wait_ms` from now, capped.
pub(crate) fn deadline(wait_ms: i32, cap: Duration) -> Instant {
    Instant::now() + Duration::from_millis(u64::try_from(wait_ms).unwrap_or(0)).min(cap)
}
