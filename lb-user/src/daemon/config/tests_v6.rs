//! IPv6 in ldirectord.cf, as ldirectord reads it: `virtual6=`, `real6=`,
//! `fallback6=` (an address in brackets), `virtual6=MARK`, the netmask as a
//! prefix length, and ldirectord's own messages for the mistakes.

use std::{net::IpAddr, path::Path};

use super::*;
use crate::model::{Proto, RealId, Sched, ServiceId};

fn names() -> Resolver {
    Resolver::from_text(
        "2001:db8::1 www6\n203.0.113.10 www\n2001:db8::13 rs3v6\n198.51.100.11 rs1\n",
        "http 80/tcp www\n",
    )
}

fn parse_str(text: &str) -> Result<Config, ConfigError> {
    parse(Path::new("/etc/ha.d/test.cf"), text, &names())
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn real(addr: &str, port: u16) -> RealId {
    RealId {
        addr: ip(addr),
        port,
    }
}

#[test]
fn virtual6_with_real6_and_fallback6_parses() {
    let c = parse_str(
        "checktimeout=2\n\
         virtual6=[2001:DB8:0::1]:80\n\
         \treal6=[2001:db8::11]:80 gate 2\n\
         \treal6=[2001:db8::12] gate\n\
         \treal6=rs3v6:http gate 3 l:1 u:5\n\
         \tfallback6=[2001:db8::99]:80 gate\n\
         \tscheduler=rr\n\tpersistent=300\n\tnetmask=64\n\tchecktype=connect\n",
    )
    .unwrap();
    assert_eq!(c.virtuals.len(), 1);
    let v = &c.virtuals[0];
    assert_eq!(
        v.id(),
        ServiceId {
            proto: Proto::Tcp,
            addr: ip("2001:db8::1"),
            port: 80
        }
    );
    assert_eq!(v.spec.sched, Sched::Rr);
    assert_eq!(v.spec.persistent, Some(300));
    assert_eq!(v.spec.netmask, ip("ffff:ffff:ffff:ffff::"));
    // A real without a port and one named in /etc/hosts get the service's
    // port, as direct routing keeps it; checks go to the port given.
    let reals: Vec<(RealId, u32, u16)> = v
        .reals
        .iter()
        .map(|r| (r.id, r.weight, r.check_port))
        .collect();
    assert_eq!(
        reals,
        vec![
            (real("2001:db8::11", 80), 2, 80),
            (real("2001:db8::12", 80), 1, 80),
            (real("2001:db8::13", 80), 3, 80),
        ]
    );
    assert_eq!(
        v.reals[0].check_addr().to_string(),
        "[2001:db8::11]:80",
        "checks go to the real's IPv6 address"
    );
    assert_eq!(
        (v.reals[2].thresholds.lower, v.reals[2].thresholds.upper),
        (1, 5)
    );
    assert_eq!(v.fallback, Some(real("2001:db8::99", 80)));
    // Without persistence the mask is the full /128.
    let c = parse_str("virtual6=www6:80\n\treal6=[2001:db8::11] gate\n").unwrap();
    assert_eq!(c.virtuals[0].id().addr, ip("2001:db8::1"));
    assert_eq!(
        c.virtuals[0].spec.netmask,
        ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
    );
}

#[test]
fn each_family_takes_its_own_global_fallback() {
    let c = parse_str(
        "fallback=198.51.100.99:80 gate\nfallback6=[2001:db8::99]:80 gate\n\
         virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n\
         virtual6=[2001:db8::1]:80\n\treal6=[2001:db8::11] gate\n\
         virtual6=[2001:db8::1]:81\n\treal6=[2001:db8::11] gate\n\tfallback6=[2001:db8::98]\n",
    )
    .unwrap();
    let fb: Vec<Option<RealId>> = c.virtuals.iter().map(|v| v.fallback).collect();
    assert_eq!(
        fb,
        vec![
            Some(real("198.51.100.99", 80)),
            Some(real("2001:db8::99", 80)),
            // The virtual's own, on the virtual's port.
            Some(real("2001:db8::98", 81)),
        ]
    );
    // Only an IPv4 global fallback: an IPv6 virtual has none.
    let c = parse_str(
        "fallback=198.51.100.99:80\nvirtual6=[2001:db8::1]:80\n\treal6=[2001:db8::11] gate\n",
    )
    .unwrap();
    assert_eq!(c.virtuals[0].fallback, None);
    // A loopback fallback6 (the director itself, as ldirectord's sample's
    // `[::1]`) is ignored with a warning, as `fallback=127.0.0.1`.
    let c = parse_str(
        "virtual6=[2001:db8::1]:80\n\treal6=[2001:db8::11] gate\n\tfallback6=[::1]:80 gate\n",
    )
    .unwrap();
    assert_eq!(c.virtuals[0].fallback, None);
    assert!(
        c.warnings[0]
            .message
            .starts_with("fallback [::1]:80 is the director itself"),
        "{:?}",
        c.warnings
    );
}

#[test]
fn virtual6_mark_is_an_ipv6_fwmark_service_beside_the_ipv4_one() {
    let c = parse_str(
        "virtual=1\n\treal=198.51.100.11:80 gate\n\tchecktype=connect\n\
         virtual6=1\n\treal6=[2001:db8::11]:80 gate\n\treal6=[2001:db8::12]:8080 gate\n\
         \tchecktype=connect\n\tpersistent=60\n\tnetmask=48\n",
    )
    .unwrap();
    assert_eq!(c.virtuals[0].id(), ServiceId::fwmark(1));
    let v = &c.virtuals[1];
    assert_eq!(v.id(), ServiceId::fwmark_of_family(1, true));
    assert_eq!(v.spec.netmask, ip("ffff:ffff:ffff::"));
    // A fwmark service's reals keep their own ports.
    let ids: Vec<RealId> = v.reals.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        vec![real("2001:db8::11", 80), real("2001:db8::12", 8080)]
    );
}

