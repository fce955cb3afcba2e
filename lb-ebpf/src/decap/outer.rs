//! The outer headers: Ethernet (at most one VLAN tag) and the outer IPv4 or
//! IPv6 header of a packet that may be tunnelled to this host. The kernel
//! decapsulates only what its input path accepted as local (`ip_rcv`,
//! `ip_route_input`, `ip_local_deliver`), so we take only a well-formed
//! outer header addressed to one of the host's addresses (`DECAP_LOCAL`),
//! carrying IPIP, UDP or GRE, and not a fragment: XDP cannot reassemble
//! (docs/SEMANTICS.md §20).

use aya_ebpf::{maps::lpm_trie::Key, programs::XdpContext};
use lb_common::{
    Addr, addr_from_octets, addr_v4,
    decap::{
        DECAP_FAMILY_V4, DECAP_FAMILY_V6, DECAP_PREFIX_BITS, DECAP_REASON_PASS_BAD_OUTER,
        DECAP_REASON_PASS_EXT_HEADERS, DECAP_REASON_PASS_FRAGMENT, DECAP_REASON_PASS_IP_OPTIONS,
        DECAP_REASON_PASS_MARTIAN, DECAP_REASON_PASS_NOT_IP, DECAP_REASON_PASS_NOT_LOCAL,
        DECAP_REASON_PASS_NOT_TUNNEL, DecapPrefix,
    },
};
use lb_ebpf::csum::fold;
use lb_ebpf::decap::{ETH_P_IP, ETH_P_IPV6, IPPROTO_GRE, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_UDP};

use crate::{Verdict, maps::DECAP_LOCAL, ptr_at};

const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const NEXTHDR_HOP: u8 = 0;
const NEXTHDR_ROUTING: u8 = 43;
const NEXTHDR_FRAGMENT: u8 = 44;
const NEXTHDR_DEST: u8 = 60;

/// The link layer: its length (14, or 18 with a VLAN tag) and the
/// EtherType after it.
pub struct L2 {
    pub len: usize,
    pub proto: u16,
}

/// The outer IP header.
pub struct Outer {
    /// Its length (IPv4 options included).
    pub hdr_len: usize,
    /// What it carries: 4, 41, 17 or 47.
    pub proto: u8,
    pub v6: bool,
    /// Its ECN field.
    pub ecn: u8,
    /// The bytes after it, as its length fields say.
    pub payload: usize,
}

#[inline(always)]
pub fn ethernet(ctx: &XdpContext) -> Option<L2> {
    let eth = ptr_at::<[u8; 14]>(ctx, 0)?;
    // Sound: bounds-checked just above.
    let eth = unsafe { *eth };
    let proto = u16::from_be_bytes([eth[12], eth[13]]);
    if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
        let tag = unsafe { *ptr_at::<[u8; 4]>(ctx, 14)? };
        return Some(L2 {
            len: 18,
            proto: u16::from_be_bytes([tag[2], tag[3]]),
        });
    }
    Some(L2 { len: 14, proto })
}

/// Whether `addr` (IPv6 if `v6`, else IPv4-mapped) is one of the host's
/// (its local routing table), looked up among the prefixes of its own
/// family only.
#[inline(always)]
pub fn is_local(addr: Addr, v6: bool) -> bool {
    let family = if v6 { DECAP_FAMILY_V6 } else { DECAP_FAMILY_V4 };
    DECAP_LOCAL
        .get(&Key::new(DECAP_PREFIX_BITS, DecapPrefix { family, addr }))
        .is_some()
}

/// An IPv4 destination the kernel never takes from a real interface:
/// loopback (`ipv4_is_loopback`, a martian destination in
/// `ip_route_input_slow`).
#[inline(always)]
pub fn martian_dst_v4(a: [u8; 4]) -> bool {
    a[0] == 127
}

/// An IPv6 destination the kernel never takes from a real interface:
/// `::1` (`ip6_rcv_core`).
#[inline(always)]
pub fn martian_dst_v6(a: &[u8; 16]) -> bool {
    u128::from_be_bytes(*a) == 1
}

/// An IPv4 source `ip_route_input_slow` refuses (a martian source): the
/// zero network, loopback, multicast, the limited broadcast.
#[inline(always)]
fn martian_src_v4(a: [u8; 4]) -> bool {
    a[0] == 0 || a[0] == 127 || a[0] & 0xf0 == 0xe0 || a == [255; 4]
}

/// An IPv6 source `ip6_rcv_core` drops, or one no tunnel peer has:
/// multicast, `::1`, `::`.
#[inline(always)]
fn martian_src_v6(a: &[u8; 16]) -> bool {
    a[0] == 0xff || u128::from_be_bytes(*a) <= 1
}

#[inline(always)]
pub fn ip(ctx: &XdpContext, l2: &L2) -> Result<Outer, Verdict> {
    match l2.proto {
        ETH_P_IP => ipv4(ctx, l2.len),
        ETH_P_IPV6 => ipv6(ctx, l2.len),
        _ => Err(Verdict::Pass(DECAP_REASON_PASS_NOT_IP)),
    }
}

