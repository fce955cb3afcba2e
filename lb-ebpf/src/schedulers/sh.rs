//! Source hashing, as `ip_vs_sh_schedule` (docs/SEMANTICS.md §5.5).

use lb_common::{SH_TAB_SIZE, SVC_F_SCHED_FALLBACK, Service, ShTable, hash_input, sh_bucket};

use super::{Client, Entry, Nodes, Pick, entry, opaque, scan::Steps};

/// The dest of the client's bucket (`hash_32(port + addr, 8)`, the port only
/// with `sh-port`) if it is available; with `sh-fallback`, else the first
/// available dest of the buckets probed after it.
#[inline(always)]
pub(super) fn pick<N: Nodes>(svc: &Service, nodes: &N, client: &Client) -> Option<Pick> {
    let v = hash_input(&client.addr, client.hashed_port(svc), 0);
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
/// empty bucket. Its steps run in `Nodes::run` (a `bpf_loop` in the
/// program), so the verifier checks one probe, not 256.
#[inline(always)]
fn fallback<N: Nodes>(
    svc: &Service,
    nodes: &N,
    table: &ShTable,
    v: u32,
    ihash: u32,
) -> Option<Pick> {
    let mut probe = Fallback {
        table,
        v,
        ihash,
        found: None,
    };
    nodes.run(svc, SH_TAB_SIZE as u32, &mut probe);
    probe.found
}

/// One probe of the fallback.
struct Fallback<'a> {
    table: &'a ShTable,
    v: u32,
    ihash: u32,
    found: Option<Pick>,
}

impl Steps for Fallback<'_> {
    #[inline(always)]
    fn step<N: Nodes>(&mut self, nodes: &N, svc: &Service, offset: u32) -> bool {
        let roffset = (offset.wrapping_add(self.ihash)) % SH_TAB_SIZE as u32;
        let b = sh_bucket(self.v, roffset);
        let Some(&pos) = self.table.pos.get(opaque(b) as usize) else {
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