#[test]
fn dual_stack_virtuals_on_one_port_are_distinct() {
    let c = parse_str(
        "virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n\
         virtual6=[2001:db8::1]:80\n\treal6=[2001:db8::11] gate\n",
    )
    .unwrap();
    assert_eq!(c.virtuals.len(), 2);
    assert!(!c.virtuals[0].id().is_v6() && c.virtuals[1].id().is_v6());
}

/// ldirectord's messages, exactly, for the IPv6 mistakes it names.
#[test]
fn ipv6_mistakes_get_ldirectords_messages() {
    let v6 = "virtual6=[2001:db8::1]:80\n\treal6=[2001:db8::11] gate\n";
    let v4 = "virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n";
    let cases: Vec<(String, usize, &str)> = vec![
        (
            "virtual=[2001:db8::1]:80\n".into(),
            1,
            "cannot specify an IPv6 address here. please use \"virtual6\" instead.",
        ),
        (
            "virtual6=[2001:db8:::1]:80\n".into(),
            1,
            "invalid ipv6 address for virtual server",
        ),
        (
            "virtual6=[2001:db8::1]\n".into(),
            1,
            "invalid address for virtual server",
        ),
        (
            format!("{v6}\treal=[2001:db8::12]:80 gate\n"),
            3,
            "cannot specify \"real\" here.  please use \"real6\" instead",
        ),
        (
            format!("{v4}\treal6=[2001:db8::12]:80 gate\n"),
            3,
            "cannot specify \"real6\" here.  please use \"real\" instead",
        ),
        (
            format!("{v6}\tfallback=198.51.100.99:80\n"),
            3,
            "cannot specify \"fallback\" here.  please use \"fallback6\" instead",
        ),
        (
            format!("{v4}\tfallback6=[2001:db8::99]:80\n"),
            3,
            "cannot specify \"fallback6\" here.  please use \"fallback\" instead",
        ),
        (
            format!("{v6}\tnetmask=255.255.255.0\n"),
            3,
            "invalid netmask: a prefix length between 1 and 128 is required",
        ),
        (
            format!("{v6}\tnetmask=0\n"),
            3,
            "invalid netmask: a prefix length between 1 and 128 is required",
        ),
        (
            format!("{v6}\tnetmask=129\n"),
            3,
            "invalid netmask: a prefix length between 1 and 128 is required",
        ),
        (
            format!("{v4}\tnetmask=64\n"),
            3,
            "invalid netmask: dotted quad notation is required",
        ),
        (
            format!("{v6}\treal6=[2001:db8::12]->[2001:db8::14]:80 gate\n"),
            3,
            "Address range for IPv6 is not supported yet",
        ),
        (
            format!("{v6}\tfallback6=198.51.100.99:80\n"),
            3,
            "invalid IPv6 address or could not resolve for fallback server: 198.51.100.99 \
             (an IPv4 address belongs to a virtual= service)",
        ),
        (
            "fallback=[2001:db8::99]:80\n".into(),
            1,
            "invalid IPv4 address or could not resolve for fallback server: [2001:db8::99] \
             (an IPv6 address belongs to a virtual6= service)",
        ),
        (
            "virtual6=[2001:db8::1]:80\n\treal6=[2001:db8::11] gate\n\treal6=[2001:db8::11]:80 gate\n"
                .into(),
            3,
            "duplicate real server [2001:db8::11]:80 (also on line 2; gate and ipip reals have \
             the service's port)",
        ),
    ];
    for (text, line, msg) in cases {
        let e = parse_str(&text).expect_err(&text);
        assert_eq!((e.line, e.message.as_str()), (line, msg), "{text}");
    }
}

