//! The fwmark classifier's rules in LVS words, their `lbctl fwmark` form,
//! and their projection onto the `FWMARK` map (docs/SEMANTICS.md "fwmark
//! services").
//!
//! A rule is what an iptables (or ip6tables) mangle rule `-p tcp -d
//! ADDR/PLEN [--dport LO[:HI]] -j MARK --set-mark MARK` says: a protocol, a
//! destination prefix (IPv4 or IPv6) and port range, and a mark. The projection (`project`) gives each
//! (protocol, prefix) that has rules of its own one `FwmarkRules` value
//! holding its rules and those of every shorter prefix covering it, most
//! specific first (longest prefix, then an explicit port range before any
//! port, then the narrower range, then the lower port), so that the packet
//! path's single longest-prefix lookup and first matching range give the
//! most specific rule. Pure: `table/fwmark.rs` writes what it computes.

use std::{
    collections::BTreeMap,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use lb_common::{
    FWMARK_F_CLASSIFY, FWMARK_F_WIDE, FWMARK_FILTER_MIN_PLEN, FWMARK_RULES_PER_PREFIX, FwmarkKey,
    FwmarkRule as MapRule, FwmarkRules, MAX_FWMARK_PREFIXES, addr_is_v4,
};

use crate::{
    addr::{Ntop, from_addr, to_addr},
    model::Proto,
};

/// What a rule matches: protocol, destination prefix (address bits past
/// `plen` are zero; `plen` up to 32 for IPv4, 128 for IPv6), destination
/// ports (`None`: any port).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FwmarkMatch {
    pub proto: Proto,
    pub addr: IpAddr,
    pub plen: u8,
    pub ports: Option<(u16, u16)>,
}

/// One classifier rule: packets its match holds get `mark`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FwmarkRule {
    pub matches: FwmarkMatch,
    pub mark: u32,
}

/// Why the classifier refuses a change (nothing is changed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FwmarkError {
    #[error("fwmark rule already exists: {0}")]
    Exists(String),
    #[error("no such fwmark rule: {0}")]
    NotFound(String),
    #[error(
        "fwmark rule table full: at most {MAX_FWMARK_PREFIXES} distinct (protocol, destination \
         prefix) pairs"
    )]
    TooManyPrefixes,
    #[error(
        "too many fwmark rules apply to {0}: at most {FWMARK_RULES_PER_PREFIX}, counting those \
         of the shorter prefixes that cover it"
    )]
    TooManyRules(String),
    /// An IPv6 prefix sharing addresses with `::ffff:0.0.0.0/96`, where the
    /// trie keeps the IPv4 prefixes: its entry would classify IPv4 packets.
    #[error(
        "fwmark rule destination {0} shares addresses with ::ffff:0.0.0.0/96 (give IPv4 rules \
         as IPv4 prefixes)"
    )]
    V4MappedPrefix(String),
}

impl FwmarkMatch {
    /// The match of `addr/plen` (the address masked to the prefix, as
    /// iptables does with `-d`).
    pub fn new(proto: Proto, addr: IpAddr, plen: u8, ports: Option<(u16, u16)>) -> FwmarkMatch {
        let plen = plen.min(max_plen(addr));
        FwmarkMatch {
            proto,
            addr: masked(addr, plen),
            plen,
            ports: ports.filter(|&(lo, hi)| (lo, hi) != (0, u16::MAX)),
        }
    }

    /// Whether this match's prefix covers `addr` (same protocol assumed;
    /// never an address of the other family).
    fn covers(&self, addr: IpAddr) -> bool {
        addr.is_ipv6() == self.addr.is_ipv6() && masked(addr, self.plen) == self.addr
    }

    /// The port range, 0..=65535 for any port.
    fn range(&self) -> (u16, u16) {
        self.ports.unwrap_or((0, u16::MAX))
    }

    /// The order of specificity: longest prefix, an explicit range before
    /// any port, the narrower range, the lower port.
    fn specificity(&self) -> (std::cmp::Reverse<u8>, bool, u32, u16) {
        let (lo, hi) = self.range();
        (
            std::cmp::Reverse(self.plen),
            self.ports.is_none(),
            u32::from(hi) - u32::from(lo),
            lo,
        )
    }
}

