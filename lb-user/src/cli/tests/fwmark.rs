//! fwmark services (`-f MARK`) on ipvsadm's command line, in listings and
//! `-S`, and the `fwmark` word of the classifier, also as `-R` lines.

use super::*;
use crate::fwmark::{FwmarkMatch, FwmarkRule};

fn fwm(mark: u32) -> ServiceId {
    ServiceId::fwmark(mark)
}

fn view(spec: ServiceSpec, reals: Vec<RealSpec>) -> ServiceView {
    ServiceView {
        spec,
        stats: Stats::default(),
        rates: Default::default(),
        reals: reals
            .into_iter()
            .map(|spec| crate::model::RealView {
                spec,
                active_conns: 0,
                inactive_conns: 0,
                persist_conns: 0,
                stats: Stats::default(),
                rates: Default::default(),
            })
            .collect(),
    }
}

#[test]
fn fwmark_services_parse_as_ipvsadm_takes_them() {
    assert_eq!(
        p("-A -f 1 -s rr -p 300"),
        Ok(Command::AddService(spec(fwm(1), Sched::Rr, Some(300), ALL)))
    );
    // No port needed without -p: a fwmark service has none.
    assert_eq!(
        p("-A -f 4294967295 -s rr"),
        Ok(Command::AddService(spec(
            fwm(u32::MAX),
            Sched::Rr,
            None,
            ALL
        )))
    );
    assert_eq!(
        p("-E -f 2 -s wrr"),
        Ok(Command::EditService(spec(fwm(2), Sched::Wrr, None, ALL)))
    );
    assert_eq!(p("-D -f 1"), Ok(Command::DeleteService(fwm(1))));
    assert_eq!(p("-Z -f 1"), Ok(Command::Zero(Some(fwm(1)))));
    assert_eq!(
        p("-L -f 1 -n"),
        Ok(list(
            ListTarget::Service(fwm(1)),
            ListFormat {
                numeric: true,
                ..ListFormat::default()
            }
        ))
    );
    // A real keeps the port given, 0 without one (ipvsadm forces the
    // service's port for -g on other services only).
    assert_eq!(
        p("-a -f 1 -r 10.0.0.11 -g -w 2"),
        Ok(Command::AddReal {
            service: fwm(1),
            real: real("10.0.0.11", 0, 2)
        })
    );
    assert_eq!(
        p("-e -f 1 -r 10.0.0.11:8080 -w 3"),
        Ok(Command::EditReal {
            service: fwm(1),
            real: real("10.0.0.11", 8080, 3)
        })
    );
    assert_eq!(
        p("-d -f 1 -r 10.0.0.11"),
        Ok(Command::DeleteReal {
            service: fwm(1),
            real: RealId {
                addr: ip("10.0.0.11"),
                port: 0
            }
        })
    );
    // -o is allowed on a fwmark service (for its UDP packets).
    let mut ops = spec(fwm(3), Sched::Rr, None, ALL);
    ops.one_packet = true;
    assert_eq!(p("-A -f 3 -s rr -o"), Ok(Command::AddService(ops)));
    for bad in ["0", "-1", "4294967296", "x", "1x"] {
        assert_eq!(
            p(&format!("-A -f {bad}")),
            Err(CliError::InvalidFwmark(bad.into())),
            "{bad}"
        );
    }
    // -6 after -f: an IPv6 fwmark service; before -f: ipvsadm's error.
    assert_eq!(
        p("-A -f 1 -6"),
        Ok(Command::AddService(spec(
            ServiceId::fwmark_of_family(1, true),
            Sched::Wlc,
            None,
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        )))
    );
    assert_eq!(p("-A -6 -f 1"), Err(CliError::Ipv6BeforeFwmark));
}

