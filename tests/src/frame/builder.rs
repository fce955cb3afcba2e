//! The frame builder: [`Frame`], e.g. `Frame::tcp(CLIENT, VIP).syn().dport(80).build()`,
//! with the IPv4 header and L4 checksums computed by its own RFC 1071 routine
//! ([`checksum`]), and [`quote_ipv4`] for the quoted part of an ICMP error.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    ARP_REPLY, ARP_REQUEST, BROADCAST_MAC, DOC_DST_MAC, DOC_SRC_MAC, ETH_P_8021Q, ETH_P_ARP,
    ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, mutator,
    tcp_flags,
};

#[derive(Clone, Debug, PartialEq, Eq)]
enum Addrs {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Tcp,
    Udp,
    /// ICMP (over IPv4) or ICMPv6 (over IPv6).
    Icmp {
        ty: u8,
        code: u8,
    },
    /// An IP packet whose payload is taken as is.
    RawIp {
        protocol: u8,
    },
    Arp {
        op: u16,
    },
}

/// A frame under construction. Start with [`Frame::tcp`], [`Frame::udp`], [`Frame::icmp`],
/// [`Frame::ip`], [`Frame::ipv6_tcp`], [`Frame::ipv6_udp`] or [`Frame::arp`], chain setters and
/// finish with [`Frame::build`].
///
/// Defaults: source MAC [`DOC_SRC_MAC`], destination MAC [`DOC_DST_MAC`] (broadcast for ARP
/// requests), no VLAN tag, TTL 64, TOS 0, IP ident 0, DF set, no IP options; TCP source
/// port 40000, destination port 80, seq 0, ack 0, no flags, window 64240; UDP source port
/// 40000, destination port 53; empty payload.
///
/// Checksums (IPv4 header, TCP/UDP/ICMP with the pseudo-header where applicable) are
/// computed by `build`. The L4 checksum covers this frame's own L4 bytes even when it is a
/// fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    vlan: Option<u16>,
    addrs: Addrs,
    kind: Kind,
    ttl: u8,
    tos: u8,
    ident: u16,
    df: bool,
    more_frags: bool,
    frag_offset: u16,
    ip_options: Vec<u8>,
    sport: u16,
    dport: u16,
    seq: u32,
    ack_seq: u32,
    flags: u8,
    window: u16,
    urg_ptr: u16,
    tcp_options: Vec<u8>,
    icmp_rest: [u8; 4],
    arp_target_mac: Option<[u8; 6]>,
    /// IPv6 extension headers, in order: (header type, its bytes; the
    /// first byte, the next header, is filled in by `build`).
    ext_headers: Vec<(u8, Vec<u8>)>,
    payload: Vec<u8>,
}

impl Frame {
    fn base(addrs: Addrs, kind: Kind) -> Self {
        Frame {
            dst_mac: DOC_DST_MAC,
            src_mac: DOC_SRC_MAC,
            vlan: None,
            addrs,
            kind,
            ttl: 64,
            tos: 0,
            ident: 0,
            df: true,
            more_frags: false,
            frag_offset: 0,
            ip_options: Vec::new(),
            sport: 40000,
            dport: 80,
            seq: 0,
            ack_seq: 0,
            flags: 0,
            window: 64240,
            urg_ptr: 0,
            tcp_options: Vec::new(),
            icmp_rest: [0; 4],
            arp_target_mac: None,
            ext_headers: Vec::new(),
            payload: Vec::new(),
        }
    }

    /// An IPv4 TCP segment (no flags set: add `.syn()` etc.).
    pub fn tcp(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        Self::base(Addrs::V4(src, dst), Kind::Tcp)
    }

    /// An IPv4 UDP datagram.
    pub fn udp(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        Self::base(Addrs::V4(src, dst), Kind::Udp).dport(53)
    }

    /// An IPv4 ICMP message of `ty`/`code`. Set bytes 4..8 with [`Frame::icmp_rest`] (echo
    /// id/sequence, next-hop MTU) and the body (e.g. the quoted packet, see [`quote_ipv4`])
    /// with [`Frame::payload`].
    pub fn icmp(src: Ipv4Addr, dst: Ipv4Addr, ty: u8, code: u8) -> Self {
        Self::base(Addrs::V4(src, dst), Kind::Icmp { ty, code })
    }

    /// An IPv4 packet with protocol `protocol` whose payload is [`Frame::payload`] as is (for
    /// non-first fragments and unusual protocols).
    pub fn ip(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8) -> Self {
        Self::base(Addrs::V4(src, dst), Kind::RawIp { protocol })
    }

