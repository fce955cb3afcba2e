//! The real XDP program, fed crafted frames through BPF_PROG_TEST_RUN: every
//! branch of the packet path, with the verdict, the whole output frame and
//! the outcome counters checked. Provisioned through the same `Table` that
//! lbctl uses.

use std::net::Ipv4Addr;

use anyhow::Result;
use lb_common::*;
use lb_tests::fixture::{CLIENT, VIP, real, rs, sid};
use lb_tests::{
    frame::{self, Frame, mutate},
    lab_test,
    lb::{Dataplane, RunResult, XDP_DROP, XDP_PASS, XDP_TX, only, real_of, routed, run_counted},
};
use lb_user::model::{Proto, RealId, Sched, ServiceId, ServiceSpec};

/// MAC of the load balancer's interface, as the client's frames carry it.
const LB_MAC: [u8; 6] = frame::DOC_DST_MAC;
const CLIENT_MAC: [u8; 6] = frame::DOC_SRC_MAC;

fn add_service(
    dp: &mut Dataplane,
    id: ServiceId,
    sched: Sched,
    persistent: Option<u32>,
) -> Result<()> {
    dp.table.add_service(&ServiceSpec {
        id,
        sched,
        persistent,
        netmask: Ipv4Addr::BROADCAST.into(),
        one_packet: false,
    })?;
    Ok(())
}

/// Real server `i` on port 80.
fn rid(i: u8) -> RealId {
    RealId {
        addr: rs(i).into(),
        port: 80,
    }
}

fn tcp(sport: u16) -> Frame {
    Frame::tcp(CLIENT, VIP)
        .src_mac(CLIENT_MAC)
        .dst_mac(LB_MAC)
        .ports(sport, 80)
}

/// The ICMP port unreachable the kernel would send (§1.3), checked field by
/// field with the independent parser.
fn assert_port_unreachable(r: &RunResult, input: &[u8]) {
    assert_eq!(r.action, XDP_TX);
    let p = frame::parse(&r.frame).expect("valid lengths and checksums");
    assert_eq!(p.dst_mac, CLIENT_MAC);
    assert_eq!(p.src_mac, LB_MAC);
    let ip = p.ipv4().expect("ipv4");
    assert_eq!((ip.src, ip.dst, ip.protocol), (VIP, CLIENT, 1));
    assert!(ip.ttl > 0);
    let icmp = p.icmp().expect("icmp");
    assert_eq!((icmp.ty, icmp.code), (3, 3));
    let q = icmp.quoted_ipv4().expect("quoted header");
    assert_eq!((q.src, q.dst), (CLIENT, VIP));
    let l3 = mutate::l3_offset(input).unwrap();
    let ihl = ((input[l3] & 0x0f) as usize) * 4;
    assert_eq!(
        icmp.payload,
        input[l3..l3 + ihl + 8].to_vec(),
        "original header + 8 bytes"
    );
}

lab_test!(malformed_frames_are_never_forwarded, |dp| {
    let s = sid(Proto::Tcp, 80);
    add_service(&mut dp, s, Sched::Wrr, None)?;
    dp.table.add_real(&s, &real(11, 80, 1))?;
    let good = tcp(40000).syn().build();
    let l3 = 14;
    let mut cases: Vec<(&str, Vec<u8>, u32)> = Vec::new();
    let mut f = good.clone();
    mutate::truncate(&mut f, 14);
    cases.push(("ethernet only", f, REASON_PASS_TRUNCATED));
    let mut f = good.clone();
    mutate::truncate(&mut f, l3 + 19);
    cases.push(("truncated ip header", f, REASON_PASS_TRUNCATED));
    let mut f = good.clone();
    mutate::set_ihl(&mut f, 4);
    cases.push(("ihl below 5", f, REASON_PASS_BAD_IP));
    let mut f = good.clone();
    mutate::set_version(&mut f, 6);
    cases.push(("version 6 in an ipv4 frame", f, REASON_PASS_BAD_IP));
    let mut f = good.clone();
    mutate::set_total_len(&mut f, (good.len() - l3 + 1) as u16);
    cases.push(("total length beyond the frame", f, REASON_PASS_BAD_IP));
    let mut f = good.clone();
    mutate::set_total_len(&mut f, 19);
    cases.push(("total length below the header", f, REASON_PASS_BAD_IP));
    let mut f = good.clone();
    mutate::truncate(&mut f, l3 + 20 + 19);
    mutate::set_total_len(&mut f, 39);
    cases.push(("truncated tcp header", f, REASON_PASS_TRUNCATED));
    let mut f = good.clone();
    f[l3 + 20 + 12] = 0x40; // doff 4
    cases.push(("tcp data offset below 5", f, REASON_PASS_TRUNCATED));
    cases.push((
        "first fragment",
        tcp(40000).syn().frag(0, true).build(),
        REASON_PASS_FRAGMENT,
    ));
    cases.push((
        "later fragment",
        tcp(40000).syn().frag(64, false).build(),
        REASON_PASS_FRAGMENT,
    ));
    cases.push((
        "802.1Q tagged",
        tcp(40000).syn().vlan(7).build(),
        REASON_PASS_VLAN,
    ));
    // The program parses IPv6 too: a SYN to an address of no service is
    // passed as such.
    cases.push((
        "ipv6 to no service",
        Frame::ipv6_tcp("2001:db8::1".parse()?, "2001:db8::2".parse()?)
            .syn()
            .build(),
        REASON_PASS_NO_SERVICE,
    ));
    cases.push(("arp", Frame::arp(CLIENT, VIP).build(), REASON_PASS_NOT_IP));
    cases.push((
        "icmp to the vip",
        Frame::icmp(CLIENT, VIP, 8, 0).build(),
        REASON_PASS_NOT_L4,
    ));
    for (what, f, reason) in cases {
        let (r, moved) = run_counted(&dp, &f)?;
        assert_eq!(r.action, XDP_PASS, "{what}");
        assert_eq!(r.frame, f, "{what}: unchanged");
        assert_eq!(moved, only(reason), "{what}");
    }
    // IP options are fine: routed with the options intact.
    let f = tcp(40001)
        .syn()
        .ip_options(&[1, 1, 1, 1, 1, 1, 1, 0])
        .build();
    assert_eq!(dp.run(&f)?.frame, routed(&f, 11));
    assert!(dp.table.conn_rows()?.iter().all(|c| c.cport == 40001));
    Ok(())
});

