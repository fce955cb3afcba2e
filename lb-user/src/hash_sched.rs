//! The sh, mh and dh tables of a service, built by the controller as the
//! kernel builds them (`ip_vs_sh_reassign`, `ip_vs_mh_permutate` and
//! `ip_vs_mh_populate`, `ip_vs_dh_reassign`; docs/SEMANTICS.md §5.5, §5.6,
//! §5.14, §15.1), so that two directors with the same configuration map a
//! client (sh, mh) or a destination address (dh) to the same real, and to
//! the one IPVS would. dh's table has sh's layout and goes to `SH_TABLES`.
//!
//! A table entry is a position in the service's dest list (newest first,
//! lb-common's `ServiceDest`), `NO_POS` when empty: the packet path reads
//! the dest and its current weight from the list's block, so a table and
//! the list it was built from are always read together. `Table` rebuilds
//! the table on every change of the list, a weight, the scheduler or its
//! flags (the kernel's `add_dest`/`del_dest`/`upd_dest`) and writes it
//! under the service's other table key before the `Service` value.

use lb_common::{
    Addr, Dest, MAP_MH_TABLES, MAP_SH_TABLES, MH_HASH1_KEY, MH_HASH2_KEY, MH_TAB_BITS, MH_TAB_SIZE,
    MhTable, NO_POS, SCHED_DH, SCHED_MH, SCHED_SH, SH_TAB_SIZE, Service, ServiceDest, ShTable,
    TABLES_PER_SERVICE, hash_input, hsiphash_u32,
};

use crate::{
    error::Error,
    pins::{Pins, map_err},
};

/// sh, mh and dh: writes the service's table for `list` (`dests`: the
/// `Dest` of each, for mh) under its other key (`2 * id` or `2 * id + 1`), and
/// names it in `svc.table`; the caller then writes the `Service` value.
/// The previous table stays until the next change, for a packet that may
/// still be reading it. Nothing for other schedulers.
pub fn write_table(
    pins: &mut Pins,
    svc: &mut Service,
    list: &[ServiceDest],
    dests: &[Dest],
) -> Result<(), Error> {
    let key = svc.id * TABLES_PER_SERVICE + ((svc.table & 1) ^ 1);
    match svc.sched {
        SCHED_SH => pins
            .sh_tables
            .insert(key, sh_table(list), 0)
            .map_err(map_err(MAP_SH_TABLES))?,
        SCHED_DH => pins
            .sh_tables
            .insert(key, dh_table(list), 0)
            .map_err(map_err(MAP_SH_TABLES))?,
        SCHED_MH => {
            let dests: Vec<MhDest> = dests
                .iter()
                .map(|d| MhDest {
                    addr: d.addr,
                    port: d.port,
                    last_weight: d.last_weight,
                })
                .collect();
            let t = mh_table(&dests).ok_or_else(|| {
                Error::Invalid(format!(
                    "an mh service takes at most {MH_TAB_SIZE} real servers"
                ))
            })?;
            pins.mh_tables
                .insert(key, t, 0)
                .map_err(map_err(MAP_MH_TABLES))?
        }
        _ => return Ok(()),
    }
    svc.table = key;
    Ok(())
}

/// Drops service `id`'s sh, dh and mh tables but those of `keep`
/// (`SCHED_*`, its scheduler now), once its `Service` value no longer names
/// them.
pub fn drop_tables(pins: &mut Pins, id: u32, keep: Option<u32>) -> Result<(), Error> {
    let gone = |r: Result<(), aya::maps::MapError>| match r {
        Err(aya::maps::MapError::KeyNotFound) => Ok(()),
        Err(aya::maps::MapError::SyscallError(e))
            if e.io_error.raw_os_error() == Some(libc::ENOENT) =>
        {
            Ok(())
        }
        r => r,
    };
    for key in id * TABLES_PER_SERVICE..(id + 1) * TABLES_PER_SERVICE {
        if keep != Some(SCHED_SH) && keep != Some(SCHED_DH) {
            gone(pins.sh_tables.remove(&key)).map_err(map_err(MAP_SH_TABLES))?;
        }
        if keep != Some(SCHED_MH) {
            gone(pins.mh_tables.remove(&key)).map_err(map_err(MAP_MH_TABLES))?;
        }
    }
    Ok(())
}

