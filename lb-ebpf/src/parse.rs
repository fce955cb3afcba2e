//! Parsing: Ethernet, IPv4 (with options) or IPv6 (with extension
//! headers), TCP and UDP, every access bounds-checked right before use
//! (docs/SEMANTICS.md §17).
//!
//! Policy: the program acts only on packets it fully understands. Anything
//! else — not IP, 802.1Q/802.1ad tagged, fragments, a malformed IP header,
//! a truncated or malformed L4 header, other protocols, an IPv6 chain of
//! more than `MAX_EXT_HEADERS` extension headers — is passed to the kernel
//! unchanged (which validates and drops what is broken), counted under its
//! reason.
//!
//! IPv6 extension headers: hop-by-hop options, routing and destination
//! options headers are walked (at most `MAX_EXT_HEADERS` of them), as
//! `ipv6_find_hdr` finds IPVS's transport header; a routing header is not
//! acted on (IPVS does not either: the packet is for the VIP). A fragment
//! header is a fragment (passed, as IPv4 fragments are); an authentication
//! header, ESP or "no next header" is not TCP/UDP.

use aya_ebpf::programs::XdpContext;
use lb_common::{
    Addr, ConnKey, IPPROTO_TCP, IPPROTO_UDP, MAX_IFACES, REASON_PASS_BAD_IP,
    REASON_PASS_EXT_HEADERS, REASON_PASS_FRAGMENT, REASON_PASS_NOT_FOR_US, REASON_PASS_NOT_IP,
    REASON_PASS_NOT_L4, REASON_PASS_TRUNCATED, REASON_PASS_VLAN, addr_from_octets, addr_is_v4,
    addr_v4,
};

use crate::{Verdict, maps::IFACES};

pub const ETH_LEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

/// IPv6 header length.
pub const IPV6_LEN: usize = 40;
/// Extension headers walked at most before the transport header (Cilium's
/// bound); a longer chain is passed to the kernel (`pass_ext_headers`).
pub const MAX_EXT_HEADERS: usize = 4;
const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_DEST: u8 = 60;
pub const IPPROTO_ICMPV6: u8 = 58;

/// A bounds-checked pointer to a `T` at `off` bytes into the packet.
#[inline(always)]
pub fn ptr_at<T>(ctx: &XdpContext, off: usize) -> Option<*const T> {
    let start = ctx.data();
    let end = ctx.data_end();
    if start + off + size_of::<T>() > end {
        return None;
    }
    Some((start + off) as *const T)
}

#[inline(always)]
pub fn ptr_at_mut<T>(ctx: &XdpContext, off: usize) -> Option<*mut T> {
    ptr_at::<T>(ctx, off).map(|p| p as *mut T)
}

#[repr(C)]
pub struct EthHdr {
    pub dst: [u8; 6],
    pub src: [u8; 6],
    pub proto: [u8; 2],
}

#[repr(C)]
pub struct Ipv4Hdr {
    pub vihl: u8,
    pub tos: u8,
    pub tot_len: [u8; 2],
    pub id: [u8; 2],
    pub frag_off: [u8; 2],
    pub ttl: u8,
    pub proto: u8,
    pub check: [u8; 2],
    pub saddr: [u8; 4],
    pub daddr: [u8; 4],
}

