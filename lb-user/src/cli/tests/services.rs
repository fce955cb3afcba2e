use super::*;

// --- services --------------------------------------------------------

#[test]
fn add_service() {
    assert_eq!(
        p("-A -t 10.0.0.100:80 -s rr"),
        Ok(Command::AddService(spec(
            tcp("10.0.0.100", 80),
            Sched::Rr,
            None,
            ALL
        )))
    );
    assert_eq!(
        p("-A -u 10.0.0.100:53 -s wrr"),
        Ok(Command::AddService(spec(
            udp("10.0.0.100", 53),
            Sched::Wrr,
            None,
            ALL
        )))
    );
}

#[test]
fn one_packet_scheduling() {
    let mut want = spec(udp("10.0.0.100", 53), Sched::Rr, None, ALL);
    want.one_packet = true;
    assert_eq!(
        p("-A -u 10.0.0.100:53 -s rr -o"),
        Ok(Command::AddService(want))
    );
    assert_eq!(
        p("-E -u 10.0.0.100:53 -s rr --ops"),
        Ok(Command::EditService(want))
    );
    // ipvsadm lists it after the persistence, and saves it before -b.
    let view = ServiceView {
        spec: want,
        stats: Default::default(),
        rates: Default::default(),
        reals: Vec::new(),
    };
    let names = names();
    let listing = crate::format::list_service_with(&view, &Default::default(), &names);
    assert!(listing.ends_with(" rr ops\n"), "{listing}");
    let saved = crate::format::save_with(&[view], true, &names);
    assert_eq!(saved, "-A -u 10.0.0.100:53 -s rr -o\n");
}

/// ipvsadm refuses `-o` on a TCP service while parsing (after the zero
/// port check, before the kernel sees the scheduler): status 2, its text.
#[test]
fn one_packet_scheduling_is_refused_on_tcp_services() {
    for line in [
        "-A -t 10.0.0.100:80 -o -s rr",
        "-E -t 10.0.0.100:80 -s rr --ops",
        "-A -t 10.0.0.100:80 -p 60 -o",
        "-A -t 10.0.0.100:80 -s bogus -o",
    ] {
        let e = p(line).unwrap_err();
        assert_eq!(e, CliError::OnePacketNotUdp, "{line}");
        assert_eq!(e.exit_code(), 2, "{line}");
        assert_eq!(
            e.render("ipvsadm"),
            "One-Packet Scheduling is only for UDP virtual services\n"
        );
    }
    assert_eq!(p("-A -t 10.0.0.100 -o"), Err(CliError::ZeroPort));
}

#[test]
fn add_service_defaults_to_wlc_as_ipvsadm() {
    assert_eq!(
        p("-A -t 10.0.0.100:80"),
        Ok(Command::AddService(spec(
            tcp("10.0.0.100", 80),
            Sched::Wlc,
            None,
            ALL
        )))
    );
}

#[test]
fn long_options() {
    assert_eq!(
        p(
            "--add-service --tcp-service 10.0.0.100:80 --scheduler rr --persistent 600 --netmask 255.255.255.0"
        ),
        Ok(Command::AddService(spec(
            tcp("10.0.0.100", 80),
            Sched::Rr,
            Some(600),
            "255.255.255.0"
        )))
    );
    assert_eq!(
        p("--add-service --tcp-service=10.0.0.100:80 --scheduler=rr --persistent=60"),
        Ok(Command::AddService(spec(
            tcp("10.0.0.100", 80),
            Sched::Rr,
            Some(60),
            ALL
        )))
    );
}

#[test]
fn clustered_and_attached_short_options() {
    let want = Ok(Command::AddService(spec(
        tcp("10.0.0.100", 80),
        Sched::Rr,
        Some(600),
        ALL,
    )));
    assert_eq!(p("-At 10.0.0.100:80 -srr -p600"), want);
    assert_eq!(p("-At10.0.0.100:80 -s=rr -p 600"), want);
    assert_eq!(
        p("-Lnc"),
        Ok(list(
            ListTarget::Conns,
            ListFormat {
                numeric: true,
                ..ListFormat::default()
            }
        ))
    );
}

