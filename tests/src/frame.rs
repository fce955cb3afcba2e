//! Ethernet frames for `BPF_PROG_TEST_RUN` fixtures: a builder ([`Frame`]), raw mutation
//! helpers for malformed cases ([`mutate`]) and a strict parser ([`parse`]) to check the
//! frames a program outputs (ICMP errors, TCP resets, rewritten MACs).
//!
//! The parser shares no code with the builder: it has its own checksum routine, so a bug in
//! one is not hidden by the same bug in the other.
//!
//! ```
//! use lb_tests::frame::{Frame, parse};
//! use std::net::Ipv4Addr;
//! let syn = Frame::tcp(Ipv4Addr::new(198, 51, 100, 10), Ipv4Addr::new(203, 0, 113, 10))
//!     .sport(40000).dport(80).syn().seq(1).build();
//! let p = parse(&syn).unwrap();
//! assert!(p.tcp().unwrap().is_syn());
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

/// RFC 7042 documentation MAC used as the default source (`00:00:5e:00:53:01`).
pub const DOC_SRC_MAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x53, 0x01];
/// RFC 7042 documentation MAC used as the default destination (`00:00:5e:00:53:02`).
pub const DOC_DST_MAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x53, 0x02];
/// The broadcast MAC.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// Ethertype IPv4.
pub const ETH_P_IP: u16 = 0x0800;
/// Ethertype ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// Ethertype IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// Ethertype 802.1Q VLAN tag.
pub const ETH_P_8021Q: u16 = 0x8100;
/// Ethertype 802.1ad (QinQ outer) tag.
pub const ETH_P_8021AD: u16 = 0x88a8;

/// IP protocol ICMP.
pub const IPPROTO_ICMP: u8 = 1;
/// IP protocol TCP.
pub const IPPROTO_TCP: u8 = 6;
/// IP protocol UDP.
pub const IPPROTO_UDP: u8 = 17;
/// IP protocol ICMPv6.
pub const IPPROTO_ICMPV6: u8 = 58;

/// ARP request opcode.
pub const ARP_REQUEST: u16 = 1;
/// ARP reply opcode.
pub const ARP_REPLY: u16 = 2;

/// ICMP destination unreachable.
pub const ICMP_DEST_UNREACH: u8 = 3;
/// ICMP code: port unreachable.
pub const ICMP_PORT_UNREACH: u8 = 3;
/// ICMP code: fragmentation needed and DF set.
pub const ICMP_FRAG_NEEDED: u8 = 4;
/// ICMP echo reply.
pub const ICMP_ECHO_REPLY: u8 = 0;
/// ICMP echo request.
pub const ICMP_ECHO: u8 = 8;

/// TCP flag bits (byte 13 of the TCP header).
pub mod tcp_flags {
    /// FIN
    pub const FIN: u8 = 0x01;
    /// SYN
    pub const SYN: u8 = 0x02;
    /// RST
    pub const RST: u8 = 0x04;
    /// PSH
    pub const PSH: u8 = 0x08;
    /// ACK
    pub const ACK: u8 = 0x10;
    /// URG
    pub const URG: u8 = 0x20;
    /// ECE
    pub const ECE: u8 = 0x40;
    /// CWR
    pub const CWR: u8 = 0x80;
}

// ---------------------------------------------------------------------------------------------
// Builder
// ---------------------------------------------------------------------------------------------

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
                let len = u16::try_from(l4.len()).expect("IPv6 payload longer than 65535");
                out.extend_from_slice(&ipv6_header(
                    self.tos,
                    len,
                    self.protocol(),
                    self.ttl,
                    *src,
                    *dst,
                ));
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
    let l3 = mutate::l3_offset(frame)?;
    let ihl = usize::from(*frame.get(l3)? & 0x0f) * 4;
    let end = (l3 + ihl + l4_bytes).min(frame.len());
    Some(frame.get(l3..end)?.to_vec())
}

/// Raw mutations for malformed-frame cases. None of them fixes checksums unless it says so;
/// all are no-ops on frames too short to hold the field.
pub mod mutate {
    use super::{ETH_P_8021AD, ETH_P_8021Q, checksum};

    /// Offset of the L3 header (after the Ethernet header and up to two VLAN tags), or None
    /// if the frame is too short.
    pub fn l3_offset(frame: &[u8]) -> Option<usize> {
        let mut off = 12;
        for _ in 0..3 {
            let ty = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
            if ty == ETH_P_8021Q || ty == ETH_P_8021AD {
                off += 4;
            } else {
                return Some(off + 2);
            }
        }
        None
    }

    fn l3(frame: &mut [u8]) -> Option<&mut [u8]> {
        let off = l3_offset(frame)?;
        frame.get_mut(off..)
    }

    /// Sets the IPv4 IHL (in 32-bit words, low nibble of the first byte).
    pub fn set_ihl(frame: &mut [u8], ihl: u8) {
        if let Some(b) = l3(frame).and_then(|h| h.first_mut()) {
            *b = (*b & 0xf0) | (ihl & 0x0f);
        }
    }

    /// Sets the IP version nibble.
    pub fn set_version(frame: &mut [u8], version: u8) {
        if let Some(b) = l3(frame).and_then(|h| h.first_mut()) {
            *b = (*b & 0x0f) | (version << 4);
        }
    }

