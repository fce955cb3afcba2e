use super::*;

// --- lbctl words ------------------------------------------------------------

#[test]
fn attach_and_detach() {
    assert_eq!(
        p("attach eth0"),
        Ok(Command::Attach {
            iface: "eth0".into(),
            mode: XdpMode::Native,
            conns: None,
            templates: None,
            services: None,
            reals: None,
            reset: false,
        })
    );
    assert_eq!(
        p("attach eth0 --mode native"),
        Ok(Command::Attach {
            iface: "eth0".into(),
            mode: XdpMode::Native,
            conns: None,
            templates: None,
            services: None,
            reals: None,
            reset: false,
        })
    );
    assert_eq!(
        p("attach --mode=generic veth-lb0"),
        Ok(Command::Attach {
            iface: "veth-lb0".into(),
            mode: XdpMode::Generic,
            conns: None,
            templates: None,
            services: None,
            reals: None,
            reset: false,
        })
    );
    assert_eq!(
        p("attach eth0 --conns 65536 --templates=4096 --reset"),
        Ok(Command::Attach {
            iface: "eth0".into(),
            mode: XdpMode::Native,
            conns: Some(65536),
            templates: Some(4096),
            services: None,
            reals: None,
            reset: true,
        })
    );
    assert_eq!(
        p("attach eth0 --services 100000 --reals=1048576"),
        Ok(Command::Attach {
            iface: "eth0".into(),
            mode: XdpMode::Native,
            conns: None,
            templates: None,
            services: Some(100_000),
            reals: Some(1_048_576),
            reset: false,
        })
    );
    assert_eq!(
        p("attach eth0 --services 15"),
        Err(CliError::IllegalValue {
            what: "number of services (16..=1048576)"
        })
    );
    assert_eq!(
        p("attach eth0 --reals 4194305"),
        Err(CliError::IllegalValue {
            what: "number of real-server slots (64..=4194304)"
        })
    );
    assert!(p("attach eth0 --conns 12").is_err());
    assert!(p("attach eth0 --conns 1e6").is_err());
    assert!(p("attach eth0 --templates").is_err());
    assert_eq!(
        p("attach eth0 --conns 12"),
        Err(CliError::IllegalValue {
            what: "connection table size (1024..=134217728)"
        })
    );
    assert_eq!(
        p("attach eth0 --templates 134217729"),
        Err(CliError::IllegalValue {
            what: "template table size (1024..=134217728)"
        })
    );
    assert_eq!(
        kind(p("attach eth0 --conns 4096 --conns 4096")),
        Some(ErrorKind::ArgumentConflict)
    );
    assert_eq!(kind(p("attach")), Some(ErrorKind::MissingRequiredArgument));
    assert_eq!(kind(p("attach eth0 --mode")), Some(ErrorKind::InvalidValue));
    assert_eq!(
        kind(p("attach eth0 --mode skb")),
        Some(ErrorKind::InvalidValue)
    );
    assert_eq!(
        kind(p("attach eth0 --mode native --mode generic")),
        Some(ErrorKind::ArgumentConflict)
    );
    assert_eq!(
        kind(p("attach eth0 eth1")),
        Some(ErrorKind::UnknownArgument)
    );
    assert_eq!(
        kind(p("attach eth0 --force")),
        Some(ErrorKind::UnknownArgument)
    );
    assert_eq!(
        kind(p("attach eth0 --reset=yes")),
        Some(ErrorKind::TooManyValues)
    );
    assert_eq!(
        p("attach a/b"),
        Err(CliError::InvalidInterface("a/b".into()))
    );
    assert_eq!(
        p("attach 0123456789abcdef"),
        Err(CliError::InvalidInterface("0123456789abcdef".into()))
    );
    assert!(p("attach 0123456789abcde").is_ok());
    assert_eq!(
        p("detach eth0"),
        Ok(Command::Detach {
            iface: "eth0".into()
        })
    );
    assert_eq!(kind(p("detach")), Some(ErrorKind::MissingRequiredArgument));
    assert_eq!(
        kind(p("detach eth0 eth1")),
        Some(ErrorKind::UnknownArgument)
    );
    assert_eq!(p("detach .."), Err(CliError::InvalidInterface("..".into())));
}

