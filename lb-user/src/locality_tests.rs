//! Golden tests of dh, lblc and lblcr (docs/SEMANTICS.md §5.14–§5.16): the
//! packet path's picks (compiled here from lb-ebpf's `schedulers/`, as
//! `sched_table`'s tests do) over a service as `Table` keeps it, with the
//! live counts and the lblc/lblcr entries in memory. Expected picks are
//! worked out by hand from the kernel's `ip_vs_dh_schedule`,
//! `ip_vs_lblc_schedule` and `ip_vs_lblcr_schedule`.

use std::cell::{Cell, UnsafeCell};
use std::collections::HashMap;

use lb_common::{
    DestConns, LBLC_EXPIRATION_NS, LBLCR_SET_MAX, LblcEntry, LblcKey, MhTable, NO_POS, SCHED_DH,
    SCHED_LBLC, SCHED_LBLCR, SchedState, Service, ServiceDest, SetDest, ShTable, hash_32,
};

use crate::hash_sched::{dh_table, sh_table};
use crate::sched_table::packet_path::{Client, DestState, Nodes, pick};
use crate::sched_table::{block, dests_changed};

const VIP: lb_common::Addr = lb_common::addr_v4([203, 0, 113, 10]);
const HOUR: u64 = 3600 * 1_000_000_000;

/// A `DESTS` slot as the schedulers read it.
#[derive(Clone, Copy, Default)]
struct Slot {
    weight: u32,
    generation: u32,
    available: bool,
    rank: u32,
    conns: DestConns,
}

/// A service as `Table` keeps it, its dests' slots and counts, the clock,
/// and the program's `LBLC` entries.
struct Svc {
    svc: Service,
    list: Vec<ServiceDest>,
    block: Vec<ServiceDest>,
    dh: ShTable,
    slots: HashMap<u32, Slot>,
    now: Cell<u64>,
    lblc: UnsafeCell<HashMap<LblcKey, Box<LblcEntry>>>,
}

impl Nodes for Svc {
    fn node(&self, _svc: &Service, i: u32) -> Option<ServiceDest> {
        self.block.get(i as usize).copied()
    }
    fn dest_rank(&self, dest: u32) -> Option<u32> {
        self.slots.get(&dest).map(|s| s.rank)
    }
    fn sh_table(&self, _svc: &Service) -> Option<&ShTable> {
        Some(&self.dh)
    }
    fn mh_table(&self, _svc: &Service) -> Option<&MhTable> {
        None
    }
    fn conns(&self, dest: u32) -> Option<DestConns> {
        self.slots.get(&dest).map(|s| s.conns)
    }
    fn dest_state(&self, dest: u32) -> Option<DestState> {
        self.slots.get(&dest).map(|s| DestState {
            generation: s.generation,
            weight: s.weight,
            available: s.available,
            rank: s.rank,
            vip: VIP,
        })
    }
    fn random(&self) -> u32 {
        0
    }
    fn now(&self) -> u64 {
        self.now.get()
    }
    fn lblc_entry(&self, key: &LblcKey) -> Option<&mut LblcEntry> {
        // Sound: single-threaded tests; the schedulers hold at most one
        // entry at a time, and entries are boxed (stable addresses).
        unsafe { (*self.lblc.get()).get_mut(key).map(|b| &mut **b) }
    }
    fn lblc_new(&self, key: &LblcKey, epoch: u32, d: SetDest, now: u64) {
        let mut e = LblcEntry {
            lastuse: now,
            lastmod: now,
            epoch,
            size: 1,
            ..Default::default()
        };
        e.set[0] = d;
        // Sound: as above.
        unsafe { (*self.lblc.get()).insert(*key, Box::new(e)) };
    }
}

