//! Least connection, as `ip_vs_lc_schedule` (docs/SEMANTICS.md §5.3).

use lb_common::{Service, ServiceDest};

use super::{Nodes, Pick, scan::Scan, scan::counts};

/// The dest of weight > 0, not overloaded, with the smallest overhead
/// (active × 256 + inactive); a tie keeps the earlier dest (strict `<`).
#[inline(always)]
pub(super) fn pick<N: Nodes>(svc: &Service, nodes: &N) -> Option<Pick> {
    let mut least = Least { least: None };
    nodes.scan(svc, 0, &mut least);
    least.least.map(|(p, _)| p)
}

struct Least {
    least: Option<(Pick, u32)>,
}

impl Scan for Least {
    #[inline(always)]
    fn step<N: Nodes>(&mut self, nodes: &N, pos: u32, node: ServiceDest) -> bool {
        let Some(c) = counts(nodes, node.dest) else {
            return true;
        };
        if node.weight == 0 {
            return true;
        }
        let doh = c.overhead();
        if self.least.is_none_or(|(_, loh)| doh < loh) {
            let pick = Pick {
                pos,
                dest: node.dest,
            };
            self.least = Some((pick, doh));
        }
        true
    }
}