/// sh's table: walk the list round and round, giving each dest `weight`
/// consecutive buckets (a weight-0 dest one) until the 256 are taken; all
/// empty when the list is.
pub fn sh_table(list: &[ServiceDest]) -> ShTable {
    let mut t = ShTable {
        pos: [NO_POS; SH_TAB_SIZE],
    };
    if list.is_empty() {
        return t;
    }
    let (mut p, mut count) = (0usize, 0u32);
    for b in t.pos.iter_mut() {
        *b = p as u16;
        count += 1;
        if count >= list[p].weight {
            p = (p + 1) % list.len();
            count = 0;
        }
    }
    t
}

/// dh's table (`ip_vs_dh_reassign`): walk the list round and round, one
/// bucket per dest whatever its weight (a quiescent dest keeps its
/// buckets, and gets no flow), so bucket `b` holds position `b % n`; all
/// empty when the list is. The kernel refills it when a dest is added or
/// removed; the fill depends on nothing else, so refilling it on every
/// change, as `Table` does, gives the same table.
pub fn dh_table(list: &[ServiceDest]) -> ShTable {
    let mut t = ShTable {
        pos: [NO_POS; SH_TAB_SIZE],
    };
    if list.is_empty() {
        return t;
    }
    for (b, pos) in t.pos.iter_mut().enumerate() {
        *pos = (b % list.len()) as u16;
    }
    t
}

/// What mh needs of a dest: its address, port and `last_weight`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MhDest {
    pub addr: Addr,
    pub port: [u8; 2],
    pub last_weight: u32,
}

/// A dest's place in Maglev's permutation: `offset = h1(port + addr) % M`,
/// `skip = h2(port + addr) % (M - 1) + 1`.
pub fn mh_offset_skip(d: &MhDest) -> (u32, u32) {
    let v = hash_input(&d.addr, d.port, 0);
    let m = MH_TAB_SIZE as u32;
    (
        hsiphash_u32(v, MH_HASH1_KEY) % m,
        hsiphash_u32(v, MH_HASH2_KEY) % (m - 1) + 1,
    )
}

