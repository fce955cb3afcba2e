//! Tunnelling (`-i`, docs/SEMANTICS.md §18): the packet is encapsulated
//! (IPIP, GUE or GRE, outer IPv4 or IPv6 by the real server's family) and
//! sent towards the next hop of the route to the real server, as IPVS's
//! `ip_vs_tunnel_xmit` / `ip_vs_tunnel_xmit_v6`:
//! - the inner TTL / hop limit is decremented first (`decrement_ttl`; at 1,
//!   ICMP time exceeded from the VIP);
//! - the packet must fit the route's MTU less the encapsulation
//!   (`ensure_mtu_is_adequate`), else "fragmentation needed" / "packet too
//!   big" from the VIP with that limit;
//! - outer source = the director's address on the route (`Dest::saddr`),
//!   outer TTL = the inner's after the decrement, outer TOS / traffic class
//!   = the inner's with CE turned into ECT(0), outer DF = the inner's (with
//!   `pmtu_disc`), IPv4 ID 0 with DF (else random), flow label 0;
//! - GUE: UDP to `Dest::tun_port` from a port hashed from the inner flow,
//!   a 4-byte GUE header, checksum 0 unless `--tun-csum`/`--tun-remcsum`;
//!   GRE: 4 bytes, 8 with its checksum.

use aya_ebpf::{
    helpers::{bpf_xdp_adjust_head, generated::bpf_get_prandom_u32},
    programs::XdpContext,
};
use lb_common::{
    Addr, Dest, REASON_DROP_INTERNAL, REASON_DROP_MTU, REASON_DROP_NO_NEIGH,
    REASON_DROP_REPLY_RATE, TUN_F_NOCSUM, TUN_TYPE_GRE, TUN_TYPE_GUE, addr_is_v4, addr_low32,
    addr_octets,
};
use lb_ebpf::{
    csum,
    encap::{checksum_after_ttl_decrement, ecn_encapsulate, flow_hash, gue_source_port},
};

use crate::{
    Verdict, forward,
    parse::{ETH_LEN, IPV6_LEN, Ipv4Hdr, Ipv6Hdr, Packet, ptr_at, ptr_at_mut},
    reply::{self, addr_sum},
    settings::settings,
};

const IP_LEN: usize = 20;
const UDP_LEN: usize = 8;
const GUE_LEN: usize = 4;
const GRE_LEN: usize = 4;
const GRE_CSUM_LEN: usize = 8;
const IPPROTO_IPIP: u8 = 4;
const IPPROTO_IPV6: u8 = 41;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_GRE: u8 = 47;
const IP_DF: u8 = 0x40;
/// The least an outer IPv4 (IPv6) packet may carry, else IPVS drops.
const MIN_MTU4: u32 = 68;
const MIN_MTU6: u32 = 1280;

/// What encapsulation needs of the inner header, read once its TTL is
/// decremented.
struct Inner {
    ttl: u8,
    /// TOS / traffic class.
    dsfield: u8,
    /// IPv4 with DF.
    df: bool,
}

/// What [`encapsulate`] did, packed in a register: `Done` (the frame is
/// the encapsulated packet), or the reply or drop it asks for. The replies
/// and the next hop are the caller's, so that their stack frames are not
/// nested in the encapsulation's (the 512-byte stack).
const DONE: u64 = 0;
const TOO_BIG: u64 = 1 << 32;
const TIME_EXCEEDED: u64 = 2 << 32;
const DROP: u64 = 3 << 32;

/// Encapsulates `pkt` towards the real server `dest`.
#[inline(always)]
pub fn xmit(ctx: &XdpContext, pkt: &Packet, dest: *mut Dest, reason: u32) -> Verdict {
    // No outer source yet (no route when the real was added, as IPVS finds
    // none in `__ip_vs_get_out_rt`): ask the kernel, drop meanwhile.
    if unsafe { (*dest).saddr } == [0; 4] {
        let ingress = unsafe { (*ctx.ctx).ingress_ifindex };
        if !forward::resolve(ctx, dest, ingress) || unsafe { (*dest).saddr } == [0; 4] {
            return Verdict::Drop(REASON_DROP_NO_NEIGH);
        }
    }
    let r = encapsulate(ctx, pkt, dest);
    let value = r as u32;
    match r & !0xffff_ffff {
        DONE => forward::direct_route(ctx, dest, 0, reason),
        TOO_BIG => reply::too_big(ctx, pkt, value),
        TIME_EXCEEDED => reply::time_exceeded(ctx, pkt),
        _ => Verdict::Drop(value),
    }
}

