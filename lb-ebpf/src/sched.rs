//! The IPVS rr and wrr schedulers (`ip_vs_rr.c`, `ip_vs_wrr.c`), run by each
//! CPU on its own state (`SchedState`) over the service's dest list, which the
//! controller keeps in LVS order (most recently added first).
//!
//! A pick is O(1): the controller precomputes, per weight level, the next
//! eligible position after every position (`Service::rebuild_sched`), so the
//! packet path never loops over the reals. Only a CPU that sees a new
//! generation of the service searches the levels once. Nothing here can
//! panic; every index goes through `get`.

use lb_common::{
    MAX_SERVICE_DESTS, SCHED_HEAD, SCHED_NONE, SCHED_RR, SCHED_WRR, SchedState, Service,
    wrr_adjust_cw,
};

/// Table indices are masked, not only checked: the mask is a bound the
/// verifier sees on the very register used for the access. `black_box`
/// keeps LLVM from dropping the mask when it can prove it redundant from
/// checks the verifier cannot relate (register against register).
/// (`MAX_SERVICE_DESTS` is a power of two.)
const MASK: usize = MAX_SERVICE_DESTS - 1;
const _: () = assert!(MAX_SERVICE_DESTS.is_power_of_two());

#[inline(always)]
fn masked(i: usize) -> usize {
    core::hint::black_box(i) & MASK
}

#[inline(always)]
fn next_at(svc: &Service, level: usize, pos: usize) -> u8 {
    if level >= MAX_SERVICE_DESTS || pos >= MAX_SERVICE_DESTS {
        return SCHED_NONE;
    }
    svc.next[masked(level)][masked(pos)]
}

#[inline(always)]
fn level_at(svc: &Service, level: usize) -> u32 {
    if level >= MAX_SERVICE_DESTS {
        return u32::MAX;
    }
    svc.levels[masked(level)]
}

/// `ceil(cw / di)`: the least weight, in units of `di`, a dest needs to be
/// picked in a pass with current weight `cw`.
#[inline(always)]
fn units(cw: u32, di: u32) -> u32 {
    if di == 0 {
        return cw;
    }
    cw.div_ceil(di)
}

/// The first level holding at least `units(cw)`; `nlevels` if none.
#[inline(always)]
fn find_level(svc: &Service, cw: u32) -> u32 {
    let k = units(cw, svc.di);
    for l in 0..MAX_SERVICE_DESTS {
        if l >= svc.nlevels as usize {
            break;
        }
        if level_at(svc, l) >= k {
            return l as u32;
        }
    }
    svc.nlevels
}

#[inline(always)]
fn len(svc: &Service) -> usize {
    let n = svc.ndests as usize;
    if n > MAX_SERVICE_DESTS {
        MAX_SERVICE_DESTS
    } else {
        n
    }
}

/// Brings a CPU's state up to date with the service: a state of another
/// epoch (new service, or this CPU never scheduled for it) starts as the
/// kernel's state would be with no picks made; a state of an older
/// generation gets the kernel's `dest_changed` adjustment, applied once for
/// all changes since this CPU's last pick.
#[inline(always)]
pub fn sync_state(svc: &Service, st: &mut SchedState) {
    let cw = if st.epoch != svc.epoch {
        st.epoch = svc.epoch;
        st.rr_slot = SCHED_HEAD;
        svc.cw_seed
    } else if st.generation != svc.generation {
        wrr_adjust_cw(st.cw, svc.di, svc.mw)
    } else {
        return;
    };
    st.generation = svc.generation;
    st.cl = SCHED_HEAD;
    st.cw = cw;
    st.level = find_level(svc, cw);
}

/// Picks a dest for a new flow: its position in `svc.dests`, or `None` when
/// no dest may take new flows (none, or all quiescent).
#[inline(always)]
pub fn pick(svc: &Service, st: &mut SchedState) -> Option<usize> {
    sync_state(svc, st);
    match svc.sched {
        SCHED_WRR => wrr(svc, st),
        SCHED_RR => rr(svc, st),
        _ => None,
    }
}