#[repr(C)]
pub struct Ipv6Hdr {
    pub vtc_flow: [u8; 4],
    pub payload_len: [u8; 2],
    pub nexthdr: u8,
    pub hop_limit: u8,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

#[repr(C)]
pub struct TcpHdr {
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    pub seq: [u8; 4],
    pub ack_seq: [u8; 4],
    pub doff: u8,
    pub flags: u8,
    pub window: [u8; 2],
    pub check: [u8; 2],
    pub urg_ptr: [u8; 2],
}

#[repr(C)]
pub struct UdpHdr {
    pub sport: [u8; 2],
    pub dport: [u8; 2],
    pub len: [u8; 2],
    pub check: [u8; 2],
}

/// What the later stages need of a packet. Addresses and ports in network
/// order.
#[derive(Clone, Copy)]
pub struct Packet {
    /// The flow as the client sent it: its key in `CONNS`, and where the
    /// later stages read its protocol, addresses and ports (client =
    /// `caddr`/`cport`, destination = `vaddr`/`vport`).
    pub key: ConnKey,
    /// Bytes from the IP header to the transport header: IPv4's header
    /// length (20..=60), or 40 plus IPv6's extension headers.
    pub l3_len: u32,
    /// The IP packet's length (IPv4 total length, IPv6 40 + payload length).
    pub tot_len: u32,
    /// An IPv6 packet (else IPv4, whose addresses are IPv4-mapped).
    pub v6: bool,
    /// TCP flags (0 for UDP).
    pub tcp_flags: u8,
    /// TCP sequence and acknowledgement numbers (host order).
    pub seq: u32,
    pub ack_seq: u32,
    /// TCP payload length (for a reset's acknowledgement number).
    pub tcp_payload: u32,
    /// An ICMP (ICMPv6) error quoting a packet from VIP:vport to a client:
    /// the key is the quoted flow's, seen from the client (`caddr` = the
    /// client), so it is its conn key.
    pub icmp_error: bool,
    /// An ICMP error: where the quoted packet's transport header starts,
    /// from the start of the frame (its IP header is at the outer transport
    /// header + 8). Masquerading rewrites the quoted ports there.
    pub quoted_l4: u32,
}

impl Packet {
    #[inline(always)]
    pub fn is_tcp(&self) -> bool {
        self.key.proto == IPPROTO_TCP
    }
}

/// Where the IP layer left off: the transport protocol and header offset,
/// and the bytes from there to the end of the IP packet. (The addresses go
/// straight into the packet's key.)
struct L3 {
    proto: u8,
    l4: usize,
    l4_len: usize,
}

/// Parses the frame into `out` (the per-CPU `PACKET`: see `maps.rs`).
#[inline(always)]
pub fn packet(ctx: &XdpContext, out: &mut Packet) -> Result<(), Verdict> {
    let eth: *const EthHdr = ptr_at(ctx, 0).ok_or(Verdict::Pass(REASON_PASS_NOT_IP))?;
    let ethertype = u16::from_be_bytes(unsafe { (*eth).proto });
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        return Err(Verdict::Pass(REASON_PASS_VLAN));
    }
    let v6 = match ethertype {
        ETH_P_IP => false,
        ETH_P_IPV6 => true,
        _ => return Err(Verdict::Pass(REASON_PASS_NOT_IP)),
    };
    if !for_us(ctx, unsafe { &(*eth).dst }) {
        return Err(Verdict::Pass(REASON_PASS_NOT_FOR_US));
    }
    let (l3, tot_len) = if v6 { ipv6(ctx, out)? } else { ipv4(ctx, out)? };
    out.v6 = v6;
    out.tot_len = tot_len;
    out.l3_len = (l3.l4 - ETH_LEN) as u32;
    transport(ctx, out, &l3)
}

/// The IPv4 header: well formed, not a fragment, no martian source.
#[inline(always)]
fn ipv4(ctx: &XdpContext, out: &mut Packet) -> Result<(L3, u32), Verdict> {
    let ip: *const Ipv4Hdr = ptr_at(ctx, ETH_LEN).ok_or(Verdict::Pass(REASON_PASS_TRUNCATED))?;
    let vihl = unsafe { (*ip).vihl };
    let ihl = ((vihl & 0x0f) as usize) * 4;
    let tot_len = u16::from_be_bytes(unsafe { (*ip).tot_len });
    let frame_ip_len = ctx.data_end() - ctx.data() - ETH_LEN;
    if vihl >> 4 != 4 || ihl < 20 || (tot_len as usize) < ihl || tot_len as usize > frame_ip_len {
        return Err(Verdict::Pass(REASON_PASS_BAD_IP));
    }
    let frag = u16::from_be_bytes(unsafe { (*ip).frag_off });
    if frag & 0x3fff != 0 {
        return Err(Verdict::Pass(REASON_PASS_FRAGMENT));
    }
    let saddr = unsafe { (*ip).saddr };
    // Martian sources (0/8, 127/8, multicast, reserved, broadcast): the
    // kernel drops them before IPVS would see them.
    if saddr[0] == 0 || saddr[0] == 127 || saddr[0] >= 224 {
        return Err(Verdict::Pass(REASON_PASS_BAD_IP));
    }
    out.key.caddr = addr_v4(saddr);
    out.key.vaddr = addr_v4(unsafe { (*ip).daddr });
    let l3 = L3 {
        proto: unsafe { (*ip).proto },
        l4: ETH_LEN + ihl,
        l4_len: tot_len as usize - ihl,
    };
    Ok((l3, tot_len as u32))
}

