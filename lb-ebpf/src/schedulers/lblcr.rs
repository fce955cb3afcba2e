//! Locality-based least connection with replication, as
//! `ip_vs_lblcr_schedule` (docs/SEMANTICS.md §5.16).

use lb_common::{LBLC_EXPIRATION_NS, LBLCR_SET_MAX, LblcEntry, LblcKey, Service, SetDest};

use super::locality::{NONE, known, least, live, remember, usable};
use super::{Nodes, Pick, pack, scan::Steps, unpack};

/// With an entry for the packet's destination address: the least loaded
/// dest of its set (`ip_vs_dest_set_min`); a set of more than one dest
/// unchanged for the expiration first loses its most loaded dest
/// (`ip_vs_dest_set_max`); if the least loaded is missing or
/// `is_overloaded`, the weighted least-connection dest of the list, added
/// to the set. Without an entry: that dest, in a new set of one. A
/// subprogram of its own, so that its locals do not weigh on the caller's
/// stack.
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
    let entry = nodes.lblc_entry(&key).filter(|e| live(svc, e, now));
    if let Some(e) = entry {
        e.lastuse = now;
        let i = set_walk(svc, nodes, e, false);
        // The set's least loaded, if it may take the flow (its
        // `is_overloaded` does not depend on the set, so it is asked
        // before the shrink below, which the kernel does in between).
        let min = match e.set.get(i as usize & (LBLCR_SET_MAX - 1)) {
            Some(sd) if i != NO_INDEX => usable(svc, nodes, *sd, true),
            _ => NONE,
        };
        if e.size > 1 && now.wrapping_sub(e.lastmod) > LBLC_EXPIRATION_NS {
            let most = set_walk(svc, nodes, e, true);
            if most != NO_INDEX {
                erase(e, most as usize);
                e.lastmod = now;
            }
        }
        if let Some(p) = unpack(min) {
            return Some(p);
        }
    }
    let p = unpack(least(svc, nodes))?;
    let d = remember(nodes, p);
    match nodes.lblc_entry(&key).filter(|e| live(svc, e, now)) {
        Some(e) => {
            if insert(e, d) {
                e.lastmod = now;
            }
        }
        None => nodes.lblc_new(&key, svc.epoch, d, now),
    }
    Some(p)
}

/// The entries of the set, as many as `size` says (at most the array).
#[inline(always)]
fn len(e: &LblcEntry) -> usize {
    (e.size as usize).min(LBLCR_SET_MAX)
}

const _: () = assert!(LBLCR_SET_MAX.is_power_of_two());

/// "None" for [`set_walk`].
const NO_INDEX: u32 = u32::MAX;

/// A walk over an entry's set, looking for its weighted least
/// (`ip_vs_dest_set_min`) or most (`ip_vs_dest_set_max`) loaded dest; run
/// as one [`Nodes::run`], so that the verifier checks one step, not every
/// dest of the set.
struct SetWalk<'a> {
    e: &'a LblcEntry,
    len: u32,
    most: bool,
    best: u32,
    cost: u32,
    weight: u32,
}

impl Steps for SetWalk<'_> {
    #[inline(always)]
    fn step<N: Nodes>(&mut self, nodes: &N, svc: &Service, i: u32) -> bool {
        if i >= self.len {
            return false;
        }
        // Masked as well: the verifier bounds the register it indexes with
        // only through an operation on that register.
        let Some(sd) = self.e.set.get(i as usize & (LBLCR_SET_MAX - 1)) else {
            return false;
        };
        let k = known(svc, nodes, *sd);
        let doh = k.conns.overhead() as u64;
        let (w, bw, boh) = (k.weight as u64, self.weight as u64, self.cost as u64);
        let better = if self.most {
            // Any member with weight > 0, available or not, over its
            // threshold or not; a later one if strictly more loaded.
            !k.gone && k.weight > 0 && (self.best == NO_INDEX || boh * w < doh * bw)
        } else {
            // Available members not over their threshold; the first with
            // weight > 0, a later one if strictly less loaded.
            k.available
                && k.conns.overloaded == 0
                && if self.best == NO_INDEX {
                    k.weight > 0
                } else {
                    boh * w > doh * bw
                }
        };
        if better {
            self.best = i;
            self.cost = k.conns.overhead();
            self.weight = k.weight;
        }
        true
    }
}

/// The index in the set of its least loaded usable dest
/// (`ip_vs_dest_set_min`) or, with `most`, of its most loaded dest of
/// weight > 0 (`ip_vs_dest_set_max`); `NO_INDEX` if there is none.
#[inline(never)]
fn set_walk<N: Nodes>(svc: &Service, nodes: &N, e: &LblcEntry, most: bool) -> u32 {
    let mut w = SetWalk {
        e,
        len: len(e) as u32,
        most,
        best: NO_INDEX,
        cost: 0,
        weight: 0,
    };
    nodes.run(svc, w.len, &mut w);
    w.best
}

/// `ip_vs_dest_set_erase`: drops entry `i` of the set.
#[inline(always)]
fn erase(e: &mut LblcEntry, i: usize) {
    for j in 0..LBLCR_SET_MAX - 1 {
        if j >= i
            && let Some(next) = e.set.get(j + 1).copied()
            && let Some(slot) = e.set.get_mut(j)
        {
            *slot = next;
        }
    }
    if let Some(last) = e.set.last_mut() {
        *last = SetDest::default();
    }
    e.size = (len(e) as u32).saturating_sub(1);
}

/// `ip_vs_dest_set_insert` with its check: adds `d` at the head unless the
/// set holds it already (false then). A full set drops the dest added
/// longest ago (the kernel's set has no bound).
#[inline(always)]
fn insert(e: &mut LblcEntry, d: SetDest) -> bool {
    for i in 0..LBLCR_SET_MAX {
        if i < len(e) && e.set.get(i) == Some(&d) {
            return false;
        }
    }
    let n = len(e);
    for j in (1..LBLCR_SET_MAX).rev() {
        if let Some(prev) = e.set.get(j - 1).copied()
            && let Some(slot) = e.set.get_mut(j)
        {
            *slot = prev;
        }
    }
    if let Some(first) = e.set.first_mut() {
        *first = d;
    }
    e.size = (n + 1).min(LBLCR_SET_MAX) as u32;
    true
}
