use super::*;

// --- addresses and names -----------------------------------------------

#[test]
fn host_and_port_names() {
    assert_eq!(
        p("-A -t vip:http"),
        Ok(Command::AddService(spec(
            tcp("10.0.0.100", 80),
            Sched::Wlc,
            None,
            ALL
        )))
    );
    assert_eq!(
        p("-A -t VIP.example.COM:www"),
        Ok(Command::AddService(spec(
            tcp("10.0.0.100", 80),
            Sched::Wlc,
            None,
            ALL
        )))
    );
    assert_eq!(
        p("-A -u vip:domain"),
        Ok(Command::AddService(spec(
            udp("10.0.0.100", 53),
            Sched::Wlc,
            None,
            ALL
        )))
    );
    // The first line naming a host wins.
    assert_eq!(
        p("-a -t vip:80 -r rs1"),
        Ok(Command::AddReal {
            service: tcp("10.0.0.100", 80),
            real: real("10.0.0.11", 80, 1)
        })
    );
    // http is TCP only in the services file; ntp UDP only.
    assert_eq!(p("-A -u vip:http"), Err(CliError::IllegalServiceAddress));
    assert_eq!(p("-A -t vip:ntp"), Err(CliError::IllegalServiceAddress));
}

#[test]
fn bad_service_addresses() {
    for bad in [
        "10.0.0.300:80",
        "nosuchhost:80",
        "80",
        "10.0.0.100:65536",
        "10.0.0.100:-1",
        "10.0.0.100:nosuchport",
        "10.0.0.100:",
        ":80",
        "010.0.0.100:80",
        "10.1:80",
        "v6host:80",
        "[10.0.0.100]:80",
        "[2001:db8::1",
    ] {
        assert_eq!(
            p(&format!("-A -t {bad}")),
            Err(CliError::IllegalServiceAddress),
            "{bad}"
        );
    }
}

#[test]
fn ipv6_option_needs_a_fwmark_before_it() {
    // The command/option table is checked first, as in ipvsadm.
    assert_eq!(
        p("-L -t [::1]:80 -s rr"),
        Err(CliError::IllegalOption {
            option: "scheduler",
            command: "list"
        })
    );
    assert_eq!(p("-A -t 10.0.0.100:80 -6"), Err(CliError::Ipv6BeforeFwmark));
}

// --- schedulers and forwarding ------------------------------------------

#[test]
fn schedulers() {
    for name in UNSUPPORTED_SCHEDULERS {
        assert_eq!(
            p(&format!("-A -t 10.0.0.100:80 -s {name}")),
            Err(CliError::SchedulerUnsupported(name.to_owned())),
            "{name}"
        );
    }
    for (name, sched) in [
        ("lc", Sched::Lc),
        ("wlc", Sched::Wlc),
        ("sed", Sched::Sed),
        ("nq", Sched::Nq),
        ("fo", Sched::Fo),
        ("ovf", Sched::Ovf),
        ("twos", Sched::Twos),
    ] {
        assert_eq!(
            p(&format!("-A -t 10.0.0.100:80 -s {name}")),
            Ok(Command::AddService(spec(
                tcp("10.0.0.100", 80),
                sched,
                None,
                ALL
            ))),
            "{name}"
        );
    }
    // dh, lblc and lblcr: accepted by -A and -E, and their numbers name
    // them again (what -S prints and -R reads back).
    for (name, want) in [
        ("dh", Sched::Dh),
        ("lblc", Sched::Lblc),
        ("lblcr", Sched::Lblcr),
    ] {
        for cmd in ["-A", "-E"] {
            assert_eq!(
                p(&format!("{cmd} -t 10.0.0.100:80 -s {name}")).map(|c| match c {
                    Command::AddService(s) | Command::EditService(s) => Some(s.sched),
                    _ => None,
                }),
                Ok(Some(want)),
                "{cmd} {name}"
            );
        }
        assert_eq!(Sched::of(want.id(), want.flags()), want);
        assert_eq!(want.name(), name);
        // Their scheduler flags are not supported, as for any but sh/mh.
        assert!(p(&format!("-A -t 10.0.0.100:80 -s {name} -b flag-1")).is_err());
    }
    assert_eq!(
        p("-A -t 10.0.0.100:80 -s fancy"),
        Err(CliError::SchedulerNotFound("fancy".into()))
    );
    assert_eq!(
        p("-a -t 10.0.0.100:80 -r 10.0.0.11 -s rr"),
        Err(CliError::IllegalOption {
            option: "scheduler",
            command: "add-server"
        })
    );
}

