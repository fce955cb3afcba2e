//! fwmark services through the real XDP program (BPF_PROG_TEST_RUN):
//! classification precedence, the fwmark service looked up before the
//! (protocol, VIP, port) one, TCP and UDP alike, templates keyed by the
//! mark, the VIP filter letting classified destinations through.
//! Provisioned through the same `Table` that lbctl uses
//! (docs/SEMANTICS.md "fwmark services").

use std::net::Ipv4Addr;

use anyhow::Result;
use lb_common::*;
use lb_tests::fixture::{CLIENT, VIP, real, rs};
use lb_tests::{
    frame::{self, Frame},
    lab_test,
    lb::{Dataplane, XDP_PASS, real_of},
    require_root,
};
use lb_user::{
    fwmark::{FwmarkMatch, FwmarkRule},
    model::{Proto, RealId, Sched, ServiceId, ServiceSpec},
};

const LB_MAC: [u8; 6] = frame::DOC_DST_MAC;
const CLIENT_MAC: [u8; 6] = frame::DOC_SRC_MAC;

fn spec(id: ServiceId, sched: Sched, persistent: Option<u32>) -> ServiceSpec {
    ServiceSpec {
        id,
        sched,
        persistent,
        netmask: Ipv4Addr::BROADCAST.into(),
        one_packet: false,
    }
}

fn rule(
    proto: Proto,
    addr: Ipv4Addr,
    plen: u8,
    ports: Option<(u16, u16)>,
    mark: u32,
) -> FwmarkRule {
    FwmarkRule {
        matches: FwmarkMatch::new(proto, addr.into(), plen, ports),
        mark,
    }
}

/// A fwmark service of `mark` whose only real is `i`.
fn fwm(dp: &mut Dataplane, mark: u32, i: u8, persistent: Option<u32>) -> Result<ServiceId> {
    let id = ServiceId::fwmark(mark);
    dp.table.add_service(&spec(id, Sched::Rr, persistent))?;
    dp.table.add_real(&id, &real(i, 0, 1))?;
    Ok(id)
}

fn syn(proto: Proto, dst: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    let f = match proto {
        Proto::Udp => Frame::udp(CLIENT, dst),
        _ => Frame::tcp(CLIENT, dst).syn(),
    };
    f.src_mac(CLIENT_MAC)
        .dst_mac(LB_MAC)
        .ports(sport, dport)
        .build()
}

fn to(dp: &Dataplane, proto: Proto, dst: Ipv4Addr, sport: u16, dport: u16) -> Result<Option<u8>> {
    Ok(real_of(&dp.run(&syn(proto, dst, sport, dport))?))
}

lab_test!(the_most_specific_rule_picks_the_fwmark_service, |dp| {
    // One real per mark tells which service a packet went to.
    for (mark, i) in [(1, 11), (2, 12), (3, 13), (4, 14)] {
        fwm(&mut dp, mark, i, None)?;
    }
    let net = Ipv4Addr::new(203, 0, 113, 0);
    dp.table
        .add_fwmark_rule(&rule(Proto::Tcp, net, 24, None, 1))?;
    dp.table
        .add_fwmark_rule(&rule(Proto::Tcp, net, 24, Some((80, 81)), 2))?;
    dp.table
        .add_fwmark_rule(&rule(Proto::Tcp, net, 24, Some((80, 80)), 3))?;
    dp.table
        .add_fwmark_rule(&rule(Proto::Tcp, VIP, 32, Some((443, 443)), 4))?;
    let other = Ipv4Addr::new(203, 0, 113, 20);
    for (dst, sport, dport, want, why) in [
        (other, 40000, 80, 13, "narrowest range"),
        (other, 40001, 81, 12, "a range over any port"),
        (other, 40002, 8080, 11, "any port"),
        (VIP, 40003, 443, 14, "longest prefix"),
    ] {
        assert_eq!(to(&dp, Proto::Tcp, dst, sport, dport)?, Some(want), "{why}");
    }
    // The /32 holds the /24's rules too.
    assert_eq!(to(&dp, Proto::Tcp, VIP, 40004, 80)?, Some(13));
    // Another protocol, another prefix: no mark, no service.
    for f in [
        syn(Proto::Udp, other, 40005, 80),
        syn(Proto::Tcp, Ipv4Addr::new(203, 0, 114, 1), 40006, 80),
    ] {
        let before = dp.reasons()?;
        let r = dp.run(&f)?;
        assert_eq!((r.action, r.frame == f), (XDP_PASS, true));
        let after = dp.reasons()?;
        let no_service = REASON_PASS_NO_SERVICE as usize;
        assert_eq!(after[no_service] - before[no_service], 1);
    }
    // A deleted rule no longer classifies; the next one down does.
    dp.table
        .delete_fwmark_rule(&rule(Proto::Tcp, net, 24, Some((80, 80)), 3))?;
    assert_eq!(to(&dp, Proto::Tcp, other, 40007, 80)?, Some(12));
    Ok(())
});

