//! Group members as processes (`group-member`, a real `GroupConsumer`), so a test can kill -9,
//! SIGSTOP, SIGCONT and restart them, and read what each one owned and consumed from the
//! JSON events it prints.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::time::Instant;

use super::{binary, send_signal, wait_for};

/// One event line, with when the test read it.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: Instant,
    pub value: Value,
}

impl Event {
    pub fn kind(&self) -> &str {
        self.value["event"].as_str().unwrap_or_default()
    }

    fn partitions(&self) -> Vec<i32> {
        self.value["partitions"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|p| i32::try_from(p.as_i64()?).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A running `group-member` process.
pub struct MemberProc {
    pub name: String,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    events: Arc<Mutex<Vec<Event>>>,
}

impl MemberProc {
    /// Starts a member of `group` on the group test topic; `extra` are further flags
    /// (e.g. `--commit manual`).
    pub fn spawn(name: &str, broker: &str, group: &str, extra: &[&str]) -> Self {
        Self::spawn_on(name, broker, group, super::groups::GROUP_TOPIC, extra)
    }

    /// Starts a member of `group` on `topic`; `brokers` is a comma-separated list.
    pub fn spawn_on(name: &str, brokers: &str, group: &str, topic: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(binary("group-member"))
            .args(["--broker", brokers, "--group", group])
            .args(["--topic", topic])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let value: Value = serde_json::from_str(&line).unwrap();
                sink.lock().unwrap().push(Event {
                    at: Instant::now(),
                    value,
                });
            }
        });
        Self {
            name: name.to_owned(),
            stdin: child.stdin.take(),
            child: Some(child),
            events,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().and_then(Child::id).unwrap()
    }

    pub fn signal(&self, signal: &str) {
        send_signal(self.pid(), signal);
    }

    pub async fn kill9(&mut self) {
        self.stdin = None;
        super::kill9(&mut self.child).await;
    }

    /// Sends a command line (`commit`, `close`).
    pub async fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    /// Waits for the process to exit after `close`.
    pub async fn wait_exit(&mut self) {
        if let Some(mut child) = self.child.take() {
            let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
                .await
                .unwrap()
                .unwrap();
            assert!(status.success(), "{} exited with {status}", self.name);
        }
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Events of `kind` after `since`.
    pub fn events_since(&self, kind: &str, since: Instant) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|event| event.at >= since && event.kind() == kind)
            .collect()
    }

    /// The partitions owned after every event so far.
    pub fn owned(&self) -> BTreeSet<i32> {
        self.owned_until(None)
    }

    /// The partitions owned after the events read before `until` (all when `None`).
    pub fn owned_until(&self, until: Option<Instant>) -> BTreeSet<i32> {
        let mut owned = BTreeSet::new();
        for event in self.events() {
            if until.is_some_and(|until| event.at >= until) {
                break;
            }
            match event.kind() {
                "assigned" => owned.extend(event.partitions()),
                "revoked" | "lost" => {
                    for p in event.partitions() {
                        owned.remove(&p);
                    }
                }
                _ => {}
            }
        }
        owned
    }

    /// When `partition` was last assigned to this member, if it was.
    pub fn assigned_at(&self, partition: i32) -> Option<Instant> {
        self.events()
            .into_iter()
            .rev()
            .find(|event| event.kind() == "assigned" && event.partitions().contains(&partition))
            .map(|event| event.at)
    }

    /// Every offset returned by a poll, by partition, in the order returned.
    pub fn consumed(&self) -> BTreeMap<i32, Vec<i64>> {
        let mut consumed: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for event in self.events() {
            if event.kind() != "records" {
                continue;
            }
            let partition = i32::try_from(event.value["partition"].as_i64().unwrap()).unwrap();
            let offsets = event.value["offsets"].as_array().unwrap();
            consumed
                .entry(partition)
                .or_default()
                .extend(offsets.iter().map(|o| o.as_i64().unwrap()));
        }
        consumed
    }

    /// The offsets of `partition` returned after `since`, in order.
    pub fn consumed_since(&self, partition: i32, since: Instant) -> Vec<i64> {
        self.events_since("records", since)
            .into_iter()
            .filter(|event| event.value["partition"].as_i64() == Some(i64::from(partition)))
            .flat_map(|event| {
                event.value["offsets"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|o| o.as_i64().unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The highest offset returned for `partition`, if any.
    pub fn last_consumed(&self, partition: i32) -> Option<i64> {
        self.consumed()
            .get(&partition)
            .and_then(|offsets| offsets.iter().max().copied())
    }

    /// Waits until the member owns exactly `count` partitions, returning them.
    pub async fn wait_owned(&self, count: usize, limit: Duration) -> BTreeSet<i32> {
        let what = format!("{} to own {count} partitions", self.name);
        wait_for(limit, &what, || async {
            let owned = self.owned();
            (owned.len() == count).then_some(owned)
        })
        .await
    }

    /// Waits for an event of `kind` after `since`, returning the first.
    pub async fn wait_event(&self, kind: &str, since: Instant, limit: Duration) -> Event {
        let what = format!("a {kind} event from {}", self.name);
        wait_for(limit, &what, || async {
            self.events_since(kind, since).into_iter().next()
        })
        .await
    }

    /// Waits until the member has consumed `partition` up to `offset` (inclusive).
    pub async fn wait_consumed(&self, partition: i32, offset: i64, limit: Duration) {
        let what = format!("{} to consume {partition} up to {offset}", self.name);
        wait_for(limit, &what, || async {
            (self.last_consumed(partition) >= Some(offset)).then_some(())
        })
        .await;
    }
}

/// Checks that every offset below `end` of each of `partitions` partitions was consumed by at
/// least one of `members`.
pub fn assert_all_consumed(members: &[&MemberProc], partitions: i32, end: i64) {
    let mut seen: BTreeMap<i32, BTreeSet<i64>> = BTreeMap::new();
    for member in members {
        for (partition, offsets) in member.consumed() {
            seen.entry(partition).or_default().extend(offsets);
        }
    }
    for partition in 0..partitions {
        let seen = seen.remove(&partition).unwrap_or_default();
        let missing: Vec<i64> = (0..end).filter(|o| !seen.contains(o)).collect();
        assert!(
            missing.is_empty(),
            "partition {partition}: offsets {missing:?} were consumed by no member"
        );
    }
}