#[test]
fn sysctl_word() {
    let set = |k, v| Ok(Command::Sysctl(SysctlCmd::Set(k, v)));
    assert_eq!(p("sysctl"), Ok(Command::Sysctl(SysctlCmd::List)));
    assert_eq!(
        p("sysctl expire_nodest_conn=1"),
        set(Sysctl::ExpireNodestConn, 1)
    );
    assert_eq!(
        p("sysctl expire_quiescent_template=0"),
        set(Sysctl::ExpireQuiescentTemplate, 0)
    );
    assert_eq!(
        p("sysctl net.ipv4.vs.conn_reuse_mode=3"),
        set(Sysctl::ConnReuseMode, 3)
    );
    assert_eq!(
        p("sysctl net/ipv4/vs/conn_reuse_mode=0"),
        set(Sysctl::ConnReuseMode, 0)
    );
    assert_eq!(
        p("sysctl net.ipv4.vs.expire_nodest_conn"),
        Ok(Command::Sysctl(SysctlCmd::Show(Sysctl::ExpireNodestConn)))
    );
    let invalid = |name, value: &str, expected| {
        Err(CliError::InvalidSysctlValue {
            name,
            value: value.into(),
            expected,
        })
    };
    assert_eq!(
        p("sysctl conn_reuse_mode=4"),
        invalid("conn_reuse_mode", "4", "0, 1, 2 or 3")
    );
    assert_eq!(
        p("sysctl expire_nodest_conn=2"),
        invalid("expire_nodest_conn", "2", "0 or 1")
    );
    assert_eq!(
        p("sysctl expire_nodest_conn=-1"),
        invalid("expire_nodest_conn", "-1", "0 or 1")
    );
    assert_eq!(
        p("sysctl expire_nodest_conn="),
        invalid("expire_nodest_conn", "", "0 or 1")
    );
    assert_eq!(
        p("sysctl expire_quiescent_template=yes"),
        invalid("expire_quiescent_template", "yes", "0 or 1")
    );
    assert_eq!(
        p("sysctl amemthresh=1024"),
        Err(CliError::UnknownSysctl("amemthresh".into()))
    );
    assert_eq!(
        kind(p("sysctl expire_nodest_conn=1 conn_reuse_mode=0")),
        Some(ErrorKind::UnknownArgument)
    );
    assert_eq!(kind(p("sysctl -a")), Some(ErrorKind::UnknownArgument));
}

#[test]
fn daemon_words() {
    let d = |s: &str| parse_with(&words(s), &Resolver::new());
    assert_eq!(
        d("daemon /etc/ha.d/ldirectord.cf"),
        Ok(Command::Daemon {
            foreground: false,
            config: "/etc/ha.d/ldirectord.cf".into(),
            metrics: None,
            metrics_public: false,
        })
    );
    assert_eq!(
        d("daemon --foreground --metrics 127.0.0.1:9469 lb.cf"),
        Ok(Command::Daemon {
            foreground: true,
            config: "lb.cf".into(),
            metrics: Some("127.0.0.1:9469".parse().unwrap()),
            metrics_public: false,
        })
    );
    assert_eq!(
        d("daemon lb.cf --metrics=[::1]:9469 --metrics-public -d start"),
        Ok(Command::Daemon {
            foreground: true,
            config: "lb.cf".into(),
            metrics: Some("[::1]:9469".parse().unwrap()),
            metrics_public: true,
        })
    );
    assert_eq!(
        d("daemon-status"),
        Ok(Command::DaemonStatus { config: None })
    );
    assert_eq!(
        d("daemon status"),
        Ok(Command::DaemonStatus { config: None })
    );
    assert_eq!(
        d("daemon lb.cf status"),
        Ok(Command::DaemonStatus {
            config: Some("lb.cf".into())
        })
    );
    assert_eq!(
        d("daemon-status lb.cf"),
        Ok(Command::DaemonStatus {
            config: Some("lb.cf".into())
        })
    );
    assert_eq!(kind(d("daemon")), Some(ErrorKind::MissingRequiredArgument));
    assert_eq!(
        d("daemon --metrics localhost:9469 lb.cf"),
        Err(CliError::InvalidMetricsAddress("localhost:9469".into()))
    );
    assert_eq!(kind(d("daemon --metrics")), Some(ErrorKind::InvalidValue));
    assert_eq!(
        kind(d("daemon --metrics-public lb.cf")),
        Some(ErrorKind::MissingRequiredArgument)
    );
    assert_eq!(
        kind(d("daemon --bogus lb.cf")),
        Some(ErrorKind::UnknownArgument)
    );
    assert_eq!(
        d("daemon lb.cf reload"),
        Err(CliError::DaemonAction("reload".into()))
    );
    assert_eq!(
        kind(d("daemon lb.cf status x")),
        Some(ErrorKind::UnknownArgument)
    );
    assert_eq!(
        kind(d("daemon-status a b")),
        Some(ErrorKind::UnknownArgument)
    );
    assert_eq!(
        kind(d("daemon --metrics 127.0.0.1:1 status")),
        Some(ErrorKind::ArgumentConflict)
    );
    assert_eq!(
        kind(d(
            "daemon --metrics-public --metrics 127.0.0.1:1 lb.cf status"
        )),
        Some(ErrorKind::ArgumentConflict)
    );
}