/// The longest prefix of `addr`'s family: 32 or 128.
fn max_plen(addr: IpAddr) -> u8 {
    if addr.is_ipv6() { 128 } else { 32 }
}

/// `addr` with the bits past `plen` cleared.
fn masked(addr: IpAddr, plen: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(plen.min(32)))
                .unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(plen.min(128)))
                .unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// The IPv4-mapped addresses `::ffff:0.0.0.0/96`, where the trie keeps the
/// IPv4 prefixes.
const V4_MAPPED_NET: Ipv6Addr = Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0);

/// Whether an IPv6 prefix shares addresses with `::ffff:0.0.0.0/96`: its
/// entry would then match IPv4 packets (or be an IPv4 prefix in IPv6
/// words), so it is refused.
pub fn overlaps_v4_mapped(addr: Ipv6Addr, plen: u8) -> bool {
    let common = plen.min(96);
    masked(IpAddr::V6(addr), common) == masked(IpAddr::V6(V4_MAPPED_NET), common)
}

impl fmt::Display for FwmarkMatch {
    /// The words of `lbctl fwmark add` before `--set-mark`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let proto = match self.proto {
            Proto::Udp => "udp",
            _ => "tcp",
        };
        write!(f, "-p {proto} -d {}/{}", Ntop(self.addr), self.plen)?;
        match self.ports {
            None => Ok(()),
            Some((lo, hi)) if lo == hi => write!(f, " --dport {lo}"),
            Some((lo, hi)) => write!(f, " --dport {lo}:{hi}"),
        }
    }
}

impl fmt::Display for FwmarkRule {
    /// The rule as `lbctl fwmark add` takes it (and `-S` prints it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fwmark add {} --set-mark {}", self.matches, self.mark)
    }
}

/// The map's entries for `rules`: per (protocol, prefix) with rules of its
/// own, the prefix's key (its prefix length in bits, `FwmarkKey`) and its
/// rules with those of the shorter prefixes covering it, most specific
/// first; or why they do not fit.
pub fn project(
    rules: &[FwmarkRule],
) -> Result<BTreeMap<(u32, FwmarkKey), FwmarkRules>, FwmarkError> {
    let mut prefixes: Vec<(Proto, IpAddr, u8)> = rules
        .iter()
        .map(|r| (r.matches.proto, r.matches.addr, r.matches.plen))
        .collect();
    prefixes.sort();
    prefixes.dedup();
    if let Some((_, addr, plen)) = prefixes.iter().find(|(_, a, p)| match a {
        IpAddr::V6(v6) => overlaps_v4_mapped(*v6, *p),
        IpAddr::V4(_) => false,
    }) {
        return Err(FwmarkError::V4MappedPrefix(format!(
            "{}/{plen}",
            Ntop(*addr)
        )));
    }
    if prefixes.len() > MAX_FWMARK_PREFIXES as usize {
        return Err(FwmarkError::TooManyPrefixes);
    }
    let mut out = BTreeMap::new();
    for (proto, addr, plen) in prefixes {
        let mut applying: Vec<&FwmarkRule> = rules
            .iter()
            .filter(|r| {
                r.matches.proto == proto && r.matches.plen <= plen && r.matches.covers(addr)
            })
            .collect();
        if applying.len() > FWMARK_RULES_PER_PREFIX {
            return Err(FwmarkError::TooManyRules(format!("{}/{plen}", Ntop(addr))));
        }
        applying.sort_by_key(|r| r.matches.specificity());
        let mut value = FwmarkRules {
            count: applying.len() as u32,
            ..FwmarkRules::default()
        };
        for (slot, r) in value.rules.iter_mut().zip(&applying) {
            let (lo, hi) = r.matches.range();
            *slot = MapRule {
                port_lo: lo,
                port_hi: hi,
                mark: r.mark,
                plen: r.matches.plen,
                _pad: [0; 3],
            };
        }
        out.insert(key_of(proto, addr, plen), value);
    }
    Ok(out)
}

