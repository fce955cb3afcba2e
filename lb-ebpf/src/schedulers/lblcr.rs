//! Locality-based least connection with replication, as
//! `ip_vs_lblcr_schedule` (docs/SEMANTICS.md §5.11).

use lb_common::{LBLC_EXPIRATION_NS, LBLCR_SET_MAX, LblcEntry, LblcKey, Service, SetDest};

use super::least::{is_overloaded, known, least, live, remember};
use super::{Nodes, Pick, opaque};

/// With an entry for the packet's destination address: the least loaded
/// dest of its set (`ip_vs_dest_set_min`); a set of more than one dest
/// unchanged for the expiration first loses its most loaded dest
/// (`ip_vs_dest_set_max`); if the least loaded is missing or
/// `is_overloaded`, the weighted least-connection dest of the list, added
/// to the set. Without an entry: that dest, in a new set of one. A
/// subprogram of its own, so that its locals do not weigh on the caller's
/// stack.
#[inline(never)]
pub(super) fn pick<N: Nodes>(svc: &Service, nodes: &N) -> Option<Pick> {
    let key = LblcKey {
        svc: svc.id,
        addr: nodes.daddr(svc)?,
    };
    let now = nodes.now();
    let Some(e) = nodes.lblc_entry(&key).filter(|e| live(svc, e, now)) else {
        let p = least(svc, nodes)?;
        nodes.lblc_new(&key, svc.epoch, remember(nodes, p), now);
        return Some(p);
    };
    e.lastuse = now;
    let i = set_min(svc, nodes, e);
    let min = known(
        svc,
        nodes,
        e.set.get(i as usize).copied().unwrap_or_default(),
    );
    let min_ok = i != NONE && min.available;
    if e.size > 1 && now.wrapping_sub(e.lastmod) > LBLC_EXPIRATION_NS {
        let most = set_max(svc, nodes, e);
        if most != NONE {
            erase(e, most as usize);
            e.lastmod = now;
        }
    }
    if min_ok && !is_overloaded(svc, nodes, &min) {
        return Some(min.pick());
    }
    let p = least(svc, nodes)?;
    if insert(e, remember(nodes, p)) {
        e.lastmod = now;
    }
    Some(p)
}

/// The entries of the set, as many as `size` says (at most the array).
#[inline(always)]
fn len(e: &LblcEntry) -> usize {
    (e.size as usize).min(LBLCR_SET_MAX)
}

/// "None" for [`set_min`] and [`set_max`].
const NONE: u32 = u32::MAX;

/// `ip_vs_dest_set_min`: the index of the first dest of the set (newest
/// first) that is available with weight > 0 and not over its upper
/// threshold, then of every later available one not over it whose
/// overhead/weight is strictly lower; `NONE` if there is none.
#[inline(never)]
fn set_min<N: Nodes>(svc: &Service, nodes: &N, e: &LblcEntry) -> u32 {
    let (mut best, mut loh, mut lw) = (NONE, 0u32, 0u32);
    for i in 0..LBLCR_SET_MAX {
        if i >= len(e) {
            break;
        }
        let Some(sd) = e.set.get(i) else { break };
        let k = known(svc, nodes, *sd);
        if k.conns.overloaded != 0 || !k.available {
            continue;
        }
        let doh = k.conns.overhead();
        let better = if best == NONE {
            k.weight > 0
        } else {
            loh as u64 * k.weight as u64 > doh as u64 * lw as u64
        };
        if better {
            // Opaque: the verifier then sees one state per loop step, not
            // one per possible index (docs/DEVELOPING.md §7).
            (best, loh, lw) = (opaque(i as u32), doh, k.weight);
        }
    }
    best
}

/// `ip_vs_dest_set_max`: the index of the first dest of the set with
/// weight > 0 (available or not, over its threshold or not), then of every
/// later one with weight > 0 whose overhead/weight is strictly higher;
/// `NONE` if there is none.
#[inline(never)]
fn set_max<N: Nodes>(svc: &Service, nodes: &N, e: &LblcEntry) -> u32 {
    let (mut best, mut moh, mut mw) = (NONE, 0u32, 0u32);
    for i in 0..LBLCR_SET_MAX {
        if i >= len(e) {
            break;
        }
        let Some(sd) = e.set.get(i) else { break };
        let k = known(svc, nodes, *sd);
        if k.gone || k.weight == 0 {
            continue;
        }
        let doh = k.conns.overhead();
        if best == NONE || (moh as u64) * (k.weight as u64) < doh as u64 * mw as u64 {
            (best, moh, mw) = (opaque(i as u32), doh, k.weight);
        }
    }
    best
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
