//! The decapsulator's pure rules (docs/SEMANTICS.md §20), shared by its
//! program (`src/decap/`) and tested on the host: which GRE and GUE headers
//! it strips and what follows them, and the kernel's ECN rule on
//! decapsulation (`__INET_ECN_decapsulate`, include/net/inet_ecn.h).

/// What follows a tunnel header: `skip` more bytes of tunnel header, then
/// an IPv6 (`v6`) or IPv4 packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inner {
    pub skip: u32,
    pub v6: bool,
}

/// `IPPROTO_IPIP`: IPv4 inside (IPIP's protocol, GUE's `proto_ctype`).
pub const IPPROTO_IPIP: u8 = 4;
/// `IPPROTO_IPV6`: IPv6 inside.
pub const IPPROTO_IPV6: u8 = 41;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_GRE: u8 = 47;
pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;

/// GRE's checksum-present bit (`GRE_CSUM`).
const GRE_CSUM: u16 = 0x8000;

/// A GRE header's first two 16-bit words (host order): what IPVS's
/// `ipvs_gre_encap` writes and the kernel's `gre_parse_header` takes, i.e.
/// version 0 with no flags or only the checksum bit (4 or 8 bytes of
/// header), carrying IPv4 or IPv6. Keys, sequence numbers, routing and other
/// versions: `None` (left to the kernel). The checksum is not verified
/// (docs/SEMANTICS.md §20).
#[inline(always)]
pub const fn gre(flags_version: u16, proto: u16) -> Option<Inner> {
    if flags_version & !GRE_CSUM != 0 {
        return None;
    }
    let skip = if flags_version & GRE_CSUM != 0 { 8 } else { 4 };
    match proto {
        ETH_P_IP => Some(Inner { skip, v6: false }),
        ETH_P_IPV6 => Some(Inner { skip, v6: true }),
        _ => None,
    }
}

/// A GUE header's first four bytes (`struct guehdr`, include/net/gue.h:
/// `version:2 control:1 hlen:5`, `proto_ctype`, `flags`). Version 0: no
/// control message, no flags (IPVS's `ipvs_gue_encap` sets none for
/// forwarded packets), `proto_ctype` 4 or 41; the header and its `hlen`
/// words of options are skipped. Version 1 ("direct", as `gue_udp_recv`
/// and Katran): the IP packet starts at once, its family by its first
/// nibble. Anything else: `None`.
#[inline(always)]
pub const fn gue(b0: u8, proto_ctype: u8, flags: u16) -> Option<Inner> {
    match b0 >> 6 {
        0 => {
            if b0 & 0x20 != 0 || flags != 0 {
                return None;
            }
            let skip = 4 + (b0 as u32 & 0x1f) * 4;
            match proto_ctype {
                IPPROTO_IPIP => Some(Inner { skip, v6: false }),
                IPPROTO_IPV6 => Some(Inner { skip, v6: true }),
                _ => None,
            }
        }
        1 => match b0 >> 4 {
            4 => Some(Inner { skip: 0, v6: false }),
            6 => Some(Inner { skip: 0, v6: true }),
            _ => None,
        },
        _ => None,
    }
}

/// What happens to the inner packet's ECN field on decapsulation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ecn {
    /// Unchanged.
    Keep,
    /// Set to CE (congestion experienced on the outer path).
    SetCe,
    /// Dropped: the outer packet was marked CE but the inner one is not
    /// ECN-capable, so the mark cannot be passed on.
    Drop,
}

const ECN_NOT_ECT: u8 = 0;
const ECN_CE: u8 = 3;

/// The kernel's `__INET_ECN_decapsulate(outer, inner)` on the two ECN
/// fields (the low two bits of the TOS / traffic class): inner not-ECT
/// and outer CE: drop; outer CE and inner ECT(0), ECT(1) or CE: inner CE;
/// otherwise unchanged (an outer ECT over a not-ECT inner is only logged
/// by the kernel).
#[inline(always)]
pub const fn ecn_decapsulate(outer: u8, inner: u8) -> Ecn {
    let outer = outer & 3;
    let inner = inner & 3;
    if outer != ECN_CE || inner == ECN_CE {
        return Ecn::Keep;
    }
    if inner == ECN_NOT_ECT {
        return Ecn::Drop;
    }
    Ecn::SetCe
}

