//! The independent parser that checks what the XDP program builds (ICMP port unreachable,
//! TCP RST) and forwards: [`parse`] decodes a frame with the `etherparse` crate and verifies
//! its lengths and checksums (IPv4 header, TCP, UDP, ICMP, ICMPv6, each computed by
//! etherparse), so the check shares no code with our [`Frame`](super::Frame) builder.
//!
//! It is stricter than etherparse alone: trailing bytes after the IP packet (other than the
//! padding of a frame to the Ethernet minimum), a UDP length that disagrees with the IP
//! length and the IPv4 reserved flag are errors too. Errors are human-readable strings
//! naming the failing field.

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{
    ArpPacketSlice, Ethernet2HeaderSlice, Icmpv4Slice, Icmpv6Slice, Ipv4HeaderSlice,
    Ipv6HeaderSlice, SingleVlanHeaderSlice, TcpSlice, UdpHeaderSlice, err,
};

use super::{
    ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, IPPROTO_ICMP, IPPROTO_ICMPV6,
    IPPROTO_TCP, IPPROTO_UDP, tcp_flags,
};

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
    /// Opcode ([`ARP_REQUEST`](super::ARP_REQUEST), [`ARP_REPLY`](super::ARP_REPLY)).
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

/// The source and destination of the IP packet around an L4 message, for the pseudo-header
/// of its checksum.
#[derive(Clone, Copy)]
enum Pseudo {
    V4([u8; 4], [u8; 4]),
    V6([u8; 16], [u8; 16]),
}

/// Whether a checksum field holds the checksum etherparse computed. In one's complement
/// 0x0000 and 0xffff are the same number (an incremental update may leave either), so
/// they are taken as equal, as a receiver's check (the sum of all words is all ones) does.
fn same_sum(stored: u16, computed: u16) -> bool {
    stored == computed || matches!((stored, computed), (0, 0xffff) | (0xffff, 0))
}

/// A length error as "what: needs N bytes, has M".
fn len_error(what: &str, e: &err::LenError) -> String {
    format!("{what}: needs {} bytes, has {}", e.required_len, e.len)
}

/// Parses and verifies an Ethernet frame.
///
/// Rejects: short frames and headers, more than two VLAN tags, IPv4 version/IHL/total
/// length inconsistencies, trailing bytes after the IP packet (except padding of a frame
/// to the 60-byte Ethernet minimum), bad IPv4 header checksums, the IPv4 reserved flag, TCP
/// data offsets out of range, UDP length fields that disagree with the IP length, UDP
/// checksum 0 over IPv6, and bad TCP/UDP/ICMP/ICMPv6 checksums.
pub fn parse(frame: &[u8]) -> Result<Parsed, String> {
    let eth =
        Ethernet2HeaderSlice::from_slice(frame).map_err(|e| len_error("ethernet header", &e))?;
    let mut off = eth.slice().len();
    let mut ethertype = eth.ether_type().0;
    let mut vlans = Vec::new();
    while ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
        if vlans.len() == 2 {
            return Err("more than two VLAN tags".into());
        }
        let tag = SingleVlanHeaderSlice::from_slice(&frame[off..])
            .map_err(|e| len_error("VLAN tag", &e))?;
        vlans.push(tag.vlan_identifier().value());
        ethertype = tag.ether_type().0;
        off += tag.slice().len();
    }
    let l3 = match ethertype {
        ETH_P_IP => L3::Ipv4(parse_ipv4(frame, off)?),
        ETH_P_IPV6 => L3::Ipv6(parse_ipv6(frame, off)?),
        ETH_P_ARP => L3::Arp(parse_arp(frame, off)?),
        _ => L3::Other(frame[off..].to_vec()),
    };
    Ok(Parsed {
        dst_mac: eth.destination(),
        src_mac: eth.source(),
        vlans,
        ethertype,
        l3,
    })
}

