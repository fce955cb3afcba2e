use super::*;

// --- listing -------------------------------------------------------------

#[test]
fn list_variants() {
    let d = ListFormat::default();
    assert_eq!(parse_with(&[], &names()), Ok(list(ListTarget::All, d)));
    assert_eq!(p("-L"), Ok(list(ListTarget::All, d)));
    assert_eq!(p("-l"), Ok(list(ListTarget::All, d)));
    assert_eq!(p("--list"), Ok(list(ListTarget::All, d)));
    assert_eq!(p("-L --sort"), Ok(list(ListTarget::All, d)));
    let n = ListFormat { numeric: true, ..d };
    assert_eq!(p("-L -n"), Ok(list(ListTarget::All, n)));
    assert_eq!(p("-Ln"), Ok(list(ListTarget::All, n)));
    assert_eq!(
        p("-L -n --stats --exact"),
        Ok(list(
            ListTarget::All,
            ListFormat {
                stats: true,
                exact: true,
                ..n
            }
        ))
    );
    assert_eq!(
        p("-L -X"),
        Ok(list(ListTarget::All, ListFormat { exact: true, ..d }))
    );
    assert_eq!(
        p("-L --rate"),
        Ok(list(ListTarget::All, ListFormat { rate: true, ..d }))
    );
    assert_eq!(
        p("-L --thresholds"),
        Ok(list(
            ListTarget::All,
            ListFormat {
                thresholds: true,
                ..d
            }
        ))
    );
    assert_eq!(
        p("-L --persistent-conn"),
        Ok(list(
            ListTarget::All,
            ListFormat {
                persistent_conn: true,
                ..d
            }
        ))
    );
    assert_eq!(
        p("-L --nosort"),
        Ok(list(ListTarget::All, ListFormat { nosort: true, ..d }))
    );
    assert_eq!(
        p("-L -t 10.0.0.100:80 -n"),
        Ok(list(ListTarget::Service(tcp("10.0.0.100", 80)), n))
    );
    assert_eq!(p("-L -c"), Ok(list(ListTarget::Conns, d)));
    assert_eq!(p("-L -c -n"), Ok(list(ListTarget::Conns, n)));
    assert_eq!(
        p("-L -c --persistent-conn"),
        Ok(list(
            ListTarget::Conns,
            ListFormat {
                persistent_conn: true,
                ..d
            }
        ))
    );
    assert_eq!(p("-L --timeout"), Ok(list(ListTarget::Timeouts, d)));
}

#[test]
fn list_conflicts() {
    assert_eq!(p("-L -c --stats"), Err(CliError::ListConflict));
    assert_eq!(p("-L --timeout --rate"), Err(CliError::ListConflict));
    assert_eq!(
        p("-L --timeout --persistent-conn"),
        Err(CliError::ListConflict)
    );
    assert_eq!(
        p("-L -c -t 10.0.0.100:80"),
        Err(CliError::ConflictingOptions {
            option: "service-address",
            other: "connection",
            command: "list"
        })
    );
    assert_eq!(
        p("-L -t 10.0.0.100:80 --timeout"),
        Err(CliError::ConflictingOptions {
            option: "timeout",
            other: "service-address",
            command: "list"
        })
    );
    assert_eq!(
        p("-L -w 1"),
        Err(CliError::IllegalOption {
            option: "weight",
            command: "list"
        })
    );
}

#[test]
fn zero() {
    assert_eq!(p("-Z"), Ok(Command::Zero(None)));
    assert_eq!(
        p("--zero -t 10.0.0.100:80"),
        Ok(Command::Zero(Some(tcp("10.0.0.100", 80))))
    );
    assert_eq!(
        p("-Z -n"),
        Err(CliError::IllegalOption {
            option: "numeric",
            command: "zero"
        })
    );
}

