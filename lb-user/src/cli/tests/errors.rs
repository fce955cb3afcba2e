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
        msg("-a -t 10.0.0.1:80 -r 10.0.0.2 -m"),
        "forwarding method masquerading (-m) is not supported yet; only direct routing (-g)"
    );
    assert_eq!(msg("-A -t [::1]:80"), "IPv6 is not supported yet");
    assert_eq!(msg("-A -f 1 -6"), "IPv6 is not supported yet");
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
}

#[test]
fn usage_lists_what_is_supported() {
    let u = usage();
    assert!(u.starts_with("lbctl v"), "{u}");
    for needle in [
        "-A|E virtual-service",
        "--tcp-service|-t",
        "--udp-service|-u",
        "--scheduler    -s",
        "one of rr|wrr|lc|wlc|",
        "the default scheduler is wlc.",
        "--persistent   -p [timeout]",
        "--gatewaying   -g",
        "--weight       -w",
        "--set tcp tcpfin udp",
        "--persistent-conn",
        "attach IFACE [--mode native|generic] [--conns N] [--templates N]",
        "[--services N] [--reals N] [--reset]",
        "detach IFACE",
        "sysctl NAME[=VALUE]",
        "conn_reuse_mode (0-3)",
        "--fwmark-service|-f fwmark",
        "fwmark add|del",
    ] {
        assert!(u.contains(needle), "usage lacks {needle:?}");
    }
    for absent in ["--masquerading", "--ipip", "--start-daemon", "--pe "] {
        assert!(!u.contains(absent), "usage mentions unsupported {absent:?}");
    }
    // The schedulers it lists are those lbctl implements.
    let listed = u
        .split("scheduler         one of ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_default();
    let implemented: Vec<&str> = crate::model::ALL_SCHEDULERS
        .into_iter()
        .filter(|n| !UNSUPPORTED_SCHEDULERS.contains(n))
        .collect();
    assert_eq!(listed, implemented.join("|"), "{u}");
    assert!(u.lines().all(|l| l.len() <= 100), "overlong line in usage");
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