    /// An IPv6 TCP segment.
    pub fn ipv6_tcp(src: Ipv6Addr, dst: Ipv6Addr) -> Self {
        Self::base(Addrs::V6(src, dst), Kind::Tcp)
    }

    /// An IPv6 UDP datagram.
    pub fn ipv6_udp(src: Ipv6Addr, dst: Ipv6Addr) -> Self {
        Self::base(Addrs::V6(src, dst), Kind::Udp).dport(53)
    }

    /// An ICMPv6 message of `ty`/`code`.
    pub fn icmpv6(src: Ipv6Addr, dst: Ipv6Addr, ty: u8, code: u8) -> Self {
        Self::base(Addrs::V6(src, dst), Kind::Icmp { ty, code })
    }

    /// A TCP segment of either family (both addresses of one family).
    pub fn tcp_ip(src: IpAddr, dst: IpAddr) -> Self {
        Self::base(addrs(src, dst), Kind::Tcp)
    }

    /// A UDP datagram of either family.
    pub fn udp_ip(src: IpAddr, dst: IpAddr) -> Self {
        Self::base(addrs(src, dst), Kind::Udp).dport(53)
    }

    /// An ICMP (IPv4) or ICMPv6 (IPv6) message of either family.
    pub fn icmp_ip(src: IpAddr, dst: IpAddr, ty: u8, code: u8) -> Self {
        Self::base(addrs(src, dst), Kind::Icmp { ty, code })
    }

    /// An IP packet of either family with `protocol` (IPv4) or next header
    /// (IPv6) and the payload as is.
    pub fn ip_any(src: IpAddr, dst: IpAddr, protocol: u8) -> Self {
        Self::base(addrs(src, dst), Kind::RawIp { protocol })
    }

    /// The same frame between other addresses of its family (a rewritten
    /// packet as a translator must produce it; `build` computes its
    /// checksums afresh).
    pub fn retarget(mut self, src: IpAddr, dst: IpAddr) -> Self {
        self.addrs = addrs(src, dst);
        self
    }

    /// Appends an IPv6 extension header of type `ty` (hop-by-hop 0, routing
    /// 43, destination options 60, or any other number) of `(len + 1) * 8`
    /// bytes: next header, `len`, then a PadN option filling the rest.
    pub fn ipv6_ext(mut self, ty: u8, len: u8) -> Self {
        let n = (usize::from(len) + 1) * 8;
        let mut h = vec![0u8; n];
        h[1] = len;
        h[2] = 1; // PadN
        h[3] = (n - 4) as u8;
        self.ext_headers.push((ty, h));
        self
    }

    /// Appends an IPv6 fragment header (44): `offset` in bytes (a multiple
    /// of 8), `more` the M flag, identification 1.
    pub fn ipv6_fragment(mut self, offset: u16, more: bool) -> Self {
        assert!(
            offset.is_multiple_of(8),
            "fragment offset must be a multiple of 8"
        );
        let fo = offset | u16::from(more);
        let mut h = vec![0u8; 8];
        h[2..4].copy_from_slice(&fo.to_be_bytes());
        h[4..8].copy_from_slice(&1u32.to_be_bytes());
        self.ext_headers.push((44, h));
        self
    }

