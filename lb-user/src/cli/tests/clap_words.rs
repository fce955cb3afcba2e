//! lbctl's words on clap: help, suggestions, the forms they always took,
//! refused values.

use super::*;

/// Every visible lbctl word (the hidden `manpage` aside).
pub(super) const WORDS: [&str; 13] = [
    "attach",
    "detach",
    "sysctl",
    "counters",
    "daemon",
    "daemon-status",
    "drain",
    "whereis",
    "fwmark",
    "decap",
    "version",
    "help",
    "completions",
];

fn printed(r: Result<Command, CliError>) -> String {
    match r {
        Ok(Command::Print(text)) => text,
        other => panic!("not a text to print: {other:?}"),
    }
}

fn message(r: Result<Command, CliError>) -> String {
    r.expect_err("should be refused").to_string()
}

#[test]
fn every_word_has_help() {
    for w in WORDS {
        let long = printed(p(&format!("{w} --help")));
        assert!(long.contains(&format!("Usage: lbctl {w}")), "{w}: {long}");
        assert!(long.contains("-h, --help"), "{w}: {long}");
        let short = printed(p(&format!("{w} -h")));
        assert!(short.contains(&format!("Usage: lbctl {w}")), "{w}: {short}");
        assert_eq!(printed(p(&format!("help {w}"))), long, "lbctl help {w}");
    }
    let attach = printed(p("attach --help"));
    for needle in [
        "--mode <MODE>",
        "native",
        "generic",
        "--conns <N>",
        "--templates <N>",
        "--reset",
    ] {
        assert!(
            attach.contains(needle),
            "attach --help lacks {needle:?}: {attach}"
        );
    }
    let daemon = printed(p("daemon --help"));
    for needle in [
        "-f, --foreground",
        "--metrics <ADDR:PORT>",
        "--metrics-public",
        "<CONFIG>",
    ] {
        assert!(
            daemon.contains(needle),
            "daemon --help lacks {needle:?}: {daemon}"
        );
    }
    // Plain `help` is still ipvsadm's usage; `help` of no word is an error.
    assert_eq!(p("help"), Ok(Command::Help));
    assert_eq!(
        kind(p("help frobnicate")),
        Some(ErrorKind::InvalidSubcommand)
    );
}

#[test]
fn mistyped_words_and_options_get_suggestions() {
    for (typed, meant) in [
        ("atach eth0", "'attach'"),
        ("sysctll", "'sysctl'"),
        ("daemon-stauts", "'daemon-status'"),
        ("counter", "'counters'"),
        ("completion bash", "'completions'"),
        ("help atach", "'attach'"),
    ] {
        let r = p(typed);
        assert_eq!(
            kind(r.clone()),
            Some(ErrorKind::InvalidSubcommand),
            "{typed}"
        );
        let m = message(r);
        assert!(m.contains("similar") && m.contains(meant), "{typed}: {m}");
    }
    let m = message(p("attach eth0 --mdoe generic"));
    assert!(m.contains("similar") && m.contains("'--mode'"), "{m}");
    let m = message(p("daemon --foregroud lb.cf"));
    assert!(m.contains("'--foreground'"), "{m}");
}

#[test]
fn word_errors_read_like_lbctl_and_exit_255() {
    let e = p("attach eth0 eth1").unwrap_err();
    let m = e.to_string();
    assert!(
        !m.starts_with("error:"),
        "clap's prefix is dropped (main prints lbctl: ): {m}"
    );
    assert!(m.starts_with("unexpected argument 'eth1'"), "{m}");
    assert!(m.contains("Usage: lbctl attach"), "{m}");
    assert!(!m.ends_with('\n'), "{m:?}");
    assert_eq!(e.exit_code(), 255);
    assert_eq!(p("atach").unwrap_err().exit_code(), 255);
    // lbctl's own value errors keep their messages and codes.
    let e = p("attach a/b").unwrap_err();
    assert_eq!(e.to_string(), "invalid interface name `a/b'");
    assert_eq!(e.exit_code(), 2);
    assert_eq!(
        message(p("daemon --metrics localhost:9469 lb.cf")),
        "invalid metrics address `localhost:9469' (expected ADDR:PORT, e.g. 127.0.0.1:9469)"
    );
    assert_eq!(
        message(p("sysctl conn_reuse_mode=9")),
        "invalid value `9' for conn_reuse_mode (expected 0, 1, 2 or 3)"
    );
}

