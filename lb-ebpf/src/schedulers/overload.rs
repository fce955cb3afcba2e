//! rr's and wrr's way past an overloaded dest (docs/SEMANTICS.md §5.1,
//! §5.2): the kernel's loops go on past it, so the pick becomes scans of
//! the list. Only when a search of the weight tree found an overloaded
//! dest: a service without one never comes here.

use lb_common::{SCHED_HEAD, SCHED_RR, SchedState, Service, ServiceDest};

use super::{
    Nodes, Pick, overloaded, rr,
    scan::Scan,
    wrr::{Passes, passes},
};

/// The pick of rr or wrr (`svc.sched`) by scans alone, with the state
/// updated as the kernel's loop leaves it; as one BPF subprogram, called
/// from one place, so that its scans are verified once. The pick comes back
/// as [`super::pack`]s it.
#[inline(never)]
pub(super) fn pick<N: Nodes>(svc: &Service, st: &mut SchedState, nodes: &N) -> u64 {
    super::pack(pick_by_scans(svc, st, nodes))
}

#[inline(always)]
fn pick_by_scans<N: Nodes>(svc: &Service, st: &mut SchedState, nodes: &N) -> Option<Pick> {
    let is_rr = svc.sched == SCHED_RR;
    let at_head = st.cl == SCHED_HEAD;
    let (start, cw) = if is_rr {
        (rr::start(svc, st, nodes), 1)
    } else if at_head {
        (0, st.cw)
    } else {
        (st.cl.wrapping_add(1), st.cw)
    };
    // One walk's state serves every scan (the stack is short).
    let mut walk = Walk::new(cw, true);
    // The scan after the cursor.
    nodes.scan(svc, start, &mut walk);
    if walk.found.is_none() {
        // The whole list: rr's second pass, and the largest weight wrr's
        // passes need.
        walk = Walk::new(1, false);
        nodes.scan(svc, 0, &mut walk);
        if !is_rr {
            match passes(cw, svc.di, svc.mw, walk.largest, at_head) {
                Passes::Found(t) => {
                    walk = Walk::new(t, true);
                    nodes.scan(svc, 0, &mut walk);
                    if walk.found.is_some() {
                        st.cw = t;
                    }
                }
                Passes::Over { at_cursor, cw } => {
                    st.cw = cw;
                    if !at_cursor {
                        st.cl = SCHED_HEAD;
                    }
                    return None;
                }
            }
        }
    }
    let p = walk.found?;
    if is_rr {
        st.rr_dest = p.dest;
    } else {
        st.cl = p.pos;
    }
    Some(p)
}

/// The scans of rr and wrr: the first dest with weight `>= w` (and > 0)
/// that is not overloaded, and the largest weight of those not overloaded.
/// With `stop`, the scan ends at the first.
struct Walk {
    w: u32,
    stop: bool,
    found: Option<Pick>,
    largest: u32,
}

impl Walk {
    fn new(w: u32, stop: bool) -> Self {
        Walk {
            w,
            stop,
            found: None,
            largest: 0,
        }
    }
}

impl Scan for Walk {
    #[inline(always)]
    fn step<N: Nodes>(&mut self, nodes: &N, pos: u32, node: ServiceDest) -> bool {
        if node.weight == 0 || overloaded(nodes, node.dest) {
            return true;
        }
        if node.weight > self.largest {
            self.largest = node.weight;
        }
        if self.found.is_none() && node.weight >= self.w {
            self.found = Some(Pick {
                pos,
                dest: node.dest,
            });
            return !self.stop;
        }
        true
    }
}
