//! `-g`/`-i`/`-m`, the `--tun-*` options and `--tun-info`: ipvsadm 1.31's
//! parsing, checks in `process_options`'s order, and messages (each one
//! checked against /usr/sbin/ipvsadm with its IPVS calls stubbed).

use super::*;
use crate::model::{TunCsum, TunType, Tunnel};

const ADD: &str = "-a -t 10.0.0.100:80 -r 10.0.0.11";

fn tunnel(kind: TunType, port: u16, csum: TunCsum) -> Fwd {
    Fwd::Tunnel(Tunnel { kind, port, csum })
}

/// The real server that a `-a` line adds (panics on anything else).
fn added(cmd: &str) -> RealSpec {
    match p(cmd) {
        Ok(Command::AddReal { real, .. }) => real,
        other => panic!("{cmd}: {other:?}"),
    }
}

#[test]
fn methods_and_tunnel_settings() {
    assert_eq!(added(&format!("{ADD} -g")).fwd, Fwd::Route);
    assert_eq!(added(ADD).fwd, Fwd::Route, "-g is the default");
    assert_eq!(added(&format!("{ADD} -m")).fwd, Fwd::Masq);
    assert_eq!(added(&format!("{ADD} --masquerading")).fwd, Fwd::Masq);
    assert_eq!(added(&format!("{ADD} --gatewaying")).fwd, Fwd::Route);
    let ipip = Fwd::Tunnel(Tunnel::IPIP);
    assert_eq!(added(&format!("{ADD} -i")).fwd, ipip);
    assert_eq!(added(&format!("{ADD} --ipip")).fwd, ipip);
    assert_eq!(added(&format!("{ADD} -i --tun-type ipip")).fwd, ipip);
    for (opts, fwd) in [
        (
            "--tun-type gue --tun-port 6080",
            tunnel(TunType::Gue, 6080, TunCsum::NoCsum),
        ),
        (
            "--tun-port 6080 --tun-type gue --tun-nocsum",
            tunnel(TunType::Gue, 6080, TunCsum::NoCsum),
        ),
        (
            "--tun-type gue --tun-port 65535 --tun-csum",
            tunnel(TunType::Gue, 65535, TunCsum::Csum),
        ),
        (
            "--tun-type gue --tun-port 1 --tun-remcsum",
            tunnel(TunType::Gue, 1, TunCsum::RemCsum),
        ),
        ("--tun-type gre", tunnel(TunType::Gre, 0, TunCsum::NoCsum)),
        (
            "--tun-type gre --tun-nocsum",
            tunnel(TunType::Gre, 0, TunCsum::NoCsum),
        ),
        (
            "--tun-csum --tun-type gre",
            tunnel(TunType::Gre, 0, TunCsum::Csum),
        ),
    ] {
        assert_eq!(added(&format!("{ADD} -i {opts}")).fwd, fwd, "{opts}");
        // The method may come after the tunnel options.
        assert_eq!(added(&format!("{ADD} {opts} --ipip")).fwd, fwd, "{opts}");
    }
    // -e sends everything: a method and settings are always given.
    assert_eq!(
        p("-e -t 10.0.0.100:80 -r 10.0.0.11 -w 5"),
        Ok(Command::EditReal {
            service: tcp("10.0.0.100", 80),
            real: real("10.0.0.11", 80, 5)
        })
    );
    assert_eq!(
        p("-e -t 10.0.0.100:80 -r 10.0.0.11 -i --tun-type gre --tun-csum"),
        Ok(Command::EditReal {
            service: tcp("10.0.0.100", 80),
            real: RealSpec {
                fwd: tunnel(TunType::Gre, 0, TunCsum::Csum),
                ..real("10.0.0.11", 80, 1)
            }
        })
    );
}

/// ipvsadm makes a -g or -i real's port the service's, silently; a -m real
/// keeps its own (0 included: the packet's port); a fwmark service's real
/// keeps what was given.
#[test]
fn ports_of_each_method() {
    let port = |cmd: &str| added(cmd).id.port;
    assert_eq!(port("-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -g"), 80);
    assert_eq!(port("-a -t 10.0.0.100:80 -r 10.0.0.11:8080"), 80);
    assert_eq!(port("-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -i"), 80);
    assert_eq!(
        port("-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -i --tun-type gue --tun-port 6080"),
        80
    );
    assert_eq!(port("-a -t 10.0.0.100:80 -r 10.0.0.11:8080 -m"), 8080);
    assert_eq!(port("-a -t 10.0.0.100:80 -r 10.0.0.11:0 -m"), 0);
    assert_eq!(port("-a -t 10.0.0.100:80 -r 10.0.0.11 -m"), 80);
    assert_eq!(port("-a -t 10.0.0.100:80 -r 10.0.0.11:http -m"), 80);
    assert_eq!(
        port("-a -t [2001:db8::1]:80 -r [2001:db8::11]:8080 -m"),
        8080
    );
    assert_eq!(port("-a -t [2001:db8::1]:80 -r [2001:db8::11]:8080 -i"), 80);
    assert_eq!(port("-a -f 1 -r 10.0.0.11:8080 -i"), 8080);
    assert_eq!(port("-a -f 1 -r 10.0.0.11 -m"), 0);
    // -d finds a -m real by its own port.
    assert_eq!(
        p("-d -t 10.0.0.100:80 -r 10.0.0.11:8080"),
        Ok(Command::DeleteReal {
            service: tcp("10.0.0.100", 80),
            real: RealId {
                addr: ip("10.0.0.11"),
                port: 8080
            }
        })
    );
}

