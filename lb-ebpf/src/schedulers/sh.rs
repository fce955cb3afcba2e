//! Source hashing, as `ip_vs_sh_schedule` (docs/SEMANTICS.md §5.5).

use lb_common::{SH_TAB_SIZE, SVC_F_SCHED_FALLBACK, Service, ShTable, hash_input, sh_bucket};

use super::{Client, Entry, Nodes, Pick, entry};

/// The dest of the client's bucket (`hash_32(port + addr, 8)`, the port only
/// with `sh-port`) if it is available; with `sh-fallback`, else the first
/// available dest of the buckets probed after it.
#[inline(always)]
pub(super) fn pick<N: Nodes>(svc: &Service, nodes: &N, client: &Client) -> Option<Pick> {
    let v = hash_input(client.addr, client.hashed_port(svc), 0);
    let ihash = sh_bucket(v, 0);
    let table = nodes.sh_table(svc)?;
    let pos = *table.pos.get(ihash as usize)?;
    match entry(svc, nodes, pos) {
        Entry::Available(p) => Some(p),
        Entry::Empty => None,
        Entry::Unavailable if svc.flags & SVC_F_SCHED_FALLBACK != 0 => {
            fallback(svc, nodes, table, v, ihash)
        }
        Entry::Unavailable => None,
    }
}

/// `ip_vs_sh_get_fallback`'s loop: bucket `((i + ihash) % 256 + hash) & 255`
/// for i = 0..256 (so every bucket once, from `2 * ihash`), stopping at an
/// empty bucket. One BPF subprogram, bounded by the table's size.
#[inline(never)]
fn fallback<N: Nodes>(
    svc: &Service,
    nodes: &N,
    table: &ShTable,
    v: u32,
    ihash: u32,
) -> Option<Pick> {
    for offset in 0..SH_TAB_SIZE as u32 {
        let roffset = (offset + ihash) % SH_TAB_SIZE as u32;
        let b = sh_bucket(v, roffset);
        let pos = *table.pos.get(b as usize)?;
        match entry(svc, nodes, pos) {
            Entry::Available(p) => return Some(p),
            Entry::Empty => return None,
            Entry::Unavailable => {}
        }
    }
    None
}
