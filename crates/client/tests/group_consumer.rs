//! The group consumer against a fake single-process cluster (see `mock`): joining, reading,
//! committing, revocation, fencing, fatal errors and leaving.

#![allow(clippy::unwrap_used)]

mod mock;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mock::{Event, Mock, TOPIC, TOPIC_ID};
use strom_client::{
    Client, ClientConfig, ConsumerConfig, ConsumerRecord, ErrorCode, GroupConsumer,
    GroupConsumerConfig, OffsetReset, RebalanceListener, Subscription, TopicPartition,
};
use tokio::time::Instant;

fn config() -> GroupConsumerConfig {
    GroupConsumerConfig {
        reset: OffsetReset::Earliest,
        auto_commit: false,
        poll_timeout: Duration::from_millis(100),
        fetch: ConsumerConfig {
            fetch_max_wait: Duration::from_millis(50),
            ..ConsumerConfig::default()
        },
        ..GroupConsumerConfig::new("g")
    }
}

async fn join(mock: &Mock, config: GroupConsumerConfig) -> GroupConsumer {
    let client = Client::connect(ClientConfig::new([mock.address.clone()]))
        .await
        .unwrap();
    GroupConsumer::new(client, config, Subscription::topics([TOPIC]))
        .await
        .unwrap()
}

/// Polls until `done` holds for the consumer and the records returned so far.
async fn poll_until(
    consumer: &mut GroupConsumer,
    mut done: impl FnMut(&GroupConsumer, &[ConsumerRecord]) -> bool,
) -> Vec<ConsumerRecord> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut records = Vec::new();
    while !done(consumer, &records) {
        assert!(Instant::now() < deadline, "timed out; got {records:?}");
        records.extend(consumer.poll().await.unwrap());
    }
    records
}

