//! Parsing: Ethernet, IPv4 (with options), TCP and UDP, every access
//! bounds-checked right before use.
//!
//! Policy: the program acts only on packets it fully understands. Anything
//! else — not IPv4, 802.1Q/802.1ad tagged, fragments, a malformed IPv4 header,
//! a truncated or malformed L4 header, other protocols — is passed to the
//! kernel unchanged (which validates and drops what is broken), counted under
//! its reason.

use aya_ebpf::programs::XdpContext;
use lb_common::{
    ConnKey, IPPROTO_TCP, IPPROTO_UDP, MAX_IFACES, REASON_PASS_BAD_IP, REASON_PASS_FRAGMENT,
    REASON_PASS_NOT_FOR_US, REASON_PASS_NOT_IPV4, REASON_PASS_NOT_L4, REASON_PASS_TRUNCATED,
    REASON_PASS_VLAN, addr_v4,
};

use crate::{Verdict, maps::IFACES};

pub const ETH_LEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;

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
    /// IPv4 header length in bytes (20..=60).
    pub ihl: usize,
    /// IPv4 total length.
    pub tot_len: u16,
    /// The flow as the client sent it: its key in `CONNS`, and where the
    /// later stages read its protocol, addresses and ports (client =
    /// `caddr`/`cport`, destination = `vaddr`/`vport`).
    pub key: ConnKey,
    /// An IPv6 packet (else IPv4, whose addresses are IPv4-mapped).
    pub v6: bool,
    /// TCP flags (0 for UDP).
    pub tcp_flags: u8,
    /// TCP sequence and acknowledgement numbers (host order).
    pub seq: u32,
    pub ack_seq: u32,
    /// TCP payload length (for a reset's acknowledgement number).
    pub tcp_payload: u32,
    /// An ICMP error quoting a packet from VIP:vport to a client: the
    /// addresses and ports above are the quoted flow's, seen from the
    /// client (`caddr` = the client), so they make its conn key.
    pub icmp_error: bool,
}

impl Packet {
    #[inline(always)]
    pub fn is_tcp(&self) -> bool {
        self.key.proto == IPPROTO_TCP
    }
}