    /// An ARP request "who has `target_ip`? tell `sender_ip`" from the source MAC, to
    /// broadcast. Turn it into a reply with [`Frame::arp_reply`].
    pub fn arp(sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Self {
        let mut f = Self::base(
            Addrs::V4(sender_ip, target_ip),
            Kind::Arp { op: ARP_REQUEST },
        );
        f.dst_mac = BROADCAST_MAC;
        f
    }

    /// Makes an ARP frame a reply to `target_mac` (also the Ethernet destination).
    pub fn arp_reply(mut self, target_mac: [u8; 6]) -> Self {
        self.kind = Kind::Arp { op: ARP_REPLY };
        self.dst_mac = target_mac;
        self.arp_target_mac = Some(target_mac);
        self
    }

    /// Source MAC.
    pub fn src_mac(mut self, mac: [u8; 6]) -> Self {
        self.src_mac = mac;
        self
    }

    /// Destination MAC.
    pub fn dst_mac(mut self, mac: [u8; 6]) -> Self {
        self.dst_mac = mac;
        self
    }

    /// Adds an 802.1Q tag with VLAN id `id` (priority 0).
    pub fn vlan(mut self, id: u16) -> Self {
        self.vlan = Some(id & 0x0fff);
        self
    }

    /// TCP/UDP source port.
    pub fn sport(mut self, port: u16) -> Self {
        self.sport = port;
        self
    }

    /// TCP/UDP destination port.
    pub fn dport(mut self, port: u16) -> Self {
        self.dport = port;
        self
    }

    /// TCP/UDP source and destination ports.
    pub fn ports(self, sport: u16, dport: u16) -> Self {
        self.sport(sport).dport(dport)
    }

    /// Sets the SYN flag.
    pub fn syn(mut self) -> Self {
        self.flags |= tcp_flags::SYN;
        self
    }

    /// Sets the ACK flag (the acknowledgement number is [`Frame::ack_seq`]).
    pub fn ack(mut self) -> Self {
        self.flags |= tcp_flags::ACK;
        self
    }

    /// Sets the FIN flag.
    pub fn fin(mut self) -> Self {
        self.flags |= tcp_flags::FIN;
        self
    }

    /// Sets the RST flag.
    pub fn rst(mut self) -> Self {
        self.flags |= tcp_flags::RST;
        self
    }

    /// Sets the PSH flag.
    pub fn psh(mut self) -> Self {
        self.flags |= tcp_flags::PSH;
        self
    }

    /// Sets the TCP flags byte exactly.
    pub fn flags(mut self, flags: u8) -> Self {
        self.flags = flags;
        self
    }

    /// TCP sequence number.
    pub fn seq(mut self, seq: u32) -> Self {
        self.seq = seq;
        self
    }

    /// TCP acknowledgement number (does not set the ACK flag).
    pub fn ack_seq(mut self, ack: u32) -> Self {
        self.ack_seq = ack;
        self
    }

    /// TCP window.
    pub fn window(mut self, window: u16) -> Self {
        self.window = window;
        self
    }

    /// TCP options, padded with zeros (EOL) to a multiple of 4 bytes; at most 40 bytes.
    pub fn tcp_options(mut self, options: &[u8]) -> Self {
        self.tcp_options = options.to_vec();
        self
    }

    /// IPv4 options, padded with zeros (EOL) to a multiple of 4 bytes; at most 40 bytes.
    /// The IHL follows from their length.
    pub fn ip_options(mut self, options: &[u8]) -> Self {
        self.ip_options = options.to_vec();
        self
    }

    /// L4 payload (for [`Frame::ip`]: the whole IP payload).
    pub fn payload(mut self, payload: &[u8]) -> Self {
        self.payload = payload.to_vec();
        self
    }

    /// ICMP header bytes 4..8 (identifier/sequence, or unused + next-hop MTU).
    pub fn icmp_rest(mut self, rest: [u8; 4]) -> Self {
        self.icmp_rest = rest;
        self
    }

    /// TTL (IPv4) or hop limit (IPv6).
    pub fn ttl(mut self, ttl: u8) -> Self {
        self.ttl = ttl;
        self
    }

    /// IPv4 TOS / IPv6 traffic class.
    pub fn tos(mut self, tos: u8) -> Self {
        self.tos = tos;
        self
    }

    /// IPv4 identification.
    pub fn ident(mut self, ident: u16) -> Self {
        self.ident = ident;
        self
    }

    /// IPv4 don't-fragment bit (default set).
    pub fn df(mut self, df: bool) -> Self {
        self.df = df;
        self
    }

    /// Makes the IPv4 packet a fragment: `offset` in bytes (a multiple of 8), `more` the MF
    /// bit. Clears DF.
    pub fn frag(mut self, offset: u16, more: bool) -> Self {
        self.frag_offset = offset;
        self.more_frags = more;
        self.df = false;
        self
    }

    /// The frame's bytes.
    ///
    /// # Panics
    ///
    /// On settings that cannot be encoded (these are programming errors in a test): options
    /// longer than 40 bytes, a fragment offset that is not a multiple of 8 or too large,
    /// IPv4-only settings on IPv6, a packet longer than 65535 bytes.
    pub fn build(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.payload.len());
        out.extend_from_slice(&self.dst_mac);
        out.extend_from_slice(&self.src_mac);
        if let Some(id) = self.vlan {
            out.extend_from_slice(&ETH_P_8021Q.to_be_bytes());
            out.extend_from_slice(&id.to_be_bytes());
        }
        match (&self.kind, &self.addrs) {
            (Kind::Arp { op }, Addrs::V4(sender, target)) => {
                out.extend_from_slice(&ETH_P_ARP.to_be_bytes());
                out.extend_from_slice(&self.arp_body(*op, *sender, *target));
            }
            (Kind::Arp { .. }, Addrs::V6(..)) => unreachable!("ARP frames are built from IPv4"),
            (_, Addrs::V4(src, dst)) => {
                assert!(
                    self.ext_headers.is_empty(),
                    "extension headers are IPv6 only"
                );
                out.extend_from_slice(&ETH_P_IP.to_be_bytes());
                let l4 = self.l4(&pseudo_v4(*src, *dst, self.protocol()));
                out.extend_from_slice(&self.ipv4_header(*src, *dst, l4.len()));
                out.extend_from_slice(&l4);
            }
            (_, Addrs::V6(src, dst)) => {
                assert!(self.ip_options.is_empty(), "ip_options are IPv4 only");
                assert!(
                    self.frag_offset == 0 && !self.more_frags,
                    "fragments are IPv4 only"
                );
                out.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
                let l4 = self.l4(&pseudo_v6(*src, *dst, self.protocol()));
                let mut ext = Vec::new();
                for (i, (_, h)) in self.ext_headers.iter().enumerate() {
                    let next = match self.ext_headers.get(i + 1) {
                        Some((ty, _)) => *ty,
                        None => self.protocol(),
                    };
                    ext.push(next);
                    ext.extend_from_slice(&h[1..]);
                }
                let first = self.ext_headers.first().map_or(self.protocol(), |e| e.0);
                let len =
                    u16::try_from(ext.len() + l4.len()).expect("IPv6 payload longer than 65535");
                out.extend_from_slice(&ipv6_header(self.tos, len, first, self.ttl, *src, *dst));
                out.extend_from_slice(&ext);
                out.extend_from_slice(&l4);
            }
        }
        out
    }