/// Waits until `done` holds for the coordinator's events.
async fn wait_for(mock: &Mock, done: impl Fn(&[Event]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&mock.events()) {
        assert!(
            Instant::now() < deadline,
            "timed out; saw {:?}",
            mock.events()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn offsets(records: &[ConsumerRecord]) -> Vec<(i32, i64)> {
    let mut offsets: Vec<(i32, i64)> = records.iter().map(|r| (r.partition, r.offset)).collect();
    offsets.sort_unstable();
    offsets
}

fn tps(partitions: &[i32]) -> Vec<TopicPartition> {
    partitions
        .iter()
        .map(|&p| TopicPartition::new(TOPIC, p))
        .collect()
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn note(&self, what: &str, partitions: &[TopicPartition]) {
        let names: Vec<String> = partitions.iter().map(ToString::to_string).collect();
        self.0
            .lock()
            .unwrap()
            .push(format!("{what} {}", names.join(",")));
    }

    fn seen(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl RebalanceListener for Recorder {
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        self.note("assigned", partitions);
    }

    fn on_partitions_revoked(&mut self, partitions: &[TopicPartition]) {
        self.note("revoked", partitions);
    }

    fn on_partitions_lost(&mut self, partitions: &[TopicPartition]) {
        self.note("lost", partitions);
    }
}

#[tokio::test]
async fn joins_reads_from_committed_offsets_commits_and_leaves() {
    let mock = Mock::start(&[3, 2]).await;
    mock.state().committed.insert(1, 1);
    let mut consumer = join(&mock, config()).await;
    let recorder = Recorder::default();
    consumer.set_listener(recorder.clone());
    assert_eq!(consumer.member_id().len(), 32);

    let records = poll_until(&mut consumer, |_, records| records.len() >= 4).await;
    assert_eq!(offsets(&records), [(0, 0), (0, 1), (0, 2), (1, 1)]);
    assert!(records.iter().all(|r| &*r.topic == TOPIC));
    assert_eq!(consumer.assignment(), tps(&[0, 1]));
    assert!(consumer.member_epoch() >= 1);
    assert_eq!(consumer.position(&TopicPartition::new(TOPIC, 0)), Some(3));

    consumer.commit().await.unwrap();
    assert_eq!(mock.state().committed[&0], 3);
    assert_eq!(mock.state().committed[&1], 2);
    wait_for(&mock, |events| {
        events.contains(&Event::Heartbeat {
            epoch: 1,
            owned: vec![0, 1],
        })
    })
    .await;
    consumer.close().await.unwrap();

    let state = mock.state();
    let first = &state.heartbeats[0];
    assert_eq!((first.member_epoch, first.topic_partitions.len()), (0, 0));
    assert_eq!(first.subscribed_topic_names, [TOPIC]);
    assert_eq!(first.rebalance_timeout_ms, 60_000);
    assert_eq!(first.session_timeout_ms, 0);
    assert!(
        state
            .heartbeats
            .iter()
            .all(|h| h.member_id == first.member_id)
    );
    let reported = state.heartbeats.iter().flat_map(|h| &h.topic_partitions);
    assert!(reported.clone().all(|t| t.topic_id == TOPIC_ID));
    assert_eq!(state.heartbeats.last().unwrap().member_epoch, -1);
    let commits = state
        .events
        .iter()
        .filter(|e| matches!(e, Event::Commit { .. }));
    assert_eq!(commits.count(), 1, "no commit on close without auto-commit");
    assert_eq!(recorder.seen(), ["assigned t-0,t-1", "revoked t-0,t-1"]);
}

#[tokio::test]
async fn revocation_commits_then_reports_the_smaller_set_at_once() {
    let mock = Mock::start(&[2, 2]).await;
    let config = GroupConsumerConfig {
        auto_commit: true,
        auto_commit_interval: Duration::from_secs(600),
        ..config()
    };
    let mut consumer = join(&mock, config).await;
    let recorder = Recorder::default();
    consumer.set_listener(recorder.clone());
    poll_until(&mut consumer, |_, records| records.len() >= 4).await;

    mock.assign(&[0]);
    poll_until(&mut consumer, |c, _| c.assignment() == tps(&[0])).await;
    wait_for(&mock, |events| {
        events.contains(&Event::Heartbeat {
            epoch: 2,
            owned: vec![0],
        })
    })
    .await;
    let events = mock.events();
    let commit = events.iter().position(|e| {
        *e == Event::Commit {
            epoch: 2,
            offsets: vec![(1, 2)],
        }
    });
    let report = events.iter().position(|e| {
        *e == Event::Heartbeat {
            epoch: 2,
            owned: vec![0],
        }
    });
    assert!(commit.unwrap() < report.unwrap(), "{events:?}");
    assert_eq!(recorder.seen(), ["assigned t-0,t-1", "revoked t-1"]);

    consumer.close().await.unwrap();
    assert_eq!(mock.state().committed[&0], 2, "auto-commit on close");
}

#[tokio::test]
async fn auto_commit_sends_only_positions_returned_by_earlier_polls() {
    let mock = Mock::start(&[5]).await;
    let config = GroupConsumerConfig {
        auto_commit: true,
        auto_commit_interval: Duration::from_millis(1),
        max_poll_records: 2,
        ..config()
    };
    let mut consumer = join(&mock, config).await;
    let first = poll_until(&mut consumer, |_, records| !records.is_empty()).await;
    assert_eq!(offsets(&first), [(0, 0), (0, 1)]);
    let second = poll_until(&mut consumer, |_, records| !records.is_empty()).await;
    assert_eq!(offsets(&second), [(0, 2), (0, 3)]);

    let committed: Vec<Vec<(i32, i64)>> = mock
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Commit { offsets, .. } => Some(offsets),
            Event::Heartbeat { .. } => None,
        })
        .collect();
    assert_eq!(committed.last().unwrap(), &[(0, 2)], "{committed:?}");
    assert!(committed.iter().flatten().all(|&(_, offset)| offset <= 2));
    tokio::time::sleep(Duration::from_millis(5)).await;
    consumer.poll().await.unwrap();
    assert_eq!(mock.state().committed[&0], 4);
    consumer.close().await.unwrap();
}

#[tokio::test]
async fn a_fenced_member_loses_its_partitions_and_rejoins_with_the_same_id() {
    let mock = Mock::start(&[2]).await;
    let mut consumer = join(&mock, config()).await;
    let recorder = Recorder::default();
    consumer.set_listener(recorder.clone());
    poll_until(&mut consumer, |_, records| records.len() >= 2).await;
    consumer.commit().await.unwrap();

    mock.state()
        .heartbeat_errors
        .push_back(ErrorCode::FencedMemberEpoch);
    let seen = recorder.clone();
    poll_until(&mut consumer, |c, _| {
        seen.seen().len() >= 3 && c.assignment() == tps(&[0])
    })
    .await;
    assert_eq!(
        recorder.seen(),
        ["assigned t-0", "lost t-0", "assigned t-0"]
    );
    {
        let mut state = mock.state();
        let member_id = state.heartbeats[0].member_id.clone();
        let rejoins = state.heartbeats.iter().filter(|h| h.member_epoch == 0);
        assert_eq!(rejoins.count(), 2);
        assert!(state.heartbeats.iter().all(|h| h.member_id == member_id));
        mock::append(&mut state, 0);
    }
    let records = poll_until(&mut consumer, |_, records| !records.is_empty()).await;
    assert_eq!(
        offsets(&records),
        [(0, 2)],
        "resumes at the committed offset"
    );
    consumer.close().await.unwrap();
}

#[tokio::test]
async fn non_retriable_join_errors_stop_the_consumer() {
    let mock = Mock::start(&[1]).await;
    mock.state()
        .heartbeat_errors
        .push_back(ErrorCode::InvalidGroupId);
    let mut consumer = join(&mock, config()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let error = loop {
        assert!(Instant::now() < deadline);
        if let Err(error) = consumer.poll().await {
            break error;
        }
    };
    assert_eq!(error.code(), Some(ErrorCode::InvalidGroupId));
    let again = consumer.poll().await.unwrap_err();
    assert_eq!(again.code(), Some(ErrorCode::InvalidGroupId));
    consumer.close().await.unwrap();
    assert_eq!(
        mock.state().heartbeats.len(),
        1,
        "no leave after a fatal error"
    );
}

#[tokio::test]
async fn a_static_member_leaves_with_epoch_minus_two() {
    let mock = Mock::start(&[1]).await;
    let config = GroupConsumerConfig {
        instance_id: Some("instance-1".into()),
        session_timeout: Some(Duration::from_secs(30)),
        ..config()
    };
    let mut consumer = join(&mock, config).await;
    poll_until(&mut consumer, |c, _| !c.assignment().is_empty()).await;
    consumer.close().await.unwrap();
    let state = mock.state();
    let last = state.heartbeats.last().unwrap();
    assert_eq!(last.member_epoch, -2);
    assert_eq!(last.instance_id, "instance-1");
    assert!(
        state
            .heartbeats
            .iter()
            .all(|h| h.session_timeout_ms == 30_000)
    );
}

#[tokio::test]
async fn dropping_the_consumer_leaves_in_the_background() {
    let mock = Mock::start(&[1]).await;
    let mut consumer = join(&mock, config()).await;
    poll_until(&mut consumer, |c, _| !c.assignment().is_empty()).await;
    drop(consumer);
    wait_for(&mock, |events| {
        matches!(events.last(), Some(Event::Heartbeat { epoch: -1, .. }))
    })
    .await;
}

#[tokio::test]
async fn a_moved_coordinator_is_found_again_without_losing_the_session() {
    let mock = Mock::start(&[1]).await;
    let mut consumer = join(&mock, config()).await;
    let recorder = Recorder::default();
    consumer.set_listener(recorder.clone());
    poll_until(&mut consumer, |c, _| !c.assignment().is_empty()).await;
    let epoch = consumer.member_epoch();
    let sent = {
        let mut state = mock.state();
        state.heartbeat_errors.push_back(ErrorCode::NotCoordinator);
        state
            .heartbeat_errors
            .push_back(ErrorCode::CoordinatorLoadInProgress);
        state.heartbeats.len()
    };
    wait_for(&mock, |events| events.len() >= sent + 3).await;
    let epochs: Vec<i32> = mock.state().heartbeats[sent..]
        .iter()
        .map(|h| h.member_epoch)
        .collect();
    assert!(epochs.iter().all(|&e| e == epoch), "{epochs:?}");
    assert_eq!(consumer.member_epoch(), epoch);
    assert_eq!(recorder.seen(), ["assigned t-0"]);
    consumer.close().await.unwrap();
}
