//! The packet path over both address families: each `family_test!` body
//! runs once over IPv4 and once over IPv6 (`NAME::ipv4`, `NAME::ipv6`), with
//! the family's VIP, client, reals and `-M` mask (docs/SEMANTICS.md,
//! "IPv6"), through BPF_PROG_TEST_RUN as the `dataplane` suite does. Then
//! the IPv6-only branches: extension headers, ICMPv6 informational
//! messages, malformed IPv6 frames, the fold of the hashing schedulers.
//! Replies are checked byte by byte, their checksums with this file's own
//! pseudo-header sum besides the frame parser's (etherparse).

use std::net::{IpAddr, Ipv6Addr};

use anyhow::Result;
use lb_common::*;
use lb_tests::fixture::{CLIENT6, Family, VIP6};
use lb_tests::{
    family_test,
    frame::{self, Frame},
    lab_test,
    lb::{
        Dataplane, RunResult, XDP_DROP, XDP_PASS, XDP_TX, only, real_mac, real_of, routed,
        run_counted,
    },
};
use lb_user::model::{Proto, Sched, SchedFlags, ServiceId, ServiceSpec, Timeouts};

const LB_MAC: [u8; 6] = frame::DOC_DST_MAC;
const CLIENT_MAC: [u8; 6] = frame::DOC_SRC_MAC;

fn add_service(
    dp: &mut Dataplane,
    fam: Family,
    id: ServiceId,
    sched: Sched,
    persistent: Option<u32>,
) -> Result<()> {
    dp.table.add_service(&ServiceSpec {
        id,
        sched,
        persistent,
        netmask: fam.host_mask(),
        one_packet: false,
    })?;
    Ok(())
}

/// A TCP segment from the client's `sport` to VIP:80.
fn tcp(fam: Family, sport: u16) -> Frame {
    Frame::tcp_ip(fam.client(), fam.vip())
        .src_mac(CLIENT_MAC)
        .dst_mac(LB_MAC)
        .ports(sport, 80)
}

/// A TCP SYN from `src`'s `sport` to VIP:80.
fn syn_from(fam: Family, src: IpAddr, sport: u16) -> Vec<u8> {
    Frame::tcp_ip(src, fam.vip())
        .src_mac(CLIENT_MAC)
        .dst_mac(LB_MAC)
        .ports(sport, 80)
        .syn()
        .build()
}

fn udp(fam: Family, sport: u16) -> Frame {
    Frame::udp_ip(fam.client(), fam.vip())
        .src_mac(CLIENT_MAC)
        .dst_mac(LB_MAC)
        .ports(sport, 53)
        .payload(b"query")
}

// --- this file's own checksum over the IPv6 pseudo-header --------------------

/// RFC 1071 over `bytes` (odd length padded with a zero).
fn ones_sum(mut sum: u32, bytes: &[u8]) -> u32 {
    for c in bytes.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    sum
}

/// Whether the upper-layer packet at the end of an IPv6 frame without
/// extension headers checksums to zero over the RFC 8200 §8.1 pseudo-header.
fn ipv6_l4_checksum_ok(frame: &[u8]) -> bool {
    let ip = &frame[14..54];
    let upper = &frame[54..];
    let len = upper.len() as u32;
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&ip[8..40]);
    pseudo.extend_from_slice(&len.to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, ip[6]]);
    let mut s = ones_sum(ones_sum(0, &pseudo), upper);
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s == 0xffff
}

/// The bytes from the IP header to the transport header of an input frame
/// (IPv4 header length, or 40 plus the IPv6 extension headers), walked here
/// independently of the program.
fn l3_len(frame: &[u8]) -> usize {
    if frame[12..14] == [0x08, 0x00] {
        return usize::from(frame[14] & 0x0f) * 4;
    }
    let (mut next, mut off) = (frame[14 + 6], 40);
    while matches!(next, 0 | 43 | 60) {
        next = frame[14 + off];
        off += (usize::from(frame[14 + off + 1]) + 1) * 8;
    }
    off
}

/// The ICMP (ICMPv6) port unreachable the kernel would send, every field
/// checked: from the VIP to the client, quoting the packet's IP header (its
/// options or extension headers) and 8 bytes of TCP/UDP.
fn assert_port_unreachable(fam: Family, r: &RunResult, input: &[u8]) {
    assert_eq!(r.action, XDP_TX);
    let p = frame::parse(&r.frame).expect("valid lengths and checksums");
    assert_eq!((p.dst_mac, p.src_mac), (CLIENT_MAC, LB_MAC));
    // IPv6: as icmp6_send, at most 1,232 bytes (the reply fits 1,280).
    let quote = &input[14..(14 + l3_len(input) + 8).min(14 + 1232)];
    let icmp = p.icmp().expect("icmp");
    match fam {
        Family::V4 => {
            let ip = p.ipv4().expect("ipv4");
            assert_eq!(
                (IpAddr::from(ip.src), IpAddr::from(ip.dst), ip.protocol),
                (fam.vip(), fam.client(), 1)
            );
            assert_eq!((icmp.ty, icmp.code), (3, 3));
        }
        Family::V6 => {
            let ip = p.ipv6().expect("ipv6");
            assert_eq!(
                (ip.src, ip.dst, ip.next_header, ip.hop_limit),
                (VIP6, CLIENT6, 58, 64)
            );
            assert_eq!((ip.traffic_class, ip.flow_label), (0, 0));
            assert_eq!(usize::from(ip.payload_len), 8 + quote.len());
            assert_eq!(r.frame.len(), 14 + 40 + 8 + quote.len());
            assert_eq!((icmp.ty, icmp.code), (1, 4), "destination/port unreachable");
            assert!(ipv6_l4_checksum_ok(&r.frame), "ICMPv6 checksum");
        }
    }
    assert_eq!(icmp.rest, [0; 4]);
    assert_eq!(icmp.payload, quote, "the IP header(s) + 8 bytes");
}

/// The reset the client's stack accepts, every field checked.
fn assert_reset(fam: Family, r: &RunResult, sport: u16, seq: u32, ack: Option<u32>) {
    assert_eq!(r.action, XDP_TX);
    let p = frame::parse(&r.frame).expect("valid lengths and checksums");
    assert_eq!((p.dst_mac, p.src_mac), (CLIENT_MAC, LB_MAC));
    match fam {
        Family::V4 => {
            let ip = p.ipv4().expect("ipv4");
            assert_eq!(
                (IpAddr::from(ip.src), IpAddr::from(ip.dst), ip.protocol),
                (fam.vip(), fam.client(), 6)
            );
            assert_eq!(ip.total_len, 40);
        }
        Family::V6 => {
            let ip = p.ipv6().expect("ipv6");
            assert_eq!(
                (ip.src, ip.dst, ip.next_header, ip.payload_len, ip.hop_limit),
                (VIP6, CLIENT6, 6, 20, 64)
            );
            assert_eq!(r.frame.len(), 14 + 40 + 20);
            assert!(ipv6_l4_checksum_ok(&r.frame), "TCP checksum");
        }
    }
    let t = p.tcp().expect("tcp");
    assert_eq!((t.sport, t.dport), (80, sport));
    assert!(t.is_rst());
    assert_eq!(t.seq, seq);
    match ack {
        Some(a) => assert!(t.is_ack() && t.ack == a),
        None => assert!(!t.is_ack() && t.ack == 0),
    }
    assert!(t.payload.is_empty() && t.options.is_empty());
}

// --- both families ------------------------------------------------------------

family_test!(traffic_to_no_service_passes_untouched, |dp, fam| {
    add_service(&mut dp, fam, fam.sid(Proto::Tcp, 80), Sched::Wrr, None)?;
    dp.table
        .add_real(&fam.sid(Proto::Tcp, 80), &fam.real(11, 80, 1))?;
    let cases = [
        tcp(fam, 40000).dport(443).syn().build(),
        Frame::tcp_ip(fam.client(), fam.rs(11))
            .ports(1, 80)
            .syn()
            .build(),
        Frame::udp_ip(fam.client(), fam.vip())
            .ports(5000, 80)
            .build(),
    ];
    for f in cases {
        let (r, moved) = run_counted(&dp, &f)?;
        assert_eq!((r.action, &r.frame), (XDP_PASS, &f));
        assert_eq!(moved, only(REASON_PASS_NO_SERVICE));
    }
    Ok(())
});

