//! The real servers' decapsulator (docs/SEMANTICS.md §20): the maps of the
//! second BPF object, `lb-decap` (lb-ebpf's `src/decap/`), which `lbctl
//! decap attach` puts on a real server's interface. It strips the outer
//! headers of the packets the director tunnels (`-i`: IPIP, GUE, GRE) and
//! hands the inner packet to the stack, as the kernel's `tunl0`, `fou` and
//! `gre0` would. A real server gets only these small maps, never the load
//! balancer's.
//!
//! Its maps are pinned in their own folder, `decap` inside the load
//! balancer's pin directory (`$LB_PIN_PATH/decap`).

use bytemuck::{Pod, Zeroable};

use crate::Addr;

/// Bumped whenever a decapsulator map type changes size or meaning; stored
/// in every `DecapIface` entry, which lbctl checks.
pub const DECAP_LAYOUT_VERSION: u32 = 3;

/// Name of the XDP program in the decapsulator's object.
pub const DECAP_PROGRAM_NAME: &str = "lb_decap";
/// The pin folder's name inside the load balancer's pin directory.
pub const DECAP_PIN_SUBDIR: &str = "decap";

pub const MAP_DECAP_IFACES: &str = "DECAP_IFACES";
pub const MAP_DECAP_LOCAL: &str = "DECAP_LOCAL";
pub const MAP_DECAP_VIPS: &str = "DECAP_VIPS";
pub const MAP_DECAP_STATS: &str = "DECAP_STATS";
/// Every map of the decapsulator, in a fixed order.
pub const DECAP_MAP_NAMES: [&str; 4] = [
    MAP_DECAP_IFACES,
    MAP_DECAP_LOCAL,
    MAP_DECAP_VIPS,
    MAP_DECAP_STATS,
];

/// Interfaces the decapsulator may be attached to at once.
pub const MAX_DECAP_IFACES: u32 = 256;
/// Local address prefixes (`DECAP_LOCAL`): the host's local routing table.
pub const MAX_DECAP_LOCAL: u32 = 16384;
/// `--vip` addresses of all interfaces together.
pub const MAX_DECAP_VIPS: u32 = 4096;

/// The GUE port of `lbctl decap attach` without `--gue-port` (the port of
/// the kernel's `ip fou add port 6080 gue` examples).
pub const DEFAULT_GUE_PORT: u16 = 6080;

/// `DecapIface::flags`: the inner destination must be one of this
/// interface's `--vip` addresses (`DECAP_VIPS`) instead of any local one.
pub const DECAP_F_VIPS: u32 = 1 << 0;

/// Value of `DECAP_IFACES` (key: the interface's ifindex): the settings
/// `lbctl decap attach` gave the interface.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct DecapIface {
    /// The network namespace the interface is in (the inode number of its
    /// `/proc/PID/ns/net`): the folder belongs to one namespace, whose
    /// ifindexes and addresses it holds, and lbctl refuses it from another.
    pub netns: u64,
    /// `DECAP_LAYOUT_VERSION` of the lbctl that wrote it.
    pub layout: u32,
    /// `DECAP_F_*`.
    pub flags: u32,
    /// The GUE UDP port, network order (never 0).
    pub gue_port: [u8; 2],
    /// `DECAP_MODE_*`: how the program was attached to the interface.
    pub mode: u8,
    pub _pad: u8,
    /// How many `--vip` addresses (for `lbctl decap status`).
    pub vips: u32,
}
const _: () = assert!(size_of::<DecapIface>() == 24);

/// `DecapIface::mode`: attached in the driver (`--mode native`).
pub const DECAP_MODE_NATIVE: u8 = 1;
/// `DecapIface::mode`: attached in the generic path (`--mode generic`).
pub const DECAP_MODE_GENERIC: u8 = 2;

/// `DecapPrefix::family` and `DecapVipKey::family`: an IPv4 address.
pub const DECAP_FAMILY_V4: u32 = 4;
/// `DecapPrefix::family` and `DecapVipKey::family`: an IPv6 address.
pub const DECAP_FAMILY_V6: u32 = 6;
/// The prefix length of a `DecapPrefix` for one whole address: the family
/// word (32 bits) and the 128 address bits.
pub const DECAP_PREFIX_BITS: u32 = 32 + 128;

/// Key of `DECAP_LOCAL` (an LPM trie, prefix length first): the family
/// (`DECAP_FAMILY_*`, always wholly inside the prefix) and an
/// address prefix; an IPv4 `/p` is the IPv4-mapped address under
/// `/(32 + 96 + p)`, an IPv6 `/p` is `/(32 + p)`. The family keeps the two
/// apart: an IPv6 address `::ffff:a.b.c.d` never matches IPv4 `a.b.c.d`'s
/// prefixes, nor an IPv4 address an IPv6 prefix such as `::/0`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct DecapPrefix {
    pub family: u32,
    pub addr: Addr,
}
const _: () = assert!(size_of::<DecapPrefix>() == 20);

/// Key of `DECAP_VIPS`: one `--vip` address (of family `DECAP_FAMILY_*`)
/// of one interface (value: a `u32`, 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct DecapVipKey {
    pub ifindex: u32,
    pub family: u32,
    pub addr: Addr,
}
const _: () = assert!(size_of::<DecapVipKey>() == 24);