impl Svc {
    fn new(sched: u32) -> Svc {
        let mut svc: Service = bytemuck::Zeroable::zeroed();
        svc.id = 7;
        svc.sched = sched;
        svc.epoch = 1;
        svc.di = 1;
        let mut s = Svc {
            svc,
            list: Vec::new(),
            block: Vec::new(),
            dh: dh_table(&[]),
            slots: HashMap::new(),
            now: Cell::new(1_000 * HOUR),
            lblc: UnsafeCell::new(HashMap::new()),
        };
        s.changed();
        s
    }
    /// After a change of the list: block, dh table, ranks (from the tail).
    fn changed(&mut self) {
        dests_changed(&mut self.svc, &self.list);
        self.block = block(&self.list);
        self.dh = dh_table(&self.list);
        let n = self.list.len() as u32;
        for (pos, sd) in self.list.iter().enumerate() {
            if let Some(s) = self.slots.get_mut(&sd.dest) {
                s.rank = n - 1 - pos as u32;
            }
        }
    }
    /// `-a`: slot `d` at the head of the list (a removed slot comes back
    /// with its generation, as `Table` re-adds a real from its trash).
    fn add(&mut self, d: u32, weight: u32) {
        self.list.insert(0, ServiceDest { dest: d, weight });
        let s = self.slots.entry(d).or_default();
        s.weight = weight;
        s.available = true;
        self.changed();
    }
    fn pos(&self, d: u32) -> usize {
        self.list.iter().position(|sd| sd.dest == d).unwrap()
    }
    /// `-e`.
    fn set_weight(&mut self, d: u32, weight: u32) {
        let p = self.pos(d);
        self.list[p].weight = weight;
        self.slots.get_mut(&d).unwrap().weight = weight;
        self.changed();
    }
    /// `-d`: out of the list, the slot kept (the trash).
    fn remove(&mut self, d: u32) {
        let p = self.pos(d);
        self.list.remove(p);
        self.slots.get_mut(&d).unwrap().available = false;
        self.changed();
    }
    /// The slot given to another real (or flushed): a new generation.
    fn reuse_slot(&mut self, d: u32) {
        let s = self.slots.get_mut(&d).unwrap();
        s.generation += 1;
    }
    fn load(&mut self, d: u32, active: u32, inactive: u32) {
        let c = &mut self.slots.get_mut(&d).unwrap().conns;
        c.active = active;
        c.inactive = inactive;
    }
    fn overload(&mut self, d: u32, on: bool) {
        self.slots.get_mut(&d).unwrap().conns.overloaded = u32::from(on);
    }
    fn later(&self, ns: u64) {
        self.now.set(self.now.get() + ns);
    }
    fn pick(&self) -> Option<u32> {
        let client = Client {
            addr: [192, 0, 2, 1],
            port: [4, 0],
        };
        let mut st: SchedState = bytemuck::Zeroable::zeroed();
        pick(&self.svc, &mut st, self, &client).map(|p| {
            assert_eq!(self.list[p.pos as usize].dest, p.dest, "pos and dest agree");
            p.dest
        })
    }
    fn entry(&self) -> Option<LblcEntry> {
        let key = LblcKey {
            svc: self.svc.id,
            addr: VIP,
        };
        // Sound: no entry is borrowed between picks.
        unsafe { (*self.lblc.get()).get(&key).map(|b| **b) }
    }
    /// The dests of the entry's set, newest first.
    fn set(&self) -> Vec<u32> {
        let e = self.entry().unwrap();
        e.set[..e.size as usize].iter().map(|d| d.dest).collect()
    }
}

// ---- dh ----------------------------------------------------------------

#[test]
fn dh_table_is_the_list_round_and_round_whatever_the_weights() {
    let sd = |dest, weight| ServiceDest { dest, weight };
    let list = [sd(7, 3), sd(8, 0), sd(9, 2)];
    let t = dh_table(&list);
    // One bucket per dest in list order, weight 0 included
    // (`ip_vs_dh_reassign`), unlike sh, which gives each `weight` buckets.
    assert!(t.pos.iter().enumerate().all(|(b, &p)| p as usize == b % 3));
    assert_ne!(t, sh_table(&list));
    assert!(dh_table(&[]).pos.iter().all(|&p| p == NO_POS));
}

#[test]
fn dh_picks_the_bucket_of_the_vip() {
    // 203.0.113.10: hash_32(0xcb00710a, 8) = 162, the bucket of every
    // client; with R3, R2, R1 (newest first) it holds position 162 % 3 = 0.
    assert_eq!(hash_32(0xcb00_710a, 8), 162);
    let mut s = Svc::new(SCHED_DH);
    assert_eq!(s.pick(), None, "no dests: no dest");
    s.add(1, 1);
    s.add(2, 1);
    s.add(3, 1);
    assert_eq!(s.pick(), Some(3));
    // A fourth real: position 162 % 4 = 2, R2 (list R4, R3, R2, R1).
    s.add(4, 5);
    assert_eq!(s.pick(), Some(2));
    // Weights do not move buckets; the bucket's dest quiescent or
    // overloaded: no dest (dh has no fallback).
    s.set_weight(4, 1);
    assert_eq!(s.pick(), Some(2));
    s.overload(2, true);
    assert_eq!(s.pick(), None);
    s.overload(2, false);
    s.set_weight(2, 0);
    assert_eq!(s.pick(), None);
    // Its removal refills the table: 162 % 3 = 0, R4 (list R4, R3, R1).
    s.remove(2);
    assert_eq!(s.pick(), Some(4));
}