#[test]
fn old_forms_parse_as_before() {
    let attach = |iface: &str, mode, conns, templates, reset| Command::Attach {
        iface: iface.into(),
        mode,
        conns,
        templates,
        services: None,
        reals: None,
        reset,
    };
    let daemon = |foreground, config: &str| Command::Daemon {
        foreground,
        config: config.into(),
        metrics: None,
        metrics_public: false,
    };
    for (line, cmd) in [
        (
            "attach eth0",
            attach("eth0", XdpMode::Native, None, None, false),
        ),
        (
            "attach --reset --mode generic --conns=1024 eth0 --templates 134217728",
            attach(
                "eth0",
                XdpMode::Generic,
                Some(1024),
                Some(134_217_728),
                true,
            ),
        ),
        (
            "detach veth-lb0",
            Command::Detach {
                iface: "veth-lb0".into(),
            },
        ),
        ("sysctl", Command::Sysctl(SysctlCmd::List)),
        (
            "sysctl conn_reuse_mode",
            Command::Sysctl(SysctlCmd::Show(Sysctl::ConnReuseMode)),
        ),
        (
            "sysctl net.ipv4.vs.expire_nodest_conn=1",
            Command::Sysctl(SysctlCmd::Set(Sysctl::ExpireNodestConn, 1)),
        ),
        ("counters", Command::Counters),
        ("version", Command::Version),
        ("help", Command::Help),
        ("daemon lb.cf", daemon(false, "lb.cf")),
        ("daemon -f lb.cf", daemon(true, "lb.cf")),
        ("daemon -d lb.cf", daemon(true, "lb.cf")),
        ("daemon --debug lb.cf start", daemon(true, "lb.cf")),
        ("daemon lb.cf --foreground", daemon(true, "lb.cf")),
        ("daemon -- -lb.cf", daemon(false, "-lb.cf")),
        ("daemon status", Command::DaemonStatus { config: None }),
        ("daemon -f status", Command::DaemonStatus { config: None }),
        ("daemon-status", Command::DaemonStatus { config: None }),
        (
            "daemon-status /etc/ha.d/ldirectord.cf",
            Command::DaemonStatus {
                config: Some("/etc/ha.d/ldirectord.cf".into()),
            },
        ),
        ("completions bash", Command::Completions(Shell::Bash)),
        ("completions zsh", Command::Completions(Shell::Zsh)),
        ("completions fish", Command::Completions(Shell::Fish)),
        ("manpage", Command::Manpage),
    ] {
        assert_eq!(p(line), Ok(cmd), "lbctl {line}");
    }
}

#[test]
fn bad_values_are_refused() {
    for line in [
        "attach",
        "attach eth0 --mode skb",
        "attach eth0 --conns 1023",
        "attach eth0 --conns 134217729",
        "attach eth0 --conns -5",
        "attach eth0 --conns 0x400",
        "attach eth0 --templates ''",
        "attach .",
        "attach eth:0",
        "detach",
        "detach 0123456789abcdef",
        "sysctl bogus",
        "sysctl expire_nodest_conn=1 x",
        "counters x",
        "version x",
        "help attach x",
        "daemon",
        "daemon lb.cf stop",
        "daemon --metrics 127.0.0.1 lb.cf",
        "daemon --metrics 127.0.0.1:1 --metrics 127.0.0.1:2 lb.cf",
        "daemon-status --bogus",
        "completions",
        "completions tcsh",
        "completions bash zsh",
        "manpage now",
    ] {
        let e = p(line).expect_err(line);
        assert!(!e.to_string().is_empty(), "{line}");
        assert_ne!(e.exit_code(), 0, "{line}");
    }
}