#[test]
fn forwarding_methods() {
    let masq = RealSpec {
        fwd: Fwd::Masq,
        ..real("10.0.0.11", 80, 1)
    };
    assert_eq!(
        p("-a -t 10.0.0.100:80 -r 10.0.0.11 -m"),
        Ok(Command::AddReal {
            service: tcp("10.0.0.100", 80),
            real: masq
        })
    );
    assert_eq!(
        p("-e -t 10.0.0.100:80 -r 10.0.0.11 --ipip"),
        Ok(Command::EditReal {
            service: tcp("10.0.0.100", 80),
            real: RealSpec {
                fwd: Fwd::Tunnel(crate::model::Tunnel::IPIP),
                ..real("10.0.0.11", 80, 1)
            }
        })
    );
    assert_eq!(
        p("-a -t 10.0.0.100:80 -r 10.0.0.11 -g -m"),
        Err(CliError::MultipleOptions("forwarding-method"))
    );
    assert_eq!(
        p("-L -m"),
        Err(CliError::IllegalOption {
            option: "forwarding-method",
            command: "list"
        })
    );
}

#[test]
fn zero_thresholds_are_no_thresholds() {
    // ldirectord's every -a/-e: `-x 0 -y 0` before `-r`; 0 means "none".
    for cmd in ["-a", "-e"] {
        let with = p(&format!(
            "{cmd} -t 203.0.113.10:80 -x 0 -y 0 -r 198.51.100.11:80 -g -w 2"
        ));
        let without = p(&format!(
            "{cmd} -t 203.0.113.10:80 -r 198.51.100.11:80 -g -w 2"
        ));
        assert!(with.is_ok(), "{with:?}");
        assert_eq!(with, without);
    }
}

/// The real of `-a`/`-e -t 203.0.113.10:80 -r 198.51.100.11 ... -w 2` as
/// parsed, or the error.
fn real_of(cmd: &str, opts: &str) -> Result<RealSpec, CliError> {
    match p(&format!(
        "{cmd} -t 203.0.113.10:80 -r 198.51.100.11 -w 2 {opts}"
    ))? {
        Command::AddReal { real, .. } | Command::EditReal { real, .. } => Ok(real),
        other => panic!("{other:?}"),
    }
}

#[test]
fn thresholds_are_parsed_as_ipvsadm_parses_them() {
    let t = |upper, lower| Thresholds { upper, lower };
    for cmd in ["-a", "-e"] {
        assert_eq!(real_of(cmd, "-x 10 -y 5").unwrap().thresholds, t(10, 5));
        assert_eq!(
            real_of(cmd, "--u-threshold=10 --l-threshold 5")
                .unwrap()
                .thresholds,
            t(10, 5)
        );
        assert_eq!(real_of(cmd, "-x10").unwrap().thresholds, t(10, 0));
        // INT_MAX is the largest; a sign and leading blanks as strtol takes them.
        assert_eq!(
            real_of(cmd, "-x 2147483647 -y +7").unwrap().thresholds,
            t(2_147_483_647, 7)
        );
        // Omitted: 0, which -e sends too (it clears them).
        assert_eq!(real_of(cmd, "").unwrap().thresholds, Thresholds::NONE);
        // Lower above upper is the kernel's refusal (Table), not the parser's.
        assert_eq!(real_of(cmd, "-y 9").unwrap().thresholds, t(0, 9));
    }
    for (opts, what) in [
        ("-x 2147483648", "u_threshold"),
        ("-x -1", "u_threshold"),
        ("-x 1k", "u_threshold"),
        ("-x ''", "u_threshold"),
        ("-y 2147483648", "l_threshold"),
        ("-y -1", "l_threshold"),
        ("--l-threshold=x", "l_threshold"),
    ] {
        assert_eq!(
            real_of("-a", opts),
            Err(CliError::IllegalValue { what }),
            "{opts}"
        );
    }
    assert_eq!(
        real_of("-a", "-x 1 -x 2"),
        Err(CliError::MultipleOptions("u-threshold"))
    );
    assert_eq!(
        p("-A -t 203.0.113.10:80 -x 5"),
        Err(CliError::IllegalOption {
            option: "u-threshold",
            command: "add-service"
        })
    );
    assert_eq!(
        p("-d -t 203.0.113.10:80 -r 198.51.100.11 -y 5"),
        Err(CliError::IllegalOption {
            option: "l-threshold",
            command: "delete-server"
        })
    );
    // -S output with thresholds reads back.
    let line = "-a -t 203.0.113.10:80 -r 198.51.100.11:80 -g -w 2 -x 100 -y 75";
    let Ok(Some(Command::AddReal { real, .. })) = parse_restore_line_with(line, &names()) else {
        panic!("{line}");
    };
    assert_eq!(real.thresholds, t(100, 75));
}

