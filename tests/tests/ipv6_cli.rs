//! End to end: lbctl's ipvsadm command line and listings over IPv6, against a loaded
//! program, as ipvsadm 1.31 reads and prints them (docs/SEMANTICS.md §8).
//!
//! - A mixed-family rules file (IPv4 and IPv6 services, `-f MARK -6`, `-M 64`, thresholds,
//!   IPv6 fwmark rules) restores with `-R`, saves back byte for byte with `-S -n` and lists
//!   byte for byte as the fixture listing with `-L -n`.
//! - IPv6 errors: ipvsadm's messages and exit statuses, lbctl's own for what it refuses, and
//!   nothing changes.
//! - An IPv6 real server's next hop comes from the director's neighbour table (netlink,
//!   `AF_INET6`); one behind a gateway, or the director itself, is refused.

use std::net::Ipv6Addr;

use anyhow::{Result, ensure};
use lb_common::{DEST_F_IN_USE, DEST_F_RESOLVED, Dest, addr_from_octets};
use lb_tests::cli_lab::{RS_V6, dual_stack_lab, restore, run, without_comments};
use lb_tests::lb::LbTopology;
use lb_tests::netns::format_mac;
use lb_tests::require_root;
use lb_user::{Pins, Table};

/// The rules file: `-S -n` prints it back without its comment line.
const RULES: &str = include_str!("../fixtures/ipvsadm-ipv6.rules");
/// `-L -n` of [`RULES`], as ipvsadm 1.31's `printf`s write it.
const RULES_LIST: &str = include_str!("../fixtures/ipvsadm-ipv6.rules.list");

/// [`dual_stack_lab`] with a route to 2001:db8:99::/64 through a gateway on the link.
fn lab() -> Result<LbTopology> {
    dual_stack_lab("route add 2001:db8:99::/64 via 2001:db8:0:1::fe dev eth0\n")
}

/// The in-use dests of IPv6 address `addr`.
fn dests_of(lb: &LbTopology, addr: &str) -> Result<Vec<Dest>> {
    let a = addr_from_octets(addr.parse::<Ipv6Addr>()?.octets());
    Ok(Table::new(Pins::open(lb.pins.path(), None)?)
        .dest_table()?
        .into_iter()
        .filter(|d| d.flags & DEST_F_IN_USE != 0 && d.addr == a)
        .collect())
}

#[test]
fn mixed_family_rules_restore_save_and_list_as_ipvsadm() -> Result<()> {
    if !require_root("mixed_family_rules_restore_save_and_list_as_ipvsadm") {
        return Ok(());
    }
    let lb = lab()?;
    restore(&lb, RULES)?;
    let saved = lb.lbctl_ok(&["-S", "-n"])?;
    assert_eq!(saved, without_comments(RULES));
    let listing = lb.lbctl_ok(&["-L", "-n"])?;
    assert_eq!(listing, RULES_LIST);
    assert_eq!(
        lb.lbctl_ok(&["fwmark"])?,
        RULES
            .lines()
            .filter(|l| l.starts_with("fwmark add "))
            .map(|l| format!("{l}\n"))
            .collect::<String>()
    );

    // One service, by its IPv6 name or its mark and -6 (the title lines, no version line).
    const TITLE: &str = "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
    assert_eq!(
        lb.lbctl_ok(&["-L", "-n", "-t", "[2001:db8::1]:443"])?,
        format!(
            "{TITLE}TCP  [2001:db8::1]:443 wlc persistent 1800 mask 64\n\
             \x20 -> [2001:db8:0:1::11]:443       Route   1      0          0         \n\
             \x20 -> [2001:db8:0:1::12]:443       Route   0      0          0         \n"
        )
    );
    assert_eq!(
        lb.lbctl_ok(&["-L", "-n", "-f", "4", "-6"])?,
        format!(
            "{TITLE}FWM  4 IPv6 rr\n\
             \x20 -> [2001:db8:0:1::12]:5060      Route   1      0          0         \n"
        )
    );
    // -f 4 without -6 is the IPv4 service of mark 4: there is none.
    assert_eq!(
        run(&lb, &["-L", "-n", "-f", "4"])?,
        (String::new(), "No such service\n".into(), 1)
    );
    // --thresholds: "  -> %-28s %-10u %-10u %-10u %-10u".
    let thresholds = lb.lbctl_ok(&["-L", "-n", "--thresholds"])?;
    assert!(
        thresholds.contains(
            "\nTCP  [2001:db8::1]:80 wrr\n\
             \x20 -> [2001:db8:0:1::11]:80        0          0          0          0         \n\
             \x20 -> [2001:db8:0:1::12]:80        100        50         0          0         \n"
        ),
        "{thresholds}"
    );
    // --stats: the overflowing IPv6 name pushes its numbers right.
    let stats = lb.lbctl_ok(&["-L", "-n", "--stats"])?;
    assert!(
        stats.contains(
            "\nTCP  [2001:db8:aaaa:bbbb:cccc:dddd:eeee:1]:8080        0        0        0        0        0\n"
        ),
        "{stats}"
    );

    // whereis and drain take IPv6 services, reals and clients too.
    let w = lb.lbctl_ok(&["whereis", "-t", "[2001:db8::2]:0", "[2001:db8:5::7]:4000"])?;
    assert_eq!(w, "real=[2001:db8:0:1::12]:0 by=sh template=none\n");
    // A client of the other family: no such packet can reach the service.
    let o = lb.lbctl(&["whereis", "-t", "[2001:db8::2]:0", "192.0.2.9:4000"])?;
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr),
        "lbctl: client 192.0.2.9 is not of the service's family: no packet of it can reach an IPv6 service\n"
    );
    let w = lb.lbctl_ok(&["whereis", "-f", "3", "-6", "2001:db8:5::7"])?;
    assert!(
        w.lines().all(|l| l.contains(" real=[2001:db8:0:1::1")
            && l.ends_with(" by=wrr next=yes template=none")),
        "{w}"
    );
    let d = lb.lbctl_ok(&[
        "drain",
        "-t",
        "[2001:db8::1]:443",
        "-r",
        "[2001:db8:0:1::12]:443",
        "--timeout",
        "0",
    ])?;
    assert!(d.contains("drained [2001:db8:0:1::12]:443 in "), "{d}");
    assert_eq!(lb.lbctl_ok(&["-S", "-n"])?, saved);

    // -S | -C | -R: the same tables, both families.
    lb.lbctl_ok(&["-C"])?;
    assert_eq!(lb.lbctl_ok(&["-S", "-n"])?, "");
    let o = lb.lbctl_stdin(&["-R"], Some(&saved))?;
    ensure!(
        o.status.success(),
        "{:?}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(lb.lbctl_ok(&["-S", "-n"])?, saved);
    assert_eq!(lb.lbctl_ok(&["-L", "-n"])?, listing);
    Ok(())
}

