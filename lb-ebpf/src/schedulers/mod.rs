//! The schedulers: which real server takes a new flow, as IPVS's scheduler
//! modules decide it (`ip_vs_rr.c`, `ip_vs_wrr.c`; docs/SEMANTICS.md §5).
//! Pure logic over the service's dest list and weight tree, reached through
//! [`Nodes`]: each CPU runs the kernel's state machine on its own state
//! (`SchedState`) over the service's dest list, which the controller keeps
//! in LVS order (most recently added first).
//!
//! rr and wrr both ask "the first dest at or after position p whose weight
//! is at least w" ([`first_at_least`]). The controller keeps, beside the
//! list, a max-tree of the weights (lb-common's `ServiceDest` documents the
//! block; lb-user's `sched_table` builds it), so the answer takes at most
//! `2 * SVC_TREE_DEPTH` reads whatever the number of reals: the packet path
//! never loops over the reals, and the verifier sees two short bounded
//! loops. Nothing here can panic.
//!
//! One file per scheduler; [`pick`] dispatches on `Service::sched`. This
//! module refers to nothing outside itself but lb-common, so that lb-user's
//! tests can run it over the blocks the controller builds.

mod rr;
mod wrr;

use lb_common::{
    NO_DEST, SCHED_HEAD, SCHED_RR, SCHED_WRR, SVC_TREE_DEPTH, SchedState, Service, ServiceDest,
    wrr_adjust_cw,
};

/// A service's block of `SVC_DESTS`, as the scheduler reads it: the packet
/// path reads the map, the host tests a slice.
pub trait Nodes {
    /// Entry `i` of the service's block (`ServiceDest` says what each is).
    fn node(&self, svc: &Service, i: u32) -> Option<ServiceDest>;
    /// The `rank` `DESTS` records for `dest` (its place in its service's
    /// list counted from the tail).
    fn dest_rank(&self, dest: u32) -> Option<u32>;
}

/// A pick: the position in the list and the `DESTS` slot there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick {
    pub pos: u32,
    pub dest: u32,
}

/// Picks a dest for a new flow, or `None` when no dest may take new flows
/// (none, all quiescent, or an unknown scheduler).
#[inline(always)]
pub fn pick<N: Nodes>(svc: &Service, st: &mut SchedState, nodes: &N) -> Option<Pick> {
    sync_state(svc, st);
    match svc.sched {
        SCHED_WRR => wrr::pick(svc, st, nodes),
        SCHED_RR => rr::pick(svc, st, nodes),
        _ => None,
    }
}

/// Brings a CPU's state up to date with the service: a state of another
/// epoch (new service, or this CPU never scheduled for it) starts as the
/// kernel's state would be with no picks made; a state of an older
/// generation gets the kernel's `dest_changed` adjustment, applied once for
/// all changes since this CPU's last pick.
#[inline(always)]
fn sync_state(svc: &Service, st: &mut SchedState) {
    let cw = if st.epoch != svc.epoch {
        st.epoch = svc.epoch;
        st.rr_dest = NO_DEST;
        svc.cw_seed
    } else if st.generation != svc.generation {
        wrr_adjust_cw(st.cw, svc.di, svc.mw)
    } else {
        return;
    };
    st.generation = svc.generation;
    st.cl = SCHED_HEAD;
    st.cw = cw;
}

/// The weight at entry `i` of the block (0 when unreadable).
#[inline(always)]
fn weight<N: Nodes>(nodes: &N, svc: &Service, i: u32) -> u32 {
    match nodes.node(svc, i) {
        Some(n) => n.weight,
        None => 0,
    }
}

/// The first position `>= pos` of the list whose dest has weight `>= w`
/// (`w >= 1`), with its dest; `None` if there is none. Climbs from the
/// leaf of `pos` to the first right sibling whose subtree holds such a
/// weight, then descends to its leftmost such leaf. Not inlined: rr and wrr
/// call it twice each, and one copy keeps the program small.
#[inline(never)]
pub fn first_at_least<N: Nodes>(svc: &Service, nodes: &N, pos: u32, w: u32) -> Option<Pick> {
    let cap = svc.cap;
    if pos >= svc.ndests || pos >= cap || w == 0 {
        return None;
    }
    let mut i = cap + pos;
    if weight(nodes, svc, i) < w {
        let mut found = false;
        for _ in 0..SVC_TREE_DEPTH {
            if i <= 1 {
                break;
            }
            if i & 1 == 0 && weight(nodes, svc, i + 1) >= w {
                i += 1;
                found = true;
                break;
            }
            i >>= 1;
        }
        if !found {
            return None;
        }
        for _ in 0..SVC_TREE_DEPTH {
            if i >= cap {
                break;
            }
            i *= 2;
            if weight(nodes, svc, i) < w {
                i += 1;
            }
        }
    }
    if i < cap {
        return None;
    }
    let pos = i - cap;
    let n = nodes.node(svc, i)?;
    if pos >= svc.ndests || n.dest == NO_DEST || n.weight < w {
        return None;
    }
    Some(Pick { pos, dest: n.dest })
}