family_test!(new_flow_is_routed_and_later_packets_follow_it, |dp, fam| {
    let s = fam.sid(Proto::Tcp, 80);
    add_service(&mut dp, fam, s, Sched::Rr, None)?;
    dp.table.add_real(&s, &fam.real(11, 80, 1))?;
    dp.table.add_real(&s, &fam.real(12, 80, 1))?;
    let syn = tcp(fam, 40000).syn().seq(1000).build();
    let (r, moved) = run_counted(&dp, &syn)?;
    let first = real_of(&r).expect("routed");
    assert_eq!(r.frame, routed(&syn, first), "only the MACs change");
    assert_eq!(moved, only(REASON_FWD_NEW));
    for f in [
        tcp(fam, 40000).ack().seq(1001).ack_seq(1).build(),
        tcp(fam, 40000)
            .ack()
            .psh()
            .payload(b"GET / HTTP/1.0\r\n\r\n")
            .build(),
        tcp(fam, 40000).fin().ack().build(),
    ] {
        let (r, moved) = run_counted(&dp, &f)?;
        assert_eq!(r.frame, routed(&f, first));
        assert_eq!(moved, only(REASON_FWD_CONN));
    }
    let other = real_of(&dp.run(&tcp(fam, 40001).syn().build())?).expect("routed");
    assert_ne!(other, first, "rr moves on for a new flow");
    let rows = dp.table.conn_rows()?;
    let row = rows.iter().find(|c| c.cport == 40000).expect("entry");
    assert_eq!(row.state, "FIN_WAIT");
    assert_eq!((row.caddr, row.vaddr), (fam.client(), fam.vip()));
    assert_eq!(row.daddr, fam.rs(first));
    Ok(())
});

family_test!(udp_flows_are_balanced_and_sticky, |dp, fam| {
    let s = fam.sid(Proto::Udp, 53);
    add_service(&mut dp, fam, s, Sched::Rr, None)?;
    dp.table.add_real(&s, &fam.real(11, 53, 1))?;
    dp.table.add_real(&s, &fam.real(12, 53, 1))?;
    let a = real_of(&dp.run(&udp(fam, 5000).build())?).expect("routed");
    let b = real_of(&dp.run(&udp(fam, 5001).build())?).expect("routed");
    assert_ne!(a, b);
    let q = udp(fam, 5000).build();
    let (r, moved) = run_counted(&dp, &q)?;
    assert_eq!(r.frame, routed(&q, a));
    assert_eq!(moved, only(REASON_FWD_CONN));
    let rows = dp.table.conn_rows()?;
    assert!(rows.iter().any(|c| c.cport == 5000 && c.state == "UDP"));
    Ok(())
});

family_test!(
    no_real_available_answers_icmp_port_unreachable,
    |dp, fam| {
        let t = fam.sid(Proto::Tcp, 80);
        add_service(&mut dp, fam, t, Sched::Wrr, None)?;
        let syn = tcp(fam, 40000).syn().payload(&[7; 100]).build();
        let (r, moved) = run_counted(&dp, &syn)?;
        assert_port_unreachable(fam, &r, &syn);
        assert_eq!(moved, only(REASON_TX_ICMP_UNREACH));
        // All quiescent; IP options or extension headers quoted whole.
        dp.table.add_real(&t, &fam.real(11, 80, 0))?;
        let syn = match fam {
            Family::V4 => tcp(fam, 40001).syn().ip_options(&[1, 1, 1, 0]).build(),
            Family::V6 => tcp(fam, 40001)
                .syn()
                .ipv6_ext(0, 0)
                .ipv6_ext(43, 2)
                .ipv6_ext(60, 1)
                .build(),
        };
        assert_port_unreachable(fam, &dp.run(&syn)?, &syn);
        let u = fam.sid(Proto::Udp, 53);
        add_service(&mut dp, fam, u, Sched::Rr, None)?;
        dp.table.add_real(&u, &fam.real(11, 53, 0))?;
        let dgram = udp(fam, 5000).build();
        assert_port_unreachable(fam, &dp.run(&dgram)?, &dgram);
        assert!(dp.table.conn_rows()?.is_empty(), "no entry is created");
        Ok(())
    }
);

family_test!(tcp_segment_without_entry_goes_to_the_stack, |dp, fam| {
    let s = fam.sid(Proto::Tcp, 80);
    add_service(&mut dp, fam, s, Sched::Wrr, None)?;
    dp.table.add_real(&s, &fam.real(11, 80, 1))?;
    for f in [
        tcp(fam, 40000).ack().build(),
        tcp(fam, 40000).syn().rst().build(),
        tcp(fam, 40000).fin().build(),
    ] {
        let (r, moved) = run_counted(&dp, &f)?;
        assert_eq!((r.action, &r.frame), (XDP_PASS, &f));
        assert_eq!(moved, only(REASON_PASS_NO_CONN));
    }
    assert!(dp.table.conn_rows()?.is_empty());
    Ok(())
});

family_test!(
    quiescent_real_keeps_its_flows_but_gets_no_new_ones,
    |dp, fam| {
        let s = fam.sid(Proto::Tcp, 80);
        add_service(&mut dp, fam, s, Sched::Rr, None)?;
        dp.table.add_real(&s, &fam.real(11, 80, 1))?;
        dp.table.add_real(&s, &fam.real(12, 80, 1))?;
        let first = real_of(&dp.run(&tcp(fam, 40000).syn().build())?).expect("routed");
        dp.table.edit_real(&s, &fam.real(first, 80, 0))?;
        let ack = tcp(fam, 40000).ack().build();
        assert_eq!(dp.run(&ack)?.frame, routed(&ack, first));
        for p in 1..10 {
            let other = real_of(&dp.run(&tcp(fam, 40000 + p).syn().build())?);
            assert_ne!(other, Some(first), "no new flow to the quiescent real");
        }
        Ok(())
    }
);

fn persistent(dp: &mut Dataplane, fam: Family, mask: IpAddr) -> Result<ServiceId> {
    let s = fam.sid(Proto::Tcp, 80);
    dp.table.add_service(&ServiceSpec {
        id: s,
        sched: Sched::Rr,
        persistent: Some(300),
        netmask: mask,
        one_packet: false,
    })?;
    dp.table.add_real(&s, &fam.real(11, 80, 1))?;
    dp.table.add_real(&s, &fam.real(12, 80, 1))?;
    Ok(s)
}

family_test!(
    persistence_template_groups_clients_by_the_mask,
    |dp, fam| {
        // -M 255.255.255.0 / -M 64: the client's /24 or /64 shares a template.
        persistent(&mut dp, fam, fam.group_mask())?;
        let first = real_of(&dp.run(&tcp(fam, 40000).syn().build())?).expect("routed");
        for p in 1..6 {
            let (r, moved) = run_counted(&dp, &tcp(fam, 40000 + p).syn().build())?;
            assert_eq!(real_of(&r), Some(first));
            assert_eq!(moved, only(REASON_FWD_TEMPLATE));
        }
        for n in [1, 99, 250] {
            let (r, moved) = run_counted(&dp, &syn_from(fam, fam.neighbour(n), 1234))?;
            assert_eq!(real_of(&r), Some(first), "neighbour {n}");
            assert_eq!(moved, only(REASON_FWD_TEMPLATE));
        }
        // Another group (another /64 with the same low 64 bits for IPv6) is
        // scheduled anew: rr gives it the other real.
        let (r, moved) = run_counted(&dp, &syn_from(fam, fam.stranger(10), 1234))?;
        assert_eq!(moved, only(REASON_FWD_NEW));
        assert_ne!(real_of(&r), Some(first));
        let rows = dp.table.conn_rows()?;
        let t = rows
            .iter()
            .find(|c| c.cport == 0 && c.caddr == fam.group())
            .expect("template row of the client's group");
        assert_eq!(
            (t.vaddr, t.vport, t.daddr, t.state),
            (fam.vip(), 80, fam.rs(first), "NONE")
        );
        assert_eq!(rows.iter().filter(|c| c.cport == 0).count(), 2);
        // ASSURED once a flow it controls is established.
        dp.run(&tcp(fam, 40000).ack().build())?;
        let rows = dp.table.conn_rows()?;
        let t = rows.iter().find(|c| c.cport == 0 && c.caddr == fam.group());
        assert_eq!(t.unwrap().state, "ASSURED");
        Ok(())
    }
);

family_test!(without_a_mask_the_template_is_the_clients_own, |dp, fam| {
    persistent(&mut dp, fam, fam.host_mask())?;
    let first = real_of(&dp.run(&tcp(fam, 40000).syn().build())?).expect("routed");
    let (r, moved) = run_counted(&dp, &syn_from(fam, fam.neighbour(99), 1))?;
    assert_eq!(
        moved,
        only(REASON_FWD_NEW),
        "a neighbour has its own template"
    );
    assert_ne!(real_of(&r), Some(first));
    let rows = dp.table.conn_rows()?;
    assert!(rows.iter().any(|c| c.cport == 0 && c.caddr == fam.client()));
    Ok(())
});