// ---- lblc --------------------------------------------------------------

#[test]
fn lblc_picks_the_weighted_least_connection_dest_and_keeps_it() {
    let mut s = Svc::new(SCHED_LBLC);
    s.add(1, 1);
    s.add(2, 3);
    // List R2 (w3), R1 (w1). R2 2 active (overhead 512), R1 none: R1.
    s.load(2, 2, 0);
    assert_eq!(s.pick(), Some(1));
    assert_eq!(s.set(), vec![1]);
    // R1 now the busier by far, but it is remembered and not overloaded
    // in lblc's sense (5 active > weight 1, but no dest has fewer active
    // than half its weight: R2 has 2 * 2 >= 3).
    s.load(1, 5, 0);
    assert_eq!(s.pick(), Some(1));
    // R2 down to 1 active (1 * 2 < 3): R1 is overloaded, the least loaded
    // is picked again (R2: 256 * 1 < 1280 * 3) and remembered.
    s.load(2, 1, 0);
    assert_eq!(s.pick(), Some(2));
    assert_eq!(s.set(), vec![2]);
    assert_eq!(s.pick(), Some(2));
}

#[test]
fn lblc_ties_go_to_the_newest_and_thresholds_skip_fresh_picks_only() {
    let mut s = Svc::new(SCHED_LBLC);
    s.add(1, 1);
    s.add(2, 1);
    s.add(3, 1);
    // Equal loads: the first of the list (the newest), as the kernel's
    // strict comparison keeps the earlier dest.
    assert_eq!(s.pick(), Some(3));
    // Over its upper threshold, the remembered dest still takes new flows
    // (lblc does not test IP_VS_DEST_F_OVERLOAD on it) ...
    s.overload(3, true);
    assert_eq!(s.pick(), Some(3));
    // ... but a fresh pick skips it: quiescing it makes one.
    s.set_weight(3, 0);
    assert_eq!(s.pick(), Some(2));
    // Every dest over its threshold or quiescent: no dest.
    s.overload(2, true);
    s.overload(1, true);
    assert_eq!(s.pick(), Some(2), "remembered, still");
    s.set_weight(2, 0);
    assert_eq!(s.pick(), None);
}

#[test]
fn lblc_forgets_a_removed_or_replaced_dest_and_a_day_old_entry() {
    let mut s = Svc::new(SCHED_LBLC);
    s.add(1, 1);
    s.add(2, 1);
    s.load(2, 1, 0);
    assert_eq!(s.pick(), Some(1));
    // Removed: picked again among the others.
    s.remove(1);
    assert_eq!(s.pick(), Some(2));
    // Re-added (its slot from the trash): R2 is still remembered.
    s.add(1, 1);
    assert_eq!(s.pick(), Some(2));
    // The slot of R2 given to another real: not the remembered dest.
    s.reuse_slot(2);
    assert_eq!(s.pick(), Some(1));
    assert_eq!(s.entry().unwrap().set[0].dest, 1);
    // Unused for the expiration (24 h): gone, the pick starts afresh
    // (R2 is the least loaded now).
    s.load(1, 1, 0);
    s.load(2, 0, 0);
    s.later(LBLC_EXPIRATION_NS - 1);
    assert_eq!(s.pick(), Some(1), "used within the day");
    s.later(LBLC_EXPIRATION_NS);
    assert_eq!(s.pick(), Some(2));
    // A new epoch (the scheduler changed, or the service was made again)
    // ignores the entries of the old one.
    assert_eq!(s.pick(), Some(2));
    s.load(2, 9, 0);
    s.svc.epoch += 1;
    assert_eq!(s.pick(), Some(1));
}

// ---- lblcr -------------------------------------------------------------

