//! Replies built in XDP and sent back to the client with `XDP_TX`:
//! - ICMP destination unreachable / port unreachable when no real server can
//!   take a new flow (docs/SEMANTICS.md §1.3), for TCP and UDP alike;
//! - TCP RST for a segment of a flow whose real server was removed with
//!   `expire_nodest_conn=1` (§4.3), as the director's own stack would answer;
//! - ICMP "fragmentation needed" / ICMPv6 "packet too big" and time exceeded
//!   for tunnelled and masqueraded flows (§18), as IPVS's
//!   `ensure_mtu_is_adequate` and `decrement_ttl`.
//!
//! All come from the VIP, as the kernel's replies would. Headers are built in
//! local buffers (fixed size, checksummed there) and then written out; after
//! every head/tail adjustment every packet pointer is derived again.

use aya_ebpf::{bindings::xdp_md, helpers::bpf_ktime_get_coarse_ns};
use aya_ebpf::{
    helpers::{bpf_xdp_adjust_head, bpf_xdp_adjust_tail, generated::bpf_xdp_load_bytes},
    programs::XdpContext,
};
use lb_common::{
    NS_PER_SEC, REASON_DROP_INTERNAL, REASON_DROP_REPLY_RATE, REASON_TX_ICMP_TIME_EXCEEDED,
    REASON_TX_ICMP_TOO_BIG, REASON_TX_ICMP_UNREACH, REASON_TX_RST_NODEST, REPLY_BURST,
    REPLY_RATE_PER_SEC, addr_low32, addr_octets,
};
use lb_ebpf::{
    csum,
    tcp_state::{TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN},
};

use crate::{
    Verdict,
    maps::REPLY_RATE,
    parse::{ETH_LEN, EthHdr, IPV6_LEN, Ipv6Hdr, Packet, ptr_at, ptr_at_mut},
};

const IP_LEN: usize = 20;
const ICMP_LEN: usize = 8;
const TCP_LEN: usize = 20;
const IPPROTO_ICMP: u8 = 1;
/// The most an ICMP error quotes, as `icmp_send`: 576 - 20 - 8 bytes.
const MAX_QUOTE4: usize = 548;
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_PORT_UNREACH: u8 = 3;
const ICMP_FRAG_NEEDED: u8 = 4;
const ICMP_TIME_EXCEEDED: u8 = 11;
/// `IPTOS_TOS_MASK`, `IPTOS_PREC_INTERNETCONTROL`: the TOS of `icmp_send`'s
/// errors keeps the offending packet's TOS bits under precedence 6.
const IPTOS_TOS_MASK: u8 = 0x1e;
const IPTOS_PREC_INTERNETCONTROL: u8 = 0xc0;

/// A 20-byte IPv4 header from the VIP to the client, checksummed.
#[inline(always)]
fn ip_header(pkt: &Packet, tot_len: u16, tos: u8, proto: u8) -> [u8; IP_LEN] {
    let l = tot_len.to_be_bytes();
    let (vip, client) = (addr_low32(&pkt.key.vaddr), addr_low32(&pkt.key.caddr));
    let mut h = [
        0x45, tos, l[0], l[1], 0, 0, 0, 0, 64, proto, 0, 0, vip[0], vip[1], vip[2], vip[3],
        client[0], client[1], client[2], client[3],
    ];
    let c = csum::fold(csum::add_bytes(0, &h)).to_be_bytes();
    h[10] = c[0];
    h[11] = c[1];
    h
}

/// Swaps the frame's MACs: the reply goes back the way the packet came.
#[inline(always)]
fn swap_macs(eth: *mut EthHdr) {
    unsafe {
        core::mem::swap(&mut (*eth).dst, &mut (*eth).src);
    }
}

/// Shrinks the frame to `want` bytes.
#[inline(always)]
pub fn truncate(ctx: &XdpContext, want: usize) -> bool {
    let have = ctx.data_end() - ctx.data();
    if have < want {
        return false;
    }
    if have == want {
        return true;
    }
    unsafe { bpf_xdp_adjust_tail(ctx.ctx, -((have - want) as i32)) == 0 }
}