lab_test!(the_fwmark_service_is_looked_up_first, |dp| {
    // A TCP service on VIP:80 and a fwmark service whose rule covers it:
    // as ip_vs_service_find, the mark wins.
    let tcp80 = ServiceId {
        proto: Proto::Tcp,
        addr: VIP.into(),
        port: 80,
    };
    dp.table.add_service(&spec(tcp80, Sched::Rr, None))?;
    dp.table.add_real(&tcp80, &real(11, 80, 1))?;
    assert_eq!(to(&dp, Proto::Tcp, VIP, 40000, 80)?, Some(11));
    // A rule without its fwmark service changes nothing.
    dp.table
        .add_fwmark_rule(&rule(Proto::Tcp, VIP, 32, Some((80, 80)), 7))?;
    assert_eq!(to(&dp, Proto::Tcp, VIP, 40001, 80)?, Some(11));
    let f7 = fwm(&mut dp, 7, 12, None)?;
    assert_eq!(to(&dp, Proto::Tcp, VIP, 40002, 80)?, Some(12));
    // An existing flow stays where it is (the conn table comes first).
    let ack = Frame::tcp(CLIENT, VIP)
        .src_mac(CLIENT_MAC)
        .dst_mac(LB_MAC)
        .ports(40000, 80)
        .ack()
        .build();
    assert_eq!(real_of(&dp.run(&ack)?), Some(11));
    // Without the fwmark service, the (protocol, VIP, port) one again.
    dp.table.delete_service(&f7)?;
    assert_eq!(to(&dp, Proto::Tcp, VIP, 40003, 80)?, Some(11));
    Ok(())
});

lab_test!(a_fwmark_service_takes_tcp_and_udp_of_its_mark, |dp| {
    let id = fwm(&mut dp, 5, 11, None)?;
    dp.table.add_real(&id, &real(12, 0, 1))?;
    dp.table
        .add_fwmark_rule(&rule(Proto::Tcp, VIP, 32, Some((443, 443)), 5))?;
    dp.table
        .add_fwmark_rule(&rule(Proto::Udp, VIP, 32, Some((443, 443)), 5))?;
    let a = to(&dp, Proto::Tcp, VIP, 40000, 443)?.expect("tcp routed");
    let b = to(&dp, Proto::Udp, VIP, 40001, 443)?.expect("udp routed");
    // One rr rotation for both protocols: one service.
    assert_ne!(a, b);
    // Direct routing leaves the ports alone (the real's port is 0).
    let f = syn(Proto::Udp, VIP, 40002, 443);
    let r = dp.run(&f)?;
    assert_eq!(r.frame[12..], f[12..]);
    // Both flows were counted in the one service.
    let views = dp.table.views(None)?;
    let v = views.iter().find(|v| v.spec.id == id).expect("listed");
    assert_eq!(v.stats.conns, 3);
    Ok(())
});