lab_test!(wrr_picks_in_the_kernels_exact_order_on_one_cpu, |dp| {
    // docs/SEMANTICS.md §5.2: R1=4, R2=3, R3=2 added in that order → R3, R2, R1,
    // then the cycle R1, R2, R1, R3, R2, R1, R3, R2, R1.
    let s = sid(Proto::Tcp, 80);
    add_service(&mut dp, s, Sched::Wrr, None)?;
    dp.table.add_real(&s, &real(11, 80, 4))?;
    dp.table.add_real(&s, &real(12, 80, 3))?;
    dp.table.add_real(&s, &real(13, 80, 2))?;
    let mut got = Vec::new();
    for p in 0..21u16 {
        got.push(real_of(&dp.run(&tcp(41000 + p).syn().build())?).expect("routed"));
    }
    let cycle = [11, 12, 11, 13, 12, 11, 13, 12, 11];
    let mut want = vec![13, 12, 11];
    want.extend(cycle);
    want.extend(cycle);
    assert_eq!(got, want);
    Ok(())
});

fn persistent(dp: &mut Dataplane, mask: Ipv4Addr) -> Result<ServiceId> {
    let s = sid(Proto::Tcp, 80);
    dp.table.add_service(&ServiceSpec {
        id: s,
        sched: Sched::Rr,
        persistent: Some(300),
        netmask: mask.into(),
        one_packet: false,
    })?;
    dp.table.add_real(&s, &real(11, 80, 1))?;
    dp.table.add_real(&s, &real(12, 80, 1))?;
    Ok(s)
}

lab_test!(persistence_template_sends_a_client_to_its_real, |dp| {
    persistent(&mut dp, "255.255.255.0".parse()?)?;
    let first = real_of(&dp.run(&tcp(40000).syn().build())?).expect("routed");
    for p in 1..6 {
        let (r, moved) = run_counted(&dp, &tcp(40000 + p).syn().build())?;
        assert_eq!(real_of(&r), Some(first));
        assert_eq!(moved, only(REASON_FWD_TEMPLATE));
    }
    // Another client of the same /24 shares the template (-M).
    let neighbour = Frame::tcp(Ipv4Addr::new(198, 51, 100, 99), VIP)
        .ports(1234, 80)
        .syn()
        .build();
    assert_eq!(real_of(&dp.run(&neighbour)?), Some(first));
    let rows = dp.table.conn_rows()?;
    let t = rows.iter().find(|c| c.cport == 0).expect("template row");
    assert_eq!(
        (t.caddr, t.vport, t.daddr, t.state),
        ("198.51.100.0".parse()?, 80, rs(first).into(), "NONE")
    );
    // The template turns ASSURED when a flow it controls is established.
    dp.run(&tcp(40000).ack().build())?;
    let rows = dp.table.conn_rows()?;
    assert_eq!(rows.iter().find(|c| c.cport == 0).unwrap().state, "ASSURED");
    Ok(())
});