#[test]
fn unsupported_features() {
    let real = "-a -t 10.0.0.100:80 -r 10.0.0.11";
    let _ = real;
    assert_eq!(
        p("-A -u 10.0.0.100:5060 -p --pe sip"),
        Err(CliError::Unsupported("persistence engines (--pe)"))
    );
    assert_eq!(
        p("-A -t 10.0.0.100:80 -s rr -b flag-1"),
        Err(CliError::Unsupported(
            "scheduler flags (-b) of schedulers other than sh and mh"
        ))
    );
    assert_eq!(p("-A -f 0"), Err(CliError::InvalidFwmark("0".into())));
    assert_eq!(
        p("-A --sctp-service 10.0.0.100:80"),
        Err(CliError::Unsupported("SCTP services (--sctp-service)"))
    );
    assert_eq!(
        p("-L --daemon"),
        Err(CliError::Unsupported("--daemon (sync daemon status)"))
    );
    assert_eq!(
        p(&format!("{real} --tun-type gue")),
        Err(CliError::TunnelOptionsConflict)
    );
    assert_eq!(
        p(&format!("{real} --tun-type foo")),
        Err(CliError::IllegalValue {
            what: "tunnel type"
        })
    );
    assert_eq!(
        p("--start-daemon master"),
        Err(CliError::Unsupported(SYNC_DAEMON))
    );
    assert_eq!(
        p("--stop-daemon backup"),
        Err(CliError::Unsupported(SYNC_DAEMON))
    );
    assert_eq!(
        p("--start-daemon master --syncid 300"),
        Err(CliError::IllegalValue { what: "syncid" })
    );
    assert_eq!(
        p("--start-daemon slave"),
        Err(CliError::IllegalValue {
            what: "start-daemon parameter"
        })
    );
    assert_eq!(
        p("--stop-daemon slave"),
        Err(CliError::IllegalValue {
            what: "start_daemon"
        })
    );
    assert_eq!(
        p("--start-daemon master -n"),
        Err(CliError::IllegalOption {
            option: "numeric",
            command: "start-daemon"
        })
    );
}

// --- scheduler flags (-b) -------------------------------------------------