/// Bits of an IPv4-mapped address before the IPv4 address: an IPv4 prefix
/// `/p` is the trie's `/(96 + p)`.
const V4_MAPPED_BITS: u32 = 96;

/// The `FWMARK` key of a prefix: an IPv6 prefix `/p` is the trie's
/// `FWMARK_KEY_FIXED_BITS + p`, an IPv4 one that of its IPv4-mapped prefix,
/// `FWMARK_KEY_FIXED_BITS + 96 + p`.
pub fn key_of(proto: Proto, addr: IpAddr, plen: u8) -> (u32, FwmarkKey) {
    let family_bits = if addr.is_ipv4() { V4_MAPPED_BITS } else { 0 };
    (
        lb_common::FWMARK_KEY_FIXED_BITS + family_bits + u32::from(plen),
        FwmarkKey {
            proto: proto.number(),
            _pad: [0; 3],
            addr: to_addr(addr),
        },
    )
}

/// The prefix of an `FWMARK` key: IPv4 when its address is IPv4-mapped
/// and the prefix covers the mapping (no IPv6 prefix overlaps it), else
/// IPv6.
fn prefix_of(prefix_bits: u32, key: &FwmarkKey) -> Option<(IpAddr, u8)> {
    let plen = prefix_bits.checked_sub(lb_common::FWMARK_KEY_FIXED_BITS)?;
    if addr_is_v4(&key.addr) && plen >= V4_MAPPED_BITS {
        let plen = plen - V4_MAPPED_BITS;
        return (plen <= 32).then(|| (from_addr(&key.addr), plen as u8));
    }
    let addr = IpAddr::V6(Ipv6Addr::from(lb_common::addr_octets(&key.addr)));
    (plen <= 128).then_some((addr, plen as u8))
}

/// The rules an `FWMARK` entry holds as its own (those of its prefix
/// length), read back from the map.
pub fn own_rules(prefix_bits: u32, key: &FwmarkKey, value: &FwmarkRules) -> Vec<FwmarkRule> {
    let Some(proto) = Proto::from_number(key.proto).filter(|p| *p != Proto::Fwm) else {
        return Vec::new();
    };
    let Some((addr, plen)) = prefix_of(prefix_bits, key) else {
        return Vec::new();
    };
    let n = (value.count as usize).min(FWMARK_RULES_PER_PREFIX);
    value.rules[..n]
        .iter()
        .filter(|r| r.plen == plen)
        .map(|r| FwmarkRule {
            matches: FwmarkMatch::new(proto, addr, plen, Some((r.port_lo, r.port_hi))),
            mark: r.mark,
        })
        .collect()
}

/// The addresses the VIP filter must let through for `rules` (those of
/// prefixes of at most `32 - FWMARK_FILTER_MIN_PLEN` host bits: an IPv4
/// /24, an IPv6 /120), and whether some rule is wider than that
/// (`FWMARK_F_WIDE`).
pub fn filter_addresses(rules: &[FwmarkRule]) -> (Vec<IpAddr>, bool) {
    let max_host_bits = 32 - u32::from(FWMARK_FILTER_MIN_PLEN);
    let mut addrs = Vec::new();
    let mut wide = false;
    for r in rules {
        let host_bits = u32::from(max_plen(r.matches.addr) - r.matches.plen);
        if host_bits > max_host_bits {
            wide = true;
            continue;
        }
        let n = 1u32 << host_bits;
        match r.matches.addr {
            IpAddr::V4(a) => {
                let base = u32::from(a);
                addrs.extend((0..n).map(|i| IpAddr::V4(Ipv4Addr::from(base | i))));
            }
            IpAddr::V6(a) => {
                let base = u128::from(a);
                addrs.extend((0..n).map(|i| IpAddr::V6(Ipv6Addr::from(base | u128::from(i)))));
            }
        }
    }
    addrs.sort();
    addrs.dedup();
    (addrs, wide)
}

