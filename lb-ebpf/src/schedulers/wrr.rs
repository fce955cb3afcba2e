//! Weighted round robin, as `ip_vs_wrr_schedule` (docs/SEMANTICS.md §5.2).

use lb_common::{MAX_SERVICE_DESTS, SCHED_HEAD, SCHED_NONE, SchedState, Service};

use super::{len, masked, next_at};

/// Continue after the last pick with the current weight `cw`; at the end of
/// the list lower `cw` by the gcd `di` (back to `mw` below 1) and scan again
/// from the head. The dest with the largest weight always qualifies, so the
/// second scan finds one.
#[inline(always)]
pub(super) fn pick(svc: &Service, st: &mut SchedState) -> Option<usize> {
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

/// The first level holding at least `units(cw)`; `nlevels` if none.
#[inline(always)]
pub(super) fn find_level(svc: &Service, cw: u32) -> u32 {
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
