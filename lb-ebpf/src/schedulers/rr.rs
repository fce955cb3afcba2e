//! Round robin, as `ip_vs_rr_schedule` (docs/SEMANTICS.md §5.1).

use lb_common::{NO_DEST, SchedState, Service};

use super::{Nodes, OVERLOADED, first_at_least, overloaded, pack};

/// Where the scan starts: after the cursor. The cursor is the last pick's
/// dest, so it stays on that dest when others are added or removed (its
/// place is read from `DESTS` and checked against the list); if that dest
/// itself was removed the scan starts at the head (the kernel would start
/// at its predecessor).
#[inline(always)]
pub(super) fn start<N: Nodes>(svc: &Service, st: &SchedState, nodes: &N) -> u32 {
    if st.rr_dest != NO_DEST
        && let Some(rank) = nodes.dest_rank(st.rr_dest)
        && rank < svc.ndests
        && let p = svc.ndests - 1 - rank
        && nodes
            .node(svc, svc.cap.wrapping_add(p))
            .is_some_and(|n| n.dest == st.rr_dest)
    {
        return p + 1;
    }
    0
}

/// The first dest with weight > 0 that is not overloaded after the last
/// pick, wrapping around once: one or two searches of the weight tree. If
/// the dest a search finds is overloaded, the pick is left to the scan of
/// `overload.rs`.
#[inline(always)]
pub(super) fn pick<N: Nodes>(svc: &Service, st: &mut SchedState, nodes: &N) -> u64 {
    let start = start(svc, st, nodes);
    let found = match first_at_least(svc, nodes, start, 1) {
        Some(p) => Some(p),
        None if start > 0 => first_at_least(svc, nodes, 0, 1),
        None => None,
    };
    match found {
        Some(p) if overloaded(nodes, p.dest) => OVERLOADED,
        Some(p) => {
            st.rr_dest = p.dest;
            pack(Some(p))
        }
        None => pack(None),
    }
}
