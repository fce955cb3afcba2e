//! lb-decap: the real servers' decapsulator (docs/SEMANTICS.md §20), a
//! second, small BPF object beside the load balancer's, so that a real
//! server never makes the load balancer's maps. `lbctl decap attach IFACE`
//! puts it on the interface where the director's tunnelled packets arrive.
//!
//! It does what the kernel's tunnel receivers (`tunl0`/`sit0`/`ip6tnl0`,
//! `fou`, `gre0`) do for the packets IPVS's `ip_vs_tunnel_xmit` sends, at
//! XDP: an outer IPv4 or IPv6 header to a local address carrying IPIP
//! (protocol 4 or 41), GUE (UDP to the interface's GUE port) or GRE, and an
//! inner IPv4 or IPv6 packet to a local address (or one of the `--vip`s),
//! loses its outer headers and enters the stack as if it had arrived
//! unencapsulated (`bpf_xdp_adjust_head`, the Ethernet header moved and
//! given the inner EtherType, `XDP_PASS`). The outer ECN mark is carried in
//! as `INET_ECN_decapsulate` says. Everything else passes untouched, each
//! outcome counted under its `DECAP_REASON_*`.
#![no_std]
#![no_main]

mod maps;
mod outer;
mod strip;
mod tunnel;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};
use lb_common::decap::DECAP_REASON_PASS_NOT_IP;

/// An XDP action and its `DECAP_REASON_*`.
#[derive(Clone, Copy)]
pub struct Verdict {
    action: u32,
    reason: u32,
}

#[expect(
    non_snake_case,
    reason = "the constructors read as the XDP actions they stand for"
)]
impl Verdict {
    #[inline(always)]
    pub const fn Pass(reason: u32) -> Verdict {
        Verdict {
            action: xdp_action::XDP_PASS,
            reason,
        }
    }
    #[inline(always)]
    pub const fn Drop(reason: u32) -> Verdict {
        Verdict {
            action: xdp_action::XDP_DROP,
            reason,
        }
    }
}

/// A bounds-checked pointer to a `T` at `off` bytes into the packet.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Option<*mut T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *mut T)
}

/// The decapsulator.
#[xdp]
pub fn lb_decap(ctx: XdpContext) -> u32 {
    let len = ctx.data_end() - ctx.data();
    let verdict = handle(&ctx);
    if let Some(c) = maps::DECAP_STATS.get_ptr_mut(verdict.reason) {
        // Sound: this CPU's slot.
        unsafe {
            (*c).packets += 1;
            (*c).bytes += len as u64;
        }
    }
    verdict.action
}

#[inline(always)]
fn handle(ctx: &XdpContext) -> Verdict {
    let Some(l2) = outer::ethernet(ctx) else {
        return Verdict::Pass(DECAP_REASON_PASS_NOT_IP);
    };
    let o = match outer::ip(ctx, &l2) {
        Ok(o) => o,
        Err(v) => return v,
    };
    let t = match tunnel::header(ctx, &l2, &o) {
        Ok(t) => t,
        Err(v) => return v,
    };
    strip::inner(ctx, &l2, &o, &t)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