#[test]
fn sched_flags_as_ipvsadm_parses_them() {
    use crate::model::SchedFlags;
    let both = SchedFlags(SchedFlags::FALLBACK.0 | SchedFlags::PORT.0);
    let add = |sched| {
        Ok(Command::AddService(spec(
            tcp("10.0.0.100", 80),
            sched,
            None,
            ALL,
        )))
    };
    let svc = "-A -t 10.0.0.100:80";
    assert_eq!(p(&format!("{svc} -s sh")), add(Sched::Sh(SchedFlags::NONE)));
    assert_eq!(p(&format!("{svc} -s mh")), add(Sched::Mh(SchedFlags::NONE)));
    assert_eq!(
        p(&format!("{svc} -s sh -b sh-fallback,sh-port")),
        add(Sched::Sh(both))
    );
    assert_eq!(
        p(&format!("{svc} -b sh-port -s sh")),
        add(Sched::Sh(SchedFlags::PORT))
    );
    assert_eq!(
        p(&format!("{svc} -s mh --sched-flags mh-port")),
        add(Sched::Mh(SchedFlags::PORT))
    );
    assert_eq!(
        p(&format!("{svc} -s mh -b mh-fallback")),
        add(Sched::Mh(SchedFlags::FALLBACK))
    );
    // flag-1 and flag-2 are the same bits; strtok skips empty words.
    assert_eq!(
        p(&format!("{svc} -s sh -b flag-1,,flag-2,")),
        add(Sched::Sh(both))
    );
    let empty: Vec<String> = ["-A", "-t", "10.0.0.100:80", "-s", "sh", "-b", ""]
        .map(String::from)
        .to_vec();
    assert_eq!(
        parse_with(&empty, &names()),
        add(Sched::Sh(SchedFlags::NONE))
    );
    let incompatible = |f: &str| Err(CliError::IncompatibleSchedFlag(f.into()));
    assert_eq!(p(&format!("{svc} -b sh-port")), incompatible("sh-port"));
    assert_eq!(
        p(&format!("{svc} -s sh -b mh-port")),
        incompatible("mh-port")
    );
    assert_eq!(
        p(&format!("{svc} -s mh -b sh-fallback")),
        incompatible("sh-fallback")
    );
    assert_eq!(
        p(&format!("{svc} -s wrr -b mh-fallback")),
        incompatible("mh-fallback")
    );
    // Checked against -s as written, before the scheduler is refused.
    assert_eq!(
        p(&format!("{svc} -s lc -b sh-port")),
        incompatible("sh-port")
    );
    // -E without -s: ipvsadm checks against its default scheduler.
    assert_eq!(p("-E -t 10.0.0.100:80 -b sh-port"), incompatible("sh-port"));
    assert_eq!(
        p(&format!("{svc} -s sh -b sh-port,fallback")),
        Err(CliError::InvalidSchedFlag("fallback".into()))
    );
    assert_eq!(
        p(&format!("{svc} -s sh -b ,")),
        Err(CliError::InvalidSchedFlag(String::new()))
    );
    // -b is parsed before the command/option check, as in ipvsadm.
    assert_eq!(
        p("-a -t 10.0.0.100:80 -r 10.0.0.11 -b sh-port"),
        incompatible("sh-port")
    );
    assert_eq!(
        p("-a -t 10.0.0.100:80 -r 10.0.0.11 -b flag-1"),
        Err(CliError::IllegalOption {
            option: "sched-flags",
            command: "add-server"
        })
    );
    assert_eq!(
        p(&format!("{svc} -s sh -b sh-port -b sh-port")),
        Err(CliError::MultipleOptions("sched-flags"))
    );
}

/// ldirectord's example configuration has `fallback=127.0.0.1:80 gate`: IPVS serves such a
/// real server on the director itself (`Local`), which direct routing cannot do. Refused
/// on `-a`/`-e`, as `lbctl daemon` refuses it; `-d` still removes one.
#[test]
fn a_real_server_on_the_director_itself_is_refused() {
    for cmd in [
        "-a -t 10.0.0.100:80 -r 127.0.0.1:80 -g -w 1",
        "-e -t 10.0.0.100:80 -x 0 -y 0 -r 127.0.0.1:80 -g -w 1",
        "-a -t 10.0.0.100:80 -r 127.1.2.3",
        "-a -t 10.0.0.100:80 -r 0.0.0.0:80",
    ] {
        let err = p(cmd).expect_err(cmd);
        assert!(matches!(err, CliError::LocalReal(_)), "{cmd}: {err:?}");
        assert_eq!(err.exit_code(), 2);
    }
    assert_eq!(
        p("-a -t 10.0.0.100:80 -r 127.0.0.1:80")
            .unwrap_err()
            .to_string(),
        crate::neigh::local_error(ip("127.0.0.1"))
    );
    assert!(p("-d -t 10.0.0.100:80 -r 127.0.0.1:80").is_ok());
}
