//! `DESTS` as a `Table` last read it, kept up to date by the `Table`'s own
//! writes, with what `-a` asks of it answered without a scan: the same real
//! server's trashed slot (its flows resume), else the free slot of lowest
//! index, else the trashed slot of another real with the lowest index
//! (docs/SEMANTICS.md §4.5). Scanning 65,536 slots for every `-a` made a
//! `-R` of N real servers O(N × slots).

use std::collections::{BTreeMap, BTreeSet};

use lb_common::{DEST_F_AVAILABLE, DEST_F_IN_USE, Dest, ServiceKey};

use crate::model::RealId;

/// Who a trashed slot belonged to: (service key bytes, address, port).
type Owner = (Vec<u8>, lb_common::Addr, [u8; 2]);

#[derive(Debug, Clone)]
pub struct DestSlots {
    /// The slots below the high-water mark (`Settings::dests_used`); the
    /// ones above, up to `capacity`, were never used.
    slots: Vec<Dest>,
    capacity: u32,
    free: BTreeSet<u32>,
    trashed: BTreeSet<u32>,
    trashed_by_owner: BTreeMap<Owner, BTreeSet<u32>>,
}

enum Kind {
    Free,
    InService,
    Trashed(Owner),
}

fn kind(d: &Dest) -> Kind {
    if d.flags & DEST_F_IN_USE == 0 {
        Kind::Free
    } else if d.flags & DEST_F_AVAILABLE == 0 {
        Kind::Trashed((bytemuck::bytes_of(&d.svc).to_vec(), d.addr, d.port))
    } else {
        Kind::InService
    }
}

impl DestSlots {
    /// From the slots below the high-water mark, in a table of `capacity`.
    pub fn new(slots: Vec<Dest>, capacity: u32) -> DestSlots {
        let mut s = DestSlots {
            slots: Vec::new(),
            capacity,
            free: BTreeSet::new(),
            trashed: BTreeSet::new(),
            trashed_by_owner: BTreeMap::new(),
        };
        for (i, d) in slots.iter().enumerate() {
            s.add(i as u32, d);
        }
        s.slots = slots;
        s
    }

    fn add(&mut self, i: u32, d: &Dest) {
        match kind(d) {
            Kind::Free => {
                self.free.insert(i);
            }
            Kind::InService => {}
            Kind::Trashed(owner) => {
                self.trashed.insert(i);
                self.trashed_by_owner.entry(owner).or_default().insert(i);
            }
        }
    }

    fn forget(&mut self, i: u32) {
        let Some(old) = self.slots.get(i as usize) else {
            return;
        };
        match kind(old) {
            Kind::Free => {
                self.free.remove(&i);
            }
            Kind::InService => {}
            Kind::Trashed(owner) => {
                self.trashed.remove(&i);
                if let Some(set) = self.trashed_by_owner.get_mut(&owner) {
                    set.remove(&i);
                    if set.is_empty() {
                        self.trashed_by_owner.remove(&owner);
                    }
                }
            }
        }
    }

    pub fn get(&self, i: u32) -> Option<&Dest> {
        self.slots.get(i as usize)
    }

    /// Slot `i` was written with `d`.
    pub fn set(&mut self, i: u32, d: &Dest) {
        if i >= self.capacity {
            return;
        }
        while (i as usize) >= self.slots.len() {
            let n = self.slots.len() as u32;
            self.slots.push(Dest::default());
            self.free.insert(n);
        }
        self.forget(i);
        self.add(i, d);
        if let Some(s) = self.slots.get_mut(i as usize) {
            *s = *d;
        }
    }

    /// The slot for (service, real), and whether it resumes the same real
    /// server's old slot.
    pub fn pick(&self, key: &ServiceKey, real: &RealId) -> Option<(u32, bool)> {
        let owner = (
            bytemuck::bytes_of(key).to_vec(),
            crate::addr::to_addr(real.addr),
            real.port.to_be_bytes(),
        );
        if let Some(i) = self
            .trashed_by_owner
            .get(&owner)
            .and_then(|s| s.first().copied())
        {
            return Some((i, true));
        }
        let fresh = (self.slots.len() as u32) < self.capacity;
        self.free
            .first()
            .copied()
            .or(fresh.then_some(self.slots.len() as u32))
            .or_else(|| self.trashed.first().copied())
            .map(|i| (i, false))
    }