/// Checks that an L3 packet of `len` bytes at `at` fills the frame (up to Ethernet padding).
fn check_trailing(frame: &[u8], at: usize, len: usize, what: &str) -> Result<(), String> {
    let end = at + len;
    if end > frame.len() {
        return Err(format!(
            "{what} says {len} bytes but the frame holds {} after the ethernet header",
            frame.len() - at
        ));
    }
    if end < frame.len() && frame.len() != ETH_ZLEN {
        return Err(format!(
            "{} trailing bytes after the {what} packet",
            frame.len() - end
        ));
    }
    Ok(())
}

/// The IPv4 header at the start of `bytes`, its errors named for `what`.
fn ipv4_header<'a>(bytes: &'a [u8], what: &str) -> Result<Ipv4HeaderSlice<'a>, String> {
    use err::ipv4::{HeaderError, HeaderSliceError};
    Ipv4HeaderSlice::from_slice(bytes).map_err(|e| match e {
        HeaderSliceError::Len(l) => len_error(&format!("{what} header"), &l),
        HeaderSliceError::Content(HeaderError::UnexpectedVersion { version_number }) => {
            format!("{what}: IP version {version_number}, not 4")
        }
        HeaderSliceError::Content(HeaderError::HeaderLengthSmallerThanHeader { ihl }) => {
            format!("{what} IHL {ihl} < 5")
        }
    })
}

/// Whether the header checksum of `h` is the one etherparse computes for its fields.
fn ipv4_checksum_ok(h: &Ipv4HeaderSlice<'_>) -> bool {
    same_sum(h.header_checksum(), h.to_header().calc_header_checksum())
}

fn parse_ipv4(frame: &[u8], at: usize) -> Result<Ipv4, String> {
    let h = ipv4_header(&frame[at..], "IPv4")?;
    let hlen = h.slice().len();
    let total_len = h.total_len();
    if usize::from(total_len) < hlen {
        return Err(format!(
            "IPv4 total length {total_len} < header length {hlen}"
        ));
    }
    check_trailing(frame, at, usize::from(total_len), "IPv4 total length")?;
    if !ipv4_checksum_ok(&h) {
        return Err(format!(
            "bad IPv4 header checksum {:#06x} (computed {:#06x})",
            h.header_checksum(),
            h.to_header().calc_header_checksum()
        ));
    }
    // etherparse does not decode the reserved ("evil") bit: byte 6, bit 7.
    if h.slice()[6] & 0x80 != 0 {
        return Err("IPv4 reserved flag set".into());
    }
    let frag_offset = h.fragments_offset().value() * 8;
    let payload = &frame[at + hlen..at + usize::from(total_len)];
    let l4 = if h.is_fragmenting_payload() {
        L4::Fragment(payload.to_vec())
    } else {
        parse_l4(
            h.protocol().0,
            payload,
            Pseudo::V4(h.source(), h.destination()),
        )?
    };
    Ok(Ipv4 {
        src: h.source_addr(),
        dst: h.destination_addr(),
        ihl: h.ihl(),
        tos: (h.dcp().value() << 2) | h.ecn().value(),
        total_len,
        ident: h.identification(),
        df: h.dont_fragment(),
        mf: h.more_fragments(),
        frag_offset,
        ttl: h.ttl(),
        protocol: h.protocol().0,
        checksum: h.header_checksum(),
        options: h.options().to_vec(),
        l4,
    })
}

fn parse_ipv6(frame: &[u8], at: usize) -> Result<Ipv6, String> {
    use err::ipv6::{HeaderError, HeaderSliceError};
    let h = Ipv6HeaderSlice::from_slice(&frame[at..]).map_err(|e| match e {
        HeaderSliceError::Len(l) => len_error("IPv6 header", &l),
        HeaderSliceError::Content(HeaderError::UnexpectedVersion { version_number }) => {
            format!("IP version {version_number} in an IPv6 ethertype")
        }
    })?;
    let hlen = h.slice().len();
    let payload_len = h.payload_length();
    check_trailing(
        frame,
        at,
        hlen + usize::from(payload_len),
        "IPv6 payload length",
    )?;
    let payload = &frame[at + hlen..at + hlen + usize::from(payload_len)];
    Ok(Ipv6 {
        src: h.source_addr(),
        dst: h.destination_addr(),
        traffic_class: h.traffic_class(),
        flow_label: h.flow_label().value(),
        payload_len,
        next_header: h.next_header().0,
        hop_limit: h.hop_limit(),
        l4: parse_l4(
            h.next_header().0,
            payload,
            Pseudo::V6(h.source(), h.destination()),
        )?,
    })
}