/// Token bucket: may this CPU send another ICMP error now? Like the
/// kernel's `icmp_global_allow`, so a flood to a service without reals
/// cannot turn the load balancer into a reflector.
#[inline(always)]
fn reply_allowed() -> bool {
    let Some(b) = REPLY_RATE.get_ptr_mut(0) else {
        return false;
    };
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    unsafe {
        let elapsed = now.saturating_sub((*b).last);
        let refill = elapsed / (NS_PER_SEC / REPLY_RATE_PER_SEC);
        if refill > 0 {
            let t = (*b).tokens + refill;
            (*b).tokens = if t > REPLY_BURST { REPLY_BURST } else { t };
            (*b).last = now;
        }
        if (*b).tokens == 0 {
            return false;
        }
        (*b).tokens -= 1;
    }
    true
}

/// A verdict in one register.
#[inline(always)]
pub fn pack(v: Verdict) -> u64 {
    ((v.action as u64) << 32) | v.reason as u64
}

#[inline(always)]
pub fn unpack(p: u64) -> Verdict {
    Verdict {
        action: (p >> 32) as u32,
        reason: p as u32,
    }
}

/// Turns the frame into an ICMP (ICMPv6) port unreachable to the client.
#[inline(always)]
pub fn port_unreachable(ctx: &XdpContext, pkt: &Packet) -> Verdict {
    if pkt.v6 {
        port_unreachable_v6(ctx, pkt)
    } else {
        port_unreachable_v4(ctx, pkt)
    }
}

/// Turns the frame into the reset the client's stack accepts.
#[inline(always)]
pub fn tcp_reset(ctx: &XdpContext, pkt: &Packet) -> Verdict {
    if pkt.v6 {
        tcp_reset_v6(ctx, pkt)
    } else {
        tcp_reset_v4(ctx, pkt)
    }
}

/// The parts of an ICMP (ICMPv6) error that differ by kind: type, code,
/// the 4 bytes after the checksum (the next-hop MTU of a "fragmentation
/// needed" / "packet too big"), how much of the offending packet it quotes
/// (from its IP header), and the reason it is counted under.
#[derive(Clone, Copy)]
struct IcmpError {
    ty: u8,
    code: u8,
    info: [u8; 4],
    quote: usize,
    reason: u32,
}

/// An ICMP error to the client from the VIP, quoting the first
/// `err.quote` bytes of the offending packet from its IP header, as
/// `icmp_send`: TTL 64, TOS `(tos & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL`,
/// no DF, ID 0.
#[inline(always)]
fn icmp_error_v4(ctx: &XdpContext, pkt: &Packet, err: &IcmpError) -> Verdict {
    unpack(icmp_error_v4_packed(ctx, pkt, err))
}