/// A real of the other family is a tunnelling one only (4in6, 6in4), with
/// its port forced to the service's.
#[test]
fn other_family_only_for_tunnels() {
    for (cmd, service, addr) in [
        (
            "-a -t [2001:db8::1]:80 -r 10.0.0.11 -i",
            tcp("2001:db8::1", 80),
            "10.0.0.11",
        ),
        (
            "-a -t 10.0.0.100:80 -r [2001:db8::11]:8080 -i --tun-type gue --tun-port 6080",
            tcp("10.0.0.100", 80),
            "2001:db8::11",
        ),
        (
            "-a -f 1 -6 -r 10.0.0.11:80 -i --tun-type gre",
            ServiceId::fwmark_of_family(1, true),
            "10.0.0.11",
        ),
    ] {
        match p(cmd) {
            Ok(Command::AddReal { service: s, real }) => {
                assert_eq!(s, service, "{cmd}");
                assert_eq!(real.id.addr, ip::<std::net::IpAddr>(addr), "{cmd}");
                assert_eq!(real.id.port, 80, "{cmd}");
                assert!(matches!(real.fwd, Fwd::Tunnel(_)), "{cmd}");
            }
            other => panic!("{cmd}: {other:?}"),
        }
    }
    for cmd in [
        "-a -t [2001:db8::1]:80 -r 10.0.0.11 -m",
        "-a -t 10.0.0.100:80 -r [2001:db8::11]:80 -m",
        "-a -f 1 -6 -r 10.0.0.11 -m",
        "-e -t 10.0.0.100:80 -r [2001:db8::11]:80 -g",
        // The family is checked before the tunnel options.
        "-a -t [2001:db8::1]:80 -r 10.0.0.11 -m --tun-type gre",
    ] {
        assert_eq!(p(cmd), Err(CliError::DifferentFamily), "{cmd}");
    }
}