family_test!(
    quiescent_template_is_followed_unless_expire_quiescent_template,
    |dp, fam| {
        let s = persistent(&mut dp, fam, fam.host_mask())?;
        let first = real_of(&dp.run(&tcp(fam, 40000).syn().build())?).expect("routed");
        dp.table.edit_real(&s, &fam.real(first, 80, 0))?;
        let (r, moved) = run_counted(&dp, &tcp(fam, 40001).syn().build())?;
        assert_eq!(
            (real_of(&r), moved),
            (Some(first), only(REASON_FWD_TEMPLATE))
        );
        let other = syn_from(fam, fam.neighbour(77), 1);
        assert_ne!(real_of(&dp.run(&other)?), Some(first));
        dp.table.set_sysctl("expire_quiescent_template", 1)?;
        let (r, moved) = run_counted(&dp, &tcp(fam, 40002).syn().build())?;
        let second = real_of(&r).expect("routed");
        assert_ne!(second, first);
        assert_eq!(moved, only(REASON_FWD_NEW));
        let (r, moved) = run_counted(&dp, &tcp(fam, 40003).syn().build())?;
        assert_eq!(
            (real_of(&r), moved),
            (Some(second), only(REASON_FWD_TEMPLATE))
        );
        let ack = tcp(fam, 40000).ack().build();
        assert_eq!(dp.run(&ack)?.frame, routed(&ack, first));
        Ok(())
    }
);

family_test!(
    a_removed_reals_template_is_replaced_on_the_next_connection,
    |dp, fam| {
        let s = persistent(&mut dp, fam, fam.group_mask())?;
        let first = real_of(&dp.run(&tcp(fam, 40000).syn().build())?).expect("routed");
        dp.table.delete_real(&s, &fam.rid(first, 80))?;
        let (r, moved) = run_counted(&dp, &tcp(fam, 40001).syn().build())?;
        let second = real_of(&r).expect("routed");
        assert_ne!(second, first);
        assert_eq!(moved, only(REASON_FWD_NEW));
        let mut rows: Vec<(u16, IpAddr, u16)> = dp
            .table
            .conn_rows()?
            .into_iter()
            .filter(|c| c.cport == 0)
            .map(|c| (c.vport, c.daddr, c.dport))
            .collect();
        rows.sort();
        assert_eq!(
            rows,
            [(80, fam.rs(second), 80), (65535, fam.rs(first), 65535)]
        );
        let (r, moved) = run_counted(&dp, &syn_from(fam, fam.neighbour(3), 9))?;
        assert_eq!(
            (real_of(&r), moved),
            (Some(second), only(REASON_FWD_TEMPLATE))
        );
        Ok(())
    }
);

family_test!(
    removed_real_drops_silently_and_resumes_when_re_added,
    |dp, fam| {
        let s = fam.sid(Proto::Tcp, 80);
        add_service(&mut dp, fam, s, Sched::Rr, None)?;
        dp.table.add_real(&s, &fam.real(11, 80, 1))?;
        dp.table.add_real(&s, &fam.real(12, 80, 1))?;
        let first = real_of(&dp.run(&tcp(fam, 40000).syn().build())?).expect("routed");
        dp.table.delete_real(&s, &fam.rid(first, 80))?;
        let ack = tcp(fam, 40000).ack().build();
        let (r, moved) = run_counted(&dp, &ack)?;
        assert_eq!((r.action, moved), (XDP_DROP, only(REASON_DROP_NODEST)));
        assert!(dp.table.conn_rows()?.iter().any(|c| c.cport == 40000));
        dp.table.add_real(&s, &fam.real(first, 80, 1))?;
        let (r, moved) = run_counted(&dp, &ack)?;
        assert_eq!(
            (r.frame, moved),
            (routed(&ack, first), only(REASON_FWD_CONN))
        );
        Ok(())
    }
);

family_test!(
    removed_real_with_expire_nodest_conn_resets_the_client,
    |dp, fam| {
        let s = fam.sid(Proto::Tcp, 80);
        add_service(&mut dp, fam, s, Sched::Rr, None)?;
        dp.table.add_real(&s, &fam.real(11, 80, 1))?;
        dp.table.add_real(&s, &fam.real(12, 80, 1))?;
        dp.table.set_sysctl("expire_nodest_conn", 1)?;
        let first = real_of(&dp.run(&tcp(fam, 40000).syn().seq(7).build())?).expect("routed");
        dp.table.delete_real(&s, &fam.rid(first, 80))?;
        assert!(dp.table.conn_rows()?.iter().all(|c| c.cport != 40000));
        // An ACK (with extension headers for IPv6: not in the reset): RST,
        // seq = its ack.
        let ack = tcp(fam, 40000).ack().seq(8).ack_seq(555).payload(b"x");
        let ack = match fam {
            Family::V4 => ack.build(),
            Family::V6 => ack.ipv6_ext(60, 0).build(),
        };
        let (r, moved) = run_counted(&dp, &ack)?;
        assert_reset(fam, &r, 40000, 555, None);
        assert_eq!(moved, only(REASON_TX_RST_NODEST));
        assert_eq!(dp.run(&tcp(fam, 40000).ack().build())?.action, XDP_PASS);
        // Without ACK: RST|ACK acknowledging the segment.
        dp.table.add_real(&s, &fam.real(first, 80, 1))?;
        let third = real_of(&dp.run(&tcp(fam, 40002).syn().seq(100).build())?).expect("routed");
        dp.table.delete_real(&s, &fam.rid(third, 80))?;
        let r = dp.run(
            &tcp(fam, 40002)
                .flags(frame::tcp_flags::FIN)
                .seq(101)
                .payload(b"abc")
                .build(),
        )?;
        assert_reset(fam, &r, 40002, 0, Some(101 + 3 + 1));
        let (r, moved) = run_counted(&dp, &tcp(fam, 40000).syn().build())?;
        assert!(real_of(&r).is_some());
        assert_eq!(moved, only(REASON_FWD_NEW));
        Ok(())
    }
);

family_test!(syn_reusing_a_port_follows_conn_reuse_mode, |dp, fam| {
    let s = fam.sid(Proto::Tcp, 80);
    add_service(&mut dp, fam, s, Sched::Rr, None)?;
    dp.table.add_real(&s, &fam.real(11, 80, 1))?;
    dp.table.add_real(&s, &fam.real(12, 80, 1))?;
    let first = real_of(&dp.run(&tcp(fam, 40000).syn().build())?).expect("routed");
    dp.run(&tcp(fam, 40000).ack().build())?;
    dp.run(&tcp(fam, 40000).rst().build())?;
    let (r, moved) = run_counted(&dp, &tcp(fam, 40000).syn().build())?;
    assert_eq!(moved, only(REASON_FWD_NEW));
    let again = real_of(&r).expect("routed");
    assert_ne!(again, first);
    dp.table.set_sysctl("conn_reuse_mode", 0)?;
    dp.run(&tcp(fam, 40000).ack().build())?;
    dp.run(&tcp(fam, 40000).rst().build())?;
    let (r, moved) = run_counted(&dp, &tcp(fam, 40000).syn().build())?;
    assert_eq!((real_of(&r), moved), (Some(again), only(REASON_FWD_CONN)));
    dp.table.set_sysctl("expire_nodest_conn", 1)?;
    dp.table.edit_real(&s, &fam.real(again, 80, 0))?;
    let (r, moved) = run_counted(&dp, &tcp(fam, 40000).syn().build())?;
    assert_eq!(moved, only(REASON_FWD_NEW));
    assert_ne!(real_of(&r), Some(again));
    Ok(())
});

family_test!(entries_expire_by_their_state_timeout, |dp, fam| {
    let s = fam.sid(Proto::Udp, 53);
    add_service(&mut dp, fam, s, Sched::Rr, None)?;
    dp.table.add_real(&s, &fam.real(11, 53, 1))?;
    dp.table.add_real(&s, &fam.real(12, 53, 1))?;
    let t = fam.sid(Proto::Tcp, 80);
    add_service(&mut dp, fam, t, Sched::Rr, None)?;
    dp.table.add_real(&t, &fam.real(11, 80, 1))?;
    dp.table.set_timeouts(&Timeouts {
        tcp: 0,
        tcpfin: 1,
        udp: 1,
    })?;
    let q = udp(fam, 5000).build();
    dp.run(&q)?;
    let (_, moved) = run_counted(&dp, &q)?;
    assert_eq!(moved, only(REASON_FWD_CONN));
    // A TCP flow in FIN_WAIT takes tcpfin's timeout; an ESTABLISHED one
    // the tcp timeout (unchanged, 900 s).
    dp.run(&tcp(fam, 40000).syn().build())?;
    dp.run(&tcp(fam, 40000).ack().build())?;
    dp.run(&tcp(fam, 40001).syn().build())?;
    dp.run(&tcp(fam, 40001).ack().build())?;
    dp.run(&tcp(fam, 40001).fin().ack().build())?;
    let rows = dp.table.conn_rows()?;
    let est = rows.iter().find(|c| c.cport == 40000).expect("entry");
    let fin = rows.iter().find(|c| c.cport == 40001).expect("entry");
    assert_eq!((est.state, fin.state), ("ESTABLISHED", "FIN_WAIT"));
    assert!(est.expire_secs > 800 && fin.expire_secs <= 1);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (_, moved) = run_counted(&dp, &q)?;
    assert_eq!(moved, only(REASON_FWD_NEW), "expired after the udp timeout");
    let (r, moved) = run_counted(&dp, &tcp(fam, 40001).ack().build())?;
    assert_eq!((r.action, moved), (XDP_PASS, only(REASON_PASS_NO_CONN)));
    let (_, moved) = run_counted(&dp, &tcp(fam, 40000).ack().build())?;
    assert_eq!(moved, only(REASON_FWD_CONN));
    Ok(())
});

