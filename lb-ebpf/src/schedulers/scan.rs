//! One walk over a service's dest list, shared by every scheduler that
//! looks at each real in turn as the kernel's loops do
//! (`list_for_each_entry_rcu` over `svc->destinations`): lc, wlc, sed, nq,
//! fo, ovf, twos, and rr's and wrr's way past an overloaded real
//! (docs/SEMANTICS.md §5).
//!
//! A scheduler says what it does with one dest ([`Scan::step`], over a
//! state of its own); [`Nodes::scan`] drives the steps in list order. A
//! service may hold `MAX_SERVICE_DESTS` (65,536) reals, more than the
//! verifier can walk in a loop, so every such walk is a [`Steps`] loop run
//! by [`Nodes::run`]: the program's `Nodes` runs it with `bpf_loop`, the
//! host's with a plain loop ([`run_steps`]). A list scan is the loop of
//! [`ListWalk`], one [`visit`] per position; mh's fallback probes are
//! `Steps` too.
//!
//! A new scheduler that looks at every dest: a struct holding what it
//! keeps between dests, `impl Scan` for it, then
//! `nodes.scan(svc, 0, &mut state)` and read the result from the state
//! (`wlc.rs` is the model; its `WeightedLeast` is the weighted-least pick
//! lblc and lblcr also make). Each call site of `Nodes::scan` is one more
//! `bpf_loop` callback for the verifier to check: keep them few.

use lb_common::{NO_DEST, Service, ServiceDest};

use super::Nodes;

/// What a scheduler does with each dest of the list, in list order (most
/// recently added first).
pub trait Scan {
    /// Looks at the dest at position `pos` of the list (`node`: its `DESTS`
    /// slot and weight); `false` ends the scan there.
    fn step<N: Nodes>(&mut self, nodes: &N, pos: u32, node: ServiceDest) -> bool;
}

/// The body of a bounded loop: step `i` (0, 1, ...); `false` ends the loop.
pub trait Steps {
    fn step<N: Nodes>(&mut self, nodes: &N, svc: &Service, i: u32) -> bool;
}

/// The host's loop (the default of [`Nodes::run`]): steps 0..n until one
/// says stop. Never used by the program, whose `Nodes` runs the same steps
/// with `bpf_loop`.
#[inline(always)]
pub fn run_steps<N: Nodes, S: Steps>(nodes: &N, svc: &Service, n: u32, steps: &mut S) {
    let mut i = 0;
    while i < n && steps.step(nodes, svc, i) {
        i += 1;
    }
}

/// A list scan as a loop: step `i` visits position `from + i`.
pub struct ListWalk<'a, S> {
    pub from: u32,
    pub scan: &'a mut S,
}

impl<S: Scan> Steps for ListWalk<'_, S> {
    #[inline(always)]
    fn step<N: Nodes>(&mut self, nodes: &N, svc: &Service, i: u32) -> bool {
        visit(nodes, svc, self.from.wrapping_add(i), self.scan)
    }
}

/// The number of positions a scan from `from` may visit: the rest of the
/// list (the block holds at most `cap` dests).
#[inline(always)]
pub fn scan_len(svc: &Service, from: u32) -> u32 {
    svc.ndests.min(svc.cap).saturating_sub(from)
}

/// One step of a scan: the dest at position `pos` of the list, given to
/// `scan`. `false` (the scan ends) past the end of the list, at an entry
/// that cannot be read or holds no dest, or when the step says so.
#[inline(always)]
pub fn visit<N: Nodes, S: Scan>(nodes: &N, svc: &Service, pos: u32, scan: &mut S) -> bool {
    if pos >= svc.ndests || pos >= svc.cap {
        return false;
    }
    match nodes.node(svc, svc.cap.wrapping_add(pos)) {
        Some(n) if n.dest != NO_DEST => scan.step(nodes, pos, n),
        _ => false,
    }
}

/// A dest's counts as the counting schedulers read them: `None` when it is
/// overloaded (every scheduler skips it, as the kernel's skip
/// `IP_VS_DEST_F_OVERLOAD`), else its `DestConns` (zero when unreadable).
#[inline(always)]
pub fn counts<N: Nodes>(nodes: &N, dest: u32) -> Option<lb_common::DestConns> {
    match nodes.conns(dest) {
        Some(c) if c.overloaded != 0 => None,
        Some(c) => Some(c),
        None => Some(lb_common::DestConns::default()),
    }
}