    fn protocol(&self) -> u8 {
        match (&self.kind, &self.addrs) {
            (Kind::Tcp, _) => IPPROTO_TCP,
            (Kind::Udp, _) => IPPROTO_UDP,
            (Kind::Icmp { .. }, Addrs::V4(..)) => IPPROTO_ICMP,
            (Kind::Icmp { .. }, Addrs::V6(..)) => IPPROTO_ICMPV6,
            (Kind::RawIp { protocol }, _) => *protocol,
            (Kind::Arp { .. }, _) => 0,
        }
    }

    /// The L4 bytes with their checksum; `pseudo` is the pseudo-header without the length.
    fn l4(&self, pseudo: &PseudoHeader) -> Vec<u8> {
        match self.kind {
            Kind::Tcp => {
                let options = pad4(&self.tcp_options, "tcp_options");
                let doff = u8::try_from((20 + options.len()) / 4).expect("checked by pad4");
                let mut seg = Vec::with_capacity(20 + options.len() + self.payload.len());
                seg.extend_from_slice(&self.sport.to_be_bytes());
                seg.extend_from_slice(&self.dport.to_be_bytes());
                seg.extend_from_slice(&self.seq.to_be_bytes());
                seg.extend_from_slice(&self.ack_seq.to_be_bytes());
                seg.push(doff << 4);
                seg.push(self.flags);
                seg.extend_from_slice(&self.window.to_be_bytes());
                seg.extend_from_slice(&[0, 0]); // checksum
                seg.extend_from_slice(&self.urg_ptr.to_be_bytes());
                seg.extend_from_slice(&options);
                seg.extend_from_slice(&self.payload);
                let sum = pseudo.checksum(&seg);
                seg[16..18].copy_from_slice(&sum.to_be_bytes());
                seg
            }
            Kind::Udp => {
                let len = u16::try_from(8 + self.payload.len()).expect("UDP datagram too long");
                let mut dgram = Vec::with_capacity(usize::from(len));
                dgram.extend_from_slice(&self.sport.to_be_bytes());
                dgram.extend_from_slice(&self.dport.to_be_bytes());
                dgram.extend_from_slice(&len.to_be_bytes());
                dgram.extend_from_slice(&[0, 0]);
                dgram.extend_from_slice(&self.payload);
                // RFC 768: a computed 0 is sent as all ones (0 means "no checksum").
                let sum = match pseudo.checksum(&dgram) {
                    0 => 0xffff,
                    s => s,
                };
                dgram[6..8].copy_from_slice(&sum.to_be_bytes());
                dgram
            }
            Kind::Icmp { ty, code } => {
                let mut msg = vec![ty, code, 0, 0];
                msg.extend_from_slice(&self.icmp_rest);
                msg.extend_from_slice(&self.payload);
                // ICMPv4 has no pseudo-header; ICMPv6 does.
                let sum = if self.protocol() == IPPROTO_ICMP {
                    checksum(&[&msg])
                } else {
                    pseudo.checksum(&msg)
                };
                msg[2..4].copy_from_slice(&sum.to_be_bytes());
                msg
            }
            Kind::RawIp { .. } => self.payload.clone(),
            Kind::Arp { .. } => Vec::new(),
        }
    }

