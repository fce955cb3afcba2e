use super::*;

// --- resolver, messages, usage ------------------------------------------------

#[test]
fn resolver_lookups() {
    let n = names();
    assert_eq!(n.host_addr("vip"), Some(ip("10.0.0.100")));
    assert_eq!(n.host_addr("vip.EXAMPLE.com"), Some(ip("10.0.0.100")));
    assert_eq!(n.host_addr("rs1"), Some(ip("10.0.0.11")));
    assert_eq!(n.host_addr("v6host"), None);
    assert_eq!(n.host_addr("the"), None, "comment words are not names");
    assert_eq!(n.host_name(ip("10.0.0.100")), Some("vip.example.com"));
    assert_eq!(n.host_name(ip("10.0.0.111")), Some("rs1"));
    assert_eq!(n.host_name(ip("10.0.0.12")), None);
    assert_eq!(n.service_port("www", Proto::Tcp), Some(80));
    assert_eq!(n.service_port("http", Proto::Udp), None);
    assert_eq!(n.service_port("HTTP", Proto::Tcp), None);
    assert_eq!(n.service_port("bogus", Proto::Tcp), None);
    assert_eq!(n.service_name(53, Proto::Udp), Some("domain"));
    assert_eq!(n.service_name(123, Proto::Tcp), None);
    assert_eq!(Resolver::new().host_addr("localhost"), None);
}

#[test]
fn messages() {
    let msg = |s: &str| p(s).unwrap_err().to_string();
    assert_eq!(
        msg("-A -t 10.0.0.100"),
        "Zero port specified for non-persistent service"
    );
    assert_eq!(
        msg("-D -t 10.0.0.100:80 -w 1"),
        "Illegal 'weight' option with the 'delete-service' command"
    );
    assert_eq!(
        msg("-a -t 10.0.0.100:80"),
        "You need to supply the 'real-server' option for the 'add-server' command"
    );
    assert_eq!(
        msg("-L -c -t 10.0.0.100:80"),
        "The option 'service-address' conflicts with the 'connection' option in the 'list' command"
    );
    assert_eq!(
        msg("-A -t 10.0.0.100:80 -p 0"),
        "invalid timeout value `0' specified"
    );
    assert_eq!(
        msg("-A -t 10.0.0.1:80 -b sh-port"),
        "incompatible scheduler flag `sh-port'"
    );
    assert_eq!(
        msg("-A -t 10.0.0.1:80 -s mh -b mh-port,bogus"),
        "invalid scheduler flag `bogus'"
    );
    assert_eq!(
        msg("-A -t 10.0.0.1:80 -s xx"),
        "Scheduler or persistence engine not found"
    );
    assert_eq!(
        msg("-a -t 10.0.0.1:80 -r 10.0.0.2 -g --tun-type gre"),
        "Tunnel options conflict with forward method"
    );
    assert_eq!(
        msg("-A -t [::1]"),
        "illegal virtual server address[:port] specified"
    );
    assert_eq!(
        msg("-A -f 1 -6 -p -M 129"),
        "illegal ipv6 netmask specified"
    );
    assert_eq!(
        msg("-A -t x"),
        "illegal virtual server address[:port] specified"
    );
    assert_eq!(
        msg("-a -t 10.0.0.1:80 -r 10.0.0.2 -w 65536"),
        "illegal weight specified"
    );
    assert_eq!(msg("-L --bogus"), "--bogus: unknown option");
    assert_eq!(msg("--set 1"), "--set option requires 3 timeout values");
    assert_eq!(msg("-L x"), "unexpected argument x");
    assert_eq!(msg("-L -c --rate"), "options conflicts in the list command");
    assert_eq!(msg("-L -L"), "invalid option `-L'");
}

#[test]
fn exit_codes() {
    assert_eq!(p("-L --bogus").unwrap_err().exit_code(), 255);
    assert_eq!(p("-n").unwrap_err().exit_code(), 255);
    assert_eq!(p("-A -t 10.0.0.100").unwrap_err().exit_code(), 2);
    assert_eq!(p("-C -n").unwrap_err().exit_code(), 2);
    // The kernel's refusal: process_options returns -1.
    assert_eq!(p("-A -t 10.0.0.1:80 -s xx").unwrap_err().exit_code(), 255);
}

