//! The configuration under test: the fuzzer's services, their reals and the ports the
//! generator aims at, provisioned through the same `Table` that lbctl uses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Context, Result};
use lb_user::model::{Fwd, Proto, RealId, RealSpec, Sched, ServiceId, ServiceSpec, Thresholds};

use crate::lb::Dataplane;

/// VIP of most services.
pub const VIP_A: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// VIP of the port-0 ("all ports") services, with one exact-port service.
pub const VIP_B: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 20);
/// An address with no service at all.
pub const NOT_VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 30);
/// IPv6 VIP of most IPv6 services.
pub const VIP6_A: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
/// IPv6 VIP of the IPv6 port-0 service, with one exact-port service.
pub const VIP6_B: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x20);
/// An IPv6 address with no service at all.
pub const NOT_VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x30);
/// Persistence timeout of the persistent services: longer than any run.
pub(super) const PERSIST_SECS: u32 = 86_400;
/// Every connection state timeout during a run: nothing expires mid-run.
pub(super) const STATE_TIMEOUT_SECS: u32 = 86_400;
/// The model (and the tables) are flushed beyond this many entries, far
/// below the tables' size, so that LRU eviction never removes an entry the
/// model still expects.
pub(super) const FLOW_LIMIT: usize = 6000;

/// One service of the fuzzer's configuration.
pub(super) struct SvcDef {
    pub(super) proto: Proto,
    pub(super) vip: IpAddr,
    pub(super) port: u16,
    pub(super) sched: Sched,
    pub(super) persistent: bool,
    pub(super) netmask: IpAddr,
    /// (last byte of 198.51.100.x, or last group of 2001:db8:0:1::x for
    /// an IPv6 service, weight); the real's port is the service's.
    pub(super) reals: &'static [(u8, u32)],
}

pub(super) const fn svc(
    proto: Proto,
    vip: IpAddr,
    port: u16,
    sched: Sched,
    persistent: bool,
    netmask: IpAddr,
    reals: &'static [(u8, u32)],
) -> SvcDef {
    SvcDef {
        proto,
        vip,
        port,
        sched,
        persistent,
        netmask,
        reals,
    }
}

pub(super) const HOST: Ipv4Addr = Ipv4Addr::BROADCAST;
const M_HOST: IpAddr = IpAddr::V4(HOST);
const NET24: IpAddr = IpAddr::V4(Ipv4Addr::new(255, 255, 255, 0));
const NET16: IpAddr = IpAddr::V4(Ipv4Addr::new(255, 255, 0, 0));
const HOST6: IpAddr = IpAddr::V6(Ipv6Addr::new(
    0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
));
/// `-M 64`, `-M 48`.
const NET64: IpAddr = IpAddr::V6(Ipv6Addr::new(0xffff, 0xffff, 0xffff, 0xffff, 0, 0, 0, 0));
const NET48: IpAddr = IpAddr::V6(Ipv6Addr::new(0xffff, 0xffff, 0xffff, 0, 0, 0, 0, 0));
const A: IpAddr = IpAddr::V4(VIP_A);
const B: IpAddr = IpAddr::V4(VIP_B);
const A6: IpAddr = IpAddr::V6(VIP6_A);
const B6: IpAddr = IpAddr::V6(VIP6_B);

/// The mask of all ones of `vip`'s family (no `-M`).
pub(super) fn host_mask(vip: IpAddr) -> IpAddr {
    if vip.is_ipv6() { HOST6 } else { M_HOST }
}

