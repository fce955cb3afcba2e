//! The counting schedulers of the packet path (lc, wlc, sed, nq, fo, ovf,
//! twos) and rr's and wrr's way past overloaded dests, run over the blocks
//! the controller builds, against the kernel's rules (docs/SEMANTICS.md §5).

use std::cell::Cell;
use std::collections::HashMap;

use lb_common::{
    DestConns, MhTable, NO_DEST, SCHED_FO, SCHED_LC, SCHED_NQ, SCHED_OVF, SCHED_RR, SCHED_SED,
    SCHED_TWOS, SCHED_WLC, SCHED_WRR, SchedState, Service, ServiceDest, ShTable,
};

use super::packet_path::{Client, Nodes, pick};
use super::{block, dests_changed};

/// A service as `Table` keeps it, with each dest's counts (`DEST_CONNS`,
/// `overloaded` already resolved to 0/1) and a seeded random source.
struct Svc {
    svc: Service,
    list: Vec<ServiceDest>,
    block: Vec<ServiceDest>,
    conns: HashMap<u32, DestConns>,
    rng: Cell<u64>,
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
    fn conns(&self, dest: u32) -> Option<DestConns> {
        Some(self.conns.get(&dest).copied().unwrap_or_default())
    }
    fn random(&self) -> u32 {
        // xorshift64*, seeded per test.
        let mut x = self.rng.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng.set(x);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
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
            conns: HashMap::new(),
            rng: Cell::new(0x9e37_79b9_7f4a_7c15),
        };
        s.changed();
        s
    }
    fn changed(&mut self) {
        dests_changed(&mut self.svc, &self.list);
        self.block = block(&self.list);
    }
    /// Adds `dest` at the head of the list, as IPVS does.
    fn add(&mut self, dest: u32, weight: u32) {
        self.list.insert(0, ServiceDest { dest, weight });
        self.changed();
    }
    fn set_weight(&mut self, dest: u32, weight: u32) {
        let pos = self.list.iter().position(|d| d.dest == dest).unwrap();
        self.list[pos].weight = weight;
        self.changed();
    }
    fn counts(&mut self, dest: u32) -> &mut DestConns {
        self.conns.entry(dest).or_default()
    }
    fn set(&mut self, dest: u32, active: u32, inactive: u32) {
        let c = self.counts(dest);
        c.active = active;
        c.inactive = inactive;
    }
    fn overload(&mut self, dest: u32, on: bool) {
        self.counts(dest).overloaded = on as u32;
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
    fn pick1(&self) -> Option<u32> {
        self.pick(&mut fresh_cpu())
    }
    /// `n` picks, each new conn held (active, as an established TCP conn).
    fn held(&mut self, n: usize) -> Vec<u32> {
        let mut st = fresh_cpu();
        (0..n)
            .map(|_| {
                let d = self.pick(&mut st).expect("a pick");
                self.counts(d).active += 1;
                d
            })
            .collect()
    }
}

fn fresh_cpu() -> SchedState {
    let mut st: SchedState = bytemuck::Zeroable::zeroed();
    st.rr_dest = NO_DEST;
    st
}

#[test]
fn wlc_golden_sequence_of_the_kernel() {
    // docs/SEMANTICS.md §5.4: R1 w=1 then R2 w=3 (list R2, R1), every conn
    // held: 256·1 > 0·3 sends the second to R1, then R2 until 1024 > 768.
    let mut s = Svc::new(SCHED_WLC);
    s.add(1, 1);
    s.add(2, 3);
    assert_eq!(s.held(8), vec![2, 1, 2, 2, 2, 1, 2, 2]);
    // Over many conns, 3:1.
    let more = s.held(400);
    let ones = more.iter().filter(|d| **d == 1).count();
    assert!((ones as i64 - 100).abs() <= 2, "{ones}");
}