#[test]
fn fwmark_services_list_and_save_as_ipvsadm_prints_them() {
    let f1 = view(
        spec(fwm(1), Sched::Rr, Some(300), ALL),
        vec![real("10.0.0.11", 0, 1), real("10.0.0.12", 0, 1)],
    );
    let f2 = view(
        spec(fwm(2), Sched::Wlc, Some(600), "255.255.255.0"),
        Vec::new(),
    );
    let web = view(
        spec(tcp("10.0.0.100", 80), Sched::Wrr, None, ALL),
        Vec::new(),
    );
    let all = [f2.clone(), f1.clone(), web.clone()];
    let listed = crate::format::list_services(
        &all,
        &ListFormat {
            numeric: true,
            ..ListFormat::default()
        },
        4096,
    );
    assert_eq!(
        listed,
        "IP Virtual Server version 1.2.1 (size=4096)\n\
         Prot LocalAddress:Port Scheduler Flags\n\
         \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
         TCP  10.0.0.100:80 wrr\n\
         FWM  1 rr persistent 300\n\
         \x20 -> 10.0.0.11:0                  Route   1      0          0         \n\
         \x20 -> 10.0.0.12:0                  Route   1      0          0         \n\
         FWM  2 wlc persistent 600 mask 255.255.255.0\n"
    );
    let saved = crate::format::save_with(&all, true, &names());
    assert_eq!(
        saved,
        "-A -t 10.0.0.100:80 -s wrr\n\
         -A -f 1 -s rr -p 300\n\
         -a -f 1 -r 10.0.0.11:0 -g -w 1\n\
         -a -f 1 -r 10.0.0.12:0 -g -w 1\n\
         -A -f 2 -s wlc -p 600 -M 255.255.255.0\n"
    );
    // Saved lines restore to the same commands.
    let cmds: Vec<Command> = saved.lines().map(|l| r_line(l).unwrap().unwrap()).collect();
    assert_eq!(cmds[1], Command::AddService(f1.spec));
    assert_eq!(
        cmds[2],
        Command::AddReal {
            service: fwm(1),
            real: f1.reals[0].spec
        }
    );
}

fn r_line(line: &str) -> Result<Option<Command>, CliError> {
    parse_restore_line_with(line, &names())
}

fn rule(proto: Proto, addr: &str, plen: u8, ports: Option<(u16, u16)>, mark: u32) -> FwmarkRule {
    FwmarkRule {
        matches: FwmarkMatch::new(proto, ip(addr), plen, ports),
        mark,
    }
}

#[test]
fn the_fwmark_word_takes_iptables_words() {
    let want = rule(Proto::Tcp, "203.0.113.10", 32, Some((80, 80)), 1);
    assert_eq!(
        p("fwmark add -p tcp -d 203.0.113.10 --dport 80 --set-mark 1"),
        Ok(Command::Fwmark(FwmarkCmd::Add(want)))
    );
    // iptables' own spelling, -j MARK included, hex marks, ranges.
    assert_eq!(
        p("fwmark add -p TCP -d 203.0.113.10/32 --destination-port 80 -j MARK --set-mark 0x1"),
        Ok(Command::Fwmark(FwmarkCmd::Add(want)))
    );
    assert_eq!(
        p("fwmark del -p udp -d 203.0.113.0/24 --dport 1024:2048 --set-mark 7"),
        Ok(Command::Fwmark(FwmarkCmd::Del(rule(
            Proto::Udp,
            "203.0.113.0",
            24,
            Some((1024, 2048)),
            7
        ))))
    );
    assert_eq!(p("fwmark"), Ok(Command::Fwmark(FwmarkCmd::List)));
    assert_eq!(p("fwmark list"), Ok(Command::Fwmark(FwmarkCmd::List)));
    // Bad values: lbctl's messages; missing words: clap's.
    for (line, what) in [
        (
            "fwmark add -p icmp -d 203.0.113.10 --set-mark 1",
            "protocol",
        ),
        (
            "fwmark add -p tcp -d 203.0.113.10/40 --set-mark 1",
            "destination",
        ),
        (
            "fwmark add -p tcp -d 203.0.113.10 --dport 81:80 --set-mark 1",
            "port",
        ),
        ("fwmark add -p tcp -d 203.0.113.10 --set-mark 0", "mark"),
        (
            "fwmark add -p tcp -d 203.0.113.10 -j DROP --set-mark 1",
            "target",
        ),
    ] {
        let e = p(line).unwrap_err();
        assert!(e.to_string().contains(what), "{line}: {e}");
    }
    assert!(kind(p("fwmark add -p tcp --set-mark 1")).is_some());
    assert!(kind(p("fwmark add -p tcp -d 203.0.113.10")).is_some());
}

