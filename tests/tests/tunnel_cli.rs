//! End to end: lbctl's ipvsadm command line and listings for tunnelling (`-i`, with
//! `--tun-type ipip|gue|gre` and its options) and masquerading (`-m`) real servers, against
//! a loaded program, as ipvsadm 1.31 reads and prints them (docs/SEMANTICS.md §8.8). The
//! controller only: no traffic (the packet paths have their own suites).
//!
//! - A rules file mixing `-g`, `-i` (each tunnel type and checksum option, 4in6 and 6in4) and
//!   `-m` reals (their own ports, port 0), IPv4 and IPv6, restores with `-R`, saves back byte
//!   for byte with `-S -n`, lists byte for byte with `-L -n` and `-L -n --tun-info`, and
//!   `-S | -C | -R` gives the same tables.
//! - `-e` replaces a real's method and tunnel settings, as ipvsadm sends them all.
//! - Errors: ipvsadm's messages and exit statuses, and nothing changes.
//! - `-L -c` shows a masqueraded connection's real address and port (the packet's port for
//!   a port-0 real), and `lbctl sysctl` has `pmtu_disc` and `nat_icmp_send`.

use std::net::IpAddr;

use anyhow::{Context as _, Result};
use lb_common::{CONN_S_ESTABLISHED, CONN_S_UDP, COUNTED_NONE, Conn, ConnKey, DEST_F_IN_USE};
use lb_tests::cli_lab::{dual_stack_lab, restore, run, without_comments};
use lb_tests::lb::LbTopology;
use lb_tests::require_root;
use lb_user::{Pins, Table};

/// The rules file: `-S -n` prints it back without its comment line.
const RULES: &str = include_str!("../fixtures/ipvsadm-tunnel.rules");
/// `-L -n` of [`RULES`], as ipvsadm 1.31's `printf`s write it.
const RULES_LIST: &str = include_str!("../fixtures/ipvsadm-tunnel.rules.list");
/// `-L -n --tun-info` of [`RULES`].
const RULES_TUN_INFO: &str = include_str!("../fixtures/ipvsadm-tunnel.rules.tun-info");

fn lab() -> Result<LbTopology> {
    dual_stack_lab("")
}

#[test]
fn tunnel_and_masq_rules_restore_save_and_list_as_ipvsadm() -> Result<()> {
    if !require_root("tunnel_and_masq_rules_restore_save_and_list_as_ipvsadm") {
        return Ok(());
    }
    let lb = lab()?;
    restore(&lb, RULES)?;
    let saved = lb.lbctl_ok(&["-S", "-n"])?;
    assert_eq!(saved, without_comments(RULES));
    let listing = lb.lbctl_ok(&["-L", "-n"])?;
    assert_eq!(listing, RULES_LIST);
    let tun_info = lb.lbctl_ok(&["-L", "-n", "--tun-info"])?;
    assert_eq!(tun_info, RULES_TUN_INFO);

    // One service (the title lines, no version line), in both formats.
    assert_eq!(
        lb.lbctl_ok(&["-L", "-n", "-t", "203.0.113.10:443", "--tun-info"])?,
        "Prot LocalAddress:Port Scheduler Flags\n\
         \x20 -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n\
         TCP  203.0.113.10:443 rr\n\
         \x20 -> 198.51.100.11:443            Tunnel  gre:+c        1      0          0         \n\
         \x20 -> 198.51.100.12:8443           Masq    n/a           3      0          0         \n"
    );
    // --stats wins over --tun-info (ipvsadm tests it first).
    assert_eq!(
        lb.lbctl_ok(&["-L", "-n", "--stats", "--tun-info"])?,
        lb.lbctl_ok(&["-L", "-n", "--stats"])?
    );
    // --thresholds: the -m real's -x/-y, under its own port.
    let thresholds = lb.lbctl_ok(&["-L", "-n", "--thresholds"])?;
    assert!(
        thresholds.contains(
            "\nUDP  203.0.113.10:53 rr\n\
             \x20 -> 198.51.100.11:53             0          0          0          0         \n\
             \x20 -> 198.51.100.12:0              0          0          0          0         \n\
             \x20 -> 198.51.100.12:5353           100        50         0          0         \n"
        ),
        "{thresholds}"
    );
    // Without -n: names, and the tunnel options as they are.
    let named = lb.lbctl_ok(&["-S"])?;
    assert!(
        named.contains(
            "\n-a -t 203.0.113.10:http -r 198.51.100.11:http -i -w 2 --tun-type gue --tun-port \
             6080 --tun-nocsum\n"
        ),
        "{named}"
    );

    // -S | -C | -R: the same tables.
    lb.lbctl_ok(&["-C"])?;
    assert_eq!(lb.lbctl_ok(&["-S", "-n"])?, "");
    restore(&lb, &saved)?;
    assert_eq!(lb.lbctl_ok(&["-S", "-n"])?, saved);
    assert_eq!(lb.lbctl_ok(&["-L", "-n"])?, listing);
    assert_eq!(lb.lbctl_ok(&["-L", "-n", "--tun-info"])?, tun_info);
    Ok(())
}

