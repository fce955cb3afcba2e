//! lb-ebpf: an XDP layer-4 load balancer with Linux LVS (IPVS) semantics.
//!
//! The packet path, top to bottom, one file per stage (docs/ARCHITECTURE.md):
//!
//! 1. `parse.rs`: Ethernet, IPv4 or IPv6, TCP/UDP (or an ICMP/ICMPv6 error
//!    about a flow) into the per-CPU `Packet`; anything else passes to the
//!    kernel.
//! 2. `lookup.rs`: the VIP filter (`maybe_vip`), later the service lookup,
//!    which asks `classify.rs` for the packet's fwmark first (as IPVS looks
//!    at `skb->mark` first); `classify.rs` also lets through a packet the
//!    filter turned away when a fwmark rule is wider than the filter.
//! 3. `conn.rs`: an existing flow is forwarded without a service lookup, as in
//!    IPVS (expiry, port reuse, removed real server, TCP state from
//!    `tcp_state.rs`); an ICMP error about a flow goes to its real server.
//! 4. `new_flow.rs`: a new connection (`ip_vs_schedule`): the client's
//!    persistence template (`template.rs`) or the service's scheduler
//!    (`schedulers/`: `rr.rs`, `wrr.rs`), then a new conn entry.
//! 5. `forward.rs` by the flow's method: direct routing there, tunnelling
//!    (`tunnel.rs`) or masquerading (`nat.rs`, which also rewrites the real
//!    servers' replies); or `reply.rs` (ICMP port unreachable, TCP RST,
//!    ICMP too big and time exceeded).
//! 6. `stats.rs`: every outcome counted under a reason, and the ipvsadm
//!    counters.
//!
//! Beside the stages: `maps.rs` (the maps), `settings.rs` (sysctls and
//! timeouts), `clock.rs` (the time, from jiffies), `counts.rs` (each dest's
//! live ActiveConn/InActConn), `sweep.rs` (the timer that expires conns). The pure logic
//! (`schedulers/`, `tcp_state.rs`, checksums) is the `lb_ebpf` lib
//! (`lib.rs`), unit-tested on the host.
#![no_std]
#![no_main]
#![feature(core_intrinsics)]
#![expect(
    internal_features,
    reason = "the atomic intrinsics: the BPF target has no AtomicU32 (counts.rs)"
)]

mod classify;
mod clock;
mod conn;
mod counts;
mod forward;
mod lookup;
mod maps;
mod nat;
mod new_flow;
mod parse;
mod reply;
mod settings;
mod stats;
mod sweep;
mod template;
mod tunnel;

use aya_ebpf::{bindings::xdp_action, macros::xdp, programs::XdpContext};

/// What happens to a packet (an XDP action), and why (`lb_common::REASON_*`).
/// A plain struct rather than an enum with data, so that no field is ever
/// left undefined for the verifier.
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
    /// Transmitted back out of the interface it came in on.
    #[inline(always)]
    pub const fn Tx(reason: u32) -> Verdict {
        Verdict {
            action: xdp_action::XDP_TX,
            reason,
        }
    }
    /// Redirected: `action` is what `bpf_redirect` returned.
    #[inline(always)]
    pub const fn Redirect(reason: u32, action: u32) -> Verdict {
        Verdict { action, reason }
    }
}

/// The load balancer.
#[xdp]
pub fn lb_xdp(ctx: XdpContext) -> u32 {
    let len = ctx.data_end() - ctx.data();
    let verdict = match maps::PACKET.get_ptr_mut(0) {
        // Sound: this CPU's slot, used by this program run alone (XDP runs
        // with preemption off; nothing else touches `PACKET`).
        Some(pkt) => handle(&ctx, unsafe { &mut *pkt }),
        None => Verdict::Drop(lb_common::REASON_DROP_INTERNAL),
    };
    stats::count(verdict.reason, len as u64);
    verdict.action
}

#[inline(always)]
fn handle(ctx: &XdpContext, pkt: &mut parse::Packet) -> Verdict {
    if let Err(v) = parse::packet(ctx, pkt) {
        return v;
    }
    // A masqueraded flow's reply is addressed to the client, not a VIP:
    // looked up before the VIP filter, only once a -m real exists.
    if let Some(cfg) = settings::settings()
        && cfg.has_masq != 0
    {
        if let Some(v) = nat::reply(ctx, pkt, cfg) {
            return v;
        }
        if cfg.nat_icmp_send != 0
            && let Some(v) = nat::unmatched(ctx, pkt)
        {
            return v;
        }
    }
    if pkt.icmp_error {
        return conn::icmp_error(ctx, pkt);
    }
    match lookup::vip_filter(pkt) {
        Err(v) => v,
        Ok(()) => conn::handle(ctx, pkt),
    }
}

/// Arms the sweeper (`sweep.rs`) with this program's callback. Never
/// attached: `lbctl attach` runs it once with `BPF_PROG_TEST_RUN`; it answers
/// `XDP_PASS` when the timer runs, `XDP_ABORTED` when it could not be armed.
#[xdp]
pub fn lb_sweep_arm(_ctx: XdpContext) -> u32 {
    if sweep::arm() == 0 {
        xdp_action::XDP_PASS
    } else {
        xdp_action::XDP_ABORTED
    }
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

/// The traffic benchmark's baseline (`cargo xtask bench`): forwards every
/// IPv4 frame to the real server in `DESTS` slot 0 by direct routing
/// (destination MAC = the real's, source = ours, `XDP_TX`), with no service,
/// connection or scheduling work. What any forwarding program must at least
/// do: bounds checks, one next-hop lookup, a MAC rewrite.
#[xdp]
pub fn lb_fwd_baseline(ctx: XdpContext) -> u32 {
    let Some(eth) = parse::ptr_at_mut::<parse::EthHdr>(&ctx, 0) else {
        return xdp_action::XDP_PASS;
    };
    if parse::ptr_at::<parse::Ipv4Hdr>(&ctx, parse::ETH_LEN).is_none()
        || unsafe { (*eth).proto } != 0x0800u16.to_be_bytes()
    {
        return xdp_action::XDP_PASS;
    }
    let Some(dest) = maps::DESTS.get_ptr(0) else {
        return xdp_action::XDP_PASS;
    };
    unsafe {
        if (*dest).flags & lb_common::DEST_F_RESOLVED == 0 {
            return xdp_action::XDP_PASS;
        }
        (*eth).src = (*eth).dst;
        (*eth).dst = (*dest).mac;
    }
    xdp_action::XDP_TX
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