#[test]
fn persistent_timeout() {
    let add = |t: Option<u32>| {
        Ok(Command::AddService(spec(
            tcp("10.0.0.100", 80),
            Sched::Wlc,
            t,
            ALL,
        )))
    };
    // No value: ipvsadm's IPVS_SVC_PERSISTENT_TIMEOUT, (6*60).
    assert_eq!(p("-A -t 10.0.0.100:80 -p"), add(Some(300)));
    // The next word is taken only if it does not start with '-'.
    assert_eq!(
        p("-A -t 10.0.0.100:80 -p -s rr"),
        Ok(Command::AddService(spec(
            tcp("10.0.0.100", 80),
            Sched::Rr,
            Some(300),
            ALL
        )))
    );
    assert_eq!(p("-A -t 10.0.0.100:80 -p 1"), add(Some(1)));
    assert_eq!(p("-A -t 10.0.0.100:80 -p 2678400"), add(Some(2_678_400)));
    assert_eq!(
        p("-A -t 10.0.0.100:80 -p 0"),
        Err(CliError::InvalidTimeout("0".into()))
    );
    assert_eq!(
        p("-A -t 10.0.0.100:80 -p 2678401"),
        Err(CliError::InvalidTimeout("2678401".into()))
    );
    assert_eq!(
        p("-A -t 10.0.0.100:80 -p rr"),
        Err(CliError::InvalidTimeout("rr".into()))
    );
    assert_eq!(
        p("-A -t 10.0.0.100:80 --persistent="),
        Err(CliError::InvalidTimeout(String::new()))
    );
}

#[test]
fn zero_port_needs_persistence() {
    assert_eq!(p("-A -t 10.0.0.100"), Err(CliError::ZeroPort));
    assert_eq!(p("-A -t 10.0.0.100:0"), Err(CliError::ZeroPort));
    assert_eq!(p("-E -u 10.0.0.100"), Err(CliError::ZeroPort));
    assert_eq!(
        p("-A -t 10.0.0.100 -p"),
        Ok(Command::AddService(spec(
            tcp("10.0.0.100", 0),
            Sched::Wlc,
            Some(300),
            ALL
        )))
    );
    // Only -A/-E check it.
    assert_eq!(
        p("-D -t 10.0.0.100"),
        Ok(Command::DeleteService(tcp("10.0.0.100", 0)))
    );
}

#[test]
fn edit_service_resends_defaults() {
    assert_eq!(
        p("-E -t 10.0.0.100:80"),
        Ok(Command::EditService(spec(
            tcp("10.0.0.100", 80),
            Sched::Wlc,
            None,
            ALL
        )))
    );
    assert_eq!(
        p("--edit-service -t 10.0.0.100:80 -s rr -p 30 -M 255.255.0.0"),
        Ok(Command::EditService(spec(
            tcp("10.0.0.100", 80),
            Sched::Rr,
            Some(30),
            "255.255.0.0"
        )))
    );
}

#[test]
fn delete_and_clear() {
    assert_eq!(
        p("-D -t 10.0.0.100:80"),
        Ok(Command::DeleteService(tcp("10.0.0.100", 80)))
    );
    assert_eq!(
        p("--delete-service -u 10.0.0.100:53"),
        Ok(Command::DeleteService(udp("10.0.0.100", 53)))
    );
    assert_eq!(p("-C"), Ok(Command::Clear));
    assert_eq!(p("--clear"), Ok(Command::Clear));
    assert_eq!(
        p("-D -t 10.0.0.100:80 -s rr"),
        Err(CliError::IllegalOption {
            option: "scheduler",
            command: "delete-service"
        })
    );
    assert_eq!(
        p("-C -n"),
        Err(CliError::IllegalOption {
            option: "numeric",
            command: "flush"
        })
    );
    assert_eq!(
        p("-D"),
        Err(CliError::MissingOption {
            option: "service-address",
            command: "delete-service"
        })
    );
}

#[test]
fn netmask() {
    assert_eq!(
        p("-A -t 10.0.0.100:80 -p -M 0.0.0.0"),
        Ok(Command::AddService(spec(
            tcp("10.0.0.100", 80),
            Sched::Wlc,
            Some(300),
            "0.0.0.0"
        )))
    );
    assert_eq!(
        p("-A -t 10.0.0.100:80 -p -M 255.0.255.0"),
        Err(CliError::NonContiguousNetmask(ip("255.0.255.0")))
    );
    assert_eq!(
        p("-A -t 10.0.0.100:80 -p -M 24"),
        Err(CliError::IllegalNetmask)
    );
    assert_eq!(
        p("-A -t 10.0.0.100:80 -p -M vip"),
        Err(CliError::IllegalNetmask)
    );
}

#[test]
fn restore_and_save() {
    assert_eq!(p("-R"), Ok(Command::Restore));
    assert_eq!(p("--restore"), Ok(Command::Restore));
    assert_eq!(p("-R foo"), Err(CliError::UnexpectedArgument("foo".into())));
    assert_eq!(p("-S"), Ok(Command::Save { numeric: false }));
    assert_eq!(p("-S -n"), Ok(Command::Save { numeric: true }));
    assert_eq!(p("--save --numeric"), Ok(Command::Save { numeric: true }));
    assert_eq!(p("-Sn"), Ok(Command::Save { numeric: true }));
    assert_eq!(
        p("-S --stats"),
        Err(CliError::IllegalOption {
            option: "stats",
            command: "save"
        })
    );
}