/// The encapsulation, once in the program (`xmit` has three callers).
#[inline(never)]
fn encapsulate(ctx: &XdpContext, pkt: &Packet, dest: *mut Dest) -> u64 {
    let Some(cfg) = settings() else {
        return DROP | REASON_DROP_INTERNAL as u64;
    };
    let (daddr, saddr, mtu, tun_type, tun_flags, tun_port) = unsafe {
        (
            (*dest).addr,
            (*dest).saddr,
            (*dest).mtu,
            (*dest).tun_type,
            (*dest).tun_flags,
            (*dest).tun_port,
        )
    };
    let outer_v6 = !addr_is_v4(&daddr);
    let csum = tun_flags != TUN_F_NOCSUM;
    let extra = match tun_type {
        TUN_TYPE_GUE => UDP_LEN + GUE_LEN,
        TUN_TYPE_GRE if csum => GRE_CSUM_LEN,
        TUN_TYPE_GRE => GRE_LEN,
        _ => 0,
    };
    let grow = if outer_v6 { IPV6_LEN } else { IP_LEN } + extra;

    let inner = match decrement_ttl(ctx, pkt) {
        Ok(i) => i,
        Err(r) => return r,
    };
    if mtu != 0 {
        let limit = mtu as i64 - grow as i64;
        let least = if outer_v6 { MIN_MTU6 } else { MIN_MTU4 };
        if limit < least as i64 {
            return DROP | REASON_DROP_MTU as u64;
        }
        let limit = limit as u32;
        if pkt.tot_len > limit {
            if pkt.v6 {
                // IPv6 is never fragmented on the way: too big is dropped,
                // answered unless it is an ICMP error itself.
                if pkt.icmp_error {
                    return DROP | REASON_DROP_MTU as u64;
                }
                return TOO_BIG | limit as u64;
            }
            if inner.df && cfg.pmtu_disc != 0 && !pkt.icmp_error {
                return TOO_BIG | limit as u64;
            }
            // IPVS fragments the outer packet here; XDP cannot: it goes
            // out whole (docs/SEMANTICS.md §18).
        }
    }
    let df = inner.df && cfg.pmtu_disc != 0;
    let inner_len = pkt.tot_len as usize;
    let next = if pkt.v6 { IPPROTO_IPV6 } else { IPPROTO_IPIP };

    // The frame ends with the IP packet (no Ethernet padding inside the
    // tunnel), then grows in front by the outer headers.
    if !reply::truncate(ctx, ETH_LEN + inner_len) {
        return DROP | REASON_DROP_INTERNAL as u64;
    }
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -(grow as i32)) } != 0 {
        return DROP | REASON_DROP_INTERNAL as u64;
    }
    // The MACs move to the new front, in 16-bit words (frames start
    // 2-byte aligned; the headers grow by even lengths).
    let (Some(eth), Some(old)) = (
        ptr_at_mut::<[u16; 7]>(ctx, 0),
        ptr_at::<[u16; 6]>(ctx, grow),
    ) else {
        return DROP | REASON_DROP_INTERNAL as u64;
    };
    unsafe {
        let o = *old;
        *eth = [
            o[0],
            o[1],
            o[2],
            o[3],
            o[4],
            o[5],
            u16::from_ne_bytes(if outer_v6 { [0x86, 0xdd] } else { [0x08, 0x00] }),
        ];
    }

    let proto = match tun_type {
        TUN_TYPE_GUE => IPPROTO_UDP,
        TUN_TYPE_GRE => IPPROTO_GRE,
        _ => next,
    };
    let payload = extra + inner_len;
    let ds = ecn_encapsulate(inner.dsfield);
    if outer_v6 {
        let Some(ip) = ptr_at_mut::<Ipv6Hdr>(ctx, ETH_LEN) else {
            return DROP | REASON_DROP_INTERNAL as u64;
        };
        unsafe {
            (*ip).vtc_flow = [0x60 | (ds >> 4), ds << 4, 0, 0];
            (*ip).payload_len = (payload as u16).to_be_bytes();
            (*ip).nexthdr = proto;
            (*ip).hop_limit = inner.ttl;
            (*ip).saddr = addr_octets(&saddr);
            (*ip).daddr = addr_octets(&daddr);
        }
    } else {
        let Some(ip) = ptr_at_mut::<[u16; IP_LEN / 2]>(ctx, ETH_LEN) else {
            return DROP | REASON_DROP_INTERNAL as u64;
        };
        let h = ipv4_header(
            ds,
            (IP_LEN + payload) as u16,
            df,
            inner.ttl,
            proto,
            &saddr,
            &daddr,
        );
        unsafe { *ip = h };
    }
    let l4 = ETH_LEN + if outer_v6 { IPV6_LEN } else { IP_LEN };
    let ok = match tun_type {
        TUN_TYPE_GUE => gue(
            ctx, pkt, l4, payload, next, tun_port, csum, outer_v6, &saddr, &daddr,
        ),
        TUN_TYPE_GRE => gre(ctx, l4, payload, next, csum),
        _ => true,
    };
    if !ok {
        return DROP | REASON_DROP_INTERNAL as u64;
    }
    DONE
}

