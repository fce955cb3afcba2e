//! The IPVS rr and wrr schedulers (`ip_vs_rr.c`, `ip_vs_wrr.c`), run by each
//! CPU on its own state (`SchedState`) over the service's dest list, which the
//! controller keeps in LVS order (most recently added first).
//!
//! Every loop has a constant bound (`MAX_SERVICE_DESTS`) so the verifier can
//! prove termination; nothing here can panic.

use lb_common::{
    MAX_SERVICE_DESTS, SCHED_HEAD, SCHED_RR, SCHED_WRR, SchedState, Service, wrr_adjust_cw,
};

/// Brings a CPU's state up to date with the service: a state of another
/// service epoch (the id was reused, or this CPU never scheduled for it)
/// starts as the kernel's state would be with no picks made; a state of an
/// older generation gets the kernel's `dest_changed` adjustment, applied once
/// for all changes since this CPU's last pick.
#[inline(always)]
pub fn sync_state(svc: &Service, st: &mut SchedState) {
    if st.epoch != svc.epoch {
        st.epoch = svc.epoch;
        st.generation = svc.generation;
        st.cl = SCHED_HEAD;
        st.cw = svc.cw_seed;
        st.last_dest = SCHED_HEAD;
    } else if st.generation != svc.generation {
        st.generation = svc.generation;
        st.cl = SCHED_HEAD;
        st.cw = wrr_adjust_cw(st.cw, svc.di, svc.mw);
    }
}

/// Picks a dest for a new flow: its position in `svc.dests`, or `None` when
/// no dest may take new flows (none, or all quiescent).
#[inline(never)]
pub fn pick(svc: &Service, st: &mut SchedState) -> Option<usize> {
    sync_state(svc, st);
    match svc.sched {
        SCHED_WRR => wrr(svc, st),
        SCHED_RR => rr(svc, st),
        _ => None,
    }
}

#[inline(always)]
fn weight_at(svc: &Service, i: usize) -> u32 {
    match svc.dests.get(i) {
        Some(d) => d.weight,
        None => 0,
    }
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

/// Weighted round robin, as `ip_vs_wrr_schedule`: continue after the last
/// pick with the current weight `cw`; at the end of the list lower `cw` by the
/// gcd `di` (back to `mw` below 1) and scan again from the head. The dest with
/// the largest weight always satisfies `weight >= cw`, so the second scan
/// cannot come back empty while `mw > 0`.
#[inline(always)]
fn wrr(svc: &Service, st: &mut SchedState) -> Option<usize> {
    let n = len(svc);
    if svc.mw == 0 || n == 0 {
        st.cl = SCHED_HEAD;
        return None;
    }
    let start = if st.cl == SCHED_HEAD {
        0
    } else {
        st.cl as usize + 1
    };
    for i in 0..MAX_SERVICE_DESTS {
        if i >= n {
            break;
        }
        if i >= start && weight_at(svc, i) >= st.cw && st.cw > 0 {
            st.cl = i as u32;
            return Some(i);
        }
    }
    let lowered = st.cw as i64 - svc.di as i64;
    st.cw = if lowered <= 0 { svc.mw } else { lowered as u32 };
    for i in 0..MAX_SERVICE_DESTS {
        if i >= n {
            break;
        }
        if weight_at(svc, i) >= st.cw {
            st.cl = i as u32;
            return Some(i);
        }
    }
    st.cl = SCHED_HEAD;
    None
}

#[inline(always)]
fn rr_take(svc: &Service, st: &mut SchedState, i: usize) -> bool {
    match svc.dests.get(i) {
        Some(d) if d.weight > 0 => {
            st.cl = i as u32;
            st.last_dest = d.dest;
            true
        }
        _ => false,
    }
}

/// Round robin, as `ip_vs_rr_schedule`: the first dest with weight > 0 after
/// the last pick, wrapping around once. The cursor is remembered as a dest id
/// so that it survives list changes; if its dest is gone the scan starts at
/// the head.
#[inline(always)]
fn rr(svc: &Service, st: &mut SchedState) -> Option<usize> {
    let n = len(svc);
    if n == 0 {
        return None;
    }
    // Where is the last pick now? (Its position moves when dests are added
    // or removed.)
    if st.last_dest != SCHED_HEAD {
        let cached = st.cl as usize;
        let still_there = cached < n && svc.dests.get(cached).map(|d| d.dest) == Some(st.last_dest);
        if !still_there {
            st.cl = SCHED_HEAD;
            for i in 0..MAX_SERVICE_DESTS {
                if i >= n {
                    break;
                }
                if svc.dests.get(i).map(|d| d.dest) == Some(st.last_dest) {
                    st.cl = i as u32;
                    break;
                }
            }
        }
    }
    // Read the cursor back from the state (map memory): the verifier then
    // sees one unknown start instead of one constant per loop exit above,
    // and checks the scan below once.
    let cl = unsafe { core::ptr::read_volatile(&st.cl) };
    let base = if st.last_dest == SCHED_HEAD || cl == SCHED_HEAD || cl as usize >= n {
        0
    } else {
        cl as usize + 1
    };
    // After the cursor to the end, then from the head up to the cursor.
    for i in 0..MAX_SERVICE_DESTS {
        if i >= n {
            break;
        }
        if i >= base && rr_take(svc, st, i) {
            return Some(i);
        }
    }
    for i in 0..MAX_SERVICE_DESTS {
        if i >= n || i >= base {
            break;
        }
        if rr_take(svc, st, i) {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_common::ServiceDest;

    /// A tiny model of the controller: keeps the list newest-first and
    /// replays the kernel's wrr bookkeeping on every change.
    struct Svc(Service);

    fn gcd(a: u32, b: u32) -> u32 {
        if b == 0 { a } else { gcd(b, a % b) }
    }

    impl Svc {
        fn new(sched: u32) -> Self {
            let mut s: Service = bytemuck_zeroed();
            s.sched = sched;
            s.epoch = 1;
            s.generation = 1;
            s.di = 1;
            Svc(s)
        }
        fn recompute(&mut self) {
            let s = &mut self.0;
            let ws: Vec<u32> = s.dests[..s.ndests as usize].iter().map(|d| d.weight).collect();
            let di = ws.iter().filter(|w| **w > 0).fold(0, |g, w| gcd(*w, g));
            s.di = if di == 0 { 1 } else { di };
            let max = ws.iter().copied().max().unwrap_or(0);
            s.mw = max.saturating_sub(s.di - 1);
            s.cw_seed = wrr_adjust_cw(s.cw_seed, s.di, s.mw);
            s.generation += 1;
        }
        fn add(&mut self, dest: u32, weight: u32) {
            let s = &mut self.0;
            let n = s.ndests as usize;
            s.dests.copy_within(0..n, 1);
            s.dests[0] = ServiceDest { dest, weight };
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
        let keep: Vec<ServiceDest> =
            s.0.dests[..n].iter().copied().filter(|d| d.dest != 1).collect();
        for (i, d) in keep.iter().enumerate() {
            s.0.dests[i] = *d;
        }
        s.0.ndests = keep.len() as u32;
        s.recompute();
        assert_eq!(s.picks(&mut st, 4), vec![3, 2, 3, 2]);
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