family_test!(
    port_zero_service_forwards_every_port_with_one_template,
    |dp, fam| {
        let s = fam.sid(Proto::Tcp, 0);
        add_service(&mut dp, fam, s, Sched::Rr, Some(300))?;
        dp.table.add_real(&s, &fam.real(11, 0, 1))?;
        dp.table.add_real(&s, &fam.real(12, 0, 1))?;
        let a = tcp(fam, 40000).dport(443).syn().build();
        let r = dp.run(&a)?;
        let first = real_of(&r).expect("routed");
        assert_eq!(r.frame, routed(&a, first));
        let (r, moved) = run_counted(&dp, &tcp(fam, 40001).dport(8080).syn().build())?;
        assert_eq!(
            (real_of(&r), moved),
            (Some(first), only(REASON_FWD_TEMPLATE))
        );
        let mut rows: Vec<(u16, u16, u16)> = dp
            .table
            .conn_rows()?
            .into_iter()
            .map(|c| (c.cport, c.vport, c.dport))
            .collect();
        rows.sort();
        assert_eq!(rows, [(0, 0, 0), (40000, 443, 443), (40001, 8080, 8080)]);
        Ok(())
    }
);

family_test!(one_packet_udp_makes_no_lasting_entry, |dp, fam| {
    let s = fam.sid(Proto::Udp, 53);
    dp.table.add_service(&ServiceSpec {
        id: s,
        sched: Sched::Rr,
        persistent: None,
        netmask: fam.host_mask(),
        one_packet: true,
    })?;
    dp.table.add_real(&s, &fam.real(11, 53, 1))?;
    dp.table.add_real(&s, &fam.real(12, 53, 1))?;
    let q = udp(fam, 5000).build();
    let (r, moved) = run_counted(&dp, &q)?;
    let a = real_of(&r).expect("routed");
    assert_eq!(r.frame, routed(&q, a));
    assert_eq!(moved, only(REASON_FWD_ONE_PACKET));
    let (r, moved) = run_counted(&dp, &q)?;
    assert_eq!(
        moved,
        only(REASON_FWD_ONE_PACKET),
        "every datagram scheduled"
    );
    assert_ne!(real_of(&r), Some(a), "rr moves on");
    assert!(dp.table.conn_rows()?.is_empty(), "no entry");
    Ok(())
});

family_test!(icmp_errors_about_a_flow_reach_its_real_server, |dp, fam| {
    let s = fam.sid(Proto::Tcp, 80);
    add_service(&mut dp, fam, s, Sched::Rr, None)?;
    dp.table.add_real(&s, &fam.real(11, 80, 1))?;
    dp.table.add_real(&s, &fam.real(12, 80, 1))?;
    let first = real_of(&dp.run(&tcp(fam, 40000).syn().build())?).expect("routed");
    let router = fam.stranger(254);
    // The real server's large reply, from VIP:80, as a router quotes it.
    let reply = Frame::tcp_ip(fam.vip(), fam.client())
        .ports(80, 40000)
        .ack()
        .payload(&[0u8; 64])
        .build();
    let quote_len = match fam {
        Family::V4 => 28,
        Family::V6 => reply.len() - 14, // as much as fits: the whole packet
    };
    let quote = &reply[14..14 + quote_len];
    let icmp = |q: &[u8], ty: u8, code: u8| {
        Frame::icmp_ip(router, fam.vip(), ty, code)
            .src_mac(CLIENT_MAC)
            .dst_mac(LB_MAC)
            .icmp_rest([0, 0, 0x05, 0xdc])
            .payload(q)
            .build()
    };
    // Fragmentation needed / Packet Too Big above all, and the other errors
    // IPVS relates (IPv4: dest unreach, source quench, time exceeded;
    // IPv6: every type below 128, parameter problem included).
    let errors: &[(u8, u8)] = match fam {
        Family::V4 => &[(3, 4), (3, 1), (4, 0), (11, 0)],
        Family::V6 => &[(2, 0), (1, 4), (1, 3), (3, 0), (4, 0), (100, 0)],
    };
    for &(ty, code) in errors {
        let f = icmp(quote, ty, code);
        let (r, moved) = run_counted(&dp, &f)?;
        assert_eq!(
            r.frame,
            routed(&f, first),
            "type {ty}: only the MACs change"
        );
        assert_eq!(moved, only(REASON_FWD_ICMP), "type {ty}");
    }
    if fam == Family::V4 {
        // Not IPVS's (`ip_vs_in_icmp` takes 3, 4, 11 only): a parameter
        // problem, and an error quoting a later fragment (no ports in it).
        let mut later = quote.to_vec();
        later[6..8].copy_from_slice(&[0x00, 0x01]);
        for f in [icmp(quote, 12, 0), icmp(&later, 3, 4)] {
            let (r, moved) = run_counted(&dp, &f)?;
            assert_eq!(r.action, XDP_PASS);
            assert_eq!(moved, only(REASON_PASS_NOT_L4));
        }
    }
    // The entry is unchanged by them: the flow goes on.
    let (_, moved) = run_counted(&dp, &tcp(fam, 40000).ack().build())?;
    assert_eq!(moved, only(REASON_FWD_CONN));
    // About no known flow, or not an error: the kernel's.
    let other = Frame::tcp_ip(fam.vip(), fam.client())
        .ports(80, 40999)
        .ack()
        .build();
    let (echo, first_err) = match fam {
        Family::V4 => (8, 3),
        Family::V6 => (128, 2),
    };
    for f in [
        icmp(
            &other[14..14 + quote_len.min(other.len() - 14)],
            first_err,
            0,
        ),
        Frame::icmp_ip(router, fam.vip(), echo, 0)
            .dst_mac(LB_MAC)
            .build(),
    ] {
        let (r, moved) = run_counted(&dp, &f)?;
        assert_eq!((r.action, &r.frame), (XDP_PASS, &f));
        assert_eq!(moved, only(REASON_PASS_NOT_L4));
    }
    Ok(())
});

family_test!(
    flows_of_a_deleted_service_are_held_like_a_removed_reals,
    |dp, fam| {
        add_service(&mut dp, fam, fam.sid(Proto::Tcp, 443), Sched::Wrr, None)?;
        let s = fam.sid(Proto::Tcp, 80);
        add_service(&mut dp, fam, s, Sched::Wrr, None)?;
        dp.table.add_real(&s, &fam.real(11, 80, 1))?;
        dp.run(&tcp(fam, 40000).syn().build())?;
        dp.table.delete_service(&s)?;
        let ack = tcp(fam, 40000).ack().build();
        let (r, moved) = run_counted(&dp, &ack)?;
        assert_eq!((r.action, moved), (XDP_DROP, only(REASON_DROP_NODEST)));
        add_service(&mut dp, fam, s, Sched::Wrr, None)?;
        dp.table.add_real(&s, &fam.real(11, 80, 1))?;
        let (r, moved) = run_counted(&dp, &ack)?;
        assert_eq!((r.frame, moved), (routed(&ack, 11), only(REASON_FWD_CONN)));
        dp.table.clear()?;
        let (r, moved) = run_counted(&dp, &ack)?;
        assert_eq!((r.action, moved), (XDP_PASS, only(REASON_PASS_NO_SERVICE)));
        Ok(())
    }
);

family_test!(an_ipv4_and_an_ipv6_service_side_by_side, |dp, fam| {
    // Both families' services on port 80 at once: each family's flows go
    // to its own service's reals only (`fam` picks which one is probed
    // first).
    let other = match fam {
        Family::V4 => Family::V6,
        Family::V6 => Family::V4,
    };
    for (f, base) in [(fam, 11), (other, 21)] {
        let s = f.sid(Proto::Tcp, 80);
        add_service(&mut dp, f, s, Sched::Rr, None)?;
        dp.table.add_real(&s, &f.real(base, 80, 1))?;
        dp.table.add_real(&s, &f.real(base + 1, 80, 1))?;
    }
    for p in 0..6 {
        let a = real_of(&dp.run(&tcp(fam, 41000 + p).syn().build())?).expect("routed");
        let b = real_of(&dp.run(&tcp(other, 41000 + p).syn().build())?).expect("routed");
        assert!((11..=12).contains(&a), "{a}");
        assert!((21..=22).contains(&b), "{b}");
    }
    let rows = dp.table.conn_rows()?;
    assert_eq!(rows.len(), 12);
    for r in rows {
        let is_v6 = r.caddr.is_ipv6();
        assert_eq!((r.vaddr.is_ipv6(), r.daddr.is_ipv6()), (is_v6, is_v6));
    }
    Ok(())
});