/// [`icmp_error_v4`], its verdict packed ([`pack`]): a register, not a pointer to
/// the caller's stack, for the verifier.
#[inline(never)]
fn icmp_error_v4_packed(ctx: &XdpContext, pkt: &Packet, err: &IcmpError) -> u64 {
    let quote = err.quote;
    if !(28..=MAX_QUOTE4).contains(&quote) {
        return pack(Verdict::Drop(REASON_DROP_INTERNAL));
    }
    let Some(eth) = ptr_at::<EthHdr>(ctx, 0) else {
        return pack(Verdict::Drop(REASON_DROP_INTERNAL));
    };
    let (client_mac, our_mac) = unsafe { ((*eth).src, (*eth).dst) };
    let Some(tos) = ptr_at::<[u8; 2]>(ctx, ETH_LEN) else {
        return pack(Verdict::Drop(REASON_DROP_INTERNAL));
    };
    let tos = (unsafe { (*tos)[1] } & IPTOS_TOS_MASK) | IPTOS_PREC_INTERNETCONTROL;

    // Room for the new IP and ICMP headers in front of the original IP
    // header, which becomes the quoted part: [eth][ip][icmp][orig ip ...].
    let grow = (IP_LEN + ICMP_LEN) as i32;
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -grow) } != 0 {
        return pack(Verdict::Drop(REASON_DROP_INTERNAL));
    }
    let icmp_off = ETH_LEN + IP_LEN;
    let quote_off = icmp_off + ICMP_LEN;
    if !truncate(ctx, quote_off + quote) {
        return pack(Verdict::Drop(REASON_DROP_INTERNAL));
    }

    let Some(eth) = ptr_at_mut::<EthHdr>(ctx, 0) else {
        return pack(Verdict::Drop(REASON_DROP_INTERNAL));
    };
    unsafe {
        (*eth).dst = client_mac;
        (*eth).src = our_mac;
        (*eth).proto = [0x08, 0x00];
    }
    let ip = ip_header(pkt, (IP_LEN + ICMP_LEN + quote) as u16, tos, IPPROTO_ICMP);
    let Some(ip_p) = ptr_at_mut::<[u8; IP_LEN]>(ctx, ETH_LEN) else {
        return pack(Verdict::Drop(REASON_DROP_INTERNAL));
    };
    unsafe { *ip_p = ip };

    // ICMP checksum: the header (checksum zero) plus the quote.
    let Some(sum) = sum_packet(ctx, quote_off as u32, quote as u32) else {
        return pack(Verdict::Drop(REASON_DROP_INTERNAL));
    };
    write_icmp_header(ctx, icmp_off, err, sum)
}

/// Writes the ICMP (ICMPv6) header of `err` at `icmp_off`, its checksum
/// over `sum` (the quote, and for ICMPv6 the pseudo-header) and itself:
/// the reply is ready to go back.
#[inline(always)]
fn write_icmp_header(ctx: &XdpContext, icmp_off: usize, err: &IcmpError, sum: u32) -> u64 {
    let mut icmp = [
        err.ty,
        err.code,
        0,
        0,
        err.info[0],
        err.info[1],
        err.info[2],
        err.info[3],
    ];
    let c = csum::fold(csum::add_bytes(sum, &icmp)).to_be_bytes();
    icmp[2] = c[0];
    icmp[3] = c[1];
    let Some(icmp_p) = ptr_at_mut::<[u8; ICMP_LEN]>(ctx, icmp_off) else {
        return pack(Verdict::Drop(REASON_DROP_INTERNAL));
    };
    unsafe { *icmp_p = icmp };
    pack(Verdict::Tx(err.reason))
}

/// An ICMP port unreachable to the client, quoting the original IP header
/// and the first 8 bytes of its payload (RFC 792).
#[inline(always)]
fn port_unreachable_v4(ctx: &XdpContext, pkt: &Packet) -> Verdict {
    if !reply_allowed() {
        return Verdict::Drop(REASON_DROP_REPLY_RATE);
    }
    let ihl = pkt.l3_len as usize;
    if !(20..=60).contains(&ihl) {
        return Verdict::Drop(REASON_DROP_INTERNAL);
    }
    let err = IcmpError {
        ty: ICMP_DEST_UNREACH,
        code: ICMP_PORT_UNREACH,
        info: [0; 4],
        quote: ihl + 8,
        reason: REASON_TX_ICMP_UNREACH,
    };
    icmp_error_v4(ctx, pkt, &err)
}

/// How much of the offending packet an ICMP error quotes, as `icmp_send`
/// and `icmp6_send`: all of it up to `max` (548 bytes, so the IPv4 error
/// fits 576; 1,232, so the ICMPv6 error fits 1,280).
#[inline(always)]
fn quote_len(pkt: &Packet, max: usize) -> usize {
    let len = pkt.tot_len as usize;
    if len > max { max } else { len }
}