lab_test!(icmp_errors_are_rate_limited_like_the_kernels, |dp| {
    let t = sid(Proto::Tcp, 80);
    add_service(&mut dp, t, Sched::Wrr, None)?;
    let mut sent = 0;
    let mut held = 0;
    let start = std::time::Instant::now();
    for p in 0..200u16 {
        let r = dp.run(&tcp(30000 + p).syn().build())?;
        match r.action {
            XDP_TX => sent += 1,
            XDP_DROP => held += 1,
            a => panic!("unexpected action {a}"),
        }
    }
    // A burst of 50, plus what refills while the loop runs (1 per ms, on a
    // clock that moves in ticks of up to 4 ms: HZ >= 250).
    let refill = start.elapsed().as_millis() as u64 + 5;
    assert!(
        sent >= 50 && sent <= 50 + refill,
        "{sent} sent in {refill} ms"
    );
    if refill < 150 {
        assert!(held > 0, "the limit held some back");
    }
    assert_eq!(sent + held, 200);
    assert_eq!(dp.reasons()?[REASON_DROP_REPLY_RATE as usize], held);
    Ok(())
});

lab_test!(
    a_service_of_240_reals_takes_them_in_the_kernels_rr_order,
    |dp| {
        // IPVS has no limit on the reals of a service (it was 64 here); 240
        // reals are picked newest first, each once a round, through the
        // program's weight tree.
        let id = sid(Proto::Tcp, 80);
        add_service(&mut dp, id, Sched::Rr, None)?;
        for i in 11..=250u8 {
            dp.table.add_real(&id, &real(i, 80, 1))?;
        }
        let mut got = Vec::new();
        for sport in 0..480u16 {
            let r = dp.run(&tcp(20000 + sport).syn().build())?;
            got.push(real_of(&r).unwrap_or(0));
        }
        let round: Vec<u8> = (11..=250u8).rev().collect();
        assert_eq!(got[..240], round[..], "first round");
        assert_eq!(got[240..], round[..], "second round");
        // Quiescing one in the middle: the others keep their turns.
        dp.table.edit_real(&id, &real(100, 80, 0))?;
        let mut seen = Vec::new();
        for sport in 0..239u16 {
            let r = dp.run(&tcp(30000 + sport).syn().build())?;
            seen.push(real_of(&r).unwrap_or(0));
        }
        seen.sort_unstable();
        let want: Vec<u8> = (11..=250u8).filter(|&i| i != 100).collect();
        assert_eq!(seen, want, "every real but the quiescent one, once");
        Ok(())
    }
);

// --- sh and mh (docs/SEMANTICS.md §5.5, §5.6) ---------------------------------

/// A client of `CLIENT`'s network part with host byte `i`, sending a SYN
/// from `sport`.
fn syn_from(i: u8, sport: u16) -> Vec<u8> {
    Frame::tcp(Ipv4Addr::new(192, 0, 2, i), VIP)
        .src_mac(CLIENT_MAC)
        .dst_mac(LB_MAC)
        .ports(sport, 80)
        .syn()
        .build()
}

/// The real the kernel's sh gives a client: its bucket holds list
/// position `bucket % n` when the `n` reals (newest first, `list`) all
/// have weight 1.
fn sh_expected(list: &[u8], addr: Ipv4Addr, port: u16) -> u8 {
    let b = sh_bucket(
        hash_input(&addr_v4(addr.octets()), port.to_be_bytes(), 0),
        0,
    );
    list[b as usize % list.len()]
}

/// The real the kernel's mh gives a client over reals `list` (newest
/// first, port 80, the weights given).
fn mh_expected(list: &[(u8, u32)], addr: Ipv4Addr, port: u16) -> Option<u8> {
    let dests: Vec<lb_user::hash_sched::MhDest> = list
        .iter()
        .map(|&(i, w)| lb_user::hash_sched::MhDest {
            addr: addr_v4(rs(i).octets()),
            port: 80u16.to_be_bytes(),
            last_weight: w,
        })
        .collect();
    let t = lb_user::hash_sched::mh_table(&dests)?;
    let pos = t.pos[mh_slot(hash_input(&addr_v4(addr.octets()), port.to_be_bytes(), 0)) as usize];
    list.get(pos as usize).map(|&(i, _)| i)
}

fn flags(f: &[u32]) -> lb_user::model::SchedFlags {
    lb_user::model::SchedFlags(f.iter().fold(0, |a, b| a | b))
}