family_test!(
    reals_behind_another_interface_are_reached_by_redirect,
    |dp, fam| {
        // Frames arriving on lo, reals behind lab0: redirect out of lab0 with
        // lab0's MAC as source (IPv4: the controller's next hop; IPv6: the
        // program's fib lookup).
        let s = fam.sid(Proto::Tcp, 80);
        add_service(&mut dp, fam, s, Sched::Wrr, None)?;
        dp.table.add_real(&s, &fam.real(11, 80, 1))?;
        dp.set_ingress("lo")?;
        let syn = tcp(fam, 40000).syn().build();
        let r = dp.run(&syn)?;
        assert_eq!(r.action, lb_tests::lb::XDP_REDIRECT);
        let lab0 = lb_user::neigh::if_mac("lab0").expect("lab0 mac");
        let mut want = syn.clone();
        want[0..6].copy_from_slice(&real_mac(11));
        want[6..12].copy_from_slice(&lab0);
        assert_eq!(r.frame, want);
        Ok(())
    }
);

family_test!(
    icmp_errors_are_rate_limited_with_the_other_familys,
    |dp, fam| {
        // One bucket for ICMP and ICMPv6, as the kernel's global limit: a burst
        // of 50 in all, whichever family asks, then one per ms.
        let other = match fam {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        };
        add_service(&mut dp, fam, fam.sid(Proto::Tcp, 80), Sched::Wrr, None)?;
        add_service(&mut dp, other, other.sid(Proto::Tcp, 80), Sched::Wrr, None)?;
        let (mut sent, mut held) = (0u64, 0u64);
        let start = std::time::Instant::now();
        for p in 0..200u16 {
            let f = if p % 2 == 0 { fam } else { other };
            let r = dp.run(&tcp(f, 30000 + p).syn().build())?;
            match r.action {
                XDP_TX => sent += 1,
                XDP_DROP => held += 1,
                a => panic!("unexpected action {a}"),
            }
        }
        let refill = start.elapsed().as_millis() as u64 + 5;
        assert!(
            sent >= 50 && sent <= 50 + refill,
            "{sent} sent in {refill} ms"
        );
        if refill < 150 {
            assert!(held > 0, "the limit held some back");
        }
        assert_eq!(dp.reasons()?[REASON_DROP_REPLY_RATE as usize], held);
        Ok(())
    }
);

family_test!(
    quiescing_with_the_sysctl_on_flushes_templates_at_once,
    |dp, fam| {
        let s = persistent(&mut dp, fam, fam.group_mask())?;
        dp.table.set_sysctl("expire_quiescent_template", 1)?;
        let first = real_of(&dp.run(&tcp(fam, 40000).syn().build())?).expect("routed");
        dp.table.edit_real(&s, &fam.real(first, 80, 0))?;
        // Even with its weight back, the flushed template is not used again.
        dp.table.set_sysctl("expire_quiescent_template", 0)?;
        dp.table.edit_real(&s, &fam.real(first, 80, 1))?;
        let (_, moved) = run_counted(&dp, &syn_from(fam, fam.neighbour(5), 1))?;
        assert_eq!(
            moved,
            only(REASON_FWD_NEW),
            "rescheduled, not by the old template"
        );
        Ok(())
    }
);

family_test!(
    template_lives_while_its_connections_do_and_no_longer,
    |dp, fam| {
        let s = fam.sid(Proto::Tcp, 80);
        dp.table.add_service(&ServiceSpec {
            id: s,
            sched: Sched::Rr,
            persistent: Some(2),
            netmask: fam.group_mask(),
            one_packet: false,
        })?;
        dp.table.add_real(&s, &fam.real(11, 80, 1))?;
        dp.table.add_real(&s, &fam.real(12, 80, 1))?;
        dp.table.set_timeouts(&Timeouts {
            tcp: 0,
            tcpfin: 1,
            udp: 0,
        })?;
        let template_secs = |dp: &Dataplane| -> Result<Option<u64>> {
            Ok(dp
                .table
                .conn_rows()?
                .iter()
                .find(|c| c.cport == 0)
                .map(|c| c.expire_secs))
        };
        let first = real_of(&dp.run(&tcp(fam, 40000).syn().build())?).expect("routed");
        dp.run(&tcp(fam, 40000).ack().build())?;
        assert!(template_secs(&dp)?.expect("template") > 800);
        dp.run(&tcp(fam, 40000).fin().ack().build())?;
        assert!(template_secs(&dp)?.expect("template") <= 2);
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert_eq!(template_secs(&dp)?, None, "expired");
        let (r, moved) = run_counted(&dp, &syn_from(fam, fam.neighbour(7), 2))?;
        assert_eq!(moved, only(REASON_FWD_NEW), "scheduled afresh");
        assert_ne!(real_of(&r), Some(first), "rr moved on");
        Ok(())
    }
);

// --- the hashing schedulers: the kernel's fold, computed here -----------------

/// What the kernel hashes for an address (`ntohl(addr_fold)`): the IPv4
/// address, or the XOR of an IPv6 address's four big-endian words.
fn kernel_fold(a: IpAddr) -> u32 {
    match a {
        IpAddr::V4(v4) => u32::from(v4),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            o.chunks(4)
                .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
                .fold(0, |x, w| x ^ w)
        }
    }
}

/// sh's real for a client (all weights 1, `list` newest first).
fn sh_expected(list: &[u8], addr: IpAddr, port: u16) -> u8 {
    let b = sh_bucket(kernel_fold(addr).wrapping_add(u32::from(port)), 0);
    list[b as usize % list.len()]
}

family_test!(sh_hashes_a_client_as_the_kernel_folds_it, |dp, fam| {
    let s = fam.sid(Proto::Tcp, 80);
    add_service(&mut dp, fam, s, Sched::Sh(SchedFlags::NONE), None)?;
    for i in [11, 12, 13] {
        dp.table.add_real(&s, &fam.real(i, 80, 1))?;
    }
    let list = [13, 12, 11];
    let mut seen = std::collections::BTreeSet::new();
    for c in 1..=16u8 {
        let client = fam.stranger(c);
        let want = sh_expected(&list, client, 0);
        seen.insert(want);
        for sport in [1000, 2000] {
            let f = syn_from(fam, client, sport);
            let (r, moved) = run_counted(&dp, &f)?;
            assert_eq!(r.frame, routed(&f, want), "client {client} port {sport}");
            assert_eq!(moved, only(REASON_FWD_NEW));
        }
    }
    assert!(seen.len() > 1, "clients spread over the reals");
    Ok(())
});

family_test!(sh_fallback_probes_from_the_folded_bucket, |dp, fam| {
    let s = fam.sid(Proto::Tcp, 80);
    let sh = |f: &[u32]| Sched::Sh(SchedFlags(f.iter().fold(0, |a, b| a | b)));
    add_service(&mut dp, fam, s, sh(&[]), None)?;
    for i in [11, 12, 13] {
        dp.table.add_real(&s, &fam.real(i, 80, 1))?;
    }
    let list = [13, 12, 11];
    let client = fam.client();
    let owner = sh_expected(&list, client, 0);
    dp.table.edit_real(&s, &fam.real(owner, 80, 0))?;
    // The client's bucket's real is quiescent: port unreachable.
    let syn = tcp(fam, 40000).syn().build();
    let (r, moved) = run_counted(&dp, &syn)?;
    assert_port_unreachable(fam, &r, &syn);
    assert_eq!(moved, only(REASON_TX_ICMP_UNREACH));
    // sh-fallback: the first available real probing from the bucket of the
    // folded address, as the kernel probes.
    dp.table.edit_service(&ServiceSpec {
        id: s,
        sched: sh(&[SVC_F_SCHED_FALLBACK]),
        persistent: None,
        netmask: fam.host_mask(),
        one_packet: false,
    })?;
    let fold = kernel_fold(client);
    let b = sh_bucket(fold, 0);
    let want = (0..256)
        .map(|i| list[sh_bucket(fold, (i + b) % 256) as usize % 3])
        .find(|&r| r != owner)
        .expect("an available real");
    let syn = tcp(fam, 40001).syn().build();
    let (r, moved) = run_counted(&dp, &syn)?;
    assert_eq!(r.frame, routed(&syn, want));
    assert_eq!(moved, only(REASON_FWD_NEW));
    Ok(())
});

lab_test!(ipv6_clients_of_equal_folds_share_an_sh_real, |dp| {
    let fam = Family::V6;
    let s = fam.sid(Proto::Tcp, 80);
    add_service(&mut dp, fam, s, Sched::Sh(SchedFlags::NONE), None)?;
    for i in 11..=20 {
        dp.table.add_real(&s, &fam.real(i, 80, 1))?;
    }
    // Both fold to 0x20010db9 (docs/SEMANTICS.md: the kernel's fold).
    let a: Ipv6Addr = "2001:db8::1".parse()?;
    let b: Ipv6Addr = "0:1::2001:db8".parse()?;
    assert_eq!(kernel_fold(a.into()), 0x2001_0db9);
    assert_eq!(kernel_fold(b.into()), 0x2001_0db9);
    let ra = real_of(&dp.run(&syn_from(fam, a.into(), 1))?).expect("routed");
    for sport in 2..10 {
        let rb = real_of(&dp.run(&syn_from(fam, b.into(), sport))?).expect("routed");
        assert_eq!(rb, ra);
    }
    Ok(())
});

