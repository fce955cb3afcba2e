//! Self-check of the test infrastructure (needs root): builds the direct-routing topology,
//! starts `lb-testsrv` in every real server and reaches each real server's own address from
//! the client (no load balancer involved: the VIP only works once an XDP program is attached
//! to the LB). Then checks that dropping the topology deletes every namespace.

use std::collections::HashMap;
use std::net::SocketAddrV4;
use std::path::Path;
use std::process::Command;

use lb_tests::client::{self, DEFAULT_TIMEOUT, HoldConn, Outcome};
use lb_tests::netns::format_mac;
use lb_tests::require_root;
use lb_tests::topo::{self, DrTopology, TopoConfig};

const TESTSRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");

fn netns_list() -> String {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn topo_smoke() {
    if !require_root("topo_smoke") {
        return;
    }
    let mut t = DrTopology::new(2).unwrap();
    let names = t.netns_names();
    assert_eq!(names.len(), 5);
    let listed = netns_list();
    for n in &names {
        assert!(listed.contains(n.as_str()), "{n} missing from:\n{listed}");
    }

    // Layout.
    assert_eq!(t.lb_ifname(), "eth0");
    assert_eq!(t.lb_peer(), "p-lb");
    assert_eq!(t.vip, topo::DEFAULT_VIP);
    assert_eq!(t.backends[0].addr.to_string(), "198.51.100.11");
    assert_eq!(t.backends[1].addr.to_string(), "198.51.100.12");
    assert_eq!(format_mac(&t.backends[0].mac), "02:00:c6:33:64:0b");
    let peer = t
        .switch
        .ip(&["-o", "link", "show", "dev", t.lb_peer()])
        .unwrap();
    assert!(String::from_utf8_lossy(&peer.stdout).contains("master br0"));

    // Real servers hold the VIP on lo and ignore ARP for it; the LB does not hold it.
    for b in &t.backends {
        let addrs = b.ns.ip(&["-o", "addr", "show", "dev", "lo"]).unwrap();
        assert!(String::from_utf8_lossy(&addrs.stdout).contains("203.0.113.10/32"));
        assert_eq!(
            b.ns.read_sysctl("net.ipv4.conf.all.arp_ignore").unwrap(),
            "1"
        );
        assert_eq!(
            b.ns.read_sysctl("net.ipv4.conf.eth0.arp_announce").unwrap(),
            "2"
        );
    }
    let lb_addrs = t.lb.ns.ip(&["-o", "addr"]).unwrap();
    assert!(!String::from_utf8_lossy(&lb_addrs.stdout).contains("203.0.113.10"));

    // The client routes the VIP via the LB and has TX checksum offload off.
    let route = t.client.ns.ip(&["route", "get", "203.0.113.10"]).unwrap();
    assert!(String::from_utf8_lossy(&route.stdout).contains("via 198.51.100.2"));
    let offload = t.client.ns.exec(&["ethtool", "-k", "eth0"]).unwrap();
    assert!(String::from_utf8_lossy(&offload.stdout).contains("tx-checksumming: off"));

    // The LB knows every real server's MAC.
    let neigh = t.lb.ns.ip(&["neigh", "show", "dev", "eth0"]).unwrap();
    let neigh = String::from_utf8_lossy(&neigh.stdout);
    for b in &t.backends {
        let line = format!("{} lladdr {} PERMANENT", b.addr, format_mac(&b.mac));
        assert!(neigh.contains(&line), "{line} missing from:\n{neigh}");
    }

    // Servers answer on each real server's own address, over TCP (HTTP and hold) and UDP.
    t.start_servers(Path::new(TESTSRV), 80, false).unwrap();
    t.start_servers(Path::new(TESTSRV), 53, true).unwrap();
    for (i, b) in t.backends.iter().enumerate() {
        let name = format!("rs{}", i + 1);
        let got = client::http_get(&t.client.ns, b.sock(80), DEFAULT_TIMEOUT).unwrap();
        assert_eq!(got, name);
        let udp = client::udp_ask(&t.client.ns, b.sock(53), b"?", DEFAULT_TIMEOUT).unwrap();
        assert_eq!(udp, Outcome::Answered(name.clone()));
        let mut hold = HoldConn::open(&t.client.ns, b.sock(80), DEFAULT_TIMEOUT).unwrap();
        assert_eq!(hold.backend(), name);
        assert_eq!(hold.ask(DEFAULT_TIMEOUT), Outcome::Answered(name.clone()));
        assert_eq!(hold.ask(DEFAULT_TIMEOUT), Outcome::Answered(name));
        hold.close().unwrap();
    }
    let counts =
        client::http_get_many(&t.client.ns, t.backends[1].sock(80), 5, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(counts, HashMap::from([("rs2".to_owned(), 5)]));

    // Nothing listens on the LB; closed ports are refused.
    let lb = SocketAddrV4::new(topo::LB_ADDR, 80);
    assert_eq!(
        client::http_try(&t.client.ns, lb, DEFAULT_TIMEOUT).unwrap(),
        Outcome::Refused
    );
    let udp = client::udp_ask(
        &t.client.ns,
        SocketAddrV4::new(topo::LB_ADDR, 53),
        b"?",
        DEFAULT_TIMEOUT,
    )
    .unwrap();
    assert_eq!(udp, Outcome::Refused);

    // A server killed under an open hold connection: the kernel resets the connection.
    let mut hold = HoldConn::open(&t.client.ns, t.backends[0].sock(80), DEFAULT_TIMEOUT).unwrap();
    t.backends[0].stop_servers().unwrap();
    let after = hold.ask(DEFAULT_TIMEOUT);
    assert!(matches!(after, Outcome::Closed | Outcome::Reset), "{after}");
    assert_eq!(
        client::http_try(&t.client.ns, t.backends[0].sock(80), DEFAULT_TIMEOUT).unwrap(),
        Outcome::Refused
    );

    drop(t);
    let listed = netns_list();
    for n in &names {
        assert!(
            !listed.contains(n.as_str()),
            "{n} survived the topology:\n{listed}"
        );
    }
}

/// Topologies built in parallel do not collide, and the neighbour option is honoured.
#[test]
fn topos_in_parallel() {
    if !require_root("topos_in_parallel") {
        return;
    }
    let handles: Vec<_> = (0..3)
        .map(|i| {
            std::thread::spawn(move || {
                let cfg = TopoConfig::new(1 + i % 2)
                    .vip(std::net::Ipv4Addr::new(203, 0, 113, 20 + i as u8))
                    .without_lb_neighbours();
                let mut t = DrTopology::build(&cfg).unwrap();
                let neigh = t.lb.ns.ip(&["neigh", "show", "dev", "eth0"]).unwrap();
                assert!(
                    neigh.stdout.is_empty(),
                    "{}",
                    String::from_utf8_lossy(&neigh.stdout)
                );
                t.add_lb_neighbours().unwrap();
                t.start_servers(Path::new(TESTSRV), 8080, false).unwrap();
                let b = &t.backends[0];
                assert_eq!(
                    client::http_get(&t.client.ns, b.sock(8080), DEFAULT_TIMEOUT).unwrap(),
                    "rs1"
                );
                let lo = b.ns.ip(&["-o", "addr", "show", "dev", "lo"]).unwrap();
                assert!(String::from_utf8_lossy(&lo.stdout).contains(&format!("{}/32", cfg.vip)));
                t.flush_lb_neighbours().unwrap();
                t.netns_names()
            })
        })
        .collect();
    let names: Vec<String> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let unique: std::collections::HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
    let listed = netns_list();
    for n in &names {
        assert!(!listed.contains(n.as_str()), "{n} survived:\n{listed}");
    }
}

/// The direct-routing return path works end to end: with the LB's kernel standing in for
/// the XDP program (forwarding VIP traffic to `rs1` by routing, i.e. rewriting only the MAC
/// header), the client reaches the VIP and `rs1` answers it directly from the VIP, over TCP
/// and UDP (the UDP reply leaves from the VIP thanks to `IP_PKTINFO`).
#[test]
fn dr_return_path_with_kernel_forwarding() {
    if !require_root("dr_return_path_with_kernel_forwarding") {
        return;
    }
    let mut t = DrTopology::new(2).unwrap();
    t.start_servers(Path::new(TESTSRV), 80, false).unwrap();
    t.start_servers(Path::new(TESTSRV), 53, true).unwrap();
    // Nothing answers the VIP while the LB does not forward.
    assert_eq!(
        client::http_try(
            &t.client.ns,
            t.vip_sock(80),
            std::time::Duration::from_millis(300)
        )
        .unwrap(),
        Outcome::TimedOut
    );
    for (key, value) in [
        ("net.ipv4.ip_forward", "1"),
        ("net.ipv4.conf.all.send_redirects", "0"),
        ("net.ipv4.conf.eth0.send_redirects", "0"),
    ] {
        t.lb.ns.sysctl(key, value).unwrap();
    }
    let vip = format!("{}/32", t.vip);
    t.lb.ns
        .ip(&["route", "add", &vip, "via", "198.51.100.11"])
        .unwrap();
    let counts = client::http_get_many(&t.client.ns, t.vip_sock(80), 3, DEFAULT_TIMEOUT).unwrap();
    assert_eq!(counts, HashMap::from([("rs1".to_owned(), 3)]));
    let udp = client::udp_ask(&t.client.ns, t.vip_sock(53), b"?", DEFAULT_TIMEOUT).unwrap();
    assert_eq!(udp, Outcome::Answered("rs1".into()));
    let mut hold = HoldConn::open(&t.client.ns, t.vip_sock(80), DEFAULT_TIMEOUT).unwrap();
    assert_eq!(hold.backend(), "rs1");
    // Re-route the VIP: the established connection now lands on rs2, which has no socket
    // for it and resets it.
    t.lb.ns
        .ip(&["route", "replace", &vip, "via", "198.51.100.12"])
        .unwrap();
    assert_eq!(hold.ask(DEFAULT_TIMEOUT), Outcome::Reset);
    assert_eq!(
        client::http_get(&t.client.ns, t.vip_sock(80), DEFAULT_TIMEOUT).unwrap(),
        "rs2"
    );
    // Nobody was asked for the VIP's MAC: the client routes it via the LB.
    let neigh = t.client.ns.ip(&["neigh", "show"]).unwrap();
    assert!(!String::from_utf8_lossy(&neigh.stdout).contains("203.0.113.10"));
}