    fn ipv4_header(&self, src: Ipv4Addr, dst: Ipv4Addr, l4_len: usize) -> Vec<u8> {
        let options = pad4(&self.ip_options, "ip_options");
        let hlen = 20 + options.len();
        let total = u16::try_from(hlen + l4_len).expect("IPv4 packet longer than 65535");
        assert!(
            self.frag_offset.is_multiple_of(8) && self.frag_offset / 8 < 0x2000,
            "fragment offset {} is not a multiple of 8 below 65536",
            self.frag_offset
        );
        let frag = (u16::from(self.df) << 14)
            | (u16::from(self.more_frags) << 13)
            | (self.frag_offset / 8);
        let ihl = u8::try_from(hlen / 4).expect("checked by pad4");
        let mut h = Vec::with_capacity(hlen);
        h.push(0x40 | ihl);
        h.push(self.tos);
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&self.ident.to_be_bytes());
        h.extend_from_slice(&frag.to_be_bytes());
        h.push(self.ttl);
        h.push(self.protocol());
        h.extend_from_slice(&[0, 0]);
        h.extend_from_slice(&src.octets());
        h.extend_from_slice(&dst.octets());
        h.extend_from_slice(&options);
        let sum = checksum(&[&h]);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
        h
    }

    fn arp_body(&self, op: u16, sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
        let mut a = Vec::with_capacity(28);
        a.extend_from_slice(&1u16.to_be_bytes()); // Ethernet
        a.extend_from_slice(&ETH_P_IP.to_be_bytes());
        a.push(6);
        a.push(4);
        a.extend_from_slice(&op.to_be_bytes());
        a.extend_from_slice(&self.src_mac);
        a.extend_from_slice(&sender.octets());
        a.extend_from_slice(&self.arp_target_mac.unwrap_or([0; 6]));
        a.extend_from_slice(&target.octets());
        a
    }
}

fn addrs(src: IpAddr, dst: IpAddr) -> Addrs {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Addrs::V4(s, d),
        (IpAddr::V6(s), IpAddr::V6(d)) => Addrs::V6(s, d),
        _ => panic!("a frame's addresses are of one family: {src}, {dst}"),
    }
}

/// Options padded with zeros to a multiple of 4.
fn pad4(options: &[u8], what: &str) -> Vec<u8> {
    let mut v = options.to_vec();
    v.resize(options.len().div_ceil(4) * 4, 0);
    assert!(v.len() <= 40, "{what}: {} bytes, at most 40", options.len());
    v
}

fn ipv6_header(
    tc: u8,
    payload_len: u16,
    next: u8,
    hop_limit: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
) -> Vec<u8> {
    let mut h = Vec::with_capacity(40);
    let word = (6u32 << 28) | (u32::from(tc) << 20);
    h.extend_from_slice(&word.to_be_bytes());
    h.extend_from_slice(&payload_len.to_be_bytes());
    h.push(next);
    h.push(hop_limit);
    h.extend_from_slice(&src.octets());
    h.extend_from_slice(&dst.octets());
    h
}

/// The address part of a TCP/UDP pseudo-header; the length is added per segment.
struct PseudoHeader {
    addrs: Vec<u8>,
    protocol: u8,
    v6: bool,
}

fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8) -> PseudoHeader {
    PseudoHeader {
        addrs: [src.octets(), dst.octets()].concat(),
        protocol,
        v6: false,
    }
}

fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, protocol: u8) -> PseudoHeader {
    PseudoHeader {
        addrs: [src.octets(), dst.octets()].concat(),
        protocol,
        v6: true,
    }
}