    /// Sets the IPv4 total length.
    pub fn set_total_len(frame: &mut [u8], len: u16) {
        if let Some(f) = l3(frame).and_then(|h| h.get_mut(2..4)) {
            f.copy_from_slice(&len.to_be_bytes());
        }
    }

    /// Sets the IPv4 header checksum.
    pub fn set_ip_checksum(frame: &mut [u8], sum: u16) {
        if let Some(f) = l3(frame).and_then(|h| h.get_mut(10..12)) {
            f.copy_from_slice(&sum.to_be_bytes());
        }
    }

    /// Recomputes the IPv4 header checksum over the header length given by the IHL (after
    /// changing header fields on purpose while keeping the checksum right).
    pub fn fix_ip_checksum(frame: &mut [u8]) {
        let Some(h) = l3(frame) else { return };
        let Some(&first) = h.first() else { return };
        let hlen = usize::from(first & 0x0f) * 4;
        if hlen < 20 || h.len() < hlen {
            return;
        }
        h[10..12].copy_from_slice(&[0, 0]);
        let sum = checksum(&[&h[..hlen]]);
        h[10..12].copy_from_slice(&sum.to_be_bytes());
    }

    /// Flips the bits of the TCP/UDP/ICMP checksum of an IPv4 frame (making it wrong).
    pub fn corrupt_l4_checksum(frame: &mut [u8]) {
        let Some(h) = l3(frame) else { return };
        let (Some(&first), Some(&proto)) = (h.first(), h.get(9)) else {
            return;
        };
        let hlen = usize::from(first & 0x0f) * 4;
        let at = match proto {
            super::IPPROTO_TCP => 16,
            super::IPPROTO_UDP => 6,
            super::IPPROTO_ICMP => 2,
            _ => return,
        };
        if let Some(f) = h.get_mut(hlen + at..hlen + at + 2) {
            f[0] ^= 0xff;
            f[1] ^= 0xff;
        }
    }

    /// Cuts the frame to `len` bytes.
    pub fn truncate(frame: &mut Vec<u8>, len: usize) {
        frame.truncate(len);
    }
}

// ---------------------------------------------------------------------------------------------
// Parser (independent of the builder: own checksum code, own field decoding)
// ---------------------------------------------------------------------------------------------

/// A parsed and verified frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// Ethernet destination.
    pub dst_mac: [u8; 6],
    /// Ethernet source.
    pub src_mac: [u8; 6],
    /// VLAN ids of the tags, outermost first.
    pub vlans: Vec<u16>,
    /// The ethertype after the tags.
    pub ethertype: u16,
    /// The L3 content.
    pub l3: L3,
}

/// L3 content of a [`Parsed`] frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum L3 {
    /// IPv4.
    Ipv4(Ipv4),
    /// IPv6.
    Ipv6(Ipv6),
    /// ARP.
    Arp(Arp),
    /// Any other ethertype: the bytes after the Ethernet header.
    Other(Vec<u8>),
}

/// A verified IPv4 header and its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv4 {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Header length in 32-bit words.
    pub ihl: u8,
    /// TOS byte.
    pub tos: u8,
    /// Total length.
    pub total_len: u16,
    /// Identification.
    pub ident: u16,
    /// Don't-fragment bit.
    pub df: bool,
    /// More-fragments bit.
    pub mf: bool,
    /// Fragment offset in bytes.
    pub frag_offset: u16,
    /// TTL.
    pub ttl: u8,
    /// Protocol.
    pub protocol: u8,
    /// Header checksum (verified).
    pub checksum: u16,
    /// Options (IHL > 5).
    pub options: Vec<u8>,
    /// The payload.
    pub l4: L4,
}

/// A verified IPv6 fixed header and its payload (extension headers are not parsed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv6 {
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label.
    pub flow_label: u32,
    /// Payload length.
    pub payload_len: u16,
    /// Next header.
    pub next_header: u8,
    /// Hop limit.
    pub hop_limit: u8,
    /// The payload.
    pub l4: L4,
}

/// L4 content (checksums verified for TCP, UDP, ICMP and ICMPv6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum L4 {
    /// TCP.
    Tcp(Tcp),
    /// UDP.
    Udp(Udp),
    /// ICMP (IPv4).
    Icmp(Icmp),
    /// ICMPv6.
    Icmpv6(Icmp),
    /// An IPv4 fragment (MF set or non-zero offset): the payload, not checked further.
    Fragment(Vec<u8>),
    /// Another protocol: its number and payload.
    Other {
        /// Protocol / next header.
        protocol: u8,
        /// Payload.
        payload: Vec<u8>,
    },
}

