//! One suite, three stores: every test runs against the in-memory twin, the twin persisted
//! (to an in-memory backend), and a real etcd (skipped when etcd is not installed, unless `STROM_REQUIRE_ETCD=1`).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strom_meta::testing::{EtcdServer, shared_etcd, unique_prefix};
use strom_meta::{
    Change, Compare, Election, Error, EventKind, LeaseKeeper, MemoryPersistence, MemoryStore,
    MetaStore, Op, PrefixWatcher, Txn,
};
use tokio_util::sync::CancellationToken;

/// A store and a key prefix no other test uses.
struct Fixture {
    store: Arc<dyn MetaStore>,
    prefix: String,
    /// A private etcd, for tests that compact (compaction is store-wide).
    _server: Option<EtcdServer>,
}

impl Fixture {
    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    async fn put(&self, name: &str, value: &str) -> i64 {
        let outcome = self
            .store
            .txn(Txn::new().then([Op::put(self.key(name), value.to_owned())]))
            .await
            .unwrap();
        assert!(outcome.succeeded);
        outcome.revision
    }
}

async fn memory(name: &str) -> Option<Fixture> {
    Some(Fixture {
        store: Arc::new(MemoryStore::new()),
        prefix: unique_prefix(name),
        _server: None,
    })
}

async fn persisted(name: &str) -> Option<Fixture> {
    let backend = Arc::new(MemoryPersistence::default());
    Some(Fixture {
        store: Arc::new(MemoryStore::open(backend).await.unwrap()),
        prefix: unique_prefix(name),
        _server: None,
    })
}

async fn etcd(name: &str) -> Option<Fixture> {
    let server = shared_etcd().await?;
    Some(Fixture {
        store: server.store().await,
        prefix: unique_prefix(name),
        _server: None,
    })
}

async fn etcd_isolated(name: &str) -> Option<Fixture> {
    let server = EtcdServer::start().await?;
    Some(Fixture {
        store: server.store().await,
        prefix: unique_prefix(name),
        _server: Some(server),
    })
}

