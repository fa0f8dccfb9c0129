//! In-memory [`StateStore`]: for unit tests and the single-process dev mode.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use super::{Area, Entry, StateStore, WriteBatch, WriteOp};
use crate::Result;

/// One ordered map per area.
type Areas = HashMap<Area, BTreeMap<Vec<u8>, Vec<u8>>>;

/// A [`StateStore`] kept in ordered maps; durable only as long as the process lives.
///
/// Thread-safe: one mutex guards all areas, held only for the duration of a call.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    areas: Mutex<Areas>,
}

impl MemoryStateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_areas<T>(&self, f: impl FnOnce(&mut Areas) -> T) -> T {
        // A panic while holding the lock cannot leave a map half-updated (BTreeMap operations are
        // atomic with respect to unwinding here), so a poisoned lock is still safe to use.
        let mut guard = self
            .areas
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

impl StateStore for MemoryStateStore {
    fn get(&self, area: Area, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.with_areas(|areas| areas.get(&area).and_then(|m| m.get(key).cloned())))
    }

    fn floor(&self, area: Area, prefix: &[u8], key: &[u8]) -> Result<Option<Entry>> {
        Ok(self.with_areas(|areas| {
            let map = areas.get(&area)?;
            let (k, v) = map
                .range::<[u8], _>((Bound::Unbounded, Bound::Included(key)))
                .next_back()?;
            k.starts_with(prefix).then(|| (k.clone(), v.clone()))
        }))
    }

    fn ceiling(&self, area: Area, prefix: &[u8], key: &[u8]) -> Result<Option<Entry>> {
        Ok(self.with_areas(|areas| {
            let map = areas.get(&area)?;
            let (k, v) = map
                .range::<[u8], _>((Bound::Included(key), Bound::Unbounded))
                .next()?;
            k.starts_with(prefix).then(|| (k.clone(), v.clone()))
        }))
    }

    fn scan_prefix(&self, area: Area, prefix: &[u8]) -> Result<Vec<Entry>> {
        Ok(self.with_areas(|areas| {
            let Some(map) = areas.get(&area) else {
                return Vec::new();
            };
            map.range::<[u8], _>((Bound::Included(prefix), Bound::Unbounded))
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }))
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        self.with_areas(|areas| {
            for op in batch.ops {
                match op {
                    WriteOp::Put { area, key, value } => {
                        areas.entry(area).or_default().insert(key, value);
                    }
                    WriteOp::Delete { area, key } => {
                        if let Some(map) = areas.get_mut(&area) {
                            map.remove(&key);
                        }
                    }
                    WriteOp::DeleteRange { area, start, end } => {
                        if let Some(map) = areas.get_mut(&area) {
                            let doomed: Vec<Vec<u8>> = map
                                .range::<[u8], _>((
                                    Bound::Included(&start[..]),
                                    Bound::Excluded(&end[..]),
                                ))
                                .map(|(k, _)| k.clone())
                                .collect();
                            for key in doomed {
                                map.remove(&key);
                            }
                        }
                    }
                }
            }
        });
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> (MemoryStateStore, ()) {
        (MemoryStateStore::new(), ())
    }

    crate::state::conformance::conformance_suite!(fixture);
}
