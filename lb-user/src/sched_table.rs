//! The scheduler tables of a service, built by the controller.
//!
//! The packet path picks a real server for a new flow in O(1), with no loop
//! over the reals (lb-ebpf's `schedulers/`): the controller keeps the
//! service's dest list in LVS order (most recently added first) and
//! precomputes, whenever the list or a weight changes, what the kernel's
//! rr and wrr schedulers derive from it (`ip_vs_wrr_dest_changed`;
//! docs/SEMANTICS.md §5): the gcd `di`, `mw`, the `cw` a fresh CPU starts
//! with, the distinct weight levels and, per level, the next eligible
//! position after every position. `Service` (lb-common) documents each table.
//!
//! [`Table`](crate::Table) edits a service's list only through
//! [`push_front`] and [`remove`], then calls [`rebuild`].

use lb_common::{MAX_SERVICE_DESTS, SCHED_NONE, Service, ServiceDest, wrr_adjust_cw};

const fn gcd(a: u32, b: u32) -> u32 {
    let (mut a, mut b) = (a, b);
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// The number of valid entries of the dest list, bounded.
fn len(svc: &Service) -> usize {
    (svc.ndests as usize).min(MAX_SERVICE_DESTS)
}

/// Recomputes everything the schedulers derive from the dest list and
/// weights, as the kernel's `ip_vs_wrr_dest_changed` does, and bumps the
/// generation (so that every CPU applies the kernel's `cw` adjustment once).
/// `slot_of_pos` must already describe the list; call after every change of
/// `dests`/`ndests` or a weight.
pub fn rebuild(svc: &mut Service) {
    let n = len(svc);
    let dests = &svc.dests[..n];
    let g = dests
        .iter()
        .map(|d| d.weight)
        .filter(|&w| w > 0)
        .fold(0, |g, w| if g == 0 { w } else { gcd(w, g) });
    let max = dests.iter().map(|d| d.weight).max().unwrap_or(0);
    svc.di = if g == 0 { 1 } else { g };
    svc.mw = max.saturating_sub(svc.di - 1);
    svc.cw_seed = wrr_adjust_cw(svc.cw_seed, svc.di, svc.mw);

    // Distinct positive weights in units of di, ascending.
    let mut levels: Vec<u32> = dests
        .iter()
        .map(|d| d.weight / svc.di)
        .filter(|&u| u > 0)
        .collect();
    levels.sort_unstable();
    levels.dedup();
    svc.levels = [0; MAX_SERVICE_DESTS];
    svc.levels[..levels.len()].copy_from_slice(&levels);
    svc.nlevels = levels.len() as u32;

    // next[l][p]: the first position >= p whose weight reaches level l.
    svc.next = [[SCHED_NONE; MAX_SERVICE_DESTS]; MAX_SERVICE_DESTS];
    for (l, &level) in levels.iter().enumerate() {
        let mut nxt = SCHED_NONE;
        for p in (0..n).rev() {
            if svc.dests[p].weight / svc.di >= level {
                nxt = p as u8;
            }
            svc.next[l][p] = nxt;
        }
    }
    svc.pos_of_slot = [SCHED_NONE; MAX_SERVICE_DESTS];
    for p in 0..n {
        let s = svc.slot_of_pos[p] as usize;
        if s < MAX_SERVICE_DESTS {
            svc.pos_of_slot[s] = p as u8;
        }
    }
    svc.generation = svc.generation.wrapping_add(1);
}

/// A free per-service slot for a new dest (rr keeps its cursor as a slot).
pub fn free_slot(svc: &Service) -> Option<u8> {
    let used = &svc.slot_of_pos[..len(svc)];
    (0..MAX_SERVICE_DESTS as u8).find(|s| !used.contains(s))
}

/// Puts `sd` at the head of the list (the kernel's list is newest first)
/// with a free slot; `None`, and nothing changed, when the list is full.
/// Call [`rebuild`] afterwards.
pub fn push_front(svc: &mut Service, sd: ServiceDest) -> Option<()> {
    let n = len(svc);
    if n >= MAX_SERVICE_DESTS {
        return None;
    }
    let slot = free_slot(svc)?;
    svc.dests.copy_within(0..n, 1);
    svc.slot_of_pos.copy_within(0..n, 1);
    svc.dests[0] = sd;
    svc.slot_of_pos[0] = slot;
    svc.ndests = n as u32 + 1;
    Some(())
}

/// Takes the dest at `pos` out of the list (a `pos` past the end changes
/// nothing). Call [`rebuild`] afterwards.
pub fn remove(svc: &mut Service, pos: usize) {
    let n = len(svc);
    if pos >= n {
        return;
    }
    svc.dests.copy_within(pos + 1..n, pos);
    svc.slot_of_pos.copy_within(pos + 1..n, pos);
    svc.dests[n - 1] = ServiceDest::default();
    svc.slot_of_pos[n - 1] = SCHED_NONE;
    svc.ndests = n as u32 - 1;
}

/// The packet path's schedulers, compiled here from lb-ebpf's source: they
/// refer to nothing but lb-common, so the tests below run the very picks of
/// the XDP program over the tables built above.
#[cfg(test)]
#[path = "../../lb-ebpf/src/schedulers/mod.rs"]
mod packet_path;

#[cfg(test)]
mod tests {
    use super::*;
    use lb_common::{SCHED_RR, SCHED_WRR, SchedState};

    use super::packet_path::pick;

    /// A service as `Table` keeps it: the list newest-first, the tables
    /// rebuilt on every change.
    struct Svc(Service);

    impl Svc {
        fn new(sched: u32) -> Self {
            let mut s: Service = bytemuck::Zeroable::zeroed();
            s.sched = sched;
            s.epoch = 1;
            s.generation = 1;
            s.di = 1;
            s.slot_of_pos = [SCHED_NONE; MAX_SERVICE_DESTS];
            rebuild(&mut s);
            Svc(s)
        }
        fn add(&mut self, dest: u32, weight: u32) {
            push_front(&mut self.0, ServiceDest { dest, weight }).unwrap();
            rebuild(&mut self.0);
        }
        fn pos(&self, dest: u32) -> usize {
            self.0.dests[..len(&self.0)]
                .iter()
                .position(|d| d.dest == dest)
                .unwrap()
        }
        fn set_weight(&mut self, dest: u32, weight: u32) {
            let pos = self.pos(dest);
            self.0.dests[pos].weight = weight;
            rebuild(&mut self.0);
        }
        fn remove(&mut self, dest: u32) {
            let pos = self.pos(dest);
            remove(&mut self.0, pos);
            rebuild(&mut self.0);
        }
        fn picks(&self, st: &mut SchedState, n: usize) -> Vec<u32> {
            (0..n)
                .map(|_| match pick(&self.0, st) {
                    Some(i) => self.0.dests[i].dest,
                    None => 0,
                })
                .collect()
        }
    }

    fn fresh_cpu() -> SchedState {
        bytemuck::Zeroable::zeroed()
    }

    #[test]
    fn wrr_bookkeeping_follows_the_kernel() {
        let mut s = Svc::new(SCHED_WRR);
        // R1=4 alone: di=4, mw=1, cw (from 0) = 1.
        s.add(1, 4);
        assert_eq!((s.0.di, s.0.mw, s.0.cw_seed), (4, 1, 1));
        // + R2=3, R3=2 (list R3, R2, R1): di=1, mw=4, cw stays 1.
        s.add(2, 3);
        s.add(3, 2);
        assert_eq!((s.0.di, s.0.mw, s.0.cw_seed), (1, 4, 1));
        assert_eq!(&s.0.levels[..s.0.nlevels as usize], &[2, 3, 4]);
        // Level 0 (weight > 0) from position 0 is position 0; level 2
        // (weight >= 4) is only R1, at position 2.
        assert_eq!(s.0.next[0][0], 0);
        assert_eq!(s.0.next[2][0], 2);
        assert_eq!(s.0.next[1][2], 2);
        assert_eq!(s.0.next[2][3], SCHED_NONE);
        // All quiescent: mw = 0, no level.
        for d in 1..=3 {
            s.set_weight(d, 0);
        }
        assert_eq!((s.0.mw, s.0.nlevels), (0, 0));
    }

    #[test]
    fn every_change_bumps_the_generation() {
        let mut s = Svc::new(SCHED_WRR);
        let g = s.0.generation;
        s.add(1, 1);
        s.set_weight(1, 2);
        s.remove(1);
        assert_eq!(s.0.generation, g.wrapping_add(3));
    }

    #[test]
    fn slots_are_stable_and_reused() {
        let mut s = Svc::new(SCHED_RR);
        s.add(1, 1);
        s.add(2, 1);
        s.add(3, 1);
        // Newest first; slots in order of addition.
        assert_eq!(&s.0.slot_of_pos[..3], &[2, 1, 0]);
        s.remove(2);
        assert_eq!(&s.0.slot_of_pos[..3], &[2, 0, SCHED_NONE]);
        assert_eq!(s.0.pos_of_slot[..3], [1, SCHED_NONE, 0]);
        assert_eq!(free_slot(&s.0), Some(1));
        s.add(4, 1);
        assert_eq!(&s.0.slot_of_pos[..3], &[1, 2, 0]);
        // A full list takes no more, and is left as it was.
        let mut s = Svc::new(SCHED_RR);
        for d in 0..MAX_SERVICE_DESTS as u32 {
            s.add(d, 1);
        }
        let before = s.0;
        assert_eq!(free_slot(&s.0), None);
        assert_eq!(
            push_front(
                &mut s.0,
                ServiceDest {
                    dest: 99,
                    weight: 1
                }
            ),
            None
        );
        assert_eq!(s.0, before);
        // Removing past the end changes nothing.
        remove(&mut s.0, MAX_SERVICE_DESTS);
        assert_eq!(s.0, before);
    }

    #[test]
    fn wrr_432_added_in_order_matches_the_kernel() {
        // docs/SEMANTICS.md §5.2: R1=4, R2=3, R3=2 added in that order: the
        // first connections finish a cw=1 pass (R3, R2, R1), then the 9-cycle.
        let mut s = Svc::new(SCHED_WRR);
        s.add(1, 4);
        s.add(2, 3);
        s.add(3, 2);
        let got = s.picks(&mut fresh_cpu(), 3 + 9 + 9);
        let cycle = [1, 2, 1, 3, 2, 1, 3, 2, 1];
        let mut want = vec![3, 2, 1];
        want.extend(cycle);
        want.extend(cycle);
        assert_eq!(got, want);
    }

    #[test]
    fn wrr_opposite_order_and_gcd() {
        let mut s = Svc::new(SCHED_WRR);
        s.add(3, 2);
        s.add(2, 3);
        s.add(1, 4);
        // The start-up cw=1 pass (list order R1, R2, R3), then the cycle of §5.2.
        let all = s.picks(&mut fresh_cpu(), 12);
        assert_eq!(all, vec![1, 2, 3, 1, 1, 2, 1, 2, 3, 1, 2, 3]);

        let mut s = Svc::new(SCHED_WRR);
        s.add(2, 2);
        s.add(1, 4);
        let got = s.picks(&mut fresh_cpu(), 9);
        let ones = got.iter().filter(|d| **d == 1).count();
        assert_eq!(ones, 6, "4:2 weights give 2:1, {got:?}");
    }

    #[test]
    fn quiescent_dest_never_picked_and_all_zero_is_none() {
        for sched in [SCHED_RR, SCHED_WRR] {
            let mut s = Svc::new(sched);
            s.add(1, 1);
            s.add(2, 1);
            s.set_weight(2, 0);
            let mut st = fresh_cpu();
            assert!(s.picks(&mut st, 10).iter().all(|d| *d == 1));
            s.set_weight(1, 0);
            assert_eq!(pick(&s.0, &mut st), None);
        }
    }

    #[test]
    fn rr_walks_newest_first_and_survives_removal() {
        let mut s = Svc::new(SCHED_RR);
        s.add(1, 1);
        s.add(2, 1);
        s.add(3, 1);
        let mut st = fresh_cpu();
        assert_eq!(s.picks(&mut st, 6), vec![3, 2, 1, 3, 2, 1]);
        // Remove the cursor's dest (1 was the last pick).
        s.remove(1);
        assert_eq!(s.picks(&mut st, 4), vec![3, 2, 3, 2]);
    }

    #[test]
    fn wrr_uneven_and_huge_weights() {
        // 10:1 → ten passes where only A qualifies, then one with both.
        let mut s = Svc::new(SCHED_WRR);
        s.add(2, 1);
        s.add(1, 10);
        let got = s.picks(&mut fresh_cpu(), 2 + 11 * 3);
        let steady = &got[2..];
        for cycle in steady.chunks(11) {
            assert_eq!(cycle.iter().filter(|d| **d == 2).count(), 1, "{got:?}");
        }
        // Weights sharing a gcd (6:4 → 3:2 in units of 2).
        let mut s = Svc::new(SCHED_WRR);
        s.add(1, 6);
        s.add(2, 4);
        let got = s.picks(&mut fresh_cpu(), 500);
        let ones = got.iter().filter(|d| **d == 1).count();
        assert!((ones as i64 - 300).abs() <= 3, "{ones}");
        // The largest weights: still a pick on every call.
        let mut s = Svc::new(SCHED_WRR);
        s.add(1, lb_common::MAX_WEIGHT);
        s.add(2, lb_common::MAX_WEIGHT - 1);
        assert!(
            s.picks(&mut fresh_cpu(), 1000)
                .iter()
                .all(|d| *d == 1 || *d == 2)
        );
    }

    #[test]
    fn weights_123_are_proportional() {
        let mut s = Svc::new(SCHED_WRR);
        s.add(1, 1);
        s.add(2, 2);
        s.add(3, 3);
        let got = s.picks(&mut fresh_cpu(), 600);
        let count = |d| got.iter().filter(|x| **x == d).count();
        // Within one start-up pass of exact shares.
        assert!((count(1) as i64 - 100).abs() <= 3);
        assert!((count(2) as i64 - 200).abs() <= 3);
        assert!((count(3) as i64 - 300).abs() <= 3);
    }
}