/// A verified TCP segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tcp {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Header length in bytes.
    pub header_len: usize,
    /// Flags byte ([`tcp_flags`]).
    pub flags: u8,
    /// Window.
    pub window: u16,
    /// Checksum (verified).
    pub checksum: u16,
    /// Urgent pointer.
    pub urg_ptr: u16,
    /// Options.
    pub options: Vec<u8>,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Tcp {
    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
    /// SYN set.
    pub fn is_syn(&self) -> bool {
        self.has(tcp_flags::SYN)
    }
    /// ACK set.
    pub fn is_ack(&self) -> bool {
        self.has(tcp_flags::ACK)
    }
    /// RST set.
    pub fn is_rst(&self) -> bool {
        self.has(tcp_flags::RST)
    }
    /// FIN set.
    pub fn is_fin(&self) -> bool {
        self.has(tcp_flags::FIN)
    }
    /// PSH set.
    pub fn is_psh(&self) -> bool {
        self.has(tcp_flags::PSH)
    }
}

/// A verified UDP datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Udp {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Length field (equal to the datagram length).
    pub len: u16,
    /// Checksum (verified; 0 means "none", allowed over IPv4 only).
    pub checksum: u16,
    /// Payload.
    pub payload: Vec<u8>,
}

/// A verified ICMP or ICMPv6 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Icmp {
    /// Type.
    pub ty: u8,
    /// Code.
    pub code: u8,
    /// Checksum (verified).
    pub checksum: u16,
    /// Bytes 4..8 (echo id/sequence, next-hop MTU, ...).
    pub rest: [u8; 4],
    /// Bytes after the 8-byte header: for errors, the quoted original packet.
    pub payload: Vec<u8>,
}

impl Icmp {
    /// The next-hop MTU of a "fragmentation needed" message (bytes 6..8).
    pub fn next_hop_mtu(&self) -> u16 {
        u16::from_be_bytes([self.rest[2], self.rest[3]])
    }

    /// Parses the quoted IPv4 packet of an ICMP error.
    pub fn quoted_ipv4(&self) -> Result<QuotedIpv4, String> {
        parse_quoted_ipv4(&self.payload)
    }
}

/// The original packet quoted in an ICMP error: an IPv4 header and at least the first 8
/// bytes of its payload (L4 checksums cannot be checked: the payload is cut).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotedIpv4 {
    /// Source of the original packet.
    pub src: Ipv4Addr,
    /// Destination of the original packet.
    pub dst: Ipv4Addr,
    /// Protocol of the original packet.
    pub protocol: u8,
    /// Its IHL (words).
    pub ihl: u8,
    /// Its total length field.
    pub total_len: u16,
    /// Its TTL.
    pub ttl: u8,
    /// Whether its header checksum is valid.
    pub header_checksum_ok: bool,
    /// Source port (TCP/UDP).
    pub sport: Option<u16>,
    /// Destination port (TCP/UDP).
    pub dport: Option<u16>,
    /// TCP sequence number.
    pub seq: Option<u32>,
    /// The quoted bytes as they are.
    pub bytes: Vec<u8>,
}

/// An ARP packet (Ethernet/IPv4 only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arp {
    /// Opcode ([`ARP_REQUEST`], [`ARP_REPLY`]).
    pub op: u16,
    /// Sender hardware address.
    pub sender_mac: [u8; 6],
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: [u8; 6],
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl Parsed {
    /// The IPv4 header, if any.
    pub fn ipv4(&self) -> Option<&Ipv4> {
        match &self.l3 {
            L3::Ipv4(ip) => Some(ip),
            _ => None,
        }
    }

    /// The IPv6 header, if any.
    pub fn ipv6(&self) -> Option<&Ipv6> {
        match &self.l3 {
            L3::Ipv6(ip) => Some(ip),
            _ => None,
        }
    }

    /// The ARP packet, if any.
    pub fn arp(&self) -> Option<&Arp> {
        match &self.l3 {
            L3::Arp(a) => Some(a),
            _ => None,
        }
    }

    /// The L4 content of an IPv4 or IPv6 packet.
    pub fn l4(&self) -> Option<&L4> {
        match &self.l3 {
            L3::Ipv4(ip) => Some(&ip.l4),
            L3::Ipv6(ip) => Some(&ip.l4),
            _ => None,
        }
    }

    /// The TCP segment, if any.
    pub fn tcp(&self) -> Option<&Tcp> {
        match self.l4()? {
            L4::Tcp(t) => Some(t),
            _ => None,
        }
    }

    /// The UDP datagram, if any.
    pub fn udp(&self) -> Option<&Udp> {
        match self.l4()? {
            L4::Udp(u) => Some(u),
            _ => None,
        }
    }

    /// The ICMP (IPv4) or ICMPv6 message, if any.
    pub fn icmp(&self) -> Option<&Icmp> {
        match self.l4()? {
            L4::Icmp(i) | L4::Icmpv6(i) => Some(i),
            _ => None,
        }
    }
}

/// Smallest Ethernet frame without FCS; shorter packets are padded up to it, so trailing
/// bytes are accepted only in frames of exactly this size.
const ETH_ZLEN: usize = 60;