    /// Slots below the high-water mark.
    pub fn used(&self) -> u32 {
        self.slots.len() as u32
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use bytemuck::Zeroable;

    use super::*;

    fn real(last: u8) -> RealId {
        RealId {
            addr: Ipv4Addr::new(198, 51, 100, last).into(),
            port: 80,
        }
    }

    fn dest(key: &ServiceKey, r: &RealId, flags: u32) -> Dest {
        let mut d = Dest::zeroed();
        d.svc = *key;
        d.addr = crate::addr::to_addr(r.addr);
        d.port = r.port.to_be_bytes();
        d.flags = flags;
        d
    }

    /// The scan `pick` replaces, as `find_slot` did it.
    fn scan(slots: &[Dest], key: &ServiceKey, r: &RealId) -> Option<(u32, bool)> {
        let (mut free, mut trashed) = (None, None);
        for (i, d) in slots.iter().enumerate() {
            let i = i as u32;
            if d.flags & DEST_F_IN_USE == 0 {
                free = free.or(Some(i));
            } else if d.flags & DEST_F_AVAILABLE == 0 {
                if d.svc == *key
                    && d.addr == crate::addr::to_addr(r.addr)
                    && d.port == r.port.to_be_bytes()
                {
                    return Some((i, true));
                }
                trashed = trashed.or(Some(i));
            }
        }
        free.or(trashed).map(|i| (i, false))
    }

    #[test]
    fn picks_as_a_scan_of_every_slot_would() {
        let mut key = ServiceKey::zeroed();
        key.port = 80u16.to_be_bytes();
        let live = DEST_F_IN_USE | DEST_F_AVAILABLE;
        let mut s = DestSlots::new(vec![Dest::zeroed(); 2], 6);
        let mut all = vec![Dest::zeroed(); 6];
        let check = |s: &DestSlots, all: &[Dest]| {
            for last in 1..5 {
                assert_eq!(s.pick(&key, &real(last)), scan(all, &key, &real(last)));
            }
        };
        check(&s, &all);
        // Fill every slot, trash some, free one: each step agrees with the scan.
        let steps = [
            (0, 1, live),
            (1, 2, live),
            (2, 3, live),
            (3, 4, live),
            (4, 1, DEST_F_IN_USE),
            (5, 2, DEST_F_IN_USE),
            (1, 2, DEST_F_IN_USE),
            (0, 1, 0),
            (0, 3, live),
            (5, 2, live),
        ];
        for (i, last, flags) in steps {
            let d = dest(&key, &real(last), flags);
            s.set(i, &d);
            all[i as usize] = d;
            check(&s, &all);
        }
        assert_eq!(s.pick(&key, &real(1)), Some((4, true)));
        assert_eq!(s.pick(&key, &real(9)), Some((1, false)));
        assert_eq!(s.used(), 6);
    }

    #[test]
    fn slots_above_the_high_water_mark_are_free_and_taken_in_order() {
        let key = ServiceKey::zeroed();
        let live = DEST_F_IN_USE | DEST_F_AVAILABLE;
        let mut s = DestSlots::new(Vec::new(), 3);
        for i in 0..3 {
            assert_eq!(s.pick(&key, &real(1)), Some((i, false)));
            s.set(i, &dest(&key, &real(i as u8 + 1), live));
        }
        assert_eq!(s.pick(&key, &real(9)), None, "full");
        s.set(1, &dest(&key, &real(2), DEST_F_IN_USE));
        assert_eq!(s.pick(&key, &real(9)), Some((1, false)), "a trashed one");
        s.set(7, &dest(&key, &real(9), live));
        assert_eq!(s.used(), 3, "past the capacity: ignored");
    }
}
