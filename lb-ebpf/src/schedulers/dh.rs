//! Destination hashing, as `ip_vs_dh_schedule` (docs/SEMANTICS.md §5.14).

use lb_common::{Service, addr_fold, sh_bucket};

use super::{Entry, Nodes, Pick, entry};

/// The dest of the bucket of the packet's destination address
/// (`hash_32(daddr, 8)`, the bucket sh computes for a client address) if it
/// may take the flow (weight > 0, not overloaded); otherwise no dest: dh has
/// no fallback. The table is sh's layout (`ShTable`), filled by the
/// controller as `ip_vs_dh_reassign`.
#[inline(always)]
pub(super) fn pick<N: Nodes>(svc: &Service, nodes: &N) -> Option<Pick> {
    let daddr = nodes.daddr(svc)?;
    let bucket = sh_bucket(addr_fold(&daddr), 0);
    let table = nodes.sh_table(svc)?;
    let pos = *table.pos.get(bucket as usize)?;
    match entry(svc, nodes, pos) {
        Entry::Available(p) => Some(p),
        Entry::Empty | Entry::Unavailable => None,
    }
}
