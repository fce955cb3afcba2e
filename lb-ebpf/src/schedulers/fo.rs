//! Weighted failover, as `ip_vs_fo_schedule` (docs/SEMANTICS.md §5.11).

use lb_common::{Service, ServiceDest};

use super::{Nodes, Pick, scan::Scan, scan::counts};

/// The dest with the highest weight (> 0) of those not overloaded; a tie
/// keeps the earlier dest (strict `>`), the most recently added.
#[inline(always)]
pub(super) fn pick<N: Nodes>(svc: &Service, nodes: &N) -> Option<Pick> {
    let mut highest = Highest {
        overflow: false,
        highest: None,
    };
    nodes.scan(svc, 0, &mut highest);
    highest.pick()
}

/// The running maximum of fo and ovf: with `overflow` (ovf) a dest whose
/// active conns exceed its weight is skipped too.
pub(super) struct Highest {
    pub(super) overflow: bool,
    pub(super) highest: Option<(Pick, u32)>,
}

impl Highest {
    pub(super) fn pick(&self) -> Option<Pick> {
        self.highest.map(|(p, _)| p)
    }
}

impl Scan for Highest {
    #[inline(always)]
    fn step<N: Nodes>(&mut self, nodes: &N, pos: u32, node: ServiceDest) -> bool {
        let Some(c) = counts(nodes, node.dest) else {
            return true;
        };
        let w = node.weight;
        if w == 0 || (self.overflow && c.active_now() > w) {
            return true;
        }
        if self.highest.is_none_or(|(_, hw)| w > hw) {
            let pick = Pick {
                pos,
                dest: node.dest,
            };
            self.highest = Some((pick, w));
        }
        true
    }
}
