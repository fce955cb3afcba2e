//! IPv6 on the command line, as ipvsadm 1.31 reads it.

use super::*;

const V6_ALL: &str = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
const V6_64: &str = "ffff:ffff:ffff:ffff::";

fn add(
    id: ServiceId,
    sched: Sched,
    persistent: Option<u32>,
    mask: &str,
) -> Result<Command, CliError> {
    Ok(Command::AddService(spec(id, sched, persistent, mask)))
}

fn add_real(service: ServiceId, addr: &str, port: u16, weight: u32) -> Result<Command, CliError> {
    Ok(Command::AddReal {
        service,
        real: real(addr, port, weight),
    })
}

#[test]
fn bracketed_services_with_a_port_or_a_port_name() {
    let svc = tcp("2001:db8::1", 80);
    assert_eq!(
        p("-A -t [2001:db8::1]:80 -s wrr"),
        add(svc, Sched::Wrr, None, V6_ALL)
    );
    assert_eq!(
        p("-A -t [2001:db8::1]:http"),
        add(svc, Sched::Wlc, None, V6_ALL)
    );
    assert_eq!(
        p("-A -u [2001:DB8:0::1]:domain -s rr"),
        add(udp("2001:db8::1", 53), Sched::Rr, None, V6_ALL)
    );
    assert_eq!(
        p("-L -t [2001:db8::1]:80"),
        Ok(list(ListTarget::Service(svc), ListFormat::default()))
    );
    assert_eq!(p("-D -t [2001:db8::1]:80"), Ok(Command::DeleteService(svc)));
}

#[test]
fn a_bracketed_address_needs_its_port() {
    for bad in [
        "[2001:db8::1]",
        "[2001:db8::1]:",
        "[2001:db8::1]80",
        "[2001:db8::1",
        "[2001:db8::1]:nosuchservice",
        "[2001:db8::1]:65536",
        // Not IPv6 in brackets (ipvsadm would take 10.0.0.1 and drop the port).
        "[10.0.0.1]:80",
        "[v6host]:80",
    ] {
        assert_eq!(
            p(&format!("-A -t {bad}")),
            Err(CliError::IllegalServiceAddress),
            "{bad}"
        );
        assert_eq!(
            p(&format!("-a -t 10.0.0.100:80 -r {bad}")),
            Err(CliError::IllegalRealAddress),
            "{bad}"
        );
    }
    assert_eq!(
        CliError::IllegalRealAddress.render("lbctl"),
        "illegal real server address[:port] specified\n"
    );
}

#[test]
fn a_bare_ipv6_address_has_no_port() {
    // A service without a port: port zero, persistent only.
    assert_eq!(p("-A -t 2001:db8::1"), Err(CliError::ZeroPort));
    assert_eq!(
        p("-A -t 2001:db8::1 -p"),
        add(tcp("2001:db8::1", 0), Sched::Wlc, Some(300), V6_ALL)
    );
    // `2001:db8::1:80` is an address, not an address and a port.
    assert_eq!(
        p("-A -t 2001:db8::1:80 -p 60"),
        add(tcp("2001:db8::1:80", 0), Sched::Wlc, Some(60), V6_ALL)
    );
    // A real without a port takes the service's.
    let svc = tcp("2001:db8::1", 80);
    assert_eq!(
        p("-a -t [2001:db8::1]:80 -r 2001:db8::11"),
        add_real(svc, "2001:db8::11", 80, 1)
    );
    assert_eq!(
        p("-a -t [2001:db8::1]:80 -r [2001:db8::11]:80 -w 2"),
        add_real(svc, "2001:db8::11", 80, 2)
    );
    // Direct routing keeps the service's port.
    assert_eq!(
        p("-a -t [2001:db8::1]:80 -r [2001:db8::11]:8080 -g"),
        add_real(svc, "2001:db8::11", 80, 1)
    );
    assert_eq!(
        p("-d -t [2001:db8::1]:80 -r [2001:db8::11]:80"),
        Ok(Command::DeleteReal {
            service: svc,
            real: RealId {
                addr: ip("2001:db8::11"),
                port: 80
            }
        })
    );
}

