//! Weighted random twos choice, as `ip_vs_twos_schedule`
//! (docs/SEMANTICS.md §5.13).

use lb_common::{Service, ServiceDest};

use super::{Nodes, Pick, scan::Scan, scan::counts};

/// Two dests drawn at random in proportion to their weights (each draw
/// `r` uniform in `0..=Σw`, the dest where the running sum of weights first
/// reaches `r`), then the second if it is less loaded per weight
/// (`w2 × overhead1 > w1 × overhead2`), else the first. Only dests of
/// weight > 0 that are not overloaded take part. Two scans: the sum, then
/// the draws.
#[inline(always)]
pub(super) fn pick<N: Nodes>(svc: &Service, nodes: &N) -> Option<Pick> {
    let mut total = Total { total: 0 };
    nodes.scan(svc, 0, &mut total);
    if total.total == 0 {
        return None;
    }
    // Σw ≤ 65,535 × 65,536 < 2^32: Σw + 1 fits (checked all the same:
    // no panic path in the program).
    let range = total.total.checked_add(1)?;
    let r1 = nodes.random().checked_rem(range)?;
    let r2 = nodes.random().checked_rem(range)?;
    let mut draws = Draws {
        r: [r1, r2],
        chosen: [None, None],
    };
    nodes.scan(svc, 0, &mut draws);
    let [Some(one), two] = draws.chosen else {
        return None;
    };
    match two {
        Some(two) if two.weight * one.overhead > one.weight * two.overhead => Some(two.pick),
        _ => Some(one.pick),
    }
}

/// Whether a dest takes part: weight > 0 and not overloaded.
#[inline(always)]
fn candidate<N: Nodes>(nodes: &N, node: &ServiceDest) -> Option<u64> {
    if node.weight == 0 {
        return None;
    }
    counts(nodes, node.dest).map(|c| c.overhead() as u64)
}

/// The first scan: Σw over the dests that take part.
struct Total {
    total: u32,
}

impl Scan for Total {
    #[inline(always)]
    fn step<N: Nodes>(&mut self, nodes: &N, _pos: u32, node: ServiceDest) -> bool {
        if candidate(nodes, &node).is_some() {
            self.total = self.total.wrapping_add(node.weight);
        }
        true
    }
}

#[derive(Clone, Copy)]
struct Choice {
    pick: Pick,
    weight: u64,
    overhead: u64,
}

/// The second scan: each draw `r` loses each dest's weight in list order
/// and takes the dest where it reaches 0 or below.
struct Draws {
    r: [u32; 2],
    chosen: [Option<Choice>; 2],
}

impl Scan for Draws {
    #[inline(always)]
    fn step<N: Nodes>(&mut self, nodes: &N, pos: u32, node: ServiceDest) -> bool {
        let Some(overhead) = candidate(nodes, &node) else {
            return true;
        };
        let w = node.weight;
        for k in 0..2 {
            if self.chosen[k].is_none() {
                if self.r[k] <= w {
                    self.chosen[k] = Some(Choice {
                        pick: Pick {
                            pos,
                            dest: node.dest,
                        },
                        weight: w as u64,
                        overhead,
                    });
                } else {
                    self.r[k] -= w;
                }
            }
        }
        self.chosen[0].is_none() || self.chosen[1].is_none()
    }
}