const fn gcd(a: u32, b: u32) -> u32 {
    let (mut a, mut b) = (a, b);
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

/// The number of slots each dest takes per pass: `(last_weight / g) >>
/// rshift`, at least 1 for a non-zero `last_weight`, with g the gcd of the
/// positive `last_weight`s and `rshift` what brings the largest down to
/// `MH_TAB_BITS` bits. Empty when every `last_weight` is 0.
pub fn mh_turns(dests: &[MhDest]) -> Option<Vec<u32>> {
    let g = dests
        .iter()
        .map(|d| d.last_weight)
        .filter(|&w| w > 0)
        .fold(0, |g, w| if g == 0 { w } else { gcd(w, g) });
    if g == 0 {
        return None;
    }
    let mw = dests.iter().map(|d| d.last_weight).max().unwrap_or(0) / g;
    let fls = 32 - mw.leading_zeros();
    let rshift = fls.saturating_sub(MH_TAB_BITS);
    Some(
        dests
            .iter()
            .map(|d| match (d.last_weight / g) >> rshift {
                0 => u32::from(d.last_weight != 0),
                t => t,
            })
            .collect(),
    )
}

/// mh's lookup table for `dests` in list order: passes over the list, each
/// dest taking `turns` slots per pass, each its next free slot along
/// `offset + k * skip mod M`, until the M slots are taken; all empty when
/// every `last_weight` is 0. `None` for more dests than slots (the kernel
/// refuses to rebuild then).
pub fn mh_table(dests: &[MhDest]) -> Option<MhTable> {
    let mut t = MhTable {
        pos: [NO_POS; MH_TAB_SIZE],
        _pad: 0,
    };
    if dests.len() > MH_TAB_SIZE {
        return None;
    }
    let Some(turns) = mh_turns(dests) else {
        return Some(t);
    };
    let m = MH_TAB_SIZE as u32;
    let mut setup: Vec<(u32, u32)> = dests.iter().map(mh_offset_skip).collect();
    let mut taken = vec![false; MH_TAB_SIZE];
    let mut n = 0;
    'fill: loop {
        for (p, (perm, skip)) in setup.iter_mut().enumerate() {
            for _ in 0..turns[p] {
                while taken[*perm as usize] {
                    *perm += *skip;
                    if *perm >= m {
                        *perm -= m;
                    }
                }
                taken[*perm as usize] = true;
                t.pos[*perm as usize] = p as u16;
                n += 1;
                if n == MH_TAB_SIZE {
                    break 'fill;
                }
            }
        }
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_common::{SCHED_MH, SCHED_SH, SVC_F_SCHED_FALLBACK, SVC_F_SCHED_PORT};
    use lb_common::{SchedState, Service, addr_v4, hash_32, mh_slot, sh_bucket};

    use crate::sched_table::packet_path::{Client, Nodes, pick};
    use crate::sched_table::{block, dests_changed};

    // Golden values below were computed with a transcription of the
    // kernel's C (`hash_32`, 64-bit `__hsiphash_unaligned`,
    // `ip_vs_mh_permutate`/`ip_vs_mh_populate`), independent of this code.

    const R1: [u8; 4] = [198, 51, 100, 11];
    const R2: [u8; 4] = [198, 51, 100, 12];
    const R3: [u8; 4] = [198, 51, 100, 13];
    const C1: [u8; 4] = [192, 0, 2, 1];

    fn mhd(addr: [u8; 4], w: u32) -> MhDest {
        MhDest {
            addr: addr_v4(addr),
            port: 80u16.to_be_bytes(),
            last_weight: w,
        }
    }

    #[test]
    fn hashes_match_the_kernel() {
        assert_eq!(hash_32(0xC000_0201, 8), 50);
        assert_eq!(hash_32(0xC000_0201 + 12345, 8), 145);
        assert_eq!(hash_32(0xC000_0202, 8), 148);
        assert_eq!(sh_bucket(hash_input(&addr_v4(C1), [0, 0], 0), 0), 50);
        assert_eq!(
            sh_bucket(hash_input(&addr_v4(C1), 12345u16.to_be_bytes(), 0), 0),
            145
        );
        assert_eq!(hsiphash_u32(0, MH_HASH1_KEY), 0x1d5a_77c2);
        assert_eq!(hsiphash_u32(0xC000_0201, MH_HASH1_KEY), 0x9288_9c88);
        assert_eq!(hsiphash_u32(0xC000_0201, MH_HASH2_KEY), 0xc6fe_83e5);
        assert_eq!(mh_slot(hash_input(&addr_v4(C1), [0, 0], 0)), 2891);
    }

    /// An IPv6 client hashes by the XOR fold of its four words, as the
    /// kernel's sh, mh and dh do: addresses of equal folds share a bucket.
    #[test]
    fn ipv6_addresses_hash_by_their_fold() {
        let v6 = |s: &str| crate::addr::to_addr(s.parse().unwrap());
        let (a, b) = (v6("2001:db8::1"), v6("0:1::2001:db8"));
        assert_eq!(hash_input(&a, [0, 0], 0), 0x2001_0db9);
        assert_eq!(hash_input(&a, [0, 80], 0), hash_input(&b, [0, 80], 0));
        assert_eq!(
            sh_bucket(hash_input(&a, [0, 0], 0), 0),
            hash_32(0x2001_0db9, 8)
        );
        assert_ne!(
            hash_input(&a, [0, 0], 0),
            hash_input(&v6("2001:db8::2"), [0, 0], 0)
        );
    }

    #[test]
    fn sh_fills_round_and_round_by_weight() {
        let sd = |dest, weight| ServiceDest { dest, weight };
        // Weights 3, 0, 2: three buckets, one (weight 0 still takes one), two.
        let t = sh_table(&[sd(7, 3), sd(8, 0), sd(9, 2)]);
        assert_eq!(&t.pos[..12], &[0, 0, 0, 1, 2, 2, 0, 0, 0, 1, 2, 2]);
        assert_eq!(t.pos[255], [0, 0, 0, 1, 2, 2][255 % 6]);
        assert!(sh_table(&[]).pos.iter().all(|&p| p == NO_POS));
    }

    #[test]
    fn mh_permutation_and_table_match_the_kernel() {
        // List order (newest first): R3, R2, R1, all weight 1.
        let dests = [mhd(R3, 1), mhd(R2, 1), mhd(R1, 1)];
        let setup: Vec<(u32, u32)> = dests.iter().map(mh_offset_skip).collect();
        assert_eq!(setup, vec![(3577, 366), (3764, 504), (226, 2523)]);
        let t = mh_table(&dests).unwrap();
        assert_eq!(
            &t.pos[..16],
            &[2, 2, 2, 2, 1, 0, 0, 2, 1, 2, 0, 1, 0, 2, 1, 0]
        );
        let count = |t: &MhTable, p| t.pos.iter().filter(|&&x| x == p).count();
        assert_eq!(
            (count(&t, 0), count(&t, 1), count(&t, 2)),
            (1365, 1364, 1364)
        );
        assert_eq!(t.pos[2891], 2, "192.0.2.1 goes to R1");
        // Weights 3, 2, 1: turns 3, 2, 1.
        let dests = [mhd(R3, 3), mhd(R2, 2), mhd(R1, 1)];
        assert_eq!(mh_turns(&dests), Some(vec![3, 2, 1]));
        let t = mh_table(&dests).unwrap();
        assert_eq!(
            &t.pos[..16],
            &[2, 1, 0, 0, 1, 0, 0, 2, 1, 0, 0, 1, 0, 2, 1, 0]
        );
        assert_eq!(
            (count(&t, 0), count(&t, 1), count(&t, 2)),
            (2047, 1364, 682)
        );
        // last_weight 0, 65535, 1: rshift 10, turns 0, 63, 1.
        let dests = [mhd(R3, 0), mhd(R2, 65535), mhd(R1, 1)];
        assert_eq!(mh_turns(&dests), Some(vec![0, 63, 1]));
        let t = mh_table(&dests).unwrap();
        assert_eq!((count(&t, 0), count(&t, 1), count(&t, 2)), (0, 4030, 63));
        assert_eq!(&t.pos[..8], &[2, 1, 1, 1, 1, 1, 1, 1]);
        // All last_weight 0: empty.
        let t = mh_table(&[mhd(R1, 0)]).unwrap();
        assert!(t.pos.iter().all(|&p| p == NO_POS));
    }

    #[test]
    fn two_directors_build_the_same_mh_table() {
        // Two services (two directors) given the same reals in the same
        // order, with the same weight changes: the same table, slot for slot.
        let build = |order: &[u8]| {
            let mut s = Svc::new(SCHED_MH, 0);
            for &i in order {
                s.add(i, u32::from(i % 3) + 1);
            }
            s.set_weight(order[0], 0);
            s.set_weight(order[1], 7);
            s.mh
        };
        let order: Vec<u8> = (1..=20).collect();
        assert_eq!(build(&order), build(&order));
        // Another order is another table (the fill follows list order).
        let rev: Vec<u8> = order.iter().rev().copied().collect();
        assert_ne!(build(&order), build(&rev));
    }

    /// A service with its list, block and hash tables, as `Table` keeps them.
    struct Svc {
        svc: Service,
        list: Vec<ServiceDest>,
        addrs: Vec<MhDest>,
        block: Vec<ServiceDest>,
        sh: ShTable,
        mh: MhTable,
    }

    impl Nodes for Svc {
        fn node(&self, _svc: &Service, i: u32) -> Option<ServiceDest> {
            self.block.get(i as usize).copied()
        }
        fn dest_rank(&self, _dest: u32) -> Option<u32> {
            None
        }
        fn sh_table(&self, _svc: &Service) -> Option<&ShTable> {
            Some(&self.sh)
        }
        fn mh_table(&self, _svc: &Service) -> Option<&MhTable> {
            Some(&self.mh)
        }
        fn conns(&self, _dest: u32) -> Option<lb_common::DestConns> {
            Some(lb_common::DestConns::default())
        }
        fn random(&self) -> u32 {
            0
        }
    }

    impl Svc {
        fn new(sched: u32, flags: u32) -> Svc {
            let mut svc: Service = bytemuck::Zeroable::zeroed();
            svc.sched = sched;
            svc.flags = flags;
            svc.di = 1;
            let mut s = Svc {
                svc,
                list: Vec::new(),
                addrs: Vec::new(),
                block: Vec::new(),
                sh: sh_table(&[]),
                mh: mh_table(&[]).unwrap(),
            };
            s.changed();
            s
        }
        fn changed(&mut self) {
            dests_changed(&mut self.svc, &self.list);
            self.block = block(&self.list);
            self.sh = sh_table(&self.list);
            self.mh = mh_table(&self.addrs).unwrap();
        }
        /// Adds real `i` (198.51.100.i:80, `DESTS` slot i) at the head.
        fn add(&mut self, i: u8, weight: u32) {
            self.list.insert(
                0,
                ServiceDest {
                    dest: u32::from(i),
                    weight,
                },
            );
            self.addrs.insert(0, mhd([198, 51, 100, i], weight));
            self.changed();
        }
        fn pos(&self, i: u8) -> usize {
            self.list
                .iter()
                .position(|d| d.dest == u32::from(i))
                .unwrap()
        }
        /// `-e`: the weight, and `last_weight` if not 0.
        fn set_weight(&mut self, i: u8, weight: u32) {
            let p = self.pos(i);
            self.list[p].weight = weight;
            if weight != 0 {
                self.addrs[p].last_weight = weight;
            }
            self.changed();
        }
        fn remove(&mut self, i: u8) {
            let p = self.pos(i);
            self.list.remove(p);
            self.addrs.remove(p);
            self.changed();
        }
        fn pick(&self, addr: [u8; 4], port: u16) -> Option<u32> {
            let client = Client {
                addr: addr_v4(addr),
                port: port.to_be_bytes(),
            };
            let mut st: SchedState = bytemuck::Zeroable::zeroed();
            pick(&self.svc, &mut st, self, &client).map(|p| {
                assert_eq!(self.list[p.pos as usize].dest, p.dest);
                p.dest
            })
        }
    }

    fn clients() -> impl Iterator<Item = ([u8; 4], u16)> {
        (0..=255u8).flat_map(|a| [([192, 0, 2, a], 1024), ([203, 0, 113, a], 40000)])
    }

    #[test]
    fn mh_fallback_probes_as_far_as_the_kernel() {
        // A table where every slot holds an unavailable dest (position 0,
        // weight 0) but the one the client's 4,000th probe reaches: the
        // kernel probes up to 4,093 slots and finds it.
        let mut s = Svc::new(SCHED_MH, SVC_F_SCHED_FALLBACK);
        s.add(1, 1);
        s.add(2, 1);
        s.set_weight(2, 0);
        assert_eq!(s.pos(2), 0);
        let ihash = mh_slot(hash_input(&addr_v4(C1), [0, 0], 0));
        let probe = |i: u32| {
            mh_slot(hash_input(
                &addr_v4(C1),
                [0, 0],
                (i + ihash) % MH_TAB_SIZE as u32,
            ))
        };
        let far = probe(4000);
        assert!(
            (0..300).all(|i| probe(i) != far),
            "an early probe reaches it"
        );
        s.mh.pos.fill(0);
        s.mh.pos[far as usize] = 1;
        assert_eq!(s.pick(C1, 0), Some(1));
        // Nothing available anywhere: none.
        s.mh.pos[far as usize] = 0;
        assert_eq!(s.pick(C1, 0), None);
    }

    #[test]
    fn sh_picks_the_bucket_of_the_client() {
        let mut s = Svc::new(SCHED_SH, 0);
        s.add(1, 1);
        s.add(2, 1);
        s.add(3, 1);
        // List R3, R2, R1: bucket b holds position b % 3; 192.0.2.1 is bucket 50.
        assert_eq!(s.pick(C1, 1), Some([3, 2, 1][50 % 3]));
        // Without sh-port the port does not matter; with it, it does.
        assert!((0..100).all(|p| s.pick(C1, p) == s.pick(C1, 0)));
        let mut sp = Svc::new(SCHED_SH, SVC_F_SCHED_PORT);
        for i in 1..=3 {
            sp.add(i, 1);
        }
        // 192.0.2.1 port 12345: bucket 145, position 145 % 3 = 1 (R2).
        assert_eq!(sp.pick(C1, 12345), Some(2));
        let spread: std::collections::BTreeSet<_> = (0..50).map(|p| sp.pick(C1, p)).collect();
        assert_eq!(spread.len(), 3, "sh-port spreads one client's ports");
    }

    #[test]
    fn sh_quiescent_bucket_gives_no_dest_unless_fallback() {
        for fallback in [false, true] {
            let mut s = Svc::new(SCHED_SH, if fallback { SVC_F_SCHED_FALLBACK } else { 0 });
            s.add(1, 1);
            s.add(2, 1);
            s.add(3, 1);
            let owner = s.pick(C1, 0).unwrap();
            s.set_weight(owner as u8, 0);
            let got = s.pick(C1, 0);
            if fallback {
                // Probes from bucket 2 * 50 = 100 (position 100 % 3 = 1, R2).
                let want = [3, 2, 1][100 % 3];
                assert_ne!(want, owner);
                assert_eq!(got, Some(want));
            } else {
                assert_eq!(got, None);
            }
            // All quiescent: none, with or without fallback.
            for i in 1..=3 {
                s.set_weight(i, 0);
            }
            assert_eq!(s.pick(C1, 0), None);
        }
        // No dests: empty buckets.
        assert_eq!(Svc::new(SCHED_SH, SVC_F_SCHED_FALLBACK).pick(C1, 0), None);
    }

    #[test]
    fn mh_picks_the_slot_of_the_client() {
        // R1, R2, R3 (198.51.100.11-13) added in order: list R3, R2, R1.
        let mut s = Svc::new(SCHED_MH, 0);
        s.add(11, 1);
        s.add(12, 1);
        s.add(13, 1);
        assert_eq!(s.pick(C1, 0), Some(11), "slot 2891 holds R1 (position 2)");
        assert!((0..100).all(|p| s.pick(C1, p) == Some(11)));
        let mut sp = Svc::new(SCHED_MH, SVC_F_SCHED_PORT);
        for i in 1..=3 {
            sp.add(i, 1);
        }
        let spread: std::collections::BTreeSet<_> = (0..50).map(|p| sp.pick(C1, p)).collect();
        assert_eq!(spread.len(), 3, "mh-port spreads one client's ports");
    }

    #[test]
    fn quiescing_an_mh_dest_moves_no_other_flow() {
        let mut s = Svc::new(SCHED_MH, 0);
        for i in 1..=5 {
            s.add(i, 1);
        }
        let before: Vec<_> = clients().map(|(a, p)| s.pick(a, p)).collect();
        s.set_weight(3, 0);
        let table_before = s.mh;
        let after: Vec<_> = clients().map(|(a, p)| s.pick(a, p)).collect();
        assert_eq!(s.mh, table_before, "last_weight keeps the table");
        for (b, a) in before.iter().zip(&after) {
            if *b == Some(3) {
                assert_eq!(*a, None, "its own clients get no dest");
            } else {
                assert_eq!(a, b);
            }
        }
        assert!(before.contains(&Some(3)));
        // With mh-fallback they go elsewhere, the others stay.
        s.svc.flags = SVC_F_SCHED_FALLBACK;
        for ((a, p), b) in clients().zip(&before) {
            let got = s.pick(a, p);
            if *b == Some(3) {
                assert!(matches!(got, Some(d) if d != 3), "{got:?}");
            } else {
                assert_eq!(got, *b);
            }
        }
    }

    #[test]
    fn removing_an_mh_dest_moves_mostly_its_flows() {
        let mut s = Svc::new(SCHED_MH, 0);
        for i in 1..=10 {
            s.add(i, 1);
        }
        let before: Vec<_> = clients().map(|(a, p)| s.pick(a, p)).collect();
        s.remove(4);
        let after: Vec<_> = clients().map(|(a, p)| s.pick(a, p)).collect();
        let moved_others = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| **b != Some(4) && a != b)
            .count();
        assert!(after.iter().all(|d| d.is_some() && *d != Some(4)));
        // Maglev's promise: few flows of the other reals move (here < 5%).
        assert!(moved_others * 20 < before.len(), "{moved_others}");
    }
}