#[test]
fn set_timeouts() {
    assert_eq!(
        p("--set 900 120 300"),
        Ok(Command::SetTimeouts(Timeouts {
            tcp: 900,
            tcpfin: 120,
            udp: 300
        }))
    );
    assert_eq!(
        p("--set 0 0 2678400"),
        Ok(Command::SetTimeouts(Timeouts {
            tcp: 0,
            tcpfin: 0,
            udp: 2_678_400
        }))
    );
    assert_eq!(p("--set 900 120"), Err(CliError::SetNeedsThreeValues));
    assert_eq!(p("--set"), Err(CliError::SetNeedsThreeValues));
    assert_eq!(
        p("--set 900 120 300 5"),
        Err(CliError::UnexpectedArgument("5".into()))
    );
    assert_eq!(
        p("--set 900 x 300"),
        Err(CliError::InvalidTimeout("x".into()))
    );
    assert_eq!(
        p("--set 2678401 0 0"),
        Err(CliError::InvalidTimeout("2678401".into()))
    );
    assert_eq!(
        p("--set 1 2 3 -n"),
        Err(CliError::IllegalOption {
            option: "numeric",
            command: "set"
        })
    );
}

#[test]
fn help_and_version() {
    assert_eq!(p("-h"), Ok(Command::Help));
    assert_eq!(p("--help"), Ok(Command::Help));
    // ipvsadm prints the usage as soon as -h is the command.
    assert_eq!(p("-h --bogus"), Ok(Command::Help));
    assert_eq!(p("-v"), Ok(Command::Version));
    assert_eq!(p("--version"), Ok(Command::Version));
    assert_eq!(p("version"), Ok(Command::Version));
    assert_eq!(p("help"), Ok(Command::Help));
    assert_eq!(kind(p("version now")), Some(ErrorKind::UnknownArgument));
}

// --- option syntax errors -------------------------------------------------

#[test]
fn option_syntax_errors() {
    assert_eq!(
        p("-L --bogus"),
        Err(CliError::UnknownOption("--bogus".into()))
    );
    // popt's errors on the first option end in ipvsadm's "Try" line.
    assert_eq!(p("--bogus"), Err(CliError::NoCommand));
    assert_eq!(p("-Lq"), Err(CliError::UnknownOption("-Lq".into())));
    // popt: no abbreviations, no single-dash long options.
    assert_eq!(p("--lis"), Err(CliError::NoCommand));
    assert_eq!(p("-L --lis"), Err(CliError::UnknownOption("--lis".into())));
    assert_eq!(p("-A -t"), Err(CliError::MissingArgument("-t".into())));
    assert_eq!(
        p("-L --numeric=1"),
        Err(CliError::UnwantedArgument("--numeric=1".into()))
    );
    assert_eq!(p("-L -n=1"), Err(CliError::UnwantedArgument("-n=1".into())));
    assert_eq!(p("-n -L"), Err(CliError::NotACommand("-n".into())));
    assert_eq!(
        p("-t 10.0.0.100:80 -A"),
        Err(CliError::NotACommand("-t".into()))
    );
    assert_eq!(p("-- -L"), Err(CliError::NoCommand));
    assert_eq!(p("-L -A"), Err(CliError::InvalidOption("-A".into())));
    assert_eq!(p("-L -h"), Err(CliError::InvalidOption("-h".into())));
    assert_eq!(p("-L foo"), Err(CliError::UnexpectedArgument("foo".into())));
    assert_eq!(
        p("-A foo -t 10.0.0.100:80"),
        Err(CliError::UnexpectedArgument("foo".into()))
    );
    assert_eq!(
        p("-A -t 10.0.0.100:80 -s rr -s wrr"),
        Err(CliError::MultipleOptions("scheduler"))
    );
    assert_eq!(
        p("-A -t 10.0.0.100:80 -t 10.0.0.100:81"),
        Err(CliError::MultipleOptions("service-address"))
    );
    // A required argument is taken even if it starts with '-'.
    assert_eq!(p("-A -t -s rr"), Err(CliError::IllegalServiceAddress));
    assert_eq!(kind(p("frobnicate")), Some(ErrorKind::InvalidSubcommand));
}

