//! What the dataplane fixtures (`dataplane`, `counts`, `fwmark` suites) share:
//! their documentation addresses and the table entries they build from them.

use std::net::Ipv4Addr;

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
