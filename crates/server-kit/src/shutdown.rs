//! Signals → [`CancellationToken`], and a bounded drain of tracked tasks.
//!
//! ```no_run
//! # async fn run() -> strom_server_kit::Result<()> {
//! use std::time::Duration;
//! use tokio_util::task::TaskTracker;
//!
//! let tracker = TaskTracker::new();
//! let shutdown = strom_server_kit::shutdown_token(&tracker)?;
//! // ... spawn every task on `tracker`, each watching `shutdown.cancelled()` ...
//! shutdown.cancelled().await;
//! let clean = strom_server_kit::drain(&tracker, Duration::from_secs(30)).await;
//! # let _ = clean;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::error::{Error, Result};

/// Creates a token that is cancelled on SIGTERM or SIGINT (ctrl-c).
///
/// See [`cancel_on_signal`] for the task this spawns.
pub fn shutdown_token(tracker: &TaskTracker) -> Result<CancellationToken> {
    let token = CancellationToken::new();
    cancel_on_signal(token.clone(), tracker)?;
    Ok(token)
}

/// Spawns, on `tracker`, a task that cancels `token` when SIGTERM or SIGINT arrives, logging
/// which one. The task also ends when `token` is cancelled by anyone else, so it never holds
/// up [`drain`].
///
/// The handlers are installed before this returns, so a signal sent afterwards is never lost.
/// Must be called from within a tokio runtime ([`Error::NoRuntime`] otherwise). Once
/// installed, tokio keeps handling these signals for the life of the process: a second
/// SIGTERM no longer kills it, so the caller's drain deadline is what bounds shutdown.
pub fn cancel_on_signal(token: CancellationToken, tracker: &TaskTracker) -> Result<()> {
    let handle = Handle::try_current().map_err(|_| Error::NoRuntime {
        what: "cancel_on_signal",
    })?;
    // Registration needs the runtime's signal driver; entering makes that explicit.
    let _guard = handle.enter();
    let signals = Signals::install()?;
    tracker.spawn_on(
        async move {
            tokio::select! {
                name = signals.recv() => {
                    info!(signal = name, "shutdown signal received, cancelling");
                    token.cancel();
                }
                () = token.cancelled() => {}
            }
        },
        &handle,
    );
    Ok(())
}

/// Closes `tracker` and waits up to `deadline` for its tasks to finish.
///
/// Returns `true` if every task finished, `false` if the deadline passed first (the
/// remaining tasks keep running; the caller decides whether to abort or exit).
pub async fn drain(tracker: &TaskTracker, deadline: Duration) -> bool {
    tracker.close();
    if tokio::time::timeout(deadline, tracker.wait()).await.is_ok() {
        info!("all tasks drained");
        true
    } else {
        warn!(
            remaining = tracker.len(),
            deadline_ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
            "drain deadline passed with tasks still running"
        );
        false
    }
}

/// The installed signal streams.
#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).map_err(|source| Error::Signal {
            signal: "SIGTERM",
            source,
        })?;
        let int = signal(SignalKind::interrupt()).map_err(|source| Error::Signal {
            signal: "SIGINT",
            source,
        })?;
        Ok(Self { term, int })
    }

    /// Waits for the first signal and returns its name.
    async fn recv(mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// The installed signal streams (ctrl-c only off Unix).
#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Result<Self> {
        Ok(Self)
    }

    /// Waits for ctrl-c and returns its name.
    async fn recv(self) -> &'static str {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "ctrl-c",
            // No handler could be installed: never fire rather than cancel spuriously.
            Err(_) => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_a_runtime_is_an_error() {
        let err = shutdown_token(&TaskTracker::new()).unwrap_err();
        assert!(matches!(err, Error::NoRuntime { .. }), "{err:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_tasks_within_deadline() {
        let tracker = TaskTracker::new();
        let token = CancellationToken::new();
        for i in 1..=3u64 {
            let token = token.clone();
            tracker.spawn(async move {
                token.cancelled().await;
                tokio::time::sleep(Duration::from_secs(i)).await;
            });
        }
        token.cancel();
        assert!(drain(&tracker, Duration::from_secs(10)).await);
        assert!(tracker.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn drain_gives_up_at_deadline() {
        let tracker = TaskTracker::new();
        tracker.spawn(std::future::pending::<()>());
        let start = tokio::time::Instant::now();
        assert!(!drain(&tracker, Duration::from_secs(5)).await);
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        assert_eq!(tracker.len(), 1);
        assert!(tracker.is_closed());
    }

    #[tokio::test(start_paused = true)]
    async fn signal_task_ends_when_token_cancelled_elsewhere() {
        let tracker = TaskTracker::new();
        let token = shutdown_token(&tracker).unwrap();
        assert_eq!(tracker.len(), 1);
        token.cancel();
        assert!(drain(&tracker, Duration::from_secs(1)).await);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn sigterm_cancels_the_token() {
        let tracker = TaskTracker::new();
        let token = shutdown_token(&tracker).unwrap();
        // The handler is installed by now, so this does not kill the test process.
        let status = tokio::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(10), token.cancelled())
            .await
            .unwrap();
        assert!(drain(&tracker, Duration::from_secs(10)).await);
    }
}