#[inline(always)]
fn tunnel_proto(p: u8) -> bool {
    p == IPPROTO_IPIP || p == IPPROTO_IPV6 || p == IPPROTO_UDP || p == IPPROTO_GRE
}

#[inline(always)]
fn ipv4(ctx: &XdpContext, off: usize) -> Result<Outer, Verdict> {
    let bad = Verdict::Pass(DECAP_REASON_PASS_BAD_OUTER);
    let Some(h) = ptr_at::<[u8; 20]>(ctx, off) else {
        return Err(bad);
    };
    // Sound: bounds-checked just above.
    let h = unsafe { *h };
    if h[0] >> 4 != 4 {
        return Err(bad);
    }
    let hdr_len = ((h[0] & 0x0f) as usize) * 4;
    let tot_len = u16::from_be_bytes([h[2], h[3]]) as usize;
    let frame = ctx.data_end() - ctx.data();
    if hdr_len < 20 || tot_len < hdr_len || off + tot_len > frame {
        return Err(bad);
    }
    if !tunnel_proto(h[9]) {
        return Err(Verdict::Pass(DECAP_REASON_PASS_NOT_TUNNEL));
    }
    let daddr = [h[16], h[17], h[18], h[19]];
    if martian_dst_v4(daddr) || martian_src_v4([h[12], h[13], h[14], h[15]]) {
        return Err(Verdict::Pass(DECAP_REASON_PASS_MARTIAN));
    }
    if !is_local(addr_v4(daddr), false) {
        return Err(Verdict::Pass(DECAP_REASON_PASS_NOT_LOCAL));
    }
    // ip_rcv drops a header whose checksum is wrong.
    if !header_checksum_ok(ctx, off, hdr_len) {
        return Err(bad);
    }
    // MF or a fragment offset.
    if u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
        return Err(Verdict::Pass(DECAP_REASON_PASS_FRAGMENT));
    }
    // Options: the kernel may refuse them (`ip_options_rcv_srr`, source
    // routes) and the director never sends any; left to the kernel.
    if hdr_len != 20 {
        return Err(Verdict::Pass(DECAP_REASON_PASS_IP_OPTIONS));
    }
    Ok(Outer {
        hdr_len,
        proto: h[9],
        v6: false,
        ecn: h[1] & 3,
        payload: tot_len - hdr_len,
    })
}

/// The IPv4 header's checksum (20 to 60 bytes) sums to zero.
#[inline(always)]
fn header_checksum_ok(ctx: &XdpContext, off: usize, len: usize) -> bool {
    let mut sum: u32 = 0;
    let mut i = 0;
    while i < 60 {
        if i >= len {
            break;
        }
        let Some(w) = ptr_at::<[u8; 2]>(ctx, off + i) else {
            return false;
        };
        // Sound: bounds-checked just above.
        let w = unsafe { *w };
        sum += u16::from_be_bytes(w) as u32;
        i += 2;
    }
    fold(sum) == 0
}

#[inline(always)]
fn ipv6(ctx: &XdpContext, off: usize) -> Result<Outer, Verdict> {
    let bad = Verdict::Pass(DECAP_REASON_PASS_BAD_OUTER);
    let Some(h) = ptr_at::<[u8; 40]>(ctx, off) else {
        return Err(bad);
    };
    // Sound: bounds-checked just above.
    let h = unsafe { &*h };
    if h[0] >> 4 != 6 {
        return Err(bad);
    }
    let payload = u16::from_be_bytes([h[4], h[5]]) as usize;
    let frame = ctx.data_end() - ctx.data();
    // A payload length of 0 (a jumbogram) is not ours either.
    if payload == 0 || off + 40 + payload > frame {
        return Err(bad);
    }
    let next = h[6];
    let ext = matches!(
        next,
        NEXTHDR_HOP | NEXTHDR_ROUTING | NEXTHDR_FRAGMENT | NEXTHDR_DEST
    );
    if !tunnel_proto(next) && !ext {
        return Err(Verdict::Pass(DECAP_REASON_PASS_NOT_TUNNEL));
    }
    let mut d = [0u8; 16];
    d.copy_from_slice(&h[24..40]);
    let mut src = [0u8; 16];
    src.copy_from_slice(&h[8..24]);
    if martian_dst_v6(&d) || martian_src_v6(&src) {
        return Err(Verdict::Pass(DECAP_REASON_PASS_MARTIAN));
    }
    if !is_local(addr_from_octets(d), true) {
        return Err(Verdict::Pass(DECAP_REASON_PASS_NOT_LOCAL));
    }
    if next == NEXTHDR_FRAGMENT {
        return Err(Verdict::Pass(DECAP_REASON_PASS_FRAGMENT));
    }
    if ext {
        return Err(Verdict::Pass(DECAP_REASON_PASS_EXT_HEADERS));
    }
    Ok(Outer {
        hdr_len: 40,
        proto: next,
        v6: true,
        ecn: (h[1] >> 4) & 3,
        payload,
    })
}