#[test]
fn fwmark_services_of_ipv6() {
    let f6 = ServiceId::fwmark_of_family(1, true);
    assert_eq!(p("-A -f 1 -6 -s rr"), add(f6, Sched::Rr, None, V6_ALL));
    assert_eq!(
        p("-A -f 1 -6 -s rr -p 300 -M 64"),
        add(f6, Sched::Rr, Some(300), V6_64)
    );
    assert_eq!(
        p("-a -f 1 -6 -r [2001:db8::11]:0 -g -w 1"),
        add_real(f6, "2001:db8::11", 0, 1)
    );
    // A fwmark service's real keeps its port (none: 0).
    assert_eq!(
        p("-a -f 1 -6 -r 2001:db8::11"),
        add_real(f6, "2001:db8::11", 0, 1)
    );
    assert_eq!(
        p("-L -f 1 -6"),
        Ok(list(ListTarget::Service(f6), ListFormat::default()))
    );
    assert_eq!(
        p("-L -f 1"),
        Ok(list(
            ListTarget::Service(ServiceId::fwmark(1)),
            ListFormat::default()
        ))
    );
    // -6 twice is no error (ipvsadm sets no option bit for it).
    assert_eq!(p("-A -f 1 -6 -6"), add(f6, Sched::Wlc, None, V6_ALL));
    for bad in [
        "-A -6 -f 1",
        "-A -t [2001:db8::1]:80 -6",
        "-L -6",
        "-a -r 2001:db8::11 -6 -f 1",
    ] {
        assert_eq!(p(bad), Err(CliError::Ipv6BeforeFwmark), "{bad}");
    }
    // ipvsadm's message carries its own newline: a blank line follows.
    assert_eq!(
        CliError::Ipv6BeforeFwmark.render("lbctl"),
        "-6 used before -f\n\n"
    );
    assert_eq!(CliError::Ipv6BeforeFwmark.exit_code(), 2);
}

#[test]
fn ipv6_netmask_is_a_prefix_length_read_like_atoi() {
    let svc = tcp("2001:db8::1", 80);
    let p64 = |cmd: &str| p(cmd);
    assert_eq!(
        p64("-A -t [2001:db8::1]:80 -p 300 -M 64"),
        add(svc, Sched::Wlc, Some(300), V6_64)
    );
    for (m, mask) in [
        ("1", "8000::"),
        ("128", V6_ALL),
        ("64abc", V6_64),
        ("+64", V6_64),
        (" 64", V6_64),
        ("48", "ffff:ffff:ffff::"),
    ] {
        assert_eq!(
            p(&format!("-A -t [2001:db8::1]:80 -p -M {m}")),
            add(svc, Sched::Wlc, Some(300), mask),
            "{m}"
        );
    }
    for bad in ["0", "129", "255.255.255.0", "/64", "ffff:ffff::", "x"] {
        assert_eq!(
            p(&format!("-A -t [2001:db8::1]:80 -p -M {bad}")),
            Err(CliError::IllegalIpv6Netmask),
            "{bad}"
        );
    }
    assert_eq!(
        CliError::IllegalIpv6Netmask.render("lbctl"),
        "illegal ipv6 netmask specified\n"
    );
    // Before the IPv6 service, or between -f and -6, ipvsadm reads -M as an
    // IPv4 mask and then loses it (/128); lbctl reads it by the service's
    // family (docs/SEMANTICS.md §8).
    assert_eq!(
        p("-A -M 64 -p -t [2001:db8::1]:80"),
        add(svc, Sched::Wlc, Some(300), V6_64)
    );
    assert_eq!(
        p("-A -f 1 -M 64 -p -6"),
        add(
            ServiceId::fwmark_of_family(1, true),
            Sched::Wlc,
            Some(300),
            V6_64
        )
    );
    assert_eq!(
        p("-A -M 255.255.255.0 -p -t [2001:db8::1]:80"),
        Err(CliError::IllegalIpv6Netmask)
    );
    // IPv4 is unchanged, whichever the order.
    assert_eq!(
        p("-A -M 255.255.255.0 -p -t 10.0.0.100:80"),
        add(
            tcp("10.0.0.100", 80),
            Sched::Wlc,
            Some(300),
            "255.255.255.0"
        )
    );
    assert_eq!(
        p("-A -f 1 -p -M 255.255.255.0"),
        add(ServiceId::fwmark(1), Sched::Wlc, Some(300), "255.255.255.0")
    );
    assert_eq!(
        p("-A -t 10.0.0.100:80 -p -M 64"),
        Err(CliError::IllegalNetmask)
    );
}

#[test]
fn mixed_families_are_for_tunnels_only() {
    for cmd in [
        "-a -t [2001:db8::1]:80 -r 10.0.0.11",
        "-a -t [2001:db8::1]:80 -r 10.0.0.11:80 -g",
        "-e -t 10.0.0.100:80 -r [2001:db8::11]:80",
        "-a -f 1 -r [2001:db8::11]:0",
        "-a -f 1 -6 -r 10.0.0.11",
    ] {
        assert_eq!(p(cmd), Err(CliError::DifferentFamily), "{cmd}");
    }
    assert_eq!(
        CliError::DifferentFamily.render("lbctl"),
        "Different address family is allowed only for tunneling servers\n"
    );
    assert_eq!(CliError::DifferentFamily.exit_code(), 2);
    // -d only looks it up (IPVS finds no such destination).
    assert!(p("-d -t [2001:db8::1]:80 -r 10.0.0.11").is_ok());
}