lab_test!(
    sh_sends_a_client_to_its_bucket_and_sh_port_spreads_ports,
    |dp| {
        use lb_user::model::SchedFlags;
        let s = sid(Proto::Tcp, 80);
        add_service(&mut dp, s, Sched::Sh(SchedFlags::NONE), None)?;
        for i in [11, 12, 13] {
            dp.table.add_real(&s, &real(i, 80, 1))?;
        }
        let list = [13, 12, 11];
        let mut seen = std::collections::BTreeSet::new();
        for c in 1..=12u8 {
            let want = sh_expected(&list, Ipv4Addr::new(192, 0, 2, c), 0);
            seen.insert(want);
            // Whatever the source port: the same real, the kernel's.
            for sport in [1000, 2000, 3000] {
                let f = syn_from(c, sport);
                let (r, moved) = run_counted(&dp, &f)?;
                assert_eq!(r.frame, routed(&f, want), "client {c} port {sport}");
                assert_eq!(moved, only(REASON_FWD_NEW));
            }
        }
        assert!(seen.len() > 1, "clients spread over the reals");
        // sh-port: one client's ports spread, each as the kernel hashes it.
        dp.table.edit_service(&ServiceSpec {
            id: s,
            sched: Sched::Sh(flags(&[SVC_F_SCHED_PORT])),
            persistent: None,
            netmask: Ipv4Addr::BROADCAST.into(),
            one_packet: false,
        })?;
        let mut reals = std::collections::BTreeSet::new();
        for sport in 5000..5030 {
            let f = syn_from(1, sport);
            let want = sh_expected(&list, Ipv4Addr::new(192, 0, 2, 1), sport);
            assert_eq!(real_of(&dp.run(&f)?), Some(want), "port {sport}");
            reals.insert(want);
        }
        assert_eq!(reals.len(), 3);
        Ok(())
    }
);

lab_test!(sh_quiescent_real_gives_icmp_unless_sh_fallback, |dp| {
    let s = sid(Proto::Tcp, 80);
    add_service(&mut dp, s, Sched::Sh(flags(&[])), None)?;
    for i in [11, 12, 13] {
        dp.table.add_real(&s, &real(i, 80, 1))?;
    }
    let list = [13, 12, 11];
    let owner = sh_expected(&list, CLIENT, 0);
    dp.table.edit_real(&s, &real(owner, 80, 0))?;
    // Weight 0 still holds its bucket (the table is rebuilt, one bucket
    // each): no dest, ICMP port unreachable (§1.3).
    let syn = tcp(40000).syn().build();
    let (r, moved) = run_counted(&dp, &syn)?;
    assert_port_unreachable(&r, &syn);
    assert_eq!(moved, only(REASON_TX_ICMP_UNREACH));
    // With sh-fallback: the first available real probing from 2 * bucket.
    dp.table.edit_service(&ServiceSpec {
        id: s,
        sched: Sched::Sh(flags(&[SVC_F_SCHED_FALLBACK])),
        persistent: None,
        netmask: Ipv4Addr::BROADCAST.into(),
        one_packet: false,
    })?;
    let b = sh_bucket(hash_input(&addr_v4(CLIENT.octets()), [0, 0], 0), 0);
    let want = (0..256)
        .map(|i| {
            list[sh_bucket(
                hash_input(&addr_v4(CLIENT.octets()), [0, 0], 0),
                (i + b) % 256,
            ) as usize
                % 3]
        })
        .find(|&r| r != owner)
        .unwrap();
    let syn = tcp(40001).syn().build();
    let (r, moved) = run_counted(&dp, &syn)?;
    assert_eq!(r.frame, routed(&syn, want));
    assert_eq!(moved, only(REASON_FWD_NEW));
    // -E without -b clears the flag again.
    dp.table.edit_service(&ServiceSpec {
        id: s,
        sched: Sched::Sh(flags(&[])),
        persistent: None,
        netmask: Ipv4Addr::BROADCAST.into(),
        one_packet: false,
    })?;
    assert_port_unreachable(
        &dp.run(&tcp(40002).syn().build())?,
        &tcp(40002).syn().build(),
    );
    Ok(())
});