/// A cursor over the frame that reports where a read went out of bounds.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bytes(&self, at: usize, n: usize, what: &str) -> Result<&'a [u8], String> {
        at.checked_add(n)
            .and_then(|end| self.buf.get(at..end))
            .ok_or_else(|| format!("{what}: needs bytes {at}..{} of {}", at + n, self.buf.len()))
    }
    fn u8(&self, at: usize, what: &str) -> Result<u8, String> {
        Ok(self.bytes(at, 1, what)?[0])
    }
    fn u16(&self, at: usize, what: &str) -> Result<u16, String> {
        let b = self.bytes(at, 2, what)?;
        Ok((u16::from(b[0]) << 8) | u16::from(b[1]))
    }
    fn u32(&self, at: usize, what: &str) -> Result<u32, String> {
        let b = self.bytes(at, 4, what)?;
        Ok(b.iter().fold(0u32, |acc, &x| (acc << 8) | u32::from(x)))
    }
    fn mac(&self, at: usize, what: &str) -> Result<[u8; 6], String> {
        let mut m = [0u8; 6];
        m.copy_from_slice(self.bytes(at, 6, what)?);
        Ok(m)
    }
    fn ipv4(&self, at: usize, what: &str) -> Result<Ipv4Addr, String> {
        let b = self.bytes(at, 4, what)?;
        Ok(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
    fn ipv6(&self, at: usize, what: &str) -> Result<Ipv6Addr, String> {
        let mut a = [0u8; 16];
        a.copy_from_slice(self.bytes(at, 16, what)?);
        Ok(Ipv6Addr::from(a))
    }
}

/// One's complement sum of `data` as 16-bit big-endian words, folded to 16 bits (not
/// inverted). Written independently of [`checksum`]: 64-bit accumulator, word slices.
fn ones_sum(data: &[u8]) -> u16 {
    let mut acc: u64 = data
        .chunks(2)
        .map(|w| match *w {
            [hi, lo] => (u64::from(hi) << 8) + u64::from(lo),
            [hi] => u64::from(hi) << 8,
            _ => 0,
        })
        .sum();
    while acc >> 16 != 0 {
        acc = (acc >> 16) + (acc & 0xffff);
    }
    acc as u16
}

/// A message with its checksum field in place verifies when the sum of all its words (and
/// of the pseudo-header) is all ones.
fn verify_sum(data: &[u8]) -> bool {
    ones_sum(data) == 0xffff
}

/// Parses and verifies an Ethernet frame.
///
/// Rejects: short frames and headers, IPv4 version/IHL/total length inconsistencies,
/// trailing bytes after the IP packet (except padding of a frame to the 60-byte Ethernet
/// minimum), bad IPv4 header checksums, TCP data offsets out of range, UDP length fields
/// that disagree with the IP length, and bad TCP/UDP/ICMP/ICMPv6 checksums. Errors are
/// human-readable strings naming the failing field.
pub fn parse(frame: &[u8]) -> Result<Parsed, String> {
    let r = Reader { buf: frame };
    let dst_mac = r.mac(0, "ethernet destination")?;
    let src_mac = r.mac(6, "ethernet source")?;
    let mut off = 12;
    let mut vlans = Vec::new();
    let ethertype = loop {
        let ty = r.u16(off, "ethertype")?;
        if ty == ETH_P_8021Q || ty == ETH_P_8021AD {
            vlans.push(r.u16(off + 2, "VLAN tag")? & 0x0fff);
            off += 4;
            if vlans.len() > 2 {
                return Err("more than two VLAN tags".into());
            }
        } else {
            break ty;
        }
    };
    let l3_off = off + 2;
    let l3 = match ethertype {
        ETH_P_IP => L3::Ipv4(parse_ipv4(&r, l3_off)?),
        ETH_P_IPV6 => L3::Ipv6(parse_ipv6(&r, l3_off)?),
        ETH_P_ARP => L3::Arp(parse_arp(&r, l3_off)?),
        _ => L3::Other(frame[l3_off.min(frame.len())..].to_vec()),
    };
    Ok(Parsed {
        dst_mac,
        src_mac,
        vlans,
        ethertype,
        l3,
    })
}

/// Checks that an L3 packet of `len` bytes at `at` fills the frame (up to Ethernet padding).
fn check_trailing(r: &Reader<'_>, at: usize, len: usize, what: &str) -> Result<(), String> {
    let end = at + len;
    if end > r.buf.len() {
        return Err(format!(
            "{what} says {len} bytes but the frame holds {} after the ethernet header",
            r.buf.len() - at
        ));
    }
    if end < r.buf.len() && r.buf.len() != ETH_ZLEN {
        return Err(format!(
            "{} trailing bytes after the {what} packet",
            r.buf.len() - end
        ));
    }
    Ok(())
}

fn parse_ipv4(r: &Reader<'_>, at: usize) -> Result<Ipv4, String> {
    let vihl = r.u8(at, "IPv4 header")?;
    if vihl >> 4 != 4 {
        return Err(format!("IP version {} in an IPv4 ethertype", vihl >> 4));
    }
    let ihl = vihl & 0x0f;
    let hlen = usize::from(ihl) * 4;
    if ihl < 5 {
        return Err(format!("IPv4 IHL {ihl} < 5"));
    }
    let header = r.bytes(at, hlen, "IPv4 header with options")?;
    let total_len = r.u16(at + 2, "IPv4 total length")?;
    if usize::from(total_len) < hlen {
        return Err(format!(
            "IPv4 total length {total_len} < header length {hlen}"
        ));
    }
    check_trailing(r, at, usize::from(total_len), "IPv4 total length")?;
    if !verify_sum(header) {
        return Err(format!(
            "bad IPv4 header checksum {:#06x}",
            r.u16(at + 10, "IPv4 checksum")?
        ));
    }
    let frag = r.u16(at + 6, "IPv4 fragment field")?;
    if frag & 0x8000 != 0 {
        return Err("IPv4 reserved flag set".into());
    }
    let src = r.ipv4(at + 12, "IPv4 source")?;
    let dst = r.ipv4(at + 16, "IPv4 destination")?;
    let protocol = r.u8(at + 9, "IPv4 protocol")?;
    let df = frag & 0x4000 != 0;
    let mf = frag & 0x2000 != 0;
    let frag_offset = (frag & 0x1fff) * 8;
    let payload = r.bytes(at + hlen, usize::from(total_len) - hlen, "IPv4 payload")?;
    let l4 = if mf || frag_offset != 0 {
        L4::Fragment(payload.to_vec())
    } else {
        let mut pseudo = Vec::with_capacity(12);
        pseudo.extend_from_slice(&src.octets());
        pseudo.extend_from_slice(&dst.octets());
        pseudo.push(0);
        pseudo.push(protocol);
        let len = u16::try_from(payload.len()).map_err(|_| "IPv4 payload too long")?;
        pseudo.extend_from_slice(&len.to_be_bytes());
        parse_l4(protocol, payload, &pseudo, false)?
    };
    Ok(Ipv4 {
        src,
        dst,
        ihl,
        tos: r.u8(at + 1, "IPv4 TOS")?,
        total_len,
        ident: r.u16(at + 4, "IPv4 ident")?,
        df,
        mf,
        frag_offset,
        ttl: r.u8(at + 8, "IPv4 TTL")?,
        protocol,
        checksum: r.u16(at + 10, "IPv4 checksum")?,
        options: header[20..].to_vec(),
        l4,
    })
}

fn parse_ipv6(r: &Reader<'_>, at: usize) -> Result<Ipv6, String> {
    let word = r.u32(at, "IPv6 header")?;
    if word >> 28 != 6 {
        return Err(format!("IP version {} in an IPv6 ethertype", word >> 28));
    }
    let payload_len = r.u16(at + 4, "IPv6 payload length")?;
    let next_header = r.u8(at + 6, "IPv6 next header")?;
    let src = r.ipv6(at + 8, "IPv6 source")?;
    let dst = r.ipv6(at + 24, "IPv6 destination")?;
    check_trailing(r, at, 40 + usize::from(payload_len), "IPv6 payload length")?;
    let payload = r.bytes(at + 40, usize::from(payload_len), "IPv6 payload")?;
    let mut pseudo = Vec::with_capacity(40);
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&u32::from(payload_len).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, next_header]);
    Ok(Ipv6 {
        src,
        dst,
        traffic_class: ((word >> 20) & 0xff) as u8,
        flow_label: word & 0x000f_ffff,
        payload_len,
        next_header,
        hop_limit: r.u8(at + 7, "IPv6 hop limit")?,
        l4: parse_l4(next_header, payload, &pseudo, true)?,
    })
}

