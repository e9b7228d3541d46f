//! The volumes the driver knows, in memory: by id (ordered, for paging) and by name.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, PoisonError, RwLock};

use crate::volume::VolumeMeta;

#[derive(Debug, Default)]
struct Inner {
    by_id: BTreeMap<String, Arc<VolumeMeta>>,
    by_name: HashMap<String, String>,
    used_bytes: u64,
}

/// The known volumes. Writers are `CreateVolume` and `DeleteVolume`; readers every other call.
#[derive(Debug, Default)]
pub struct Catalog {
    inner: RwLock<Inner>,
}

impl Catalog {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, id: &str) -> Option<Arc<VolumeMeta>> {
        self.read().by_id.get(id).cloned()
    }

    pub fn by_name(&self, name: &str) -> Option<Arc<VolumeMeta>> {
        let inner = self.read();
        inner.by_name.get(name).and_then(|id| inner.by_id.get(id)).cloned()
    }

    pub fn insert(&self, meta: VolumeMeta) -> Arc<VolumeMeta> {
        let meta = Arc::new(meta);
        let mut inner = self.write();
        inner.used_bytes += meta.capacity_bytes;
        inner.by_name.insert(meta.name.clone(), meta.id.clone());
        if let Some(old) = inner.by_id.insert(meta.id.clone(), Arc::clone(&meta)) {
            inner.used_bytes -= old.capacity_bytes;
        }
        meta
    }

    pub fn remove(&self, id: &str) -> Option<Arc<VolumeMeta>> {
        let mut inner = self.write();
        let meta = inner.by_id.remove(id)?;
        inner.by_name.remove(&meta.name);
        inner.used_bytes -= meta.capacity_bytes;
        Some(meta)
    }

    pub fn used_bytes(&self) -> u64 {
        self.read().used_bytes
    }

    pub fn len(&self) -> usize {
        self.read().by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to `max` volumes (0: all) whose ids sort after `after`, and whether more follow.
    /// Paging by id keeps a token valid when the volume it names is deleted meanwhile.
    pub fn page(&self, after: Option<&str>, max: usize) -> (Vec<Arc<VolumeMeta>>, bool) {
        let inner = self.read();
        let start = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        let mut iter = inner.by_id.range((start, Bound::Unbounded)).map(|(_, m)| Arc::clone(m));
        let take = if max == 0 { usize::MAX } else { max };
        let page: Vec<_> = iter.by_ref().take(take).collect();
        let more = iter.next().is_some();
        (page, more)
    }
}