/// Parses the frame into `out` (the per-CPU `PACKET`: see `maps.rs`).
#[inline(always)]
pub fn packet(ctx: &XdpContext, out: &mut Packet) -> Result<(), Verdict> {
    let eth: *const EthHdr = ptr_at(ctx, 0).ok_or(Verdict::Pass(REASON_PASS_NOT_IPV4))?;
    let ethertype = u16::from_be_bytes(unsafe { (*eth).proto });
    if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        return Err(Verdict::Pass(REASON_PASS_VLAN));
    }
    if ethertype != ETH_P_IP {
        return Err(Verdict::Pass(REASON_PASS_NOT_IPV4));
    }
    if !for_us(ctx, unsafe { &(*eth).dst }) {
        return Err(Verdict::Pass(REASON_PASS_NOT_FOR_US));
    }

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
    let proto = unsafe { (*ip).proto };
    let saddr = unsafe { (*ip).saddr };
    // Martian sources (0/8, 127/8, multicast, reserved, broadcast): the
    // kernel drops them before IPVS would see them.
    if saddr[0] == 0 || saddr[0] == 127 || saddr[0] >= 224 {
        return Err(Verdict::Pass(REASON_PASS_BAD_IP));
    }
    let saddr = addr_v4(saddr);
    let daddr = addr_v4(unsafe { (*ip).daddr });
    let l4 = ETH_LEN + ihl;
    let l4_len = tot_len as usize - ihl;

    match proto {
        IPPROTO_TCP => {
            let tcp: *const TcpHdr = ptr_at(ctx, l4).ok_or(Verdict::Pass(REASON_PASS_TRUNCATED))?;
            let doff = ((unsafe { (*tcp).doff } >> 4) as usize) * 4;
            if doff < 20 || doff > l4_len {
                return Err(Verdict::Pass(REASON_PASS_TRUNCATED));
            }
            *out = Packet {
                ihl,
                tot_len,
                key: ConnKey {
                    caddr: saddr,
                    vaddr: daddr,
                    cport: unsafe { (*tcp).sport },
                    vport: unsafe { (*tcp).dport },
                    proto,
                    _pad: [0; 3],
                },
                v6: false,
                tcp_flags: unsafe { (*tcp).flags },
                seq: u32::from_be_bytes(unsafe { (*tcp).seq }),
                ack_seq: u32::from_be_bytes(unsafe { (*tcp).ack_seq }),
                tcp_payload: (l4_len - doff) as u32,
                icmp_error: false,
            };
            Ok(())
        }
        IPPROTO_UDP => {
            let udp: *const UdpHdr = ptr_at(ctx, l4).ok_or(Verdict::Pass(REASON_PASS_TRUNCATED))?;
            if l4_len < 8 {
                return Err(Verdict::Pass(REASON_PASS_TRUNCATED));
            }
            *out = Packet {
                ihl,
                tot_len,
                key: ConnKey {
                    caddr: saddr,
                    vaddr: daddr,
                    cport: unsafe { (*udp).sport },
                    vport: unsafe { (*udp).dport },
                    proto,
                    _pad: [0; 3],
                },
                v6: false,
                tcp_flags: 0,
                seq: 0,
                ack_seq: 0,
                tcp_payload: 0,
                icmp_error: false,
            };
            Ok(())
        }
        IPPROTO_ICMP => icmp_error(ctx, l4, tot_len, out),
        _ => Err(Verdict::Pass(REASON_PASS_NOT_L4)),
    }
}

const IPPROTO_ICMP: u8 = 1;
const ICMP_DEST_UNREACH: u8 = 3;
const ICMP_TIME_EXCEEDED: u8 = 11;
const ICMP_PARAMETERPROB: u8 = 12;

/// An ICMP error (destination unreachable, time exceeded, parameter
/// problem) quoting a TCP or UDP packet: the quoted flow, turned around.
/// Anything else ICMP goes to the kernel as before (`pass_not_tcp_udp`).
#[inline(always)]
fn icmp_error(ctx: &XdpContext, l4: usize, tot_len: u16, out: &mut Packet) -> Result<(), Verdict> {
    let other = Verdict::Pass(REASON_PASS_NOT_L4);
    let icmp: *const [u8; 8] = ptr_at(ctx, l4).ok_or(other)?;
    let ty = unsafe { (*icmp)[0] };
    if ty != ICMP_DEST_UNREACH && ty != ICMP_TIME_EXCEEDED && ty != ICMP_PARAMETERPROB {
        return Err(other);
    }
    let inner: *const Ipv4Hdr = ptr_at(ctx, l4 + 8).ok_or(other)?;
    let vihl = unsafe { (*inner).vihl };
    let ihl = ((vihl & 0x0f) as usize) * 4;
    let proto = unsafe { (*inner).proto };
    if vihl >> 4 != 4 || ihl < 20 || (proto != IPPROTO_TCP && proto != IPPROTO_UDP) {
        return Err(other);
    }
    let ports: *const [u8; 4] = ptr_at(ctx, l4 + 8 + ihl).ok_or(other)?;
    let p = unsafe { *ports };
    *out = Packet {
        ihl,
        tot_len,
        key: ConnKey {
            caddr: addr_v4(unsafe { (*inner).daddr }),
            vaddr: addr_v4(unsafe { (*inner).saddr }),
            cport: [p[2], p[3]],
            vport: [p[0], p[1]],
            proto,
            _pad: [0; 3],
        },
        v6: false,
        tcp_flags: 0,
        seq: 0,
        ack_seq: 0,
        tcp_payload: 0,
        icmp_error: true,
    };
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