fn parse_l4(protocol: u8, payload: &[u8], pseudo: &[u8], v6: bool) -> Result<L4, String> {
    let r = Reader { buf: payload };
    let with_pseudo = || [pseudo, payload].concat();
    match protocol {
        IPPROTO_TCP => {
            let doff = r.u8(12, "TCP header")? >> 4;
            let header_len = usize::from(doff) * 4;
            if doff < 5 {
                return Err(format!("TCP data offset {doff} < 5"));
            }
            let header = r.bytes(0, header_len, "TCP header with options")?;
            if !verify_sum(&with_pseudo()) {
                return Err(format!(
                    "bad TCP checksum {:#06x}",
                    r.u16(16, "TCP checksum")?
                ));
            }
            Ok(L4::Tcp(Tcp {
                sport: r.u16(0, "TCP source port")?,
                dport: r.u16(2, "TCP destination port")?,
                seq: r.u32(4, "TCP sequence")?,
                ack: r.u32(8, "TCP acknowledgement")?,
                header_len,
                flags: r.u8(13, "TCP flags")?,
                window: r.u16(14, "TCP window")?,
                checksum: r.u16(16, "TCP checksum")?,
                urg_ptr: r.u16(18, "TCP urgent pointer")?,
                options: header[20..].to_vec(),
                payload: payload[header_len..].to_vec(),
            }))
        }
        IPPROTO_UDP => {
            let len = r.u16(4, "UDP header")?;
            r.bytes(0, 8, "UDP header")?;
            if usize::from(len) != payload.len() {
                return Err(format!(
                    "UDP length {len} but the IP payload is {} bytes",
                    payload.len()
                ));
            }
            let checksum = r.u16(6, "UDP checksum")?;
            if checksum == 0 {
                if v6 {
                    return Err("UDP checksum 0 over IPv6".into());
                }
            } else if !verify_sum(&with_pseudo()) {
                return Err(format!("bad UDP checksum {checksum:#06x}"));
            }
            Ok(L4::Udp(Udp {
                sport: r.u16(0, "UDP source port")?,
                dport: r.u16(2, "UDP destination port")?,
                len,
                checksum,
                payload: payload[8..].to_vec(),
            }))
        }
        IPPROTO_ICMP | IPPROTO_ICMPV6 if (protocol == IPPROTO_ICMPV6) == v6 => {
            r.bytes(0, 8, "ICMP header")?;
            let ok = if v6 {
                verify_sum(&with_pseudo())
            } else {
                verify_sum(payload)
            };
            if !ok {
                return Err(format!(
                    "bad ICMP checksum {:#06x}",
                    r.u16(2, "ICMP checksum")?
                ));
            }
            let mut rest = [0u8; 4];
            rest.copy_from_slice(&payload[4..8]);
            let icmp = Icmp {
                ty: payload[0],
                code: payload[1],
                checksum: r.u16(2, "ICMP checksum")?,
                rest,
                payload: payload[8..].to_vec(),
            };
            Ok(if v6 { L4::Icmpv6(icmp) } else { L4::Icmp(icmp) })
        }
        _ => Ok(L4::Other {
            protocol,
            payload: payload.to_vec(),
        }),
    }
}