/// Turns the frame into an ICMP "fragmentation needed" (ICMPv6 "packet too
/// big") to the client, from the VIP, carrying `mtu`: the largest packet
/// the client may send (IPVS's `ensure_mtu_is_adequate`). Not rate-limited:
/// Linux never limits them (`icmpv4_xrlim_allow`, `icmpv6_xrlim_allow`: it
/// would break path MTU discovery), and the answer is always shorter than
/// the packet it answers (docs/SEMANTICS.md §18).
#[inline(always)]
pub fn too_big(ctx: &XdpContext, pkt: &Packet, mtu: u32) -> Verdict {
    if pkt.v6 {
        let err = IcmpError {
            ty: ICMPV6_PKT_TOOBIG,
            code: 0,
            info: mtu.to_be_bytes(),
            quote: quote_len(pkt, MAX_QUOTE6),
            reason: REASON_TX_ICMP_TOO_BIG,
        };
        icmp_error_v6(ctx, pkt, &err)
    } else {
        // 16 bits of MTU in the second half of the rest (RFC 1191).
        let m = (mtu as u16).to_be_bytes();
        let err = IcmpError {
            ty: ICMP_DEST_UNREACH,
            code: ICMP_FRAG_NEEDED,
            info: [0, 0, m[0], m[1]],
            quote: quote_len(pkt, MAX_QUOTE4),
            reason: REASON_TX_ICMP_TOO_BIG,
        };
        icmp_error_v4(ctx, pkt, &err)
    }
}

/// Turns the frame into an ICMP (ICMPv6) time exceeded to the client, from
/// the VIP: its TTL (hop limit) would reach 0 (IPVS's `decrement_ttl`).
/// Rate-limited with the other errors, as the kernel limits them.
#[inline(always)]
pub fn time_exceeded(ctx: &XdpContext, pkt: &Packet) -> Verdict {
    if !reply_allowed() {
        return Verdict::Drop(REASON_DROP_REPLY_RATE);
    }
    if pkt.v6 {
        let err = IcmpError {
            ty: ICMPV6_TIME_EXCEED,
            code: 0,
            info: [0; 4],
            quote: quote_len(pkt, MAX_QUOTE6),
            reason: REASON_TX_ICMP_TIME_EXCEEDED,
        };
        icmp_error_v6(ctx, pkt, &err)
    } else {
        let err = IcmpError {
            ty: ICMP_TIME_EXCEEDED,
            code: 0,
            info: [0; 4],
            quote: quote_len(pkt, MAX_QUOTE4),
            reason: REASON_TX_ICMP_TIME_EXCEEDED,
        };
        icmp_error_v4(ctx, pkt, &err)
    }
}

/// The largest checksummed stretch of a frame (`sum_packet`): more than any
/// frame XDP sees without fragments (a page less the headroom).
pub const MAX_SUM_LEN: u32 = 4096;

/// The one's-complement sum (folded to at most 17 bits) of the `len` bytes of the frame at
/// `off`, as big-endian 16-bit words (an odd last byte padded with zero).
/// `None` when they are not all in the frame.
#[inline(always)]
pub fn sum_packet(ctx: &XdpContext, off: u32, len: u32) -> Option<u32> {
    match lb_sum_packet(ctx.ctx, off, len) {
        u32::MAX => None,
        s => Some(s),
    }
}

/// [`sum_packet`] as a global BPF function: the verifier checks its loop
/// once, not again at every call of every path that reaches it. `u32::MAX`
/// when the bytes are not all in the frame.
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn lb_sum_packet(ctx: *mut xdp_md, off: u32, len: u32) -> u32 {
    let ctx = XdpContext::new(ctx);
    sum_bytes(&ctx, off, len).unwrap_or(u32::MAX)
}