/// The VIP filter word to write where the map holds `have` and the
/// services and rules want `want`. While a fwmark service exists the
/// filter loses no bit, as IPVS's hooks stay registered while a service
/// exists: a conn whose rule was deleted still reaches the connection
/// table, which comes before the service (docs/SEMANTICS.md "fwmark
/// services"). Without one it is `want`, recomputed from scratch.
pub fn filter_word(want: u64, have: u64, any_fwmark_service: bool) -> u64 {
    if any_fwmark_service {
        want | have
    } else {
        want
    }
}

/// `Settings::fwmark` for the services and rules, where it is `current`:
/// `FWMARK_F_CLASSIFY` while rules and a fwmark service exist;
/// `FWMARK_F_WIDE` while a fwmark service exists and a rule wider than the
/// VIP filter exists or once did (kept, as the filter's bits are, until the
/// last fwmark service goes).
pub fn settings_flags(any_fwmark_service: bool, any_rule: bool, wide: bool, current: u32) -> u32 {
    if !any_fwmark_service {
        return 0;
    }
    let mut flags = 0;
    if any_rule {
        flags |= FWMARK_F_CLASSIFY;
    }
    if wide || current & FWMARK_F_WIDE != 0 {
        flags |= FWMARK_F_WIDE;
    }
    flags
}

/// The mark the rules give a packet, as the packet path computes it: the
/// longest prefix with rules of its own that covers the address, then its
/// first matching range (for tests and `whereis`).
pub fn classify(
    map: &BTreeMap<(u32, FwmarkKey), FwmarkRules>,
    proto: Proto,
    addr: IpAddr,
    port: u16,
) -> u32 {
    map.iter()
        .filter(|((bits, k), _)| {
            prefix_of(*bits, k).is_some_and(|(prefix, plen)| {
                k.proto == proto.number()
                    && prefix.is_ipv6() == addr.is_ipv6()
                    && masked(addr, plen) == prefix
            })
        })
        .max_by_key(|((bits, _), _)| *bits)
        .map_or(0, |(_, v)| lb_common::fwmark_match(v, port))
}

/// `--set-mark`: decimal or `0x` hexadecimal, as iptables takes it; not 0
/// (a mark of 0 is no mark).
pub fn parse_mark(s: &str) -> Option<u32> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u32::from_str_radix(hex, 16).ok()?
        }
        _ if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok()?,
        _ => return None,
    };
    (v != 0).then_some(v)
}

/// `-d ADDR[/PLEN]`: a dotted quad and an optional prefix length 0..=32,
/// or an IPv6 address and an optional prefix length 0..=128.
pub fn parse_destination(s: &str) -> Option<(IpAddr, u8)> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = match a.parse::<Ipv4Addr>() {
        Ok(v4) => IpAddr::V4(v4),
        Err(_) => IpAddr::V6(a.parse::<Ipv6Addr>().ok()?),
    };
    let max = max_plen(addr);
    let plen = match p {
        None => max,
        Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u8>().ok().filter(|n| *n <= max)?
        }
        Some(_) => return None,
    };
    Some((addr, plen))
}

/// `--dport PORT`, `LO:HI`, `LO:` (to 65535) or `:HI` (from 0), as
/// iptables takes them; numbers only; `LO` not above `HI`.
pub fn parse_ports(s: &str) -> Option<(u16, u16)> {
    let num = |t: &str| -> Option<u16> {
        (!t.is_empty() && t.len() <= 5 && t.bytes().all(|b| b.is_ascii_digit()))
            .then(|| t.parse().ok())
            .flatten()
    };
    let (lo, hi) = match s.split_once(':') {
        None => {
            let p = num(s)?;
            (p, p)
        }
        Some(("", hi)) => (0, num(hi)?),
        Some((lo, "")) => (num(lo)?, u16::MAX),
        Some((lo, hi)) => (num(lo)?, num(hi)?),
    };
    (lo <= hi).then_some((lo, hi))
}

