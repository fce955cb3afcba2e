//! Weighted round robin, as `ip_vs_wrr_schedule` (docs/SEMANTICS.md §5.2).

use lb_common::{SCHED_HEAD, SchedState, Service};

use super::{Nodes, OVERLOADED, first_at_least, overloaded, pack};

/// Continue after the last pick with the current weight `cw`; at the end of
/// the list lower `cw` by the gcd `di` (back to `mw` below 1) and scan again
/// from the head. Without overloaded dests the dest with the largest weight
/// always qualifies, so the second search of the weight tree finds one. If
/// a search finds an overloaded dest, the pick is left to the scan of
/// `overload.rs`, which skips the passes that cannot find one ([`passes`]).
#[inline(always)]
pub(super) fn pick<N: Nodes>(svc: &Service, st: &mut SchedState, nodes: &N) -> u64 {
    if svc.mw == 0 || svc.ndests == 0 {
        st.cl = SCHED_HEAD;
        return pack(None);
    }
    let at_head = st.cl == SCHED_HEAD;
    let start = if at_head { 0 } else { st.cl.wrapping_add(1) };
    let mut cw = st.cw;
    let mut found = first_at_least(svc, nodes, start, cw);
    if found.is_none() {
        // The largest weight of all (the tree's root): with no dest of that
        // weight overloaded, the pass that finds one.
        let largest = nodes.node(svc, 1).map_or(0, |n| n.weight);
        match passes(cw, svc.di, svc.mw, largest, at_head) {
            Passes::Found(t) => {
                cw = t;
                found = first_at_least(svc, nodes, 0, t);
            }
            // Not without overloaded dests: leave it to the scan.
            Passes::Over { .. } => return OVERLOADED,
        }
    }
    match found {
        Some(p) if overloaded(nodes, p.dest) => OVERLOADED,
        Some(p) => {
            st.cw = cw;
            st.cl = p.pos;
            pack(Some(p))
        }
        None => OVERLOADED,
    }
}

/// How the kernel's loop ends once the scan from the cursor found nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passes {
    /// A pass from the head with this `cw` finds a dest.
    Found(u32),
    /// "All destinations are overloaded": the loop stops at the cursor (the
    /// cursor stays) or at the head (the cursor goes to the head), leaving
    /// `cw`.
    Over { at_cursor: bool, cw: u32 },
}

/// The passes of `ip_vs_wrr_schedule` after the first scan (from after the
/// cursor with `cw`) found nothing, without walking them: `largest` is the
/// largest weight of the dests that are not overloaded (0: none), and a
/// pass from the head with threshold `t` finds a dest exactly when
/// `t <= largest`. The kernel lowers `cw` by `di` per pass; at or below 0
/// it goes back to `mw`, or stops ("all destinations are overloaded") if a
/// pass with `cw <= di` was already made or the scan began at the head;
/// after going back, the pass with `cw <= di` stops at the cursor.
pub fn passes(cw: u32, di: u32, mw: u32, largest: u32, at_head: bool) -> Passes {
    let di = di.max(1) as i64;
    let (mw, m) = (mw as i64, largest as i64);
    let floor = if m > di { m } else { di };
    let mut cw = cw as i64 - di;
    let mut restarted = false;
    let mut passed = false;
    for _ in 0..3 {
        if cw <= 0 {
            if passed || at_head {
                break;
            }
            cw = mw;
            restarted = true;
        }
        // The first threshold of cw, cw - di, ... at or below the floor: every
        // pass before it finds nothing.
        let t = if cw <= floor {
            cw
        } else {
            // cw > floor >= di > 0 (unsigned: BPF has no signed division).
            let steps = (cw - floor + di - 1) as u64 / di as u64;
            cw - steps as i64 * di
        };
        passed = true;
        if t <= m {
            return Passes::Found(t as u32);
        }
        // Here t <= di: the last pass.
        if restarted && !at_head {
            return Passes::Over {
                at_cursor: true,
                cw: t as u32,
            };
        }
        cw = t - di;
    }
    Passes::Over {
        at_cursor: false,
        cw: mw as u32,
    }
}