#[test]
fn wlc_counts_inactive_conns_a_256th_and_ties_keep_the_list_order() {
    let mut s = Svc::new(SCHED_WLC);
    s.add(1, 1);
    s.add(2, 1);
    s.add(3, 1);
    // All equal: the head (the newest, 3).
    assert_eq!(s.pick1(), Some(3));
    // 3 has one active conn (256), 2 has 255 inactive: 2.
    s.set(3, 1, 0);
    s.set(2, 0, 255);
    s.set(1, 0, 256);
    assert_eq!(s.pick1(), Some(2));
    // 2 at 256 too: a three-way tie, the earliest (3).
    s.set(2, 0, 256);
    assert_eq!(s.pick1(), Some(3));
    // Weight 0 never wins, even idle; overloaded is skipped, even idle.
    s.set(1, 0, 0);
    s.set_weight(1, 0);
    assert_eq!(s.pick1(), Some(3));
    s.set_weight(1, 1);
    s.overload(1, true);
    assert_eq!(s.pick1(), Some(3));
    s.overload(1, false);
    assert_eq!(s.pick1(), Some(1));
    // Nothing available: no pick.
    for d in 1..=3 {
        s.overload(d, true);
    }
    assert_eq!(s.pick1(), None);
}

/// Whether `a × b > c × d` turns when the products are taken in 32 bits.
fn wraps_in_32_bits(a: u64, b: u64, c: u64, d: u64) -> bool {
    let wide = a * b > c * d;
    let narrow = (a as u32).wrapping_mul(b as u32) > (c as u32).wrapping_mul(d as u32);
    wide != narrow
}

#[test]
fn wlc_and_sed_compare_in_64_bits() {
    // Equal loads, the second dest much heavier: it wins, by
    // overhead(least) × w(d) > overhead(d) × w(least) in 64 bits; in 32
    // bits the products wrap and the lighter dest would keep the conn.
    let mut s = Svc::new(SCHED_WLC);
    s.add(1, 65535);
    s.add(2, 3000);
    // List 2 (w 3000), 1 (w 65535), both at 5,000 active conns.
    s.set(2, 5000, 0);
    s.set(1, 5000, 0);
    assert!(wraps_in_32_bits(5000 << 8, 65535, 5000 << 8, 3000));
    assert_eq!(s.pick1(), Some(1));
    // sed: (active + 1) × weight, the same.
    s.svc.sched = SCHED_SED;
    s.set(2, 66533, 0);
    s.set(1, 66533, 0);
    assert!(wraps_in_32_bits(66534, 65535, 66534, 3000));
    assert_eq!(s.pick1(), Some(1));
    // And nq, with nobody idle.
    s.svc.sched = SCHED_NQ;
    assert_eq!(s.pick1(), Some(1));
}

#[test]
fn lc_takes_the_least_overhead_with_ties_to_the_earlier() {
    let mut s = Svc::new(SCHED_LC);
    s.add(1, 1);
    s.add(2, 5);
    s.add(3, 1);
    // List 3, 2, 1; weights do not matter to lc (only weight 0 does).
    s.set(3, 1, 0); // 256
    s.set(2, 0, 300); // 300
    s.set(1, 0, 256); // 256: ties with 3, 3 is earlier
    assert_eq!(s.pick1(), Some(3));
    s.set(1, 0, 255);
    assert_eq!(s.pick1(), Some(1));
    s.set_weight(1, 0);
    assert_eq!(s.pick1(), Some(3));
    s.overload(3, true);
    assert_eq!(s.pick1(), Some(2));
    // Held conns: equal weights or not, lc alternates by count.
    let mut s = Svc::new(SCHED_LC);
    s.add(1, 1);
    s.add(2, 100);
    assert_eq!(s.held(6), vec![2, 1, 2, 1, 2, 1]);
}