/// IPVS's `decrement_ttl`: the inner TTL (hop limit) less one, the IPv4
/// header checksum updated as `ip_decrease_ttl` does; at 1, ICMP time
/// exceeded to the client (never about an ICMP error, RFC 1122: dropped).
#[inline(always)]
fn decrement_ttl(ctx: &XdpContext, pkt: &Packet) -> Result<Inner, u64> {
    let expired = || {
        if pkt.icmp_error {
            // As if its answer were refused.
            DROP | REASON_DROP_REPLY_RATE as u64
        } else {
            TIME_EXCEEDED
        }
    };
    let internal = DROP | REASON_DROP_INTERNAL as u64;
    if pkt.v6 {
        let ip = ptr_at_mut::<Ipv6Hdr>(ctx, ETH_LEN).ok_or(internal)?;
        let (hop, vtc) = unsafe { ((*ip).hop_limit, (*ip).vtc_flow) };
        if hop <= 1 {
            return Err(expired());
        }
        unsafe { (*ip).hop_limit = hop - 1 };
        Ok(Inner {
            ttl: hop - 1,
            dsfield: (vtc[0] << 4) | (vtc[1] >> 4),
            df: false,
        })
    } else {
        let ip = ptr_at_mut::<Ipv4Hdr>(ctx, ETH_LEN).ok_or(internal)?;
        let (ttl, tos, frag, check) =
            unsafe { ((*ip).ttl, (*ip).tos, (*ip).frag_off, (*ip).check) };
        if ttl <= 1 {
            return Err(expired());
        }
        unsafe {
            (*ip).ttl = ttl - 1;
            (*ip).check = checksum_after_ttl_decrement(check);
        }
        Ok(Inner {
            ttl: ttl - 1,
            dsfield: tos,
            df: frag[0] & IP_DF != 0,
        })
    }
}

/// The outer IPv4 header (`ip_vs_tunnel_xmit`) as it goes on the wire, in
/// 16-bit words, checksummed: ID 0 with DF (`ip_select_ident`), else random
/// (the kernel's is a hashed counter, as unpredictable).
#[inline(always)]
fn ipv4_header(
    tos: u8,
    tot_len: u16,
    df: bool,
    ttl: u8,
    proto: u8,
    saddr: &Addr,
    daddr: &Addr,
) -> [u16; IP_LEN / 2] {
    let id = if df {
        0
    } else {
        (unsafe { bpf_get_prandom_u32() }) as u16
    };
    // Host-order values of the big-endian words.
    let (s, d) = (u32::from_be(saddr[3]), u32::from_be(daddr[3]));
    let mut h: [u16; IP_LEN / 2] = [
        0x4500 | tos as u16,
        tot_len,
        id,
        if df { (IP_DF as u16) << 8 } else { 0 },
        ((ttl as u16) << 8) | proto as u16,
        0,
        (s >> 16) as u16,
        s as u16,
        (d >> 16) as u16,
        d as u16,
    ];
    let mut sum = 0u32;
    for w in h {
        sum += w as u32;
    }
    h[5] = csum::fold(sum);
    for w in h.iter_mut() {
        *w = w.to_be();
    }
    h
}

