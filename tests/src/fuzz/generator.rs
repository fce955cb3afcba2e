//! Frame generation: valid frames for every service, protocol and connection state, other
//! frames the program must pass, and random mutations of both.

use std::{
    collections::VecDeque,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use lb_user::model::Proto;

use super::{
    config::{NOT_VIP, NOT_VIP6, PORTS, SERVICES, VIP_A, VIP_B, VIP6_A, VIP6_B},
    model::be16,
    rng::Rng,
};
use crate::frame::{self, Frame, tcp_flags};

pub(super) const LB_MAC: [u8; 6] = frame::DOC_DST_MAC;
pub(super) const CLIENT_MAC: [u8; 6] = frame::DOC_SRC_MAC;

/// A flow the generator keeps sending on.
#[derive(Clone, Copy, Debug)]
pub(super) struct FlowSpec {
    pub(super) tcp: bool,
    pub(super) client: IpAddr,
    pub(super) cport: u16,
    pub(super) vip: IpAddr,
    pub(super) vport: u16,
}

pub(super) struct Gen {
    pub(super) rng: Rng,
    /// Recently used flows: most packets continue one of them, so that flows
    /// go through their states.
    pub(super) recent: VecDeque<FlowSpec>,
}

/// The frame and how it was made (for reports).
pub(super) struct Generated {
    pub(super) frame: Vec<u8>,
    pub(super) how: String,
}

pub(super) fn client_addr(rng: &mut Rng) -> Ipv4Addr {
    if rng.chance(3, 4) {
        Ipv4Addr::new(192, 0, 2, 1 + rng.below(40) as u8)
    } else {
        Ipv4Addr::new(198, 51, 100, 150 + rng.below(21) as u8)
    }
}

/// An IPv6 client: 2001:db8:N:M::H, so that `-M 64` and `-M 48` group
/// some of them.
pub(super) fn client_addr6(rng: &mut Rng) -> Ipv6Addr {
    Ipv6Addr::new(
        0x2001,
        0xdb8,
        1 + rng.below(2) as u16,
        1 + rng.below(3) as u16,
        0,
        0,
        0,
        1 + rng.below(40) as u16,
    )
}

/// A client of `vip`'s family.
fn client_of(rng: &mut Rng, vip: IpAddr) -> IpAddr {
    if vip.is_ipv6() {
        client_addr6(rng).into()
    } else {
        client_addr(rng).into()
    }
}

/// The largest frame `BPF_PROG_TEST_RUN` hands the program whole: a page
/// less its head- and tailroom (the rest would go into fragments, which
/// the program does not see).
pub(super) const MAX_FRAME: usize = 3500;

/// Well-formed IPv6 extension headers (hop-by-hop, routing, destination
/// options), mostly within the program's bound of 4, sometimes past it;
/// with `long`, some of up to 320 bytes (a reply's quote of 1,232 bytes
/// is then cut).
fn v6_extensions(r: &mut Rng, mut f: Frame, long: bool) -> Frame {
    let most = if r.chance(1, 5) { 6 } else { 4 };
    let n = 1 + r.upto(most);
    for _ in 0..n {
        let len = if long && r.chance(1, 4) {
            r.below(40) as u8
        } else {
            r.below(3) as u8
        };
        f = f.ipv6_ext(r.pick(&[0, 43, 60]), len);
    }
    f
}

pub(super) fn tcp_flag_mix(rng: &mut Rng) -> u8 {
    use tcp_flags::{ACK, FIN, PSH, RST, SYN};
    match rng.below(20) {
        0..=4 => SYN,
        5..=9 => ACK,
        10..=11 => PSH | ACK,
        12..=13 => FIN | ACK,
        14 => FIN,
        15 => RST,
        16 => RST | ACK,
        17 => SYN | ACK,
        _ => rng.byte(),
    }
}

/// Payload sizes: mostly empty or small, some up to an Ethernet MTU, a few
/// up to what `BPF_PROG_TEST_RUN` takes in one page (jumbo frames).
pub(super) fn payload(rng: &mut Rng) -> Vec<u8> {
    let n = match rng.below(50) {
        0..=19 => 0,
        20..=44 => rng.upto(64),
        45..=48 => rng.upto(1400),
        _ => rng.upto(3200),
    };
    rng.bytes(n)
}

pub(super) fn ip_options(rng: &mut Rng) -> Vec<u8> {
    match rng.below(4) {
        0 => vec![1, 1, 1, 0],
        // Record route with room for one address.
        1 => vec![7, 7, 4, 0, 0, 0, 0, 0],
        2 => {
            let n = 4 * (1 + rng.upto(10));
            rng.bytes(n)
        }
        _ => vec![1; 4 * (1 + rng.upto(10))],
    }
}

impl Gen {
    pub(super) fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng::new(seed),
            recent: VecDeque::new(),
        }
    }

    pub(super) fn new_flow(&mut self) -> FlowSpec {
        let r = &mut self.rng;
        let d = &SERVICES[r.upto(SERVICES.len())];
        let vport = if d.port == 0 {
            let any = 1 + r.below(65535) as u16;
            r.pick(&[22, 80, 443, 8443, 3306, any])
        } else {
            d.port
        };
        FlowSpec {
            tcp: d.proto == Proto::Tcp,
            client: client_of(r, d.vip),
            cport: 1024 + r.below(48) as u16,
            vip: d.vip,
            vport,
        }
    }

    /// A frame of a flow of some service: TCP with a flag mix that walks
    /// every state, or a UDP datagram.
    pub(super) fn service_frame(&mut self) -> Generated {
        let flow = if !self.recent.is_empty() && self.rng.chance(7, 10) {
            let i = self.rng.upto(self.recent.len());
            self.recent[i]
        } else {
            let f = self.new_flow();
            if self.recent.len() >= 256 {
                self.recent.pop_front();
            }
            self.recent.push_back(f);
            f
        };
        let r = &mut self.rng;
        let v6 = flow.vip.is_ipv6();
        let mut f = if flow.tcp {
            let mut f = Frame::tcp_ip(flow.client, flow.vip)
                .flags(tcp_flag_mix(r))
                .seq(r.next_u64() as u32)
                .ack_seq(r.next_u64() as u32);
            if r.chance(1, 5) {
                f = f.tcp_options(&[2, 4, 5, 0xb4, 1, 1, 4, 2]);
            }
            f
        } else {
            Frame::udp_ip(flow.client, flow.vip)
        };
        let body = payload(r);
        // Long extension headers (up to 6 x 320 bytes) with a payload of
        // at most 1,400 bytes: the frame stays within `MAX_FRAME`.
        let long_ok = body.len() <= 1400;
        f = f
            .ports(flow.cport, flow.vport)
            .payload(&body)
            .ident(r.next_u64() as u16)
            .ttl(1 + r.byte() / 2);
        if v6 {
            if r.chance(1, 8) {
                f = v6_extensions(r, f, long_ok);
            }
            if r.chance(1, 50) {
                f = f.ipv6_fragment(8 * r.below(3) as u16, r.chance(1, 2));
            }
        } else {
            if r.chance(1, 8) {
                f = f.ip_options(&ip_options(r));
            }
            if r.chance(1, 10) {
                f = f.df(false);
            }
        }
        let (src, dst) = if r.chance(1, 10) {
            (random_mac(r), random_mac(r))
        } else {
            (CLIENT_MAC, LB_MAC)
        };
        let mut frame = f.src_mac(src).dst_mac(dst).build();
        if r.chance(1, 20) {
            // Ethernet padding after the IP packet.
            let n = 1 + r.upto(40);
            frame.extend(r.bytes(n));
        }
        Generated {
            frame,
            how: format!(
                "{} {}:{} -> {}:{}",
                if flow.tcp { "tcp" } else { "udp" },
                flow.client,
                flow.cport,
                flow.vip,
                flow.vport
            ),
        }
    }

    /// A well-formed frame the program must pass: no service for it, or not
    /// TCP/UDP over untagged IPv4.
    pub(super) fn other_frame(&mut self) -> Generated {
        let r = &mut self.rng;
        let c = client_addr(r);
        let vip = r.pick(&[VIP_A, VIP_B, NOT_VIP]);
        let port = r.pick(PORTS);
        let v6 = |r: &mut Rng| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1 + r.below(100) as u16);
        let vip6 = r.pick(&[VIP6_A, VIP6_B, NOT_VIP6]);
        let (frame, how) = match r.below(9) {
            0 => (
                Frame::tcp(c, vip)
                    .ports(1024 + r.below(64) as u16, port)
                    .flags(tcp_flag_mix(r))
                    .build(),
                "tcp to any address/port",
            ),
            1 => (
                Frame::udp(c, vip)
                    .ports(1024 + r.below(64) as u16, port)
                    .payload(&payload(r))
                    .build(),
                "udp to any address/port",
            ),
            2 => (
                Frame::icmp(c, vip, 8, 0)
                    .icmp_rest([0, 1, 0, 1])
                    .payload(&payload(r))
                    .build(),
                "icmp echo",
            ),
            3 => {
                // An ICMP error about a flow to a service.
                let orig = Frame::tcp(vip, c).ports(80, 1024).syn().build();
                let quote = frame::quote_ipv4(&orig, 8).unwrap_or_default();
                (
                    Frame::icmp(c, vip, 3, r.pick(&[3, 4]))
                        .payload(&quote)
                        .build(),
                    "icmp error",
                )
            }
            4 => (
                Frame::ip(c, vip, r.pick(&[0, 47, 50, 132, 255]))
                    .payload(&payload(r))
                    .build(),
                "other ip protocol",
            ),
            5 => (
                {
                    let f = Frame::ipv6_tcp(v6(r), vip6)
                        .ports(40000, port)
                        .flags(tcp_flag_mix(r))
                        .build();
                    ipv6_with_extensions(r, f)
                },
                "ipv6 tcp with extension headers",
            ),
            6 => (
                Frame::ipv6_udp(v6(r), vip6)
                    .ports(40000, port)
                    .payload(&payload(r))
                    .build(),
                "ipv6 udp",
            ),
            7 => (Frame::arp(c, vip).build(), "arp"),
            _ => (
                Frame::tcp(c, vip)
                    .ports(1024, 80)
                    .syn()
                    .vlan(r.below(4096) as u16)
                    .build(),
                "802.1Q tagged syn",
            ),
        };
        Generated {
            frame,
            how: how.to_string(),
        }
    }

    /// An ICMP (ICMPv6) message quoting a packet of a recent flow from the
    /// VIP to the client, as a router on the way would send: errors the
    /// program hands to the flow's real, and others it must pass.
    pub(super) fn icmp_about_flow(&mut self) -> Generated {
        let Some(&flow) = self.recent.get(self.rng.upto(self.recent.len().max(1))) else {
            return self.service_frame();
        };
        let r = &mut self.rng;
        let orig = if flow.tcp {
            Frame::tcp_ip(flow.vip, flow.client)
                .ports(flow.vport, flow.cport)
                .ack()
        } else {
            Frame::udp_ip(flow.vip, flow.client).ports(flow.vport, flow.cport)
        };
        let orig = if flow.vip.is_ipv6() && r.chance(1, 4) {
            v6_extensions(r, orig, false)
        } else {
            orig
        };
        let orig = orig.payload(&payload(r)).build();
        let (router, ty, code, quote): (IpAddr, u8, u8, Vec<u8>) = if flow.vip.is_ipv6() {
            let ty = r.pick(&[2, 2, 1, 3, 4, 100, 128, 129, 135]);
            // ICMPv6 quotes as much as fits in 1,280 bytes; sometimes less.
            let n = if r.chance(1, 4) {
                r.upto(orig.len() - 14)
            } else {
                (orig.len() - 14).min(1232)
            };
            let router = Ipv6Addr::new(0x2001, 0xdb8, 0xff, 0, 0, 0, 0, 1);
            (router.into(), ty, 0, orig[14..14 + n].to_vec())
        } else {
            let ty = r.pick(&[3, 3, 4, 11, 12, 5, 0]);
            let n = r.pick(&[8, 8, 4, 2]);
            let quote = frame::quote_ipv4(&orig, n).unwrap_or_default();
            (
                Ipv4Addr::new(192, 0, 2, 254).into(),
                ty,
                r.pick(&[1, 3, 4]),
                quote,
            )
        };
        let frame = Frame::icmp_ip(router, flow.vip, ty, code)
            .icmp_rest([0, 0, 0x05, 0x00])
            .payload(&quote)
            .build();
        Generated {
            frame,
            how: format!(
                "icmp type {ty} about {} {}:{} -> {}:{} ({} bytes quoted)",
                if flow.tcp { "tcp" } else { "udp" },
                flow.client,
                flow.cport,
                flow.vip,
                flow.vport,
                quote.len()
            ),
        }
    }

    pub(super) fn next(&mut self) -> Generated {
        let mut g = match self.rng.below(20) {
            0..=7 => self.service_frame(),
            8 => self.icmp_about_flow(),
            9..=10 => self.other_frame(),
            // Mutated frames: mostly of services.
            n => {
                let mut g = if n <= 17 {
                    self.service_frame()
                } else {
                    self.other_frame()
                };
                let k = 1 + self.rng.upto(3);
                for _ in 0..k {
                    let v6 = g.frame.get(12..14) == Some(&[0x86, 0xdd][..]);
                    let what = if v6 && self.rng.chance(2, 3) {
                        mutate_v6(&mut self.rng, &mut g.frame)
                    } else {
                        mutate(&mut self.rng, &mut g.frame)
                    };
                    g.how.push_str(", ");
                    g.how.push_str(&what);
                }
                g
            }
        };
        debug_assert!(g.frame.len() <= MAX_FRAME, "{}: {}", g.frame.len(), g.how);
        // test_run refuses frames shorter than an Ethernet header.
        if g.frame.len() < 14 {
            g.frame.resize(14, 0);
            g.how.push_str(", padded to 14");
        }
        g
    }
}