#[inline(always)]
fn sum_bytes(ctx: &XdpContext, off: u32, len: u32) -> Option<u32> {
    if off > 512 || len > MAX_SUM_LEN {
        return None;
    }
    let (off, len) = (off as usize, len as usize);
    let mut sum: u64 = 0;
    let words = len / 8;
    // Eight bytes a step.
    for i in 0..(MAX_SUM_LEN as usize) / 8 {
        if i >= words {
            break;
        }
        let w = ptr_at::<[u8; 8]>(ctx, off + 8 * i)?;
        let w = unsafe { *w };
        sum += u16::from_be_bytes([w[0], w[1]]) as u64
            + u16::from_be_bytes([w[2], w[3]]) as u64
            + u16::from_be_bytes([w[4], w[5]]) as u64
            + u16::from_be_bytes([w[6], w[7]]) as u64;
    }
    // The last 0..=7 bytes.
    let tail = off + 8 * words;
    let rest = len - 8 * words;
    for i in 0..4 {
        if 2 * i + 1 >= rest {
            break;
        }
        let w = ptr_at::<[u8; 2]>(ctx, tail + 2 * i)?;
        sum += u16::from_be_bytes(unsafe { *w }) as u64;
    }
    if rest & 1 == 1 {
        // One byte through the helper: LLVM turns a bounds check of one
        // byte into a form the verifier does not follow.
        let mut b = 0u8;
        let at = (tail + (rest & 6)) as u32;
        if unsafe { bpf_xdp_load_bytes(ctx.ctx, at, &mut b as *mut u8 as *mut _, 1) } != 0 {
            return None;
        }
        sum += (b as u64) << 8;
    }
    // Folded to 17 bits: callers add headers' words to it.
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    Some(sum as u32)
}

/// The sequence number, acknowledgement number and flags of the reset
/// Linux's `tcp_v4_send_reset`/`tcp_v6_send_reset` answer a segment with:
/// to an ACK, `seq = its ack`; otherwise `RST|ACK` acknowledging everything
/// the segment occupied.
#[inline(always)]
fn reset_numbers(pkt: &Packet) -> (u32, u32, u8) {
    if pkt.tcp_flags & TCP_ACK != 0 {
        (pkt.ack_seq, 0u32, TCP_RST)
    } else {
        let len = pkt.tcp_payload
            + (pkt.tcp_flags & TCP_SYN != 0) as u32
            + (pkt.tcp_flags & TCP_FIN != 0) as u32;
        (0u32, pkt.seq.wrapping_add(len), TCP_RST | TCP_ACK)
    }
}