#[test]
fn saved_fwmark_rules_restore() {
    let saved = rule(Proto::Tcp, "203.0.113.0", 24, Some((80, 81)), 16).to_string();
    assert_eq!(
        saved,
        "fwmark add -p tcp -d 203.0.113.0/24 --dport 80:81 --set-mark 16"
    );
    assert_eq!(
        r_line(&saved),
        Ok(Some(Command::Fwmark(FwmarkCmd::Add(rule(
            Proto::Tcp,
            "203.0.113.0",
            24,
            Some((80, 81)),
            16
        )))))
    );
    assert_eq!(
        r_line("lbctl fwmark del -p udp -d 203.0.113.10 --set-mark 2  # gone"),
        Ok(Some(Command::Fwmark(FwmarkCmd::Del(rule(
            Proto::Udp,
            "203.0.113.10",
            32,
            None,
            2
        )))))
    );
    // Listing the rules is no restore command.
    assert!(matches!(
        r_line("fwmark list"),
        Err(CliError::NotAllowedInRestore(_))
    ));
}

#[test]
fn whereis_and_drain_name_a_fwmark_service() {
    assert!(matches!(
        p("whereis -f 1 198.51.100.7"),
        Ok(Command::Whereis { service, .. }) if service == fwm(1)
    ));
    assert!(matches!(
        p("drain -f 1 -r 198.51.100.11"),
        Ok(Command::Drain(d)) if d.service == fwm(1) && d.port.is_none()
    ));
    assert_eq!(
        p("whereis -f 0 198.51.100.7"),
        Err(CliError::InvalidFwmark("0".into()))
    );
}

#[test]
fn a_fwmark_template_is_listed_with_protocol_ip() {
    let row = crate::model::ConnView {
        proto: Proto::Fwm,
        expire_secs: 298,
        state: "ASSURED",
        caddr: ip("192.0.2.7"),
        cport: 0,
        vaddr: ip("0.0.0.1"),
        vport: 0,
        daddr: ip("198.51.100.12"),
        dport: 0,
    };
    let mut out = String::new();
    let f = ListFormat {
        numeric: true,
        ..ListFormat::default()
    };
    crate::format::conn_row(&mut out, &row, &f, &names());
    assert_eq!(
        out,
        "IP  04:58  ASSURED     192.0.2.7:0        0.0.0.1:0          198.51.100.12:0\n"
    );
}

/// IPv6 prefixes, as ip6tables writes them; none that shares addresses
/// with the IPv4-mapped ::ffff:0.0.0.0/96 (where IPv4 rules live).
#[test]
fn the_fwmark_word_takes_ipv6_prefixes() {
    let want = rule(Proto::Tcp, "2001:db8::", 64, Some((80, 80)), 1);
    assert_eq!(
        p("fwmark add -p tcp -d 2001:db8::/64 --dport 80 --set-mark 1"),
        Ok(Command::Fwmark(FwmarkCmd::Add(want)))
    );
    // Host bits dropped, as ip6tables does.
    assert_eq!(
        p("fwmark del -p tcp -d 2001:db8::77/64 --dport 80 --set-mark 1"),
        Ok(Command::Fwmark(FwmarkCmd::Del(want)))
    );
    assert_eq!(
        p("fwmark add -p udp -d 2001:db8::1 --set-mark 2"),
        Ok(Command::Fwmark(FwmarkCmd::Add(rule(
            Proto::Udp,
            "2001:db8::1",
            128,
            None,
            2
        ))))
    );
    assert_eq!(
        r_line("fwmark add -p tcp -d 2001:db8::/64 --dport 80 --set-mark 1"),
        Ok(Some(Command::Fwmark(FwmarkCmd::Add(want))))
    );
    for line in [
        "fwmark add -p tcp -d ::/0 --set-mark 1",
        "fwmark add -p tcp -d ::ffff:203.0.113.10 --set-mark 1",
        "fwmark add -p tcp -d 2001:db8::/129 --set-mark 1",
    ] {
        let e = p(line).unwrap_err();
        assert!(e.to_string().contains("destination"), "{line}: {e}");
    }
    assert!(
        p("fwmark add -p tcp -d ::/0 --set-mark 1")
            .unwrap_err()
            .to_string()
            .contains("::ffff:0.0.0.0/96")
    );
}