/// Waits until `check` holds, polling; fails the test after `limit`.
async fn eventually<F, Fut>(limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

mod suite {
    use super::*;

    pub(super) async fn revisions_follow_etcd(f: Fixture) {
        let r1 = f.put("a", "1").await;
        let kv = f.store.get(&f.key("a")).await.unwrap().unwrap();
        assert_eq!(
            (kv.create_revision, kv.mod_revision, kv.version),
            (r1, r1, 1)
        );
        assert_eq!(kv.value, Bytes::from("1"));
        let r2 = f.put("a", "2").await;
        assert_eq!(r2, r1 + 1, "one revision per changing txn");
        let kv = f.store.get(&f.key("a")).await.unwrap().unwrap();
        assert_eq!(
            (kv.create_revision, kv.mod_revision, kv.version),
            (r1, r2, 2)
        );
        assert_eq!(f.store.get(&f.key("missing")).await.unwrap(), None);
    }

    pub(super) async fn list_is_ordered_and_scoped_to_the_prefix(f: Fixture) {
        for name in ["b", "a", "c/1", "c/0"] {
            f.put(name, name).await;
        }
        let outside = format!("{}x", f.prefix.trim_end_matches('/'));
        f.store
            .txn(Txn::new().then([Op::put(outside, "no")]))
            .await
            .unwrap();
        let listing = f.store.list(&f.prefix).await.unwrap();
        let keys: Vec<_> = listing
            .kvs
            .iter()
            .map(|kv| kv.key.trim_start_matches(&f.prefix).to_owned())
            .collect();
        assert_eq!(keys, ["a", "b", "c/0", "c/1"]);
        assert!(listing.revision >= listing.kvs.iter().map(|kv| kv.mod_revision).max().unwrap());
    }

    pub(super) async fn compares_gate_every_op(f: Fixture) {
        let key = f.key("k");
        let created = f.put("k", "v1").await;
        let other = f.key("other");
        // Absent fails on an existing key and applies nothing.
        let txn = Txn::new()
            .when([Compare::absent(key.clone())])
            .then([Op::put(other.clone(), "x")]);
        let outcome = f.store.txn(txn).await.unwrap();
        assert!(!outcome.succeeded);
        assert_eq!(
            outcome.revision, created,
            "a failed txn does not move the revision"
        );
        assert_eq!(f.store.get(&other).await.unwrap(), None);
        // Create revision, mod revision and value compares.
        let modified = f.put("k", "v2").await;
        for (compare, expected) in [
            (Compare::create_revision(key.clone(), created), true),
            (Compare::create_revision(key.clone(), modified), false),
            (Compare::mod_revision(key.clone(), modified), true),
            (Compare::mod_revision(key.clone(), created), false),
            (Compare::mod_revision(f.key("missing"), 0), true),
            (Compare::value(key.clone(), "v2"), true),
            (Compare::value(key.clone(), "v1"), false),
            (Compare::value(f.key("missing"), ""), false),
            (Compare::absent(f.key("missing")), true),
        ] {
            let outcome = f
                .store
                .txn(Txn::new().when([compare.clone()]))
                .await
                .unwrap();
            assert_eq!(outcome.succeeded, expected, "{compare:?}");
        }
        // All compares must hold.
        let txn = Txn::new()
            .when([
                Compare::mod_revision(key.clone(), modified),
                Compare::value(key.clone(), "v1"),
            ])
            .then([Op::delete(key.clone())]);
        assert!(!f.store.txn(txn).await.unwrap().succeeded);
        assert!(f.store.get(&key).await.unwrap().is_some());
    }

    pub(super) async fn deletes_remove_keys_and_prefixes(f: Fixture) {
        for name in ["d/1", "d/2", "d2", "e"] {
            f.put(name, "v").await;
        }
        let before = f.store.list(&f.prefix).await.unwrap().revision;
        let outcome = f
            .store
            .txn(Txn::new().then([Op::delete_prefix(f.key("d/")), Op::delete(f.key("e"))]))
            .await
            .unwrap();
        assert!(outcome.succeeded);
        assert_eq!(
            outcome.revision,
            before + 1,
            "all deletes share one revision"
        );
        let keys: Vec<_> = f
            .store
            .list(&f.prefix)
            .await
            .unwrap()
            .kvs
            .into_iter()
            .map(|kv| kv.key)
            .collect();
        assert_eq!(keys, [f.key("d2")]);
        // Re-creating a key starts a new life: new create revision, version 1.
        let again = f.put("e", "v").await;
        let kv = f.store.get(&f.key("e")).await.unwrap().unwrap();
        assert_eq!((kv.create_revision, kv.version), (again, 1));
    }

    pub(super) async fn oversized_and_duplicate_txns_are_rejected(f: Fixture) {
        let ops: Vec<Op> = (0..=strom_meta::MAX_TXN_OPS)
            .map(|i| Op::put(f.key(&i.to_string()), "v"))
            .collect();
        assert!(matches!(
            f.store.txn(Txn::new().then(ops)).await,
            Err(Error::Rejected { .. })
        ));
        let dup = Txn::new().then([Op::put(f.key("a"), "1"), Op::put(f.key("a"), "2")]);
        assert!(matches!(
            f.store.txn(dup).await,
            Err(Error::Rejected { .. })
        ));
        assert!(
            f.store.list(&f.prefix).await.unwrap().kvs.is_empty(),
            "nothing applied"
        );
    }

    pub(super) async fn leases_own_their_keys(f: Fixture) {
        let grant = f.store.grant_lease(Duration::from_secs(30)).await.unwrap();
        assert!(grant.ttl >= Duration::from_secs(30));
        let key = f.key("leased");
        f.store
            .txn(Txn::new().then([Op::put_with_lease(key.clone(), "v", grant.id)]))
            .await
            .unwrap();
        assert_eq!(
            f.store.get(&key).await.unwrap().unwrap().lease,
            Some(grant.id)
        );
        assert!(f.store.keep_alive(grant.id).await.unwrap() >= Duration::from_secs(29));
        f.store.revoke_lease(grant.id).await.unwrap();
        assert_eq!(
            f.store.get(&key).await.unwrap(),
            None,
            "revoking deletes attached keys"
        );
        let kept = f.store.keep_alive(grant.id).await;
        assert!(matches!(kept, Err(Error::LeaseExpired { .. })), "{kept:?}");
        let txn = Txn::new().then([Op::put_with_lease(key.clone(), "v", grant.id)]);
        assert!(matches!(
            f.store.txn(txn).await,
            Err(Error::LeaseExpired { .. })
        ));
        f.store
            .revoke_lease(grant.id)
            .await
            .expect("revoking twice is not an error");
    }

    pub(super) async fn expired_leases_delete_their_keys(f: Fixture) {
        let grant = f.store.grant_lease(Duration::from_secs(2)).await.unwrap();
        let key = f.key("ephemeral");
        f.store
            .txn(Txn::new().then([Op::put_with_lease(key.clone(), "v", grant.id)]))
            .await
            .unwrap();
        let store = f.store.clone();
        eventually(Duration::from_secs(10), || {
            let (store, key) = (store.clone(), key.clone());
            async move { store.get(&key).await.unwrap().is_none() }
        })
        .await;
        let kept = f.store.keep_alive(grant.id).await;
        assert!(matches!(kept, Err(Error::LeaseExpired { .. })), "{kept:?}");
    }

    pub(super) async fn watches_replay_history_then_follow(f: Fixture) {
        let r1 = f.put("w/a", "1").await;
        f.put("w/b", "1").await;
        f.store
            .txn(Txn::new().then([Op::delete(f.key("w/a"))]))
            .await
            .unwrap();
        let mut watch = f.store.watch(&f.key("w/"), r1 + 1).await.unwrap();
        f.put("w/c", "1").await;
        f.put("elsewhere", "1").await;
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let batch = tokio::time::timeout(Duration::from_secs(5), watch.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            for event in batch.events {
                seen.push((
                    event.kind,
                    event.kv.key.trim_start_matches(&f.prefix).to_owned(),
                ));
            }
        }
        assert_eq!(
            seen,
            [
                (EventKind::Put, "w/b".to_owned()),
                (EventKind::Delete, "w/a".to_owned()),
                (EventKind::Put, "w/c".to_owned())
            ]
        );
    }

    pub(super) async fn compacted_history_fails_the_watch(f: Fixture) {
        let r1 = f.put("a", "1").await;
        let r2 = f.put("a", "2").await;
        let r3 = f.put("a", "3").await;
        f.store.compact(r3).await.unwrap();
        let result = match f.store.watch(&f.prefix, r1).await {
            Err(error) => Err(error),
            Ok(mut watch) => tokio::time::timeout(Duration::from_secs(5), watch.next())
                .await
                .unwrap()
                .unwrap(),
        };
        assert!(matches!(result, Err(Error::Compacted { .. })), "{result:?}");
        // From the compaction revision on, history is still there.
        let mut watch = f.store.watch(&f.prefix, r3).await.unwrap();
        let batch = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(batch.events[0].kv.mod_revision, r3);
        let _ = r2;
    }

    pub(super) async fn one_election_holder_and_fenced_writes(f: Fixture) {
        let election = Election::new(f.store.clone(), f.key("leader"));
        let cancel = CancellationToken::new();
        let a = f.store.grant_lease(Duration::from_secs(30)).await.unwrap();
        let b = f.store.grant_lease(Duration::from_secs(30)).await.unwrap();
        let first = election
            .campaign(Bytes::from("a"), a.id, &cancel)
            .await
            .unwrap();
        assert_eq!(
            election.holder().await.unwrap().unwrap().value,
            Bytes::from("a")
        );
        // B waits while A holds the key.
        let waiting = {
            let election = election.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move { election.campaign(Bytes::from("b"), b.id, &cancel).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "a second candidate must wait");
        // A's fenced write works while it holds the key.
        let write = |leadership: &strom_meta::Leadership, value: &'static str| {
            Txn::new()
                .when([leadership.fence()])
                .then([Op::put(f.key("state"), value)])
        };
        assert!(
            f.store
                .txn(write(&first, "from a"))
                .await
                .unwrap()
                .succeeded
        );
        // A's lease goes; B takes over with a higher epoch; A's writes now fail.
        f.store.revoke_lease(a.id).await.unwrap();
        let second = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(second.epoch() > first.epoch());
        assert!(!f.store.txn(write(&first, "stale")).await.unwrap().succeeded);
        assert!(!election.is_current(&first).await.unwrap());
        assert!(
            f.store
                .txn(write(&second, "from b"))
                .await
                .unwrap()
                .succeeded
        );
        assert_eq!(
            f.store.get(&f.key("state")).await.unwrap().unwrap().value,
            Bytes::from("from b")
        );
        // Resigning frees the key at once.
        election.resign(&second).await.unwrap();
        assert_eq!(election.holder().await.unwrap(), None);
    }

    pub(super) async fn lease_keeper_reports_a_lost_lease(f: Fixture) {
        let keeper = LeaseKeeper::grant(f.store.clone(), Duration::from_secs(3))
            .await
            .unwrap();
        let key = f.key("kept");
        f.store
            .txn(Txn::new().then([Op::put_with_lease(key.clone(), "v", keeper.id())]))
            .await
            .unwrap();
        // Kept alive past its TTL.
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(!keeper.is_lost());
        assert!(f.store.get(&key).await.unwrap().is_some());
        // Revoked behind its back: the keeper notices at its next refresh.
        f.store.revoke_lease(keeper.id()).await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), keeper.lost().cancelled())
            .await
            .expect("loss reported");
    }

    pub(super) async fn prefix_watcher_follows_and_resyncs(f: Fixture) {
        f.put("p/a", "1").await;
        let mut watcher =
            PrefixWatcher::start(f.store.clone(), f.key("p/"), Duration::from_secs(3600))
                .await
                .unwrap();
        assert_eq!(watcher.snapshot().len(), 1);
        f.put("p/b", "1").await;
        let update = tokio::time::timeout(Duration::from_secs(5), watcher.next())
            .await
            .unwrap();
        assert!(!update.resync);
        assert!(matches!(&update.changes[..], [Change::Put(kv)] if kv.key == f.key("p/b")));
        // Changes made while the watch is broken by compaction come back as a diff.
        let r = f.put("p/c", "1").await;
        f.store
            .txn(Txn::new().then([Op::delete(f.key("p/a"))]))
            .await
            .unwrap();
        let last = f.put("p/b", "2").await;
        let _ = r;
        f.store.compact(last).await.unwrap();
        let mut changed = std::collections::BTreeMap::new();
        while changed.len() < 3 {
            let update = tokio::time::timeout(Duration::from_secs(5), watcher.next())
                .await
                .unwrap();
            for change in update.changes {
                changed.insert(
                    change.key().trim_start_matches(&f.prefix).to_owned(),
                    matches!(change, Change::Put(_)),
                );
            }
        }
        let expected: std::collections::BTreeMap<_, _> = [
            ("p/a".to_owned(), false),
            ("p/b".to_owned(), true),
            ("p/c".to_owned(), true),
        ]
        .into();
        assert_eq!(changed, expected);
        let keys: Vec<_> = watcher.snapshot().keys().cloned().collect();
        assert_eq!(keys, [f.key("p/b"), f.key("p/c")]);
    }
}