lab_test!(templates_of_a_fwmark_service_are_keyed_by_the_mark, |dp| {
    let id = fwm(&mut dp, 1, 11, Some(300))?;
    dp.table.add_real(&id, &real(12, 0, 1))?;
    dp.table.add_real(&id, &real(13, 0, 1))?;
    dp.table
        .add_fwmark_rule(&rule(Proto::Tcp, VIP, 32, Some((80, 80)), 1))?;
    dp.table
        .add_fwmark_rule(&rule(Proto::Tcp, VIP, 32, Some((443, 443)), 1))?;
    dp.table
        .add_fwmark_rule(&rule(Proto::Udp, VIP, 32, Some((443, 443)), 1))?;
    let first = to(&dp, Proto::Tcp, VIP, 40000, 80)?.expect("routed");
    // Every port and protocol of the mark follows the client's template.
    for (i, (proto, port)) in [(Proto::Tcp, 443), (Proto::Udp, 443), (Proto::Tcp, 80)]
        .into_iter()
        .enumerate()
    {
        let before = dp.reasons()?;
        assert_eq!(to(&dp, proto, VIP, 40001 + i as u16, port)?, Some(first));
        let after = dp.reasons()?;
        let t = REASON_FWD_TEMPLATE as usize;
        assert_eq!(after[t] - before[t], 1);
    }
    // One template: protocol IP (0), the mark as the address, port 0, and
    // the real's port 0, as the kernel lists it.
    let templates = dp.table.template_entries()?;
    assert_eq!(templates.len(), 1);
    let (k, _) = templates[0];
    assert_eq!(
        (k.proto, k.vaddr, k.vport, k.caddr),
        (0, addr_v4([0, 0, 0, 1]), [0, 0], addr_v4(CLIENT.octets()))
    );
    let rows = dp.table.conn_rows()?;
    let t = rows.iter().find(|c| c.cport == 0).expect("template row");
    assert_eq!(
        (t.proto.conn_name(), t.vaddr, t.vport, t.daddr, t.dport),
        (
            "IP",
            Ipv4Addr::new(0, 0, 0, 1).into(),
            0,
            rs(first).into(),
            0
        )
    );
    // `lbctl whereis -f 1 CLIENT` finds the same template.
    let w = dp.table.whereis(&id, CLIENT.into(), None)?;
    assert_eq!(w.len(), 1);
    assert_eq!(
        w[0].real,
        Some(RealId {
            addr: rs(first).into(),
            port: 0
        })
    );
    assert!(matches!(w[0].why, lb_user::whereis::Why::Template { .. }));
    // Another client gets the next real, with its own template.
    let other = Frame::tcp(Ipv4Addr::new(198, 51, 100, 99), VIP)
        .src_mac(CLIENT_MAC)
        .dst_mac(LB_MAC)
        .ports(1, 443)
        .syn()
        .build();
    assert_ne!(real_of(&dp.run(&other)?), Some(first));
    assert_eq!(dp.table.template_entries()?.len(), 2);
    Ok(())
});

lab_test!(wide_rules_get_past_the_vip_filter, |dp| {
    fwm(&mut dp, 9, 11, None)?;
    // A /16 is wider than the filter holds: classified on a filter miss.
    let net = Ipv4Addr::new(203, 0, 0, 0);
    dp.table
        .add_fwmark_rule(&rule(Proto::Tcp, net, 16, Some((80, 80)), 9))?;
    let far = Ipv4Addr::new(203, 0, 77, 5);
    assert_eq!(to(&dp, Proto::Tcp, far, 40000, 80)?, Some(11));
    let f = syn(Proto::Tcp, far, 40001, 81);
    assert_eq!(dp.run(&f)?.action, XDP_PASS);
    // Without rules the flag is off again and nothing is classified.
    dp.table.clear()?;
    assert!(dp.table.fwmark_rules()?.is_empty());
    fwm(&mut dp, 9, 11, None)?;
    assert_eq!(dp.run(&syn(Proto::Tcp, far, 40002, 80))?.action, XDP_PASS);
    Ok(())
});

/// A TCP flow to `dst`:80, made by a SYN and an ACK while rule `r` marks
/// it for a fwmark service whose real is 11; then `r` is deleted. IPVS
/// finds the conn before the service and never needs the mark again: the
/// flow's next packet still goes to real 11, while a new SYN there has no
/// service now.
fn conn_outlives_its_rule(dp: &mut Dataplane, r: FwmarkRule, dst: Ipv4Addr) -> Result<()> {
    let dport = 80;
    let ack = |sport| {
        Frame::tcp(CLIENT, dst)
            .src_mac(CLIENT_MAC)
            .dst_mac(LB_MAC)
            .ports(sport, dport)
            .ack()
            .build()
    };
    dp.table.add_fwmark_rule(&r)?;
    assert_eq!(to(dp, Proto::Tcp, dst, 40000, dport)?, Some(11));
    assert_eq!(real_of(&dp.run(&ack(40000))?), Some(11));
    dp.table.delete_fwmark_rule(&r)?;
    let before = dp.reasons()?;
    assert_eq!(real_of(&dp.run(&ack(40000))?), Some(11), "the conn");
    let f = syn(Proto::Tcp, dst, 40001, dport);
    let res = dp.run(&f)?;
    assert_eq!((res.action, res.frame == f), (XDP_PASS, true), "a new flow");
    let after = dp.reasons()?;
    for reason in [REASON_FWD_CONN, REASON_PASS_NO_SERVICE] {
        let i = reason as usize;
        assert_eq!(after[i] - before[i], 1, "{}", REASON_NAMES[i]);
    }
    Ok(())
}

