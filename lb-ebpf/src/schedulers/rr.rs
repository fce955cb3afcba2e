//! Round robin, as `ip_vs_rr_schedule` (docs/SEMANTICS.md §5.1).

use lb_common::{MAX_SERVICE_DESTS, SCHED_HEAD, SCHED_NONE, SchedState, Service};

use super::{len, masked, next_at};

/// The first dest with weight > 0 after the last pick, wrapping around once.
/// The cursor is the last pick's slot, so it stays on that dest when others
/// are added or removed; if that dest itself was removed the scan starts at
/// the head (the kernel would start at its predecessor).
#[inline(always)]
pub(super) fn pick(svc: &Service, st: &mut SchedState) -> Option<usize> {
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
