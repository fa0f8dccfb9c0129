//! An etcd restart (same data directory) must not need a restart of anything watching it.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use strom_meta::testing::EtcdServer;
use strom_meta::{Change, LeaseKeeper, Op, PrefixWatcher, Txn};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watchers_and_leases_survive_an_etcd_restart() {
    let Some(mut server) = EtcdServer::start().await else {
        return;
    };
    let store = server.store().await;
    let keeper = LeaseKeeper::grant(store.clone(), Duration::from_secs(10))
        .await
        .unwrap();
    store
        .txn(Txn::new().then([Op::put_with_lease("/r/leased", "v", keeper.id())]))
        .await
        .unwrap();
    store
        .txn(Txn::new().then([Op::put("/r/a", "1")]))
        .await
        .unwrap();
    let mut watcher = PrefixWatcher::start(store.clone(), "/r/", Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(watcher.snapshot().len(), 2);

    server.restart().await;

    // The same client object keeps working once etcd is back.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if store
            .txn(Txn::new().then([Op::put("/r/b", "after")]))
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "etcd writes did not resume"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut seen_b = false;
    while !seen_b {
        let update = tokio::time::timeout(Duration::from_secs(10), watcher.next())
            .await
            .expect("watch resumed");
        seen_b = update
            .changes
            .iter()
            .any(|c| matches!(c, Change::Put(kv) if kv.key == "/r/b"));
    }
    assert_eq!(watcher.snapshot().len(), 3);
    // The lease outlived the restart (etcd refreshes leases to their full TTL on recovery).
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!keeper.is_lost());
    assert!(store.get("/r/leased").await.unwrap().is_some());
}
