//! Tunnelling (`-i`, docs/SEMANTICS.md §18) through BPF_PROG_TEST_RUN, as
//! the `dataplane` suites: every byte of the encapsulated frame for each
//! tunnel type and checksum option over the four family combinations
//! (4in4, 6in6, 4in6, 6in4), the TTL / TOS / ECN / DF rules, `pmtu_disc`,
//! "fragmentation needed" / "packet too big" and time exceeded replies, and
//! an ICMP error about a tunnelled flow forwarded encapsulated. The expected
//! frames are built here from the input, with this file's own checksums
//! (`frame::checksum`, not the program's); only the GUE source port (after
//! checking its range and that it is stable per flow) and the outer IPv4 ID
//! of a packet without DF are taken from the output.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{Result, ensure};
use lb_common::*;
use lb_tests::{
    fixture::Family,
    frame::{self, Frame, checksum},
    lab_test,
    lb::{Dataplane, RunResult, XDP_DROP, XDP_TX, only, real_mac, run_counted},
};
use lb_user::{
    model::{
        Fwd, Proto, RealId, RealSpec, Sched, ServiceId, ServiceSpec, Thresholds, TunCsum, TunType,
        Tunnel,
    },
    neigh::NextHop,
};

const LB_MAC: [u8; 6] = frame::DOC_DST_MAC;
const CLIENT_MAC: [u8; 6] = frame::DOC_SRC_MAC;
const GUE_PORT: u16 = 6080;
/// The lab's veth MTU, which the controller takes as the route's.
const LAB_MTU: usize = 1500;
const REAL: u8 = 11;

/// The director's address on the lab link: the outer source.
fn director(fam: Family) -> IpAddr {
    match fam {
        Family::V4 => Ipv4Addr::new(198, 51, 100, 2).into(),
        Family::V6 => "2001:db8:0:1::2".parse::<Ipv6Addr>().unwrap().into(),
    }
}

/// Every tunnel type and checksum option ipvsadm accepts.
const TUNNELS: [Tunnel; 6] = [
    Tunnel::IPIP,
    tun(TunType::Gue, GUE_PORT, TunCsum::NoCsum),
    tun(TunType::Gue, GUE_PORT, TunCsum::Csum),
    tun(TunType::Gue, GUE_PORT, TunCsum::RemCsum),
    tun(TunType::Gre, 0, TunCsum::NoCsum),
    tun(TunType::Gre, 0, TunCsum::Csum),
];

const fn tun(kind: TunType, port: u16, csum: TunCsum) -> Tunnel {
    Tunnel { kind, port, csum }
}

/// Bytes the encapsulation adds after the outer IP header.
fn extra(t: Tunnel) -> usize {
    match (t.kind, t.csum) {
        (TunType::Ipip, _) => 0,
        (TunType::Gue, _) => 12,
        (TunType::Gre, TunCsum::NoCsum) => 4,
        (TunType::Gre, _) => 8,
    }
}

fn outer_ip_len(real: Family) -> usize {
    match real {
        Family::V4 => 20,
        Family::V6 => 40,
    }
}

/// A TCP service on the family's VIP:`port` with one tunnelling real
/// server of family `real` (a different family is allowed for `-i`).
fn tunnel_service(
    dp: &mut Dataplane,
    svc: Family,
    real: Family,
    port: u16,
    t: Tunnel,
) -> Result<ServiceId> {
    let sid = svc.sid(Proto::Tcp, port);
    dp.table.add_service(&ServiceSpec {
        id: sid,
        sched: Sched::Rr,
        persistent: None,
        netmask: svc.host_mask(),
        one_packet: false,
    })?;
    dp.table.add_real(
        &sid,
        &RealSpec {
            id: RealId {
                addr: real.rs(REAL),
                port,
            },
            fwd: Fwd::Tunnel(t),
            weight: 1,
            thresholds: Thresholds::NONE,
        },
    )?;
    Ok(sid)
}