/// `-p tcp|udp` (as iptables, any case).
pub fn parse_proto(s: &str) -> Option<Proto> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" | "6" => Some(Proto::Tcp),
        "udp" | "17" => Some(Proto::Udp),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(proto: Proto, dest: &str, ports: Option<&str>, mark: u32) -> FwmarkRule {
        let (addr, plen) = parse_destination(dest).unwrap();
        FwmarkRule {
            matches: FwmarkMatch::new(proto, addr, plen, ports.map(|p| parse_ports(p).unwrap())),
            mark,
        }
    }

    fn mark_of(rules: &[FwmarkRule], proto: Proto, addr: &str, port: u16) -> u32 {
        classify(&project(rules).unwrap(), proto, addr.parse().unwrap(), port)
    }

    #[test]
    fn the_most_specific_rule_wins() {
        let rules = [
            rule(Proto::Tcp, "203.0.113.0/24", None, 1),
            rule(Proto::Tcp, "203.0.113.0/24", Some("80"), 2),
            rule(Proto::Tcp, "203.0.113.0/24", Some("1:1024"), 3),
            rule(Proto::Tcp, "203.0.113.10", Some("443"), 4),
            rule(Proto::Tcp, "203.0.113.10", None, 5),
            rule(Proto::Udp, "203.0.113.0/24", Some("53"), 6),
        ];
        let m = |proto, a, p| mark_of(&rules, proto, a, p);
        // Longest prefix first, whatever the ports.
        assert_eq!(m(Proto::Tcp, "203.0.113.10", 443), 4);
        assert_eq!(m(Proto::Tcp, "203.0.113.10", 80), 5);
        // In the /24: the narrower range, then any port.
        assert_eq!(m(Proto::Tcp, "203.0.113.11", 80), 2);
        assert_eq!(m(Proto::Tcp, "203.0.113.11", 81), 3);
        assert_eq!(m(Proto::Tcp, "203.0.113.11", 8080), 1);
        // The protocol is part of the match; outside every prefix: none.
        assert_eq!(m(Proto::Udp, "203.0.113.11", 53), 6);
        assert_eq!(m(Proto::Udp, "203.0.113.11", 54), 0);
        assert_eq!(m(Proto::Tcp, "203.0.114.1", 80), 0);
    }

    #[test]
    fn shorter_prefixes_are_pushed_down_into_longer_ones() {
        let rules = [
            rule(Proto::Tcp, "198.51.100.0/22", Some("80:81"), 7),
            rule(Proto::Tcp, "198.51.100.0/22", Some("443"), 7),
            rule(Proto::Tcp, "198.51.101.7/32", Some("22"), 9),
        ];
        let map = project(&rules).unwrap();
        assert_eq!(map.len(), 2);
        let host = &map[&key_of(Proto::Tcp, "198.51.101.7".parse().unwrap(), 32)];
        assert_eq!(host.count, 3);
        assert_eq!((host.rules[0].port_lo, host.rules[0].mark), (22, 9));
        // The /22's rules reach the host, whose own rule does not match 443.
        assert_eq!(mark_of(&rules, Proto::Tcp, "198.51.101.7", 443), 7);
        assert_eq!(mark_of(&rules, Proto::Tcp, "198.51.101.7", 81), 7);
        assert_eq!(mark_of(&rules, Proto::Tcp, "198.51.101.7", 82), 0);
        // Read back, each rule once, from its own prefix.
        let mut back: Vec<FwmarkRule> = map
            .iter()
            .flat_map(|((bits, k), v)| own_rules(*bits, k, v))
            .collect();
        back.sort();
        let mut want = rules.to_vec();
        want.sort();
        assert_eq!(back, want);
    }

    #[test]
    fn tables_are_bounded() {
        let many: Vec<FwmarkRule> = (0..=FWMARK_RULES_PER_PREFIX as u16)
            .map(|p| rule(Proto::Tcp, "203.0.113.10", Some(&(p + 1).to_string()), 1))
            .collect();
        assert_eq!(
            project(&many),
            Err(FwmarkError::TooManyRules("203.0.113.10/32".into()))
        );
        assert!(project(&many[1..]).is_ok());
        let hosts: Vec<FwmarkRule> = (0..=MAX_FWMARK_PREFIXES)
            .map(|i| FwmarkRule {
                matches: FwmarkMatch::new(
                    Proto::Udp,
                    IpAddr::V4(Ipv4Addr::from(0xc633_6400 + i)),
                    32,
                    None,
                ),
                mark: 1,
            })
            .collect();
        assert_eq!(project(&hosts), Err(FwmarkError::TooManyPrefixes));
    }

    #[test]
    fn words_parse_as_iptables_takes_them() {
        assert_eq!(parse_mark("1"), Some(1));
        assert_eq!(parse_mark("0x10"), Some(16));
        assert_eq!(parse_mark("4294967295"), Some(u32::MAX));
        for bad in ["0", "0x0", "", "-1", "4294967296", "0x", "1/0xff", "ten"] {
            assert_eq!(parse_mark(bad), None, "{bad}");
        }
        assert_eq!(parse_ports("80"), Some((80, 80)));
        assert_eq!(parse_ports("80:81"), Some((80, 81)));
        assert_eq!(parse_ports("1024:"), Some((1024, 65535)));
        assert_eq!(parse_ports(":1023"), Some((0, 1023)));
        for bad in ["81:80", "", ":", "65536", "http", "80-81"] {
            assert_eq!(parse_ports(bad), None, "{bad}");
        }
        assert_eq!(
            parse_destination("203.0.113.10"),
            Some(("203.0.113.10".parse().unwrap(), 32))
        );
        assert_eq!(
            parse_destination("203.0.113.0/24"),
            Some(("203.0.113.0".parse().unwrap(), 24))
        );
        assert_eq!(
            parse_destination("2001:db8::1"),
            Some(("2001:db8::1".parse().unwrap(), 128))
        );
        assert_eq!(
            parse_destination("2001:db8::/64"),
            Some(("2001:db8::".parse().unwrap(), 64))
        );
        for bad in [
            "203.0.113.0/33",
            "203.0.113.0/",
            "example.com",
            "2001:db8::/129",
            "2001:db8::/0064",
            "[2001:db8::1]",
            "2001:db8::/",
        ] {
            assert_eq!(parse_destination(bad), None, "{bad}");
        }
        // Host bits are dropped and 0:65535 is any port, as iptables does.
        let r = FwmarkRule {
            matches: FwmarkMatch::new(
                Proto::Udp,
                "203.0.113.77".parse().unwrap(),
                24,
                Some((0, 65535)),
            ),
            mark: 3,
        };
        assert_eq!(
            r.to_string(),
            "fwmark add -p udp -d 203.0.113.0/24 --set-mark 3"
        );
        let r = rule(Proto::Tcp, "203.0.113.10", Some("80:81"), 0x10);
        assert_eq!(
            r.to_string(),
            "fwmark add -p tcp -d 203.0.113.10/32 --dport 80:81 --set-mark 16"
        );
    }

    #[test]
    fn the_vip_filter_covers_narrow_prefixes_only() {
        let (addrs, wide) = filter_addresses(&[
            rule(Proto::Tcp, "203.0.113.10", None, 1),
            rule(Proto::Udp, "198.51.100.0/30", None, 1),
        ]);
        assert!(!wide);
        assert_eq!(addrs.len(), 5);
        let (_, wide) = filter_addresses(&[rule(Proto::Tcp, "198.51.100.0/23", None, 1)]);
        assert!(wide);
    }

    /// IPv6 prefixes live in the same trie, at `FIXED + plen`; an IPv4
    /// prefix at `FIXED + 96 + plen`: neither family's rules reach the
    /// other's packets.
    #[test]
    fn ipv6_prefixes_classify_their_family_only() {
        let rules = [
            rule(Proto::Tcp, "2001:db8::/32", None, 1),
            rule(Proto::Tcp, "2001:db8::/64", Some("80"), 2),
            rule(Proto::Tcp, "2001:db8::1", Some("443"), 3),
            rule(Proto::Tcp, "203.0.113.0/24", None, 4),
            rule(Proto::Udp, "2001:db8::/64", Some("53"), 5),
        ];
        let m = |proto, a, p| mark_of(&rules, proto, a, p);
        assert_eq!(m(Proto::Tcp, "2001:db8::1", 443), 3);
        assert_eq!(m(Proto::Tcp, "2001:db8::1", 80), 2);
        assert_eq!(m(Proto::Tcp, "2001:db8::2", 80), 2);
        assert_eq!(m(Proto::Tcp, "2001:db8:0:1::2", 80), 1);
        assert_eq!(m(Proto::Tcp, "2001:db9::1", 80), 0);
        assert_eq!(m(Proto::Udp, "2001:db8::9", 53), 5);
        assert_eq!(m(Proto::Tcp, "203.0.113.9", 80), 4);
        let map = project(&rules).unwrap();
        let fixed = lb_common::FWMARK_KEY_FIXED_BITS;
        assert_eq!(
            key_of(Proto::Tcp, "2001:db8::".parse().unwrap(), 64).0,
            fixed + 64
        );
        assert_eq!(
            key_of(Proto::Tcp, "203.0.113.0".parse().unwrap(), 24).0,
            fixed + 96 + 24
        );
        // The /128 holds its own rule and those of the /64 and /32.
        assert_eq!(
            map[&key_of(Proto::Tcp, "2001:db8::1".parse().unwrap(), 128)].count,
            3
        );
        let mut back: Vec<FwmarkRule> = map
            .iter()
            .flat_map(|((bits, k), v)| own_rules(*bits, k, v))
            .collect();
        back.sort();
        let mut want = rules.to_vec();
        want.sort();
        assert_eq!(back, want);
        assert_eq!(
            rules[1].to_string(),
            "fwmark add -p tcp -d 2001:db8::/64 --dport 80 --set-mark 2"
        );
        // The filter: a /120 or longer lists its addresses, a wider one is wide.
        let (addrs, wide) = filter_addresses(&rules[2..3]);
        assert_eq!(
            (addrs, wide),
            (vec![IpAddr::V6("2001:db8::1".parse().unwrap())], false)
        );
        let (addrs, wide) = filter_addresses(&[rule(Proto::Tcp, "2001:db8::/120", None, 1)]);
        assert_eq!((addrs.len(), wide), (256, false));
        assert!(filter_addresses(&[rule(Proto::Tcp, "2001:db8::/119", None, 1)]).1);
        // Prefixes sharing addresses with ::ffff:0.0.0.0/96 are refused by
        // the command line.
        for (a, plen, overlaps) in [
            ("::", 0, true),
            ("::", 80, true),
            ("::ffff:0.0.0.0", 96, true),
            ("::ffff:192.0.2.0", 120, true),
            ("::", 96, false),
            ("::1", 128, false),
            ("2001:db8::", 32, false),
            ("8000::", 1, false),
        ] {
            assert_eq!(
                overlaps_v4_mapped(a.parse().unwrap(), plen),
                overlaps,
                "{a}/{plen}"
            );
        }
        // The projection refuses them too, whoever asks.
        assert_eq!(
            project(&[rule(Proto::Tcp, "::/0", None, 1)]),
            Err(FwmarkError::V4MappedPrefix("::/0".into()))
        );
    }

    #[test]
    fn the_vip_filter_keeps_its_bits_while_a_fwmark_service_exists() {
        // A rule's address went (bit 0), a service's came (bit 2).
        assert_eq!(filter_word(0b100, 0b011, true), 0b111);
        assert_eq!(filter_word(0b100, 0b011, false), 0b100);
        // WIDE stays once set, until the last fwmark service goes.
        let both = FWMARK_F_CLASSIFY | FWMARK_F_WIDE;
        assert_eq!(settings_flags(true, true, true, 0), both);
        assert_eq!(settings_flags(true, true, false, both), both);
        assert_eq!(settings_flags(true, false, false, both), FWMARK_F_WIDE);
        assert_eq!(settings_flags(true, true, false, 0), FWMARK_F_CLASSIFY);
        assert_eq!(settings_flags(false, true, true, both), 0);
        assert_eq!(settings_flags(true, false, false, 0), 0);
    }
}