fn parse_l4(protocol: u8, payload: &[u8], pseudo: Pseudo) -> Result<L4, String> {
    let v6 = matches!(pseudo, Pseudo::V6(..));
    match protocol {
        IPPROTO_TCP => parse_tcp(payload, pseudo).map(L4::Tcp),
        IPPROTO_UDP => parse_udp(payload, pseudo).map(L4::Udp),
        IPPROTO_ICMP if !v6 => {
            let m = Icmpv4Slice::from_slice(payload).map_err(|e| len_error("ICMP header", &e))?;
            let computed = m.icmp_type().calc_checksum(m.payload());
            if !same_sum(m.checksum(), computed) {
                return Err(format!(
                    "bad ICMP checksum {:#06x} (computed {computed:#06x})",
                    m.checksum()
                ));
            }
            Ok(L4::Icmp(Icmp {
                ty: m.type_u8(),
                code: m.code_u8(),
                checksum: m.checksum(),
                rest: m.bytes5to8(),
                payload: m.slice()[8..].to_vec(),
            }))
        }
        IPPROTO_ICMPV6 => match pseudo {
            Pseudo::V6(src, dst) => {
                let m =
                    Icmpv6Slice::from_slice(payload).map_err(|e| len_error("ICMP header", &e))?;
                if !m.is_checksum_valid(src, dst) {
                    return Err(format!("bad ICMP checksum {:#06x}", m.checksum()));
                }
                Ok(L4::Icmpv6(Icmp {
                    ty: m.type_u8(),
                    code: m.code_u8(),
                    checksum: m.checksum(),
                    rest: m.bytes5to8(),
                    payload: m.slice()[8..].to_vec(),
                }))
            }
            Pseudo::V4(..) => Ok(L4::Other {
                protocol,
                payload: payload.to_vec(),
            }),
        },
        _ => Ok(L4::Other {
            protocol,
            payload: payload.to_vec(),
        }),
    }
}

fn parse_tcp(payload: &[u8], pseudo: Pseudo) -> Result<Tcp, String> {
    use err::tcp::{HeaderError, HeaderSliceError};
    let t = TcpSlice::from_slice(payload).map_err(|e| match e {
        HeaderSliceError::Len(l) => len_error("TCP header", &l),
        HeaderSliceError::Content(HeaderError::DataOffsetTooSmall { data_offset }) => {
            format!("TCP data offset {data_offset} < 5")
        }
    })?;
    let computed = match pseudo {
        Pseudo::V4(src, dst) => t.calc_checksum_ipv4(src, dst),
        Pseudo::V6(src, dst) => t.calc_checksum_ipv6(src, dst),
    }
    .map_err(|e| format!("TCP segment: {e}"))?;
    if !same_sum(t.checksum(), computed) {
        return Err(format!(
            "bad TCP checksum {:#06x} (computed {computed:#06x})",
            t.checksum()
        ));
    }
    let flags = [
        (t.fin(), tcp_flags::FIN),
        (t.syn(), tcp_flags::SYN),
        (t.rst(), tcp_flags::RST),
        (t.psh(), tcp_flags::PSH),
        (t.ack(), tcp_flags::ACK),
        (t.urg(), tcp_flags::URG),
        (t.ece(), tcp_flags::ECE),
        (t.cwr(), tcp_flags::CWR),
    ]
    .into_iter()
    .filter(|(set, _)| *set)
    .fold(0, |acc, (_, bit)| acc | bit);
    Ok(Tcp {
        sport: t.source_port(),
        dport: t.destination_port(),
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        header_len: t.header_slice().len(),
        flags,
        window: t.window_size(),
        checksum: t.checksum(),
        urg_ptr: t.urgent_pointer(),
        options: t.options().to_vec(),
        payload: t.payload().to_vec(),
    })
}