#[test]
fn ipv4_mapped_addresses_are_refused() {
    for cmd in [
        "-A -t [::ffff:10.0.0.100]:80",
        "-a -t [2001:db8::1]:80 -r [::ffff:10.0.0.11]:80",
        "-a -t [2001:db8::1]:80 -r ::ffff:10.0.0.11",
    ] {
        let err = p(cmd).expect_err(cmd);
        assert!(matches!(err, CliError::Addr(_)), "{cmd}: {err:?}");
        assert_eq!(err.exit_code(), 2);
    }
    assert_eq!(
        p("-A -t [::ffff:10.0.0.100]:80")
            .unwrap_err()
            .render("lbctl"),
        "lbctl: ::ffff:10.0.0.100 is an IPv4-mapped IPv6 address: give the IPv4 address \
         10.0.0.100 instead\n"
    );
}

#[test]
fn the_loopback_real_is_the_director_itself() {
    let err = p("-a -t [2001:db8::1]:80 -r [::1]:80").unwrap_err();
    assert_eq!(
        err.render("lbctl"),
        "lbctl: real server ::1 is the director itself: lbctl cannot deliver to a server on the director\n"
    );
    // `::`, link-local and multicast reals reach the table, which refuses
    // them as the kernel does (EINVAL).
    for ok in ["[::]:80", "[fe80::1]:80", "[ff02::1]:80"] {
        assert!(
            p(&format!("-a -t [2001:db8::1]:80 -r {ok}")).is_ok(),
            "{ok}"
        );
    }
}

#[test]
fn words_take_ipv6_too() {
    let svc = tcp("2001:db8::1", 80);
    assert_eq!(
        p("whereis -t [2001:db8::1]:80 2001:db8:1::5"),
        Ok(Command::Whereis {
            service: svc,
            client: ip("2001:db8:1::5"),
            port: None
        })
    );
    assert_eq!(
        p("whereis -t [2001:db8::1]:80 [2001:db8:1::5]:4000"),
        Ok(Command::Whereis {
            service: svc,
            client: ip("2001:db8:1::5"),
            port: Some(4000)
        })
    );
    assert_eq!(
        p("whereis -f 1 -6 2001:db8:1::5"),
        Ok(Command::Whereis {
            service: ServiceId::fwmark_of_family(1, true),
            client: ip("2001:db8:1::5"),
            port: None
        })
    );
    assert_eq!(
        p("whereis -t [2001:db8::1]:80 -6 2001:db8:1::5"),
        Err(CliError::Ipv6BeforeFwmark)
    );
    match p("drain -t [2001:db8::1]:80 -r [2001:db8::11]:80") {
        Ok(Command::Drain(d)) => {
            assert_eq!(
                (d.service, d.addr, d.port),
                (svc, ip("2001:db8::11"), Some(80))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        p("drain -t [2001:db8::1]:80 -r [::ffff:10.0.0.1]:80"),
        Err(CliError::Addr(_))
    ));
}

/// The commands ldirectord 4.12 runs for `virtual6=`/`real6=` (its
/// `ld_setup`, `_restore_service`, quiesce and remove), word for word.
#[test]
fn ldirectords_ipv6_commands_parse() {
    let svc = tcp("2001:db8::1", 80);
    assert_eq!(
        p("-A -t [2001:db8::1]:80 -s wrr -p 300 -M 64 "),
        add(svc, Sched::Wrr, Some(300), V6_64)
    );
    let f6 = ServiceId::fwmark_of_family(1, true);
    assert_eq!(p("-A -f 1 -6 -s wrr "), add(f6, Sched::Wrr, None, V6_ALL));
    assert_eq!(
        p("-a -t [2001:db8::1]:80 -x 0 -y 0 -r [2001:db8::11]:80 -g -w 1"),
        add_real(svc, "2001:db8::11", 80, 1)
    );
    assert_eq!(
        p("-a -f 1 -6 -x 0 -y 0 -r [2001:db8::11]:0 -g -w 1"),
        add_real(f6, "2001:db8::11", 0, 1)
    );
    assert_eq!(
        p("-e -t [2001:db8::1]:80 -r [2001:db8::11]:80 -g -w 0"),
        Ok(Command::EditReal {
            service: svc,
            real: real("2001:db8::11", 80, 0)
        })
    );
    assert!(matches!(
        p("-d -t [2001:db8::1]:80 -r [2001:db8::11]:80"),
        Ok(Command::DeleteReal { .. })
    ));
    assert_eq!(p("-D -f 1 -6"), Ok(Command::DeleteService(f6)));
}