// --- restore ----------------------------------------------------------------

fn r(line: &str) -> Result<Option<Command>, CliError> {
    parse_restore_line_with(line, &names())
}

#[test]
fn restore_lines() {
    assert_eq!(r(""), Ok(None));
    assert_eq!(r("   \t "), Ok(None));
    assert_eq!(r("# saved by lbctl"), Ok(None));
    assert_eq!(r("ipvsadm"), Ok(None));
    assert_eq!(
        r("-A -t 10.0.0.100:80 -s rr   # web"),
        Ok(Some(Command::AddService(spec(
            tcp("10.0.0.100", 80),
            Sched::Rr,
            None,
            ALL
        ))))
    );
    assert_eq!(
        r("ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 2"),
        Ok(Some(Command::AddReal {
            service: tcp("10.0.0.100", 80),
            real: real("10.0.0.11", 80, 2)
        }))
    );
    assert_eq!(r("lbctl -C"), Ok(Some(Command::Clear)));
    assert_eq!(
        r("\t-D\t-t 10.0.0.100:80\r"),
        Ok(Some(Command::DeleteService(tcp("10.0.0.100", 80))))
    );
    assert_eq!(
        r("-e -t 10.0.0.100:80 -r 10.0.0.11 -w 0"),
        Ok(Some(Command::EditReal {
            service: tcp("10.0.0.100", 80),
            real: real("10.0.0.11", 80, 0)
        }))
    );
    assert_eq!(
        r("-d -t 10.0.0.100:80 -r 10.0.0.11"),
        Ok(Some(Command::DeleteReal {
            service: tcp("10.0.0.100", 80),
            real: RealId {
                addr: ip("10.0.0.11"),
                port: 80
            }
        }))
    );
    assert_eq!(
        r("-E -t 10.0.0.100:80 -p"),
        Ok(Some(Command::EditService(spec(
            tcp("10.0.0.100", 80),
            Sched::Wlc,
            Some(300),
            ALL
        ))))
    );
    assert_eq!(r("-A -t 10.0.0.100"), Err(CliError::ZeroPort));
}

#[test]
fn restore_refuses_other_commands() {
    for (line, word) in [
        ("-L", "-L"),
        ("-Ln", "-Ln"),
        ("-R", "-R"),
        ("-S", "-S"),
        ("-Z", "-Z"),
        ("--set 1 2 3", "--set"),
        ("-h", "-h"),
        ("-v", "-v"),
    ] {
        assert_eq!(
            r(line),
            Err(CliError::NotAllowedInRestore(word.into())),
            "{line}"
        );
    }
    // lbctl words are not ipvsadm commands.
    assert_eq!(r("attach eth0"), Err(CliError::NoCommand));
}

#[test]
fn saved_table_restores_to_the_same_commands() {
    let web = ServiceView {
        spec: spec(
            tcp("10.0.0.100", 80),
            Sched::Wrr,
            Some(300),
            "255.255.255.0",
        ),
        stats: Stats::default(),
        rates: Default::default(),
        reals: vec![crate::model::RealView {
            spec: real("10.0.0.11", 80, 7),
            active_conns: 0,
            inactive_conns: 0,
            persist_conns: 0,
            stats: Stats::default(),
            rates: Default::default(),
        }],
    };
    let dns = ServiceView {
        spec: spec(udp("10.0.0.100", 53), Sched::Rr, None, ALL),
        stats: Stats::default(),
        rates: Default::default(),
        reals: Vec::new(),
    };
    for numeric in [true, false] {
        let saved = crate::format::save_with(&[web.clone(), dns.clone()], numeric, &names());
        let cmds: Vec<Command> = saved.lines().map(|l| r(l).unwrap().unwrap()).collect();
        assert_eq!(
            cmds,
            vec![
                Command::AddService(web.spec),
                Command::AddReal {
                    service: web.spec.id,
                    real: web.reals[0].spec
                },
                Command::AddService(dns.spec),
            ],
            "{saved}"
        );
    }
}