lab_test!(a_conn_outlives_its_deleted_narrow_rule, |dp| {
    fwm(&mut dp, 3, 11, None)?;
    conn_outlives_its_rule(&mut dp, rule(Proto::Tcp, VIP, 32, Some((80, 80)), 3), VIP)
});

lab_test!(a_conn_outlives_its_deleted_wide_rule, |dp| {
    fwm(&mut dp, 3, 11, None)?;
    let net = Ipv4Addr::new(203, 0, 0, 0);
    let far = Ipv4Addr::new(203, 0, 77, 5);
    conn_outlives_its_rule(&mut dp, rule(Proto::Tcp, net, 16, Some((80, 80)), 3), far)
});

// ---- end to end: real TCP through the attached program ------------------

const SRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");

/// An LVS operator's fwmark bundle: `-A -f 1 -s rr -p 300` over VIP:80 and
/// VIP:443 (two `lbctl fwmark add` rules), two reals. A client's
/// connections to both ports go to one real through one template, listed
/// as the kernel lists it; `-S` | `-C` | `-R` gives the same tables back.
#[test]
fn a_fwmark_service_bundles_two_ports_with_one_template_per_client() -> Result<()> {
    use lb_tests::{client, lb::LbTopology};
    if !require_root("a_fwmark_service_bundles_two_ports_with_one_template_per_client") {
        return Ok(());
    }
    let mut lb = LbTopology::new(2)?;
    lb.topo
        .start_servers(std::path::Path::new(SRV), 80, false)?;
    lb.topo
        .start_servers(std::path::Path::new(SRV), 443, false)?;
    let vip = lb.topo.vip.to_string();
    for port in [80, 443] {
        lb.mark_tcp(port, 1)?;
    }
    // The same match again is refused, and changes nothing.
    let again = lb.mark_args(80, 2);
    let again = lb.lbctl(&again.iter().map(String::as_str).collect::<Vec<_>>())?;
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    lb.lbctl_ok(&["-A", "-f", "1", "-s", "rr", "-p", "300"])?;
    for b in &lb.topo.backends {
        lb.lbctl_ok(&["-a", "-f", "1", "-r", &b.addr.to_string(), "-g", "-w", "1"])?;
    }
    let t = client::DEFAULT_TIMEOUT;
    let ns = &lb.topo.client.ns;
    let mut reals = std::collections::BTreeSet::new();
    for _ in 0..3 {
        for port in [80, 443] {
            reals.insert(client::http_get(ns, lb.topo.vip_sock(port), t)?);
        }
    }
    assert_eq!(reals.len(), 1, "both ports on one real: {reals:?}");
    let reasons = lb.reasons()?;
    assert_eq!(
        (
            reasons[REASON_FWD_NEW as usize],
            reasons[REASON_FWD_TEMPLATE as usize]
        ),
        (1, 5),
        "one scheduling, then the template"
    );
    let real = lb.topo.backend_named(reals.first().unwrap()).unwrap().addr;
    let rows = lb.conn_rows()?;
    let templates: Vec<_> = rows.iter().filter(|r| r.is_template()).collect();
    assert_eq!(templates.len(), 1, "{rows:?}");
    let tm = templates[0];
    assert_eq!(
        (tm.proto.as_str(), tm.source, tm.virt, tm.dest),
        (
            "IP",
            std::net::SocketAddrV4::new(lb.topo.client.addr, 0),
            "0.0.0.1:0".parse()?,
            std::net::SocketAddrV4::new(real, 0),
        )
    );
    // The conns themselves show the ports the client used.
    assert!(
        rows.iter()
            .any(|r| r.proto == "TCP" && r.virt.port() == 443)
    );

    let listed = lb.lbctl_ok(&["-L", "-n"])?;
    assert!(listed.contains("\nFWM  1 rr persistent 300\n"), "{listed}");
    assert!(
        listed.contains(&format!("  -> {}:0 ", lb.topo.backends[0].addr)),
        "{listed}"
    );
    let one = lb.lbctl_ok(&["-L", "-f", "1", "-n"])?;
    assert!(one.contains("FWM  1 rr persistent 300"), "{one}");

    // -S | -C | -R round trip, rules included.
    let saved = lb.lbctl_ok(&["-S", "-n"])?;
    assert!(
        saved.starts_with(&format!(
            "fwmark add -p tcp -d {vip}/32 --dport 80 --set-mark 1\n\
             fwmark add -p tcp -d {vip}/32 --dport 443 --set-mark 1\n\
             -A -f 1 -s rr -p 300\n"
        )),
        "{saved}"
    );
    lb.lbctl_ok(&["-C"])?;
    assert_eq!(lb.lbctl_ok(&["fwmark"])?, "");
    assert_eq!(lb.lbctl_ok(&["-S", "-n"])?, "");
    let o = lb.lbctl_stdin(&["-R"], Some(&saved))?;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(lb.lbctl_ok(&["-S", "-n"])?, saved);
    // The same services and reals (ActiveConn/InActConn aside).
    let shape = |l: &str| -> Vec<String> {
        l.lines()
            .map(|l| l.split_whitespace().take(4).collect::<Vec<_>>().join(" "))
            .collect()
    };
    assert_eq!(shape(&lb.lbctl_ok(&["-L", "-n"])?), shape(&listed));
    // Traffic still goes through the restored service.
    client::http_get(ns, lb.topo.vip_sock(443), t)?;
    Ok(())
}