lab_test!(
    mh_matches_the_kernels_table_and_removal_moves_only_that_reals_flows,
    |dp| {
        let s = sid(Proto::Tcp, 80);
        add_service(&mut dp, s, Sched::Mh(flags(&[])), None)?;
        for i in 11..=15 {
            dp.table.add_real(&s, &real(i, 80, 1))?;
        }
        let list: Vec<(u8, u32)> = (11..=15).rev().map(|i| (i, 1)).collect();
        let clients = 1..=60u8;
        let mut before = Vec::new();
        for c in clients.clone() {
            let want = mh_expected(&list, Ipv4Addr::new(192, 0, 2, c), 0);
            let got = real_of(&dp.run(&syn_from(c, 1000))?);
            assert_eq!(got, want, "client {c}");
            before.push(got);
        }
        assert!(before.contains(&Some(13)));
        dp.table.delete_real(&s, &rid(13))?;
        let list: Vec<(u8, u32)> = list.into_iter().filter(|&(i, _)| i != 13).collect();
        let mut moved_others = 0;
        for (c, was) in clients.zip(&before) {
            let got = real_of(&dp.run(&syn_from(c, 2000))?);
            assert_eq!(got, mh_expected(&list, Ipv4Addr::new(192, 0, 2, c), 0));
            assert_ne!(got, Some(13));
            if *was != Some(13) && got != *was {
                moved_others += 1;
            }
        }
        // Maglev: few flows of the other reals move (none for these clients
        // in the kernel's table either: the expectation above is its table).
        assert!(moved_others <= 3, "{moved_others}");
        Ok(())
    }
);

lab_test!(
    mh_quiesced_real_keeps_its_slots_and_mh_fallback_moves_only_its_clients,
    |dp| {
        let s = sid(Proto::Tcp, 80);
        add_service(&mut dp, s, Sched::Mh(flags(&[SVC_F_SCHED_PORT])), None)?;
        for i in 11..=13 {
            dp.table.add_real(&s, &real(i, 80, 1))?;
        }
        let list: Vec<(u8, u32)> = vec![(13, 1), (12, 1), (11, 1)];
        let owner = mh_expected(&list, CLIENT, 40000).unwrap();
        dp.table.edit_real(&s, &real(owner, 80, 0))?;
        let syn = tcp(40000).syn().build();
        assert_port_unreachable(&dp.run(&syn)?, &syn);
        // Other ports of the client keep the kernel's real (last_weight keeps
        // the table as it was).
        for sport in 41000..41020 {
            let want = mh_expected(&list, CLIENT, sport).unwrap();
            let r = dp.run(&tcp(sport).syn().build())?;
            if want == owner {
                assert_eq!(r.action, XDP_TX);
                assert_eq!(real_of(&r), None, "ICMP, not forwarded");
            } else {
                assert_eq!(real_of(&r), Some(want), "port {sport}");
            }
        }
        dp.table.edit_service(&ServiceSpec {
            id: s,
            sched: Sched::Mh(flags(&[SVC_F_SCHED_PORT, SVC_F_SCHED_FALLBACK])),
            persistent: None,
            netmask: Ipv4Addr::BROADCAST.into(),
            one_packet: false,
        })?;
        // A port of the client whose slot is the quiesced real's: the first
        // available real along the kernel's probes.
        let sport = (42000..43000)
            .find(|&p| mh_expected(&list, CLIENT, p) == Some(owner))
            .unwrap();
        let dests: Vec<lb_user::hash_sched::MhDest> = list
            .iter()
            .map(|&(i, w)| lb_user::hash_sched::MhDest {
                addr: addr_v4(rs(i).octets()),
                port: 80u16.to_be_bytes(),
                last_weight: w,
            })
            .collect();
        let t = lb_user::hash_sched::mh_table(&dests).unwrap();
        let (addr, port) = (CLIENT.octets(), sport.to_be_bytes());
        let ihash = mh_slot(hash_input(&addr_v4(addr), port, 0));
        let want = (0..MH_TAB_SIZE as u32)
            .map(|i| {
                let slot = mh_slot(hash_input(
                    &addr_v4(addr),
                    port,
                    (i + ihash) % MH_TAB_SIZE as u32,
                ));
                list[t.pos[slot as usize] as usize].0
            })
            .find(|&r| r != owner)
            .unwrap();
        let syn = tcp(sport).syn().build();
        let (r, moved) = run_counted(&dp, &syn)?;
        assert_eq!(r.frame, routed(&syn, want));
        assert_eq!(moved, only(REASON_FWD_NEW));
        Ok(())
    }
);

// --- dh, lblc, lblcr (docs/SEMANTICS.md §5.14–§5.16) ------------------------

/// A new TCP flow from `CLIENT` port `sport`: the real it went to, with
/// the outcome checked (`fwd_new`, the frame routed unchanged).
fn new_flow_to(dp: &Dataplane, sport: u16) -> Result<u8> {
    let syn = tcp(sport).syn().build();
    let (r, moved) = run_counted(dp, &syn)?;
    let got = real_of(&r).ok_or_else(|| anyhow::anyhow!("port {sport}: not forwarded"))?;
    assert_eq!(r.frame, routed(&syn, got));
    assert_eq!(moved, only(REASON_FWD_NEW), "port {sport}");
    Ok(got)
}

