//! The controller's addresses (`std::net::IpAddr`) and the maps' (lb-common's
//! [`Addr`]: 16 bytes, IPv4 as its IPv4-mapped IPv6 address `::ffff:a.b.c.d`;
//! docs/SEMANTICS.md "IPv6"). Every conversion between the two goes through
//! here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lb_common::{Addr, addr_from_octets, addr_is_v4, addr_low32, addr_octets, addr_v4};

/// Why an address cannot be a service's or a real server's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`): the maps hold IPv4
    /// addresses so, and IPVS's distinct IPv6 service of that address
    /// could never match traffic (such packets are not allowed on the wire).
    #[error("{0} is an IPv4-mapped IPv6 address: give the IPv4 address {1} instead")]
    V4Mapped(Ipv6Addr, Ipv4Addr),
}

/// The maps' `Addr` of an address.
pub fn to_addr(ip: IpAddr) -> Addr {
    match ip {
        IpAddr::V4(a) => addr_v4(a.octets()),
        IpAddr::V6(a) => addr_from_octets(a.octets()),
    }
}

/// The maps' `Addr` of an IPv4 address.
pub fn v4_to_addr(ip: Ipv4Addr) -> Addr {
    addr_v4(ip.octets())
}

/// The address an `Addr` holds: IPv4 when it is IPv4-mapped (the maps never
/// hold an IPv6 address of that form), else IPv6.
pub fn from_addr(a: &Addr) -> IpAddr {
    if addr_is_v4(a) {
        IpAddr::V4(Ipv4Addr::from(addr_low32(a)))
    } else {
        IpAddr::V6(Ipv6Addr::from(addr_octets(a)))
    }
}

/// Whether an `Addr` holds an IPv6 address.
pub fn addr_is_v6(a: &Addr) -> bool {
    !addr_is_v4(a)
}

/// `ip`, refused when it is an IPv6 address that is IPv4-mapped: it would
/// be stored as the IPv4 address and collide with it.
pub fn checked(ip: IpAddr) -> Result<IpAddr, AddrError> {
    match ip {
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => Err(AddrError::V4Mapped(a, v4)),
            None => Ok(ip),
        },
        IpAddr::V4(_) => Ok(ip),
    }
}

/// The all-ones netmask of `ip`'s family (no `-M`): 255.255.255.255 or
/// the /128 mask.
pub fn full_netmask(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::BROADCAST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(u128::MAX)),
    }
}

/// Whether `mask` is the all-ones mask of its family (ipvsadm then prints
/// no `mask`/`-M`).
pub fn is_full_netmask(mask: IpAddr) -> bool {
    mask == full_netmask(mask)
}

/// The IPv6 netmask of prefix length `plen` (0..=128; more is 128).
pub fn v6_netmask(plen: u8) -> Ipv6Addr {
    Ipv6Addr::from(addr_octets(&lb_common::netmask_v6(plen)))
}

/// The prefix length of an IPv6 netmask, `None` when its ones are not
/// contiguous.
pub fn v6_prefix_len(mask: Ipv6Addr) -> Option<u8> {
    let m = u128::from(mask);
    let ones = m.leading_ones();
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// The maps' netmask (`Service::netmask`) of a service's: an IPv4 mask `m`
/// as `::ffff:m` (so it keeps the mapping of the addresses it masks), an
/// IPv6 mask as its 16 bytes.
pub fn netmask_to_addr(mask: IpAddr) -> Addr {
    to_addr(mask)
}

/// A service's netmask from the maps': `v6` says the service's family (an
/// IPv6 mask may look IPv4-mapped, e.g. the /128 mask does not, but a /96
/// ANDed pattern can).
pub fn netmask_from_addr(a: &Addr, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(addr_octets(a)))
    } else {
        IpAddr::V4(Ipv4Addr::from(addr_low32(a)))
    }
}

/// An address as glibc's `inet_ntop` writes it (ipvsadm's text): for IPv6
/// Rust's compressed form, except that an IPv4-compatible address (the
/// first 96 bits zero, the next 16 not) ends in a dotted quad, as in
/// `::192.0.2.1` (Rust writes `::c000:201`).
pub struct Ntop(pub IpAddr);

impl std::fmt::Display for Ntop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(a) => {
                let w = a.segments();
                if w[..6] == [0; 6] && w[6] != 0 {
                    write!(f, "::{}", Ipv4Addr::from(u128::from(a) as u32))
                } else {
                    write!(f, "{a}")
                }
            }
            IpAddr::V4(a) => write!(f, "{a}"),
        }
    }
}

/// The address and port as ipvsadm prints them numerically: `a.b.c.d:port`
/// or `[v6]:port`.
pub fn addr_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(a) => format!("{a}:{port}"),
        IpAddr::V6(_) => format!("[{}]:{port}", Ntop(ip)),
    }
}

/// The address of fwmark service `mark` of a family, as the model keys it
/// (lb-common's `fwmark_addr`): the mark as an IPv4 address, or in the first
/// 32 bits of an IPv6 address.
pub fn fwmark_ip(mark: u32, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(u128::from(mark) << 96))
    } else {
        IpAddr::V4(Ipv4Addr::from(mark))
    }
}