/// Every refusal, as ipvsadm 1.31 words it (exit status 2), in its order.
#[test]
fn refusals_as_ipvsadm_words_them() {
    for (opts, message) in [
        ("-g -i", "multiple 'forwarding-method' options specified"),
        ("-i -i", "multiple 'forwarding-method' options specified"),
        ("-m -g", "multiple 'forwarding-method' options specified"),
        (
            "-i --tun-csum --tun-csum",
            "multiple 'tun-csum' options specified",
        ),
        (
            "-i --tun-type gue --tun-port 1 --tun-port 2",
            "multiple 'tun-port' options specified",
        ),
        (
            "-i --tun-type gue --tun-type gre",
            "multiple 'tun-type' options specified",
        ),
        ("-i --tun-type GUE", "illegal tunnel type specified"),
        ("-i --tun-type ipip6", "illegal tunnel type specified"),
        ("-m --tun-type foo", "illegal tunnel type specified"),
        (
            "-i --tun-type gue --tun-port 0",
            "illegal tunnel port specified",
        ),
        (
            "-i --tun-type gue --tun-port 65536",
            "illegal tunnel port specified",
        ),
        (
            "-i --tun-type gue --tun-port http",
            "illegal tunnel port specified",
        ),
        (
            "-i --tun-info",
            "Illegal 'tun-info' option with the 'add-server' command",
        ),
        (
            "-g --tun-type gre",
            "Tunnel options conflict with forward method",
        ),
        (
            "-g --tun-type gue",
            "Tunnel options conflict with forward method",
        ),
        (
            "-m --tun-nocsum",
            "Tunnel options conflict with forward method",
        ),
        (
            "--tun-type ipip",
            "Tunnel options conflict with forward method",
        ),
        (
            "--tun-port 6080",
            "Tunnel options conflict with forward method",
        ),
        (
            "-m --tun-remcsum",
            "Tunnel options conflict with forward method",
        ),
        (
            "-i --tun-type gue",
            "You need to supply the 'tun-port' option for the 'gue' tunnel type",
        ),
        (
            "-i --tun-type gue --tun-csum",
            "You need to supply the 'tun-port' option for the 'gue' tunnel type",
        ),
        (
            "-i --tun-type gue --tun-port 6080 --tun-nocsum --tun-csum",
            "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type",
        ),
        (
            "-i --tun-type gue --tun-port 6080 --tun-csum --tun-remcsum",
            "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type",
        ),
        (
            "-i --tun-type gue --tun-port 6080 --tun-remcsum --tun-nocsum",
            "The option 'tun-remcsum' conflicts with the 'tun-nocsum' option in the 'gue' tunnel type",
        ),
        (
            "-i --tun-type gre --tun-csum --tun-nocsum",
            "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gre' tunnel type",
        ),
        (
            "-i --tun-type gre --tun-port 6080",
            "Illegal 'tun-port' option with the 'gre' tunnel type",
        ),
        (
            "-i --tun-type gre --tun-remcsum",
            "Illegal 'tun-remcsum' option with the 'gre' tunnel type",
        ),
        (
            "-i --tun-csum",
            "Illegal 'tun-csum' option with the 'ipip' tunnel type",
        ),
        (
            "-i --tun-port 6080",
            "Illegal 'tun-port' option with the 'ipip' tunnel type",
        ),
        (
            "-i --tun-type ipip --tun-nocsum",
            "Illegal 'tun-nocsum' option with the 'ipip' tunnel type",
        ),
        (
            "-i --tun-type ipip --tun-remcsum",
            "Illegal 'tun-remcsum' option with the 'ipip' tunnel type",
        ),
    ] {
        for cmd in [
            format!("{ADD} {opts}"),
            format!("-e -t 10.0.0.100:80 -r 10.0.0.11 {opts}"),
        ] {
            let err = p(&cmd).expect_err(&cmd);
            let message = if cmd.starts_with("-e") {
                message.replace("add-server", "edit-server")
            } else {
                message.to_owned()
            };
            assert_eq!(err.render("lbctl"), format!("{message}\n"), "{cmd}");
            assert_eq!(err.exit_code(), 2, "{cmd}");
            // The same in -R input.
            assert_eq!(
                parse_restore_line_with(&cmd, &names()).map(|_| ()),
                Err(err),
                "{cmd}"
            );
        }
    }
    for (cmd, message) in [
        (
            "-A -t 10.0.0.100:80 --tun-type gue",
            "Illegal 'tun-type' option with the 'add-service' command",
        ),
        (
            "-E -t 10.0.0.100:80 -i",
            "Illegal 'forwarding-method' option with the 'edit-service' command",
        ),
        (
            "-L --tun-type gue",
            "Illegal 'tun-type' option with the 'list' command",
        ),
        (
            "-L --tun-port 1",
            "Illegal 'tun-port' option with the 'list' command",
        ),
        (
            "-L --tun-csum",
            "Illegal 'tun-csum' option with the 'list' command",
        ),
        (
            "-d -t 10.0.0.100:80 -r 10.0.0.11 --tun-info",
            "Illegal 'tun-info' option with the 'delete-server' command",
        ),
        (
            "-d -t 10.0.0.100:80 -r 10.0.0.11 -m",
            "Illegal 'forwarding-method' option with the 'delete-server' command",
        ),
        (
            "-S --tun-info",
            "Illegal 'tun-info' option with the 'save' command",
        ),
        (
            "-a -t 10.0.0.100:80 -i --tun-type gue",
            "You need to supply the 'real-server' option for the 'add-server' command",
        ),
    ] {
        let err = p(cmd).expect_err(cmd);
        assert_eq!(err.render("lbctl"), format!("{message}\n"), "{cmd}");
        assert_eq!(err.exit_code(), 2, "{cmd}");
    }
}

/// lbctl's own refusal of a real on the director comes after every check of
/// ipvsadm's (which would pass such a real to the kernel).
#[test]
fn ipvsadms_checks_come_before_lbctls_local_real() {
    assert_eq!(
        p("-a -t 10.0.0.100:80 -r 127.0.0.1 -g --tun-type gre"),
        Err(CliError::TunnelOptionsConflict)
    );
    assert_eq!(
        p("-a -t [2001:db8::1]:80 -r 127.0.0.1 -m"),
        Err(CliError::DifferentFamily)
    );
    assert_eq!(
        p("-a -t 10.0.0.100:80 -r 127.0.0.1 -i --tun-type gue"),
        Err(CliError::MissingTunnelOption {
            option: "tun-port",
            tunnel: "gue"
        })
    );
    assert_eq!(
        p("-a -t 10.0.0.100:80 -r 127.0.0.1 -m"),
        Err(CliError::LocalReal(ip("127.0.0.1")))
    );
}