/// ipvsadm sends a real's method and tunnel settings with every `-e`: `-i` alone makes a
/// GUE real IPIP, no method makes it `-g`; `-a`'s port rules apply to `-e` too.
#[test]
fn edit_replaces_the_method_and_tunnel_settings() -> Result<()> {
    if !require_root("edit_replaces_the_method_and_tunnel_settings") {
        return Ok(());
    }
    let lb = lab()?;
    let svc = "203.0.113.10:80";
    lb.lbctl_ok(&["-A", "-t", svc, "-s", "rr"])?;
    // -i silently takes the service's port; -m keeps its own.
    lb.lbctl_ok(&[
        "-a",
        "-t",
        svc,
        "-r",
        "198.51.100.11:8080",
        "-i",
        "--tun-type",
        "gue",
        "--tun-port",
        "6080",
        "--tun-remcsum",
    ])?;
    lb.lbctl_ok(&["-a", "-t", svc, "-r", "198.51.100.12:8080", "-m"])?;
    let save = || lb.lbctl_ok(&["-S", "-n"]);
    assert_eq!(
        save()?,
        "-A -t 203.0.113.10:80 -s rr\n\
         -a -t 203.0.113.10:80 -r 198.51.100.11:80 -i -w 1 --tun-type gue --tun-port 6080 \
         --tun-remcsum\n\
         -a -t 203.0.113.10:80 -r 198.51.100.12:8080 -m -w 1\n"
    );
    let edit = |args: &[&str]| -> Result<String> {
        let mut all = vec!["-e", "-t", svc, "-r", "198.51.100.11"];
        all.extend_from_slice(args);
        lb.lbctl_ok(&all)?;
        Ok(save()?
            .lines()
            .find(|l| l.contains("198.51.100.11"))
            .unwrap_or_default()
            .to_owned())
    };
    assert_eq!(
        edit(&["-i", "-w", "5"])?,
        "-a -t 203.0.113.10:80 -r 198.51.100.11:80 -i -w 5 --tun-type ipip"
    );
    assert_eq!(
        edit(&["-i", "--tun-type", "gre", "--tun-csum"])?,
        "-a -t 203.0.113.10:80 -r 198.51.100.11:80 -i -w 1 --tun-type gre --tun-csum"
    );
    assert_eq!(
        edit(&["-w", "2"])?,
        "-a -t 203.0.113.10:80 -r 198.51.100.11:80 -g -w 2"
    );
    // -m on -e keeps the port typed: 198.51.100.11 alone is :80, the real's.
    assert_eq!(
        edit(&["-m"])?,
        "-a -t 203.0.113.10:80 -r 198.51.100.11:80 -m -w 1"
    );
    // A -m real is found by its own port; another port is another real.
    let (out, err, code) = run(&lb, &["-e", "-t", svc, "-r", "198.51.100.12:80", "-m"])?;
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        ("", "No such destination\n", 255)
    );
    lb.lbctl_ok(&["-e", "-t", svc, "-r", "198.51.100.12:8080", "-m", "-w", "4"])?;
    lb.lbctl_ok(&["-a", "-t", svc, "-r", "198.51.100.12:8081", "-m"])?;
    assert_eq!(
        lb.lbctl_ok(&["-L", "-n"])?,
        "IP Virtual Server version 1.2.1 (size=65536)\n\
         Prot LocalAddress:Port Scheduler Flags\n\
         \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
         TCP  203.0.113.10:80 rr\n\
         \x20 -> 198.51.100.11:80             Masq    1      0          0         \n\
         \x20 -> 198.51.100.12:8080           Masq    4      0          0         \n\
         \x20 -> 198.51.100.12:8081           Masq    1      0          0         \n"
    );
    lb.lbctl_ok(&["-d", "-t", svc, "-r", "198.51.100.12:8081"])?;
    assert!(!lb.lbctl_ok(&["-S", "-n"])?.contains(":8081"));
    Ok(())
}