/// Weighted round robin, as `ip_vs_wrr_schedule`: continue after the last
/// pick with the current weight `cw`; at the end of the list lower `cw` by the
/// gcd `di` (back to `mw` below 1) and scan again from the head. The dest with
/// the largest weight always qualifies, so the second scan finds one.
#[inline(always)]
fn wrr(svc: &Service, st: &mut SchedState) -> Option<usize> {
    let n = len(svc);
    let nlevels = svc.nlevels as usize;
    if svc.mw == 0 || n == 0 || nlevels == 0 || nlevels > MAX_SERVICE_DESTS {
        st.cl = SCHED_HEAD;
        return None;
    }
    // Read back from the state (map memory): one unknown value for the
    // verifier, whatever path computed it.
    let mut level = unsafe { core::ptr::read_volatile(&st.level) } as usize;
    let start = if st.cl == SCHED_HEAD {
        0
    } else {
        st.cl as usize + 1
    };
    let mut pos = if start < n && level < nlevels {
        next_at(svc, level, start)
    } else {
        SCHED_NONE
    };
    if pos == SCHED_NONE {
        // End of the list: the next pass, with cw lowered by di.
        let lowered = st.cw as i64 - svc.di as i64;
        if lowered <= 0 {
            st.cw = svc.mw;
            level = nlevels - 1;
        } else {
            st.cw = lowered as u32;
            // ceil(cw/di) went down by one: maybe to the level below.
            if level > 0 && level_at(svc, level - 1) >= units(st.cw, svc.di) {
                level -= 1;
            }
        }
        st.level = level as u32;
        pos = next_at(svc, level, 0);
    }
    if pos == SCHED_NONE || pos as usize >= n {
        st.cl = SCHED_HEAD;
        return None;
    }
    st.cl = pos as u32;
    Some(pos as usize)
}