/// An IPv4 header's TOS set to CE, and its checksum updated for the change
/// of the 16-bit word `version/ihl, tos` (RFC 1624, as the kernel's
/// `IP_ECN_set_ce`): the new (tos, checksum).
#[inline(always)]
pub const fn ipv4_set_ce(vihl: u8, tos: u8, check: u16) -> (u8, u16) {
    let new_tos = tos | ECN_CE;
    let old = ((vihl as u32) << 8) | tos as u32;
    let new = ((vihl as u32) << 8) | new_tos as u32;
    // HC' = ~(~HC + ~m + m')
    let mut sum = (!check as u32 & 0xffff) + (!old & 0xffff) + new;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    (new_tos, !(sum as u16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csum::{add_bytes, fold};

    #[test]
    fn gre_takes_version_0_with_at_most_the_checksum_bit() {
        assert_eq!(gre(0, ETH_P_IP), Some(Inner { skip: 4, v6: false }));
        assert_eq!(gre(0x8000, ETH_P_IPV6), Some(Inner { skip: 8, v6: true }));
        // Key, sequence, routing, strict source route, recursion, version 1.
        for fv in [0x2000, 0x1000, 0x4000, 0x0800, 0x0100, 0x0001, 0xa000] {
            assert_eq!(gre(fv, ETH_P_IP), None, "{fv:#x}");
        }
        assert_eq!(gre(0, 0x6558), None); // transparent Ethernet bridging
    }

    #[test]
    fn gue_version_0_needs_no_control_and_no_flags() {
        assert_eq!(gue(0x00, 4, 0), Some(Inner { skip: 4, v6: false }));
        assert_eq!(gue(0x00, 41, 0), Some(Inner { skip: 4, v6: true }));
        assert_eq!(
            gue(0x02, 4, 0),
            Some(Inner {
                skip: 12,
                v6: false
            })
        );
        assert_eq!(gue(0x20, 4, 0), None); // control message
        assert_eq!(gue(0x00, 4, 0x0001), None); // GUE_FLAG_PRIV (remote checksum offload)
        assert_eq!(gue(0x00, 17, 0), None);
        // Version 1: the IP header at once.
        assert_eq!(gue(0x45, 0, 0), Some(Inner { skip: 0, v6: false }));
        assert_eq!(gue(0x60, 0, 0), Some(Inner { skip: 0, v6: true }));
        assert_eq!(gue(0x55, 0, 0), None);
        assert_eq!(gue(0x80, 4, 0), None); // version 2
    }

    #[test]
    fn ecn_follows_inet_ecn_decapsulate() {
        // (outer, inner) -> result, every combination.
        for outer in 0..4u8 {
            for inner in 0..4u8 {
                let want = match (outer, inner) {
                    (3, 0) => Ecn::Drop,
                    (3, 1 | 2) => Ecn::SetCe,
                    _ => Ecn::Keep,
                };
                assert_eq!(ecn_decapsulate(outer, inner), want, "{outer} {inner}");
            }
        }
        // Only the ECN bits count.
        assert_eq!(ecn_decapsulate(0xb8 | 3, 0xb8 | 2), Ecn::SetCe);
    }

    #[test]
    fn setting_ce_keeps_the_ipv4_checksum_valid() {
        let mut hdr = [
            0x45u8, 0x02, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0xc0, 0x00,
            0x02, 0x01, 0xcb, 0x00, 0x71, 0x0a,
        ];
        let c = fold(add_bytes(0, &hdr));
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        let (tos, check) = ipv4_set_ce(hdr[0], hdr[1], c);
        assert_eq!(tos, 0x03);
        hdr[1] = tos;
        hdr[10..12].copy_from_slice(&check.to_be_bytes());
        assert_eq!(fold(add_bytes(0, &hdr)), 0);
    }
}
