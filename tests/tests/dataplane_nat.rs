//! Masquerading (`-m`, docs/SEMANTICS.md §19) through BPF_PROG_TEST_RUN:
//! requests rewritten to the real server's address and port, its replies
//! found by their tuple and rewritten to come from the VIP, the TCP states
//! following both sides, OutPkts/OutBytes, ICMP errors translated both
//! ways, and the replies of conns that are gone. Over both families where
//! the behaviour is the same (`family_test!`).
//!
//! Expected frames are built independently with the frame builder (which
//! computes every checksum in full) and compared byte for byte, so the
//! program's incremental checksums are checked against full ones; the
//! parser (etherparse) verifies them once more.

use std::net::{IpAddr, Ipv4Addr};

/// An address's bytes as they appear in a header.
fn octets(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

use anyhow::{Result, bail};
use lb_common::*;
use lb_tests::{
    family_test,
    fixture::{CLIENT, Family, VIP},
    frame::{self, Frame, checksum},
    lab_test,
    lb::{Dataplane, XDP_DROP, XDP_PASS, XDP_REDIRECT, XDP_TX, only, real_mac, run_counted},
};
use lb_user::model::{Fwd, Proto, Sched, ServiceId, ServiceSpec};

const LB_MAC: [u8; 6] = frame::DOC_DST_MAC;
const CLIENT_MAC: [u8; 6] = frame::DOC_SRC_MAC;
const CPORT: u16 = 40000;

/// The client's side of the lab, as the director's kernel must see it for
/// `bpf_fib_lookup`: IPv4 forwarding on, the IPv4 client's MAC known, the
/// IPv6 client's /64 routed via a router (2001:db8:0:1::1) whose MAC is the
/// client's. Returns lab0's MAC, the source of what the FIB forwards.
fn client_side() -> Result<[u8; 6]> {
    std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")?;
    let mac = lb_tests::netns::format_mac(&CLIENT_MAC);
    for args in [
        vec![
            "neigh",
            "replace",
            "198.51.100.10",
            "lladdr",
            &mac,
            "dev",
            "lab0",
            "nud",
            "permanent",
        ],
        vec![
            "-6",
            "neigh",
            "replace",
            "2001:db8:0:1::1",
            "lladdr",
            &mac,
            "dev",
            "lab0",
            "nud",
            "permanent",
        ],
        vec![
            "-6",
            "route",
            "replace",
            "2001:db8:1:1::/64",
            "via",
            "2001:db8:0:1::1",
            "dev",
            "lab0",
        ],
    ] {
        let out = std::process::Command::new("ip").args(&args).output()?;
        if !out.status.success() {
            bail!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let out = std::process::Command::new("ip")
        .args(["-o", "link", "show", "dev", "lab0"])
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let Some(mac) = text
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
    else {
        bail!("no MAC for lab0: {text}");
    };
    lb_tests::netns::parse_mac(mac)
}

/// A `proto` service on VIP:`vport` with `-m` real servers `reals` (last
/// address byte, port).
fn masq_service(
    dp: &mut Dataplane,
    fam: Family,
    proto: Proto,
    vport: u16,
    reals: &[(u8, u16)],
) -> Result<ServiceId> {
    let id = fam.sid(proto, vport);
    dp.table.add_service(&ServiceSpec {
        id,
        sched: Sched::Rr,
        persistent: None,
        netmask: fam.host_mask(),
        one_packet: false,
    })?;
    for &(i, port) in reals {
        let mut r = fam.real(i, port, 1);
        r.fwd = Fwd::Masq;
        dp.table.add_real(&id, &r)?;
    }
    Ok(id)
}

/// A TCP segment client:CPORT -> VIP:`vport` as the client sends it.
fn from_client(fam: Family, vport: u16) -> Frame {
    Frame::tcp_ip(fam.client(), fam.vip())
        .src_mac(CLIENT_MAC)
        .dst_mac(LB_MAC)
        .ports(CPORT, vport)
        .ttl(64)
}

/// What real `i` must receive of `f` (a client frame): destination RIP:`rport`,
/// TTL one less, the real's MAC.
fn to_real(f: &Frame, fam: Family, i: u8, rport: u16) -> Vec<u8> {
    f.clone()
        .retarget(fam.client(), fam.rs(i))
        .dport(rport)
        .ttl(63)
        .src_mac(LB_MAC)
        .dst_mac(real_mac(i))
        .build()
}

/// A TCP segment RIP:`rport` -> client:CPORT as real `i` sends it.
fn from_real(fam: Family, i: u8, rport: u16) -> Frame {
    Frame::tcp_ip(fam.rs(i), fam.client())
        .src_mac(real_mac(i))
        .dst_mac(LB_MAC)
        .ports(rport, CPORT)
        .ttl(64)
}

/// What the client must receive of `f` (a real's frame): source VIP:`vport`,
/// TTL one less, the client's (or its router's) MAC, from `src`: the MAC
/// the request came to (the way learned with the conn), or the FIB's.
fn to_client(f: &Frame, fam: Family, vport: u16, src: [u8; 6]) -> Vec<u8> {
    f.clone()
        .retarget(fam.vip(), fam.client())
        .sport(vport)
        .ttl(63)
        .src_mac(src)
        .dst_mac(CLIENT_MAC)
        .build()
}

fn assert_frame(got: &[u8], want: &[u8]) {
    assert!(
        frame::parse(got).is_ok(),
        "lengths and checksums: {:?}",
        frame::parse(got)
    );
    assert_eq!(got, want, "\n got {got:02x?}\nwant {want:02x?}");
}

/// The service's and real `slot`'s (OutPkts, OutBytes).
fn out_stats(dp: &Dataplane) -> Result<((u64, u64), (u64, u64))> {
    let v = dp.table.views(None)?;
    let s = &v[0];
    let r = &s.reals[0];
    Ok((
        (s.stats.outpkts, s.stats.outbytes),
        (r.stats.outpkts, r.stats.outbytes),
    ))
}

/// The one conn's state name and its dest's (ActiveConn, InActConn).
fn conn_state(dp: &Dataplane) -> Result<(&'static str, (u32, u32))> {
    let conns = dp.table.conn_entries()?;
    let [(_, c)] = conns[..] else {
        bail!("{} conns, one expected", conns.len());
    };
    let dc = dp.table.dest_conns(c.dest + 1)?[c.dest as usize];
    Ok((
        CONN_STATE_NAMES[c.state as usize],
        (dc.active_now(), dc.inactive_now()),
    ))
}

fn nat_entries(dp: &Dataplane) -> usize {
    dp.table.pins.nat_replies.keys().count()
}

family_test!(
    request_and_reply_are_translated_with_a_port_change,
    |dp, fam| {
        client_side()?;
        masq_service(&mut dp, fam, Proto::Tcp, 80, &[(11, 8080)])?;
        let syn = from_client(fam, 80).syn().seq(1000);
        let (r, moved) = run_counted(&dp, &syn.build())?;
        assert_eq!(moved, only(REASON_FWD_NEW));
        assert_eq!(r.action, XDP_TX);
        assert_frame(&r.frame, &to_real(&syn, fam, 11, 8080));
        assert_eq!(nat_entries(&dp), 1);

        let synack = from_real(fam, 11, 8080)
            .syn()
            .ack()
            .seq(5000)
            .ack_seq(1001)
            .payload(b"x");
        let (r, moved) = run_counted(&dp, &synack.build())?;
        assert_eq!(r.action, XDP_TX);
        assert_frame(&r.frame, &to_client(&synack, fam, 80, LB_MAC));
        assert_eq!(moved, only(REASON_FWD_NAT_REPLY));

        // OutPkts/OutBytes: one reply, its IP length, on the real and the service.
        let ip_len = (synack.build().len() - 14) as u64;
        assert_eq!(out_stats(&dp)?, ((1, ip_len), (1, ip_len)));

        // A data segment each way keeps being translated.
        let data = from_client(fam, 80)
            .ack()
            .psh()
            .payload(b"GET / HTTP/1.0\r\n\r\n");
        let (r, moved) = run_counted(&dp, &data.build())?;
        assert_frame(&r.frame, &to_real(&data, fam, 11, 8080));
        assert_eq!(moved, only(REASON_FWD_CONN));
        let answer = from_real(fam, 11, 8080).ack().psh().payload(&[b'a'; 300]);
        let (r, _) = run_counted(&dp, &answer.build())?;
        assert_frame(&r.frame, &to_client(&answer, fam, 80, LB_MAC));
        Ok(())
    }
);

family_test!(udp_is_translated_both_ways, |dp, fam| {
    client_side()?;
    masq_service(&mut dp, fam, Proto::Udp, 53, &[(11, 5353)])?;
    let q = Frame::udp_ip(fam.client(), fam.vip())
        .src_mac(CLIENT_MAC)
        .dst_mac(LB_MAC)
        .ports(CPORT, 53)
        .ttl(64)
        .payload(b"query");
    let (r, moved) = run_counted(&dp, &q.build())?;
    assert_eq!(moved, only(REASON_FWD_NEW));
    assert_frame(&r.frame, &to_real(&q, fam, 11, 5353));
    let a = Frame::udp_ip(fam.rs(11), fam.client())
        .src_mac(real_mac(11))
        .dst_mac(LB_MAC)
        .ports(5353, CPORT)
        .ttl(64)
        .payload(b"answer");
    let (r, moved) = run_counted(&dp, &a.build())?;
    assert_eq!(moved, only(REASON_FWD_NAT_REPLY));
    assert_frame(&r.frame, &to_client(&a, fam, 53, LB_MAC));
    assert_eq!(conn_state(&dp)?, ("UDP", (0, 1)));
    Ok(())
});

lab_test!(
    a_port_0_real_keeps_the_port_and_udp_checksum_0_stays_0,
    |dp| {
        client_side()?;
        masq_service(&mut dp, Family::V4, Proto::Udp, 53, &[(11, 0)])?;
        // IPv4 UDP without a checksum (0): the kernel would compute one; we
        // leave it 0 (README, "Differences from IPVS").
        let no_csum = |mut f: Vec<u8>| {
            f[14 + 20 + 6] = 0;
            f[14 + 20 + 7] = 0;
            f
        };
        let q = Frame::udp(CLIENT, VIP)
            .src_mac(CLIENT_MAC)
            .ports(CPORT, 53)
            .payload(b"query");
        let (r, _) = run_counted(&dp, &no_csum(q.build()))?;
        assert_eq!(r.action, XDP_TX);
        let want = no_csum(to_real(&q, Family::V4, 11, 53));
        assert_eq!(r.frame, want);
        let a = Frame::udp(rs(11), CLIENT)
            .src_mac(real_mac(11))
            .ports(53, CPORT)
            .payload(b"answer");
        let (r, moved) = run_counted(&dp, &no_csum(a.build()))?;
        assert_eq!(moved, only(REASON_FWD_NAT_REPLY));
        assert_eq!(r.frame, no_csum(to_client(&a, Family::V4, 53, LB_MAC)));
        Ok(())
    }
);

/// Our MAC on the outside interface (lab1 here) of a two-armed director.
const OUTSIDE_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x53, 0x77];

// The reply goes back the way its request came (docs/SEMANTICS.md §19): the
// request came in on lab1 from the client's MAC to our outside MAC; the
// real's reply comes in on lab0 (the inside) and is redirected to lab1, to
// the client's MAC, from our outside MAC. The FIB would have sent it out of
// lab0 (the route to the client) with lab0's MAC.
family_test!(a_reply_goes_back_the_way_its_request_came, |dp, fam| {
    client_side()?;
    masq_service(&mut dp, fam, Proto::Tcp, 80, &[(11, 8080)])?;
    dp.set_ingress("lab1")?;
    let syn = from_client(fam, 80).syn().dst_mac(OUTSIDE_MAC);
    // The real is on lab0: the request is redirected there.
    let (r, _) = run_counted(&dp, &syn.build())?;
    assert_eq!(r.action, XDP_REDIRECT);
    dp.set_ingress("lab0")?;
    let synack = from_real(fam, 11, 8080).syn().ack();
    let (r, moved) = run_counted(&dp, &synack.build())?;
    assert_eq!(r.action, XDP_REDIRECT);
    assert_eq!(moved, only(REASON_FWD_NAT_REPLY));
    assert_frame(&r.frame, &to_client(&synack, fam, 80, OUTSIDE_MAC));
    Ok(())
});

// A reply larger than the MTU of the interface its request came in on is
// left to the FIB (`bpf_fib_lookup`): here the route to the client has the
// same MTU, so the kernel gets it (translated: it may fragment it).
lab_test!(a_reply_over_the_learned_mtu_goes_by_the_fib, |dp| {
    client_side()?;
    masq_service(&mut dp, Family::V4, Proto::Tcp, 80, &[(11, 8080)])?;
    dp.run(&from_client(Family::V4, 80).syn().build())?;
    let big = from_real(Family::V4, 11, 8080)
        .ack()
        .df(false)
        .payload(&[b'b'; 1600]);
    let (r, moved) = run_counted(&dp, &big.build())?;
    assert_eq!(r.action, XDP_PASS);
    assert_eq!(moved, only(REASON_FWD_NAT_REPLY));
    let want = big
        .clone()
        .retarget(VIP.into(), CLIENT.into())
        .sport(80)
        .build();
    assert_frame(&r.frame, &want);
    Ok(())
});

fn rs(i: u8) -> Ipv4Addr {
    lb_tests::fixture::rs(i)
}

family_test!(
    tcp_states_follow_both_sides_client_closing_first,
    |dp, fam| {
        client_side()?;
        masq_service(&mut dp, fam, Proto::Tcp, 80, &[(11, 80)])?;
        let c = |f: Frame| dp.run(&f.build()).map(|r| r.action);
        let r = |f: Frame| dp.run(&f.build()).map(|r| r.action);
        c(from_client(fam, 80).syn())?;
        assert_eq!(conn_state(&dp)?, ("SYN_RECV", (1, 0)));
        r(from_real(fam, 11, 80).syn().ack())?;
        assert_eq!(conn_state(&dp)?, ("SYN_RECV", (1, 0)));
        c(from_client(fam, 80).ack())?;
        assert_eq!(conn_state(&dp)?, ("ESTABLISHED", (1, 0)));
        r(from_real(fam, 11, 80).ack().payload(b"data"))?;
        assert_eq!(conn_state(&dp)?, ("ESTABLISHED", (1, 0)));
        // The client's FIN: CLOSE_WAIT (the INPUT table), where direct routing
        // says FIN_WAIT; the conn becomes inactive.
        c(from_client(fam, 80).fin().ack())?;
        assert_eq!(conn_state(&dp)?, ("CLOSE_WAIT", (0, 1)));
        r(from_real(fam, 11, 80).ack())?;
        assert_eq!(conn_state(&dp)?, ("CLOSE_WAIT", (0, 1)));
        r(from_real(fam, 11, 80).fin().ack())?;
        assert_eq!(conn_state(&dp)?, ("TIME_WAIT", (0, 1)));
        c(from_client(fam, 80).ack())?;
        assert_eq!(conn_state(&dp)?, ("TIME_WAIT", (0, 1)));
        // A new SYN from the same port reuses the entry (TIME_WAIT): the old
        // conn and its reply entry go, a new pair is made.
        let (rr, moved) = run_counted(&dp, &from_client(fam, 80).syn().build())?;
        assert_eq!(rr.action, XDP_TX);
        assert_eq!(moved, only(REASON_FWD_NEW));
        assert_eq!(conn_state(&dp)?, ("SYN_RECV", (1, 0)));
        assert_eq!(nat_entries(&dp), 1);
        Ok(())
    }
);

family_test!(
    tcp_states_follow_both_sides_real_closing_first,
    |dp, fam| {
        client_side()?;
        masq_service(&mut dp, fam, Proto::Tcp, 80, &[(11, 80)])?;
        for (client, f, want) in [
            (true, TCP_SYN, "SYN_RECV"),
            (false, TCP_SYN | TCP_ACK, "SYN_RECV"),
            (true, TCP_ACK, "ESTABLISHED"),
            (false, TCP_FIN | TCP_ACK, "FIN_WAIT"),
            (true, TCP_FIN | TCP_ACK, "TIME_WAIT"),
        ] {
            let frame = if client {
                from_client(fam, 80).flags(f)
            } else {
                from_real(fam, 11, 80).flags(f)
            };
            assert_eq!(dp.run(&frame.build())?.action, XDP_TX);
            assert_eq!(conn_state(&dp)?.0, want);
        }
        // A reset from the real closes.
        dp.run(&from_real(fam, 11, 80).rst().build())?;
        assert_eq!(conn_state(&dp)?, ("TIME_WAIT", (0, 1)));
        Ok(())
    }
);

const TCP_SYN: u8 = 0x02;
const TCP_FIN: u8 = 0x01;
const TCP_ACK: u8 = 0x10;

family_test!(replies_of_no_conn_pass_untouched, |dp, fam| {
    client_side()?;
    masq_service(&mut dp, fam, Proto::Tcp, 80, &[(11, 8080)])?;
    // Never existed.
    let stray = from_real(fam, 11, 8080).ack().build();
    let r = dp.run(&stray)?;
    assert_eq!((r.action, &r.frame), (XDP_PASS, &stray));
    // Expired: the entry is still in the table, its time is up.
    dp.run(&from_client(fam, 80).syn().build())?;
    let (k, mut c) = dp.table.conn_entries()?[0];
    c.last_seen = 0;
    c.timeout = 1;
    dp.table.pins.conns.insert(k, c, 0)?;
    let r = dp.run(&stray)?;
    assert_eq!((r.action, &r.frame), (XDP_PASS, &stray));
    assert_eq!(out_stats(&dp)?, ((0, 0), (0, 0)));
    // The client's next packet removes the expired conn, and its reply entry.
    dp.run(&from_client(fam, 80).ack().build())?;
    assert_eq!(nat_entries(&dp), 0);
    Ok(())
});

family_test!(
    a_removed_real_keeps_its_replies_until_its_conns_go,
    |dp, fam| {
        client_side()?;
        for expire_nodest_conn in [0, 1] {
            dp.table
                .set_sysctl("expire_nodest_conn", expire_nodest_conn)?;
            let id = masq_service(&mut dp, fam, Proto::Tcp, 80, &[(11, 8080)])?;
            dp.run(&from_client(fam, 80).syn().build())?;
            dp.table.delete_real(&id, &fam.rid(11, 8080))?;
            let reply = from_real(fam, 11, 8080).syn().ack();
            let r = dp.run(&reply.build())?;
            if expire_nodest_conn == 0 {
                // The conn lives on: translated, but counted nowhere (the
                // kernel counts only while the dest is available).
                assert_eq!(r.action, XDP_TX);
                assert_frame(&r.frame, &to_client(&reply, fam, 80, LB_MAC));
                let v = dp.table.views(None)?;
                assert_eq!((v[0].stats.outpkts, v[0].stats.outbytes), (0, 0));
            } else {
                // Flushed at once: the reply is no conn's.
                assert_eq!(
                    (r.action, r.frame.as_slice()),
                    (XDP_PASS, &reply.build()[..])
                );
            }
            dp.table.delete_service(&id)?;
            let keys: Vec<ConnKey> = dp.table.pins.conns.keys().collect::<Result<_, _>>()?;
            for k in keys {
                dp.table.pins.conns.remove(&k)?;
            }
            let keys: Vec<NatKey> = dp.table.pins.nat_replies.keys().collect::<Result<_, _>>()?;
            for k in keys {
                dp.table.pins.nat_replies.remove(&k)?;
            }
        }
        Ok(())
    }
);

family_test!(a_reply_with_ttl_1_is_left_to_the_kernel, |dp, fam| {
    client_side()?;
    masq_service(&mut dp, fam, Proto::Tcp, 80, &[(11, 8080)])?;
    dp.run(&from_client(fam, 80).syn().build())?;
    let last_hop = from_real(fam, 11, 8080).syn().ack().ttl(1).build();
    let r = dp.run(&last_hop)?;
    // Untranslated: the kernel's forwarding sends the real its time
    // exceeded, before IPVS would see the packet.
    assert_eq!((r.action, &r.frame), (XDP_PASS, &last_hop));
    assert_eq!(conn_state(&dp)?.0, "SYN_RECV");
    Ok(())
});

// The way back was learned with the conn: a client the kernel has no
// neighbour entry for (198.51.100.9, on lab0's subnet) gets its replies at
// once, to the MAC its request came from (the FIB would have had the
// kernel forward it and resolve the neighbour first).
lab_test!(a_reply_needs_no_neighbour_when_its_way_was_learned, |dp| {
    client_side()?;
    masq_service(&mut dp, Family::V4, Proto::Tcp, 80, &[(11, 8080)])?;
    let other = Ipv4Addr::new(198, 51, 100, 9);
    let syn = Frame::tcp(other, VIP).ports(CPORT, 80).syn();
    dp.run(&syn.build())?;
    let reply = Frame::tcp(rs(11), other)
        .src_mac(real_mac(11))
        .ports(8080, CPORT)
        .syn()
        .ack();
    let (r, moved) = run_counted(&dp, &reply.build())?;
    assert_eq!(r.action, XDP_TX);
    assert_eq!(moved, only(REASON_FWD_NAT_REPLY));
    let want = reply
        .clone()
        .retarget(IpAddr::V4(VIP), IpAddr::V4(other))
        .sport(80)
        .ttl(63)
        .src_mac(LB_MAC)
        .dst_mac(CLIENT_MAC)
        .build();
    assert_frame(&r.frame, &want);
    Ok(())
});

// `ip_vs_nat_icmp` out -> in: an ICMP error from the client's side about
// our reply (VIP:80 -> client:CPORT) reaches the real with the outer
// destination, the quoted source address and port its own.
family_test!(
    icmp_from_the_client_side_reaches_the_real_translated,
    |dp, fam| {
        client_side()?;
        masq_service(&mut dp, fam, Proto::Tcp, 80, &[(11, 8080)])?;
        dp.run(&from_client(fam, 80).syn().build())?;
        // What the client's side quotes: our reply as it left.
        let sent = Frame::tcp_ip(fam.vip(), fam.client())
            .ports(80, CPORT)
            .syn()
            .ack()
            .ttl(60)
            .build();
        let (ty, code) = match fam {
            Family::V4 => (3, 4),
            Family::V6 => (2, 0),
        };
        let quote = quote_of(&sent);
        let err = Frame::icmp_ip(fam.client(), fam.vip(), ty, code)
            .src_mac(CLIENT_MAC)
            .dst_mac(LB_MAC)
            .icmp_rest([0, 0, 0x05, 0x00])
            .ttl(64)
            .payload(&quote);
        let (r, moved) = run_counted(&dp, &err.build())?;
        assert_eq!(r.action, XDP_TX);
        assert_eq!(moved, only(REASON_FWD_ICMP));
        // The quote as the real must see it: source RIP:8080; the quoted IP
        // checksum recomputed, the quoted TCP checksum left stale (as Linux).
        let mut want_quote = quote.clone();
        set_quoted(&mut want_quote, fam, true, fam.rs(11), 8080);
        let want = Frame::icmp_ip(fam.client(), fam.rs(11), ty, code)
            .src_mac(LB_MAC)
            .dst_mac(real_mac(11))
            .icmp_rest([0, 0, 0x05, 0x00])
            .ttl(63)
            .payload(&want_quote)
            .build();
        assert_frame(&r.frame, &want);
        // An error whose TTL would run out is dropped (`decrement_ttl`; no
        // error about an error), not left to the kernel, which would route
        // it on to the VIP.
        let dying = Frame::icmp_ip(fam.client(), fam.vip(), ty, code)
            .src_mac(CLIENT_MAC)
            .dst_mac(LB_MAC)
            .icmp_rest([0, 0, 0x05, 0x00])
            .ttl(1)
            .payload(&quote)
            .build();
        let (r, moved) = run_counted(&dp, &dying)?;
        assert_eq!((r.action, moved), (XDP_DROP, only(REASON_DROP_REPLY_RATE)));
        Ok(())
    }
);

// `ip_vs_nat_xmit`: `decrement_ttl` comes before `ensure_mtu_is_adequate`,
// so a request too big for the route to the real (DF, or any IPv6) gets
// "fragmentation needed" / "packet too big" from the VIP with the route's
// MTU, quoting the packet with its TTL (hop limit) already lowered; TTL 1
// gets time exceeded.
family_test!(
    a_too_big_request_is_answered_quoting_the_lowered_ttl,
    |dp, fam| {
        masq_service(&mut dp, fam, Proto::Tcp, 80, &[(11, 8080)])?;
        let mtu = dp
            .table
            .dest_table()?
            .into_iter()
            .find(|d| d.flags & DEST_F_IN_USE != 0)
            .expect("the dest")
            .mtu as usize;
        assert_ne!(mtu, 0, "the route's MTU");
        let ip_len = if fam == Family::V4 { 20 } else { 40 };
        let big = from_client(fam, 80)
            .syn()
            .df(true)
            .payload(&vec![0x5a; mtu + 20 - ip_len - 20])
            .build();
        let (r, moved) = run_counted(&dp, &big)?;
        assert_eq!((r.action, moved), (XDP_TX, only(REASON_TX_ICMP_TOO_BIG)));
        let icmp = &r.frame[14 + ip_len..];
        match fam {
            Family::V4 => {
                assert_eq!((icmp[0], icmp[1]), (3, 4));
                assert_eq!(u16::from_be_bytes([icmp[6], icmp[7]]) as usize, mtu);
                let quoted = &icmp[8..28];
                assert_eq!(quoted[8], 63, "the quoted TTL is lowered");
                assert_eq!(checksum(&[quoted]), 0, "the quoted header's checksum");
                assert_eq!(&quoted[16..20], &octets(fam.vip())[..], "not yet rewritten");
            }
            Family::V6 => {
                assert_eq!((icmp[0], icmp[1]), (2, 0));
                assert_eq!(
                    u32::from_be_bytes([icmp[4], icmp[5], icmp[6], icmp[7]]) as usize,
                    mtu
                );
                let quoted = &icmp[8..48];
                assert_eq!(quoted[7], 63, "the quoted hop limit is lowered");
                assert_eq!(&quoted[24..40], &octets(fam.vip())[..], "not yet rewritten");
            }
        }
        let dying = from_client(fam, 80).syn().ttl(1).build();
        let (r, moved) = run_counted(&dp, &dying)?;
        assert_eq!(
            (r.action, moved),
            (XDP_TX, only(REASON_TX_ICMP_TIME_EXCEEDED))
        );
        Ok(())
    }
);

// `ip_vs_nat_icmp` in -> out: an ICMP error from the real's side (here a
// router's, 198.51.100.1 / 2001:db8:0:1::1) about a request (client:CPORT
// -> RIP:8080) reaches the client from the VIP, quoting VIP:80.
family_test!(
    icmp_from_the_real_side_reaches_the_client_translated,
    |dp, fam| {
        client_side()?;
        masq_service(&mut dp, fam, Proto::Tcp, 80, &[(11, 8080)])?;
        dp.run(&from_client(fam, 80).syn().build())?;
        let forwarded = Frame::tcp_ip(fam.client(), fam.rs(11))
            .ports(CPORT, 8080)
            .syn()
            .ttl(63)
            .build();
        let router: IpAddr = match fam {
            Family::V4 => Ipv4Addr::new(198, 51, 100, 1).into(),
            Family::V6 => "2001:db8:0:1::1".parse()?,
        };
        let (ty, code) = match fam {
            Family::V4 => (3, 1),
            Family::V6 => (1, 3),
        };
        let quote = quote_of(&forwarded);
        let err = Frame::icmp_ip(router, fam.client(), ty, code)
            .src_mac(real_mac(11))
            .dst_mac(LB_MAC)
            .ttl(64)
            .payload(&quote);
        let (r, moved) = run_counted(&dp, &err.build())?;
        assert_eq!(r.action, XDP_TX);
        assert_eq!(moved, only(REASON_FWD_NAT_ICMP));
        let mut want_quote = quote.clone();
        set_quoted(&mut want_quote, fam, false, fam.vip(), 80);
        let want = Frame::icmp_ip(fam.vip(), fam.client(), ty, code)
            .src_mac(LB_MAC)
            .dst_mac(CLIENT_MAC)
            .ttl(63)
            .payload(&want_quote)
            .build();
        assert_frame(&r.frame, &want);
        // Counted as a reply (OutPkts), no state change.
        let ((pkts, _), _) = out_stats(&dp)?;
        assert_eq!(pkts, 1);
        assert_eq!(conn_state(&dp)?.0, "SYN_RECV");
        Ok(())
    }
);

/// The quote an ICMP error carries of `sent` (a frame): its IP header and
/// the first 8 bytes of TCP.
fn quote_of(sent: &[u8]) -> Vec<u8> {
    let l3 = if sent[12..14] == [0x08, 0x00] {
        usize::from(sent[14] & 0x0f) * 4
    } else {
        40
    };
    sent[14..14 + l3 + 8].to_vec()
}

/// Rewrites the quoted packet's source (`src`) or destination address and
/// port, and recomputes the quoted IPv4 header checksum (by this file's own
/// sum); the quoted TCP checksum is left as it was.
fn set_quoted(q: &mut [u8], fam: Family, src: bool, addr: IpAddr, port: u16) {
    let (l3, a_off) = match fam {
        Family::V4 => (20, if src { 12 } else { 16 }),
        Family::V6 => (40, if src { 8 } else { 24 }),
    };
    match addr {
        IpAddr::V4(a) => q[a_off..a_off + 4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => q[a_off..a_off + 16].copy_from_slice(&a.octets()),
    }
    let p_off = l3 + if src { 0 } else { 2 };
    q[p_off..p_off + 2].copy_from_slice(&port.to_be_bytes());
    if fam == Family::V4 {
        q[10] = 0;
        q[11] = 0;
        let mut s: u32 = q[..20]
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
            .sum();
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        q[10..12].copy_from_slice(&(!(s as u16)).to_be_bytes());
    }
}

/// The `nat_icmp_send` sysctl (default 0) on or off.
fn set_nat_icmp_send(dp: &mut Dataplane, on: bool) -> Result<()> {
    let mut s = dp.table.pins.settings()?;
    s.nat_icmp_send = u32::from(on);
    dp.table.pins.set_settings(&s)?;
    Ok(())
}

// `nat_icmp_send=1`: a reply of no conn from a `-m` real server's address
// and port gets ICMP port unreachable back (not a TCP reset, not from
// another port, not once the real is removed); with 0 it passes untouched.
family_test!(nat_icmp_send_answers_replies_of_no_conn, |dp, fam| {
    client_side()?;
    let id = masq_service(&mut dp, fam, Proto::Tcp, 80, &[(11, 8080)])?;
    let stray = from_real(fam, 11, 8080).ack().build();
    let (r, moved) = run_counted(&dp, &stray)?;
    assert_eq!((r.action, &r.frame), (XDP_PASS, &stray));
    assert_eq!(moved[REASON_TX_ICMP_UNREACH as usize], 0);

    set_nat_icmp_send(&mut dp, true)?;
    let (r, moved) = run_counted(&dp, &stray)?;
    assert_eq!(moved, only(REASON_TX_ICMP_UNREACH));
    assert_eq!(r.action, XDP_TX);
    let p = frame::parse(&r.frame).expect("valid lengths and checksums");
    assert_eq!(p.dst_mac, real_mac(11));
    let icmp = p.icmp().expect("icmp");
    match fam {
        Family::V4 => {
            let ip = p.ipv4().expect("ipv4");
            assert_eq!(
                (IpAddr::from(ip.dst), (icmp.ty, icmp.code)),
                (fam.rs(11), (3, 3))
            );
        }
        Family::V6 => {
            let ip = p.ipv6().expect("ipv6");
            assert_eq!(
                (IpAddr::from(ip.dst), (icmp.ty, icmp.code)),
                (fam.rs(11), (1, 4))
            );
        }
    }
    // A reset, another port of the real: passed.
    for other in [
        from_real(fam, 11, 8080).rst().build(),
        from_real(fam, 11, 9999).ack().build(),
    ] {
        let r = dp.run(&other)?;
        assert_eq!((r.action, &r.frame), (XDP_PASS, &other));
    }
    // Once the real is removed it is no `-m` real server any more.
    dp.table.delete_real(&id, &fam.rid(11, 8080))?;
    let r = dp.run(&stray)?;
    assert_eq!((r.action, &r.frame), (XDP_PASS, &stray));
    Ok(())
});

// The sweeper removes an expired `-m` conn and its reply entry, and a reply
// entry left without its conn (here: the conn deleted behind the
// program's back, as a flush of the tables does).
lab_test!(the_sweeper_removes_reply_entries_with_their_conns, |dp| {
    client_side()?;
    masq_service(&mut dp, Family::V4, Proto::Tcp, 80, &[(11, 8080)])?;
    dp.arm_sweeper()?;
    let syn = |port: u16| {
        Frame::tcp(CLIENT, VIP)
            .src_mac(CLIENT_MAC)
            .ports(port, 80)
            .syn()
            .build()
    };
    dp.run(&syn(40001))?;
    dp.run(&syn(40002))?;
    assert_eq!(nat_entries(&dp), 2);
    let conns = dp.table.conn_entries()?;
    // The first expires; the second leaves CONNS without the program.
    let (k, mut c) = conns[0];
    c.last_seen = 0;
    c.timeout = 1;
    dp.table.pins.conns.insert(k, c, 0)?;
    dp.table.pins.conns.remove(&conns[1].0)?;
    lb_tests::lb::wait_for(
        "the reply entries removed by the sweeper",
        std::time::Duration::from_secs(20),
        || Ok((nat_entries(&dp) == 0).then_some(())),
    )?;
    assert!(dp.table.conn_entries()?.is_empty());
    Ok(())
});
