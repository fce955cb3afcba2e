//! Maglev hashing, as `ip_vs_mh_schedule` (docs/SEMANTICS.md §5.6).

use lb_common::{
    MH_FALLBACK_PROBES, MH_TAB_SIZE, MhTable, SVC_F_SCHED_FALLBACK, Service, hash_input, mh_slot,
};

use super::{Client, Entry, Nodes, Pick, entry, opaque};

/// The dest of the client's slot (`hsiphash(port + addr) % 4093`, the port
/// only with `mh-port`) if it is available; with `mh-fallback`, else the
/// first available dest of the slots probed after it.
#[inline(always)]
pub(super) fn pick<N: Nodes>(svc: &Service, nodes: &N, client: &Client) -> Option<Pick> {
    let port = client.hashed_port(svc);
    let ihash = mh_slot(hash_input(client.addr, port, 0));
    let table = nodes.mh_table(svc)?;
    let pos = *table.pos.get(opaque(ihash) as usize)?;
    match entry(svc, nodes, pos) {
        Entry::Available(p) => Some(p),
        Entry::Empty => None,
        Entry::Unavailable if svc.flags & SVC_F_SCHED_FALLBACK != 0 => {
            let hashed = Client {
                addr: client.addr,
                port,
            };
            fallback(svc, nodes, table, &hashed, ihash)
        }
        Entry::Unavailable => None,
    }
}

/// `ip_vs_mh_get_fallback`'s loop: slot `hsiphash(((i + ihash) % 4093) +
/// port + addr) % 4093` for i = 0, 1, ..., stopping at an empty slot. The
/// kernel goes on for up to 4,093 probes; here at most
/// `MH_FALLBACK_PROBES` (one BPF subprogram, bounded for the verifier;
/// `hashed` is the client with the port mh hashes, so that the call takes
/// the five arguments a BPF call may have).
#[inline(never)]
fn fallback<N: Nodes>(
    svc: &Service,
    nodes: &N,
    table: &MhTable,
    hashed: &Client,
    ihash: u32,
) -> Option<Pick> {
    for offset in 0..MH_FALLBACK_PROBES {
        let roffset = (offset + ihash) % MH_TAB_SIZE as u32;
        let slot = mh_slot(hash_input(hashed.addr, hashed.port, roffset));
        let pos = *table.pos.get(opaque(slot) as usize)?;
        match entry(svc, nodes, pos) {
            Entry::Available(p) => return Some(p),
            Entry::Empty => return None,
            Entry::Unavailable => {}
        }
    }
    None
}