macro_rules! conformance {
    ($store:ident: $($test:ident),* $(,)?) => {
        mod $store {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let Some(fixture) = super::$store(stringify!($test)).await else { return };
                    super::suite::$test(fixture).await;
                }
            )*
        }
    };
}

conformance!(memory:
    revisions_follow_etcd,
    list_is_ordered_and_scoped_to_the_prefix,
    compares_gate_every_op,
    deletes_remove_keys_and_prefixes,
    oversized_and_duplicate_txns_are_rejected,
    leases_own_their_keys,
    expired_leases_delete_their_keys,
    watches_replay_history_then_follow,
    compacted_history_fails_the_watch,
    one_election_holder_and_fenced_writes,
    lease_keeper_reports_a_lost_lease,
    prefix_watcher_follows_and_resyncs,
);

conformance!(persisted:
    revisions_follow_etcd,
    list_is_ordered_and_scoped_to_the_prefix,
    compares_gate_every_op,
    deletes_remove_keys_and_prefixes,
    oversized_and_duplicate_txns_are_rejected,
    leases_own_their_keys,
    expired_leases_delete_their_keys,
    watches_replay_history_then_follow,
    compacted_history_fails_the_watch,
    one_election_holder_and_fenced_writes,
    lease_keeper_reports_a_lost_lease,
    prefix_watcher_follows_and_resyncs,
);

conformance!(etcd:
    revisions_follow_etcd,
    list_is_ordered_and_scoped_to_the_prefix,
    compares_gate_every_op,
    deletes_remove_keys_and_prefixes,
    oversized_and_duplicate_txns_are_rejected,
    leases_own_their_keys,
    expired_leases_delete_their_keys,
    watches_replay_history_then_follow,
    one_election_holder_and_fenced_writes,
    lease_keeper_reports_a_lost_lease,
);

// Compaction is store-wide, so these get an etcd of their own.
conformance!(etcd_isolated:
    compacted_history_fails_the_watch,
    prefix_watcher_follows_and_resyncs,
);
