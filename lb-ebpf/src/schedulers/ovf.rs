//! Weighted overflow, as `ip_vs_ovf_schedule` (docs/SEMANTICS.md §5.12).

use lb_common::Service;

use super::{Nodes, Pick, fo::Highest};

/// fo's pick among the dests whose active conns do not exceed their
/// weight: a dest takes up to weight + 1 active conns, then the next
/// highest weight takes the overflow.
#[inline(always)]
pub(super) fn pick<N: Nodes>(svc: &Service, nodes: &N) -> Option<Pick> {
    let mut highest = Highest {
        overflow: true,
        highest: None,
    };
    nodes.scan(svc, 0, &mut highest);
    highest.pick()
}
