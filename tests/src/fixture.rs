//! What the dataplane fixtures (`dataplane`, `counts`, `fwmark` suites) share:
//! their documentation addresses and the table entries they build from them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use lb_user::model::{Fwd, Proto, RealId, RealSpec, ServiceId, Thresholds};

/// The virtual address of the fixtures' services.
pub const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// The client the fixtures' frames come from.
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

/// Real server `i`'s address: 198.51.100.`i`.
pub fn rs(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, i)
}

/// The service of `proto` on `VIP:port`.
pub fn sid(proto: Proto, port: u16) -> ServiceId {
    ServiceId {
        proto,
        addr: VIP.into(),
        port,
    }
}

/// Real server `i` on `port`, direct routing, `weight`, no thresholds.
pub fn real(i: u8, port: u16, weight: u32) -> RealSpec {
    RealSpec {
        id: RealId {
            addr: rs(i).into(),
            port,
        },
        fwd: Fwd::Route,
        weight,
        thresholds: Thresholds::NONE,
    }
}

/// The IPv6 virtual address of the fixtures' services.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
/// The IPv6 client the fixtures' frames come from (in 2001:db8:1:1::/64).
pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 1, 0, 0, 0, 0x10);

/// IPv6 real server `i`'s address: 2001:db8:0:1::`i` (`i` as a hex group),
/// on the lab's IPv6 link (the lab knows its MAC, `real_mac(i)`).
pub fn rs6(i: u8) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, u16::from(i))
}

/// The address family a fixture runs over: the same test body runs over
/// both (`family_test!`), with the family's VIP, client, reals and masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    /// The service's virtual address.
    pub fn vip(self) -> IpAddr {
        match self {
            Family::V4 => VIP.into(),
            Family::V6 => VIP6.into(),
        }
    }

    /// The client.
    pub fn client(self) -> IpAddr {
        match self {
            Family::V4 => CLIENT.into(),
            Family::V6 => CLIENT6.into(),
        }
    }

    /// Host `n` of the client's persistence group (`group_mask`): the
    /// client's /24 or /64.
    pub fn neighbour(self, n: u8) -> IpAddr {
        match self {
            Family::V4 => Ipv4Addr::new(198, 51, 100, n).into(),
            Family::V6 => Ipv6Addr::new(0x2001, 0xdb8, 1, 1, 0, 0, 0, u16::from(n)).into(),
        }
    }

    /// Host `n` of another group than the client's (192.0.2.0/24,
    /// 2001:db8:1:2::/64; for IPv6 the same low 64 bits as the
    /// neighbour of that number: only the prefix differs).
    pub fn stranger(self, n: u8) -> IpAddr {
        match self {
            Family::V4 => Ipv4Addr::new(192, 0, 2, n).into(),
            Family::V6 => Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, u16::from(n)).into(),
        }
    }

    /// The client's persistence group as `-M` gives it: 255.255.255.0, or
    /// `-M 64` (the /64 mask).
    pub fn group_mask(self) -> IpAddr {
        match self {
            Family::V4 => Ipv4Addr::new(255, 255, 255, 0).into(),
            Family::V6 => Ipv6Addr::new(0xffff, 0xffff, 0xffff, 0xffff, 0, 0, 0, 0).into(),
        }
    }

    /// The client's group address (the template's client address).
    pub fn group(self) -> IpAddr {
        match self {
            Family::V4 => Ipv4Addr::new(198, 51, 100, 0).into(),
            Family::V6 => Ipv6Addr::new(0x2001, 0xdb8, 1, 1, 0, 0, 0, 0).into(),
        }
    }

    /// No `-M`: the mask of all ones of the family (a /128 for IPv6).
    pub fn host_mask(self) -> IpAddr {
        match self {
            Family::V4 => Ipv4Addr::BROADCAST.into(),
            Family::V6 => Ipv6Addr::from(u128::MAX).into(),
        }
    }

    /// Real server `i`'s address in this family.
    pub fn rs(self, i: u8) -> IpAddr {
        match self {
            Family::V4 => rs(i).into(),
            Family::V6 => rs6(i).into(),
        }
    }

    /// The service of `proto` on the family's VIP:`port`.
    pub fn sid(self, proto: Proto, port: u16) -> ServiceId {
        ServiceId {
            proto,
            addr: self.vip(),
            port,
        }
    }

    /// Real server `i` of this family on `port`, direct routing, `weight`.
    pub fn real(self, i: u8, port: u16, weight: u32) -> RealSpec {
        RealSpec {
            id: RealId {
                addr: self.rs(i),
                port,
            },
            fwd: Fwd::Route,
            weight,
            thresholds: Thresholds::NONE,
        }
    }

    /// Real server `i` on `port`, as `-d` names it.
    pub fn rid(self, i: u8, port: u16) -> RealId {
        RealId {
            addr: self.rs(i),
            port,
        }
    }
}
