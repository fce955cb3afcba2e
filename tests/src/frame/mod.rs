//! Ethernet frames for `BPF_PROG_TEST_RUN` fixtures, in three parts:
//!
//! - [`builder`]: the frame builder ([`Frame`]) for the frames a test sends;
//! - [`mutator`] (also as [`mutate`]): raw changes to a built frame for the malformed cases;
//! - [`parser`]: a strict parser ([`parse`]) that checks the frames the program outputs
//!   (ICMP errors, TCP resets, forwarded frames): lengths, checksums, field values.
//!
//! The parser shares no code with the builder: it decodes and computes checksums with the
//! `etherparse` crate, so a bug in the builder is not hidden by the same bug in the checker.
//!
//! ```
//! use lb_tests::frame::{Frame, parse};
//! use std::net::Ipv4Addr;
//! let syn = Frame::tcp(Ipv4Addr::new(198, 51, 100, 10), Ipv4Addr::new(203, 0, 113, 10))
//!     .sport(40000).dport(80).syn().seq(1).build();
//! let p = parse(&syn).unwrap();
//! assert!(p.tcp().unwrap().is_syn());
//! ```

pub mod builder;
pub mod mutator;
pub mod parser;

pub use builder::{Frame, checksum, quote_ipv4};
/// The mutations under their short name, as the fixtures call them (`mutate::set_ihl`).
pub use mutator as mutate;
pub use parser::{
    Arp, Icmp, Ipv4, Ipv6, L3, L4, Parsed, QuotedIpv4, Tcp, Udp, parse, parse_quoted_ipv4,
};

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