pub(super) fn random_mac(r: &mut Rng) -> [u8; 6] {
    let mut m = [0u8; 6];
    for b in &mut m {
        *b = r.byte();
    }
    m
}

/// Inserts one to three IPv6 extension headers (hop-by-hop, routing,
/// fragment, destination options) in front of the L4 header.
pub(super) fn ipv6_with_extensions(r: &mut Rng, mut f: Vec<u8>) -> Vec<u8> {
    let n = 1 + r.upto(3);
    for _ in 0..n {
        let next = f[14 + 6];
        let ty = r.pick(&[0u8, 43, 44, 60]);
        let ext = match ty {
            44 => vec![next, 0, 0, r.pick(&[0, 1, 8]), 1, 2, 3, 4],
            43 => vec![next, 0, 4, 0, 0, 0, 0, 0],
            _ => vec![next, 0, 1, 4, 0, 0, 0, 0],
        };
        f.splice(54..54, ext);
        f[14 + 6] = ty;
        let len = u16::from_be_bytes([f[18], f[19]]).wrapping_add(8);
        f[18..20].copy_from_slice(&len.to_be_bytes());
    }
    f
}

/// Applies one random mutation; returns its description.
pub(super) fn mutate(r: &mut Rng, f: &mut Vec<u8>) -> String {
    let l3 = frame::mutate::l3_offset(f).unwrap_or(14).min(f.len());
    let ihl = f
        .get(l3)
        .map_or(20, |b| (usize::from(b & 0x0f) * 4).max(20));
    let l4 = l3 + ihl;
    let proto = f.get(l3 + 9).copied().unwrap_or(0);
    let fix = |f: &mut Vec<u8>| frame::mutate::fix_ip_checksum(f);
    match r.below(16) {
        0 => {
            // Truncated at a header boundary (or one byte off), with the IP
            // total length left as is or made to agree.
            let doff = f.get(l4 + 12).map_or(20, |b| usize::from(b >> 4) * 4);
            let cuts = [
                14,
                15,
                l3 + 1,
                l3 + 10,
                l3 + 19,
                l3 + 20,
                l4 - 1,
                l4,
                l4 + 1,
                l4 + 4,
                l4 + 7,
                l4 + 8,
                l4 + 13,
                l4 + 19,
                l4 + 20,
                l4 + doff - 1,
                l4 + doff,
                f.len().saturating_sub(1),
            ];
            let at = r.pick(&cuts).min(f.len());
            f.truncate(at);
            let agree = r.chance(1, 2) && at >= l3 + 4;
            if agree {
                frame::mutate::set_total_len(f, (at - l3) as u16);
                fix(f);
            }
            format!(
                "truncated to {at}{}",
                if agree { " (length fixed)" } else { "" }
            )
        }
        1 | 2 => {
            // A bit flipped in a header byte (Ethernet, IP, L4).
            let end = (l4 + 20).min(f.len());
            let at = r.upto(end.max(1));
            let bit = r.below(8);
            if let Some(b) = f.get_mut(at) {
                *b ^= 1 << bit;
            }
            let fixed = r.chance(1, 2);
            if fixed {
                fix(f);
            }
            format!(
                "bit {bit} of byte {at} flipped{}",
                if fixed { " (ip checksum fixed)" } else { "" }
            )
        }
        3 => {
            let actual = f.len().saturating_sub(l3);
            let any = r.upto(0x10000);
            let v = r.pick(&[
                0,
                1,
                19,
                20,
                ihl.saturating_sub(1),
                ihl,
                ihl + 7,
                ihl + 8,
                ihl + 19,
                ihl + 20,
                actual.saturating_sub(1),
                actual + 1,
                actual + 100,
                0xffff,
                any,
            ]) as u16;
            frame::mutate::set_total_len(f, v);
            if r.chance(1, 2) {
                fix(f);
            }
            format!("total length {v}")
        }
        4 => {
            let v = r.below(16) as u8;
            frame::mutate::set_ihl(f, v);
            if r.chance(1, 2) {
                fix(f);
            }
            format!("ihl {v}")
        }
        5 => {
            let v = r.below(16) as u8;
            if proto == 6
                && let Some(b) = f.get_mut(l4 + 12)
            {
                *b = (*b & 0x0f) | (v << 4);
            }
            format!("tcp data offset {v}")
        }
        6 => {
            let any = r.below(0x10000) as u16;
            let v = r.pick(&[0u16, 1, 7, 8, 9, 0xffff, any]);
            if proto == 17
                && let Some(b) = f.get_mut(l4 + 4..l4 + 6)
            {
                b.copy_from_slice(&v.to_be_bytes());
            }
            format!("udp length {v}")
        }
        7 => {
            // IP options inserted after the existing ones, IHL and total
            // length kept consistent.
            let words = 1 + r.upto(10);
            if ihl + 4 * words > 60 || f.len() < l4 {
                return "ip options (no room)".into();
            }
            let opts = if r.chance(1, 2) {
                vec![1u8; 4 * words]
            } else {
                r.bytes(4 * words)
            };
            f.splice(l4..l4, opts);
            frame::mutate::set_ihl(f, ((ihl + 4 * words) / 4) as u8);
            if let Some(t) = be16(f, l3 + 2) {
                frame::mutate::set_total_len(f, t.wrapping_add(4 * words as u16));
            }
            fix(f);
            format!("{} bytes of ip options", 4 * words)
        }
        8 => {
            let any = r.below(0x10000) as u16;
            let v = r.pick(&[
                0x2000u16, 0x0001, 0x00b9, 0x2010, 0x4000, 0x8000, 0x1fff, any,
            ]);
            if let Some(b) = f.get_mut(l3 + 6..l3 + 8) {
                b.copy_from_slice(&v.to_be_bytes());
            }
            if r.chance(3, 4) {
                fix(f);
            }
            format!("fragment field {v:#06x}")
        }
        9 => {
            let tag: Vec<u8> = match r.below(3) {
                0 => vec![0x81, 0x00, 0x00, r.byte()],
                1 => vec![0x88, 0xa8, 0x00, r.byte()],
                _ => vec![0x88, 0xa8, 0x00, 1, 0x81, 0x00, 0x00, 2],
            };
            let at = 12.min(f.len());
            let n = tag.len();
            f.splice(at..at, tag);
            format!("{} bytes of vlan tags", n)
        }
        10 => {
            let any = r.below(0x10000) as u16;
            let v = r.pick(&[0x86ddu16, 0x0806, 0x88cc, 0x8847, 0x0800, any]);
            if let Some(b) = f.get_mut(12..14) {
                b.copy_from_slice(&v.to_be_bytes());
            }
            format!("ethertype {v:#06x}")
        }
        11 => {
            let any = r.byte();
            let v = r.pick(&[0u8, 1, 6, 17, 47, 132, 255, any]);
            if let Some(b) = f.get_mut(l3 + 9) {
                *b = v;
            }
            fix(f);
            format!("ip protocol {v}")
        }
        12 => {
            let n = 1 + r.upto(64);
            f.extend(r.bytes(n));
            format!("{n} trailing bytes")
        }
        13 => {
            let v = r.below(16) as u8;
            frame::mutate::set_version(f, v);
            fix(f);
            format!("ip version {v}")
        }
        14 => {
            let v = r.byte();
            if proto == 6
                && let Some(b) = f.get_mut(l4 + 13)
            {
                *b = v;
            }
            format!("tcp flags {v:#04x}")
        }
        _ => {
            // Aimed at a service: another destination address and port.
            let vip = r.pick(&[VIP_A, VIP_B]);
            let port = r.pick(PORTS);
            if let Some(b) = f.get_mut(l3 + 16..l3 + 20) {
                b.copy_from_slice(&vip.octets());
            }
            if let Some(b) = f.get_mut(l4 + 2..l4 + 4) {
                b.copy_from_slice(&port.to_be_bytes());
            }
            fix(f);
            format!("retargeted to {vip}:{port}")
        }
    }
}

