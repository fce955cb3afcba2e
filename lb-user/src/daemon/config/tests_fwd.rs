//! `masq` and `ipip` real servers and fallbacks (ldirectord's
//! `get_forward_flag`: `-m`, `-i`), their ports as ipvsadm makes them from
//! the `-r` ldirectord passes, and where their checks connect.

use std::path::Path;

use super::*;
use crate::model::{Fwd, Proto, RealId, ServiceId, Tunnel};

fn parse_str(text: &str) -> Result<Config, ConfigError> {
    parse(Path::new("/etc/ha.d/test.cf"), text, &Resolver::new())
}

fn rid(addr: &str, port: u16) -> RealId {
    RealId {
        addr: addr.parse().unwrap(),
        port,
    }
}

/// (address and port as the table has them, method, check address)
fn reals(v: &Virtual) -> Vec<(RealId, Fwd, String)> {
    v.reals
        .iter()
        .map(|r| (r.id, r.fwd, r.check_addr().to_string()))
        .collect()
}

#[test]
fn one_virtual_mixes_gate_ipip_and_masq() {
    let c = parse_str(
        "virtual=203.0.113.10:80\n\
         \treal=198.51.100.11:8080 gate\n\
         \treal=198.51.100.12:8080 masq 3\n\
         \treal=198.51.100.13 masq\n\
         \treal=198.51.100.14:8080 ipip\n\
         \treal=198.51.100.15 ipip\n\
         \treal=198.51.100.16->198.51.100.17:81 masq\n\
         \tfallback=198.51.100.20:8080 masq\n\
         \tchecktype=connect\n",
    )
    .unwrap();
    let v = &c.virtuals[0];
    let ipip = Fwd::Tunnel(Tunnel::IPIP);
    assert_eq!(
        reals(v),
        [
            // gate and ipip: the virtual's port; checks go to the port given.
            (
                rid("198.51.100.11", 80),
                Fwd::Route,
                "198.51.100.11:8080".into()
            ),
            // masq keeps its port; 0 when none (the packet's port), checked
            // on the service's.
            (
                rid("198.51.100.12", 8080),
                Fwd::Masq,
                "198.51.100.12:8080".into()
            ),
            (
                rid("198.51.100.13", 0),
                Fwd::Masq,
                "198.51.100.13:80".into()
            ),
            (rid("198.51.100.14", 80), ipip, "198.51.100.14:8080".into()),
            (rid("198.51.100.15", 80), ipip, "198.51.100.15:80".into()),
            (
                rid("198.51.100.16", 81),
                Fwd::Masq,
                "198.51.100.16:81".into()
            ),
            (
                rid("198.51.100.17", 81),
                Fwd::Masq,
                "198.51.100.17:81".into()
            ),
        ]
    );
    assert_eq!(v.reals[1].weight, 3);
    assert_eq!(v.fallback, Some(rid("198.51.100.20", 8080)));
    assert_eq!(v.fallback_fwd, Fwd::Masq);
}

#[test]
fn fallbacks_take_a_method() {
    let text = |fb: &str| format!("{fb}\nvirtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n");
    for (fb, id, fwd) in [
        (
            "fallback=198.51.100.20:8080",
            rid("198.51.100.20", 80),
            Fwd::Route,
        ),
        (
            "fallback=198.51.100.20:8080 gate",
            rid("198.51.100.20", 80),
            Fwd::Route,
        ),
        (
            "fallback=198.51.100.20:8080 ipip",
            rid("198.51.100.20", 80),
            Fwd::Tunnel(Tunnel::IPIP),
        ),
        (
            "fallback=198.51.100.20:8080 masq",
            rid("198.51.100.20", 8080),
            Fwd::Masq,
        ),
        // ldirectord's `fallback_find`: a global fallback without a port
        // takes the virtual's.
        (
            "fallback=198.51.100.20 masq",
            rid("198.51.100.20", 80),
            Fwd::Masq,
        ),
    ] {
        let c = parse_str(&text(fb)).unwrap_or_else(|e| panic!("{fb}: {e}"));
        let v = &c.virtuals[0];
        assert_eq!((v.fallback, v.fallback_fwd), (Some(id), fwd), "{fb}");
    }
    let e = parse_str(&text("fallback=198.51.100.20:80 nat")).unwrap_err();
    assert_eq!(
        (e.line, e.message.as_str()),
        (1, "forward method must be gate, masq or ipip")
    );
}

#[test]
fn masq_reals_are_told_apart_by_their_port() {
    let c = parse_str(
        "virtual=203.0.113.10:80\n\
         \treal=198.51.100.11:8080 masq\n\
         \treal=198.51.100.11:8081 masq\n\
         \treal=198.51.100.11 gate\n",
    )
    .unwrap();
    let ids: Vec<RealId> = c.virtuals[0].reals.iter().map(|r| r.id).collect();
    assert_eq!(
        ids,
        [
            rid("198.51.100.11", 8080),
            rid("198.51.100.11", 8081),
            rid("198.51.100.11", 80)
        ]
    );
    for (text, message) in [
        (
            "virtual=203.0.113.10:80\n\treal=198.51.100.11 masq\n\treal=198.51.100.11:0 masq\n",
            "duplicate real server 198.51.100.11:0 (also on line 2)",
        ),
        (
            "virtual=203.0.113.10:80\n\treal=198.51.100.11:80 masq\n\treal=198.51.100.11:8080 ipip\n",
            "duplicate real server 198.51.100.11:80 (also on line 2; gate and ipip reals have \
             the service's port)",
        ),
    ] {
        let e = parse_str(text).unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (3, message), "{text}");
    }
}

#[test]
fn fwmark_and_ipv6_virtuals_take_masq_and_ipip() {
    let c = parse_str(
        "virtual=7\n\
         \treal=198.51.100.11:8080 masq\n\
         \treal=198.51.100.12:8080 ipip\n\
         \tchecktype=connect\n\
         virtual6=[2001:db8::1]:80\n\
         \treal6=[2001:db8::11]:8080 masq\n\
         \treal6=[2001:db8::12]:8080 ipip\n\
         \tfallback6=[2001:db8::99] masq\n",
    )
    .unwrap();
    assert_eq!(c.virtuals[0].id(), ServiceId::fwmark(7));
    let ids: Vec<(RealId, Fwd)> = c.virtuals[0].reals.iter().map(|r| (r.id, r.fwd)).collect();
    assert_eq!(
        ids,
        [
            (rid("198.51.100.11", 8080), Fwd::Masq),
            (rid("198.51.100.12", 8080), Fwd::Tunnel(Tunnel::IPIP)),
        ]
    );
    let v6 = &c.virtuals[1];
    assert_eq!(v6.id().proto, Proto::Tcp);
    let ids: Vec<(RealId, Fwd)> = v6.reals.iter().map(|r| (r.id, r.fwd)).collect();
    assert_eq!(
        ids,
        [
            (rid("2001:db8::11", 8080), Fwd::Masq),
            (rid("2001:db8::12", 80), Fwd::Tunnel(Tunnel::IPIP)),
        ]
    );
    assert_eq!(
        (v6.fallback, v6.fallback_fwd),
        (Some(rid("2001:db8::99", 80)), Fwd::Masq)
    );
}