lab_test!(
    dh_on_a_fwmark_service_hashes_the_packets_destination,
    |dp| {
        // The transparent cache cluster of the LVS documentation: dh over a
        // fwmark service whose rule covers many destinations. Each destination
        // keeps its real, and the destinations spread over the reals, as
        // `ip_vs_dh_schedule` hashes the packet's own destination address.
        let id = ServiceId::fwmark(3);
        dp.table.add_service(&spec(id, Sched::Dh, None))?;
        for i in 11..15 {
            dp.table.add_real(&id, &real(i, 0, 1))?;
        }
        let net = Ipv4Addr::new(203, 0, 113, 0);
        dp.table
            .add_fwmark_rule(&rule(Proto::Tcp, net, 24, Some((80, 80)), 3))?;
        let mut reals = std::collections::BTreeSet::new();
        for host in 1..=32u8 {
            let dst = Ipv4Addr::new(203, 0, 113, host);
            let first = to(&dp, Proto::Tcp, dst, 40000 + u16::from(host), 80)?.expect("routed");
            let again = to(&dp, Proto::Tcp, dst, 41000 + u16::from(host), 80)?;
            assert_eq!(again, Some(first), "{dst} keeps its real");
            reals.insert(first);
        }
        assert!(reals.len() >= 3, "32 destinations over 4 reals: {reals:?}");
        Ok(())
    }
);

/// Writes an IPv6 prefix's rules into `FWMARK` directly: the trie key of
/// `2001:db8::/plen` is `FWMARK_KEY_FIXED_BITS + plen` bits of (protocol,
/// the 16 address bytes). (What `lbctl fwmark add -d 2001:db8::/64` writes;
/// the dataplane's IPv6 classification is checked here apart from the
/// command line.)
fn put_v6_rules(
    dp: &mut Dataplane,
    proto: Proto,
    prefix: std::net::Ipv6Addr,
    plen: u8,
    rules: &[(u16, u16, u32)],
) -> Result<()> {
    use aya::maps::lpm_trie::Key;
    let mut value = FwmarkRules::default();
    for (i, &(lo, hi, mark)) in rules.iter().enumerate() {
        value.rules[i] = lb_common::FwmarkRule {
            port_lo: lo,
            port_hi: hi,
            mark,
            plen,
            _pad: [0; 3],
        };
    }
    value.count = rules.len() as u32;
    let key = Key::new(
        FWMARK_KEY_FIXED_BITS + u32::from(plen),
        FwmarkKey {
            proto: proto.number(),
            _pad: [0; 3],
            addr: lb_user::addr::to_addr(prefix.into()),
        },
    );
    dp.table.pins.fwmark.insert(&key, value, 0)?;
    Ok(())
}

