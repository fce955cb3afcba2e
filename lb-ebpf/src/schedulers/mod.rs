//! The schedulers: which real server takes a new flow, as IPVS's scheduler
//! modules decide it (`ip_vs_rr.c`, `ip_vs_wrr.c`; docs/SEMANTICS.md §5).
//! Pure logic over the service's precomputed tables, no map access: each CPU
//! runs the kernel's state machine on its own state (`SchedState`) over the
//! service's dest list, which the controller keeps in LVS order (most
//! recently added first).
//!
//! A pick is O(1): the controller precomputes, per weight level, the next
//! eligible position after every position (lb-user's `sched_table`), so the
//! packet path never loops over the reals. Only a CPU that sees a new
//! generation of the service searches the levels once. Nothing here can
//! panic; every index goes through `get` or a mask.
//!
//! One file per scheduler; [`pick`] dispatches on `Service::sched`. This
//! module refers to nothing outside itself but lb-common, so that lb-user's
//! tests can run it over the tables the controller builds.

mod rr;
mod wrr;

use lb_common::{
    MAX_SERVICE_DESTS, SCHED_HEAD, SCHED_NONE, SCHED_RR, SCHED_WRR, SchedState, Service,
    wrr_adjust_cw,
};

/// Picks a dest for a new flow: its position in `svc.dests`, or `None` when
/// no dest may take new flows (none, all quiescent, or an unknown scheduler).
#[inline(always)]
pub fn pick(svc: &Service, st: &mut SchedState) -> Option<usize> {
    sync_state(svc, st);
    match svc.sched {
        SCHED_WRR => wrr::pick(svc, st),
        SCHED_RR => rr::pick(svc, st),
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
    st.level = wrr::find_level(svc, cw);
}

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

/// `next[level][pos]`: the first eligible position `>= pos` at that level.
#[inline(always)]
fn next_at(svc: &Service, level: usize, pos: usize) -> u8 {
    if level >= MAX_SERVICE_DESTS || pos >= MAX_SERVICE_DESTS {
        return SCHED_NONE;
    }
    svc.next[masked(level)][masked(pos)]
}

/// The number of valid entries of the dest list, bounded.
#[inline(always)]
fn len(svc: &Service) -> usize {
    let n = svc.ndests as usize;
    if n > MAX_SERVICE_DESTS {
        MAX_SERVICE_DESTS
    } else {
        n
    }
}