fn tcp(fam: Family, sport: u16, dport: u16) -> Frame {
    Frame::tcp_ip(fam.client(), fam.vip())
        .src_mac(CLIENT_MAC)
        .dst_mac(LB_MAC)
        .ports(sport, dport)
}

fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// The inner packet as the real server must get it: TTL (hop limit) one
/// less, the IPv4 header checksum computed again from scratch.
fn decremented(input: &[u8]) -> Vec<u8> {
    let mut ip = input[14..].to_vec();
    if ip[0] >> 4 == 4 {
        ip[8] -= 1;
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        ip[10..12].copy_from_slice(&[0, 0]);
        let c = checksum(&[&ip[..ihl]]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        ip[7] -= 1;
    }
    ip
}

/// What the output leaves to the program: the GUE source port and the
/// outer IPv4 ID of a packet without DF.
#[derive(Clone, Copy, Default)]
struct Free {
    sport: u16,
    id: u16,
}

/// The encapsulated frame the real server `REAL` of family `real` must get
/// from `input`, with `pmtu_disc` on or off, built field by field.
fn encapsulated(input: &[u8], real: Family, t: Tunnel, pmtu_disc: bool, free: Free) -> Vec<u8> {
    let inner = decremented(input);
    let inner_v4 = inner[0] >> 4 == 4;
    let (ttl, ds, df) = if inner_v4 {
        (inner[8], inner[1], inner[6] & 0x40 != 0 && pmtu_disc)
    } else {
        (inner[7], (inner[0] << 4) | (inner[1] >> 4), false)
    };
    // INET_ECN_encapsulate: CE (3) becomes ECT(0) (2), the rest is copied.
    let ds = if ds & 3 == 3 { (ds & 0xfc) | 2 } else { ds };
    let next: u8 = if inner_v4 { 4 } else { 41 };
    let (saddr, daddr) = (octets(director(real)), octets(real.rs(REAL)));

    let mut tail = Vec::new();
    let proto = match t.kind {
        TunType::Ipip => next,
        TunType::Gue => {
            let len = (8 + 4 + inner.len()) as u16;
            tail.extend_from_slice(&free.sport.to_be_bytes());
            tail.extend_from_slice(&t.port.to_be_bytes());
            tail.extend_from_slice(&len.to_be_bytes());
            tail.extend_from_slice(&[0, 0]);
            tail.extend_from_slice(&[0, next, 0, 0]);
            if t.csum != TunCsum::NoCsum {
                let mut pseudo = [saddr.clone(), daddr.clone()].concat();
                match real {
                    Family::V4 => pseudo.extend_from_slice(&[0, 17, (len >> 8) as u8, len as u8]),
                    Family::V6 => {
                        pseudo.extend_from_slice(&u32::from(len).to_be_bytes());
                        pseudo.extend_from_slice(&[0, 0, 0, 17]);
                    }
                }
                let c = match checksum(&[&pseudo, &tail, &inner]) {
                    0 => 0xffff,
                    c => c,
                };
                tail[6..8].copy_from_slice(&c.to_be_bytes());
            }
            17
        }
        TunType::Gre => {
            let ethertype: [u8; 2] = if inner_v4 { [8, 0] } else { [0x86, 0xdd] };
            if t.csum == TunCsum::NoCsum {
                tail.extend_from_slice(&[0, 0, ethertype[0], ethertype[1]]);
            } else {
                tail.extend_from_slice(&[0x80, 0, ethertype[0], ethertype[1], 0, 0, 0, 0]);
                let c = checksum(&[&tail, &inner]);
                tail[4..6].copy_from_slice(&c.to_be_bytes());
            }
            47
        }
    };
    let payload = tail.len() + inner.len();
    let mut out = Vec::new();
    out.extend_from_slice(&real_mac(REAL));
    out.extend_from_slice(&LB_MAC);
    match real {
        Family::V4 => {
            out.extend_from_slice(&[8, 0]);
            let len = ((20 + payload) as u16).to_be_bytes();
            let id = if df { [0, 0] } else { free.id.to_be_bytes() };
            let mut ip = vec![
                0x45,
                ds,
                len[0],
                len[1],
                id[0],
                id[1],
                if df { 0x40 } else { 0 },
                0,
                ttl,
                proto,
                0,
                0,
            ];
            ip.extend_from_slice(&saddr);
            ip.extend_from_slice(&daddr);
            let c = checksum(&[&ip]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            out.extend_from_slice(&ip);
        }
        Family::V6 => {
            out.extend_from_slice(&[0x86, 0xdd]);
            out.extend_from_slice(&[0x60 | (ds >> 4), (ds & 0x0f) << 4, 0, 0]);
            out.extend_from_slice(&(payload as u16).to_be_bytes());
            out.extend_from_slice(&[proto, ttl]);
            out.extend_from_slice(&saddr);
            out.extend_from_slice(&daddr);
        }
    }
    out.extend_from_slice(&tail);
    out.extend_from_slice(&inner);
    out
}

/// The program's choices in an encapsulated frame: its GUE source port,
/// checked to be in Linux's `ip_local_port_range` (32768..60999), and the
/// outer IPv4 ID.
fn free_fields(r: &RunResult, real: Family, t: Tunnel) -> Free {
    let l4 = 14 + outer_ip_len(real);
    let mut free = Free::default();
    if real == Family::V4 && r.frame.len() > 20 {
        free.id = u16::from_be_bytes([r.frame[18], r.frame[19]]);
    }
    if t.kind == TunType::Gue && r.frame.len() > l4 + 2 {
        free.sport = u16::from_be_bytes([r.frame[l4], r.frame[l4 + 1]]);
        assert!(
            (32768..60999).contains(&free.sport),
            "GUE source port {} out of 32768..60999",
            free.sport
        );
    }
    free
}

/// Runs `input` and checks it came out encapsulated as [`encapsulated`]
/// says, counted under `reason`. Returns the free fields.
fn assert_tunnelled(
    dp: &Dataplane,
    input: &[u8],
    real: Family,
    t: Tunnel,
    pmtu_disc: bool,
    reason: u32,
) -> Result<Free> {
    let (r, moved) = run_counted(dp, input)?;
    assert_eq!(r.action, XDP_TX, "{t:?} to {real:?}: transmitted");
    assert_eq!(moved, only(reason), "{t:?} to {real:?}: counted");
    let free = free_fields(&r, real, t);
    let want = encapsulated(input, real, t, pmtu_disc, free);
    assert_eq!(hex(&r.frame), hex(&want), "{t:?} to {real:?}");
    Ok(free)
}

fn hex(b: &[u8]) -> String {
    b.chunks(16)
        .map(|c| {
            c.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn set_pmtu_disc(dp: &mut Dataplane, on: bool) -> Result<()> {
    let mut s = dp.table.pins.settings()?;
    s.pmtu_disc = u32::from(on);
    dp.table.pins.set_settings(&s)?;
    Ok(())
}

const FAMILIES: [Family; 2] = [Family::V4, Family::V6];

lab_test!(
    every_tunnel_type_and_family_encapsulates_byte_for_byte,
    |dp| {
        let mut port = 1000;
        for svc in FAMILIES {
            for real in FAMILIES {
                for t in TUNNELS {
                    port += 1;
                    tunnel_service(&mut dp, svc, real, port, t)?;
                    let syn = tcp(svc, 40000, port).syn().seq(7).build();
                    assert_tunnelled(&dp, &syn, real, t, true, REASON_FWD_NEW)?;
                    // A later packet of the flow, with a payload, the same way.
                    let data = tcp(svc, 40000, port)
                        .ack()
                        .psh()
                        .payload(b"GET / HTTP/1.0\r\n\r\n and an odd length")
                        .build();
                    assert_tunnelled(&dp, &data, real, t, true, REASON_FWD_CONN)?;
                }
            }
        }
        Ok(())
    }
);

lab_test!(
    gue_source_port_is_stable_per_flow_and_varies_across_flows,
    |dp| {
        let t = TUNNELS[1];
        for fam in FAMILIES {
            tunnel_service(&mut dp, fam, fam, 80, t)?;
            let mut ports = std::collections::BTreeSet::new();
            for sport in 40000..40016 {
                let a = assert_tunnelled(
                    &dp,
                    &tcp(fam, sport, 80).syn().build(),
                    fam,
                    t,
                    true,
                    REASON_FWD_NEW,
                )?;
                let b = assert_tunnelled(
                    &dp,
                    &tcp(fam, sport, 80).ack().build(),
                    fam,
                    t,
                    true,
                    REASON_FWD_CONN,
                )?;
                assert_eq!(a.sport, b.sport, "{fam:?}: one flow, one source port");
                ports.insert(a.sport);
            }
            assert!(ports.len() > 8, "{fam:?}: 16 flows on {ports:?}");
        }
        Ok(())
    }
);

lab_test!(ttl_tos_ecn_and_df_follow_the_inner_packet, |dp| {
    for svc in FAMILIES {
        for real in FAMILIES {
            let port = 2000 + 10 * (svc as u16) + real as u16;
            let t = Tunnel::IPIP;
            tunnel_service(&mut dp, svc, real, port, t)?;
            // DSCP with each ECN codepoint (CE becomes ECT(0)), TTLs down to 2.
            for (i, (tos, ttl)) in [(0xb8, 64), (0xb9, 2), (0xba, 255), (0xbb, 17), (0x03, 3)]
                .into_iter()
                .enumerate()
            {
                let f = tcp(svc, 41000 + i as u16, port)
                    .syn()
                    .tos(tos)
                    .ttl(ttl)
                    .build();
                assert_tunnelled(&dp, &f, real, t, true, REASON_FWD_NEW)?;
            }
            if svc == Family::V4 {
                // No DF inside, none outside (and some ID).
                let f = tcp(svc, 41100, port).syn().df(false).ident(0x1234).build();
                assert_tunnelled(&dp, &f, real, t, true, REASON_FWD_NEW)?;
            }
        }
    }
    Ok(())
});

lab_test!(
    pmtu_disc_0_clears_the_outer_df_and_sends_big_packets_whole,
    |dp| {
        set_pmtu_disc(&mut dp, false)?;
        let t = Tunnel::IPIP;
        tunnel_service(&mut dp, Family::V4, Family::V4, 80, t)?;
        let f = tcp(Family::V4, 40000, 80).syn().build();
        assert_tunnelled(&dp, &f, Family::V4, t, false, REASON_FWD_NEW)?;
        // Too big for the tunnel, with DF: IPVS would fragment the outer
        // packet; it goes out whole, without DF.
        let big = tcp(Family::V4, 40000, 80)
            .ack()
            .payload(&[0x5a; LAB_MTU - 40])
            .build();
        assert_eq!(big.len(), 14 + LAB_MTU);
        assert_tunnelled(&dp, &big, Family::V4, t, false, REASON_FWD_CONN)?;
        Ok(())
    }
);

/// The ICMP error from the VIP to the client the kernel's `icmp_send` /
/// `icmp6_send` would build about `offending` (the IP packet, as quoted):
/// type, code and the 4 bytes after the checksum given.
fn icmp_reply(svc: Family, offending: &[u8], ty: u8, code: u8, rest: [u8; 4]) -> Vec<u8> {
    let (vip, client) = (octets(svc.vip()), octets(svc.client()));
    let mut out = Vec::new();
    out.extend_from_slice(&CLIENT_MAC);
    out.extend_from_slice(&LB_MAC);
    match svc {
        Family::V4 => {
            let quote = &offending[..offending.len().min(548)];
            let mut icmp = vec![ty, code, 0, 0];
            icmp.extend_from_slice(&rest);
            icmp.extend_from_slice(quote);
            let c = checksum(&[&icmp]);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            let len = ((20 + icmp.len()) as u16).to_be_bytes();
            let tos = (offending[1] & 0x1e) | 0xc0;
            let mut ip = vec![0x45, tos, len[0], len[1], 0, 0, 0, 0, 64, 1, 0, 0];
            ip.extend_from_slice(&vip);
            ip.extend_from_slice(&client);
            let c = checksum(&[&ip]);
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            out.extend_from_slice(&[8, 0]);
            out.extend_from_slice(&ip);
            out.extend_from_slice(&icmp);
        }
        Family::V6 => {
            let quote = &offending[..offending.len().min(1232)];
            let mut icmp = vec![ty, code, 0, 0];
            icmp.extend_from_slice(&rest);
            icmp.extend_from_slice(quote);
            let len = icmp.len() as u32;
            let pseudo = [
                vip.clone(),
                client.clone(),
                len.to_be_bytes().to_vec(),
                vec![0, 0, 0, 58],
            ]
            .concat();
            let c = checksum(&[&pseudo, &icmp]);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            out.extend_from_slice(&[0x86, 0xdd]);
            out.extend_from_slice(&[0x60, 0, 0, 0]);
            out.extend_from_slice(&(len as u16).to_be_bytes());
            out.extend_from_slice(&[58, 64]);
            out.extend_from_slice(&vip);
            out.extend_from_slice(&client);
            out.extend_from_slice(&icmp);
        }
    }
    out
}

lab_test!(
    too_big_packets_get_frag_needed_or_packet_too_big_from_the_vip,
    |dp| {
        let mut port = 3000;
        for svc in FAMILIES {
            for real in FAMILIES {
                for t in TUNNELS {
                    port += 1;
                    tunnel_service(&mut dp, svc, real, port, t)?;
                    // The largest packet the tunnel carries: IPVS's limit.
                    let limit = LAB_MTU - outer_ip_len(real) - extra(t);
                    let headers = if svc == Family::V4 { 40 } else { 60 };
                    let fits = tcp(svc, 40000, port)
                        .syn()
                        .payload(&vec![0xa5; limit - headers])
                        .build();
                    assert_tunnelled(&dp, &fits, real, t, true, REASON_FWD_NEW)?;
                    // One byte more: answered with the limit, quoting the packet
                    // as it was about to be sent (TTL already one less).
                    let big = tcp(svc, 40000, port)
                        .ack()
                        .tos(0x28)
                        .payload(&vec![0xa5; limit - headers + 1])
                        .build();
                    let (r, moved) = run_counted(&dp, &big)?;
                    let (ty, code, rest) = match svc {
                        Family::V4 => {
                            let m = (limit as u16).to_be_bytes();
                            (3, 4, [0, 0, m[0], m[1]])
                        }
                        Family::V6 => (2, 0, (limit as u32).to_be_bytes()),
                    };
                    let want = icmp_reply(svc, &decremented(&big), ty, code, rest);
                    assert_eq!(r.action, XDP_TX, "{t:?} {svc:?} in {real:?}");
                    assert_eq!(hex(&r.frame), hex(&want), "{t:?} {svc:?} in {real:?}");
                    assert_eq!(moved, only(REASON_TX_ICMP_TOO_BIG));
                }
            }
        }
        Ok(())
    }
);

lab_test!(too_big_ipv4_without_df_goes_out_whole, |dp| {
    let t = Tunnel::IPIP;
    tunnel_service(&mut dp, Family::V4, Family::V4, 80, t)?;
    let big = tcp(Family::V4, 40000, 80)
        .syn()
        .df(false)
        .payload(&[1; LAB_MTU - 40])
        .build();
    assert_tunnelled(&dp, &big, Family::V4, t, true, REASON_FWD_NEW)?;
    Ok(())
});

lab_test!(ttl_1_gets_time_exceeded_from_the_vip, |dp| {
    for svc in FAMILIES {
        for real in FAMILIES {
            let port = 4000 + 10 * (svc as u16) + real as u16;
            tunnel_service(&mut dp, svc, real, port, Tunnel::IPIP)?;
            for payload in [&b""[..], &[7; 700][..]] {
                let f = tcp(svc, 40000, port)
                    .syn()
                    .ttl(1)
                    .tos(0x10)
                    .payload(payload)
                    .build();
                let (r, moved) = run_counted(&dp, &f)?;
                let ty = if svc == Family::V4 { 11 } else { 3 };
                // The packet as it came (TTL 1), up to 548 / 1,232 bytes.
                let want = icmp_reply(svc, &f[14..], ty, 0, [0; 4]);
                assert_eq!(r.action, XDP_TX);
                assert_eq!(hex(&r.frame), hex(&want), "{svc:?} in {real:?}");
                assert_eq!(moved, only(REASON_TX_ICMP_TIME_EXCEEDED));
            }
        }
    }
    Ok(())
});

lab_test!(
    icmp_errors_about_a_tunnelled_flow_are_forwarded_encapsulated,
    |dp| {
        let router = |f: Family| -> IpAddr {
            match f {
                Family::V4 => Ipv4Addr::new(192, 0, 2, 1).into(),
                Family::V6 => "2001:db8:1:2::1".parse::<Ipv6Addr>().unwrap().into(),
            }
        };
        for svc in FAMILIES {
            for real in FAMILIES {
                let port = 5000 + 10 * (svc as u16) + real as u16;
                let t = TUNNELS[2];
                tunnel_service(&mut dp, svc, real, port, t)?;
                let syn = tcp(svc, 40000, port).syn().build();
                assert_tunnelled(&dp, &syn, real, t, true, REASON_FWD_NEW)?;
                // A router on the client's side cannot deliver the real
                // server's reply (VIP:port -> client:40000).
                let reply = Frame::tcp_ip(svc.vip(), svc.client())
                    .ports(port, 40000)
                    .syn()
                    .ack()
                    .build();
                let (ty, code) = if svc == Family::V4 { (3, 1) } else { (1, 3) };
                let err = Frame::icmp_ip(router(svc), svc.vip(), ty, code)
                    .src_mac(CLIENT_MAC)
                    .dst_mac(LB_MAC)
                    .payload(&reply[14..])
                    .build();
                assert_tunnelled(&dp, &err, real, t, true, REASON_FWD_ICMP)?;
                // With TTL 1 it is dropped: no error about an error.
                let err1 = Frame::icmp_ip(router(svc), svc.vip(), ty, code)
                    .src_mac(CLIENT_MAC)
                    .dst_mac(LB_MAC)
                    .ttl(1)
                    .payload(&reply[14..])
                    .build();
                let (r, moved) = run_counted(&dp, &err1)?;
                assert_eq!(r.action, XDP_DROP);
                assert_eq!(moved, only(REASON_DROP_REPLY_RATE));
            }
        }
        Ok(())
    }
);

lab_test!(a_route_mtu_too_small_for_the_tunnel_drops, |dp| {
    // 2001:db8:0:1::c through a route of MTU 1300: GUE over IPv6 leaves
    // 1,248 bytes, under IPv6's 1,280.
    let out = std::process::Command::new("ip")
        .args([
            "-6",
            "route",
            "add",
            "2001:db8:0:1::c/128",
            "dev",
            "lab0",
            "mtu",
            "1300",
        ])
        .output()?;
    ensure!(out.status.success(), "ip route: {out:?}");
    let sid = Family::V6.sid(Proto::Tcp, 80);
    dp.table.add_service(&ServiceSpec {
        id: sid,
        sched: Sched::Rr,
        persistent: None,
        netmask: Family::V6.host_mask(),
        one_packet: false,
    })?;
    dp.table.add_real(
        &sid,
        &RealSpec {
            id: RealId {
                addr: Family::V6.rs(12),
                port: 80,
            },
            fwd: Fwd::Tunnel(TUNNELS[1]),
            weight: 1,
            thresholds: Thresholds::NONE,
        },
    )?;
    let d = dp
        .table
        .dest_table()?
        .into_iter()
        .find(|d| d.flags & DEST_F_IN_USE != 0)
        .expect("the dest");
    assert_eq!(d.mtu, 1300, "the route's MTU");
    let (r, moved) = run_counted(&dp, &tcp(Family::V6, 40000, 80).syn().build())?;
    assert_eq!(r.action, XDP_DROP);
    assert_eq!(moved, only(REASON_DROP_MTU));
    Ok(())
});

lab_test!(
    the_controller_gives_tunnel_reals_source_mtu_and_next_hop,
    |dp| {
        for real in FAMILIES {
            tunnel_service(&mut dp, real, real, 80, Tunnel::IPIP)?;
        }
        let dests: Vec<Dest> = dp
            .table
            .dest_table()?
            .into_iter()
            .filter(|d| d.flags & DEST_F_IN_USE != 0)
            .collect();
        assert_eq!(dests.len(), 2);
        for d in dests {
            let v6 = !addr_is_v4(&d.addr);
            let fam = if v6 { Family::V6 } else { Family::V4 };
            assert_eq!(d.fwd, FWD_TUNNEL);
            assert_eq!(d.saddr, lb_user::addr::to_addr(director(fam)), "{fam:?}");
            assert_eq!(d.mtu as usize, LAB_MTU, "{fam:?}");
            assert_eq!(d.mac, real_mac(REAL), "{fam:?}");
            assert_ne!(d.flags & DEST_F_RESOLVED, 0, "{fam:?}");
        }
        Ok(())
    }
);

lab_test!(a_tunnel_real_behind_a_gateway_gets_the_gateways_mac, |dp| {
    // Reals on networks the lab reaches through real 11 (its MAC is known).
    for (net, gw) in [
        ("192.0.2.0/24", "198.51.100.11"),
        ("2001:db8:2::/64", "2001:db8:0:1::b"),
    ] {
        let out = std::process::Command::new("ip")
            .args(["route", "add", net, "via", gw, "dev", "lab0"])
            .output()?;
        ensure!(out.status.success(), "ip route: {out:?}");
    }
    let behind = [
        (Family::V4, IpAddr::from(Ipv4Addr::new(192, 0, 2, 50))),
        (Family::V6, "2001:db8:2::50".parse::<IpAddr>()?),
    ];
    for (fam, addr) in behind {
        let sid = fam.sid(Proto::Tcp, 80);
        dp.table.add_service(&ServiceSpec {
            id: sid,
            sched: Sched::Rr,
            persistent: None,
            netmask: fam.host_mask(),
            one_packet: false,
        })?;
        let real = |fwd| RealSpec {
            id: RealId { addr, port: 80 },
            fwd,
            weight: 1,
            thresholds: Thresholds::NONE,
        };
        // Direct routing cannot reach it; tunnelling can.
        assert!(dp.table.add_real(&sid, &real(Fwd::Route)).is_err());
        dp.table.add_real(&sid, &real(Fwd::Tunnel(Tunnel::IPIP)))?;
        let d = dp
            .table
            .dest_table()?
            .into_iter()
            .find(|d| d.flags & DEST_F_IN_USE != 0 && lb_user::addr::from_addr(&d.addr) == addr)
            .expect("the dest");
        assert_eq!(d.mac, real_mac(REAL), "{fam:?}: the gateway's MAC");
        assert_eq!(d.saddr, lb_user::addr::to_addr(director(fam)), "{fam:?}");
        assert_eq!(d.mtu as usize, LAB_MTU, "{fam:?}");
        // And the packet goes to the gateway, addressed to the real.
        let syn = tcp(fam, 40000, 80).syn().build();
        let (r, moved) = run_counted(&dp, &syn)?;
        assert_eq!((r.action, moved), (XDP_TX, only(REASON_FWD_NEW)));
        assert_eq!(r.frame[0..6], real_mac(REAL));
        let daddr = match fam {
            Family::V4 => &r.frame[14 + 16..14 + 20],
            Family::V6 => &r.frame[14 + 24..14 + 40],
        };
        assert_eq!(daddr, &octets(addr)[..]);
        // The gateway's MAC changes (a neighbour event, as `lbctl daemon`
        // applies them): the tunnel real follows it.
        let gw = match fam {
            Family::V4 => IpAddr::from(Ipv4Addr::new(198, 51, 100, 11)),
            Family::V6 => "2001:db8:0:1::b".parse::<IpAddr>()?,
        };
        let moved_mac = [0x02, 0, 0, 0, 0, 0x99];
        let found = dp.table.set_next_hops(&[(
            gw,
            NextHop {
                mac: moved_mac,
                ifindex: d.ifindex,
                smac: d.smac,
            },
        )])?;
        assert!(found.contains(&(gw, true)), "{fam:?}: {found:?}");
        let (r, _) = run_counted(&dp, &tcp(fam, 40001, 80).syn().build())?;
        assert_eq!(r.frame[0..6], moved_mac, "{fam:?}");
    }
    Ok(())
});

lab_test!(
    a_tunnel_real_added_before_its_route_gets_its_source_later,
    |dp| {
        // Reals on networks the lab cannot reach yet: `-a` takes them (as
        // ipvsadm does), their packets are dropped while there is no route (as
        // IPVS's `__ip_vs_get_out_rt` finds none), and once the route exists
        // the program learns the outer source and the MTU with the next hop
        // (`bpf_fib_lookup`, which answers only where forwarding is on).
        for f in [
            "/proc/sys/net/ipv4/conf/all/forwarding",
            "/proc/sys/net/ipv6/conf/all/forwarding",
        ] {
            std::fs::write(f, "1")?;
        }
        let behind = [
            (
                Family::V4,
                IpAddr::from(Ipv4Addr::new(192, 0, 2, 77)),
                "192.0.2.0/24",
                "198.51.100.11",
            ),
            (
                Family::V6,
                "2001:db8:2::77".parse::<IpAddr>()?,
                "2001:db8:2::/64",
                "2001:db8:0:1::b",
            ),
        ];
        for (fam, addr, net, gw) in behind {
            let sid = fam.sid(Proto::Tcp, 80);
            dp.table.add_service(&ServiceSpec {
                id: sid,
                sched: Sched::Rr,
                persistent: None,
                netmask: fam.host_mask(),
                one_packet: false,
            })?;
            dp.table.add_real(
                &sid,
                &RealSpec {
                    id: RealId { addr, port: 80 },
                    fwd: Fwd::Tunnel(Tunnel::IPIP),
                    weight: 1,
                    thresholds: Thresholds::NONE,
                },
            )?;
            let (r, moved) = run_counted(&dp, &tcp(fam, 40000, 80).syn().build())?;
            assert_eq!(
                (r.action, moved),
                (XDP_DROP, only(REASON_DROP_NO_NEIGH)),
                "{fam:?}: no route yet"
            );
            let out = std::process::Command::new("ip")
                .args(["route", "add", net, "via", gw, "dev", "lab0"])
                .output()?;
            ensure!(out.status.success(), "ip route: {out:?}");
            // A new flow (the first one's conn is bound and waits for its
            // retransmission like any other).
            let (r, moved) = run_counted(&dp, &tcp(fam, 40001, 80).syn().build())?;
            assert_eq!((r.action, moved), (XDP_TX, only(REASON_FWD_NEW)), "{fam:?}");
            let saddr = match fam {
                Family::V4 => &r.frame[14 + 12..14 + 16],
                Family::V6 => &r.frame[14 + 8..14 + 24],
            };
            assert_eq!(
                saddr,
                &octets(director(fam))[..],
                "{fam:?}: the outer source"
            );
            let d = dp
                .table
                .dest_table()?
                .into_iter()
                .find(|d| d.flags & DEST_F_IN_USE != 0 && lb_user::addr::from_addr(&d.addr) == addr)
                .expect("the dest");
            assert_eq!(d.saddr, lb_user::addr::to_addr(director(fam)), "{fam:?}");
            assert_eq!(d.mtu as usize, LAB_MTU, "{fam:?}: the route's MTU");
        }
        Ok(())
    }
);