impl PseudoHeader {
    fn checksum(&self, segment: &[u8]) -> u16 {
        let tail = if self.v6 {
            let len = u32::try_from(segment.len()).expect("segment length fits u32");
            let mut t = len.to_be_bytes().to_vec();
            t.extend_from_slice(&[0, 0, 0, self.protocol]);
            t
        } else {
            let len = u16::try_from(segment.len()).expect("segment length fits u16");
            let mut t = vec![0, self.protocol];
            t.extend_from_slice(&len.to_be_bytes());
            t
        };
        checksum(&[&self.addrs, &tail, segment])
    }
}

/// The Internet checksum (RFC 1071) over the concatenation of `parts`: the one's complement
/// of the one's complement sum of 16-bit big-endian words.
pub fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u32 = 0;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &byte in *part {
            match odd.take() {
                Some(hi) => sum += u32::from(u16::from_be_bytes([hi, byte])),
                None => odd = Some(byte),
            }
            if sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
        }
    }
    if let Some(hi) = odd {
        sum += u32::from(u16::from_be_bytes([hi, 0]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The quoted part of an ICMP error for `frame` (an IPv4 frame): its IP header plus the first
/// `l4_bytes` bytes after it (RFC 792 asks for 8; Linux quotes more).
pub fn quote_ipv4(frame: &[u8], l4_bytes: usize) -> Option<Vec<u8>> {
    let l3 = mutator::l3_offset(frame)?;
    let ihl = usize::from(*frame.get(l3)? & 0x0f) * 4;
    let end = (l3 + ihl + l4_bytes).min(frame.len());
    Some(frame.get(l3..end)?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::parse;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
    const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The classic IPv4 header checksum example (192.168.0.1 -> 192.168.0.199, UDP,
    /// total length 0x73, checksum 0xb861).
    #[test]
    fn ipv4_header_matches_known_example() {
        let f = Frame::udp(
            Ipv4Addr::new(192, 168, 0, 1),
            Ipv4Addr::new(192, 168, 0, 199),
        )
        .payload(&[0u8; 0x73 - 28])
        .build();
        assert_eq!(&f[14..34], hex("45000073000040004011b861c0a80001c0a800c7"));
    }

    /// A TCP SYN with an MSS option, bytes computed independently (Python `struct` and its
    /// own RFC 1071 sum): IP checksum 0xc24f, TCP checksum 0x9656.
    #[test]
    fn tcp_syn_matches_known_bytes() {
        let f = Frame::tcp(CLIENT, VIP)
            .ports(40000, 80)
            .syn()
            .seq(0x0102_0304)
            .ident(0x1234)
            .tcp_options(&[2, 4, 0x05, 0xb4])
            .build();
        let expected = hex(
            "00005e00530200005e00530108004500002c123440004006c24fc633640acb00710a\
             9c40005001020304000000006002faf096560000020405b4",
        );
        assert_eq!(f, expected);
    }

    #[test]
    fn checksum_rfc1071_example() {
        // RFC 1071 §3: words 0001 f203 f4f5 f6f7 sum to ddf2 (before complement).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&[&data]), !0xddf2);
        // The parser's checksum engine (etherparse) agrees on the RFC's example (it sums
        // native-endian words, hence `to_be`).
        let engine = |d: &[u8]| {
            etherparse::checksum::Sum16BitWords::new()
                .add_slice(d)
                .ones_complement()
                .to_be()
        };
        assert_eq!(engine(&data), !0xddf2);
        // Split at odd boundaries gives the same result.
        assert_eq!(checksum(&[&data[..3], &data[3..5], &data[5..]]), !0xddf2);
        // Odd length: the last byte is padded with zero.
        assert_eq!(checksum(&[&[0x12]]), !0x1200);
        assert_eq!(engine(&[0x12]), !0x1200);
    }

    #[test]
    fn udp_zero_checksum_is_sent_as_ones() {
        // Find a payload whose UDP checksum computes to 0: pick the last two payload bytes so
        // that the sum becomes 0xffff (then the complement is 0).
        let base = Frame::udp(CLIENT, VIP).ports(1, 2);
        let probe = base.clone().payload(&[0, 0]).build();
        let sum = u16::from_be_bytes([probe[40], probe[41]]); // checksum with zero filler
        // Adding `sum` (= !partial) as a word makes the partial sum 0xffff.
        let f = base.payload(&sum.to_be_bytes()).build();
        assert_eq!(&f[40..42], &[0xff, 0xff]);
        assert_eq!(parse(&f).unwrap().udp().unwrap().checksum, 0xffff);
    }
}
