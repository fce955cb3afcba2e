//! Weighted least connection, as `ip_vs_wlc_schedule` (docs/SEMANTICS.md
//! §5.4); sed and nq are the same comparison over another cost.

use lb_common::{Service, ServiceDest};

use super::{Nodes, Pick, scan::Scan, scan::counts};

/// What a dest costs in a weighted-least comparison.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// `ip_vs_dest_conn_overhead`: active × 256 + inactive (wlc, and lblc's
    /// and lblcr's least-loaded pick).
    Overhead,
    /// Active conns + 1, the expected delay of sed and nq.
    ActivePlusOne,
}

/// The running minimum of cost / weight over the list: the first dest of
/// weight > 0 that is not overloaded, replaced by a later one `d` only if
/// `cost(least) × weight(d) > cost(d) × weight(least)`, in 64 bits, so
/// that ties keep the earlier dest and a weight-0 dest never wins. With
/// `idle_wins` (nq) the first dest with no active conn ends the scan.
#[derive(Clone, Copy)]
pub struct WeightedLeast {
    cost: Cost,
    idle_wins: bool,
    least: Option<Least>,
}

#[derive(Clone, Copy)]
struct Least {
    pick: Pick,
    cost: u64,
    weight: u64,
}

impl WeightedLeast {
    pub fn new(cost: Cost, idle_wins: bool) -> Self {
        WeightedLeast {
            cost,
            idle_wins,
            least: None,
        }
    }

    /// The dest with the least cost per weight of those stepped over.
    pub fn pick(&self) -> Option<Pick> {
        self.least.map(|l| l.pick)
    }
}

impl Scan for WeightedLeast {
    #[inline(always)]
    fn step<N: Nodes>(&mut self, nodes: &N, pos: u32, node: ServiceDest) -> bool {
        let Some(c) = counts(nodes, node.dest) else {
            return true;
        };
        if node.weight == 0 {
            return true;
        }
        let cost = match self.cost {
            Cost::Overhead => c.overhead() as u64,
            Cost::ActivePlusOne => c.active_now() as u64 + 1,
        };
        let weight = node.weight as u64;
        let this = Least {
            pick: Pick {
                pos,
                dest: node.dest,
            },
            cost,
            weight,
        };
        if self.idle_wins && c.active_now() == 0 {
            self.least = Some(this);
            return false;
        }
        let better = match self.least {
            None => true,
            Some(l) => l.cost * weight > cost * l.weight,
        };
        if better {
            self.least = Some(this);
        }
        true
    }
}

/// The dest with the least `overhead / weight`.
#[inline(always)]
pub(super) fn pick<N: Nodes>(svc: &Service, nodes: &N) -> Option<Pick> {
    let mut least = WeightedLeast::new(Cost::Overhead, false);
    nodes.scan(svc, 0, &mut least);
    least.pick()
}