/// The mark `fwmark_ip` put in an address.
pub fn fwmark_of(ip: IpAddr) -> u32 {
    match ip {
        IpAddr::V4(a) => u32::from(a),
        IpAddr::V6(a) => (u128::from(a) >> 96) as u32,
    }
}

/// The four 32-bit words of an address in host order, as libipvs's
/// comparators take them (`ntohl` of each; one word for IPv4).
pub fn host_words(ip: IpAddr) -> Vec<u32> {
    match ip {
        IpAddr::V4(a) => vec![u32::from(a)],
        IpAddr::V6(a) => a
            .octets()
            .chunks_exact(4)
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lb_common::{fwmark_addr, netmask_v6};

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn round_trips_both_families() {
        for ip in ["192.0.2.1", "0.0.0.0", "2001:db8::1", "::", "::1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(from_addr(&to_addr(ip)), ip);
        }
        let a = to_addr("192.0.2.1".parse().unwrap());
        assert!(addr_is_v4(&a));
        assert_eq!(a, v4_to_addr(Ipv4Addr::new(192, 0, 2, 1)));
        assert!(addr_is_v6(&to_addr("2001:db8::1".parse().unwrap())));
    }

    #[test]
    fn mapped_ipv6_is_refused() {
        let m: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(
            checked(m),
            Err(AddrError::V4Mapped(
                v6("::ffff:192.0.2.1"),
                Ipv4Addr::new(192, 0, 2, 1)
            ))
        );
        for ok in ["192.0.2.1", "2001:db8::1", "::192.0.2.1"] {
            let ip: IpAddr = ok.parse().unwrap();
            assert_eq!(checked(ip), Ok(ip));
        }
    }

    #[test]
    fn netmasks() {
        let m4 = IpAddr::V4(Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(netmask_to_addr(m4), addr_v4([255, 255, 255, 0]));
        assert_eq!(netmask_from_addr(&netmask_to_addr(m4), false), m4);
        let m6 = IpAddr::V6(v6_netmask(64));
        assert_eq!(m6, "ffff:ffff:ffff:ffff::".parse::<IpAddr>().unwrap());
        assert_eq!(netmask_to_addr(m6), netmask_v6(64));
        assert_eq!(netmask_from_addr(&netmask_to_addr(m6), true), m6);
        // /96 has the mapped pattern's length but not its bits; still v6.
        let m96 = IpAddr::V6(v6_netmask(96));
        assert_eq!(netmask_from_addr(&netmask_to_addr(m96), true), m96);
        assert_eq!(v6_prefix_len(v6_netmask(64)), Some(64));
        assert_eq!(v6_prefix_len(v6_netmask(128)), Some(128));
        assert_eq!(v6_prefix_len(v6_netmask(0)), Some(0));
        assert_eq!(v6_prefix_len(v6("ffff::1")), None);
        assert!(is_full_netmask(full_netmask(IpAddr::V6(v6("::1")))));
        assert!(is_full_netmask(IpAddr::V4(Ipv4Addr::BROADCAST)));
        assert!(!is_full_netmask(m6));
    }

    #[test]
    fn fwmark_addresses_mirror_lb_common() {
        for mark in [1, 0x10000, 0x0102_0304, u32::MAX] {
            for fam in [false, true] {
                let ip = fwmark_ip(mark, fam);
                assert_eq!(to_addr(ip), fwmark_addr(mark, fam));
                assert_eq!(fwmark_of(ip), mark);
                assert_eq!(ip.is_ipv6(), fam);
            }
        }
        assert_eq!(fwmark_ip(1, true), IpAddr::V6(v6("0:1::")));
    }

    /// glibc's `inet_ntop6`: the longest run of two or more zero groups
    /// (the first of equal runs) is `::`; a dotted tail for IPv4-mapped
    /// and IPv4-compatible addresses only.
    #[test]
    fn text_is_glibcs() {
        for (a, text) in [
            ("2001:db8::1", "2001:db8::1"),
            ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"),
            ("2001:0:0:1:0:0:1:1", "2001::1:0:0:1:1"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("0:1::", "0:1::"),
            ("1::", "1::"),
            ("102:304::", "102:304::"),
            ("::", "::"),
            ("::1", "::1"),
            ("::101", "::101"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("::0.1.0.0", "::0.1.0.0"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::1:0:0:0", "::1:0:0:0"),
            (
                "2001:DB8:AAAA:BBBB:CCCC:DDDD:EEEE:11",
                "2001:db8:aaaa:bbbb:cccc:dddd:eeee:11",
            ),
        ] {
            assert_eq!(Ntop(a.parse().unwrap()).to_string(), text, "{a}");
        }
        assert_eq!(Ntop("192.0.2.1".parse().unwrap()).to_string(), "192.0.2.1");
        assert_eq!(
            addr_port("::192.0.2.1".parse().unwrap(), 80),
            "[::192.0.2.1]:80"
        );
    }

    #[test]
    fn printing_and_words() {
        assert_eq!(addr_port("192.0.2.1".parse().unwrap(), 80), "192.0.2.1:80");
        assert_eq!(
            addr_port("2001:db8::1".parse().unwrap(), 80),
            "[2001:db8::1]:80"
        );
        assert_eq!(host_words("192.0.2.1".parse().unwrap()), [0xc000_0201]);
        assert_eq!(
            host_words("2001:db8::1".parse().unwrap()),
            [0x2001_0db8, 0, 0, 1]
        );
    }
}