#[test]
fn sed_counts_the_next_conn_and_ignores_inactive_ones() {
    // A w=1, B w=3 (list B, A), conns held: (a+1)·3 > (b+1)·1 decides.
    // Picks: B (1·3 > 1·1? no: 1·1... ties to B), B, B, then A...
    let mut s = Svc::new(SCHED_SED);
    s.add(1, 1);
    s.add(2, 3);
    // b=0: least B (1/3); A: 1·1 > 1·3? no → B. b=1: 2·1 > 1·3? no → B.
    // b=2: 3·1 > 1·3? no → B. b=3: 4·1 > 1·3 → A. a=1: B 4 vs A 2:
    // 4·1 > 2·3? no → B. b=4: 5 > 6? no → B. b=5: 6 > 6? no → B. b=6: 7 > 6 → A.
    assert_eq!(s.held(8), vec![2, 2, 2, 1, 2, 2, 2, 1]);
    // Inactive conns do not count: a pile of them on B changes nothing.
    let mut s = Svc::new(SCHED_SED);
    s.add(1, 1);
    s.add(2, 3);
    s.set(2, 0, 100_000);
    assert_eq!(s.pick1(), Some(2));
    // wlc would take A there.
    s.svc.sched = SCHED_WLC;
    assert_eq!(s.pick1(), Some(1));
}

#[test]
fn nq_sends_to_the_first_idle_dest_else_as_sed() {
    let mut s = Svc::new(SCHED_NQ);
    s.add(1, 1);
    s.add(2, 3);
    s.add(3, 1);
    // List 3, 2, 1. 3 busy; 2 idle (the first idle) wins over 1 idle.
    s.set(3, 1, 0);
    assert_eq!(s.pick1(), Some(2));
    // Idle is about active conns only.
    s.set(3, 0, 5000);
    assert_eq!(s.pick1(), Some(3));
    // Nobody idle: sed's (a+1)/w. 3: 2/1, 2: 4/3, 1: 2/1 → 2.
    s.set(3, 1, 0);
    s.set(2, 3, 0);
    s.set(1, 1, 0);
    assert_eq!(s.pick1(), Some(2));
    // An idle dest beats a lighter sed cost; overloaded or weight 0 idle
    // dests do not count.
    s.set(2, 1, 0);
    s.set(1, 0, 0);
    s.overload(1, true);
    assert_eq!(s.pick1(), Some(2), "1 is idle but overloaded");
    s.overload(1, false);
    s.set_weight(1, 0);
    assert_eq!(s.pick1(), Some(2), "1 is idle but quiescent");
    s.set_weight(1, 1);
    assert_eq!(s.pick1(), Some(1));
    // Held conns from empty: each idle dest once, in list order, then sed.
    let mut s = Svc::new(SCHED_NQ);
    s.add(1, 1);
    s.add(2, 3);
    // 2, 1 idle in turn; then B stays least while (b+1)·1 > 2·3 is false,
    // up to b = 5 (6 > 6 is false); at b = 6 (7 > 6) A.
    assert_eq!(s.held(8), vec![2, 1, 2, 2, 2, 2, 2, 1]);
}

#[test]
fn fo_takes_the_highest_weight_and_ties_go_to_the_newest() {
    let mut s = Svc::new(SCHED_FO);
    s.add(1, 5);
    s.add(2, 3);
    s.add(3, 5);
    // List 3, 2, 1: 3 and 1 tie at 5, 3 (added last) is first.
    assert_eq!(s.held(3), vec![3, 3, 3], "conns do not move fo");
    s.overload(3, true);
    assert_eq!(s.pick1(), Some(1));
    s.set_weight(1, 0);
    assert_eq!(s.pick1(), Some(2));
    s.set_weight(2, 0);
    assert_eq!(s.pick1(), None);
}