// --- real servers ----------------------------------------------------

#[test]
fn add_real() {
    assert_eq!(
        p("-a -t 10.0.0.100:80 -r 10.0.0.11 -g -w 3"),
        Ok(Command::AddReal {
            service: tcp("10.0.0.100", 80),
            real: real("10.0.0.11", 80, 3)
        })
    );
    assert_eq!(
        p(
            "--add-server --tcp-service 10.0.0.100:80 --real-server 10.0.0.11:80 --gatewaying --weight 0"
        ),
        Ok(Command::AddReal {
            service: tcp("10.0.0.100", 80),
            real: real("10.0.0.11", 80, 0)
        })
    );
}

#[test]
fn add_real_defaults_and_forced_port() {
    // Weight 1, direct routing, and the service's port even if another
    // one is given (ipvsadm forces it for -g).
    assert_eq!(
        p("-a -t 10.0.0.100:80 -r 10.0.0.11:8080"),
        Ok(Command::AddReal {
            service: tcp("10.0.0.100", 80),
            real: real("10.0.0.11", 80, 1)
        })
    );
    // Port-0 (persistent) service: reals get port 0.
    assert_eq!(
        p("-a -t 10.0.0.100 -r 10.0.0.11:443"),
        Ok(Command::AddReal {
            service: tcp("10.0.0.100", 0),
            real: real("10.0.0.11", 0, 1)
        })
    );
}

#[test]
fn edit_real_resets_weight_to_one() {
    assert_eq!(
        p("-e -t 10.0.0.100:80 -r 10.0.0.11"),
        Ok(Command::EditReal {
            service: tcp("10.0.0.100", 80),
            real: real("10.0.0.11", 80, 1)
        })
    );
    assert_eq!(
        p("--edit-server -u 10.0.0.100:53 -r 10.0.0.11:53 -w 65535"),
        Ok(Command::EditReal {
            service: udp("10.0.0.100", 53),
            real: real("10.0.0.11", 53, 65535)
        })
    );
}

#[test]
fn weight_range() {
    let add = |w: &str| p(&format!("-a -t 10.0.0.100:80 -r 10.0.0.11 -w {w}"));
    assert!(add("0").is_ok());
    assert!(add("65535").is_ok());
    // strtol: a sign and leading blanks are accepted.
    assert_eq!(
        add("+5"),
        Ok(Command::AddReal {
            service: tcp("10.0.0.100", 80),
            real: real("10.0.0.11", 80, 5)
        })
    );
    assert_eq!(add("65536"), Err(CliError::IllegalWeight));
    assert_eq!(add("-1"), Err(CliError::IllegalWeight));
    assert_eq!(add("3x"), Err(CliError::IllegalWeight));
    assert_eq!(add("99999999999999999999999"), Err(CliError::IllegalWeight));
}

#[test]
fn delete_real_keeps_the_given_port() {
    assert_eq!(
        p("-d -t 10.0.0.100:80 -r 10.0.0.11"),
        Ok(Command::DeleteReal {
            service: tcp("10.0.0.100", 80),
            real: RealId {
                addr: ip("10.0.0.11"),
                port: 80
            }
        })
    );
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
    // -r before -t: ipvsadm copies the (still zero) service port.
    assert_eq!(
        p("-d -r 10.0.0.11 -t 10.0.0.100:80"),
        Ok(Command::DeleteReal {
            service: tcp("10.0.0.100", 80),
            real: RealId {
                addr: ip("10.0.0.11"),
                port: 0
            }
        })
    );
    assert_eq!(
        p("-d -t 10.0.0.100:80 -r 10.0.0.11 -w 1"),
        Err(CliError::IllegalOption {
            option: "weight",
            command: "delete-server"
        })
    );
}

#[test]
fn real_server_needs_service_and_address() {
    assert_eq!(
        p("-a -t 10.0.0.100:80"),
        Err(CliError::MissingOption {
            option: "real-server",
            command: "add-server"
        })
    );
    assert_eq!(
        p("-a -r 10.0.0.11"),
        Err(CliError::MissingOption {
            option: "service-address",
            command: "add-server"
        })
    );
    assert_eq!(
        p("-a -t 10.0.0.100:80 -r nosuchhost"),
        Err(CliError::IllegalRealAddress)
    );
    assert_eq!(
        p("-a -t 10.0.0.100:80 -r 10.0.0.11:99999"),
        Err(CliError::IllegalRealAddress)
    );
    // Port names need the service's protocol, which ipvsadm only knows
    // once -t/-u has been seen.
    assert_eq!(
        p("-a -r rs1:http -t 10.0.0.100:80"),
        Err(CliError::IllegalRealAddress)
    );
    assert!(p("-a -t 10.0.0.100:80 -r rs1:http").is_ok());
}