lab_test!(dh_sends_every_client_to_the_bucket_of_the_vip, |dp| {
    let s = sid(Proto::Tcp, 80);
    add_service(&mut dp, s, Sched::Dh, None)?;
    for i in [11, 12, 13] {
        dp.table.add_real(&s, &real(i, 80, 1))?;
    }
    // The VIP's bucket, hash_32(203.0.113.10, 8) = 162, holds list
    // position 162 % 3 = 0: R13 (newest first), for every client.
    let b = sh_bucket(u32::from_be_bytes(VIP.octets()), 0);
    assert_eq!(b, 162);
    let want = [13, 12, 11][b as usize % 3];
    for c in 1..=8u8 {
        let f = syn_from(c, 1000 + u16::from(c));
        let (r, moved) = run_counted(&dp, &f)?;
        assert_eq!(r.frame, routed(&f, want), "client {c}");
        assert_eq!(moved, only(REASON_FWD_NEW));
    }
    // That real overloaded, or quiescent: no dest (dh has no fallback),
    // ICMP port unreachable.
    set_overloaded(&mut dp, want, true)?;
    let syn = tcp(39999).syn().build();
    let (r, moved) = run_counted(&dp, &syn)?;
    assert_port_unreachable(&r, &syn);
    assert_eq!(moved, only(REASON_TX_ICMP_UNREACH));
    set_overloaded(&mut dp, want, false)?;
    assert_eq!(new_flow_to(&dp, 39998)?, want);
    dp.table.edit_real(&s, &real(want, 80, 0))?;
    let syn = tcp(40000).syn().build();
    let (r, moved) = run_counted(&dp, &syn)?;
    assert_port_unreachable(&r, &syn);
    assert_eq!(moved, only(REASON_TX_ICMP_UNREACH));
    Ok(())
});

lab_test!(
    lblc_keeps_the_vip_on_its_real_until_it_is_overloaded,
    |dp| {
        let s = sid(Proto::Tcp, 80);
        add_service(&mut dp, s, Sched::Lblc, None)?;
        dp.table.add_real(&s, &real(11, 80, 1))?;
        dp.table.add_real(&s, &real(12, 80, 3))?;
        // R12 (w3) 2 active, R11 (w1) idle: the weighted least is R11.
        set_conns(&mut dp, 12, 2, 0)?;
        set_conns(&mut dp, 11, 0, 0)?;
        assert_eq!(new_flow_to(&dp, 40000)?, 11);
        // R11 far busier, yet remembered: no dest has fewer active conns than
        // half its weight (R12: 2 * 2 >= 3), so R11 is not overloaded.
        set_conns(&mut dp, 11, 5, 0)?;
        set_conns(&mut dp, 12, 2, 0)?;
        assert_eq!(new_flow_to(&dp, 40001)?, 11);
        // R12 at 1 active (1 * 2 < 3): R11 is overloaded, R12 is picked and
        // remembered.
        set_conns(&mut dp, 11, 5, 0)?;
        set_conns(&mut dp, 12, 1, 0)?;
        assert_eq!(new_flow_to(&dp, 40002)?, 12);
        set_conns(&mut dp, 11, 0, 0)?;
        set_conns(&mut dp, 12, 1, 0)?;
        assert_eq!(new_flow_to(&dp, 40003)?, 12, "remembered, not the least");
        Ok(())
    }
);

lab_test!(
    lblcr_grows_its_set_and_sends_to_the_sets_least_loaded,
    |dp| {
        let s = sid(Proto::Tcp, 80);
        add_service(&mut dp, s, Sched::Lblcr, None)?;
        for i in [11, 12, 13] {
            dp.table.add_real(&s, &real(i, 80, 2))?;
        }
        // No entry: the weighted least, equal loads: the newest, R13.
        assert_eq!(new_flow_to(&dp, 40000)?, 13);
        // R13 at 3 active (> weight 2) while others idle: overloaded, the
        // list's least (R12, the first idle) joins the set.
        set_conns(&mut dp, 13, 3, 0)?;
        set_conns(&mut dp, 12, 0, 0)?;
        set_conns(&mut dp, 11, 0, 0)?;
        assert_eq!(new_flow_to(&dp, 40001)?, 12);
        // The set {R12, R13}: its least loaded, R12 (1 active, not over its
        // weight), although R11 is idle (lblc or wlc would take R11).
        set_conns(&mut dp, 13, 3, 0)?;
        set_conns(&mut dp, 12, 1, 0)?;
        set_conns(&mut dp, 11, 0, 0)?;
        assert_eq!(new_flow_to(&dp, 40002)?, 12);
        Ok(())
    }
);

// --- the counting schedulers (docs/SEMANTICS.md §5.3, §5.4, §5.9–§5.13) -----