family_test!(mh_hashes_a_client_as_the_kernel_folds_it, |dp, fam| {
    let s = fam.sid(Proto::Tcp, 80);
    add_service(&mut dp, fam, s, Sched::Mh(SchedFlags::NONE), None)?;
    for i in 11..=15 {
        dp.table.add_real(&s, &fam.real(i, 80, 1))?;
    }
    let dests: Vec<lb_user::hash_sched::MhDest> = (11..=15u8)
        .rev()
        .map(|i| lb_user::hash_sched::MhDest {
            addr: lb_user::addr::to_addr(fam.rs(i)),
            port: 80u16.to_be_bytes(),
            last_weight: 1,
        })
        .collect();
    let t = lb_user::hash_sched::mh_table(&dests).expect("table");
    for c in 1..=30u8 {
        let client = fam.stranger(c);
        let pos = t.pos[mh_slot(kernel_fold(client)) as usize];
        let want = 15 - pos as u8;
        let got = real_of(&dp.run(&syn_from(fam, client, 1000))?);
        assert_eq!(got, Some(want), "client {client}");
    }
    Ok(())
});

family_test!(
    dh_and_lblc_hash_the_vip_as_the_kernel_folds_it,
    |dp, fam| {
        let s = fam.sid(Proto::Tcp, 80);
        add_service(&mut dp, fam, s, Sched::Dh, None)?;
        for i in [11, 12, 13] {
            dp.table.add_real(&s, &fam.real(i, 80, 1))?;
        }
        let b = sh_bucket(kernel_fold(fam.vip()), 0);
        let want = [13, 12, 11][b as usize % 3];
        for c in 1..=6u8 {
            let f = syn_from(fam, fam.stranger(c), 1000 + u16::from(c));
            let (r, moved) = run_counted(&dp, &f)?;
            assert_eq!(r.frame, routed(&f, want), "client {c}");
            assert_eq!(moved, only(REASON_FWD_NEW));
        }
        // lblc remembers the VIP's real for every client.
        let l = fam.sid(Proto::Tcp, 8080);
        add_service(&mut dp, fam, l, Sched::Lblc, None)?;
        dp.table.add_real(&l, &fam.real(11, 8080, 100))?;
        dp.table.add_real(&l, &fam.real(12, 8080, 100))?;
        let to = |c: u8| {
            Frame::tcp_ip(fam.stranger(c), fam.vip())
                .dst_mac(LB_MAC)
                .ports(1000, 8080)
                .syn()
                .build()
        };
        let first = real_of(&dp.run(&to(1))?).expect("routed");
        for c in 2..=6u8 {
            assert_eq!(real_of(&dp.run(&to(c))?), Some(first), "client {c}");
        }
        Ok(())
    }
);

// --- IPv6 only: extension headers, ICMPv6, malformed frames ------------------

fn tcp6(sport: u16) -> Frame {
    tcp(Family::V6, sport)
}

lab_test!(ipv6_extension_headers_are_walked_up_to_four, |dp| {
    let fam = Family::V6;
    let s = fam.sid(Proto::Tcp, 80);
    add_service(&mut dp, fam, s, Sched::Rr, None)?;
    dp.table.add_real(&s, &fam.real(11, 80, 1))?;
    // Hop-by-hop, routing, destination options: the transport header is
    // found behind them, the frame routed unchanged.
    let chains: [&[(u8, u8)]; 4] = [
        &[(0, 0)],
        &[(60, 3)],
        &[(0, 0), (43, 2), (60, 0)],
        &[(0, 1), (60, 0), (43, 0), (60, 5)],
    ];
    for (n, chain) in chains.iter().enumerate() {
        let mut syn = tcp6(40000 + n as u16).syn();
        for &(ty, len) in *chain {
            syn = syn.ipv6_ext(ty, len);
        }
        let syn = syn.build();
        let (r, moved) = run_counted(&dp, &syn)?;
        assert_eq!(r.frame, routed(&syn, 11), "chain {chain:?}");
        assert_eq!(moved, only(REASON_FWD_NEW));
        // And its next segment, with the same chain, finds the entry.
        let mut ack = tcp6(40000 + n as u16).ack();
        for &(ty, len) in *chain {
            ack = ack.ipv6_ext(ty, len);
        }
        let (_, moved) = run_counted(&dp, &ack.build())?;
        assert_eq!(moved, only(REASON_FWD_CONN));
    }
    // UDP behind a chain too.
    let u = fam.sid(Proto::Udp, 53);
    add_service(&mut dp, fam, u, Sched::Rr, None)?;
    dp.table.add_real(&u, &fam.real(12, 53, 1))?;
    let q = udp(fam, 5000).ipv6_ext(0, 0).ipv6_ext(60, 0).build();
    assert_eq!(dp.run(&q)?.frame, routed(&q, 12));
    Ok(())
});

lab_test!(ipv6_port_unreachable_quotes_long_extension_headers, |dp| {
    // Extension headers of any length within the bound are quoted whole
    // with 8 bytes of TCP, up to the 1,232 bytes icmp6_send quotes at most.
    let fam = Family::V6;
    add_service(&mut dp, fam, fam.sid(Proto::Tcp, 80), Sched::Rr, None)?;
    for (n, chain) in [
        vec![(60u8, 40u8)],
        vec![(0, 26), (60, 0)],
        vec![(0, 60), (43, 60), (60, 60), (60, 60)],
    ]
    .into_iter()
    .enumerate()
    {
        let mut syn = tcp6(40000 + n as u16).syn();
        for (ty, len) in chain {
            syn = syn.ipv6_ext(ty, len);
        }
        let syn = syn.build();
        let (r, moved) = run_counted(&dp, &syn)?;
        assert_eq!(moved, only(REASON_TX_ICMP_UNREACH), "chain {n}");
        assert_port_unreachable(fam, &r, &syn);
    }
    Ok(())
});

lab_test!(ipv6_informational_icmpv6_goes_to_the_kernel, |dp| {
    let fam = Family::V6;
    let s = fam.sid(Proto::Tcp, 80);
    add_service(&mut dp, fam, s, Sched::Rr, None)?;
    dp.table.add_real(&s, &fam.real(11, 80, 1))?;
    dp.run(&tcp6(40000).syn().build())?;
    let quote = Frame::tcp_ip(fam.vip(), fam.client())
        .ports(80, 40000)
        .ack()
        .build();
    // Echo request/reply, router solicitation/advertisement, neighbour
    // solicitation/advertisement, redirect, MLD: even quoting a flow.
    for ty in [128u8, 129, 133, 134, 135, 136, 137, 130, 143] {
        let f = Frame::icmp_ip(fam.client(), fam.vip(), ty, 0)
            .src_mac(CLIENT_MAC)
            .dst_mac(LB_MAC)
            .payload(&quote[14..])
            .build();
        let (r, moved) = run_counted(&dp, &f)?;
        assert_eq!((r.action, &r.frame), (XDP_PASS, &f), "type {ty}");
        assert_eq!(moved, only(REASON_PASS_NOT_L4), "type {ty}");
    }
    // Neighbour solicitation to the solicited-node multicast group: not for
    // us at the Ethernet layer already.
    let ns = Frame::icmp_ip(
        fam.client(),
        "ff02::1:ff00:10".parse::<Ipv6Addr>()?.into(),
        135,
        0,
    )
    .dst_mac([0x33, 0x33, 0xff, 0, 0, 0x10])
    .build();
    let (r, moved) = run_counted(&dp, &ns)?;
    assert_eq!((r.action, moved), (XDP_PASS, only(REASON_PASS_NOT_FOR_US)));
    Ok(())
});

lab_test!(ipv6_icmp_error_quoting_ext_headers_reaches_the_real, |dp| {
    let fam = Family::V6;
    let s = fam.sid(Proto::Udp, 53);
    add_service(&mut dp, fam, s, Sched::Rr, None)?;
    dp.table.add_real(&s, &fam.real(11, 53, 1))?;
    dp.table.add_real(&s, &fam.real(12, 53, 1))?;
    let first = real_of(&dp.run(&udp(fam, 5000).build())?).expect("routed");
    // The real's reply carried a destination options header.
    let reply = Frame::udp_ip(fam.vip(), fam.client())
        .ports(53, 5000)
        .ipv6_ext(60, 0)
        .payload(&[1; 32])
        .build();
    let ptb = Frame::icmp_ip(fam.stranger(1), fam.vip(), 2, 0)
        .src_mac(CLIENT_MAC)
        .dst_mac(LB_MAC)
        .icmp_rest(1280u32.to_be_bytes())
        .payload(&reply[14..])
        .build();
    let (r, moved) = run_counted(&dp, &ptb)?;
    assert_eq!(
        (r.frame, moved),
        (routed(&ptb, first), only(REASON_FWD_ICMP))
    );
    // Quoting only the headers and 4 bytes of UDP (the ports) is enough.
    let short = Frame::icmp_ip(fam.stranger(1), fam.vip(), 1, 0)
        .dst_mac(LB_MAC)
        .payload(&reply[14..14 + 48 + 4])
        .build();
    assert_eq!(real_of(&dp.run(&short)?), Some(first));
    // Fewer than the ports: the kernel's.
    let shorter = Frame::icmp_ip(fam.stranger(1), fam.vip(), 1, 0)
        .dst_mac(LB_MAC)
        .payload(&reply[14..14 + 48 + 3])
        .build();
    let (r, moved) = run_counted(&dp, &shorter)?;
    assert_eq!((r.action, moved), (XDP_PASS, only(REASON_PASS_NOT_L4)));
    Ok(())
});