/// What goes to standard error, as ipvsadm 1.31 prints it (no prefix; its
/// "Try" line names the program as run), and lbctl's own errors after
/// `lbctl: `.
#[test]
fn errors_are_printed_as_ipvsadm_prints_them() {
    let shown = |s: &str| {
        let e = p(s).unwrap_err();
        (e.render("/usr/sbin/ipvsadm"), e.exit_code())
    };
    assert_eq!(
        shown("-a -t 10.0.0.1:80 -r 10.0.0.2 -w x"),
        ("illegal weight specified\n".into(), 2)
    );
    assert_eq!(
        shown("-A -t 10.0.0.1:80 --bogus"),
        ("--bogus: unknown option\n".into(), 255)
    );
    assert_eq!(
        shown("-A -t 10.0.0.1:80 -w"),
        ("-w: missing argument\n".into(), 255)
    );
    assert_eq!(shown("-L -A"), ("invalid option `-A'\n".into(), 2));
    assert_eq!(
        shown("-A -t 10.0.0.1:80 x"),
        ("unexpected argument x\n".into(), 2)
    );
    for s in ["-n -L", "-X", "--numeric=1 -L", "-- -L"] {
        assert_eq!(
            shown(s),
            (
                "Try `/usr/sbin/ipvsadm -h' or '/usr/sbin/ipvsadm --help' for more information.\n"
                    .into(),
                255
            ),
            "{s}"
        );
    }
    assert_eq!(
        shown("-A -t 10.0.0.1:80 -s xx"),
        ("Scheduler or persistence engine not found\n".into(), 255)
    );
    // The kernel refuses an unknown scheduler only after every check of
    // the command line (ipvsadm's order).
    assert_eq!(
        shown("-A -t 10.0.0.1:0 -s xx"),
        ("Zero port specified for non-persistent service\n".into(), 2)
    );
    assert_eq!(
        shown("-A -t 10.0.0.1:80 -s xx -b flag-1"),
        ("Scheduler or persistence engine not found\n".into(), 255)
    );
    // lbctl's own.
    assert_eq!(
        shown("-a -t 10.0.0.1:80 -r 127.0.0.1"),
        (
            "lbctl: real server 127.0.0.1 is the director itself: lbctl forwards by direct \
             routing (-g) only\n"
                .into(),
            2
        )
    );
    assert_eq!(
        shown("-A -t [::ffff:10.0.0.1]:80"),
        (
            "lbctl: ::ffff:10.0.0.1 is an IPv4-mapped IPv6 address: give the IPv4 address \
             10.0.0.1 instead\n"
                .into(),
            2
        )
    );
    assert_eq!(
        shown("-A -t [2001:db8::1]:80 -6"),
        ("-6 used before -f\n\n".into(), 2)
    );
}

#[test]
fn version_and_usage_start_as_ipvsadms() {
    let v = version_text();
    assert!(
        v.starts_with("ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\nlbctl v"),
        "{v}"
    );
    assert_eq!(v.lines().count(), 2, "{v}");
    let u = usage("/usr/sbin/ipvsadm");
    // ipvsadm 1.31's own first lines, naming the program as it was run.
    assert!(
        u.starts_with(
            "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n\
             Usage:\n\
             \x20 /usr/sbin/ipvsadm -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] \
             [--pe persistence_engine] [-b sched-flags]\n\
             \x20 /usr/sbin/ipvsadm -D virtual-service\n"
        ),
        "{u}"
    );
    for needle in [
        "  /usr/sbin/ipvsadm -h\n\nCommands:\nEither long or short options are allowed.\n",
        "  --help            -h        display this help message\n\nvirtual-service:\n",
        "  --fwmark-service|-f fwmark          fwmark is an integer greater than zero\n\nOptions:\n",
        "  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh,\n\
         \x20                                     the default scheduler is wlc.\n",
        "  --sched-flags  -b flags             scheduler flags (comma-separated)\nDaemon Options:\n",
        "  --mcast-ttl ttl                     Multicast TTL (default=1)\n\nlbctl v",
    ] {
        assert!(u.contains(needle), "usage lacks {needle:?}");
    }
    // Then lbctl's own words and forms.
    let own = &u[u.find("\nlbctl v").expect("lbctl's part")..];
    for needle in [
        "\nUsage:\n  lbctl -A|E virtual-service ",
        "scheduler twos",
        "lbctl attach IFACE [--mode native|generic] [--conns N] [--templates N]",
        "[--services N] [--reals N] [--reset]",
        "lbctl detach IFACE",
        "sysctl NAME[=VALUE]",
        "conn_reuse_mode (0-3)",
        "lbctl whereis -t|u service-address client-address[:port]",
        "fwmark add|del",
    ] {
        assert!(own.contains(needle), "lbctl's part lacks {needle:?}");
    }
    assert!(
        own.lines().all(|l| l.len() <= 100),
        "overlong line in usage"
    );
    // Every scheduler lbctl implements is named in one of the two parts.
    let ipvsadms: Vec<&str> = u
        .split("scheduler         one of ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_default()
        .split('|')
        .collect();
    for name in crate::model::ALL_SCHEDULERS
        .into_iter()
        .filter(|n| !UNSUPPORTED_SCHEDULERS.contains(n))
    {
        assert!(
            ipvsadms.contains(&name) || own.contains(&format!("scheduler {name}")),
            "{name}"
        );
    }
}

#[test]
fn option_table_rows_are_well_formed() {
    // Every row has one rule per option, and the commands that take a
    // service require it.
    for cmd in [
        Cmd::Add,
        Cmd::Edit,
        Cmd::Del,
        Cmd::AddDest,
        Cmd::EditDest,
        Cmd::DelDest,
    ] {
        assert_eq!(cmd.row()[Opt::Service as usize], b'+', "{cmd:?}");
    }
    assert_eq!(Cmd::List.row()[Opt::Connection as usize], b'1');
    assert_eq!(OPT_NAMES[Opt::TunRemCsum as usize], "tun-remcsum");
}