/// Round robin, as `ip_vs_rr_schedule`: the first dest with weight > 0 after
/// the last pick, wrapping around once. The cursor is the last pick's slot,
/// so it stays on that dest when others are added or removed; if that dest
/// itself was removed the scan starts at the head (the kernel would start at
/// its predecessor).
#[inline(always)]
fn rr(svc: &Service, st: &mut SchedState) -> Option<usize> {
    let n = len(svc);
    if n == 0 || svc.nlevels == 0 {
        return None;
    }
    let mut base = 0usize;
    if st.rr_slot != SCHED_HEAD {
        let slot = st.rr_slot as usize;
        if slot < MAX_SERVICE_DESTS {
            let p = svc.pos_of_slot[masked(slot)] as usize;
            if p < n {
                base = p + 1;
            }
        }
    }
    let mut pos = if base < n {
        next_at(svc, 0, base)
    } else {
        SCHED_NONE
    };
    if pos == SCHED_NONE {
        pos = next_at(svc, 0, 0);
    }
    if pos == SCHED_NONE || pos as usize >= n {
        return None;
    }
    st.rr_slot = svc.slot_of_pos[masked(pos as usize)] as u32;
    Some(pos as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_common::ServiceDest;

    /// A tiny model of the controller: keeps the list newest-first and
    /// replays the kernel's wrr bookkeeping on every change.
    struct Svc(Service);

    impl Svc {
        fn new(sched: u32) -> Self {
            let mut s: Service = bytemuck_zeroed();
            s.sched = sched;
            s.epoch = 1;
            s.generation = 1;
            s.di = 1;
            s.slot_of_pos = [lb_common::SCHED_NONE; 64];
            Svc(s)
        }
        fn recompute(&mut self) {
            self.0.rebuild_sched();
        }
        fn add(&mut self, dest: u32, weight: u32) {
            let slot = self.0.free_slot().unwrap();
            let s = &mut self.0;
            let n = s.ndests as usize;
            s.dests.copy_within(0..n, 1);
            s.slot_of_pos.copy_within(0..n, 1);
            s.dests[0] = ServiceDest { dest, weight };
            s.slot_of_pos[0] = slot;
            s.ndests += 1;
            self.recompute();
        }
        fn set_weight(&mut self, dest: u32, weight: u32) {
            for d in self.0.dests.iter_mut() {
                if d.dest == dest {
                    d.weight = weight;
                }
            }
            self.recompute();
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

    fn bytemuck_zeroed<T: Copy>() -> T {
        // SAFETY: only used for the Pod types of lb-common, for which an
        // all-zero value is valid.
        unsafe { core::mem::zeroed() }
    }

    #[test]
    fn wrr_432_added_in_order_matches_the_kernel() {
        // LVS-SEMANTICS §5.2: R1=4, R2=3, R3=2 added in that order: the first
        // connections finish a cw=1 pass (R3, R2, R1), then the 9-cycle.
        let mut s = Svc::new(SCHED_WRR);
        s.add(1, 4);
        s.add(2, 3);
        s.add(3, 2);
        let mut st: SchedState = bytemuck_zeroed();
        let got = s.picks(&mut st, 3 + 9 + 9);
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
        let mut st: SchedState = bytemuck_zeroed();
        // The start-up cw=1 pass (list order R1, R2, R3), then the cycle of §5.2.
        let all = s.picks(&mut st, 12);
        assert_eq!(all, vec![1, 2, 3, 1, 1, 2, 1, 2, 3, 1, 2, 3]);

        let mut s = Svc::new(SCHED_WRR);
        s.add(2, 2);
        s.add(1, 4);
        let mut st: SchedState = bytemuck_zeroed();
        let got = s.picks(&mut st, 9);
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
            let mut st: SchedState = bytemuck_zeroed();
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
        let mut st: SchedState = bytemuck_zeroed();
        assert_eq!(s.picks(&mut st, 6), vec![3, 2, 1, 3, 2, 1]);
        // Remove the cursor's dest (3 was not last; pick 1 was last): remove 1.
        let n = s.0.ndests as usize;
        let pos = s.0.dests[..n].iter().position(|d| d.dest == 1).unwrap();
        s.0.dests.copy_within(pos + 1..n, pos);
        s.0.slot_of_pos.copy_within(pos + 1..n, pos);
        s.0.ndests -= 1;
        s.recompute();
        assert_eq!(s.picks(&mut st, 4), vec![3, 2, 3, 2]);
    }

    #[test]
    fn wrr_uneven_and_huge_weights() {
        // 10:1 → ten passes where only A qualifies, then one with both.
        let mut s = Svc::new(SCHED_WRR);
        s.add(2, 1);
        s.add(1, 10);
        let mut st: SchedState = bytemuck_zeroed();
        let got = s.picks(&mut st, 2 + 11 * 3);
        let steady = &got[2..];
        for cycle in steady.chunks(11) {
            assert_eq!(cycle.iter().filter(|d| **d == 2).count(), 1, "{got:?}");
        }
        // Weights sharing a gcd (6:4 → 3:2 in units of 2).
        let mut s = Svc::new(SCHED_WRR);
        s.add(1, 6);
        s.add(2, 4);
        let mut st: SchedState = bytemuck_zeroed();
        let got = s.picks(&mut st, 500);
        let ones = got.iter().filter(|d| **d == 1).count();
        assert!((ones as i64 - 300).abs() <= 3, "{ones}");
        // The largest weights: still a pick on every call.
        let mut s = Svc::new(SCHED_WRR);
        s.add(1, 65535);
        s.add(2, 65534);
        let mut st: SchedState = bytemuck_zeroed();
        assert!(s.picks(&mut st, 1000).iter().all(|d| *d == 1 || *d == 2));
    }

    #[test]
    fn weights_123_are_proportional() {
        let mut s = Svc::new(SCHED_WRR);
        s.add(1, 1);
        s.add(2, 2);
        s.add(3, 3);
        let mut st: SchedState = bytemuck_zeroed();
        let got = s.picks(&mut st, 600);
        let count = |d| got.iter().filter(|x| **x == d).count();
        // Within one start-up pass of exact shares.
        assert!((count(1) as i64 - 100).abs() <= 3);
        assert!((count(2) as i64 - 200).abs() <= 3);
        assert!((count(3) as i64 - 300).abs() <= 3);
    }
}
