//! Which services exist and which service indexes are free, as a `Table`
//! last read them from `SERVICES`, kept up to date by the `Table`'s own
//! writes. `-A` needs both (is the service new? the lowest free index), and
//! so do the VIP filter and the port-0 flag after every `-A`/`-D`: reading
//! the whole `SERVICES` map for each of them made a `-R` of N services cost
//! O(N²) system calls. A `Table` holds the pin directory's lock for its whole
//! life, so no other controller writes `SERVICES` behind its back, and the
//! packet path never writes it (docs/ARCHITECTURE.md §5, §6).

use std::collections::{BTreeMap, BTreeSet};

use crate::model::ServiceId;

/// The services (id → index in the per-service maps) and the free indexes.
#[derive(Debug, Clone)]
pub struct SvcIndex {
    ids: BTreeMap<ServiceId, u32>,
    free: BTreeSet<u32>,
}

impl SvcIndex {
    /// From the services as read, with indexes `0..max` available.
    pub fn new(services: impl IntoIterator<Item = (ServiceId, u32)>, max: u32) -> SvcIndex {
        let ids: BTreeMap<ServiceId, u32> = services.into_iter().collect();
        let used: BTreeSet<u32> = ids.values().copied().collect();
        let free = (0..max).filter(|i| !used.contains(i)).collect();
        SvcIndex { ids, free }
    }

    pub fn contains(&self, id: &ServiceId) -> bool {
        self.ids.contains_key(id)
    }

    /// The lowest free index: the one a new service gets.
    pub fn first_free(&self) -> Option<u32> {
        self.free.first().copied()
    }

    pub fn ids(&self) -> impl Iterator<Item = &ServiceId> {
        self.ids.keys()
    }

    /// `id` was written with index `index` (added or edited).
    pub fn written(&mut self, id: ServiceId, index: u32) {
        if let Some(old) = self.ids.insert(id, index)
            && old != index
        {
            self.free.insert(old);
        }
        self.free.remove(&index);
    }

    /// `id` was deleted.
    pub fn deleted(&mut self, id: &ServiceId) {
        if let Some(index) = self.ids.remove(id) {
            self.free.insert(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::model::Proto;

    fn sid(port: u16) -> ServiceId {
        ServiceId {
            proto: Proto::Tcp,
            addr: Ipv4Addr::new(203, 0, 113, 10).into(),
            port,
        }
    }

    #[test]
    fn indexes_are_reused_lowest_first_as_a_full_read_would_choose() {
        let mut ix = SvcIndex::new([(sid(80), 0), (sid(81), 2)], 4);
        assert_eq!(ix.first_free(), Some(1));
        ix.written(sid(82), 1);
        assert_eq!(ix.first_free(), Some(3));
        ix.deleted(&sid(80));
        assert_eq!(ix.first_free(), Some(0));
        assert!(!ix.contains(&sid(80)));
        assert!(ix.contains(&sid(82)));
        ix.written(sid(83), 0);
        ix.written(sid(84), 3);
        assert_eq!(ix.first_free(), None, "all four indexes are taken");
        // An edit rewrites the same index and frees nothing.
        ix.written(sid(84), 3);
        assert_eq!(ix.first_free(), None);
        assert_eq!(ix.ids().count(), 4);
    }
}