#[test]
fn ipv6_errors_are_ipvsadms_and_change_nothing() -> Result<()> {
    if !require_root("ipv6_errors_are_ipvsadms_and_change_nothing") {
        return Ok(());
    }
    let lb = lab()?;
    lb.lbctl_ok(&["-A", "-t", "[2001:db8::1]:80", "-s", "wrr"])?;
    lb.lbctl_ok(&[
        "-a",
        "-t",
        "[2001:db8::1]:80",
        "-r",
        "[2001:db8:0:1::11]:80",
        "-w",
        "2",
    ])?;
    // A bare IPv6 real takes the service's port.
    lb.lbctl_ok(&["-a", "-t", "[2001:db8::1]:80", "-r", "2001:db8:0:1::12"])?;
    let before = lb.lbctl_ok(&["-S", "-n"])?;
    assert_eq!(
        before,
        "-A -t [2001:db8::1]:80 -s wrr\n\
         -a -t [2001:db8::1]:80 -r [2001:db8:0:1::11]:80 -g -w 2\n\
         -a -t [2001:db8::1]:80 -r [2001:db8:0:1::12]:80 -g -w 1\n"
    );
    // Without -n: the port by its name (netbase's /etc/services), the address in brackets.
    let named = lb.lbctl_ok(&["-S"])?;
    assert!(
        named.starts_with("-A -t [2001:db8::1]:http -s wrr\n"),
        "{named}"
    );
    let invalid = "Invalid operation.  Possibly wrong module version, address not unicast, ...\n";
    let gateway = "lbctl: real server 2001:db8:99::5 is not on a directly connected network: the \
                   kernel routes it via gateway 2001:db8:0:1::fe (dev eth0); direct routing (-g) \
                   rewrites only the destination MAC, so the real server must be on the same \
                   link as the director: give the director an address on the real server's \
                   network, or use a real server on one of its networks\n";
    let cases: &[(&[&str], &str, i32)] = &[
        (
            &["-A", "-t", "[2001:db8::5]"],
            "illegal virtual server address[:port] specified\n",
            2,
        ),
        (
            &["-a", "-t", "[2001:db8::1]:80", "-r", "[2001:db8:0:1::13]"],
            "illegal real server address[:port] specified\n",
            2,
        ),
        (
            &["-A", "-t", "[2001:db8::5]:80", "-6"],
            "-6 used before -f\n\n",
            2,
        ),
        (&["-A", "-6", "-f", "5"], "-6 used before -f\n\n", 2),
        (
            &["-A", "-t", "[2001:db8::5]:80", "-p", "-M", "129"],
            "illegal ipv6 netmask specified\n",
            2,
        ),
        (
            &["-A", "-f", "5", "-6", "-p", "-M", "0"],
            "illegal ipv6 netmask specified\n",
            2,
        ),
        (
            &["-a", "-t", "[2001:db8::1]:80", "-r", "198.51.100.11"],
            "Different address family is allowed only for tunneling servers\n",
            2,
        ),
        (
            &["-a", "-f", "5", "-r", "[2001:db8:0:1::11]:0"],
            "Different address family is allowed only for tunneling servers\n",
            2,
        ),
        (
            &["-A", "-t", "[::ffff:203.0.113.10]:80"],
            "lbctl: ::ffff:203.0.113.10 is an IPv4-mapped IPv6 address: give the IPv4 \
             address 203.0.113.10 instead\n",
            2,
        ),
        (
            &["-a", "-t", "[2001:db8::1]:80", "-r", "[fe80::1]:80"],
            invalid,
            255,
        ),
        (
            &["-a", "-t", "[2001:db8::1]:80", "-r", "[ff02::1]:80"],
            invalid,
            255,
        ),
        (
            &["-a", "-t", "[2001:db8::1]:80", "-r", "[::]:80"],
            invalid,
            255,
        ),
        (
            &["-a", "-t", "[2001:db8::1]:80", "-r", "[2001:db8:99::5]:80"],
            gateway,
            1,
        ),
        (
            &["-a", "-t", "[2001:db8::1]:80", "-r", "[2001:db8:0:1::1]:80"],
            "lbctl: real server 2001:db8:0:1::1 is the director itself: lbctl cannot \
             deliver to a server on the director\n",
            1,
        ),
        (
            &["-a", "-t", "[2001:db8::1]:80", "-r", "[::1]:80"],
            "lbctl: real server ::1 is the director itself: lbctl cannot deliver \
             to a server on the director\n",
            2,
        ),
        (
            &["-A", "-t", "[2001:db8::1]:80", "-s", "wrr"],
            "Service already exists\n",
            255,
        ),
        (
            &[
                "-a",
                "-t",
                "[2001:db8::2]:80",
                "-r",
                "[2001:db8:0:1::11]:80",
            ],
            "Service not defined\n",
            255,
        ),
        (
            &["-d", "-t", "[2001:db8::1]:80", "-r", "198.51.100.11"],
            "No such destination\n",
            255,
        ),
        (
            &[
                "fwmark",
                "add",
                "-p",
                "tcp",
                "-d",
                "::/0",
                "--set-mark",
                "1",
            ],
            "illegal fwmark rule destination (an IPv6 prefix sharing addresses with \
             ::ffff:0.0.0.0/96; give IPv4 rules as IPv4 prefixes) specified\n",
            2,
        ),
    ];
    for (args, stderr, status) in cases {
        let (out, err, code) = run(&lb, args)?;
        assert_eq!(
            (out.as_str(), err.as_str(), code),
            ("", *stderr, *status),
            "{args:?}"
        );
    }
    assert_eq!(lb.lbctl_ok(&["-S", "-n"])?, before);
    assert_eq!(lb.lbctl_ok(&["fwmark"])?, "");
    Ok(())
}