#[test]
fn tun_info_is_a_listing_format() {
    let t = ListFormat {
        tun_info: true,
        ..ListFormat::default()
    };
    assert_eq!(p("-L --tun-info"), Ok(list(ListTarget::All, t)));
    assert_eq!(
        p("-L -n --tun-info"),
        Ok(list(ListTarget::All, ListFormat { numeric: true, ..t }))
    );
    assert_eq!(
        p("-L -t 10.0.0.100:80 --tun-info"),
        Ok(list(ListTarget::Service(tcp("10.0.0.100", 80)), t))
    );
    // Accepted with the other formats, which win when listing; and with -c,
    // which ignores it.
    assert_eq!(
        p("-L --tun-info --stats"),
        Ok(list(ListTarget::All, ListFormat { stats: true, ..t }))
    );
    assert_eq!(p("-L -c --tun-info"), Ok(list(ListTarget::Conns, t)));
    assert_eq!(
        p("-L --tun-info --tun-info"),
        Err(CliError::MultipleOptions("tun-info"))
    );
}

/// `-S`'s lines for each method (`print_tunnel_rule`'s forms) read back
/// with `-R` as the same real server.
#[test]
fn saved_lines_read_back() {
    for (line, fwd, port) in [
        (
            "-a -t 207.175.44.110:80 -r 192.168.10.1:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum",
            tunnel(TunType::Gue, 6080, TunCsum::NoCsum),
            80,
        ),
        (
            "-a -t 207.175.44.110:80 -r 192.168.10.2:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum",
            tunnel(TunType::Gue, 6080, TunCsum::RemCsum),
            80,
        ),
        (
            "-a -t 207.175.44.110:80 -r 192.168.11.1:80 -i -w 1 --tun-type gre --tun-csum",
            tunnel(TunType::Gre, 0, TunCsum::Csum),
            80,
        ),
        (
            "-a -t 207.175.44.110:80 -r 192.168.12.1:80 -i -w 1 --tun-type ipip",
            Fwd::Tunnel(Tunnel::IPIP),
            80,
        ),
        (
            "-a -t 207.175.44.110:80 -r 192.168.13.1:8080 -m -w 1",
            Fwd::Masq,
            8080,
        ),
        (
            "-a -t 207.175.44.110:80 -r 192.168.13.1:0 -m -w 1 -x 10 -y 5",
            Fwd::Masq,
            0,
        ),
    ] {
        match parse_restore_line_with(line, &names()) {
            Ok(Some(Command::AddReal { real, .. })) => {
                assert_eq!((real.fwd, real.id.port), (fwd, port), "{line}");
            }
            other => panic!("{line}: {other:?}"),
        }
    }
}

#[test]
fn help_lists_the_methods_and_tunnel_options() {
    let help = usage("lbctl");
    for line in [
        "  --gatewaying   -g                   gatewaying (direct routing) (default)\n",
        "  --ipip         -i                   ipip encapsulation (tunneling)\n",
        "  --masquerading -m                   masquerading (NAT)\n",
        "  --tun-type      type                one of ipip|gue|gre,\n\
         \x20                                     the default tunnel type is ipip.\n",
        "  --tun-port      port                tunnel destination port\n",
        "  --tun-nocsum                        tunnel encapsulation without checksum\n",
        "  --tun-csum                          tunnel encapsulation with checksum\n",
        "  --tun-remcsum                       tunnel encapsulation with remote checksum\n",
        "  --tun-info                          output of tunnel information\n",
        "pmtu_disc (0|1), nat_icmp_send (0|1)\n",
    ] {
        assert!(help.contains(line), "{line}");
    }
    assert!(!help.contains("-i and -m with"), "no longer unsupported");
}

#[test]
fn pmtu_disc_and_nat_icmp_send_sysctls() {
    for (name, knob) in [
        ("pmtu_disc", Sysctl::PmtuDisc),
        ("nat_icmp_send", Sysctl::NatIcmpSend),
    ] {
        assert_eq!(
            p(&format!("sysctl {name}")),
            Ok(Command::Sysctl(SysctlCmd::Show(knob)))
        );
        assert_eq!(
            p(&format!("sysctl net.ipv4.vs.{name}=0")),
            Ok(Command::Sysctl(SysctlCmd::Set(knob, 0)))
        );
        assert_eq!(
            p(&format!("sysctl {name}=1")),
            Ok(Command::Sysctl(SysctlCmd::Set(knob, 1)))
        );
        let err = p(&format!("sysctl {name}=2")).unwrap_err();
        assert_eq!(
            err.render("lbctl"),
            format!("lbctl: invalid value `2' for {name} (expected 0 or 1)\n")
        );
    }
    assert_eq!(
        p("sysctl pmtu").unwrap_err().render("lbctl"),
        "lbctl: unknown sysctl `pmtu' (known: expire_nodest_conn, expire_quiescent_template, \
         conn_reuse_mode, pmtu_disc, nat_icmp_send)\n"
    );
}