#[test]
fn tunnel_errors_are_ipvsadms_and_change_nothing() -> Result<()> {
    if !require_root("tunnel_errors_are_ipvsadms_and_change_nothing") {
        return Ok(());
    }
    let lb = lab()?;
    restore(
        &lb,
        "-A -t 203.0.113.10:80 -s rr\n\
         -a -t 203.0.113.10:80 -r 198.51.100.11 -i --tun-type gue --tun-port 6080\n\
         -A -t [2001:db8::1]:80 -s rr\n",
    )?;
    let before = lb.lbctl_ok(&["-S", "-n"])?;
    let add = ["-a", "-t", "203.0.113.10:80", "-r", "198.51.100.12"];
    let cases: &[(&[&str], &str, i32)] = &[
        (
            &["-i", "--tun-type", "gue"],
            "You need to supply the 'tun-port' option for the 'gue' tunnel type\n",
            2,
        ),
        (
            &["-g", "--tun-type", "gre"],
            "Tunnel options conflict with forward method\n",
            2,
        ),
        (
            &["-m", "--tun-csum"],
            "Tunnel options conflict with forward method\n",
            2,
        ),
        (
            &["-i", "--tun-csum"],
            "Illegal 'tun-csum' option with the 'ipip' tunnel type\n",
            2,
        ),
        (
            &["-i", "--tun-type", "gre", "--tun-port", "6080"],
            "Illegal 'tun-port' option with the 'gre' tunnel type\n",
            2,
        ),
        (
            &["-i", "--tun-type", "gre", "--tun-remcsum"],
            "Illegal 'tun-remcsum' option with the 'gre' tunnel type\n",
            2,
        ),
        (
            &[
                "-i",
                "--tun-type",
                "gue",
                "--tun-port",
                "6080",
                "--tun-nocsum",
                "--tun-csum",
            ],
            "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gue' \
             tunnel type\n",
            2,
        ),
        (
            &["-i", "--tun-type", "GUE"],
            "illegal tunnel type specified\n",
            2,
        ),
        (
            &["-i", "--tun-type", "gue", "--tun-port", "0"],
            "illegal tunnel port specified\n",
            2,
        ),
        (
            &["-i", "-m"],
            "multiple 'forwarding-method' options specified\n",
            2,
        ),
        (
            &["-i", "--tun-info"],
            "Illegal 'tun-info' option with the 'add-server' command\n",
            2,
        ),
    ];
    for (extra, stderr, status) in cases {
        let mut args = add.to_vec();
        args.extend_from_slice(extra);
        let (out, err, code) = run(&lb, &args)?;
        assert_eq!(
            (out.as_str(), err.as_str(), code),
            ("", *stderr, *status),
            "{args:?}"
        );
    }
    let family = "Different address family is allowed only for tunneling servers\n";
    let others: &[(&[&str], &str, i32)] = &[
        (
            &[
                "-a",
                "-t",
                "[2001:db8::1]:80",
                "-r",
                "198.51.100.11:80",
                "-m",
            ],
            family,
            2,
        ),
        (
            &[
                "-a",
                "-t",
                "203.0.113.10:80",
                "-r",
                "[2001:db8:0:1::11]:80",
                "-g",
            ],
            family,
            2,
        ),
        (
            &["-L", "--tun-type", "gue"],
            "Illegal 'tun-type' option with the 'list' command\n",
            2,
        ),
        (
            &["-A", "-t", "203.0.113.10:81", "--tun-type", "gue"],
            "Illegal 'tun-type' option with the 'add-service' command\n",
            2,
        ),
        (
            &["sysctl", "pmtu_disc=2"],
            "lbctl: invalid value `2' for pmtu_disc (expected 0 or 1)\n",
            2,
        ),
    ];
    for (args, stderr, status) in others {
        let (out, err, code) = run(&lb, args)?;
        assert_eq!(
            (out.as_str(), err.as_str(), code),
            ("", *stderr, *status),
            "{args:?}"
        );
    }
    // A bad line refuses the whole -R input (lbctl reads it all first), naming the line.
    let o = lb.lbctl_stdin(
        &["-R"],
        Some(
            "-a -t 203.0.113.10:80 -r 198.51.100.12 -m\n\
             -a -t 203.0.113.10:80 -r 198.51.100.12 -i --tun-type gre --tun-port 1\n",
        ),
    )?;
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "lbctl: line 2: Illegal 'tun-port' option with the 'gre' tunnel type\n"
    );
    assert_eq!(lb.lbctl_ok(&["-S", "-n"])?, before);
    Ok(())
}

