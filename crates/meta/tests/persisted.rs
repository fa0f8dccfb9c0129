//! A persisted in-memory store keeps its keys and revision across a reopen, and drops the
//! keys of leases held by the previous process.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use strom_meta::{
    Compare, Error, MemoryPersistence, MemoryStore, MetaStore, Op, PersistBatch, Persistence, Txn,
};

#[tokio::test]
async fn keys_and_revisions_survive_a_reopen_and_leased_keys_do_not() {
    let backend = Arc::new(MemoryPersistence::default());
    let (revision, created) = {
        let store = MemoryStore::open(backend.clone()).await.unwrap();
        let lease = store.grant_lease(Duration::from_secs(30)).await.unwrap();
        store
            .txn(Txn::new().then([
                Op::put("/t/topic", "orders"),
                Op::put("/t/gone", "soon"),
                Op::put_with_lease("/t/broker", "1", lease.id),
            ]))
            .await
            .unwrap();
        store
            .txn(Txn::new().then([Op::delete("/t/gone"), Op::put("/t/topic", "orders-v2")]))
            .await
            .unwrap();
        let listing = store.list("/t/").await.unwrap();
        let created = store.get("/t/topic").await.unwrap().unwrap();
        (listing.revision, created)
    };

    let store = MemoryStore::open(backend.clone()).await.unwrap();
    let topic = store.get("/t/topic").await.unwrap().unwrap();
    assert_eq!(topic, created, "value, revisions and version are kept");
    assert_eq!(&topic.value[..], b"orders-v2");
    assert_eq!(topic.version, 2);
    assert!(store.get("/t/gone").await.unwrap().is_none());
    assert!(
        store.get("/t/broker").await.unwrap().is_none(),
        "a key of the previous process's lease is deleted"
    );
    let listing = store.list("/t/").await.unwrap();
    assert_eq!(
        listing.revision,
        revision + 1,
        "the lease cleanup is one revision after the last one"
    );

    // Watches cannot replay what happened before the reopen, but follow from now on.
    match store.watch("/t/", revision).await {
        Err(Error::Compacted { .. }) => {}
        other => panic!("expected a compacted error, got {other:?}"),
    }
    let mut watch = store.watch("/t/", listing.revision + 1).await.unwrap();
    let outcome = store
        .txn(
            Txn::new()
                .when([Compare::absent("/t/broker")])
                .then([Op::put("/t/broker", "2")]),
        )
        .await
        .unwrap();
    assert!(outcome.succeeded);
    assert_eq!(outcome.revision, listing.revision + 1);
    let batch = watch.next().await.unwrap().unwrap();
    assert_eq!(batch.events.len(), 1);
    assert_eq!(
        batch.events[0].kv.create_revision, outcome.revision,
        "a key recreated after the reopen gets a newer create revision than any before"
    );

    // Lease ids are not handed out twice across reopens.
    let first = store.grant_lease(Duration::from_secs(5)).await.unwrap().id;
    drop(watch);
    drop(store);
    let store = MemoryStore::open(backend.clone()).await.unwrap();
    let second = store.grant_lease(Duration::from_secs(5)).await.unwrap().id;
    assert!(second > first);
    assert_eq!(
        store.list("/t/").await.unwrap().kvs.len(),
        2,
        "topic and broker 2 (not leased) are both kept"
    );
}

/// A backend whose writes fail after the first `allowed`.
#[derive(Debug)]
struct Failing {
    inner: MemoryPersistence,
    allowed: std::sync::atomic::AtomicUsize,
}

impl Persistence for Failing {
    fn load(&self) -> strom_meta::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.load()
    }

    fn write(&self, batch: PersistBatch) -> strom_meta::Result<()> {
        use std::sync::atomic::Ordering;
        if self
            .allowed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            return Err(Error::Disk {
                path: "/test".to_owned(),
                reason: "no space left on device".to_owned(),
            });
        }
        self.inner.write(batch)
    }
}

#[tokio::test]
async fn after_a_failed_write_every_call_fails_and_nothing_later_is_kept() {
    let backend = Arc::new(Failing {
        inner: MemoryPersistence::default(),
        allowed: 1.into(),
    });
    let store = MemoryStore::open(backend.clone()).await.unwrap();
    store
        .txn(Txn::new().then([Op::put("/f/a", "1")]))
        .await
        .unwrap();
    let failed = store.txn(Txn::new().then([Op::put("/f/b", "2")])).await;
    assert!(matches!(failed, Err(Error::Disk { .. })), "{failed:?}");
    assert!(matches!(store.get("/f/a").await, Err(Error::Disk { .. })));
    assert!(store.list("/f/").await.is_err());
    drop(store);

    let reopened = MemoryStore::open(Arc::new(MemoryPersistence::default()))
        .await
        .unwrap();
    assert!(
        reopened.get("/f/a").await.unwrap().is_none(),
        "a fresh backend is empty"
    );
    let kept = backend.inner.load().unwrap();
    let keys: Vec<String> = kept
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .filter(|k| k.starts_with("k/"))
        .collect();
    assert_eq!(keys, ["k//f/a"], "only the write that succeeded is kept");
}