fn parse_udp(payload: &[u8], pseudo: Pseudo) -> Result<Udp, String> {
    let u = UdpHeaderSlice::from_slice(payload).map_err(|e| len_error("UDP header", &e))?;
    let len = u.length();
    if usize::from(len) != payload.len() {
        return Err(format!(
            "UDP length {len} but the IP payload is {} bytes",
            payload.len()
        ));
    }
    let data = &payload[u.slice().len()..];
    let checksum = u.checksum();
    if checksum == 0 {
        // RFC 768: no checksum; RFC 8200 §8.1: not allowed over IPv6.
        if matches!(pseudo, Pseudo::V6(..)) {
            return Err("UDP checksum 0 over IPv6".into());
        }
    } else {
        let h = u.to_header();
        let computed = match pseudo {
            Pseudo::V4(src, dst) => h.calc_checksum_ipv4_raw(src, dst, data),
            Pseudo::V6(src, dst) => h.calc_checksum_ipv6_raw(src, dst, data),
        }
        .map_err(|e| format!("UDP datagram: {e}"))?;
        if !same_sum(checksum, computed) {
            return Err(format!(
                "bad UDP checksum {checksum:#06x} (computed {computed:#06x})"
            ));
        }
    }
    Ok(Udp {
        sport: u.source_port(),
        dport: u.destination_port(),
        len,
        checksum,
        payload: data.to_vec(),
    })
}

fn parse_arp(frame: &[u8], at: usize) -> Result<Arp, String> {
    let a = ArpPacketSlice::from_slice(&frame[at..]).map_err(|e| len_error("ARP", &e))?;
    let (htype, ptype) = (a.hw_addr_type().0, a.proto_addr_type().0);
    let (hlen, plen) = (a.hw_addr_size(), a.proto_addr_size());
    if (htype, ptype, hlen, plen) != (1, ETH_P_IP, 6, 4) {
        return Err(format!(
            "ARP for htype {htype} ptype {ptype:#06x} hlen {hlen} plen {plen}, not Ethernet/IPv4"
        ));
    }
    check_trailing(frame, at, a.slice().len(), "ARP")?;
    let mac = |b: &[u8]| <[u8; 6]>::try_from(b).expect("hlen checked: 6");
    let ip = |b: &[u8]| Ipv4Addr::from(<[u8; 4]>::try_from(b).expect("plen checked: 4"));
    Ok(Arp {
        op: a.operation().0,
        sender_mac: mac(a.sender_hw_addr()),
        sender_ip: ip(a.sender_protocol_addr()),
        target_mac: mac(a.target_hw_addr()),
        target_ip: ip(a.target_protocol_addr()),
    })
}

/// Parses the IPv4 packet quoted in an ICMP error (header plus at least 8 bytes). Its
/// header checksum is reported, not required; its L4 part is cut, so only the first 8
/// bytes are decoded: the ports of TCP and UDP, and the TCP sequence number.
pub fn parse_quoted_ipv4(bytes: &[u8]) -> Result<QuotedIpv4, String> {
    let h = ipv4_header(bytes, "quoted IPv4")?;
    let hlen = h.slice().len();
    let l4: [u8; 8] = bytes
        .get(hlen..hlen + 8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            format!(
                "quoted first 8 bytes of the payload: needs {} bytes, has {}",
                hlen + 8,
                bytes.len()
            )
        })?;
    let protocol = h.protocol().0;
    let has_ports = matches!(protocol, IPPROTO_TCP | IPPROTO_UDP);
    Ok(QuotedIpv4 {
        src: h.source_addr(),
        dst: h.destination_addr(),
        protocol,
        ihl: h.ihl(),
        total_len: h.total_len(),
        ttl: h.ttl(),
        header_checksum_ok: ipv4_checksum_ok(&h),
        sport: has_ports.then(|| u16::from_be_bytes([l4[0], l4[1]])),
        dport: has_ports.then(|| u16::from_be_bytes([l4[2], l4[3]])),
        seq: (protocol == IPPROTO_TCP).then(|| u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]])),
        bytes: bytes.to_vec(),
    })
}

#[cfg(test)]
mod tests;
