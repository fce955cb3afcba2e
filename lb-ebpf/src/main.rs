//! lb-ebpf: an XDP layer-4 load balancer with Linux LVS (IPVS) semantics.
//!
//! The packet path reads top to bottom, one module per stage:
//! `parse` → `lookup` (service) → `conn` (existing flow, or `schedule` a new
//! one through a persistence template or the scheduler) → `forward` (direct
//! routing) or `reply` (ICMP port unreachable, TCP RST); `stats` counts every
//! outcome under a reason.
#![no_std]
#![no_main]

mod conn;
mod forward;
mod lookup;
mod maps;
mod parse;
mod reply;
mod schedule;
mod stats;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

/// What happens to a packet, and why (`lb_common::REASON_*`).
#[derive(Clone, Copy)]
pub enum Verdict {
    Pass(u32),
    Drop(u32),
    /// Transmitted back out of the interface it came in on.
    Tx(u32),
    /// `bpf_redirect` returned this action.
    Redirect(u32, u32),
}

impl Verdict {
    #[inline(always)]
    fn reason(self) -> u32 {
        match self {
            Verdict::Pass(r) | Verdict::Drop(r) | Verdict::Tx(r) | Verdict::Redirect(r, _) => r,
        }
    }
    #[inline(always)]
    fn action(self) -> u32 {
        match self {
            Verdict::Pass(_) => xdp_action::XDP_PASS,
            Verdict::Drop(_) => xdp_action::XDP_DROP,
            Verdict::Tx(_) => xdp_action::XDP_TX,
            Verdict::Redirect(_, a) => a,
        }
    }
}

/// The load balancer.
#[xdp]
pub fn lb_xdp(ctx: XdpContext) -> u32 {
    let len = ctx.data_end() - ctx.data();
    let verdict = match parse::packet(&ctx) {
        Err(v) => v,
        Ok(pkt) => match lookup::service(&pkt) {
            None => Verdict::Pass(lb_common::REASON_PASS_NO_SERVICE),
            Some(svc) => conn::handle(&ctx, &pkt, svc),
        },
    };
    stats::count(verdict.reason(), len as u64);
    verdict.action()
}

/// Passes everything. Attached to a veth's peer so that the frames the load
/// balancer transmits with `XDP_TX`/redirect are not dropped by veth.
#[xdp]
pub fn lb_pass(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// The benchmark baseline: bounds-checks Ethernet and IPv4, swaps the MACs
/// and transmits. The least any forwarding XDP program can do.
#[xdp]
pub fn lb_baseline(ctx: XdpContext) -> u32 {
    match parse::swap_macs_ipv4(&ctx) {
        Some(()) => xdp_action::XDP_TX,
        None => xdp_action::XDP_PASS,
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
