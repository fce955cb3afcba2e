//! Room in `SVC_DESTS` for the services' dest lists: a buddy allocator of
//! blocks whose sizes are powers of two (a service of n reals takes
//! `2 * n.next_power_of_two()` entries, lb-common's `ServiceDest` says why).
//!
//! The allocator lives in the controller only. A `Table` builds it from the
//! blocks the services in `SERVICES` hold (everything else is free), so
//! nothing about it is stored in the maps. A service's list is never changed
//! in place: the new list is written to a new block, the `Service` value is
//! replaced to point at it, and only then is the old block freed
//! (docs/ARCHITECTURE.md §6). A freed block becomes usable again only after
//! [`GRACE`], long after any packet that read the old `Service` value has
//! left the program (a packet spends microseconds in it).

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

/// How long a freed block stays unused.
pub const GRACE: Duration = Duration::from_millis(10);

/// Blocks of `SVC_DESTS`: free ones by order (log2 of their size), and
/// freed ones still in their grace period.
#[derive(Debug, Clone)]
pub struct ListPool {
    size: u32,
    free: Vec<BTreeSet<u32>>,
    pending: Vec<(u32, u32, Instant)>,
}

const ORDERS: usize = 33;

fn order_of(len: u32) -> u32 {
    len.next_power_of_two().trailing_zeros()
}

impl ListPool {
    /// A pool of `size` entries where the blocks `used` (offset, length) are
    /// taken. Blocks that overlap each other or the end are ignored (the
    /// caller refuses such a table before it gets here).
    pub fn new(size: u32, used: impl IntoIterator<Item = (u32, u32)>) -> ListPool {
        let mut taken: Vec<(u64, u64)> = used
            .into_iter()
            .filter(|&(_, len)| len > 0)
            .map(|(off, len)| (off as u64, off as u64 + len as u64))
            .collect();
        taken.sort_unstable();
        let mut pool = ListPool {
            size,
            free: vec![BTreeSet::new(); ORDERS],
            pending: Vec::new(),
        };
        let mut at = 0u64;
        for (start, end) in taken {
            if start > at {
                pool.add_gap(at, start.min(size as u64));
            }
            at = at.max(end);
        }
        if at < size as u64 {
            pool.add_gap(at, size as u64);
        }
        pool
    }

    /// Adds `[from, to)` as maximal aligned power-of-two free blocks.
    fn add_gap(&mut self, mut from: u64, to: u64) {
        while from < to {
            let align = if from == 0 { 63 } else { from.trailing_zeros() };
            let fit = 63 - (to - from).leading_zeros();
            let order = align.min(fit).min(ORDERS as u32 - 1);
            self.free[order as usize].insert(from as u32);
            from += 1u64 << order;
        }
    }

    /// The entries of the pool.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Free entries, the grace period's included.
    pub fn free_entries(&self) -> u64 {
        let free: u64 = self
            .free
            .iter()
            .enumerate()
            .map(|(o, s)| (s.len() as u64) << o)
            .sum();
        let pending: u64 = self.pending.iter().map(|&(_, o, _)| 1u64 << o).sum();
        free + pending
    }

    /// A block of `len` entries (a power of two), aligned to its size; it
    /// waits for blocks in their grace period when nothing else is free.
    /// `None` when the pool has no room.
    pub fn alloc(&mut self, len: u32) -> Option<u32> {
        let order = order_of(len.max(1));
        loop {
            self.reclaim(Instant::now());
            if let Some(off) = self.take(order) {
                return Some(off);
            }
            let oldest = self.pending.iter().map(|&(_, _, t)| t).min()?;
            std::thread::sleep((oldest + GRACE).saturating_duration_since(Instant::now()));
        }
    }

    fn take(&mut self, order: u32) -> Option<u32> {
        let from = (order as usize..ORDERS).find(|&o| !self.free[o].is_empty())?;
        let off = self.free[from].pop_first()?;
        for o in (order as usize..from).rev() {
            self.free[o].insert(off + (1u32 << o));
        }
        Some(off)
    }

    /// Gives back the block at `off` of `len` entries, usable again after
    /// [`GRACE`].
    pub fn free(&mut self, off: u32, len: u32) {
        self.pending
            .push((off, order_of(len.max(1)), Instant::now()));
    }

    fn reclaim(&mut self, now: Instant) {
        let (ripe, waiting): (Vec<_>, Vec<_>) = self
            .pending
            .drain(..)
            .partition(|&(_, _, t)| now.duration_since(t) >= GRACE);
        self.pending = waiting;
        for (off, order, _) in ripe {
            self.release(off, order);
        }
    }

    /// Puts a block back, merged with its free buddies.
    fn release(&mut self, mut off: u32, mut order: u32) {
        while (order as usize) < ORDERS - 1 {
            let buddy = off ^ (1u32 << order);
            if !self.free[order as usize].remove(&buddy) {
                break;
            }
            off = off.min(buddy);
            order += 1;
        }
        self.free[order as usize].insert(off);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(p: &ListPool) -> Vec<(u32, u32)> {
        let mut v: Vec<(u32, u32)> = p
            .free
            .iter()
            .enumerate()
            .flat_map(|(o, s)| s.iter().map(move |&off| (off, 1u32 << o)))
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn free_space_is_what_the_services_do_not_hold() {
        let p = ListPool::new(32, [(8, 8), (2, 2)]);
        assert_eq!(blocks(&p), vec![(0, 2), (4, 4), (16, 16)]);
        assert_eq!(p.free_entries(), 22);
        // A size that is not a power of two.
        let p = ListPool::new(12, []);
        assert_eq!(blocks(&p), vec![(0, 8), (8, 4)]);
    }

    #[test]
    fn blocks_are_aligned_and_disjoint_until_the_pool_is_full() {
        let mut p = ListPool::new(64, []);
        let mut got = Vec::new();
        for len in [2, 8, 4, 2, 16, 32] {
            match p.alloc(len) {
                Some(off) => {
                    assert_eq!(off % len, 0, "aligned");
                    got.push((off, off + len));
                }
                None => assert_eq!(len, 32, "only the last one cannot fit"),
            }
        }
        got.sort_unstable();
        assert!(got.windows(2).all(|w| w[0].1 <= w[1].0), "{got:?}");
        assert_eq!(p.alloc(64), None);
    }

    #[test]
    fn a_freed_block_waits_out_its_grace_then_merges_back() {
        let mut p = ListPool::new(8, []);
        let a = p.alloc(8).unwrap();
        p.free(a, 8);
        assert_eq!(blocks(&p), vec![]);
        let t = Instant::now();
        // Nothing else is free: the allocation waits for the grace period.
        assert_eq!(p.alloc(4), Some(0));
        assert!(t.elapsed() >= GRACE);
        p.free(0, 4);
        p.reclaim(Instant::now() + GRACE);
        assert_eq!(blocks(&p), vec![(0, 8)], "buddies merged");
    }
}