lab_test!(ipv6_packets_are_classified_by_their_ipv6_prefix, |dp| {
    use lb_tests::fixture::{CLIENT6, VIP6, rs6};
    let v6_real = |i: u8| lb_user::model::RealSpec {
        id: RealId {
            addr: rs6(i).into(),
            port: 0,
        },
        ..real(i, 0, 1)
    };
    // `-A -f 1 -6 -p 300 -M 64` (reals 11, 13) and `-A -f 1` (real 12):
    // two services of one mark, one per family.
    let fwm6 = ServiceId::fwmark_of_family(1, true);
    dp.table.add_service(&ServiceSpec {
        netmask: "ffff:ffff:ffff:ffff::"
            .parse::<std::net::Ipv6Addr>()?
            .into(),
        ..spec(fwm6, Sched::Rr, Some(300))
    })?;
    dp.table.add_real(&fwm6, &v6_real(11))?;
    dp.table.add_real(&fwm6, &v6_real(13))?;
    fwm(&mut dp, 1, 12, None)?;
    // An IPv6 service of the VIP (port 443) puts it in the VIP filter.
    let https6 = ServiceId {
        proto: Proto::Tcp,
        addr: VIP6.into(),
        port: 443,
    };
    dp.table.add_service(&ServiceSpec {
        netmask: std::net::Ipv6Addr::from(u128::MAX).into(),
        ..spec(https6, Sched::Rr, None)
    })?;
    dp.table.add_real(&https6, &v6_real(14))?;
    // Rules: IPv4 VIP:80 and 2001:db8::/64 port 80 get mark 1.
    dp.table
        .add_fwmark_rule(&rule(Proto::Tcp, VIP, 32, Some((80, 80)), 1))?;
    put_v6_rules(
        &mut dp,
        Proto::Tcp,
        "2001:db8::".parse()?,
        64,
        &[(80, 80, 1)],
    )?;
    let syn6 = |src: std::net::Ipv6Addr, sport: u16, dport: u16| {
        Frame::ipv6_tcp(src, VIP6)
            .src_mac(CLIENT_MAC)
            .dst_mac(LB_MAC)
            .ports(sport, dport)
            .syn()
            .build()
    };
    // IPv6 to port 80: the IPv6 fwmark service, not the IPv4 one.
    let f = syn6(CLIENT6, 40000, 80);
    let before = dp.reasons()?;
    let r = dp.run(&f)?;
    let first = real_of(&r).expect("routed");
    assert!([11, 13].contains(&first), "{first}");
    assert_eq!(&r.frame[12..], &f[12..]);
    let after = dp.reasons()?;
    assert_eq!(
        after[REASON_FWD_NEW as usize] - before[REASON_FWD_NEW as usize],
        1
    );
    // IPv4 to port 80: the IPv4 one.
    assert_eq!(to(&dp, Proto::Tcp, VIP, 40000, 80)?, Some(12));
    // Its template is keyed by the mark: a neighbour of the client's /64
    // follows it; the template's virtual address is the mark's (`0:1::`).
    let neighbour: std::net::Ipv6Addr = "2001:db8:1:1::99".parse()?;
    for sport in [1, 2, 3] {
        assert_eq!(real_of(&dp.run(&syn6(neighbour, sport, 80))?), Some(first));
    }
    let rows = dp.table.conn_rows()?;
    let t = rows
        .iter()
        .find(|c| c.cport == 0 && c.caddr.is_ipv6())
        .expect("the IPv6 template");
    assert_eq!(t.caddr, "2001:db8:1:1::".parse::<std::net::IpAddr>()?);
    assert_eq!(t.vaddr, "0:1::".parse::<std::net::IpAddr>()?);
    // Another port of the prefix: no rule, no service (443 has its own).
    for (dport, want) in [(81, None), (443, Some(14))] {
        let r = dp.run(&syn6(CLIENT6, 40001, dport))?;
        assert_eq!(real_of(&r), want, "port {dport}");
    }
    // Another /64: not classified.
    let other = Frame::ipv6_tcp(CLIENT6, "2001:db8:0:2::10".parse()?)
        .dst_mac(LB_MAC)
        .ports(1, 80)
        .syn()
        .build();
    assert_eq!(dp.run(&other)?.action, XDP_PASS);
    Ok(())
});