/// The IPv6 header and its extension headers: a payload length that fits
/// the frame (no jumbograms), no martian or IPv4-mapped address, at most
/// `MAX_EXT_HEADERS` extension headers, not a fragment.
#[inline(always)]
fn ipv6(ctx: &XdpContext, out: &mut Packet) -> Result<(L3, u32), Verdict> {
    let ip: *const Ipv6Hdr = ptr_at(ctx, ETH_LEN).ok_or(Verdict::Pass(REASON_PASS_TRUNCATED))?;
    let payload = u16::from_be_bytes(unsafe { (*ip).payload_len }) as usize;
    let frame_ip_len = ctx.data_end() - ctx.data() - ETH_LEN;
    if unsafe { (*ip).vtc_flow[0] } >> 4 != 6 || payload == 0 || IPV6_LEN + payload > frame_ip_len {
        return Err(Verdict::Pass(REASON_PASS_BAD_IP));
    }
    out.key.caddr = addr_from_octets(unsafe { (*ip).saddr });
    out.key.vaddr = addr_from_octets(unsafe { (*ip).daddr });
    if martian_v6(&out.key.caddr) || addr_is_v4(&out.key.vaddr) {
        return Err(Verdict::Pass(REASON_PASS_BAD_IP));
    }
    let (proto, l4) = ext_headers::<false>(ctx, unsafe { (*ip).nexthdr }, ETH_LEN + IPV6_LEN)?;
    let end = ETH_LEN + IPV6_LEN + payload;
    if l4 > end {
        return Err(Verdict::Pass(REASON_PASS_TRUNCATED));
    }
    let l3 = L3 {
        proto,
        l4,
        l4_len: end - l4,
    };
    Ok((l3, (IPV6_LEN + payload) as u32))
}

/// A source the kernel would not accept: unspecified, loopback, multicast,
/// or IPv4-mapped (not allowed on the wire, and the maps' IPv4 form).
#[inline(always)]
fn martian_v6(a: &Addr) -> bool {
    let first = a[0].to_ne_bytes()[0];
    let unspecified_or_loopback =
        a[0] == 0 && a[1] == 0 && a[2] == 0 && (a[3] == 0 || a[3] == 1u32.to_be());
    first == 0xff || unspecified_or_loopback || addr_is_v4(a)
}

/// Walks the extension headers from `nexthdr` at `start`: the transport
/// protocol and its offset. A hop-by-hop header anywhere but first is
/// malformed (the kernel drops such a packet), a fragment header or a chain
/// longer than `MAX_EXT_HEADERS` passes the packet to the kernel. In the
/// packet an ICMPv6 error quotes (`QUOTED`), a first fragment's header is
/// walked over as `ipv6_find_hdr` does, so an error about a first fragment
/// is about its flow; a later fragment carries no ports.
#[inline(always)]
fn ext_headers<const QUOTED: bool>(
    ctx: &XdpContext,
    mut nexthdr: u8,
    start: usize,
) -> Result<(u8, usize), Verdict> {
    let mut off = start;
    for i in 0..MAX_EXT_HEADERS {
        match nexthdr {
            NEXTHDR_HOP if i != 0 => return Err(Verdict::Pass(REASON_PASS_BAD_IP)),
            NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST => {
                let h: *const [u8; 2] =
                    ptr_at(ctx, off).ok_or(Verdict::Pass(REASON_PASS_TRUNCATED))?;
                let (next, len) = unsafe { ((*h)[0], (*h)[1]) };
                nexthdr = next;
                off += (len as usize + 1) * 8;
            }
            NEXTHDR_FRAGMENT if QUOTED => {
                let h: *const [u8; 4] =
                    ptr_at(ctx, off).ok_or(Verdict::Pass(REASON_PASS_TRUNCATED))?;
                let (next, frag_off) = unsafe { ((*h)[0], u16::from_be_bytes([(*h)[2], (*h)[3]])) };
                if frag_off & !7 != 0 {
                    return Err(Verdict::Pass(REASON_PASS_FRAGMENT));
                }
                nexthdr = next;
                off += 8;
            }
            NEXTHDR_FRAGMENT => return Err(Verdict::Pass(REASON_PASS_FRAGMENT)),
            _ => return Ok((nexthdr, off)),
        }
    }
    match nexthdr {
        NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_DEST => Err(Verdict::Pass(REASON_PASS_EXT_HEADERS)),
        NEXTHDR_FRAGMENT => Err(Verdict::Pass(REASON_PASS_FRAGMENT)),
        _ => Ok((nexthdr, off)),
    }
}

