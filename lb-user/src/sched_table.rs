//! The scheduler data of a service, built by the controller.
//!
//! The packet path picks a real server for a new flow without a loop over
//! the reals (lb-ebpf's `schedulers/`): the controller keeps the service's
//! dest list in LVS order (most recently added first) and, whenever the
//! list or a weight changes, writes it as a new block of `SVC_DESTS` with a
//! max-tree of the weights above it ([`block`]; lb-common's `ServiceDest`
//! documents the layout), and recomputes what the kernel's wrr scheduler
//! derives from the weights (`ip_vs_wrr_dest_changed`; docs/SEMANTICS.md
//! §5): the gcd `di`, `mw`, and the `cw` a fresh CPU starts with
//! ([`dests_changed`]).
//!
//! [`Table`](crate::Table) edits a service's list (a `Vec` it keeps) and
//! calls both.

use lb_common::{MAX_SERVICE_DESTS, NO_DEST, Service, ServiceDest, wrr_adjust_cw};

const fn gcd(a: u32, b: u32) -> u32 {
    let (mut a, mut b) = (a, b);
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// Leaves of the block of a list of `n` dests: a power of two, at least 1.
pub fn cap_for(n: usize) -> u32 {
    n.clamp(1, MAX_SERVICE_DESTS).next_power_of_two() as u32
}

/// The block of `SVC_DESTS` for `list`: `2 * cap` entries, the dests at
/// `cap + pos`, empty leaves after them, and above them every inner node
/// holding the largest weight below it.
pub fn block(list: &[ServiceDest]) -> Vec<ServiceDest> {
    let cap = cap_for(list.len()) as usize;
    let empty = ServiceDest {
        dest: NO_DEST,
        weight: 0,
    };
    let mut b = vec![empty; 2 * cap];
    for (pos, sd) in list.iter().take(cap).enumerate() {
        b[cap + pos] = *sd;
    }
    for i in (1..cap).rev() {
        b[i].weight = b[2 * i].weight.max(b[2 * i + 1].weight);
    }
    b
}

/// After a change of the dest list or a weight: the list's length and
/// block size, and the wrr bookkeeping recomputed as the kernel's
/// `ip_vs_wrr_dest_changed` does; bumps the generation, so that every CPU
/// applies the kernel's `cw` adjustment once.
pub fn dests_changed(svc: &mut Service, list: &[ServiceDest]) {
    let g = list
        .iter()
        .map(|d| d.weight)
        .filter(|&w| w > 0)
        .fold(0, |g, w| if g == 0 { w } else { gcd(w, g) });
    let max = list.iter().map(|d| d.weight).max().unwrap_or(0);
    svc.di = if g == 0 { 1 } else { g };
    svc.mw = max.saturating_sub(svc.di - 1);
    svc.cw_seed = wrr_adjust_cw(svc.cw_seed, svc.di, svc.mw);
    svc.ndests = list.len() as u32;
    svc.cap = cap_for(list.len());
    svc.generation = svc.generation.wrapping_add(1);
}

/// The packet path's schedulers, compiled here from lb-ebpf's source: they
/// refer to nothing but lb-common, so the tests below run the very picks of
/// the XDP program over the tables built above, and `lbctl whereis`
/// (`crate::whereis`) runs them over the pinned maps.
#[path = "../../lb-ebpf/src/schedulers/mod.rs"]
pub mod packet_path;

#[cfg(test)]
mod counted;

#[cfg(test)]
mod tests {
    use super::*;
    use lb_common::{MhTable, SCHED_RR, SCHED_WRR, SchedState, ShTable};

    use super::packet_path::{Client, Nodes, first_at_least, pick};

    /// A service as `Table` keeps it: the list newest-first, the block and
    /// bookkeeping rebuilt on every change.
    struct Svc {
        svc: Service,
        list: Vec<ServiceDest>,
        block: Vec<ServiceDest>,
    }

    impl Nodes for Svc {
        fn node(&self, _svc: &Service, i: u32) -> Option<ServiceDest> {
            self.block.get(i as usize).copied()
        }
        fn dest_rank(&self, dest: u32) -> Option<u32> {
            let p = self.list.iter().position(|d| d.dest == dest)?;
            Some((self.list.len() - 1 - p) as u32)
        }
        fn sh_table(&self, _svc: &Service) -> Option<&ShTable> {
            None
        }
        fn mh_table(&self, _svc: &Service) -> Option<&MhTable> {
            None
        }
        fn conns(&self, _dest: u32) -> Option<lb_common::DestConns> {
            Some(lb_common::DestConns::default())
        }
        fn random(&self) -> u32 {
            0
        }
    }

    impl Svc {
        fn new(sched: u32) -> Self {
            let mut svc: Service = bytemuck::Zeroable::zeroed();
            svc.sched = sched;
            svc.epoch = 1;
            svc.generation = 1;
            svc.di = 1;
            let mut s = Svc {
                svc,
                list: Vec::new(),
                block: Vec::new(),
            };
            s.changed();
            s
        }
        fn changed(&mut self) {
            dests_changed(&mut self.svc, &self.list);
            self.block = block(&self.list);
        }
        fn add(&mut self, dest: u32, weight: u32) {
            self.list.insert(0, ServiceDest { dest, weight });
            self.changed();
        }
        fn pos(&self, dest: u32) -> usize {
            self.list.iter().position(|d| d.dest == dest).unwrap()
        }
        fn set_weight(&mut self, dest: u32, weight: u32) {
            let pos = self.pos(dest);
            self.list[pos].weight = weight;
            self.changed();
        }
        fn remove(&mut self, dest: u32) {
            let pos = self.pos(dest);
            self.list.remove(pos);
            self.changed();
        }
        fn pick(&self, st: &mut SchedState) -> Option<u32> {
            let client = Client {
                addr: [192, 0, 2, 1],
                port: [0, 1],
            };
            pick(&self.svc, st, self, &client).map(|p| {
                assert_eq!(self.list[p.pos as usize].dest, p.dest, "pos and dest agree");
                p.dest
            })
        }
        fn picks(&self, st: &mut SchedState, n: usize) -> Vec<u32> {
            (0..n).map(|_| self.pick(st).unwrap_or(0)).collect()
        }
    }

    fn fresh_cpu() -> SchedState {
        let mut st: SchedState = bytemuck::Zeroable::zeroed();
        st.rr_dest = NO_DEST;
        st
    }

    #[test]
    fn wrr_bookkeeping_follows_the_kernel() {
        let mut s = Svc::new(SCHED_WRR);
        // R1=4 alone: di=4, mw=1, cw (from 0) = 1.
        s.add(1, 4);
        assert_eq!((s.svc.di, s.svc.mw, s.svc.cw_seed), (4, 1, 1));
        // + R2=3, R3=2 (list R3, R2, R1): di=1, mw=4, cw stays 1.
        s.add(2, 3);
        s.add(3, 2);
        assert_eq!((s.svc.di, s.svc.mw, s.svc.cw_seed), (1, 4, 1));
        assert_eq!((s.svc.ndests, s.svc.cap), (3, 4));
        // All quiescent: mw = 0, nothing to pick.
        for d in 1..=3 {
            s.set_weight(d, 0);
        }
        assert_eq!(s.svc.mw, 0);
        assert_eq!(s.pick(&mut fresh_cpu()), None);
    }

    #[test]
    fn the_block_is_the_list_under_a_max_tree() {
        let mut s = Svc::new(SCHED_WRR);
        s.add(1, 4);
        s.add(2, 3);
        s.add(3, 2);
        // cap 4: leaves 4..8 are R3, R2, R1 and an empty one; 2 and 3 hold
        // the larger weight of their pairs, 1 the largest of all.
        let w: Vec<u32> = s.block.iter().map(|n| n.weight).collect();
        assert_eq!(w, vec![0, 4, 3, 4, 2, 3, 4, 0]);
        let d: Vec<u32> = s.block[4..].iter().map(|n| n.dest).collect();
        assert_eq!(d, vec![3, 2, 1, NO_DEST]);
        assert!(s.block[1..4].iter().all(|n| n.dest == NO_DEST));
        // One dest: a block of two entries.
        let mut one = Svc::new(SCHED_RR);
        one.add(7, 1);
        assert_eq!((one.svc.cap, one.block.len()), (1, 2));
        assert_eq!(one.block[1], ServiceDest { dest: 7, weight: 1 });
    }

    #[test]
    fn every_change_bumps_the_generation() {
        let mut s = Svc::new(SCHED_WRR);
        let g = s.svc.generation;
        s.add(1, 1);
        s.set_weight(1, 2);
        s.remove(1);
        assert_eq!(s.svc.generation, g.wrapping_add(3));
    }

    #[test]
    fn first_at_least_is_a_scan_of_the_list() {
        // Every start and threshold over lists of every length up to 40,
        // against the linear scan the kernel does.
        let mut x: u32 = 12345;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        for n in 0..40u32 {
            let mut s = Svc::new(SCHED_WRR);
            for d in 0..n {
                let w = if rnd() % 4 == 0 { 0 } else { rnd() % 9 };
                s.add(d, w);
            }
            for start in 0..=n + 1 {
                for w in 1..11 {
                    let want = s
                        .list
                        .iter()
                        .enumerate()
                        .skip(start as usize)
                        .find(|(_, d)| d.weight >= w)
                        .map(|(p, d)| (p as u32, d.dest));
                    let got = first_at_least(&s.svc, &s, start, w).map(|p| (p.pos, p.dest));
                    assert_eq!(got, want, "n={n} start={start} w={w}");
                }
            }
        }
    }

    #[test]
    fn a_thousand_reals_take_their_turns() {
        // IPVS has no limit on the reals of a service; here 1,024 and more
        // are picked in the kernel's rr order, each exactly once a round.
        let mut s = Svc::new(SCHED_RR);
        for d in 0..1500 {
            s.add(d, 1);
        }
        let mut st = fresh_cpu();
        let got = s.picks(&mut st, 3000);
        let want: Vec<u32> = (0..1500).rev().chain((0..1500).rev()).collect();
        assert_eq!(got, want);
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
            assert_eq!(s.pick(&mut st), None);
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