/// lbctl's own refusals: addresses of the other family, IPv6 without
/// brackets, addresses IPVS or the tables cannot take.
#[test]
fn ipv6_addresses_lbctl_refuses_say_why() {
    let v6 = "virtual6=[2001:db8::1]:80\n";
    let cases: Vec<(String, &str)> = vec![
        (
            "virtual6=2001:db8::1:80\n".into(),
            "an IPv6 address is written in brackets",
        ),
        (
            format!("{v6}\treal6=198.51.100.11:80 gate\n"),
            "invalid address (198.51.100.11) for real server (could not resolve host from \
             /etc/hosts) (an IPv4 address belongs to a virtual= service)",
        ),
        (
            "virtual=203.0.113.10:80\n\treal=[2001:db8::11]:80 gate\n".into(),
            "invalid address ([2001:db8::11]) for real server (could not resolve host from \
             /etc/hosts) (an IPv6 address belongs to a virtual6= service)",
        ),
        (
            format!("{v6}\treal6=2001:db8::11 gate\n"),
            "an IPv6 address is written in brackets",
        ),
        (
            format!("{v6}\treal6=[::ffff:198.51.100.11]:80 gate\n"),
            "::ffff:198.51.100.11 is an IPv4-mapped IPv6 address",
        ),
        (
            format!("{v6}\treal6=[fe80::1]:80 gate\n"),
            "real server fe80::1 is not a global unicast address",
        ),
        (
            format!("{v6}\treal6=[ff02::1]:80 gate\n"),
            "real server ff02::1 is not a global unicast address",
        ),
        (
            format!("{v6}\treal6=[::1]:80 gate\n"),
            "real server ::1 is the director itself",
        ),
        (
            "virtual6=[::ffff:203.0.113.10]:80\n".into(),
            "invalid address for virtual server",
        ),
        (
            format!("{v6}{v6}"),
            "duplicate virtual server (also on line 1)",
        ),
    ];
    for (text, msg) in cases {
        let e = parse_str(&text).expect_err(&text);
        assert!(e.message.contains(msg), "{text}: got {e}, wanted {msg}");
    }
}