/// TCP, UDP, or an ICMP/ICMPv6 error about a flow.
#[inline(always)]
fn transport(ctx: &XdpContext, out: &mut Packet, l3: &L3) -> Result<(), Verdict> {
    let (l4, l4_len) = (l3.l4, l3.l4_len);
    match l3.proto {
        IPPROTO_TCP => {
            let tcp: *const TcpHdr = ptr_at(ctx, l4).ok_or(Verdict::Pass(REASON_PASS_TRUNCATED))?;
            let doff = ((unsafe { (*tcp).doff } >> 4) as usize) * 4;
            if doff < 20 || doff > l4_len {
                return Err(Verdict::Pass(REASON_PASS_TRUNCATED));
            }
            out.key.cport = unsafe { (*tcp).sport };
            out.key.vport = unsafe { (*tcp).dport };
            out.key.proto = IPPROTO_TCP;
            out.key._pad = [0; 3];
            out.tcp_flags = unsafe { (*tcp).flags };
            out.seq = u32::from_be_bytes(unsafe { (*tcp).seq });
            out.ack_seq = u32::from_be_bytes(unsafe { (*tcp).ack_seq });
            out.tcp_payload = (l4_len - doff) as u32;
            out.icmp_error = false;
            Ok(())
        }
        IPPROTO_UDP => {
            let udp: *const UdpHdr = ptr_at(ctx, l4).ok_or(Verdict::Pass(REASON_PASS_TRUNCATED))?;
            if l4_len < 8 {
                return Err(Verdict::Pass(REASON_PASS_TRUNCATED));
            }
            out.key.cport = unsafe { (*udp).sport };
            out.key.vport = unsafe { (*udp).dport };
            out.key.proto = IPPROTO_UDP;
            out.key._pad = [0; 3];
            out.tcp_flags = 0;
            out.seq = 0;
            out.ack_seq = 0;
            out.tcp_payload = 0;
            out.icmp_error = false;
            Ok(())
        }
        IPPROTO_ICMP if !out.v6 => icmp_error(ctx, l4, out),
        IPPROTO_ICMPV6 if out.v6 => icmpv6_error(ctx, l4, out),
        _ => Err(Verdict::Pass(REASON_PASS_NOT_L4)),
    }
}

const IPPROTO_ICMP: u8 = 1;
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_SOURCE_QUENCH: u8 = 4;
/// ICMPv6 types from 128 are informational (echo, neighbour discovery,
/// router advertisements, MLD): the kernel's.
const ICMPV6_INFOMSG_MASK: u8 = 0x80;

/// The quoted flow of an ICMP error, turned around: the client is the
/// quoted destination, the VIP the quoted source. The caller has put the
/// quoted source in `key.vaddr` and the quoted destination in `key.caddr`.
#[inline(always)]
fn quoted_flow(out: &mut Packet, proto: u8, ports: [u8; 4], at: usize) {
    out.quoted_l4 = at as u32;
    out.key.cport = [ports[2], ports[3]];
    out.key.vport = [ports[0], ports[1]];
    out.key.proto = proto;
    out.key._pad = [0; 3];
    out.tcp_flags = 0;
    out.seq = 0;
    out.ack_seq = 0;
    out.tcp_payload = 0;
    out.icmp_error = true;
}

/// An ICMP error of the types IPVS relays (`ip_vs_in_icmp`,
/// `ip_vs_out_icmp`: destination unreachable, source quench, time
/// exceeded) quoting the first fragment of a TCP or UDP packet: the quoted
/// flow, turned around. Anything else ICMP goes to the kernel as before
/// (`pass_not_tcp_udp`).
#[inline(always)]
fn icmp_error(ctx: &XdpContext, l4: usize, out: &mut Packet) -> Result<(), Verdict> {
    let other = Verdict::Pass(REASON_PASS_NOT_L4);
    let icmp: *const [u8; 8] = ptr_at(ctx, l4).ok_or(other)?;
    let ty = unsafe { (*icmp)[0] };
    if ty != ICMP_DEST_UNREACH && ty != ICMP_TIME_EXCEEDED && ty != ICMP_SOURCE_QUENCH {
        return Err(other);
    }
    let inner: *const Ipv4Hdr = ptr_at(ctx, l4 + 8).ok_or(other)?;
    let vihl = unsafe { (*inner).vihl };
    let ihl = ((vihl & 0x0f) as usize) * 4;
    let proto = unsafe { (*inner).proto };
    if vihl >> 4 != 4 || ihl < 20 || (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
        return Err(other);
    }
    // A quoted later fragment has no ports to find a flow by (the kernel
    // ignores it).
    let frag_off = u16::from_be_bytes(unsafe { (*inner).frag_off });
    if frag_off & 0x1fff != 0 {
        return Err(other);
    }
    let ports: *const [u8; 4] = ptr_at(ctx, l4 + 8 + ihl).ok_or(other)?;
    out.key.vaddr = addr_v4(unsafe { (*inner).saddr });
    out.key.caddr = addr_v4(unsafe { (*inner).daddr });
    quoted_flow(out, proto, unsafe { *ports }, l4 + 8 + ihl);
    Ok(())
}