/// The 20-byte TCP reset from VIP:vport to the client, its checksum over
/// the pseudo-header sum `pseudo` (addresses, protocol, length) and itself.
#[inline(always)]
fn reset_segment(pkt: &Packet, pseudo: u32) -> [u8; TCP_LEN] {
    let (seq, ack, flags) = reset_numbers(pkt);
    let s = seq.to_be_bytes();
    let a = ack.to_be_bytes();
    let mut tcp = [
        pkt.key.vport[0],
        pkt.key.vport[1],
        pkt.key.cport[0],
        pkt.key.cport[1],
        s[0],
        s[1],
        s[2],
        s[3],
        a[0],
        a[1],
        a[2],
        a[3],
        0x50,
        flags,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    let c = csum::fold(csum::add_bytes(pseudo, &tcp)).to_be_bytes();
    tcp[16] = c[0];
    tcp[17] = c[1];
    tcp
}

/// The TCP reset to a segment over IPv4 (`tcp_v4_send_reset`).
#[inline(never)]
fn tcp_reset_v4(ctx: &XdpContext, pkt: &Packet) -> Verdict {
    // Pseudo-header: VIP, client, zero, protocol, TCP length.
    let mut pseudo = csum::add_bytes(0, &addr_low32(&pkt.key.vaddr));
    pseudo = csum::add_bytes(pseudo, &addr_low32(&pkt.key.caddr));
    pseudo += 6 + TCP_LEN as u32;
    let tcp = reset_segment(pkt, pseudo);
    let ip = ip_header(pkt, (IP_LEN + TCP_LEN) as u16, 0, 6);

    if !truncate(ctx, ETH_LEN + IP_LEN + TCP_LEN) {
        return Verdict::Drop(REASON_DROP_INTERNAL);
    }
    let Some(eth) = ptr_at_mut::<EthHdr>(ctx, 0) else {
        return Verdict::Drop(REASON_DROP_INTERNAL);
    };
    swap_macs(eth);
    let Some(ip_p) = ptr_at_mut::<[u8; IP_LEN]>(ctx, ETH_LEN) else {
        return Verdict::Drop(REASON_DROP_INTERNAL);
    };
    unsafe { *ip_p = ip };
    let Some(tcp_p) = ptr_at_mut::<[u8; TCP_LEN]>(ctx, ETH_LEN + IP_LEN) else {
        return Verdict::Drop(REASON_DROP_INTERNAL);
    };
    unsafe { *tcp_p = tcp };
    Verdict::Tx(REASON_TX_RST_NODEST)
}

/// The most an ICMPv6 error quotes, as `icmp6_send`: 1,280 (the IPv6
/// minimum MTU) - 40 - 8 bytes. It quotes the IPv6 header, its extension
/// headers and the first 8 bytes of TCP/UDP (what the client's stack
/// reads), as the IPv4 reply quotes the header and 8 bytes, cut at this
/// bound when the extension headers are longer.
const MAX_QUOTE6: usize = 1232;
const ICMPV6_DEST_UNREACH: u8 = 1;
const ICMPV6_PORT_UNREACH: u8 = 4;
const ICMPV6_PKT_TOOBIG: u8 = 2;
const ICMPV6_TIME_EXCEED: u8 = 3;
const IPPROTO_ICMPV6: u8 = 58;

/// The sum of the 16-bit words of an address (for a pseudo-header).
#[inline(always)]
pub fn addr_sum(a: &lb_common::Addr) -> u32 {
    let mut sum = 0u32;
    for w in a {
        let b = w.to_ne_bytes();
        sum += u16::from_be_bytes([b[0], b[1]]) as u32 + u16::from_be_bytes([b[2], b[3]]) as u32;
    }
    sum
}

/// Writes the IPv6 header from the VIP to the client at `ip` (traffic
/// class and flow label 0, hop limit 64, as the kernel's replies), in place.
#[inline(always)]
fn write_ipv6_header(ip: *mut Ipv6Hdr, pkt: &Packet, payload_len: u16, nexthdr: u8) {
    unsafe {
        (*ip).vtc_flow = [0x60, 0, 0, 0];
        (*ip).payload_len = payload_len.to_be_bytes();
        (*ip).nexthdr = nexthdr;
        (*ip).hop_limit = 64;
        (*ip).saddr = addr_octets(&pkt.key.vaddr);
        (*ip).daddr = addr_octets(&pkt.key.caddr);
    }
}

/// The pseudo-header's sum for an upper-layer packet of `len` bytes of
/// `nexthdr` from the VIP to the client (RFC 8200 §8.1).
#[inline(always)]
fn pseudo_v6(pkt: &Packet, len: u32, nexthdr: u8) -> u32 {
    addr_sum(&pkt.key.vaddr)
        + addr_sum(&pkt.key.caddr)
        + (len >> 16)
        + (len & 0xffff)
        + nexthdr as u32
}

/// An ICMPv6 error to the client from the VIP (`icmp6_send`), quoting the
/// first `err.quote` bytes of the offending packet from its IPv6 header.
#[inline(always)]
fn icmp_error_v6(ctx: &XdpContext, pkt: &Packet, err: &IcmpError) -> Verdict {
    unpack(icmp_error_v6_packed(ctx, pkt, err))
}

/// [`icmp_error_v6`], its verdict packed ([`pack`]): a register, not a pointer to
/// the caller's stack, for the verifier.
#[inline(never)]
fn icmp_error_v6_packed(ctx: &XdpContext, pkt: &Packet, err: &IcmpError) -> u64 {
    let quote = err.quote;
    if !(IPV6_LEN + 8..=MAX_QUOTE6).contains(&quote) {
        return pack(Verdict::Drop(REASON_DROP_INTERNAL));
    }
    let Some(eth) = ptr_at::<EthHdr>(ctx, 0) else {
        return pack(Verdict::Drop(REASON_DROP_INTERNAL));
    };
    let (client_mac, our_mac) = unsafe { ((*eth).src, (*eth).dst) };

    // [eth][ipv6][icmpv6][orig ipv6 ...]
    let grow = (IPV6_LEN + ICMP_LEN) as i32;
    if unsafe { bpf_xdp_adjust_head(ctx.ctx, -grow) } != 0 {
        return pack(Verdict::Drop(REASON_DROP_INTERNAL));
    }
    let icmp_off = ETH_LEN + IPV6_LEN;
    let quote_off = icmp_off + ICMP_LEN;
    if !truncate(ctx, quote_off + quote) {
        return pack(Verdict::Drop(REASON_DROP_INTERNAL));
    }
    let Some(eth) = ptr_at_mut::<EthHdr>(ctx, 0) else {
        return pack(Verdict::Drop(REASON_DROP_INTERNAL));
    };
    unsafe {
        (*eth).dst = client_mac;
        (*eth).src = our_mac;
        (*eth).proto = [0x86, 0xdd];
    }
    let len = (ICMP_LEN + quote) as u32;
    let Some(ip) = ptr_at_mut::<Ipv6Hdr>(ctx, ETH_LEN) else {
        return pack(Verdict::Drop(REASON_DROP_INTERNAL));
    };
    write_ipv6_header(ip, pkt, len as u16, IPPROTO_ICMPV6);

    // Checksum: pseudo-header, the ICMPv6 header (checksum zero), the quote.
    let Some(sum) = sum_packet(ctx, quote_off as u32, quote as u32) else {
        return pack(Verdict::Drop(REASON_DROP_INTERNAL));
    };
    write_icmp_header(
        ctx,
        icmp_off,
        err,
        sum + pseudo_v6(pkt, len, IPPROTO_ICMPV6),
    )
}

/// An ICMPv6 destination unreachable / port unreachable to the client
/// (`icmpv6_send(skb, ICMPV6_DEST_UNREACH, ICMPV6_PORT_UNREACH, 0)`), from
/// the VIP, quoting the packet's IPv6 header, extension headers and first 8
/// bytes of TCP/UDP; rate-limited with the IPv4 replies, as the kernel's
/// global ICMP limit covers both.
#[inline(always)]
fn port_unreachable_v6(ctx: &XdpContext, pkt: &Packet) -> Verdict {
    if !reply_allowed() {
        return Verdict::Drop(REASON_DROP_REPLY_RATE);
    }
    let quote = pkt.l3_len as usize + 8;
    // A multiple of 8 either way (extension headers are).
    let quote = if quote > MAX_QUOTE6 {
        MAX_QUOTE6
    } else {
        quote
    };
    let err = IcmpError {
        ty: ICMPV6_DEST_UNREACH,
        code: ICMPV6_PORT_UNREACH,
        info: [0; 4],
        quote,
        reason: REASON_TX_ICMP_UNREACH,
    };
    icmp_error_v6(ctx, pkt, &err)
}

/// The TCP reset to a segment over IPv6 (`tcp_v6_send_reset`): IPv6 header
/// and 20 bytes of TCP, nothing else of the segment.
#[inline(never)]
fn tcp_reset_v6(ctx: &XdpContext, pkt: &Packet) -> Verdict {
    let tcp = reset_segment(pkt, pseudo_v6(pkt, TCP_LEN as u32, 6));
    if !truncate(ctx, ETH_LEN + IPV6_LEN + TCP_LEN) {
        return Verdict::Drop(REASON_DROP_INTERNAL);
    }
    let Some(eth) = ptr_at_mut::<EthHdr>(ctx, 0) else {
        return Verdict::Drop(REASON_DROP_INTERNAL);
    };
    swap_macs(eth);
    let Some(ip_p) = ptr_at_mut::<Ipv6Hdr>(ctx, ETH_LEN) else {
        return Verdict::Drop(REASON_DROP_INTERNAL);
    };
    write_ipv6_header(ip_p, pkt, TCP_LEN as u16, 6);
    let Some(tcp_p) = ptr_at_mut::<[u8; TCP_LEN]>(ctx, ETH_LEN + IPV6_LEN) else {
        return Verdict::Drop(REASON_DROP_INTERNAL);
    };
    unsafe { *tcp_p = tcp };
    Verdict::Tx(REASON_TX_RST_NODEST)
}
