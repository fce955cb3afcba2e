//! What lblc and lblcr share: the weighted least-connection pick over the
//! whole list (`__ip_vs_lblc_schedule`, `__ip_vs_lblcr_schedule`, which
//! are wlc's), their `is_overloaded` (a scan of the list), a remembered
//! dest read back, and whether an entry is there.

use lb_common::{DestConns, LBLC_EXPIRATION_NS, LblcEntry, NO_DEST, Service, ServiceDest, SetDest};

use super::{Nodes, Pick, pack, scan::Scan, wlc};

/// "No pick" as [`pack`] gives it.
pub(super) const NONE: u64 = u64::MAX;

/// The weighted least-connection dest of the list
/// (`__ip_vs_lblc_schedule`, `__ip_vs_lblcr_schedule`: wlc's loop), packed;
/// `NONE` if every dest is overloaded or quiescent. A subprogram of its own
/// (its state off the caller's stack).
#[inline(never)]
pub(super) fn least<N: Nodes>(svc: &Service, nodes: &N) -> u64 {
    pack(wlc::pick(svc, nodes))
}

/// The remembered dest `sd`, packed, if it may take the flow: in the list,
/// not over its upper threshold when `threshold` (lblcr's set members; lblc
/// does not look), weight > 0 and not `is_overloaded`; else `NONE`.
#[inline(never)]
pub(super) fn usable<N: Nodes>(svc: &Service, nodes: &N, sd: SetDest, threshold: bool) -> u64 {
    let k = known(svc, nodes, sd);
    if !k.available
        || k.weight == 0
        || (threshold && k.conns.overloaded != 0)
        || is_overloaded(svc, nodes, &k)
    {
        return NONE;
    }
    pack(Some(k.pick()))
}

/// Whether some dest of the list has `activeconns * 2 < weight`.
struct Underloaded {
    found: bool,
}

impl Scan for Underloaded {
    #[inline(always)]
    fn step<N: Nodes>(&mut self, nodes: &N, _pos: u32, node: ServiceDest) -> bool {
        let active = match nodes.conns(node.dest) {
            Some(c) => c.active_now(),
            None => 0,
        };
        if (active as u64) * 2 < node.weight as u64 {
            self.found = true;
            return false;
        }
        true
    }
}

/// lblc's and lblcr's `is_overloaded`: the dest has more active conns than
/// its weight, and some dest of the service has fewer than half its weight.
#[inline(always)]
pub(super) fn is_overloaded<N: Nodes>(svc: &Service, nodes: &N, d: &Known) -> bool {
    if d.conns.active_now() <= d.weight {
        return false;
    }
    let mut u = Underloaded { found: false };
    nodes.scan(svc, 0, &mut u);
    u.found
}

/// A remembered dest read back: whether its slot still holds it, where it
/// is in the list now (if it is still there), its weight and its counts.
/// Every field is set whatever the outcome (no `Option`: a value left
/// undefined in one branch can reach the verifier as an unreadable
/// register).
#[derive(Clone, Copy)]
pub(super) struct Known {
    pub dest: SetDest,
    /// The slot went to another real since, or cannot be read: the kernel's
    /// dest would be gone (never available, and counted as weight 0 here,
    /// its last weight being unknown).
    pub gone: bool,
    /// In the service's list now (the kernel's `IP_VS_DEST_F_AVAILABLE`).
    pub available: bool,
    pub pos: u32,
    pub weight: u32,
    pub conns: DestConns,
}

impl Known {
    pub fn pick(&self) -> Pick {
        Pick {
            pos: self.pos,
            dest: self.dest.dest,
        }
    }
}

/// Reads back a remembered dest.
#[inline(always)]
pub(super) fn known<N: Nodes>(svc: &Service, nodes: &N, sd: SetDest) -> Known {
    let mut k = Known {
        dest: sd,
        gone: true,
        available: false,
        pos: 0,
        weight: 0,
        conns: DestConns::default(),
    };
    let Some(st) = nodes.dest_state(sd.dest) else {
        return k;
    };
    if st.generation != sd.generation {
        return k;
    }
    k.gone = false;
    k.weight = st.weight;
    if st.available && st.rank < svc.ndests {
        k.pos = svc.ndests - 1 - st.rank;
        // A plain default, not `is_some_and`: LLVM may otherwise compare
        // the undefined payload of a `None` and mask the result, which
        // the verifier refuses (an unreadable register).
        let mut at = NO_DEST;
        if let Some(n) = nodes.node(svc, svc.cap.wrapping_add(k.pos)) {
            at = n.dest;
        }
        k.available = at == sd.dest;
    }
    if let Some(c) = nodes.conns(sd.dest) {
        k.conns = c;
    }
    k
}

/// The remembered form of a pick.
#[inline(always)]
pub(super) fn remember<N: Nodes>(nodes: &N, p: Pick) -> SetDest {
    SetDest {
        dest: p.dest,
        generation: nodes.dest_state(p.dest).map_or(0, |s| s.generation),
    }
}

/// Whether an entry is there for the service now: made under its epoch,
/// not empty, and used within the expiration (the kernel's 24 h sweep,
/// applied when the entry is looked up).
#[inline(always)]
pub(super) fn live(svc: &Service, e: &LblcEntry, now: u64) -> bool {
    e.epoch == svc.epoch && e.size > 0 && now.wrapping_sub(e.lastuse) < LBLC_EXPIRATION_NS
}