/// An ICMPv6 error (any type below 128: destination unreachable, packet
/// too big, time exceeded, parameter problem, as `ip_vs_in_icmp_v6`)
/// quoting a TCP or UDP packet, whose extension headers are walked as the
/// outer ones: the quoted flow, turned around. Informational ICMPv6
/// (neighbour discovery, router advertisements, echo) goes to the kernel.
#[inline(always)]
fn icmpv6_error(ctx: &XdpContext, l4: usize, out: &mut Packet) -> Result<(), Verdict> {
    let other = Verdict::Pass(REASON_PASS_NOT_L4);
    let icmp: *const [u8; 8] = ptr_at(ctx, l4).ok_or(other)?;
    if unsafe { (*icmp)[0] } & ICMPV6_INFOMSG_MASK != 0 {
        return Err(other);
    }
    let inner: *const Ipv6Hdr = ptr_at(ctx, l4 + 8).ok_or(other)?;
    if unsafe { (*inner).vtc_flow[0] } >> 4 != 6 {
        return Err(other);
    }
    let (proto, inner_l4) =
        match ext_headers::<true>(ctx, unsafe { (*inner).nexthdr }, l4 + 8 + IPV6_LEN) {
            Ok(p) => p,
            Err(_) => return Err(other),
        };
    if proto != IPPROTO_TCP && proto != IPPROTO_UDP {
        return Err(other);
    }
    let ports: *const [u8; 4] = ptr_at(ctx, inner_l4).ok_or(other)?;
    out.key.vaddr = addr_from_octets(unsafe { (*inner).saddr });
    out.key.caddr = addr_from_octets(unsafe { (*inner).daddr });
    // An IPv4-mapped address is the maps' IPv4 form: such a quote is no
    // IPv6 flow's, and must not reach an IPv4 one.
    if addr_is_v4(&out.key.vaddr) || addr_is_v4(&out.key.caddr) {
        return Err(other);
    }
    quoted_flow(out, proto, unsafe { *ports }, inner_l4);
    Ok(())
}

/// Whether the frame is addressed to this host (PACKET_HOST): not to a
/// group address, and, when the controller recorded the MAC of the
/// interface at attach time, to that MAC.
#[inline(always)]
fn for_us(ctx: &XdpContext, dst: &[u8; 6]) -> bool {
    if dst[0] & 1 != 0 {
        return false;
    }
    let ifindex = unsafe { (*ctx.ctx).ingress_ifindex };
    match IFACES.get(ifindex % MAX_IFACES) {
        Some(i) if i.ifindex == ifindex && ifindex != 0 => i.mac == *dst,
        _ => true,
    }
}

/// The baseline program's work: check Ethernet + IPv4 are there, swap MACs.
#[inline(always)]
#[expect(
    clippy::manual_swap,
    reason = "the benchmark baseline stays the program BENCHMARKS.md measured"
)]
pub fn swap_macs_ipv4(ctx: &XdpContext) -> Option<()> {
    let eth: *mut EthHdr = ptr_at_mut(ctx, 0)?;
    let _ip: *const Ipv4Hdr = ptr_at(ctx, ETH_LEN)?;
    unsafe {
        if u16::from_be_bytes((*eth).proto) != ETH_P_IP {
            return None;
        }
        // By hand, as measured in BENCHMARKS.md: `mem::swap` compiles to
        // fewer instructions and would move the benchmarks' reference.
        let dst = (*eth).dst;
        (*eth).dst = (*eth).src;
        (*eth).src = dst;
    }
    Some(())
}
