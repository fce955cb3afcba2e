//! `FWMARK`: the fwmark classifier (docs/SEMANTICS.md "fwmark services").
//!
//! IPVS finds a fwmark service by `skb->mark`, which iptables mangle rules
//! set; an XDP program runs before netfilter and never sees a mark. lbctl
//! keeps its own rules instead (`lbctl fwmark add -p tcp -d ADDR[/PLEN]
//! [--dport LO[:HI]] --set-mark MARK`), projected onto an LPM trie keyed by
//! (protocol, address prefix). The value of a prefix holds its own rules and
//! those of every shorter prefix of the same protocol that covers it,
//! ordered most specific first, so one longest-prefix lookup and a scan of
//! at most `FWMARK_RULES_PER_PREFIX` port ranges give the mark: the first
//! range that holds the destination port wins.

use bytemuck::{Pod, Zeroable};

use crate::{Addr, ServiceKey, addr_v4};

/// Distinct (protocol, prefix) pairs the classifier holds at most.
pub const MAX_FWMARK_PREFIXES: u32 = 1024;
/// Rules one prefix's value holds at most: its own and those pushed down
/// from the shorter prefixes that cover it.
pub const FWMARK_RULES_PER_PREFIX: usize = 16;
/// Bits of `FwmarkKey` before the address (protocol and padding), always
/// matched: a key's prefix length is this plus the address prefix length.
pub const FWMARK_KEY_FIXED_BITS: u32 = 32;
/// Rules of prefixes this long or longer put each address they cover into
/// the VIP filter (`VIPS`); a shorter one sets `FWMARK_F_WIDE` instead.
pub const FWMARK_FILTER_MIN_PLEN: u8 = 24;

/// `Settings::fwmark`: rules exist and some fwmark service exists, so the
/// service lookup classifies a new flow first.
pub const FWMARK_F_CLASSIFY: u32 = 1 << 0;
/// `Settings::fwmark`: some rule is (or was, while a fwmark service
/// exists) wider than the VIP filter covers, so a packet the filter turns
/// away goes on to the connection table and the service lookup.
pub const FWMARK_F_WIDE: u32 = 1 << 1;

/// The data of an `FWMARK` key (the trie's key is this behind a prefix
/// length in bits: `FWMARK_KEY_FIXED_BITS` + the address prefix length).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Pod, Zeroable)]
pub struct FwmarkKey {
    /// `IPPROTO_TCP` or `IPPROTO_UDP`.
    pub proto: u8,
    pub _pad: [u8; 3],
    /// The destination address (prefix), network order; bits past the
    /// prefix are zero. An IPv4 prefix `/p` is the IPv4-mapped prefix
    /// `/(96 + p)`.
    pub addr: Addr,
}
const _: () = assert!(size_of::<FwmarkKey>() == 20);

/// One rule: destination ports `port_lo..=port_hi` (host order; 0..=65535
/// is "any port") get `mark`. `plen` is the address prefix length of the
/// rule as it was added (a rule pushed down into a longer prefix keeps its
/// own), which is how the controller reads its rules back.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FwmarkRule {
    pub port_lo: u16,
    pub port_hi: u16,
    pub mark: u32,
    pub plen: u8,
    pub _pad: [u8; 3],
}
const _: () = assert!(size_of::<FwmarkRule>() == 12);

/// Value of `FWMARK`: `count` rules, most specific first.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct FwmarkRules {
    pub count: u32,
    pub rules: [FwmarkRule; FWMARK_RULES_PER_PREFIX],
}
const _: () = assert!(size_of::<FwmarkRules>() == 196);

/// The address that stands for mark `mark` of family IPv4 (`-f MARK`) or
/// IPv6 (`-f MARK -6`) in fwmark service keys and template keys, as IPVS
/// puts `htonl(fwmark)` in the first word of the template's virtual
/// address: `::ffff:0.0.0.MARK` or `MARK::` (its first 32 bits).
pub const fn fwmark_addr(mark: u32, v6: bool) -> Addr {
    if v6 {
        return [mark.to_be(), 0, 0, 0];
    }
    addr_v4(mark.to_be_bytes())
}

/// The `SERVICES` key of fwmark service `mark` of one family: protocol 0
/// (IPVS's fwmark services have no protocol of their own), the mark's
/// `fwmark_addr` as the address, port 0. Both sides compute it.
pub const fn fwmark_service_key(mark: u32, v6: bool) -> ServiceKey {
    ServiceKey {
        addr: fwmark_addr(mark, v6),
        port: [0, 0],
        proto: 0,
        _pad: 0,
    }
}

/// The mark of the first rule in `rules` whose port range holds `port`,
/// or 0. The packet path's scan (bounded by `FWMARK_RULES_PER_PREFIX`)
/// and the controller's tests share it.
#[inline(always)]
pub fn fwmark_match(rules: &FwmarkRules, port: u16) -> u32 {
    let n = rules.count as usize;
    let mut i = 0;
    while i < FWMARK_RULES_PER_PREFIX {
        if i >= n {
            break;
        }
        let r = &rules.rules[i];
        if r.port_lo <= port && port <= r.port_hi {
            return r.mark;
        }
        i += 1;
    }
    0
}
