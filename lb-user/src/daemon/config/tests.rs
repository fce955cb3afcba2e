//! The configuration parser against ldirectord's behaviour: fixtures,
//! defaults, and every refusal with its message.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::Path,
    time::Duration,
};

use super::*;
use crate::model::{Proto, RealId, Sched, ServiceId, ServiceSpec};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

fn names() -> Resolver {
    Resolver::from_text(
        "203.0.113.10 www www.example.org\n198.51.100.11 rs1.example.org rs1\n",
        "http 80/tcp www\nsmtp 25/tcp mail\ndomain 53/udp\ndomain 53/tcp\n",
    )
}

fn parse_str(text: &str) -> Result<Config, ConfigError> {
    parse(Path::new("/etc/ha.d/test.cf"), text, &names())
}

fn fixture(name: &str) -> Config {
    let path = Path::new(DATA).join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    parse(&path, &text, &names()).unwrap_or_else(|e| panic!("{e}"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn ldirectord_sample_parses() {
    let c = fixture("ldirectord-sample.cf");
    assert_eq!(c.checkinterval, secs(1));
    assert!(c.autoreload);
    assert_eq!(c.virtuals.len(), 1);
    let v = &c.virtuals[0];
    assert_eq!(v.line, 22);
    assert_eq!(
        v.spec,
        ServiceSpec {
            id: ServiceId {
                proto: Proto::Tcp,
                addr: ip("203.0.113.240"),
                port: 80
            },
            sched: Sched::Rr,
            persistent: None,
            netmask: Ipv4Addr::BROADCAST.into(),
            one_packet: false,
        }
    );
    let reals: Vec<(IpAddr, u16, u32, u16)> = v
        .reals
        .iter()
        .map(|r| (r.id.addr, r.id.port, r.weight, r.check_port))
        .collect();
    assert_eq!(
        reals,
        [
            (ip("198.51.100.2"), 80, 1, 80),
            (ip("198.51.100.3"), 80, 1, 80),
            (ip("198.51.100.6"), 80, 1, 80)
        ]
    );
    assert!(!v.quiescent);
    assert!(v.cleanstop);
    assert_eq!(v.failurecount, 1);
    assert_eq!(v.check.kind, CheckType::Negotiate);
    assert_eq!(v.check.service, CheckService::Http);
    assert_eq!(v.check.request, "/index.html");
    assert_eq!(v.check.receive.as_ref().unwrap().source, "Test Page");
    assert_eq!(v.check.virtualhost.as_deref(), Some("www.x.y.z"));
    assert_eq!(v.check.checktimeout, secs(3));
    // negotiatetimeout falls back to checktimeout, as in ld_setup.
    assert_eq!(v.check.negotiatetimeout, secs(3));
    // The director itself as fallback: ignored, with a warning on its line.
    assert_eq!(v.fallback, None);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert_eq!(c.warnings[0].line, 26);
    assert!(
        c.warnings[0]
            .message
            .contains("fallback 127.0.0.1:80 is the director itself")
    );
}

#[test]
fn every_directive_is_read() {
    let c = fixture("ldirectord-full.cf");
    assert_eq!(c.checkinterval, secs(2));
    assert!(!c.autoreload);
    assert_eq!(
        c.logfile,
        Some(LogTarget::File("/var/log/lbctl-daemon.log".into()))
    );
    assert!(c.readdquiescent);
    assert_eq!(c.virtuals.len(), 3);

    let web = &c.virtuals[0];
    assert_eq!(
        web.id(),
        ServiceId {
            proto: Proto::Tcp,
            addr: ip("203.0.113.10"),
            port: 80
        }
    );
    assert_eq!(web.spec.sched, Sched::Wrr);
    assert_eq!(web.spec.persistent, Some(600));
    assert_eq!(web.spec.netmask, ip("255.255.255.0"));
    assert_eq!(web.check.kind, CheckType::Negotiate);
    assert_eq!(web.check.service, CheckService::Http);
    assert_eq!(web.check.httpmethod, "HEAD");
    assert_eq!(web.check.request, "/health");
    assert_eq!(web.check.receive.as_ref().unwrap().source, "OK|ready");
    assert_eq!(web.check.virtualhost.as_deref(), Some("www.example.org"));
    assert_eq!(
        (web.check.checktimeout, web.check.negotiatetimeout),
        (secs(1), secs(2))
    );
    assert_eq!(web.failurecount, 2);
    assert!(!web.quiescent && web.cleanstop);
    assert_eq!(
        web.fallback,
        Some(RealId {
            addr: ip("198.51.100.20"),
            port: 80
        })
    );
    assert_eq!(
        web.fallbackcommand.as_deref(),
        Some("/usr/local/sbin/sorry-page")
    );
    let reals: Vec<(IpAddr, u32, u16)> = web
        .reals
        .iter()
        .map(|r| (r.id.addr, r.weight, r.check_port))
        .collect();
    assert_eq!(
        reals,
        [
            (ip("198.51.100.11"), 3, 8080),
            (ip("198.51.100.12"), 2, 8080),
            (ip("198.51.100.13"), 1, 8080),
            (ip("198.51.100.14"), 1, 8080),
        ]
    );
    assert!(web.reals.iter().all(|r| r.id.port == 80));
    assert_eq!(web.reals[1].request.as_deref(), Some("/alive"));
    assert_eq!(web.reals[1].receive.as_ref().unwrap().source, "^yes$");
    assert_eq!(web.reals[0].request, None);

    let mail = &c.virtuals[1];
    assert_eq!(mail.id().port, 25);
    assert_eq!(mail.spec.sched, Sched::Rr);
    assert_eq!(mail.check.kind, CheckType::Combined(2));
    assert_eq!(mail.check.service, CheckService::SimpleTcp);
    assert_eq!(mail.check.request, "/EHLO lb\\nQUIT\\n");
    assert_eq!(
        (mail.check.checktimeout, mail.check.negotiatetimeout),
        (secs(4), secs(9))
    );
    assert_eq!(mail.failurecount, 3);
    assert!(mail.quiescent && !mail.cleanstop);
    // The global fallback, on the virtual service's port.
    assert_eq!(
        mail.fallback,
        Some(RealId {
            addr: ip("198.51.100.99"),
            port: 25
        })
    );
    assert_eq!(mail.reals[1].weight, 0);
    // No port on the real: the check goes to the service's port.
    assert_eq!(mail.reals[0].check_port, 25);

    let dns = &c.virtuals[2];
    assert_eq!(
        dns.id(),
        ServiceId {
            proto: Proto::Udp,
            addr: ip("203.0.113.10"),
            port: 53
        }
    );
    assert_eq!(dns.check.kind, CheckType::On);
    assert_eq!(
        dns.fallbackcommand.as_deref(),
        Some("/usr/local/sbin/dns-sorry")
    );

    // Warnings: ignored e-mail alerts, callback, monitorfile.
    let lines: Vec<usize> = c.warnings.iter().map(|w| w.line).collect();
    assert_eq!(lines, [15, 16, 17, 18, 19, 20, 44, 45], "{:?}", c.warnings);
    assert!(c.warnings[5].message.contains("callback is not supported"));
    assert!(
        c.warnings[7]
            .message
            .contains("monitorfile is not supported")
    );
}

#[test]
fn defaults_are_ldirectords() {
    let c = parse_str("virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n").unwrap();
    assert_eq!(c.checkinterval, secs(10));
    assert!(!c.autoreload && !c.readdquiescent);
    assert_eq!(c.logfile, None);
    let v = &c.virtuals[0];
    assert_eq!(v.spec.sched, Sched::Wrr);
    assert_eq!(v.spec.persistent, None);
    assert_eq!(v.check.kind, CheckType::Negotiate);
    assert_eq!(v.check.service, CheckService::Http);
    assert_eq!(v.check.request, "/");
    assert_eq!(v.check.receive, None);
    assert_eq!(v.check.httpmethod, "GET");
    assert_eq!(
        (v.check.checktimeout, v.check.negotiatetimeout),
        (secs(5), secs(30))
    );
    assert_eq!(v.failurecount, 1);
    assert!(v.quiescent && v.cleanstop);
    assert_eq!(v.reals[0].weight, 1);
    assert_eq!(v.reals[0].check_port, 80);
    assert!(c.warnings.is_empty());

    // Another port: service none (always up); port 53: UDP.
    let c = parse_str("virtual=203.0.113.10:8080\n\treal=198.51.100.11 gate\nvirtual=203.0.113.10:53\n\treal=198.51.100.11 gate\n\tchecktype=off\n").unwrap();
    assert_eq!(c.virtuals[0].check.service, CheckService::None);
    assert_eq!(c.virtuals[1].id().proto, Proto::Udp);

    // Each timeout falls back to the other, the virtual's first.
    let t = |text: &str| {
        let v = &parse_str(text).unwrap().virtuals[0];
        (
            v.check.checktimeout.as_secs(),
            v.check.negotiatetimeout.as_secs(),
        )
    };
    let svc = "virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n";
    assert_eq!(t(&format!("negotiatetimeout=7\n{svc}")), (7, 7));
    assert_eq!(t(&format!("checktimeout=2\n{svc}")), (2, 2));
    assert_eq!(
        t(&format!("checktimeout=2\n{svc}\tnegotiatetimeout=6\n")),
        (6, 6)
    );
    assert_eq!(
        t(&format!("negotiatetimeout=8\n{svc}\tchecktimeout=1\n")),
        (1, 1)
    );
    // Globals apply wherever they are written.
    assert_eq!(t(&format!("{svc}checktimeout=4\n")), (4, 4));
}

#[test]
fn block_layout_follows_ldirectord() {
    // Comment and blank lines inside a block; a tab or 4+ spaces indent;
    // a line in the first column ends the block.
    let c = parse_str(
            "virtual=203.0.113.10:80\n    real=198.51.100.11 gate\n# note\n\n\t# indented note\n\treal=198.51.100.12 gate # trailing\nquiescent=no\nvirtual = 203.0.113.11:80\n        real = 198.51.100.13 gate\n",
        )
        .unwrap();
    assert_eq!(c.virtuals[0].reals.len(), 2);
    assert!(!c.virtuals[0].quiescent);
    assert_eq!(c.virtuals[1].reals[0].id.addr, ip("198.51.100.13"));
    // A '#' inside quotes is not a comment.
    let c = parse_str("virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n\treceive=\"#1 in\"\n")
        .unwrap();
    assert_eq!(
        c.virtuals[0].check.receive.as_ref().unwrap().source,
        "#1 in"
    );
}

#[test]
fn names_from_etc_hosts_and_services() {
    let c = parse_str(
        "virtual=www:www\n\treal=rs1.example.org:http gate\n\treal=rs1->198.51.100.12 gate\n",
    )
    .err();
    // rs1 twice: the range repeats .11.
    assert!(
        c.unwrap()
            .message
            .contains("duplicate real server 198.51.100.11:80 (also on line 2")
    );
    let c = parse_str("virtual=www:smtp\n\treal=rs1:mail gate\n\tchecktype=connect\n").unwrap();
    assert_eq!(c.virtuals[0].id().port, 25);
    assert_eq!(c.virtuals[0].reals[0].check_port, 25);
    let e = parse_str("virtual=nowhere:80\n\treal=rs1 gate\n").unwrap_err();
    assert_eq!(
        (e.line, e.message.as_str()),
        (
            1,
            "invalid address (nowhere) for virtual service (could not resolve host from /etc/hosts)"
        )
    );
    let e = parse_str("virtual=www:gopher\n\treal=rs1 gate\n").unwrap_err();
    assert!(
        e.message
            .contains("invalid port (gopher) for virtual service"),
        "{e}"
    );
}

#[test]
fn real_server_lines() {
    let v = |line: &str| {
        parse_str(&format!("virtual=203.0.113.10:80\n\treal={line}\n"))
            .map(|c| c.virtuals[0].reals.clone())
    };
    let r = v("198.51.100.11:8080 gate 5").unwrap();
    // Direct routing keeps the service's port; checks go to the real's.
    assert_eq!(
        (r[0].id.port, r[0].port_given, r[0].check_port, r[0].weight),
        (80, 8080, 8080, 5)
    );
    let r = v("198.51.100.11 gate \"status\" \"alive\"").unwrap();
    assert_eq!(r[0].request.as_deref(), Some("/status"));
    let r = v("198.51.100.11->198.51.100.20 gate 2").unwrap();
    assert_eq!(r.len(), 10);
    assert!(r.iter().all(|x| x.weight == 2));
    let r = v("198.51.100.11 gate \"http://198.51.100.50:81/x\", \"y\"").unwrap();
    assert_eq!(r[0].request.as_deref(), Some("http://198.51.100.50:81/x"));
}

/// Each kind of mistake gives its message on its line (and the file).
#[test]
fn mistakes_name_the_file_the_line_and_the_problem() {
    let svc = "virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n";
    let cases: Vec<(String, usize, &str)> = vec![
        ("bogus=1\n".into(), 1, "Unknown command \"bogus=1\""),
        (
            "checktimeout=0\n".into(),
            1,
            "invalid check timeout value `0'",
        ),
        (
            "checkinterval=ten\n".into(),
            1,
            "invalid check interval value `ten'",
        ),
        (
            "failurecount=-1\n".into(),
            1,
            "invalid failure count value `-1'",
        ),
        (
            "autoreload=maybe\n".into(),
            1,
            "autoreload must be 'yes' or 'no'",
        ),
        ("quiescent=1\n".into(), 1, "quiescent must be 'yes' or 'no'"),
        (
            "logfile=/var/log/x\n".into(),
            1,
            "logfile must be in double quotes",
        ),
        ("execute=other.cf\n".into(), 1, "execute is not supported"),
        ("timeout=3\n".into(), 1, "timeout directive deprecated"),
        (
            "real=198.51.100.11 gate\n".into(),
            1,
            "real= must be inside a virtual= block",
        ),
        (
            "  checktimeout=3\n".into(),
            1,
            "Unknown command \"checktimeout=3\": an indented directive",
        ),
        (
            "fallback=198.51.100.9:80 nat\n".into(),
            1,
            "forward method must be gate, masq or ipip",
        ),
        (
            "virtual=1\n\tchecktype=connect\n\treal=198.51.100.11 gate\n".into(),
            3,
            "its check needs a port",
        ),
        (
            "virtual=1\n\tprotocol=tcp\n".into(),
            2,
            "protocol must be fwm if the virtual service is a fwmark (a number)",
        ),
        ("virtual=0\n".into(), 1, "invalid fwmark value"),
        (
            "virtual=[2001:db8::1]:80\n".into(),
            1,
            "cannot specify an IPv6 address here",
        ),
        (
            "virtual=203.0.113.10\n".into(),
            1,
            "invalid address for virtual server",
        ),
        (
            "virtual=203.0.113.10:0\n\treal=198.51.100.11 gate\n".into(),
            1,
            "Zero port specified for non-persistent service",
        ),
        (
            format!("{svc}\treal=198.51.100.12 route\n"),
            3,
            "forward method must be gate, masq or ipip",
        ),
        (
            format!("{svc}\treal=198.51.100.12\n"),
            3,
            "the forwarding method is missing",
        ),
        (
            format!("{svc}\treal=198.51.100.12 gate 70000\n"),
            3,
            "invalid weight 70000",
        ),
        (
            format!("{svc}\treal=198.51.100.12 gate 1 junk\n"),
            3,
            "Invalid real server line, around \"junk\"",
        ),
        (
            format!("{svc}\treal=198.51.100.20->198.51.100.12 gate\n"),
            3,
            "Invalid Range",
        ),
        (
            format!("{svc}\treal=127.0.0.1 gate\n"),
            3,
            "real server 127.0.0.1 is the director itself",
        ),
        (
            format!("{svc}\treal6=[2001:db8::2]:80 gate\n"),
            3,
            "cannot specify \"real6\" here",
        ),
        (
            format!("{svc}\treal=198.51.100.11 gate\n"),
            3,
            "duplicate real server 198.51.100.11:80 (also on line 2",
        ),
        (
            format!("{svc}\tchecktype=ping\n"),
            3,
            "checktype=ping is not supported by lbctl daemon",
        ),
        (
            format!("{svc}\tchecktype=external\n"),
            3,
            "checktype=external is not supported",
        ),
        (
            format!("{svc}\tchecktype=sometimes\n"),
            3,
            "checktype must be",
        ),
        (
            format!("{svc}\tservice=imaps\n"),
            3,
            "service=imaps cannot be checked with checktype=negotiate: lbctl daemon negotiates http, https, simpletcp, none",
        ),
        (
            format!("{svc}\tservice=gopher\n"),
            3,
            "service must be dns, ftp",
        ),
        (
            format!("{svc}\tschedflags=sh-port\n"),
            3,
            "incompatible scheduler flag `sh-port'",
        ),
        (
            format!("{svc}\tscheduler=mh\n\tschedflags=mh-port,port\n"),
            4,
            "invalid scheduler flag `port'",
        ),
        (
            format!("{svc}\tscheduler=fancy\n"),
            3,
            "scheduler fancy: no such scheduler",
        ),
        (
            format!("{svc}\tscheduler=W-RR\n"),
            3,
            "invalid scheduler, should be only lowercase letters",
        ),
        (
            format!("{svc}\tpersistent=0\n"),
            3,
            "invalid persistent timeout `0'",
        ),
        (
            format!("{svc}\tnetmask=255.0.255.0\n"),
            3,
            "invalid netmask: 255.0.255.0 is not contiguous",
        ),
        (
            format!("{svc}\tnetmask=24\n"),
            3,
            "invalid netmask: dotted quad notation is required",
        ),
        (
            format!("{svc}\tprotocol=fwm\n"),
            3,
            "protocol must be tcp or udp if the virtual service is an address and port",
        ),
        (
            format!("{svc}\tprotocol=sctp\n"),
            3,
            "protocol must be tcp or udp",
        ),
        (
            format!("{svc}\tops=yes\n"),
            3,
            "One-Packet Scheduling is only for UDP virtual services",
        ),
        (
            format!("{svc}\trequest=/index.html\n"),
            3,
            "request must be in double quotes",
        ),
        (format!("{svc}\treceive=\"\"\n"), 3, "receive: empty string"),
        (
            format!("{svc}\treceive=\"(unclosed\"\n"),
            3,
            "is not a regular expression",
        ),
        (
            format!("{svc}\treceive=\"(?<=x)y\"\n"),
            3,
            "is not a regular expression",
        ),
        (
            format!("{svc}\thttpmethod=POST\n"),
            3,
            "httpmethod must be GET or HEAD",
        ),
        (
            format!("{svc}\tcheckport=0\n"),
            3,
            "checkport must be in range 1..65535",
        ),
        (
            format!("{svc}\tfailurecount=0\n"),
            3,
            "invalid failure count `0'",
        ),
        (
            format!("{svc}\tfallback6=[::1]:80\n"),
            3,
            "cannot specify \"fallback6\" here",
        ),
        (
            format!("{svc}\tfallback=198.51.100.11\n"),
            3,
            "fallback 198.51.100.11:80 is also a real server",
        ),
        (
            format!("{svc}\tcleanstop=sometimes\n"),
            3,
            "cleanstop must be 'yes' or 'no'",
        ),
        (
            format!("{svc}\tvirtualhost\n"),
            3,
            "Unknown command \"virtualhost\"",
        ),
        (
            format!("{svc}\tfrobnicate=1\n"),
            3,
            "Unknown command \"frobnicate=1\"",
        ),
        (
            format!("{svc}  real=198.51.100.12 gate\n"),
            3,
            "Unknown command",
        ),
        (
            format!("{svc}{svc}"),
            3,
            "duplicate virtual server (also on line 1)",
        ),
        (
            "virtual=203.0.113.10:53\n\treal=198.51.100.11 gate\n\tchecktype=connect\n".into(),
            3,
            "checktype=connect on a UDP service is a ping check in ldirectord",
        ),
        (
            "virtual=203.0.113.10:993\n\treal=198.51.100.11 gate\n".into(),
            1,
            "service=imaps (the default for port 993) cannot be checked with checktype=negotiate",
        ),
    ];
    for (text, line, msg) in cases {
        let e = parse_str(&text).expect_err(&text);
        assert_eq!(e.line, line, "{text}: {e}");
        assert!(e.message.contains(msg), "{text}: got {e}, wanted {msg}");
        assert!(
            e.to_string()
                .starts_with(&format!("/etc/ha.d/test.cf:{line}: ")),
            "{e}"
        );
    }
    // A scheduler lbctl does not implement (while one is left) is refused
    // with the list of those it does.
    for name in crate::model::UNSUPPORTED_SCHEDULERS {
        let text = format!("{svc}\tscheduler={name}\n");
        let e = parse_str(&text).expect_err(&text);
        let want = format!(
            "scheduler {name} is not supported yet (supported: {})",
            crate::model::supported_names()
        );
        assert_eq!((e.line, e.message.contains(&want)), (3, true), "{e}");
    }
    // Every implemented one is taken.
    for name in crate::model::ALL_SCHEDULERS {
        let sched = Sched::from_name(name).unwrap();
        if sched.implemented() {
            let text = format!("{svc}\tscheduler={name}\n");
            assert!(parse_str(&text).is_ok(), "{name}");
        }
    }
    // A service lbctl cannot negotiate is fine when it is not negotiated.
    assert!(parse_str(&format!("{svc}\tservice=imaps\n\tchecktype=connect\n")).is_ok());
    // Hundreds of real servers in one service (IPVS has no limit; the
    // tables take up to MAX_SERVICE_DESTS).
    let cfg = parse_str(
        "virtual=203.0.113.10:80\n\treal=198.51.100.1->198.51.100.254 gate\n\
         \treal=192.0.2.1->192.0.2.254 gate\n\treal=203.0.113.11->203.0.113.254 gate\n",
    )
    .unwrap();
    assert_eq!(cfg.virtuals[0].reals.len(), 254 + 254 + 244);
    // A missing file.
    let e = load(Path::new("/nonexistent/ldirectord.cf")).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(
        e.to_string()
            .starts_with("/nonexistent/ldirectord.cf: cannot read"),
        "{e}"
    );
}

#[test]
fn tolerated_directives_warn() {
    let c = parse_str(
            "connecttimeout=4\nchecktimeout=2\nfallback6=[::1]:80\nlogfile=\"local0\"\nsupervised\nfork=no\nvirtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n\tcheckinterval=3\n\tcheckcount=2\n\tsmtp=mail\n",
        )
        .unwrap();
    let msgs: Vec<(usize, &str)> = c
        .warnings
        .iter()
        .map(|w| (w.line, w.message.as_str()))
        .collect();
    assert_eq!(msgs.len(), 6, "{msgs:?}");
    assert!(msgs[0].1.starts_with("connecttimeout is deprecated"));
    assert!(
        msgs[1]
            .1
            .starts_with("fallback [::1]:80 is the director itself")
    );
    assert!(msgs[2].1.contains("bare supervised"));
    assert_eq!(msgs[3].0, 10); // checkcount
    assert_eq!(msgs[4].0, 11); // smtp
    assert_eq!(c.logfile, Some(LogTarget::Syslog("local0".into())));
    assert_eq!(
        msgs[5],
        (
            9,
            "checkinterval in virtual service 203.0.113.10:80 ignored when fork=no"
        )
    );
    assert_eq!(c.virtuals[0].checkinterval, secs(10));
    assert_eq!(c.virtuals[0].check.negotiatetimeout, secs(4));
    // With fork=yes the virtual's interval is used.
    let c = parse_str(
        "fork=yes\nvirtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n\tcheckinterval=3\n",
    )
    .unwrap();
    assert_eq!(c.virtuals[0].checkinterval, secs(3));
    assert!(c.warnings.is_empty());
}

/// ldirectord's `ld_openlog`: a leading `/` is a file, anything else a
/// syslog facility (any case, `LOG_` optional); an unknown facility is
/// refused with the line.
#[test]
fn logfile_is_a_path_or_a_facility() {
    let svc = "virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n";
    for (value, want) in [
        ("/var/log/ld.log", LogTarget::File("/var/log/ld.log".into())),
        ("local0", LogTarget::Syslog("local0".into())),
        ("LOG_LOCAL7", LogTarget::Syslog("local7".into())),
        ("Daemon", LogTarget::Syslog("daemon".into())),
    ] {
        let c = parse_str(&format!("logfile=\"{value}\"\n{svc}")).unwrap();
        assert_eq!(c.logfile, Some(want), "{value}");
        assert!(c.warnings.is_empty(), "{value}: {:?}", c.warnings);
    }
    for bad in ["local8", "var/log/ld.log", "log_"] {
        let e = parse_str(&format!("logfile=\"{bad}\"\n{svc}")).unwrap_err();
        assert_eq!(e.line, 1, "{bad}");
        assert!(
            e.message
                .starts_with(&format!("unable to open logfile: {bad} ")),
            "{bad}: {e}"
        );
    }
}

/// `service=https`, also ldirectord's default for port 443 (its
/// `ld_port_to_service`): checked on 443 unless the real gives a port, with
/// `virtualhost` and an absolute `https://` per-real request kept.
#[test]
fn https_is_negotiated() {
    let c = parse_str(
        "virtual=203.0.113.10:443\n\treal=198.51.100.11 gate\n\treal=198.51.100.12:8443 gate 2 \"https://198.51.100.50/x\", \"ok\"\n\tvirtualhost=www.example.org\n",
    )
    .unwrap();
    let v = &c.virtuals[0];
    assert_eq!(v.check.kind, CheckType::Negotiate);
    assert_eq!(v.check.service, CheckService::Https);
    assert_eq!(v.check.virtualhost.as_deref(), Some("www.example.org"));
    assert_eq!(v.reals[0].check_port, 443);
    assert_eq!(v.reals[1].check_port, 8443);
    assert_eq!(
        v.reals[1].request.as_deref(),
        Some("https://198.51.100.50/x")
    );
    let c =
        parse_str("virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n\tservice=https\n").unwrap();
    assert_eq!(c.virtuals[0].check.service, CheckService::Https);
    // The check port follows the service, as ldirectord's ld_checkport.
    assert_eq!(c.virtuals[0].reals[0].check_port, 443);
}

#[test]
fn schedflags_go_to_sh_and_mh_as_ldirectord_passes_them() {
    use crate::model::SchedFlags;
    let sched = |extra: &str| {
        let text = format!("virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n{extra}");
        parse_str(&text).unwrap().virtuals[0].spec.sched
    };
    assert_eq!(sched("\tscheduler=sh\n"), Sched::Sh(SchedFlags::NONE));
    assert_eq!(
        sched("\tscheduler=sh\n\tschedflags=sh-fallback,sh-port\n"),
        Sched::Sh(SchedFlags(SchedFlags::FALLBACK.0 | SchedFlags::PORT.0))
    );
    // ldirectord keeps the first word only.
    assert_eq!(
        sched("\tschedflags=mh-port extra\n\tscheduler=mh\n"),
        Sched::Mh(SchedFlags::PORT)
    );
}

// --- reading the file ---------------------------------------------------------

fn tmp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("lb-config-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn bytes_that_are_not_utf8_are_accepted_in_comments() {
    // Latin-1 "é" (0xE9) in a comment line, after a directive, and in a
    // virtual block, as ldirectord (which reads bytes) accepts them.
    let text = b"# r\xe9seau de test\ncheckinterval=3 # caf\xe9\nvirtual=203.0.113.10:80\n\t# \xe9\xff\n\treal=198.51.100.11 gate # \xe9\n\trequest=\"/#x\" # \xe9\n";
    let t = decode(Path::new("/etc/ha.d/test.cf"), text.to_vec()).unwrap();
    assert_eq!(t.lines().count(), 6);
    assert!(t.starts_with("# r\u{fffd}seau de test\ncheckinterval=3 # caf\u{fffd}\n"));
    let c = parse_str(&t).unwrap();
    assert_eq!(c.checkinterval, secs(3));
    assert_eq!(c.virtuals[0].reals.len(), 1);
    // A `#` inside double quotes is part of the value.
    let e = decode(Path::new("x"), b"\trequest=\"/#\xe9\"\n".to_vec()).unwrap_err();
    assert_eq!(
        (e.line, e.message.starts_with("byte 0xE9 at column 13")),
        (1, true),
        "{e}"
    );
    // Valid UTF-8 is taken as it is.
    let t = decode(Path::new("x"), "# café\n".as_bytes().to_vec()).unwrap();
    assert_eq!(t, "# café\n");
}

#[test]
fn bytes_that_are_not_utf8_in_a_value_name_the_line() {
    let text = b"checkinterval=3\nvirtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n\treceive=\"caf\xe9\" # ok\n";
    let e = decode(Path::new("/etc/ha.d/test.cf"), text.to_vec()).unwrap_err();
    assert_eq!(e.line, 4);
    assert!(
        e.to_string().starts_with(
            "/etc/ha.d/test.cf:4: byte 0xE9 at column 14 is not UTF-8: lbctl reads ldirectord.cf as UTF-8 text"
        ),
        "{e}"
    );
}

#[test]
fn only_regular_files_of_bounded_size_are_read() {
    let e = load(Path::new("/dev/zero")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/dev/zero: cannot read the configuration: not a regular file (a character device): \
         lbctl reads only regular files"
    );
    let dir = tmp_dir("read");
    let fifo = dir.join("fifo.cf");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let e = read(&fifo).unwrap_err();
    assert!(e.message.contains("not a regular file (a FIFO)"), "{e}");
    // A sparse file one byte over the limit: refused without reading it.
    let big = dir.join("big.cf");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(MAX_CONFIG_BYTES + 1)
        .unwrap();
    let e = read(&big).unwrap_err();
    assert_eq!(e.line, 0);
    assert!(
        e.message
            .ends_with("the file is larger than 16 MiB (16777216 bytes), the most lbctl reads"),
        "{e}"
    );
    let ok = dir.join("ok.cf");
    std::fs::write(&ok, b"checkinterval=3 # \xe9\n").unwrap();
    assert_eq!(load(&ok).unwrap().checkinterval, secs(3));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_huge_bad_line_gives_a_short_message() {
    let junk = "x".repeat(1 << 20);
    for text in [
        format!("{junk}\n"),
        format!("checkinterval={junk}\n"),
        format!("virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n\treceive=\"({junk}\"\n"),
        format!("virtual=203.0.113.10:80\n\treal={junk} gate\n"),
    ] {
        let e = parse_str(&text).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.len() < 600,
            "{} bytes: {}",
            shown.len(),
            &shown[..200]
        );
        assert!(shown.starts_with("/etc/ha.d/test.cf:"), "{shown}");
        assert!(shown.contains("xxxx"), "{shown}");
    }
}

#[test]
fn real_thresholds_as_ldirectord_reads_them() {
    use crate::model::Thresholds;
    let t = |upper, lower| Thresholds { upper, lower };
    let of = |line: &str| {
        let c = parse_str(&format!("virtual=www:80\n\treal={line}\n"))
            .unwrap_or_else(|e| panic!("{line}: {e}"));
        let r = &c.virtuals[0].reals[0];
        (r.weight, r.thresholds, r.request.clone())
    };
    assert_eq!(of("rs1 gate"), (1, Thresholds::NONE, None));
    assert_eq!(of("rs1 gate 2 l:10 u:100"), (2, t(100, 10), None));
    assert_eq!(of("rs1 gate 2 u:100"), (2, t(100, 0), None));
    assert_eq!(of("rs1 gate l:0 u:0"), (1, Thresholds::NONE, None));
    assert_eq!(
        of("rs1:80 gate 3 \"/check\", \"ok\" l:5 u:8"),
        (3, t(8, 5), Some("/check".to_owned()))
    );
    let err = |line: &str| {
        parse_str(&format!("virtual=www:80\n\treal={line}\n"))
            .unwrap_err()
            .message
    };
    // ldirectord passes these to ipvsadm, where the kernel refuses them.
    assert!(
        err("rs1 gate l:10").contains("the lower threshold (l:10) is higher than the upper"),
        "{}",
        err("rs1 gate l:10")
    );
    assert!(err("rs1 gate l:10 u:5").contains("is higher than the upper threshold (u:5)"));
    assert!(err("rs1 gate u:5 l:3").contains("ldirectord's order: l:LOWER, then u:UPPER"));
    assert!(err("rs1 gate u:2147483648").contains("invalid upper threshold 2147483648"));
    assert!(err("rs1 gate u:x").contains("Invalid real server line"));
}

#[test]
fn a_fwmark_virtual_is_an_f_service() {
    let c = parse_str(
        "virtual=1\n\
         \treal=198.51.100.11 gate\n\
         \treal=198.51.100.12:8080 gate 2\n\
         \tscheduler=rr\n\
         \tpersistent=300\n\
         \tprotocol=fwm\n\
         virtual=2\n\
         \tchecktype=connect\n\
         \tcheckport=443\n\
         \treal=198.51.100.13 gate\n\
         \tops=yes\n",
    )
    .unwrap();
    let v = &c.virtuals[0];
    assert_eq!(v.spec.id, ServiceId::fwmark(1));
    assert_eq!(v.spec.persistent, Some(300));
    // Reals keep their own port (0 without one); ldirectord's default
    // check of a fwmark service is service=none.
    let ports: Vec<u16> = v.reals.iter().map(|r| r.id.port).collect();
    assert_eq!(ports, [0, 8080]);
    assert_eq!(v.check.service, CheckService::None);
    // Connect checks go to checkport; ops=yes is not passed on for fwm.
    let w = &c.virtuals[1];
    assert_eq!(w.spec.id, ServiceId::fwmark(2));
    assert_eq!(w.reals[0].check_port, 443);
    assert!(!w.spec.one_packet);
}
