//! A scan of a service's dest list on the packet path, for the schedulers
//! that compare every dest (lblc's and lblcr's weighted least-connection
//! pick and their `is_overloaded`): one `bpf_loop` over the list, whose
//! step reads one entry of the service's block of `SVC_DESTS` and the
//! dest's counts, and hands them to the scheduler's visitor
//! (`schedulers::Visit`). The verifier checks the step once, whatever the
//! number of dests (up to `MAX_SERVICE_DESTS`).

use core::ffi::c_void;

use aya_ebpf::helpers::generated::bpf_loop;
use lb_common::Service;
use lb_ebpf::schedulers::{Nodes, Visit};

use crate::{maps::SVC_DESTS, new_flow::MapNodes};

/// What the step reads and writes: where the list's leaves are, and the
/// visitor, by value (the step dereferences only this context).
struct Ctx<V> {
    /// `SVC_DESTS` index of the list's first leaf (`Service::list + cap`).
    leaves: u32,
    v: V,
}

/// One dest: its entry and counts to the visitor; 1 (stop) when the
/// visitor is done or the entry cannot be read.
#[inline(never)]
extern "C" fn step<V: Visit>(i: u32, ctx: *mut c_void) -> i64 {
    // Sound: `ctx` is the `Ctx<V>` `scan` passes, alive for the loop.
    let ctx = unsafe { &mut *(ctx as *mut Ctx<V>) };
    let Some(node) = SVC_DESTS.get(ctx.leaves.wrapping_add(i)).copied() else {
        return 1;
    };
    let conns = MapNodes.conns(node.dest).unwrap_or_default();
    if ctx.v.visit(i, node, conns) { 0 } else { 1 }
}

/// Runs `v` over positions `0..ndests` of the service's list, in order.
#[inline(always)]
pub fn scan<V: Visit>(svc: &Service, v: V) -> V {
    let mut ctx = Ctx {
        leaves: svc.list.wrapping_add(svc.cap),
        v,
    };
    let n = svc.ndests.min(svc.cap);
    // Sound: `step::<V>` has the callback signature bpf_loop expects and
    // `ctx` outlives the call.
    unsafe {
        bpf_loop(
            n,
            step::<V> as *mut c_void,
            &mut ctx as *mut Ctx<V> as *mut c_void,
            0,
        );
    }
    ctx.v
}
