//! Locality-based least connection, as `ip_vs_lblc_schedule`
//! (docs/SEMANTICS.md §5.15).

use lb_common::{LblcKey, NO_DEST, Service, SetDest};

use super::locality::{least, live, remember, usable};
use super::{Nodes, Pick, pack, unpack};

/// The dest the entry of the packet's destination address names, if it is
/// still in the list with weight > 0 and not `is_overloaded` (lblc does not
/// look at the upper threshold of a remembered dest, as the kernel's);
/// otherwise the weighted least-connection dest, which the entry then
/// names (`ip_vs_lblc_new`: a new entry unless it named that dest already).
/// A subprogram of its own, so that its locals do not weigh on the
/// caller's stack; the pick comes back packed in one register.
#[inline(never)]
pub(super) fn pick<N: Nodes>(svc: &Service, nodes: &N) -> u64 {
    pack(pick_inner(svc, nodes))
}

#[inline(always)]
fn pick_inner<N: Nodes>(svc: &Service, nodes: &N) -> Option<Pick> {
    let key = LblcKey {
        svc: svc.id,
        addr: nodes.daddr(svc)?,
    };
    let now = nodes.now();
    let mut cached = SetDest {
        dest: NO_DEST,
        generation: 0,
    };
    if let Some(e) = nodes.lblc_entry(&key)
        && live(svc, e, now)
    {
        e.lastuse = now;
        cached = e.set[0];
        if let Some(p) = unpack(usable(svc, nodes, cached, false)) {
            return Some(p);
        }
    }
    let p = unpack(least(svc, nodes))?;
    let d = remember(nodes, p);
    if cached != d {
        nodes.lblc_new(&key, svc.epoch, d, now);
    }
    Some(p)
}