/// The transport header's offset of an IPv6 frame, walking hop-by-hop,
/// routing and destination options headers as far as the frame goes.
fn v6_l4(f: &[u8]) -> usize {
    let (mut next, mut off) = (f.get(20).copied().unwrap_or(6), 54);
    for _ in 0..8 {
        if !matches!(next, 0 | 43 | 60 | 44) {
            break;
        }
        let (Some(&n), Some(&len)) = (f.get(off), f.get(off + 1)) else {
            break;
        };
        next = n;
        off += if next == 44 {
            8
        } else {
            (usize::from(len) + 1) * 8
        };
    }
    off
}

/// Applies one random IPv6 mutation; returns its description.
pub(super) fn mutate_v6(r: &mut Rng, f: &mut Vec<u8>) -> String {
    let l4 = v6_l4(f);
    let set_payload = |f: &mut Vec<u8>, v: u16| {
        if let Some(b) = f.get_mut(18..20) {
            b.copy_from_slice(&v.to_be_bytes());
        }
    };
    match r.below(9) {
        0 => {
            let cuts = [
                14,
                15,
                14 + 39,
                54,
                55,
                l4 - 1,
                l4,
                l4 + 1,
                l4 + 4,
                l4 + 7,
                l4 + 8,
                l4 + 19,
                l4 + 20,
                f.len().saturating_sub(1),
            ];
            let at = r.pick(&cuts).min(f.len());
            f.truncate(at);
            let agree = r.chance(1, 2) && at >= 54;
            if agree {
                set_payload(f, (at - 54) as u16);
            }
            format!(
                "truncated to {at}{}",
                if agree { " (payload length fixed)" } else { "" }
            )
        }
        1 => {
            let actual = f.len().saturating_sub(54);
            let any = r.upto(0x10000);
            let v = r.pick(&[
                0,
                1,
                7,
                8,
                19,
                20,
                (l4 - 54).saturating_sub(1),
                l4 - 54,
                l4 - 54 + 7,
                l4 - 54 + 19,
                actual.saturating_sub(1),
                actual + 1,
                0xffff,
                any,
            ]) as u16;
            set_payload(f, v);
            format!("payload length {v}")
        }
        2 => {
            let any = r.byte();
            let v = r.pick(&[0u8, 43, 44, 60, 51, 50, 59, 58, 6, 17, any]);
            if let Some(b) = f.get_mut(20) {
                *b = v;
            }
            format!("next header {v}")
        }
        3 if f.len() >= 54 => {
            let g = std::mem::take(f);
            *f = ipv6_with_extensions(r, g);
            "extension headers inserted".into()
        }
        4 => {
            let a: Ipv6Addr = r.pick(&[
                Ipv6Addr::UNSPECIFIED,
                Ipv6Addr::LOCALHOST,
                Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
                Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201),
                Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
                Ipv6Addr::new(0x2001, 0xdb8, 1, 1, 0, 0, 0, 1),
            ]);
            if let Some(b) = f.get_mut(22..38) {
                b.copy_from_slice(&a.octets());
            }
            format!("source {a}")
        }
        5 => {
            let a: Ipv6Addr = r.pick(&[
                VIP6_A,
                VIP6_B,
                NOT_VIP6,
                Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0xcb00, 0x710a),
                Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
            ]);
            let port = r.pick(PORTS);
            if let Some(b) = f.get_mut(38..54) {
                b.copy_from_slice(&a.octets());
            }
            if let Some(b) = f.get_mut(l4 + 2..l4 + 4) {
                b.copy_from_slice(&port.to_be_bytes());
            }
            format!("retargeted to [{a}]:{port}")
        }
        6 => {
            let v = r.below(16) as u8;
            if let Some(b) = f.get_mut(14) {
                *b = (*b & 0x0f) | (v << 4);
            }
            format!("ip version {v}")
        }
        7 if l4 > 54 => {
            // The first extension header's length byte.
            let v = r.byte();
            if let Some(b) = f.get_mut(55) {
                *b = v;
            }
            format!("extension header length {v}")
        }
        _ => {
            let end = (l4 + 20).min(f.len());
            let at = 14 + r.upto(end.saturating_sub(14).max(1));
            let bit = r.below(8);
            if let Some(b) = f.get_mut(at) {
                *b ^= 1 << bit;
            }
            format!("bit {bit} of byte {at} flipped")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::model::classify;

    #[test]
    fn generator_is_deterministic_and_never_panics() {
        let mut a = Gen::new(42);
        let mut b = Gen::new(42);
        for _ in 0..20_000 {
            let (x, y) = (a.next(), b.next());
            assert_eq!(x.frame, y.frame);
            assert!(x.frame.len() >= 14);
            assert!(
                x.frame.len() <= MAX_FRAME,
                "{} bytes: {}",
                x.frame.len(),
                x.how
            );
            let _ = classify(&x.frame);
        }
    }
}
