//! Weighted round robin, as `ip_vs_wrr_schedule` (docs/SEMANTICS.md §5.2).

use lb_common::{SCHED_HEAD, SchedState, Service};

use super::{Nodes, Pick, first_at_least};

/// Continue after the last pick with the current weight `cw`; at the end of
/// the list lower `cw` by the gcd `di` (back to `mw` below 1) and scan again
/// from the head. The dest with the largest weight always qualifies, so the
/// second scan finds one.
#[inline(always)]
pub(super) fn pick<N: Nodes>(svc: &Service, st: &mut SchedState, nodes: &N) -> Option<Pick> {
    if svc.mw == 0 || svc.ndests == 0 {
        st.cl = SCHED_HEAD;
        return None;
    }
    let start = if st.cl == SCHED_HEAD {
        0
    } else {
        st.cl.wrapping_add(1)
    };
    let mut found = first_at_least(svc, nodes, start, st.cw);
    if found.is_none() {
        // End of the list: the next pass, with cw lowered by di.
        let lowered = st.cw as i64 - svc.di as i64;
        st.cw = if lowered <= 0 { svc.mw } else { lowered as u32 };
        found = first_at_least(svc, nodes, 0, st.cw);
    }
    match found {
        Some(p) => {
            st.cl = p.pos;
            Some(p)
        }
        None => {
            st.cl = SCHED_HEAD;
            None
        }
    }
}