/// The `DESTS` slot of real `i` (port 80) of the service on port `port`.
fn dest_slot(dp: &Dataplane, i: u8) -> Result<u32> {
    let dests = dp.table.dest_table()?;
    let slot = dests
        .iter()
        .position(|d| d.flags & DEST_F_IN_USE != 0 && d.addr == addr_v4(rs(i).octets()))
        .ok_or_else(|| anyhow::anyhow!("real {i} has no slot"))?;
    Ok(slot as u32)
}

/// Puts real `i`'s live counts in `DEST_CONNS`, as the program keeps them.
fn set_conns(dp: &mut Dataplane, i: u8, active: u32, inactive: u32) -> Result<()> {
    let slot = dest_slot(dp, i)?;
    let mut c = dp.table.pins.dest_conns.get(&slot, 0)?;
    c.active = active;
    c.inactive = inactive;
    dp.table.pins.dest_conns.set(slot, c, 0)?;
    Ok(())
}

/// Makes real `i` overloaded (or not): an upper threshold of 1 in `DESTS`
/// and the OVERLOAD mark set under it in `DEST_CONNS`, as binding a conn at
/// the threshold leaves them.
fn set_overloaded(dp: &mut Dataplane, i: u8, on: bool) -> Result<()> {
    let slot = dest_slot(dp, i)?;
    let mut d = dp.table.pins.dests.get(&slot, 0)?;
    d.u_threshold = 1;
    dp.table.pins.dests.set(slot, d, 0)?;
    let mut c = dp.table.pins.dest_conns.get(&slot, 0)?;
    c.overloaded = if on { 1 } else { 0 };
    dp.table.pins.dest_conns.set(slot, c, 0)?;
    Ok(())
}

/// The real a SYN from a new port is scheduled to.
fn syn_to(dp: &Dataplane, sport: u16) -> Result<Option<u8>> {
    let syn = tcp(sport).syn().build();
    let (r, moved) = run_counted(dp, &syn)?;
    if real_of(&r).is_some() {
        assert_eq!(moved, only(REASON_FWD_NEW));
    }
    Ok(real_of(&r))
}

lab_test!(
    counting_schedulers_pick_by_the_live_counts_as_the_kernel,
    |dp| {
        // Reals 11 (w 1), 12 (w 3), 13 (w 2), added in that order: list 13, 12, 11.
        let s = sid(Proto::Tcp, 80);
        add_service(&mut dp, s, Sched::Lc, None)?;
        for (i, w) in [(11, 1), (12, 3), (13, 2)] {
            dp.table.add_real(&s, &real(i, 80, w))?;
        }
        let mut sport = 41000;
        // Each case: scheduler, counts (active, inactive) of 13, 12, 11, the real.
        type Case = (Sched, [(u32, u32); 3], u8);
        let cases: [Case; 12] = [
            // lc: 256, 300, 256: the tie goes to the earlier (13).
            (Sched::Lc, [(1, 0), (0, 300), (1, 0)], 13),
            (Sched::Lc, [(1, 0), (0, 300), (0, 255)], 11),
            // wlc: 512/2, 768/3, 200/1.
            (Sched::Wlc, [(2, 0), (3, 0), (0, 200)], 11),
            // wlc: 256 each per weight: the earliest.
            (Sched::Wlc, [(2, 0), (3, 0), (0, 256)], 13),
            // sed: (a+1)/w = 2, 2, 1; inactive conns do not count.
            (Sched::Sed, [(3, 0), (5, 0), (0, 10_000)], 11),
            (Sched::Sed, [(3, 0), (4, 0), (1, 0)], 12),
            // nq: the first idle real, whatever the others' cost.
            (Sched::Nq, [(1, 0), (0, 9), (0, 0)], 12),
            // nq, nobody idle: sed's 4/2, 5/3, 2/1.
            (Sched::Nq, [(3, 0), (4, 0), (1, 0)], 12),
            // fo: the highest weight, counts or not.
            (Sched::Fo, [(0, 0), (100, 0), (0, 0)], 12),
            // ovf: 12 has 4 active > weight 3: the next highest weight.
            (Sched::Ovf, [(0, 0), (4, 0), (0, 0)], 13),
            (Sched::Ovf, [(3, 0), (4, 0), (1, 0)], 11),
            (Sched::Ovf, [(0, 0), (3, 0), (0, 0)], 12),
        ];
        for (sched, counts, want) in cases {
            dp.table.edit_service(&ServiceSpec {
                id: s,
                sched,
                persistent: None,
                netmask: Ipv4Addr::BROADCAST.into(),
                one_packet: false,
            })?;
            for (i, (a, n)) in [13, 12, 11].into_iter().zip(counts) {
                set_conns(&mut dp, i, a, n)?;
            }
            sport += 1;
            assert_eq!(syn_to(&dp, sport)?, Some(want), "{sched:?} {counts:?}");
        }
        // ovf with every real past its weight: no dest, ICMP.
        for (i, a) in [(13, 3), (12, 4), (11, 2)] {
            set_conns(&mut dp, i, a, 0)?;
        }
        let syn = tcp(42000).syn().build();
        let (r, moved) = run_counted(&dp, &syn)?;
        assert_port_unreachable(&r, &syn);
        assert_eq!(moved, only(REASON_TX_ICMP_UNREACH));
        Ok(())
    }
);

