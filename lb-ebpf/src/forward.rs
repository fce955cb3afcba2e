//! Sending a flow's packet to its real server by the flow's forwarding
//! method (`xmit`): tunnelling (`tunnel.rs`), masquerading (`nat.rs`), or
//! direct routing here (`-g`, docs/SEMANTICS.md §7): the IP packet is left
//! untouched, only the destination MAC becomes the real server's. Out of the
//! interface the packet came in on with `XDP_TX` (source MAC = ours, i.e.
//! the frame's old destination), or redirected to another interface.

use aya_ebpf::{
    bindings::{BPF_FIB_LKUP_RET_SUCCESS, BPF_FIB_LOOKUP_SRC, bpf_fib_lookup as FibParams},
    helpers::{bpf_fib_lookup, bpf_redirect},
    programs::XdpContext,
};
use lb_common::{
    DEST_F_RESOLVED, DEST_F_WARNED, Dest, FWD_MASQ, FWD_ROUTE, FWD_TUNNEL, IPPROTO_TCP,
    REASON_DROP_INTERNAL, REASON_DROP_NO_NEIGH, addr_is_v4, addr_low32, addr_octets, addr_v4,
};

use crate::{
    Verdict, nat,
    parse::{EthHdr, Packet, ptr_at_mut},
    tunnel,
};

const AF_INET: u8 = 2;

/// Logs a message about a real server with its address in its family's
/// notation (an IPv4 address as such, not IPv4-mapped).
macro_rules! log_real {
    ($level:ident, $ctx:expr, $addr:expr, $msg:literal) => {{
        let a = $addr;
        if addr_is_v4(&a) {
            aya_log_ebpf::$level!($ctx, $msg, u32::from_be_bytes(addr_low32(&a)));
        } else {
            aya_log_ebpf::$level!($ctx, $msg, addr_octets(&a));
        }
    }};
}
const AF_INET6: u8 = 10;

/// Sends `pkt` to the real server `dest` by the forwarding method `fwd`
/// (`FWD_*`: the conn's, bound when it was made; the dest's for a packet
/// with no conn entry).
#[inline(always)]
pub fn xmit(
    ctx: &XdpContext,
    pkt: &Packet,
    fwd: u8,
    dest: *mut Dest,
    dest_id: u32,
    reason: u32,
) -> Verdict {
    match fwd {
        FWD_TUNNEL => tunnel::xmit(ctx, pkt, dest, reason),
        FWD_MASQ => nat::request(ctx, pkt, dest, reason),
        _ => direct_route(ctx, dest, dest_id, reason),
    }
}

#[inline(always)]
pub fn direct_route(ctx: &XdpContext, dest: *mut Dest, _dest_id: u32, reason: u32) -> Verdict {
    let ingress = unsafe { (*ctx.ctx).ingress_ifindex };
    if unsafe { (*dest).flags } & DEST_F_RESOLVED == 0 && !resolve(ctx, dest, ingress) {
        return Verdict::Drop(REASON_DROP_NO_NEIGH);
    }
    let Some(eth) = ptr_at_mut::<EthHdr>(ctx, 0) else {
        return Verdict::Drop(REASON_DROP_INTERNAL);
    };
    unsafe {
        let ifindex = (*dest).ifindex;
        if ifindex == 0 || ifindex == ingress {
            // Our MAC is the frame's old destination.
            (*eth).src = (*eth).dst;
            (*eth).dst = (*dest).mac;
            return Verdict::Tx(reason);
        }
        (*eth).src = (*dest).smac;
        (*eth).dst = (*dest).mac;
        Verdict::Redirect(reason, bpf_redirect(ifindex, 0) as u32)
    }
}

/// Learns the real server's next hop from the kernel (FIB + neighbour
/// table) when the controller could not resolve it. Fails while the kernel
/// has no neighbour entry for it.
#[inline(never)]
pub fn resolve(ctx: &XdpContext, dest: *mut Dest, ingress: u32) -> bool {
    let mut p: FibParams = unsafe { core::mem::zeroed() };
    let addr = unsafe { (*dest).addr };
    p.l4_protocol = IPPROTO_TCP;
    p.ifindex = ingress;
    if addr_is_v4(&addr) {
        p.family = AF_INET;
        p.__bindgen_anon_4.ipv4_dst = addr[3];
    } else {
        p.family = AF_INET6;
        p.__bindgen_anon_4.ipv6_dst = addr;
    }
    // A tunnel's outer source and MTU come with the route (`-i`/`-m` reals
    // the controller could not route when they were added).
    let path = unsafe { (*dest).fwd } != FWD_ROUTE;
    let flags = if path { BPF_FIB_LOOKUP_SRC } else { 0 };
    let rc = unsafe {
        bpf_fib_lookup(
            ctx.ctx as *mut _,
            &mut p,
            size_of::<FibParams>() as i32,
            flags,
        )
    };
    if rc != BPF_FIB_LKUP_RET_SUCCESS as i64 {
        // Once per real server until it resolves (the flag is ours: the
        // controller rewrites the flags when it writes the dest).
        unsafe {
            if (*dest).flags & DEST_F_WARNED == 0 {
                (*dest).flags |= DEST_F_WARNED;
                log_real!(
                    warn,
                    ctx,
                    (*dest).addr,
                    "real server {:i}: no neighbour entry, its packets are dropped until the kernel resolves it"
                );
            }
        }
        return false;
    }
    unsafe {
        (*dest).mac = p.dmac;
        (*dest).smac = p.smac;
        (*dest).ifindex = if p.ifindex == ingress { 0 } else { p.ifindex };
        if path {
            if (*dest).saddr == [0; 4] {
                (*dest).saddr = if addr_is_v4(&addr) {
                    addr_v4(p.__bindgen_anon_3.ipv4_src.to_ne_bytes())
                } else {
                    p.__bindgen_anon_3.ipv6_src
                };
            }
            if (*dest).mtu == 0 {
                (*dest).mtu = u32::from(p.__bindgen_anon_1.mtu_result);
            }
        }
        (*dest).flags |= DEST_F_RESOLVED;
        log_real!(
            info,
            ctx,
            (*dest).addr,
            "real server {:i}: next hop learned from the kernel's neighbour table"
        );
    }
    true
}