// Outcomes of the decapsulator (`DECAP_STATS`, per CPU, indexed by these;
// values are lb-common's `Counters`). Append only.
/// An IPIP packet (IPv4 or IPv6 inside, protocol 4 or 41) over IPv4,
/// decapsulated.
pub const DECAP_REASON_IPIP_V4: u32 = 0;
/// An IPIP packet (next header 4 or 41) over IPv6, decapsulated.
pub const DECAP_REASON_IPIP_V6: u32 = 1;
/// A GUE packet over IPv4, decapsulated.
pub const DECAP_REASON_GUE_V4: u32 = 2;
/// A GUE packet over IPv6, decapsulated.
pub const DECAP_REASON_GUE_V6: u32 = 3;
/// A GRE packet over IPv4, decapsulated.
pub const DECAP_REASON_GRE_V4: u32 = 4;
/// A GRE packet over IPv6, decapsulated.
pub const DECAP_REASON_GRE_V6: u32 = 5;
/// Not IPv4 or IPv6 (after at most one VLAN tag).
pub const DECAP_REASON_PASS_NOT_IP: u32 = 6;
/// IP, but not an encapsulation we strip: another protocol, UDP to
/// another port than the GUE port.
pub const DECAP_REASON_PASS_NOT_TUNNEL: u32 = 7;
/// The outer destination is not one of this host's addresses.
pub const DECAP_REASON_PASS_NOT_LOCAL: u32 = 8;
/// An outer fragment (IPv4 MF or offset, IPv6 fragment header): cannot
/// be reassembled in XDP.
pub const DECAP_REASON_PASS_FRAGMENT: u32 = 9;
/// A malformed or truncated outer header (IPv4 header checksum, lengths).
pub const DECAP_REASON_PASS_BAD_OUTER: u32 = 10;
/// An outer IPv6 header followed by extension headers.
pub const DECAP_REASON_PASS_EXT_HEADERS: u32 = 11;
/// GRE with a version other than 0, key, sequence or routing, or a
/// protocol other than IPv4/IPv6.
pub const DECAP_REASON_PASS_GRE_UNSUPPORTED: u32 = 12;
/// GUE control messages, flags or options, another version, or an inner
/// protocol other than IPv4/IPv6.
pub const DECAP_REASON_PASS_GUE_UNSUPPORTED: u32 = 13;
/// The inner header is truncated or not of the family the outer says.
pub const DECAP_REASON_PASS_BAD_INNER: u32 = 14;
/// The inner destination is not local (or not one of the `--vip`s).
pub const DECAP_REASON_PASS_INNER_NOT_LOCAL: u32 = 15;
/// The interface has no settings (`DECAP_IFACES`).
pub const DECAP_REASON_PASS_NOT_CONFIGURED: u32 = 16;
/// Outer CE with an inner packet that is not ECN-capable: dropped, as
/// the kernel's `INET_ECN_decapsulate` says.
pub const DECAP_REASON_DROP_ECN: u32 = 17;
/// `bpf_xdp_adjust_head` refused (cannot happen for a valid packet).
pub const DECAP_REASON_DROP_INTERNAL: u32 = 18;
/// A martian outer packet the kernel drops on a real interface
/// (`ip_route_input_slow`, `ip6_rcv_core`): a loopback destination
/// (127.0.0.0/8, `::1`), or a source that is a zero-network, loopback,
/// multicast or limited-broadcast address (IPv6: `::1`, multicast, `::`).
pub const DECAP_REASON_PASS_MARTIAN: u32 = 19;
/// An outer IPv4 header with options (the director never sends them).
pub const DECAP_REASON_PASS_IP_OPTIONS: u32 = 20;
pub const DECAP_REASON_COUNT: u32 = 21;
/// Names for `lbctl decap status`.
pub const DECAP_REASON_NAMES: [&str; DECAP_REASON_COUNT as usize] = [
    "decap_ipip_v4",
    "decap_ipip_v6",
    "decap_gue_v4",
    "decap_gue_v6",
    "decap_gre_v4",
    "decap_gre_v6",
    "pass_not_ip",
    "pass_not_tunnel",
    "pass_not_local",
    "pass_fragment",
    "pass_bad_outer",
    "pass_ext_headers",
    "pass_gre_unsupported",
    "pass_gue_unsupported",
    "pass_bad_inner",
    "pass_inner_not_local",
    "pass_not_configured",
    "drop_ecn",
    "drop_internal",
    "pass_martian",
    "pass_ip_options",
];

#[cfg(feature = "user")]
mod user {
    use super::*;
    // Sound: bytemuck::Pod above proves these have no padding and accept any
    // bit pattern.
    unsafe impl aya::Pod for DecapIface {}
    unsafe impl aya::Pod for DecapPrefix {}
    unsafe impl aya::Pod for DecapVipKey {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decap_map_names_fit_the_kernel() {
        for n in DECAP_MAP_NAMES {
            assert!(n.len() <= 15, "{n}");
        }
        assert_eq!(DECAP_REASON_NAMES.len(), DECAP_REASON_COUNT as usize);
    }
}