#[test]
fn ovf_fills_the_highest_weight_then_overflows() {
    let mut s = Svc::new(SCHED_OVF);
    s.add(1, 2);
    s.add(2, 1);
    s.add(3, 0);
    // List 3 (w 0, never), 2 (w 1), 1 (w 2). 1 takes active 0, 1, 2 (up to
    // weight + 1 = 3 conns), then 2 takes 2, then nobody.
    assert_eq!(s.held(5), vec![1, 1, 1, 2, 2]);
    assert_eq!(s.pick1(), None);
    // Inactive conns do not count.
    s.set(1, 0, 1000);
    assert_eq!(s.pick1(), Some(1));
    // Equal weights: the earlier.
    s.set_weight(2, 2);
    s.set(2, 0, 0);
    assert_eq!(s.pick1(), Some(2));
    s.overload(2, true);
    assert_eq!(s.pick1(), Some(1));
}

#[test]
fn twos_draws_by_weight_and_keeps_the_less_loaded() {
    // Idle dests: the first draw's dest unless the second is strictly less
    // loaded per weight, which it never is when all are idle. So the share
    // of a dest is its weight's share of Σw + 1, the first dest of the list
    // taking the extra draw (r = 0).
    let mut s = Svc::new(SCHED_TWOS);
    s.add(1, 1);
    s.add(2, 2);
    s.add(3, 5);
    // List 3 (w 5), 2 (w 2), 1 (w 1): Σw + 1 = 9; r ≤ 5 → 3 (6/9), r in
    // 6..=7 → 2 (2/9), r = 8 → 1 (1/9).
    let n = 18_000;
    let mut got = HashMap::new();
    for _ in 0..n {
        *got.entry(s.pick1().unwrap()).or_insert(0) += 1;
    }
    let share = |d| got.get(&d).copied().unwrap_or(0) as f64 / n as f64;
    assert!((share(3) - 6.0 / 9.0).abs() < 0.02, "{got:?}");
    assert!((share(2) - 2.0 / 9.0).abs() < 0.02, "{got:?}");
    assert!((share(1) - 1.0 / 9.0).abs() < 0.02, "{got:?}");
    // Load shifts picks to the less loaded of the two: with 3 busy, it wins
    // only when both draws are 3 (prob (6/9)^2).
    s.set(3, 10, 0);
    let mut threes = 0;
    for _ in 0..n {
        threes += (s.pick1() == Some(3)) as usize;
    }
    let p = threes as f64 / n as f64;
    assert!((p - 36.0 / 81.0).abs() < 0.02, "{p}");
    // Weight 0 and overloaded dests are never drawn.
    s.set_weight(3, 0);
    s.overload(2, true);
    for _ in 0..200 {
        assert_eq!(s.pick1(), Some(1));
    }
    s.overload(1, true);
    assert_eq!(s.pick1(), None);
}

#[test]
fn rr_skips_an_overloaded_dest_and_comes_back_to_it() {
    let mut s = Svc::new(SCHED_RR);
    for d in 1..=4 {
        s.add(d, 1);
    }
    let mut st = fresh_cpu();
    assert_eq!(s.pick(&mut st), Some(4));
    s.overload(3, true);
    s.overload(2, true);
    let got: Vec<_> = (0..4).map(|_| s.pick(&mut st).unwrap()).collect();
    assert_eq!(got, vec![1, 4, 1, 4]);
    s.overload(2, false);
    let got: Vec<_> = (0..3).map(|_| s.pick(&mut st).unwrap()).collect();
    assert_eq!(got, vec![2, 1, 4]);
    for d in 1..=4 {
        s.overload(d, true);
    }
    assert_eq!(s.pick(&mut st), None);
    s.overload(1, false);
    assert_eq!(s.pick(&mut st), Some(1));
}

/// The kernel's `ip_vs_wrr_schedule`, line for line, over a list of
/// (weight, overloaded): the cursor (`None`: the list head) and `cw`.
struct KernelWrr {
    cl: Option<usize>,
    cw: i64,
    mw: i64,
    di: i64,
}

