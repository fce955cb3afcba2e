//! Shortest expected delay, as `ip_vs_sed_schedule` (docs/SEMANTICS.md
//! §5.9).

use lb_common::Service;

use super::{
    Nodes, Pick,
    wlc::{Cost, WeightedLeast},
};

/// wlc's comparison over the expected delay `(active + 1) / weight`
/// (inactive conns do not count).
#[inline(always)]
pub(super) fn pick<N: Nodes>(svc: &Service, nodes: &N) -> Option<Pick> {
    let mut least = WeightedLeast::new(Cost::ActivePlusOne, false);
    nodes.scan(svc, 0, &mut least);
    least.pick()
}