// --- drain and whereis ----------------------------------------------------

#[test]
fn drain_takes_a_service_a_real_and_its_options() {
    use crate::drain::DrainSpec;
    use std::time::Duration;
    let spec = |proto, port: Option<u16>, timeout, remove, inactive| {
        Command::Drain(DrainSpec {
            service: ServiceId {
                proto,
                addr: ip("10.0.0.100"),
                port: 80,
            },
            addr: ip("10.0.0.11"),
            port,
            timeout,
            remove,
            inactive,
        })
    };
    assert_eq!(
        p("drain -t 10.0.0.100:80 -r 10.0.0.11"),
        Ok(spec(Proto::Tcp, None, None, false, false))
    );
    // Names from the hosts and services files, as ipvsadm takes them.
    assert_eq!(
        p("drain -u vip:80 -r rs1:80 --timeout 30 --remove --inactive"),
        Ok(spec(
            Proto::Udp,
            Some(80),
            Some(Duration::from_secs(30)),
            true,
            true
        ))
    );
    assert_eq!(
        p("drain --tcp-service vip:http --real-server=rs1 --timeout=0"),
        Ok(spec(Proto::Tcp, None, Some(Duration::ZERO), false, false))
    );
    assert_eq!(
        p("drain -t nowhere:80 -r rs1"),
        Err(CliError::IllegalServiceAddress)
    );
    assert_eq!(
        p("drain -t vip:80 -r 10.0.0"),
        Err(CliError::IllegalRealAddress)
    );
    assert_eq!(
        p("drain -t vip:80 -r rs1 --timeout 1m"),
        Err(CliError::IllegalValue {
            what: "drain timeout (seconds, 0 to 2678400)"
        })
    );
    // A service, exactly one, and a real are needed.
    for bad in [
        "drain -r rs1",
        "drain -t vip:80 -u vip:80 -r rs1",
        "drain -t vip:80",
    ] {
        assert!(
            matches!(p(bad), Err(CliError::Word { .. })),
            "{bad}: {:?}",
            p(bad)
        );
    }
}

#[test]
fn whereis_takes_a_service_and_a_client() {
    let svc = |proto| ServiceId {
        proto,
        addr: ip("10.0.0.100"),
        port: 80,
    };
    assert_eq!(
        p("whereis -t 10.0.0.100:80 192.0.2.7"),
        Ok(Command::Whereis {
            service: svc(Proto::Tcp),
            client: ip("192.0.2.7"),
            port: None,
        })
    );
    assert_eq!(
        p("whereis 192.0.2.7:40000 -u vip:80"),
        Ok(Command::Whereis {
            service: svc(Proto::Udp),
            client: ip("192.0.2.7"),
            port: Some(40000),
        })
    );
    assert_eq!(
        p("whereis -t vip:80 192.0.2"),
        Err(CliError::IllegalClientAddress)
    );
    assert_eq!(
        p("whereis -t vip:80 192.0.2.7:70000"),
        Err(CliError::IllegalClientAddress)
    );
    assert!(matches!(p("whereis -t vip:80"), Err(CliError::Word { .. })));
}