/// `-L -c` of a masqueraded connection names the real server's address and its own port
/// (the packet's port for a port-0 real), and of a tunnelled one the service's port.
#[test]
fn masq_conns_list_the_real_servers_port() -> Result<()> {
    if !require_root("masq_conns_list_the_real_servers_port") {
        return Ok(());
    }
    let lb = lab()?;
    restore(
        &lb,
        "-A -t 203.0.113.10:80 -s rr\n\
         -a -t 203.0.113.10:80 -r 198.51.100.11:8080 -m\n\
         -A -u 203.0.113.10:53 -s rr\n\
         -a -u 203.0.113.10:53 -r 198.51.100.12:0 -m\n\
         -A -t [2001:db8::1]:80 -s rr\n\
         -a -t [2001:db8::1]:80 -r 198.51.100.12 -i\n",
    )?;
    // The table holds the pin directory's lock: dropped before lbctl runs.
    let mut table = Table::new(Pins::open(lb.pins.path(), None)?);
    let dests = table.dest_table()?;
    let slot = |addr: &str, port: u16| -> Result<u32> {
        let a = lb_user::addr::to_addr(addr.parse::<IpAddr>()?);
        dests
            .iter()
            .position(|d| {
                d.flags & DEST_F_IN_USE != 0 && d.addr == a && d.port == port.to_be_bytes()
            })
            .map(|i| i as u32)
            .with_context(|| format!("no dest {addr}:{port}"))
    };
    let now = lb_user::clock::monotonic_ns();
    let mut put = |proto: u8,
                   client: (&str, u16),
                   vip: (&str, u16),
                   dest: u32,
                   state: u8,
                   fwd: u8|
     -> Result<()> {
        let key = ConnKey {
            caddr: lb_user::addr::to_addr(client.0.parse::<IpAddr>()?),
            vaddr: lb_user::addr::to_addr(vip.0.parse::<IpAddr>()?),
            cport: client.1.to_be_bytes(),
            vport: vip.1.to_be_bytes(),
            proto,
            _pad: [0; 3],
        };
        let conn = Conn {
            last_seen: now,
            tmpl_pushed: 0,
            dest,
            dest_gen: dests[dest as usize].generation,
            timeout: 600,
            svc: 0,
            state,
            flags: 0,
            fwd,
            _pad: 0,
            counted: COUNTED_NONE,
        };
        table.pins.conns.insert(key, conn, 0)?;
        Ok(())
    };
    put(
        6,
        ("198.51.100.10", 40000),
        ("203.0.113.10", 80),
        slot("198.51.100.11", 8080)?,
        CONN_S_ESTABLISHED,
        lb_common::FWD_MASQ,
    )?;
    put(
        17,
        ("198.51.100.10", 40001),
        ("203.0.113.10", 53),
        slot("198.51.100.12", 0)?,
        CONN_S_UDP,
        lb_common::FWD_MASQ,
    )?;
    put(
        6,
        ("2001:db8::10", 40002),
        ("2001:db8::1", 80),
        slot("198.51.100.12", 80)?,
        CONN_S_ESTABLISHED,
        lb_common::FWD_TUNNEL,
    )?;
    drop(table);
    let rows = lb.lbctl_ok(&["-L", "-c", "-n"])?;
    let mut lines: Vec<String> = rows
        .lines()
        .skip(2)
        .map(|l| {
            // The expiry column changes with time: keep the rest.
            let mut w: Vec<&str> = l.split_whitespace().collect();
            w.remove(1);
            w.join(" ")
        })
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "TCP ESTABLISHED 198.51.100.10:40000 203.0.113.10:80 198.51.100.11:8080",
            "TCP ESTABLISHED [2001:db8::10]:40002 [2001:db8::1]:80 198.51.100.12:80",
            "UDP UDP 198.51.100.10:40001 203.0.113.10:53 198.51.100.12:53",
        ],
        "{rows}"
    );
    Ok(())
}

