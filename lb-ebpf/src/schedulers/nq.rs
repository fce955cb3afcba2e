//! Never queue, as `ip_vs_nq_schedule` (docs/SEMANTICS.md §5.10).

use lb_common::Service;

use super::{
    Nodes, Pick,
    wlc::{Cost, WeightedLeast},
};

/// The first dest (weight > 0, not overloaded) with no active conn; else
/// sed's pick.
#[inline(always)]
pub(super) fn pick<N: Nodes>(svc: &Service, nodes: &N) -> Option<Pick> {
    let mut least = WeightedLeast::new(Cost::ActivePlusOne, true);
    nodes.scan(svc, 0, &mut least);
    least.pick()
}