lab_test!(twos_draws_two_reals_by_weight, |dp| {
    let s = sid(Proto::Tcp, 80);
    add_service(&mut dp, s, Sched::Twos, None)?;
    for (i, w) in [(11, 1), (12, 3), (13, 2)] {
        dp.table.add_real(&s, &real(i, 80, w))?;
    }
    // Idle reals: every real is drawn, in proportion to its weight.
    let mut got = std::collections::BTreeMap::new();
    for sport in 0..300u16 {
        *got.entry(syn_to(&dp, 20000 + sport)?).or_insert(0) += 1;
    }
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[&Some(12)] > got[&Some(11)], "{got:?}");
    // Loaded reals lose the second draw: 12 busy, 13 and 11 idle.
    set_conns(&mut dp, 12, 50, 0)?;
    set_overloaded(&mut dp, 11, true)?;
    let mut twelves = 0;
    for sport in 0..200u16 {
        // 13 stays idle (whatever the program counts for the conns made).
        set_conns(&mut dp, 13, 0, 0)?;
        let r = syn_to(&dp, 21000 + sport)?;
        assert_ne!(r, Some(11), "overloaded");
        twelves += (r == Some(12)) as u32;
    }
    // 12 only when both draws are 12: (3/6)^2 of the picks, about 50.
    assert!(twelves < 100, "{twelves}");
    Ok(())
});

lab_test!(an_overloaded_real_is_skipped_by_rr_wrr_and_wlc, |dp| {
    let s = sid(Proto::Tcp, 80);
    add_service(&mut dp, s, Sched::Rr, None)?;
    for i in [11, 12, 13] {
        dp.table.add_real(&s, &real(i, 80, 1))?;
    }
    // rr: list 13, 12, 11; 12 overloaded: 13, 11, 13, 11.
    set_overloaded(&mut dp, 12, true)?;
    let mut got = Vec::new();
    for sport in 0..4u16 {
        got.push(syn_to(&dp, 22000 + sport)?.unwrap_or(0));
    }
    assert_eq!(got, vec![13, 11, 13, 11]);
    // Back below its threshold: its turn again.
    set_overloaded(&mut dp, 12, false)?;
    let mut got = Vec::new();
    for sport in 0..3u16 {
        got.push(syn_to(&dp, 22100 + sport)?.unwrap_or(0));
    }
    assert_eq!(got, vec![13, 12, 11]);
    // wrr with 12 the heaviest and overloaded: the others share the picks.
    dp.table.edit_service(&ServiceSpec {
        id: s,
        sched: Sched::Wrr,
        persistent: None,
        netmask: Ipv4Addr::BROADCAST.into(),
        one_packet: false,
    })?;
    dp.table.edit_real(&s, &real(12, 80, 5))?;
    set_overloaded(&mut dp, 12, true)?;
    let mut seen = std::collections::BTreeSet::new();
    for sport in 0..12u16 {
        let r = syn_to(&dp, 22200 + sport)?;
        assert_ne!(r, Some(12));
        seen.insert(r);
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    // wlc: 12 is the least loaded but overloaded.
    dp.table.edit_service(&ServiceSpec {
        id: s,
        sched: Sched::Wlc,
        persistent: None,
        netmask: Ipv4Addr::BROADCAST.into(),
        one_packet: false,
    })?;
    set_conns(&mut dp, 13, 1, 0)?;
    set_conns(&mut dp, 11, 2, 0)?;
    assert_eq!(syn_to(&dp, 22300)?, Some(13));
    // Every real overloaded: no dest, for all three.
    set_overloaded(&mut dp, 13, true)?;
    set_overloaded(&mut dp, 11, true)?;
    for (k, sched) in [Sched::Wlc, Sched::Rr, Sched::Wrr].into_iter().enumerate() {
        dp.table.edit_service(&ServiceSpec {
            id: s,
            sched,
            persistent: None,
            netmask: Ipv4Addr::BROADCAST.into(),
            one_packet: false,
        })?;
        let syn = tcp(22400 + k as u16).syn().build();
        assert_port_unreachable(&dp.run(&syn)?, &syn);
    }
    Ok(())
});