#[test]
fn lblcr_set_grows_when_its_least_loaded_is_overloaded() {
    let mut s = Svc::new(SCHED_LBLCR);
    s.add(1, 2);
    s.add(2, 2);
    s.add(3, 2);
    // No entry: the weighted least (equal: the newest, R3), set {R3}.
    assert_eq!(s.pick(), Some(3));
    assert_eq!(s.set(), vec![3]);
    // R3 3 active > weight 2 and R2 has 0 * 2 < 2: overloaded; the least
    // of the list is R2 (0), added at the head.
    s.load(3, 3, 0);
    assert_eq!(s.pick(), Some(2));
    assert_eq!(s.set(), vec![2, 3]);
    // The set's least loaded: R2 (0 < 3 * 256) until it is overloaded too.
    assert_eq!(s.pick(), Some(2));
    s.load(2, 3, 0);
    assert_eq!(s.pick(), Some(1));
    assert_eq!(s.set(), vec![1, 2, 3]);
    // With R1 busy as well, the set's least is R1 (2 active, 512/2) ...
    s.load(1, 2, 0);
    s.load(2, 4, 0);
    assert_eq!(s.pick(), Some(1));
    // ... and a pick that finds a member already in the set adds nothing.
    s.load(1, 3, 0);
    s.load(3, 0, 0);
    assert_eq!(s.pick(), Some(3), "R3 is the set's least now");
    assert_eq!(s.set(), vec![1, 2, 3]);
}

#[test]
fn lblcr_set_loses_its_most_loaded_once_unchanged_for_the_expiration() {
    let mut s = Svc::new(SCHED_LBLCR);
    s.add(1, 1);
    s.add(2, 1);
    assert_eq!(s.pick(), Some(2));
    s.load(2, 2, 0);
    assert_eq!(s.pick(), Some(1));
    assert_eq!(s.set(), vec![1, 2]);
    let lastmod = s.entry().unwrap().lastmod;
    // Used every hour, unchanged: after 24 h the most loaded (R2) goes.
    for _ in 0..24 {
        s.later(HOUR);
        assert_eq!(s.pick(), Some(1));
    }
    assert_eq!(s.set(), vec![1, 2], "exactly 24 h is not past it");
    assert_eq!(s.entry().unwrap().lastmod, lastmod);
    s.later(1);
    assert_eq!(s.pick(), Some(1));
    assert_eq!(s.set(), vec![1]);
    assert_eq!(s.entry().unwrap().lastmod, s.now.get());
    // A set of one keeps its dest however long it is unchanged.
    s.later(3 * LBLC_EXPIRATION_NS / 2);
    assert_eq!(s.pick(), Some(1));
    assert_eq!(s.set(), vec![1]);
}

#[test]
fn lblcr_set_min_skips_unavailable_and_over_threshold_dests() {
    let mut s = Svc::new(SCHED_LBLCR);
    s.add(1, 4);
    s.add(2, 4);
    s.add(3, 4);
    assert_eq!(s.pick(), Some(3));
    s.load(3, 5, 0);
    assert_eq!(s.pick(), Some(2));
    s.load(2, 5, 0);
    assert_eq!(s.pick(), Some(1));
    assert_eq!(s.set(), vec![1, 2, 3]);
    // R2 and R3 within their weights, R1 idle but over its threshold:
    // the set's least skips R1 and takes R2 (equal to R3, earlier in the
    // set), not overloaded in lblcr's sense (3 active <= weight 4).
    s.load(2, 3, 0);
    s.load(3, 3, 0);
    s.overload(1, true);
    assert_eq!(s.pick(), Some(2));
    // R2 removed: R3.
    s.remove(2);
    assert_eq!(s.pick(), Some(3));
    // Every member unusable: a fresh pick over the list, none there
    // either (R1 over its threshold, R3 quiescent).
    s.set_weight(3, 0);
    assert_eq!(s.pick(), None);
}

#[test]
fn lblcr_full_set_drops_the_dest_added_longest_ago() {
    let mut s = Svc::new(SCHED_LBLCR);
    let n = LBLCR_SET_MAX as u32 + 2;
    for d in 1..=n {
        s.add(d, 1);
    }
    // Each pick overloads the one before it (2 active > weight 1, and an
    // idle dest has 0 < 1/2), so the set grows by the list's least, the
    // newest idle dest each time.
    let mut picked = Vec::new();
    for _ in 0..n {
        let d = s.pick().unwrap();
        picked.push(d);
        s.load(d, 2, 0);
    }
    let want: Vec<u32> = (1..=n).rev().collect();
    assert_eq!(picked, want);
    let set = s.set();
    assert_eq!(set.len(), LBLCR_SET_MAX);
    assert_eq!(
        set,
        want.iter()
            .rev()
            .take(LBLCR_SET_MAX)
            .copied()
            .collect::<Vec<_>>()
    );
}
