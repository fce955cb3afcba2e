//! Maglev hashing, as `ip_vs_mh_schedule` (docs/SEMANTICS.md §5.6).

use lb_common::{
    MH_FALLBACK_PROBES, MH_TAB_SIZE, MhTable, SVC_F_SCHED_FALLBACK, Service, hash_input, mh_slot,
};

use super::{Client, Entry, Nodes, Pick, entry, opaque, scan::Steps};

/// The dest of the client's slot (`hsiphash(port + addr) % 4093`, the port
/// only with `mh-port`) if it is available; with `mh-fallback`, else the
/// first available dest of the slots probed after it.
#[inline(always)]
pub(super) fn pick<N: Nodes>(svc: &Service, nodes: &N, client: &Client) -> Option<Pick> {
    let port = client.hashed_port(svc);
    let ihash = mh_slot(hash_input(&client.addr, port, 0));
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
/// port + addr) % 4093` for i = 0, 1, ..., stopping at an empty slot, for
/// up to 4,093 probes as the kernel (`MH_FALLBACK_PROBES`), one probe a step
/// of a [`Nodes::run`] loop (`bpf_loop` in the program). `hashed` is the
/// client with the port mh hashes.
#[inline(always)]
fn fallback<N: Nodes>(
    svc: &Service,
    nodes: &N,
    table: &MhTable,
    hashed: &Client,
    ihash: u32,
) -> Option<Pick> {
    let mut probe = Fallback {
        table,
        hashed: *hashed,
        ihash,
        found: None,
    };
    nodes.run(svc, MH_FALLBACK_PROBES, &mut probe);
    probe.found
}

/// The state of mh's fallback probes.
struct Fallback<'a> {
    table: &'a MhTable,
    hashed: Client,
    ihash: u32,
    found: Option<Pick>,
}

impl Steps for Fallback<'_> {
    #[inline(always)]
    fn step<N: Nodes>(&mut self, nodes: &N, svc: &Service, offset: u32) -> bool {
        let roffset = (offset.wrapping_add(self.ihash)) % MH_TAB_SIZE as u32;
        let slot = mh_slot(hash_input(&self.hashed.addr, self.hashed.port, roffset));
        let Some(&pos) = self.table.pos.get(opaque(slot) as usize) else {
            return false;
        };
        match entry(svc, nodes, pos) {
            Entry::Available(p) => {
                self.found = Some(p);
                false
            }
            Entry::Empty => false,
            Entry::Unavailable => true,
        }
    }
}