/// Every kind of service: wrr and rr, TCP and UDP, persistent with /32, /24
/// and /16 masks, port-0 services next to an exact one on the same VIP, a
/// service without reals and one whose only real is quiescent; and IPv6
/// services of the same kinds (`-M 64`, `-M 48`). Each real
/// address belongs to one service only, so a frame sent to the wrong
/// service's real is caught by its MAC.
pub(super) const SERVICES: &[SvcDef] = &[
    svc(
        Proto::Tcp,
        A,
        80,
        Sched::Wrr,
        false,
        M_HOST,
        &[(11, 3), (12, 1), (13, 0)],
    ),
    svc(
        Proto::Tcp,
        A,
        443,
        Sched::Rr,
        true,
        NET24,
        &[(14, 1), (15, 2)],
    ),
    svc(
        Proto::Udp,
        A,
        53,
        Sched::Rr,
        false,
        M_HOST,
        &[(16, 1), (17, 1)],
    ),
    svc(Proto::Tcp, A, 8080, Sched::Wrr, false, M_HOST, &[]),
    svc(Proto::Udp, A, 5353, Sched::Rr, false, M_HOST, &[(18, 0)]),
    svc(
        Proto::Tcp,
        B,
        0,
        Sched::Rr,
        true,
        M_HOST,
        &[(19, 1), (20, 1)],
    ),
    svc(
        Proto::Udp,
        B,
        0,
        Sched::Wrr,
        true,
        NET16,
        &[(21, 1), (22, 2)],
    ),
    svc(
        Proto::Tcp,
        B,
        80,
        Sched::Rr,
        false,
        M_HOST,
        &[(23, 1), (24, 1)],
    ),
    // IPv6: the same kinds, `-M 64` and `-M 48` for persistence.
    svc(
        Proto::Tcp,
        A6,
        80,
        Sched::Wrr,
        false,
        HOST6,
        &[(31, 2), (32, 1), (33, 0)],
    ),
    svc(
        Proto::Tcp,
        A6,
        443,
        Sched::Rr,
        true,
        NET64,
        &[(34, 1), (35, 1)],
    ),
    svc(
        Proto::Udp,
        A6,
        53,
        Sched::Rr,
        false,
        HOST6,
        &[(36, 1), (37, 1)],
    ),
    svc(Proto::Udp, A6, 5353, Sched::Rr, false, HOST6, &[]),
    svc(
        Proto::Tcp,
        B6,
        0,
        Sched::Rr,
        true,
        NET48,
        &[(38, 1), (39, 1)],
    ),
    svc(
        Proto::Tcp,
        B6,
        80,
        Sched::Wrr,
        false,
        HOST6,
        &[(40, 1), (41, 1)],
    ),
];

/// Destination ports the generator aims at: every service port, neighbours
/// of them, and a few others.
pub(super) const PORTS: &[u16] = &[80, 443, 53, 8080, 5353, 81, 22, 8443, 0, 65535];

pub(super) fn service_id(d: &SvcDef) -> ServiceId {
    ServiceId {
        proto: d.proto,
        addr: d.vip,
        port: d.port,
    }
}

/// The address of the real `last` of service `d`: 198.51.100.`last`, or
/// 2001:db8:0:1::`last` for an IPv6 service (the lab knows both MACs).
pub(super) fn real_addr(d: &SvcDef, last: u8) -> IpAddr {
    if d.vip.is_ipv6() {
        crate::fixture::rs6(last).into()
    } else {
        Ipv4Addr::new(198, 51, 100, last).into()
    }
}

pub(super) fn real_spec(d: &SvcDef, last: u8, weight: u32) -> RealSpec {
    RealSpec {
        id: RealId {
            addr: real_addr(d, last),
            port: d.port,
        },
        fwd: Fwd::Route,
        weight,
        thresholds: Thresholds::NONE,
    }
}

/// Provisions the fuzzer's services on `dp` (through `Table`, as lbctl does)
/// and raises every state timeout so that nothing expires during a run.
pub fn configure(dp: &mut Dataplane) -> Result<()> {
    for d in SERVICES {
        dp.table
            .add_service(&ServiceSpec {
                id: service_id(d),
                sched: d.sched,
                persistent: d.persistent.then_some(PERSIST_SECS),
                netmask: d.netmask,
                one_packet: false,
            })
            .with_context(|| format!("adding {:?}", service_id(d)))?;
        for &(last, w) in d.reals {
            dp.table.add_real(&service_id(d), &real_spec(d, last, w))?;
        }
    }
    let mut s = dp.table.pins.settings()?;
    s.timeouts = [STATE_TIMEOUT_SECS; lb_common::CONN_S_COUNT];
    dp.table.pins.set_settings(&s)?;
    Ok(())
}