#[test]
fn pmtu_disc_and_nat_icmp_send_are_sysctls() -> Result<()> {
    if !require_root("pmtu_disc_and_nat_icmp_send_are_sysctls") {
        return Ok(());
    }
    let lb = LbTopology::new(1)?;
    let all = lb.lbctl_ok(&["sysctl"])?;
    assert_eq!(
        all,
        "net.ipv4.vs.conn_reuse_mode = 1\n\
         net.ipv4.vs.expire_nodest_conn = 0\n\
         net.ipv4.vs.expire_quiescent_template = 0\n\
         net.ipv4.vs.nat_icmp_send = 0\n\
         net.ipv4.vs.pmtu_disc = 1\n"
    );
    lb.lbctl_ok(&["sysctl", "pmtu_disc=0"])?;
    lb.lbctl_ok(&["sysctl", "net.ipv4.vs.nat_icmp_send=1"])?;
    assert_eq!(
        lb.lbctl_ok(&["sysctl", "pmtu_disc"])?,
        "net.ipv4.vs.pmtu_disc = 0\n"
    );
    assert_eq!(
        lb.lbctl_ok(&["sysctl", "nat_icmp_send"])?,
        "net.ipv4.vs.nat_icmp_send = 1\n"
    );
    let s = Pins::open(lb.pins.path(), None)?.settings()?; // (dropped at once)
    assert_eq!((s.pmtu_disc, s.nat_icmp_send), (0, 1));
    // A bad value changes nothing.
    let (out, err, code) = run(&lb, &["sysctl", "nat_icmp_send=on"])?;
    assert_eq!(
        (out.as_str(), err.as_str(), code),
        (
            "",
            "lbctl: invalid value `on' for nat_icmp_send (expected 0 or 1)\n",
            2
        )
    );
    assert_eq!(
        lb.lbctl_ok(&["sysctl", "nat_icmp_send"])?,
        "net.ipv4.vs.nat_icmp_send = 1\n"
    );
    Ok(())
}
