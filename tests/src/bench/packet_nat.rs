//! The masquerading cases of the per-packet benchmark (issue 13): a plane
//! of its own holding `-A -t 203.0.113.10:80` with one `-m` real server on
//! port 8080 and one established flow; the request direction (a data
//! segment of the client, rewritten to RIP:8080) and the reply direction
//! (the real's data segment, found in `NAT_REPLIES`, rewritten to come from
//! VIP:80 and sent back the way the flow's request came: its interface and
//! MACs, kept in the entry).

use anyhow::{Context, Result, ensure};
use lb_tests::{
    frame::{DOC_SRC_MAC, Frame},
    lb::XDP_TX,
    topo::mac_for,
};
use lb_user::model::{Fwd, Sched, ServiceSpec};

use super::{
    packet::{CLIENT, LB_MAC, VIP, WEB_PORT, data_segment, real, tcp, web},
    plane::{PROG_LB, Plane, real_addr},
};

/// The `-m` real's port.
pub const NAT_PORT: u16 = 8080;

/// The established NAT flow's request: the client's data segment.
pub fn request() -> Vec<u8> {
    data_segment(CLIENT, 40000, WEB_PORT)
}

/// The real server's data segment of the established flow.
fn reply_frame() -> Frame {
    Frame::tcp(real_addr(0), CLIENT)
        .src_mac(mac_for(real_addr(0)))
        .dst_mac(LB_MAC)
        .ports(NAT_PORT, 40000)
        .ack()
        .psh()
        .seq(1)
        .ack_seq(1)
        .payload(b"0123456789")
}

pub fn reply() -> Vec<u8> {
    reply_frame().build()
}

/// What the request must become: (destination MAC, the bytes after the
/// MACs), built independently with full checksums.
pub fn request_out() -> ([u8; 6], Vec<u8>) {
    let f = tcp(CLIENT, 40000, real_addr(0), NAT_PORT)
        .ack()
        .psh()
        .seq(1)
        .ack_seq(1)
        .ttl(63)
        .payload(b"0123456789")
        .build();
    (mac_for(real_addr(0)), f[12..].to_vec())
}

/// What the reply must become.
pub fn reply_out() -> ([u8; 6], Vec<u8>) {
    let f = reply_frame()
        .retarget(VIP.into(), CLIENT.into())
        .sport(WEB_PORT)
        .ttl(63)
        .build();
    (DOC_SRC_MAC, f[12..].to_vec())
}

/// The NAT plane: the service, its `-m` real, the flow established (SYN,
/// the real's SYN-ACK, the ACK). The replies leave with `XDP_TX` to the
/// MAC the requests came from.
pub fn prepare_nat(plane: &mut Plane) -> Result<()> {
    let t = plane.table()?;
    t.add_service(&ServiceSpec {
        id: web(),
        sched: Sched::Rr,
        persistent: None,
        netmask: std::net::Ipv4Addr::BROADCAST.into(),
        one_packet: false,
    })?;
    let mut r = real(0, NAT_PORT, 1);
    r.fwd = Fwd::Masq;
    t.add_real(&web(), &r)?;
    let mut lb = plane.runner(PROG_LB)?;
    for (what, f) in [
        ("SYN", tcp(CLIENT, 40000, VIP, WEB_PORT).syn().build()),
        ("SYN-ACK", reply_frame().syn().ack().payload(b"").build()),
        ("ACK", request()),
    ] {
        let (a, _) = lb.run(&f).with_context(|| what.to_string())?;
        ensure!(a == XDP_TX, "{what} of the NAT flow not forwarded ({a})");
    }
    Ok(())
}
