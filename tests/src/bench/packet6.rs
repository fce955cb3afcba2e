//! The IPv6 cases of the per-packet benchmark (issue 12): the same harness
//! as `packet.rs`, on a plane of its own holding one IPv6 service,
//! `-A -t [2001:db8::10]:80 -s wrr` with 16 reals of weights 1..=16, and
//! one established flow. The IPv6 reals are resolved by the program's
//! `bpf_fib_lookup` (once each, in `prepare`, not while timing).

use std::net::{IpAddr, Ipv6Addr};

use anyhow::{Result, ensure};
use lb_common::{ConnKey, IPPROTO_TCP};
use lb_tests::frame::{DOC_SRC_MAC, Frame};
use lb_user::{
    addr::to_addr,
    model::{Fwd, Proto, RealId, RealSpec, Sched, ServiceId, ServiceSpec, Thresholds},
};

use super::{
    packet::{LB_MAC, REALS, WEB_PORT},
    plane::{PROG_LB, Plane, real_addr6},
};
use lb_tests::lb::XDP_TX;

/// The IPv6 VIP.
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10);
/// The client of the established IPv6 flow.
pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 1, 0, 0, 0, 0x10);

pub fn web6() -> ServiceId {
    ServiceId {
        proto: Proto::Tcp,
        addr: VIP6.into(),
        port: WEB_PORT,
    }
}

fn tcp6(src: Ipv6Addr, sport: u16) -> Frame {
    Frame::ipv6_tcp(src, VIP6)
        .src_mac(DOC_SRC_MAC)
        .dst_mac(LB_MAC)
        .ports(sport, WEB_PORT)
}

/// A segment of the established IPv6 flow: ACK with 10 bytes of data
/// (84-byte frame).
pub fn data_segment6() -> Vec<u8> {
    tcp6(CLIENT6, 40000)
        .ack()
        .psh()
        .seq(1)
        .ack_seq(1)
        .payload(b"0123456789")
        .build()
}

/// The `i`-th new client: 2001:db8:2:N::M, a new address (and, past 256, a
/// new /64) each frame.
fn new_client(i: usize) -> Ipv6Addr {
    Ipv6Addr::new(
        0x2001,
        0xdb8,
        2,
        (i / 256) as u16,
        0,
        0,
        0,
        (i % 256) as u16,
    )
}

/// The SYN of new IPv6 client `i` and the conn key it creates.
pub fn new_flow6(i: usize) -> (Vec<u8>, ConnKey) {
    let c = new_client(i);
    let key = ConnKey {
        caddr: to_addr(IpAddr::V6(c)),
        vaddr: to_addr(IpAddr::V6(VIP6)),
        cport: 1024u16.to_be_bytes(),
        vport: WEB_PORT.to_be_bytes(),
        proto: IPPROTO_TCP,
        _pad: [0; 3],
    };
    (tcp6(c, 1024).syn().build(), key)
}

/// The IPv6 plane: the service, its 16 reals resolved (one flow to each
/// from throwaway clients, whose entries stay), the established flow.
pub fn prepare6(plane: &mut Plane) -> Result<()> {
    let t = plane.table()?;
    t.add_service(&ServiceSpec {
        id: web6(),
        sched: Sched::Wrr,
        persistent: None,
        netmask: Ipv6Addr::from(u128::MAX).into(),
        one_packet: false,
    })?;
    for i in 0..REALS {
        t.add_real(
            &web6(),
            &RealSpec {
                id: RealId {
                    addr: real_addr6(i).into(),
                    port: WEB_PORT,
                },
                fwd: Fwd::Route,
                weight: i as u32 + 1,
                thresholds: Thresholds::NONE,
            },
        )?;
    }
    let mut lb = plane.runner(PROG_LB)?;
    // One wrr cycle (136 flows) reaches every real: each is resolved.
    for i in 0..136u16 {
        let syn = tcp6(Ipv6Addr::new(0x2001, 0xdb8, 3, 0, 0, 0, 0, i), 1)
            .syn()
            .build();
        let (a, _) = lb.run(&syn)?;
        ensure!(a == XDP_TX, "IPv6 warm-up SYN {i} not forwarded ({a})");
    }
    let (a, _) = lb.run(&tcp6(CLIENT6, 40000).syn().build())?;
    ensure!(
        a == XDP_TX,
        "SYN of the established IPv6 flow not forwarded ({a})"
    );
    let (a, _) = lb.run(&data_segment6())?;
    ensure!(
        a == XDP_TX,
        "ACK of the established IPv6 flow not forwarded ({a})"
    );
    Ok(())
}