/// The UDP and GUE headers at `l4` (`ipvs_gue_encap`), `len` bytes of UDP
/// in all; with `csum` the UDP checksum over the outer pseudo-header and
/// everything after (`udp_set_csum`), else 0.
#[inline(always)]
#[expect(
    clippy::too_many_arguments,
    reason = "the outer header's fields, in registers rather than a struct on the stack"
)]
fn gue(
    ctx: &XdpContext,
    pkt: &Packet,
    l4: usize,
    len: usize,
    next: u8,
    port: [u8; 2],
    csum: bool,
    outer_v6: bool,
    saddr: &Addr,
    daddr: &Addr,
) -> bool {
    let k = &pkt.key;
    let ports = u32::from_ne_bytes([k.cport[0], k.cport[1], k.vport[0], k.vport[1]]);
    let hash = flow_hash(&[
        k.caddr[0],
        k.caddr[1],
        k.caddr[2],
        k.caddr[3],
        k.vaddr[0],
        k.vaddr[1],
        k.vaddr[2],
        k.vaddr[3],
        ports,
        k.proto as u32,
    ]);
    let sport = gue_source_port(hash).to_be_bytes();
    let l = (len as u16).to_be_bytes();
    let Some(h) = ptr_at_mut::<[u8; UDP_LEN + GUE_LEN]>(ctx, l4) else {
        return false;
    };
    unsafe {
        *h = [
            sport[0], sport[1], port[0], port[1], l[0], l[1], 0, 0, 0, next, 0, 0,
        ];
    }
    if !csum {
        return true;
    }
    let Some(sum) = reply::sum_packet(ctx, l4 as u32, len as u32) else {
        return false;
    };
    let pseudo = if outer_v6 {
        addr_sum(saddr) + addr_sum(daddr)
    } else {
        csum::add_bytes(csum::add_bytes(0, &addr_low32(saddr)), &addr_low32(daddr))
    };
    let c = match csum::fold(sum + pseudo + IPPROTO_UDP as u32 + len as u32) {
        // RFC 768: a computed 0 goes out as all ones.
        0 => 0xffff,
        c => c,
    };
    let Some(check) = ptr_at_mut::<[u8; 2]>(ctx, l4 + 6) else {
        return false;
    };
    unsafe { *check = c.to_be_bytes() };
    true
}

/// The GRE header at `l4` (`gre_build_header`): version 0, the inner
/// protocol's ethertype; with `csum` the C bit and the checksum over the
/// GRE header and the inner packet (`len` bytes in all).
#[inline(always)]
fn gre(ctx: &XdpContext, l4: usize, len: usize, next: u8, csum: bool) -> bool {
    let ethertype = if next == IPPROTO_IPV6 {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    };
    if !csum {
        let Some(h) = ptr_at_mut::<[u8; GRE_LEN]>(ctx, l4) else {
            return false;
        };
        unsafe { *h = [0, 0, ethertype[0], ethertype[1]] };
        return true;
    }
    let Some(h) = ptr_at_mut::<[u8; GRE_CSUM_LEN]>(ctx, l4) else {
        return false;
    };
    unsafe { *h = [0x80, 0, ethertype[0], ethertype[1], 0, 0, 0, 0] };
    let Some(sum) = reply::sum_packet(ctx, l4 as u32, len as u32) else {
        return false;
    };
    let c = csum::fold(sum).to_be_bytes();
    let Some(check) = ptr_at_mut::<[u8; 2]>(ctx, l4 + 4) else {
        return false;
    };
    unsafe { *check = c };
    true
}