lab_test!(
    ipv6_icmp_error_about_a_first_fragment_reaches_the_real,
    |dp| {
        let fam = Family::V6;
        let s = fam.sid(Proto::Udp, 53);
        add_service(&mut dp, fam, s, Sched::Rr, None)?;
        dp.table.add_real(&s, &fam.real(11, 53, 1))?;
        dp.table.add_real(&s, &fam.real(12, 53, 1))?;
        let first = real_of(&dp.run(&udp(fam, 5001).build())?).expect("routed");
        let ptb_about = |reply: &[u8]| {
            Frame::icmp_ip(fam.stranger(1), fam.vip(), 2, 0)
                .dst_mac(LB_MAC)
                .icmp_rest(1280u32.to_be_bytes())
                .payload(&reply[14..])
                .build()
        };
        // The real's large reply went out fragmented: a "packet too big" about
        // its first fragment is about the flow (`ipv6_find_hdr` walks a first
        // fragment's header), so it reaches the real.
        let first_fragment = Frame::udp_ip(fam.vip(), fam.client())
            .ports(53, 5001)
            .ipv6_fragment(0, true)
            .payload(&[1; 32])
            .build();
        let ptb = ptb_about(&first_fragment);
        let (r, moved) = run_counted(&dp, &ptb)?;
        assert_eq!(
            (r.frame, moved),
            (routed(&ptb, first), only(REASON_FWD_ICMP))
        );
        // A later fragment carries no ports: the kernel's.
        let later = Frame::udp_ip(fam.vip(), fam.client())
            .ports(53, 5001)
            .ipv6_fragment(1232, false)
            .payload(&[1; 32])
            .build();
        let (r, moved) = run_counted(&dp, &ptb_about(&later))?;
        assert_eq!((r.action, moved), (XDP_PASS, only(REASON_PASS_NOT_L4)));
        Ok(())
    }
);

lab_test!(
    ipv6_icmp_error_quoting_ipv4_mapped_addresses_is_no_flows,
    |dp| {
        // A live IPv4 flow, whose key holds its addresses IPv4-mapped.
        let v4 = Family::V4;
        let s = v4.sid(Proto::Udp, 53);
        add_service(&mut dp, v4, s, Sched::Rr, None)?;
        dp.table.add_real(&s, &v4.real(11, 53, 1))?;
        assert!(real_of(&dp.run(&udp(v4, 5002).build())?).is_some());
        let mapped = |ip: IpAddr| match ip {
            IpAddr::V4(a) => IpAddr::V6(a.to_ipv6_mapped()),
            v6 => v6,
        };
        // An ICMPv6 error quoting that flow in IPv4-mapped form must not reach
        // the IPv4 real.
        let quoted = Frame::udp_ip(mapped(v4.vip()), mapped(v4.client()))
            .ports(53, 5002)
            .payload(&[1; 8])
            .build();
        let ptb = Frame::icmp_ip(Family::V6.stranger(1), Family::V6.vip(), 2, 0)
            .dst_mac(LB_MAC)
            .icmp_rest(1280u32.to_be_bytes())
            .payload(&quoted[14..])
            .build();
        let (r, moved) = run_counted(&dp, &ptb)?;
        assert_eq!((r.action, moved), (XDP_PASS, only(REASON_PASS_NOT_L4)));
        Ok(())
    }
);

lab_test!(ipv6_hop_by_hop_header_not_first_is_malformed, |dp| {
    let fam = Family::V6;
    let s = fam.sid(Proto::Tcp, 80);
    add_service(&mut dp, fam, s, Sched::Wrr, None)?;
    dp.table.add_real(&s, &fam.real(11, 80, 1))?;
    // First: walked, the flow is balanced.
    let ok = tcp6(40100).syn().ipv6_ext(0, 0).ipv6_ext(60, 0).build();
    assert!(real_of(&dp.run(&ok)?).is_some());
    // After a destination options header: the kernel drops such a packet.
    let bad = tcp6(40101).syn().ipv6_ext(60, 0).ipv6_ext(0, 0).build();
    let (r, moved) = run_counted(&dp, &bad)?;
    assert_eq!((r.action, moved), (XDP_PASS, only(REASON_PASS_BAD_IP)));
    Ok(())
});

/// Sets the IPv6 payload length of a frame without changing anything else.
fn set_payload_len(f: &mut [u8], len: u16) {
    f[18..20].copy_from_slice(&len.to_be_bytes());
}

lab_test!(malformed_ipv6_frames_are_never_forwarded, |dp| {
    let fam = Family::V6;
    let s = fam.sid(Proto::Tcp, 80);
    add_service(&mut dp, fam, s, Sched::Wrr, None)?;
    dp.table.add_real(&s, &fam.real(11, 80, 1))?;
    let good = tcp6(40000).syn().build();
    let mut cases: Vec<(&str, Vec<u8>, u32)> = Vec::new();
    let mut f = good.clone();
    f.truncate(14 + 39);
    cases.push(("truncated ipv6 header", f, REASON_PASS_TRUNCATED));
    let mut f = good.clone();
    f[14] = 0x40;
    cases.push(("version 4 in an ipv6 frame", f, REASON_PASS_BAD_IP));
    let mut f = good.clone();
    set_payload_len(&mut f, 21);
    cases.push(("payload length beyond the frame", f, REASON_PASS_BAD_IP));
    let mut f = good.clone();
    set_payload_len(&mut f, 0);
    cases.push(("jumbogram (payload length 0)", f, REASON_PASS_BAD_IP));
    let mut f = good.clone();
    set_payload_len(&mut f, 19);
    cases.push((
        "payload length cuts the tcp header",
        f,
        REASON_PASS_TRUNCATED,
    ));
    let mut f = tcp6(40000).syn().ipv6_ext(0, 0).build();
    set_payload_len(&mut f, 8 + 19);
    cases.push((
        "payload length cuts the tcp header behind an ext header",
        f,
        REASON_PASS_TRUNCATED,
    ));
    let mut f = good.clone();
    f.truncate(14 + 40 + 19);
    set_payload_len(&mut f, 19);
    cases.push(("truncated tcp header", f, REASON_PASS_TRUNCATED));
    let mut f = good.clone();
    f[14 + 40 + 12] = 0x40;
    cases.push(("tcp data offset below 5", f, REASON_PASS_TRUNCATED));
    let mut f = tcp6(40000).syn().ipv6_ext(0, 0).build();
    f.truncate(14 + 40 + 1);
    set_payload_len(&mut f, 1);
    cases.push(("truncated extension header", f, REASON_PASS_TRUNCATED));
    // An extension header whose length runs past the payload.
    let mut f = tcp6(40000).syn().ipv6_ext(60, 0).build();
    f[14 + 40 + 1] = 200;
    cases.push((
        "extension header past the payload",
        f,
        REASON_PASS_TRUNCATED,
    ));
    let mut five = tcp6(40000).syn();
    for _ in 0..5 {
        five = five.ipv6_ext(60, 0);
    }
    cases.push((
        "five extension headers",
        five.build(),
        REASON_PASS_EXT_HEADERS,
    ));
    let mut long = tcp6(40000).syn();
    for ty in [0, 43, 60, 60, 43, 60] {
        long = long.ipv6_ext(ty, 1);
    }
    cases.push((
        "six extension headers",
        long.build(),
        REASON_PASS_EXT_HEADERS,
    ));
    cases.push((
        "first fragment",
        tcp6(40000).syn().ipv6_fragment(0, true).build(),
        REASON_PASS_FRAGMENT,
    ));
    cases.push((
        "later fragment",
        tcp6(40000).syn().ipv6_fragment(64, false).build(),
        REASON_PASS_FRAGMENT,
    ));
    cases.push((
        "atomic fragment behind a hop-by-hop header",
        tcp6(40000)
            .syn()
            .ipv6_ext(0, 0)
            .ipv6_fragment(0, false)
            .build(),
        REASON_PASS_FRAGMENT,
    ));
    cases.push((
        "fragment header as the fifth",
        {
            let mut f = tcp6(40000).syn();
            for _ in 0..4 {
                f = f.ipv6_ext(60, 0);
            }
            f.ipv6_fragment(0, true).build()
        },
        REASON_PASS_FRAGMENT,
    ));
    cases.push((
        "authentication header",
        tcp6(40000).syn().ipv6_ext(51, 1).build(),
        REASON_PASS_NOT_L4,
    ));
    cases.push((
        "no next header",
        Frame::ip_any(fam.client(), fam.vip(), 59)
            .dst_mac(LB_MAC)
            .payload(&[0; 8])
            .build(),
        REASON_PASS_NOT_L4,
    ));
    cases.push((
        "esp",
        Frame::ip_any(fam.client(), fam.vip(), 50)
            .dst_mac(LB_MAC)
            .payload(&[0; 16])
            .build(),
        REASON_PASS_NOT_L4,
    ));
    for (what, src) in [
        ("from ::", "::"),
        ("from ::1", "::1"),
        ("from multicast", "ff02::1"),
        ("from an ipv4-mapped address", "::ffff:198.51.100.10"),
    ] {
        let f = Frame::ipv6_tcp(src.parse()?, VIP6)
            .dst_mac(LB_MAC)
            .ports(1, 80)
            .syn()
            .build();
        cases.push((what, f, REASON_PASS_BAD_IP));
    }
    cases.push((
        "to an ipv4-mapped address",
        Frame::ipv6_tcp(CLIENT6, "::ffff:203.0.113.10".parse()?)
            .dst_mac(LB_MAC)
            .ports(1, 80)
            .syn()
            .build(),
        REASON_PASS_BAD_IP,
    ));
    cases.push((
        "ipv6 ethertype, ethernet only",
        good[..14].to_vec(),
        REASON_PASS_TRUNCATED,
    ));
    cases.push((
        "802.1Q tagged",
        tcp6(40000).syn().vlan(7).build(),
        REASON_PASS_VLAN,
    ));
    for (what, f, reason) in cases {
        let (r, moved) = run_counted(&dp, &f)?;
        assert_eq!(r.action, XDP_PASS, "{what}");
        assert_eq!(r.frame, f, "{what}: unchanged");
        assert_eq!(moved, only(reason), "{what}");
    }
    assert!(dp.table.conn_rows()?.is_empty(), "no entry");
    // A short payload length with trailing bytes (Ethernet padding) is fine.
    let mut f = good.clone();
    f.extend_from_slice(&[0; 6]);
    assert_eq!(dp.run(&f)?.frame, routed(&f, 11));
    Ok(())
});