fn parse_arp(r: &Reader<'_>, at: usize) -> Result<Arp, String> {
    let htype = r.u16(at, "ARP hardware type")?;
    let ptype = r.u16(at + 2, "ARP protocol type")?;
    let hlen = r.u8(at + 4, "ARP hardware length")?;
    let plen = r.u8(at + 5, "ARP protocol length")?;
    if (htype, ptype, hlen, plen) != (1, ETH_P_IP, 6, 4) {
        return Err(format!(
            "ARP for htype {htype} ptype {ptype:#06x} hlen {hlen} plen {plen}, not Ethernet/IPv4"
        ));
    }
    check_trailing(r, at, 28, "ARP")?;
    Ok(Arp {
        op: r.u16(at + 6, "ARP opcode")?,
        sender_mac: r.mac(at + 8, "ARP sender MAC")?,
        sender_ip: r.ipv4(at + 14, "ARP sender IP")?,
        target_mac: r.mac(at + 18, "ARP target MAC")?,
        target_ip: r.ipv4(at + 24, "ARP target IP")?,
    })
}

/// Parses the IPv4 packet quoted in an ICMP error (header plus at least 8 bytes).
pub fn parse_quoted_ipv4(bytes: &[u8]) -> Result<QuotedIpv4, String> {
    let r = Reader { buf: bytes };
    let vihl = r.u8(0, "quoted IPv4 header")?;
    if vihl >> 4 != 4 {
        return Err(format!("quoted IP version {}", vihl >> 4));
    }
    let ihl = vihl & 0x0f;
    if ihl < 5 {
        return Err(format!("quoted IPv4 IHL {ihl} < 5"));
    }
    let hlen = usize::from(ihl) * 4;
    let header = r.bytes(0, hlen, "quoted IPv4 header")?;
    r.bytes(hlen, 8, "quoted first 8 bytes of the payload")?;
    let protocol = r.u8(9, "quoted protocol")?;
    let has_ports = matches!(protocol, IPPROTO_TCP | IPPROTO_UDP);
    Ok(QuotedIpv4 {
        src: r.ipv4(12, "quoted source")?,
        dst: r.ipv4(16, "quoted destination")?,
        protocol,
        ihl,
        total_len: r.u16(2, "quoted total length")?,
        ttl: r.u8(8, "quoted TTL")?,
        header_checksum_ok: verify_sum(header),
        sport: has_ports
            .then(|| r.u16(hlen, "quoted source port"))
            .transpose()?,
        dport: has_ports
            .then(|| r.u16(hlen + 2, "quoted destination port"))
            .transpose()?,
        seq: (protocol == IPPROTO_TCP)
            .then(|| r.u32(hlen + 4, "quoted sequence"))
            .transpose()?,
        bytes: bytes.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(ones_sum(&data), 0xddf2);
        // Split at odd boundaries gives the same result.
        assert_eq!(checksum(&[&data[..3], &data[3..5], &data[5..]]), !0xddf2);
        // Odd length: the last byte is padded with zero.
        assert_eq!(checksum(&[&[0x12]]), !0x1200);
        assert_eq!(ones_sum(&[0x12]), 0x1200);
    }

    #[test]
    fn parses_what_the_builder_builds_tcp() {
        let f = Frame::tcp(CLIENT, VIP)
            .src_mac([2, 0, 0, 0, 0, 1])
            .dst_mac([2, 0, 0, 0, 0, 2])
            .ports(12345, 443)
            .ack()
            .psh()
            .seq(7)
            .ack_seq(9)
            .window(1000)
            .ttl(17)
            .tos(0x10)
            .ident(0xbeef)
            .ip_options(&[0x94, 0x04, 0, 0]) // router alert
            .tcp_options(&[1, 1, 1]) // padded to 4
            .payload(b"hello")
            .build();
        let p = parse(&f).unwrap();
        assert_eq!(p.src_mac, [2, 0, 0, 0, 0, 1]);
        assert_eq!(p.dst_mac, [2, 0, 0, 0, 0, 2]);
        assert!(p.vlans.is_empty());
        let ip = p.ipv4().unwrap();
        assert_eq!(
            (ip.src, ip.dst, ip.ttl, ip.tos, ip.ident),
            (CLIENT, VIP, 17, 0x10, 0xbeef)
        );
        assert_eq!(ip.ihl, 6);
        assert_eq!(ip.options, vec![0x94, 4, 0, 0]);
        assert!(ip.df && !ip.mf && ip.frag_offset == 0);
        assert_eq!(usize::from(ip.total_len), f.len() - 14);
        let t = p.tcp().unwrap();
        assert_eq!(
            (t.sport, t.dport, t.seq, t.ack, t.window),
            (12345, 443, 7, 9, 1000)
        );
        assert!(t.is_ack() && t.is_psh() && !t.is_syn() && !t.is_rst() && !t.is_fin());
        assert_eq!(t.header_len, 24);
        assert_eq!(t.options, vec![1, 1, 1, 0]);
        assert_eq!(t.payload, b"hello");
    }

    #[test]
    fn parses_udp_vlan_and_flags() {
        let f = Frame::udp(CLIENT, VIP)
            .ports(5353, 53)
            .vlan(42)
            .payload(b"q")
            .build();
        let p = parse(&f).unwrap();
        assert_eq!(p.vlans, vec![42]);
        assert_eq!(p.ethertype, ETH_P_IP);
        let u = p.udp().unwrap();
        assert_eq!((u.sport, u.dport, u.len), (5353, 53, 9));
        assert_eq!(u.payload, b"q");
        assert_ne!(u.checksum, 0);
        for (build, flag) in [
            (Frame::tcp(CLIENT, VIP).syn(), tcp_flags::SYN),
            (Frame::tcp(CLIENT, VIP).fin(), tcp_flags::FIN),
            (Frame::tcp(CLIENT, VIP).rst(), tcp_flags::RST),
            (Frame::tcp(CLIENT, VIP).flags(0xff), 0xff),
        ] {
            assert_eq!(parse(&build.build()).unwrap().tcp().unwrap().flags, flag);
        }
    }

    #[test]
    fn parses_ipv6() {
        let src: Ipv6Addr = "2001:db8::10".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::1:10".parse().unwrap();
        let f = Frame::ipv6_tcp(src, dst).syn().ttl(5).payload(b"x").build();
        let p = parse(&f).unwrap();
        let ip = p.ipv6().unwrap();
        assert_eq!(
            (ip.src, ip.dst, ip.hop_limit, ip.next_header),
            (src, dst, 5, IPPROTO_TCP)
        );
        assert_eq!(usize::from(ip.payload_len), f.len() - 14 - 40);
        assert!(p.tcp().unwrap().is_syn());
        let u = Frame::ipv6_udp(src, dst).payload(b"abc").build();
        assert_eq!(parse(&u).unwrap().udp().unwrap().payload, b"abc");
        let i = Frame::icmpv6(src, dst, 128, 0).payload(b"ping").build();
        let p = parse(&i).unwrap();
        assert!(matches!(p.l4(), Some(L4::Icmpv6(m)) if m.ty == 128));
        let mut bad = i.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(parse(&bad).unwrap_err().contains("ICMP checksum"));
    }

    #[test]
    fn parses_arp() {
        let req = Frame::arp(CLIENT, Ipv4Addr::new(198, 51, 100, 2)).build();
        let p = parse(&req).unwrap();
        assert_eq!(p.dst_mac, BROADCAST_MAC);
        let a = p.arp().unwrap();
        assert_eq!(
            (a.op, a.sender_ip, a.sender_mac),
            (ARP_REQUEST, CLIENT, DOC_SRC_MAC)
        );
        assert_eq!(a.target_mac, [0; 6]);
        let reply = Frame::arp(Ipv4Addr::new(198, 51, 100, 2), CLIENT)
            .arp_reply([2, 0, 0, 0, 0, 9])
            .build();
        let p = parse(&reply).unwrap();
        assert_eq!(p.dst_mac, [2, 0, 0, 0, 0, 9]);
        assert_eq!(p.arp().unwrap().op, ARP_REPLY);
        assert_eq!(p.arp().unwrap().target_mac, [2, 0, 0, 0, 0, 9]);
        // Padded to the Ethernet minimum: accepted.
        let mut padded = req.clone();
        padded.resize(60, 0);
        assert!(parse(&padded).is_ok());
    }

    #[test]
    fn icmp_port_unreachable_quotes_original() {
        let original = Frame::udp(CLIENT, VIP)
            .ports(40001, 53)
            .payload(b"query")
            .build();
        let quote = quote_ipv4(&original, 8).unwrap();
        assert_eq!(quote.len(), 28);
        let reply = Frame::icmp(VIP, CLIENT, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH)
            .payload(&quote)
            .build();
        let p = parse(&reply).unwrap();
        let icmp = p.icmp().unwrap();
        assert_eq!((icmp.ty, icmp.code), (3, 3));
        assert_eq!(icmp.payload, quote);
        let q = icmp.quoted_ipv4().unwrap();
        assert_eq!((q.src, q.dst, q.protocol), (CLIENT, VIP, IPPROTO_UDP));
        assert_eq!((q.sport, q.dport, q.seq), (Some(40001), Some(53), None));
        assert!(q.header_checksum_ok);
        assert_eq!(usize::from(q.total_len), original.len() - 14);

        let syn = Frame::tcp(CLIENT, VIP).syn().seq(99).build();
        let frag_needed = Frame::icmp(VIP, CLIENT, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED)
            .icmp_rest([0, 0, 0x05, 0xdc])
            .payload(&quote_ipv4(&syn, 8).unwrap())
            .build();
        let p = parse(&frag_needed).unwrap();
        assert_eq!(p.icmp().unwrap().next_hop_mtu(), 1500);
        assert_eq!(p.icmp().unwrap().quoted_ipv4().unwrap().seq, Some(99));
        assert!(parse_quoted_ipv4(&quote[..27]).is_err());
    }

    #[test]
    fn fragments_are_not_checked_beyond_ip() {
        let f = Frame::ip(CLIENT, VIP, IPPROTO_TCP)
            .frag(1480, false)
            .ident(7)
            .payload(&[0xaa; 16])
            .build();
        let p = parse(&f).unwrap();
        let ip = p.ipv4().unwrap();
        assert_eq!((ip.frag_offset, ip.mf, ip.df), (1480, false, false));
        assert_eq!(ip.l4, L4::Fragment(vec![0xaa; 16]));
        let first = Frame::tcp(CLIENT, VIP).frag(0, true).build();
        assert!(parse(&first).unwrap().ipv4().unwrap().mf);
    }

    #[test]
    fn rejects_malformed_frames() {
        let good = Frame::tcp(CLIENT, VIP).syn().payload(b"data").build();
        assert!(parse(&good).is_ok());

        let mut f = good.clone();
        mutate::set_ip_checksum(&mut f, 0x1234);
        assert!(parse(&f).unwrap_err().contains("IPv4 header checksum"));

        let mut f = good.clone();
        mutate::corrupt_l4_checksum(&mut f);
        assert!(parse(&f).unwrap_err().contains("TCP checksum"));

        let mut f = good.clone();
        mutate::set_ihl(&mut f, 4);
        mutate::fix_ip_checksum(&mut f);
        assert!(parse(&f).unwrap_err().contains("IHL"));

        let mut f = good.clone();
        mutate::set_ihl(&mut f, 15);
        assert!(parse(&f).is_err());

        let mut f = good.clone();
        mutate::set_total_len(&mut f, 1000);
        mutate::fix_ip_checksum(&mut f);
        assert!(parse(&f).unwrap_err().contains("total length"));

        let mut f = good.clone();
        mutate::set_total_len(&mut f, 40);
        mutate::fix_ip_checksum(&mut f);
        assert!(parse(&f).unwrap_err().contains("trailing"));

        let mut f = good.clone();
        mutate::set_version(&mut f, 6);
        assert!(parse(&f).unwrap_err().contains("version"));

        let mut f = good.clone();
        mutate::truncate(&mut f, 30);
        assert!(parse(&f).is_err());
        assert!(parse(&good[..10]).is_err());

        let mut f = good.clone();
        f.push(0);
        assert!(parse(&f).unwrap_err().contains("trailing"));

        // Bad TCP data offset (4 words), checksum otherwise right.
        let mut f = Frame::tcp(CLIENT, VIP).build();
        f[14 + 20 + 12] = 4 << 4;
        assert!(parse(&f).unwrap_err().contains("data offset"));

        // UDP length disagreeing with the IP length.
        let mut f = Frame::udp(CLIENT, VIP).payload(b"abcd").build();
        f[14 + 20 + 5] = 11;
        assert!(parse(&f).unwrap_err().contains("UDP length"));
        let mut f = Frame::udp(CLIENT, VIP).payload(b"abcd").build();
        mutate::corrupt_l4_checksum(&mut f);
        assert!(parse(&f).unwrap_err().contains("UDP checksum"));
        // UDP checksum 0 (none) is legal over IPv4.
        let mut f = Frame::udp(CLIENT, VIP).payload(b"abcd").build();
        f[14 + 20 + 6] = 0;
        f[14 + 20 + 7] = 0;
        assert_eq!(parse(&f).unwrap().udp().unwrap().checksum, 0);

        let mut f = Frame::icmp(VIP, CLIENT, ICMP_ECHO_REPLY, 0)
            .icmp_rest([0, 1, 0, 2])
            .build();
        assert_eq!(parse(&f).unwrap().icmp().unwrap().rest, [0, 1, 0, 2]);
        mutate::corrupt_l4_checksum(&mut f);
        assert!(parse(&f).unwrap_err().contains("ICMP checksum"));
    }

    #[test]
    fn mutations_respect_vlan_tags() {
        let mut f = Frame::tcp(CLIENT, VIP).vlan(7).build();
        assert_eq!(mutate::l3_offset(&f), Some(18));
        mutate::set_ihl(&mut f, 4);
        assert_eq!(f[18], 0x44);
        assert_eq!(mutate::l3_offset(&[0u8; 5]), None);
        // Mutations on short frames do nothing instead of panicking.
        let mut short = vec![0u8; 13];
        mutate::set_total_len(&mut short, 1);
        mutate::fix_ip_checksum(&mut short);
        mutate::corrupt_l4_checksum(&mut short);
        assert_eq!(short, vec![0u8; 13]);
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
