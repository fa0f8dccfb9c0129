//! Where consumer groups live: the coordinator that owns a group, claiming a group under a
//! coordinator's lease, and the coordinator a group should go to when nobody owns it.

use std::collections::BTreeMap;

use crate::records::{self, CoordinatorRecord};
use crate::store::{Compare, LeaseId, MetaStore, Op, Txn};
use crate::{Keys, Result};

/// The coordinator that owns a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOwner {
    /// The owning coordinator.
    pub coordinator: CoordinatorRecord,
    /// The owner key's create revision: the owner's writes compare it, so a coordinator that
    /// lost the group (its lease expired while it was paused) cannot write for it.
    pub revision: i64,
    /// The lease the owner key is attached to.
    pub lease: Option<LeaseId>,
}

impl GroupOwner {
    /// The condition every write of the owner for this group carries.
    pub fn fence(&self, keys: &Keys, group: &str) -> Compare {
        Compare::create_revision(keys.group_owner(group), self.revision)
    }
}

/// Reads the owner of `group`, if any coordinator holds it.
pub async fn group_owner(
    store: &dyn MetaStore,
    keys: &Keys,
    group: &str,
) -> Result<Option<GroupOwner>> {
    let key = keys.group_owner(group);
    let Some(kv) = store.get(&key).await? else {
        return Ok(None);
    };
    Ok(Some(GroupOwner {
        coordinator: records::decode(&key, &kv.value)?,
        revision: kv.create_revision,
        lease: kv.lease,
    }))
}

/// Claims `group` for `me` under `lease` unless another coordinator holds it. Returns the
/// owner afterwards: `me` when the claim succeeded (or `me` already held it under this lease).
pub async fn claim_group(
    store: &dyn MetaStore,
    keys: &Keys,
    group: &str,
    me: &CoordinatorRecord,
    lease: LeaseId,
) -> Result<Option<GroupOwner>> {
    let key = keys.group_owner(group);
    let txn = Txn::new()
        .when([Compare::absent(key.clone())])
        .then([Op::put_with_lease(key, records::encode(me)?, lease)]);
    let outcome = store.txn(txn).await?;
    if outcome.succeeded {
        return Ok(Some(GroupOwner {
            coordinator: me.clone(),
            revision: outcome.revision,
            lease: Some(lease),
        }));
    }
    group_owner(store, keys, group).await
}

/// The coordinator a client should talk to for `group`: its owner when one holds it, else the
/// live coordinator chosen by rendezvous hashing, so unowned groups spread evenly and every
/// process that sees the same coordinators picks the same one. `None` when no coordinator is
/// registered.
pub async fn locate_coordinator(
    store: &dyn MetaStore,
    keys: &Keys,
    group: &str,
    coordinators: &BTreeMap<i32, CoordinatorRecord>,
) -> Result<Option<CoordinatorRecord>> {
    if let Some(owner) = group_owner(store, keys, group).await? {
        return Ok(Some(owner.coordinator));
    }
    Ok(preferred_coordinator(group, coordinators.values()).cloned())
}

/// Rendezvous (highest random weight) choice of a coordinator for `group`.
pub fn preferred_coordinator<'c>(
    group: &str,
    coordinators: impl IntoIterator<Item = &'c CoordinatorRecord>,
) -> Option<&'c CoordinatorRecord> {
    coordinators
        .into_iter()
        .max_by_key(|c| (weight(group, c.id), c.id))
}

/// FNV-1a over the group id and coordinator id, finished with a 64-bit mix so nearby ids do
/// not produce nearby weights.
fn weight(group: &str, id: i32) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in group.bytes().chain(id.to_le_bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::MemoryStore;

    fn coordinator(id: i32) -> CoordinatorRecord {
        CoordinatorRecord {
            id,
            address: format!("127.0.0.1:{}", 9000 + id),
        }
    }

    #[test]
    fn rendezvous_spreads_groups_and_moves_few_when_a_coordinator_leaves() {
        let all: Vec<_> = (1..=3).map(coordinator).collect();
        let groups: Vec<String> = (0..300).map(|i| format!("group-{i}")).collect();
        let mut counts = BTreeMap::new();
        for g in &groups {
            let c = preferred_coordinator(g, &all).unwrap();
            *counts.entry(c.id).or_insert(0) += 1;
        }
        assert!(counts.values().all(|n| *n > 60), "{counts:?}");
        // Removing coordinator 3 moves only its groups.
        let two = &all[..2];
        for g in &groups {
            let before = preferred_coordinator(g, &all).unwrap().id;
            let after = preferred_coordinator(g, two).unwrap().id;
            assert!(before == 3 || before == after, "{g} moved from {before}");
        }
        assert!(preferred_coordinator("g", &[]).is_none());
    }

    #[tokio::test]
    async fn one_claim_wins_and_the_owner_goes_with_its_lease() {
        let store: Arc<dyn MetaStore> = Arc::new(MemoryStore::new());
        let keys = Keys::new("c");
        let one = store.grant_lease(Duration::from_secs(5)).await.unwrap();
        let two = store.grant_lease(Duration::from_secs(5)).await.unwrap();
        let won = claim_group(&*store, &keys, "g", &coordinator(1), one.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(won.coordinator.id, 1);
        let lost = claim_group(&*store, &keys, "g", &coordinator(2), two.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(lost, won, "the second claim sees the first owner");
        let all = BTreeMap::from([(1, coordinator(1)), (2, coordinator(2))]);
        let located = locate_coordinator(&*store, &keys, "g", &all).await.unwrap();
        assert_eq!(located.unwrap().id, 1);
        store.revoke_lease(one.id).await.unwrap();
        assert!(group_owner(&*store, &keys, "g").await.unwrap().is_none());
        let retaken = claim_group(&*store, &keys, "g", &coordinator(2), two.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(retaken.coordinator.id, 2);
        assert!(
            retaken.revision > won.revision,
            "a new claim is a new fence"
        );
    }
}