lab_test!(ipv6_icmp_errors_that_quote_no_flow_are_the_kernels, |dp| {
    let fam = Family::V6;
    let s = fam.sid(Proto::Tcp, 80);
    add_service(&mut dp, fam, s, Sched::Rr, None)?;
    dp.table.add_real(&s, &fam.real(11, 80, 1))?;
    dp.run(&tcp6(40000).syn().build())?;
    let reply = Frame::tcp_ip(fam.vip(), fam.client())
        .ports(80, 40000)
        .ack()
        .build();
    let err = |q: &[u8]| {
        Frame::icmp_ip(fam.stranger(1), fam.vip(), 2, 0)
            .dst_mac(LB_MAC)
            .payload(q)
            .build()
    };
    let mut v4_inner = reply[14..].to_vec();
    v4_inner[0] = 0x45;
    // A later fragment (a first one is walked over: its error is about the
    // flow, see ipv6_icmp_error_about_a_first_fragment_reaches_the_real).
    let mut frag_inner = Frame::tcp_ip(fam.vip(), fam.client())
        .ports(80, 40000)
        .ipv6_fragment(8, false)
        .build()[14..]
        .to_vec();
    frag_inner.truncate(40 + 8 + 8);
    let mut icmp_inner = Frame::icmp_ip(fam.vip(), fam.client(), 1, 4).build()[14..].to_vec();
    icmp_inner.truncate(48);
    for (what, f) in [
        (
            "quote shorter than an ipv6 header",
            err(&reply[14..14 + 39]),
        ),
        ("quote of version 4", err(&v4_inner)),
        ("quote of a later fragment", err(&frag_inner)),
        ("quote of an icmpv6 packet", err(&icmp_inner)),
    ] {
        let (r, moved) = run_counted(&dp, &f)?;
        assert_eq!((r.action, &r.frame), (XDP_PASS, &f), "{what}");
        assert_eq!(moved, only(REASON_PASS_NOT_L4), "{what}");
    }
    Ok(())
});

lab_test!(ipv6_reals_are_resolved_by_the_programs_fib_lookup, |dp| {
    // The controller has no IPv6 next hops yet: the program asks the
    // kernel (`bpf_fib_lookup`) on the first new flow, and a real the
    // kernel has no neighbour for is dropped as such.
    let fam = Family::V6;
    let s = fam.sid(Proto::Tcp, 80);
    add_service(&mut dp, fam, s, Sched::Rr, None)?;
    let unknown: Ipv6Addr = "2001:db8:0:1::1:1".parse()?;
    dp.table.add_real(
        &s,
        &lb_user::model::RealSpec {
            id: lb_user::model::RealId {
                addr: unknown.into(),
                port: 80,
            },
            ..fam.real(11, 80, 1)
        },
    )?;
    let (r, moved) = run_counted(&dp, &tcp6(40000).syn().build())?;
    assert_eq!((r.action, moved), (XDP_DROP, only(REASON_DROP_NO_NEIGH)));
    dp.table.delete_real(
        &s,
        &lb_user::model::RealId {
            addr: unknown.into(),
            port: 80,
        },
    )?;
    dp.table.add_real(&s, &fam.real(42, 80, 1))?;
    let syn = tcp6(40001).syn().build();
    assert_eq!(dp.run(&syn)?.frame, routed(&syn, 42));
    Ok(())
});

// --- live counts (docs/SEMANTICS.md §6.4), the counts suite's twins ---------

/// (ActiveConn, InActConn) of real `i` of `id`, as `-L` shows them.
fn shown(dp: &Dataplane, fam: Family, id: &ServiceId, i: u8) -> Result<(u64, u64)> {
    let views = dp.table.views(None)?;
    let v = views.iter().find(|v| v.spec.id == *id).expect("listed");
    let r = v
        .reals
        .iter()
        .find(|r| r.spec.id.addr == fam.rs(i))
        .expect("real listed");
    Ok((r.active_conns, r.inactive_conns))
}

/// The program's counts equal the entries of the table, slot by slot.
fn consistent(dp: &Dataplane) -> Result<()> {
    let n = dp.table.dest_table()?.len() as u32;
    let kept = dp.table.dest_conns(n)?;
    let walked = dp.table.walked_dest_conns(n)?;
    anyhow::ensure!(kept == walked, "counts {kept:?} but entries {walked:?}");
    Ok(())
}

family_test!(counts_follow_states_removal_and_the_sweeper, |dp, fam| {
    let t = fam.sid(Proto::Tcp, 80);
    add_service(&mut dp, fam, t, Sched::Rr, None)?;
    dp.table.add_real(&t, &fam.real(11, 80, 1))?;
    dp.table.add_real(&t, &fam.real(12, 80, 1))?;
    let r = real_of(&dp.run(&tcp(fam, 40000).syn().build())?).expect("routed");
    assert_eq!(shown(&dp, fam, &t, r)?, (1, 0));
    dp.run(&tcp(fam, 40000).ack().build())?;
    assert_eq!(shown(&dp, fam, &t, r)?, (1, 0));
    dp.run(&tcp(fam, 40000).fin().ack().build())?;
    assert_eq!(shown(&dp, fam, &t, r)?, (0, 1));
    consistent(&dp)?;
    // Removed with expire_nodest_conn=1: the entry and its count go.
    dp.table.set_sysctl("expire_nodest_conn", 1)?;
    dp.run(&tcp(fam, 40001).syn().build())?;
    dp.table.delete_real(&t, &fam.rid(r, 80))?;
    dp.run(&tcp(fam, 40000).ack().build())?;
    consistent(&dp)?;
    // UDP entries are inactive, and the sweeper expires them on its own.
    let u = fam.sid(Proto::Udp, 53);
    add_service(&mut dp, fam, u, Sched::Rr, None)?;
    dp.table.add_real(&u, &fam.real(11, 53, 1))?;
    dp.table.add_real(&u, &fam.real(12, 53, 1))?;
    dp.table.set_timeouts(&Timeouts {
        tcp: 900,
        tcpfin: 120,
        udp: 1,
    })?;
    dp.arm_sweeper()?;
    for port in 0..20 {
        real_of(&dp.run(&udp(fam, 50000 + port).build())?).expect("routed");
    }
    assert_eq!(shown(&dp, fam, &u, 11)?, (0, 10));
    assert_eq!(shown(&dp, fam, &u, 12)?, (0, 10));
    consistent(&dp)?;
    lb_tests::lb::wait_for(
        "the udp entries and counts expired",
        std::time::Duration::from_secs(5),
        || {
            let gone = shown(&dp, fam, &u, 11)? == (0, 0) && shown(&dp, fam, &u, 12)? == (0, 0);
            Ok(gone.then_some(()))
        },
    )?;
    consistent(&dp)
});