/// The next hop of an IPv6 real server comes from the director's neighbour table, and
/// follows it when `-e` asks again.
#[test]
fn ipv6_real_next_hop_comes_from_the_neighbour_table() -> Result<()> {
    if !require_root("ipv6_real_next_hop_comes_from_the_neighbour_table") {
        return Ok(());
    }
    let lb = lab()?;
    lb.lbctl_ok(&["-A", "-t", "[2001:db8::1]:80", "-s", "rr"])?;
    lb.lbctl_ok(&[
        "-a",
        "-t",
        "[2001:db8::1]:80",
        "-r",
        "[2001:db8:0:1::11]:80",
    ])?;
    let ifindex = lb.topo.lb.ns.run_in(|| lb_user::neigh::ifindex("eth0"))?;
    let smac = lb.topo.lb.ns.mac("eth0")?;
    let d = dests_of(&lb, RS_V6[0])?;
    assert_eq!(d.len(), 1);
    assert!(d[0].flags & DEST_F_RESOLVED != 0, "{:?}", d[0]);
    assert_eq!(d[0].mac, lb.topo.backends[0].mac);
    assert_eq!((Some(d[0].ifindex), d[0].smac), (ifindex, smac));

    // The entry changes; -e asks the kernel again.
    let new_mac = [0x02, 0, 0, 0, 0x0b, 0x11];
    lb.topo.lb.ns.ip(&[
        "-6",
        "neigh",
        "replace",
        RS_V6[0],
        "lladdr",
        &format_mac(&new_mac),
        "dev",
        "eth0",
        "nud",
        "permanent",
    ])?;
    lb.lbctl_ok(&[
        "-e",
        "-t",
        "[2001:db8::1]:80",
        "-r",
        "[2001:db8:0:1::11]:80",
        "-w",
        "3",
    ])?;
    assert_eq!(dests_of(&lb, RS_V6[0])?[0].mac, new_mac);

    // No neighbour entry yet: installed unresolved at once (the kernel was asked to
    // resolve it; the program asks bpf_fib_lookup on its next new flow).
    lb.lbctl_ok(&[
        "-a",
        "-t",
        "[2001:db8::1]:80",
        "-r",
        "[2001:db8:0:1::33]:80",
    ])?;
    let d = dests_of(&lb, "2001:db8:0:1::33")?;
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].flags & DEST_F_RESOLVED, 0, "{:?}", d[0]);
    Ok(())
}