impl KernelWrr {
    fn schedule(&mut self, list: &[(u32, bool)]) -> Option<usize> {
        if self.mw == 0 {
            return None;
        }
        let last = self.cl;
        let (mut stop, mut last_pass, mut restarted) = (None, false, false);
        let mut from = self.cl.map_or(0, |p| p + 1);
        for _ in 0..1_000_000 {
            for (p, &(w, over)) in list.iter().enumerate().skip(from) {
                if !over && w as i64 >= self.cw {
                    self.cl = Some(p);
                    return Some(p);
                }
                if stop == Some(p) {
                    self.cl = Some(p);
                    return None;
                }
            }
            from = 0;
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
        }
        panic!("the kernel's loop did not end");
    }
}

#[test]
fn wrr_with_overloaded_dests_follows_the_kernels_loop() {
    // Random lists, weights sharing factors, overloads switched on and off
    // between picks: the packet path's picks and state (cursor, cw) are the
    // kernel loop's, pick for pick.
    let mut x: u64 = 88172645463325252;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for round in 0..300 {
        let n = 1 + rnd(12) as u32;
        let unit = [1, 1, 2, 3][rnd(4) as usize];
        let mut s = Svc::new(SCHED_WRR);
        for d in 0..n {
            let w = if rnd(5) == 0 {
                0
            } else {
                unit * (1 + rnd(6) as u32)
            };
            s.add(d, w);
        }
        let mut k = KernelWrr {
            cl: None,
            cw: s.svc.cw_seed as i64,
            mw: s.svc.mw as i64,
            di: s.svc.di as i64,
        };
        let mut st = fresh_cpu();
        for i in 0..60 {
            if rnd(3) == 0 {
                let d = rnd(n as u64) as u32;
                let on = rnd(3) != 0;
                s.overload(d, on);
            }
            let list: Vec<(u32, bool)> = s
                .list
                .iter()
                .map(|d| {
                    (
                        d.weight,
                        s.conns.get(&d.dest).is_some_and(|c| c.overloaded != 0),
                    )
                })
                .collect();
            let want = k.schedule(&list).map(|p| s.list[p].dest);
            let got = s.pick(&mut st);
            assert_eq!(got, want, "round {round} pick {i} {list:?}");
            assert_eq!(st.cw as i64, k.cw, "round {round} pick {i} cw {list:?}");
            let cl = if st.cl == lb_common::SCHED_HEAD {
                None
            } else {
                Some(st.cl as usize)
            };
            assert_eq!(cl, k.cl, "round {round} pick {i} cursor {list:?}");
        }
    }
}

#[test]
fn wrr_skips_an_overloaded_dest() {
    // §5.2's 4, 3, 2 (list R3, R2, R1) with R1 overloaded: R2 and R3 share
    // the picks 3:2.
    let mut s = Svc::new(SCHED_WRR);
    s.add(1, 4);
    s.add(2, 3);
    s.add(3, 2);
    s.overload(1, true);
    let mut st = fresh_cpu();
    let got: Vec<_> = (0..50).map(|_| s.pick(&mut st).unwrap()).collect();
    assert!(!got.contains(&1));
    let twos = got.iter().filter(|d| **d == 2).count();
    assert!((twos as i64 - 30).abs() <= 3, "{got:?}");
}

#[test]
fn a_scan_covers_65536_reals() {
    // The largest service: every counting scheduler sees the last real.
    for sched in [
        SCHED_LC, SCHED_WLC, SCHED_SED, SCHED_NQ, SCHED_FO, SCHED_OVF,
    ] {
        let mut s = Svc::new(sched);
        let n = lb_common::MAX_SERVICE_DESTS as u32;
        s.list = (0..n)
            .rev()
            .map(|d| ServiceDest { dest: d, weight: 1 })
            .collect();
        s.changed();
        for d in 1..n {
            s.set(d, 2, 0);
        }
        // Dest 0 is last in the list and the only idle one; fo and ovf take
        // the first of the equal weights unless a higher one is last.
        if sched == SCHED_FO || sched == SCHED_OVF {
            s.set_weight(0, 2);
        }
        assert_eq!(s.pick1(), Some(0), "sched {sched}");
    }
}
