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
            reset: true,
        })
    );
    assert!(p("attach eth0 --conns 12").is_err());
    assert!(p("attach eth0 --conns 1e6").is_err());
    assert!(p("attach eth0 --templates").is_err());
    assert_eq!(
        p("attach eth0 --conns 4096 --conns 4096"),
        Err(CliError::MultipleOptions("conns"))
    );
    assert_eq!(p("attach"), Err(CliError::Usage(ATTACH_USAGE)));
    assert_eq!(
        p("attach eth0 --mode"),
        Err(CliError::MissingArgument("--mode".into()))
    );
    assert_eq!(
        p("attach eth0 --mode skb"),
        Err(CliError::InvalidXdpMode("skb".into()))
    );
    assert_eq!(
        p("attach eth0 --mode native --mode generic"),
        Err(CliError::MultipleOptions("mode"))
    );
    assert_eq!(
        p("attach eth0 eth1"),
        Err(CliError::UnexpectedArgument("eth1".into()))
    );
    assert_eq!(
        p("attach eth0 --force"),
        Err(CliError::UnknownOption("--force".into()))
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
    assert_eq!(p("detach"), Err(CliError::Usage(DETACH_USAGE)));
    assert_eq!(
        p("detach eth0 eth1"),
        Err(CliError::UnexpectedArgument("eth1".into()))
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
        p("sysctl expire_nodest_conn=1 conn_reuse_mode=0"),
        Err(CliError::UnexpectedArgument("conn_reuse_mode=0".into()))
    );
    assert_eq!(p("sysctl -a"), Err(CliError::Usage(SYSCTL_USAGE)));
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
    assert_eq!(d("daemon"), Err(CliError::Usage(DAEMON_USAGE)));
    assert_eq!(
        d("daemon --metrics localhost:9469 lb.cf"),
        Err(CliError::InvalidMetricsAddress("localhost:9469".into()))
    );
    assert_eq!(
        d("daemon --metrics"),
        Err(CliError::MissingArgument("--metrics".into()))
    );
    assert_eq!(
        d("daemon --metrics-public lb.cf"),
        Err(CliError::Usage(DAEMON_USAGE))
    );
    assert_eq!(
        d("daemon --bogus lb.cf"),
        Err(CliError::UnknownOption("--bogus".into()))
    );
    assert_eq!(
        d("daemon lb.cf reload"),
        Err(CliError::DaemonAction("reload".into()))
    );
    assert_eq!(
        d("daemon lb.cf status x"),
        Err(CliError::UnexpectedArgument("x".into()))
    );
    assert_eq!(
        d("daemon-status a b"),
        Err(CliError::UnexpectedArgument("b".into()))
    );
    assert_eq!(
        d("daemon --metrics 127.0.0.1:1 status"),
        Err(CliError::Usage(DAEMON_USAGE))
    );
}
