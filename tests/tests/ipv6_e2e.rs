//! End to end over IPv6: real TCP and UDP from the client's namespace through the XDP load
//! balancer by direct routing, on the dual-stack topology (`TopoConfig::dual_stack`: the real
//! servers hold the IPv6 VIP on `lo`, the client reaches it via the director's MAC), driven
//! with lbctl's ipvsadm syntax for IPv6 (`-t [2001:db8:0:ff::10]:80`, `-r [2001:db8::11]:80`).
//!
//! Scenarios (docs/SEMANTICS.md): weighted balancing next to an IPv4 service on the same port
//! (the dual-stack pair), UDP balancing and ICMPv6 port unreachable seen as "connection
//! refused", persistence with `-M 64` and quiescing under both `expire_quiescent_template`
//! values, removal under both `expire_nodest_conn` values (a reset with 1), `conn_reuse_mode`,
//! a Packet Too Big reaching the flow's real server, an IPv6 fwmark service next to the IPv4
//! one of the same mark, flows carrying extension headers, and the real-server side: no
//! neighbour advertisement for a VIP on `lo`. Whether a new connection went through a
//! template or the scheduler is read from the program's counters, as in
//! `persistence_e2e.rs` (the schedulers run per CPU).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use lb_common::{
    REASON_DROP_NO_NEIGH, REASON_FWD_ICMP, REASON_FWD_NEW, REASON_FWD_TEMPLATE,
    REASON_PASS_EXT_HEADERS, REASON_TX_ICMP_UNREACH, REASON_TX_RST_NODEST,
};
use lb_tests::client::{self, HoldConn, Outcome};
use lb_tests::lb::{ConnRow, LbTopology, real_line, sole_real};
use lb_tests::require_root;
use lb_tests::topo::{CLIENT_ADDR6, DrTopology, TopoConfig};

const SRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");
const T: Duration = client::DEFAULT_TIMEOUT;

/// A second client address in the client's own /64.
const SAME_NET: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x20);
/// A client address in another /64.
const OTHER_NET: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0x10);
/// A client address in a third /64.
const THIRD_NET: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 0x10);

/// A dual-stack topology with `n` real servers and the load balancer attached.
fn dual_stack(n: usize) -> Result<LbTopology> {
    LbTopology::with_config(&TopoConfig::new(n).dual_stack())
}

/// `[VIP6]:port`, as lbctl takes it.
fn vip6(lb: &LbTopology, port: u16) -> String {
    lb.topo.vip6_sock(port).to_string()
}

/// `[addr6]:port` of real server `i`.
fn real6(lb: &LbTopology, i: usize, port: u16) -> String {
    lb.topo.backends[i].sock6(port).to_string()
}

/// `[addr6]:port` of the real server called `name`.
fn real6_named(lb: &LbTopology, name: &str, port: u16) -> Result<SocketAddrV6> {
    Ok(lb
        .topo
        .backend_named(name)
        .with_context(|| format!("no real server {name:?}"))?
        .sock6(port))
}

/// `-A -t|-u [VIP6]:port -s sched [extra...]`, then every real at weight `weights[i]`.
fn service6(
    lb: &LbTopology,
    proto: &str,
    port: u16,
    sched: &str,
    extra: &[&str],
    weights: &[u32],
) -> Result<String> {
    let vip = vip6(lb, port);
    let mut args = vec!["-A", proto, &vip, "-s", sched];
    args.extend_from_slice(extra);
    lb.lbctl_ok(&args)?;
    for (i, w) in weights.iter().enumerate() {
        let rs = real6(lb, i, port);
        lb.lbctl_ok(&["-a", proto, &vip, "-r", &rs, "-w", &w.to_string()])?;
    }
    Ok(vip)
}

fn reason(lb: &LbTopology, r: u32) -> Result<u64> {
    Ok(lb.reasons()?[r as usize])
}

/// New flows the scheduler placed so far, and those placed by a template.
fn placed(lb: &LbTopology) -> Result<(u64, u64)> {
    let r = lb.reasons()?;
    Ok((r[REASON_FWD_NEW as usize], r[REASON_FWD_TEMPLATE as usize]))
}

/// `n` GETs to the IPv6 VIP's port 80 from the client (the source address its kernel
/// picks); counts per real.
fn gets6(lb: &LbTopology, n: usize) -> Result<HashMap<String, usize>> {
    client::http_get_many(&lb.topo.client.ns, lb.topo.vip6_sock(80), n, T)
}

/// `n` GETs to the IPv6 VIP's port 80 from the client address `from` (the kernel would
/// pick the extra address closest to the VIP); counts per real.
fn gets6_from(lb: &LbTopology, from: Ipv6Addr, n: usize) -> Result<HashMap<String, usize>> {
    let mut counts = HashMap::new();
    for _ in 0..n {
        *counts.entry(get6_from(lb, from)?).or_insert(0) += 1;
    }
    Ok(counts)
}

/// One GET to the IPv6 VIP's port 80 from the client address `from`.
fn get6_from(lb: &LbTopology, from: Ipv6Addr) -> Result<String> {
    let local = SocketAddrV6::new(from, 0, 0, 0);
    match client::http_try_from(&lb.topo.client.ns, local, lb.topo.vip6_sock(80), T)? {
        Outcome::Answered(name) => Ok(name),
        other => bail!("GET from {from}: {other}"),
    }
}

fn share(counts: &HashMap<String, usize>, name: &str) -> i64 {
    counts.get(name).copied().unwrap_or(0) as i64
}

/// The template rows (client port 0) of `-L -c -n`, both families.
fn templates(lb: &LbTopology) -> Result<Vec<ConnRow<SocketAddr>>> {
    Ok(lb
        .conn_rows_any()?
        .into_iter()
        .filter(ConnRow::is_template)
        .collect())
}

/// `[net]:0`, the client column of a template of `net`.
fn net0(net: &str) -> SocketAddr {
    SocketAddr::new(net.parse().expect("an address"), 0)
}

/// The dual-stack pair: an IPv6 service and an IPv4 service on the same port, both balanced
/// at once by their own weights (wrr 1:2:3 over IPv6, 3:2:1 over IPv4), each keeping its
/// own connection entries and counts.
#[test]
fn ipv6_wrr_shares_next_to_an_ipv4_service_on_the_same_port() -> Result<()> {
    if !require_root("ipv6_wrr_shares_next_to_an_ipv4_service_on_the_same_port") {
        return Ok(());
    }
    let mut lb = dual_stack(3)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let v6 = service6(&lb, "-t", 80, "wrr", &[], &[1, 2, 3])?;
    let v4 = format!("{}:80", lb.topo.vip);
    lb.lbctl_ok(&["-A", "-t", &v4, "-s", "wrr"])?;
    for (b, w) in lb.topo.backends.iter().zip(["3", "2", "1"]) {
        lb.lbctl_ok(&["-a", "-t", &v4, "-r", &b.addr.to_string(), "-w", w])?;
    }
    let listing = lb.lbctl_ok(&["-L", "-n"])?;
    assert!(listing.contains(&format!("\nTCP  {v6} wrr\n")), "{listing}");

    // Both families at once, from two threads.
    const N: usize = 120;
    let (counts6, counts4) = std::thread::scope(|s| {
        let v4 = s.spawn(|| client::http_get_many(&lb.topo.client.ns, lb.topo.vip_sock(80), N, T));
        let counts6 = gets6(&lb, N);
        (counts6, v4.join().expect("the IPv4 client's thread"))
    });
    let (counts6, counts4) = (counts6?, counts4?);
    // Each CPU runs wrr on its own: exact per CPU, so within a few picks overall.
    for (counts, want) in [(&counts6, [20, 40, 60]), (&counts4, [60, 40, 20])] {
        for (name, w) in ["rs1", "rs2", "rs3"].iter().zip(want) {
            assert!(
                (share(counts, name) - w).abs() <= 4,
                "{name} wants about {w}: IPv6 {counts6:?}, IPv4 {counts4:?}"
            );
        }
    }

    // --stats: each service counts its own connections, per real.
    let stats = lb.lbctl_ok(&["-L", "-n", "--stats"])?;
    for (i, name) in ["rs1", "rs2", "rs3"].iter().enumerate() {
        let r6 = real_line(&stats, &real6(&lb, i, 80)).context(stats.clone())?;
        assert_eq!(r6[2], share(&counts6, name).to_string(), "{stats}");
        let r4 = real_line(&stats, &format!("{}:80", lb.topo.backends[i].addr))
            .context(stats.clone())?;
        assert_eq!(r4[2], share(&counts4, name).to_string(), "{stats}");
    }
    // Every entry of -L -c -n is of one family from end to end.
    let rows = lb.conn_rows_any()?;
    assert_eq!(rows.len(), 2 * N, "{rows:?}");
    let v6_rows = rows.iter().filter(|r| r.source.is_ipv6()).count();
    assert_eq!(v6_rows, N, "{rows:?}");
    assert!(
        rows.iter()
            .all(|r| r.source.is_ipv6() == r.virt.is_ipv6() && r.virt.is_ipv6() == r.dest.is_ipv6()),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .filter(|r| r.source.is_ipv6())
            .all(
                |r| r.source.ip() == IpAddr::V6(lb.topo.client.addr6.unwrap())
                    && r.virt == SocketAddr::V6(lb.topo.vip6_sock(80))
            ),
        "{rows:?}"
    );
    Ok(())
}

/// UDP over IPv6 is balanced (rr: one datagram of a new flow each), and a service without an
/// available real server answers TCP and UDP with an ICMPv6 port unreachable that the
/// client's stack accepts: `connect` and `recv` fail with `ECONNREFUSED`.
#[test]
fn ipv6_udp_is_balanced_and_no_real_means_connection_refused() -> Result<()> {
    if !require_root("ipv6_udp_is_balanced_and_no_real_means_connection_refused") {
        return Ok(());
    }
    let mut lb = dual_stack(3)?;
    lb.topo.start_servers(Path::new(SRV), 53, true)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let ns = &lb.topo.client.ns;
    service6(&lb, "-u", 53, "rr", &[], &[1, 1, 1])?;
    let counts = client::udp_ask_many(ns, lb.topo.vip6_sock(53), 30, T)?;
    for name in ["rs1", "rs2", "rs3"] {
        assert!((share(&counts, name) - 10).abs() <= 2, "{counts:?}");
    }
    let rows = lb.conn_rows_any()?;
    assert_eq!(rows.len(), 30, "{rows:?}");
    assert!(
        rows.iter().all(|r| r.proto == "UDP" && r.source.is_ipv6()),
        "{rows:?}"
    );
    // The IPv4 service of the same port next to it (the real servers' one `[::]:53` socket
    // answers both families).
    let v4 = format!("{}:53", lb.topo.vip);
    lb.lbctl_ok(&["-A", "-u", &v4, "-s", "rr"])?;
    for b in &lb.topo.backends {
        lb.lbctl_ok(&["-a", "-u", &v4, "-r", &b.addr.to_string()])?;
    }
    let counts4 = client::udp_ask_many(ns, lb.topo.vip_sock(53), 6, T)?;
    for name in ["rs1", "rs2", "rs3"] {
        assert!((share(&counts4, name) - 2).abs() <= 1, "{counts4:?}");
    }

    // Port 80: a TCP and a UDP service without any real server, then with quiescent ones.
    let tcp = service6(&lb, "-t", 80, "wrr", &[], &[])?;
    let udp = service6(&lb, "-u", 80, "wrr", &[], &[])?;
    let before = lb.conn_rows_any()?.len();
    let refused = |what: &str| -> Result<()> {
        let sent = reason(&lb, REASON_TX_ICMP_UNREACH)?;
        assert_eq!(
            client::http_try(ns, lb.topo.vip6_sock(80), T)?,
            Outcome::Refused,
            "TCP, {what}"
        );
        // Usually two: the first answer comes back while connect(2) still holds the socket's
        // lock, so the client's stack keeps it as a soft error (TcpExtLockDroppedIcmps) and
        // fails the connection on the answer to its retransmitted SYN.
        let tcp = reason(&lb, REASON_TX_ICMP_UNREACH)?;
        assert!(tcp > sent, "TCP, {what}: no ICMPv6 sent");
        assert_eq!(
            client::udp_ask(ns, lb.topo.vip6_sock(80), b"ask\n", T)?,
            Outcome::Refused,
            "UDP, {what}"
        );
        assert_eq!(reason(&lb, REASON_TX_ICMP_UNREACH)?, tcp + 1, "UDP, {what}");
        let rows = lb.conn_rows_any()?;
        assert_eq!(
            rows.len(),
            before,
            "no entry for a refused flow ({what}): {rows:?}"
        );
        Ok(())
    };
    refused("no real server")?;
    for i in 0..3 {
        let rs = real6(&lb, i, 80);
        lb.lbctl_ok(&["-a", "-t", &tcp, "-r", &rs, "-w", "0"])?;
        lb.lbctl_ok(&["-a", "-u", &udp, "-r", &rs, "-w", "0"])?;
    }
    refused("every real quiescent")?;
    // A weight back: answered again (the refusals were the load balancer's, not the reals').
    let rs = real6(&lb, 0, 80);
    lb.lbctl_ok(&["-e", "-t", &tcp, "-r", &rs, "-w", "1"])?;
    assert_eq!(
        client::http_get(ns, lb.topo.vip6_sock(80), T)?,
        "rs1",
        "TCP after a weight came back"
    );
    Ok(())
}

/// A persistent service with `-M 64` (ipvsadm's prefix length for IPv6): clients of one /64
/// share a template, listed as `[2001:db8::]:0`; a client of another /64 is scheduled on its
/// own and gets its own template. Then quiescing under the default
/// `expire_quiescent_template=0`: the templates hold, the clients stay on the quiescent real,
/// a new /64 is scheduled among the others.
#[test]
fn ipv6_persistence_groups_a_64_and_holds_through_quiescing() -> Result<()> {
    if !require_root("ipv6_persistence_groups_a_64_and_holds_through_quiescing") {
        return Ok(());
    }
    let mut lb = dual_stack(2)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let vip = service6(&lb, "-t", 80, "rr", &["-p", "30", "-M", "64"], &[1, 1])?;
    for a in [SAME_NET, OTHER_NET, THIRD_NET] {
        lb.topo.add_client_address(IpAddr::V6(a))?;
    }
    let listing = lb.lbctl_ok(&["-L", "-n"])?;
    assert!(
        listing.contains(&format!("\nTCP  {vip} rr persistent 30 mask 64\n")),
        "{listing}"
    );
    let saved = lb.lbctl_ok(&["-S", "-n"])?;
    assert!(
        saved.contains(&format!("-A -t {vip} -s rr -p 30 -M 64\n")),
        "{saved}"
    );

    let x = sole_real(&gets6_from(&lb, CLIENT_ADDR6, 3)?)?;
    // Another client of the same /64 goes through the same template.
    for _ in 0..3 {
        assert_eq!(get6_from(&lb, SAME_NET)?, x, "a client of the same /64");
    }
    assert_eq!(placed(&lb)?, (1, 5));
    // A client of another /64 is scheduled (whichever real) and gets its own template.
    let y = get6_from(&lb, OTHER_NET)?;
    assert_eq!(placed(&lb)?, (2, 5), "a client of another /64 is scheduled");
    assert_eq!(get6_from(&lb, OTHER_NET)?, y);
    assert_eq!(placed(&lb)?, (2, 6));

    let mut tmpl: Vec<(SocketAddr, SocketAddr, SocketAddr)> = templates(&lb)?
        .iter()
        .map(|r| (r.source, r.virt, r.dest))
        .collect();
    tmpl.sort();
    let virt: SocketAddr = vip.parse()?;
    assert_eq!(
        tmpl,
        [
            (net0("2001:db8::"), virt, real6_named(&lb, &x, 80)?.into()),
            (
                net0("2001:db8:0:1::"),
                virt,
                real6_named(&lb, &y, 80)?.into()
            ),
        ],
        "{tmpl:?}"
    );
    // The row as ipvsadm prints it.
    let conns = lb.lbctl_ok(&["-L", "-c", "-n"])?;
    assert!(
        conns.lines().any(|l| l.starts_with("TCP ")
            && l.split_whitespace().nth(3) == Some("[2001:db8::]:0")
            && l.split_whitespace().nth(4) == Some(vip.as_str())),
        "{conns}"
    );

    // Quiesce x (expire_quiescent_template=0, the default): both /64s keep their real.
    let x_addr = real6_named(&lb, &x, 80)?.to_string();
    lb.lbctl_ok(&["-e", "-t", &vip, "-r", &x_addr, "-w", "0"])?;
    let counts = gets6_from(&lb, CLIENT_ADDR6, 4)?;
    assert_eq!(sole_real(&counts)?, x, "the template ignored: {counts:?}");
    assert_eq!(get6_from(&lb, SAME_NET)?, x);
    assert_eq!(get6_from(&lb, OTHER_NET)?, y);
    assert_eq!(placed(&lb)?, (2, 12));
    // A new /64 is scheduled among the others only.
    let z = get6_from(&lb, THIRD_NET)?;
    assert_ne!(z, x, "a new client went to the quiescent real server");
    assert_eq!(placed(&lb)?, (3, 12));
    Ok(())
}

/// `expire_quiescent_template=1` (`lbctl sysctl`): the template of a client whose real was
/// quiesced is expired when next used, the client of that /64 is scheduled afresh to the
/// other real and sticks there.
#[test]
fn ipv6_expire_quiescent_template_moves_the_64_to_another_real() -> Result<()> {
    if !require_root("ipv6_expire_quiescent_template_moves_the_64_to_another_real") {
        return Ok(());
    }
    let mut lb = dual_stack(2)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let vip = service6(&lb, "-t", 80, "rr", &["-p", "30", "-M", "64"], &[1, 1])?;
    lb.topo.add_client_address(IpAddr::V6(SAME_NET))?;
    lb.lbctl_ok(&["sysctl", "net.ipv4.vs.expire_quiescent_template=1"])?;
    let x = sole_real(&gets6_from(&lb, CLIENT_ADDR6, 3)?)?;
    assert_eq!(placed(&lb)?, (1, 2));
    let x_addr = real6_named(&lb, &x, 80)?.to_string();
    lb.lbctl_ok(&["-e", "-t", &vip, "-r", &x_addr, "-w", "0"])?;

    // The other client of the /64 finds the template invalid: scheduled afresh, to y.
    let y = get6_from(&lb, SAME_NET)?;
    assert_ne!(y, x, "the template to the quiescent real was kept");
    assert_eq!(placed(&lb)?, (2, 2));
    // The new template holds the whole /64.
    let counts = gets6_from(&lb, CLIENT_ADDR6, 3)?;
    assert_eq!(sole_real(&counts)?, y, "{counts:?}");
    assert_eq!(placed(&lb)?, (2, 5));
    let valid: Vec<ConnRow<SocketAddr>> = templates(&lb)?
        .into_iter()
        .filter(|r| r.virt == vip.parse::<SocketAddr>().unwrap())
        .collect();
    assert_eq!(valid.len(), 1, "{valid:?}");
    assert_eq!(
        (valid[0].source, valid[0].dest),
        (net0("2001:db8::"), real6_named(&lb, &y, 80)?.into()),
        "{valid:?}"
    );
    Ok(())
}

/// Removing a real (`-d`): with `expire_nodest_conn=0` (the default) a held TCP connection to
/// it hangs (its packets are dropped, its entry kept) and resumes when the real is added
/// back; with `expire_nodest_conn=1` its entry is expired and its next segment gets a reset
/// the client's stack accepts (the read fails with `ECONNRESET`). New connections go to the
/// remaining real.
#[test]
fn ipv6_removed_real_resets_its_connections_with_expire_nodest_conn() -> Result<()> {
    if !require_root("ipv6_removed_real_resets_its_connections_with_expire_nodest_conn") {
        return Ok(());
    }
    let mut lb = dual_stack(2)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let vip = service6(&lb, "-t", 80, "rr", &[], &[1, 1])?;
    let ns = &lb.topo.client.ns;
    let entry = |source: SocketAddr| -> Result<Option<ConnRow<SocketAddr>>> {
        Ok(lb.conn_rows_any()?.into_iter().find(|r| r.source == source))
    };

    // expire_nodest_conn=0: dropped silently, then resumed.
    let mut held = HoldConn::open(ns, lb.topo.vip6_sock(80), T)?;
    let x = held.backend().to_owned();
    let x_addr = real6_named(&lb, &x, 80)?.to_string();
    let source = held.local_addr()?;
    lb.lbctl_ok(&["-d", "-t", &vip, "-r", &x_addr])?;
    assert_eq!(held.ask(Duration::from_secs(1)), Outcome::TimedOut);
    let e = entry(source)?.with_context(|| format!("the entry of {source} is gone"))?;
    assert_eq!(
        (e.state.as_str(), e.dest),
        ("ESTABLISHED", x_addr.parse()?),
        "{e:?}"
    );
    assert_eq!(reason(&lb, REASON_TX_RST_NODEST)?, 0);
    lb.lbctl_ok(&["-a", "-t", &vip, "-r", &x_addr, "-w", "1"])?;
    // TCP retransmits with backoff: the answer may take a few seconds.
    assert_eq!(
        held.ask(Duration::from_secs(8)),
        Outcome::Answered(x.clone())
    );
    held.close()?;

    // expire_nodest_conn=1: a reset.
    lb.lbctl_ok(&["sysctl", "net.ipv4.vs.expire_nodest_conn=1"])?;
    let mut held = HoldConn::open(ns, lb.topo.vip6_sock(80), T)?;
    let x = held.backend().to_owned();
    let source = held.local_addr()?;
    assert!(source.is_ipv6(), "{source}");
    assert!(entry(source)?.is_some(), "the held connection's entry");
    assert_eq!(held.ask(T), Outcome::Answered(x.clone()));

    let x_addr = real6_named(&lb, &x, 80)?.to_string();
    lb.lbctl_ok(&["-d", "-t", &vip, "-r", &x_addr])?;
    assert!(entry(source)?.is_none(), "the entry is expired at once");
    assert_eq!(held.ask(T), Outcome::Reset);
    assert_eq!(reason(&lb, REASON_TX_RST_NODEST)?, 1);
    let counts = gets6(&lb, 4)?;
    assert_ne!(sole_real(&counts)?, x, "{counts:?}");
    Ok(())
}

/// The real-server side of IPv6 direct routing: a real server holding the VIP on `lo` does
/// not answer neighbour solicitations for it on `eth0` (IPv6 answers only for addresses of
/// the interface asked on, so no `arp_ignore` equivalent is needed), while it does for its
/// own address: the client, told the VIP is on link, never learns a MAC for it.
#[test]
fn ipv6_real_servers_do_not_answer_neighbour_discovery_for_the_vip_on_lo() -> Result<()> {
    if !require_root("ipv6_real_servers_do_not_answer_neighbour_discovery_for_the_vip_on_lo") {
        return Ok(());
    }
    let topo = DrTopology::build(&TopoConfig::new(2).dual_stack())?;
    let ns = &topo.client.ns;
    let vip6 = topo.vip6.context("dual stack")?;
    let rs1 = topo.backends[0].addr6.context("dual stack")?;
    // The VIP on link (more specific than the /64 via the LB), then a datagram to each: the
    // kernel solicits their MACs.
    ns.ip(&["-6", "route", "add", &format!("{vip6}/128"), "dev", "eth0"])?;
    for a in [vip6, rs1] {
        let _ = client::udp_ask(
            ns,
            SocketAddrV6::new(a, 9, 0, 0),
            b"x\n",
            Duration::from_millis(500),
        )?;
    }
    let neigh = |a: Ipv6Addr| -> Result<String> {
        let o = ns.ip(&["-6", "neigh", "show", &a.to_string(), "dev", "eth0"])?;
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let rs1_mac = lb_tests::netns::format_mac(&topo.backends[0].mac);
    let own = neigh(rs1)?;
    assert!(own.contains(&format!("lladdr {rs1_mac}")), "{own}");
    let vip = neigh(vip6)?;
    assert!(
        !vip.contains("lladdr"),
        "a real server advertised the VIP: {vip}"
    );
    Ok(())
}

/// An ICMPv6 Packet Too Big with MTU 1280, as a router on the way to the client would send it
/// about a packet from `vip` to `client` of 1,400 payload bytes: the quoted IPv6 header and
/// transport header (TCP with `seq`, or UDP). The checksum is left to the raw socket.
fn packet_too_big(vip: SocketAddrV6, client: SocketAddrV6, tcp: Option<u32>) -> Vec<u8> {
    let mut m = vec![2, 0, 0, 0];
    m.extend_from_slice(&1280u32.to_be_bytes());
    m.extend_from_slice(&[0x60, 0, 0, 0]);
    m.extend_from_slice(&1400u16.to_be_bytes());
    m.extend_from_slice(&[if tcp.is_some() { 6 } else { 17 }, 64]);
    m.extend_from_slice(&vip.ip().octets());
    m.extend_from_slice(&client.ip().octets());
    m.extend_from_slice(&vip.port().to_be_bytes());
    m.extend_from_slice(&client.port().to_be_bytes());
    match tcp {
        // seq, ack, data offset 5, ACK, window, checksum, urgent pointer.
        Some(seq) => {
            m.extend_from_slice(&seq.to_be_bytes());
            m.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0]);
        }
        None => m.extend_from_slice(&[0x05, 0x78, 0, 0]),
    }
    m
}

/// Sends `message` from the client's namespace to the IPv6 VIP over a raw ICMPv6 socket (the
/// kernel fills in the checksum), so it reaches the director as a router's error would.
fn send_icmp6(lb: &LbTopology, message: Vec<u8>) -> Result<()> {
    use socket2::{Domain, Protocol, Socket, Type};
    let vip = SocketAddr::V6(lb.topo.vip6_sock(0));
    lb.topo.client.ns.run_in(move || -> std::io::Result<()> {
        let sock = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
        sock.send_to(&message, &vip.into())?;
        Ok(())
    })??;
    Ok(())
}

/// Path MTU discovery through the director: a Packet Too Big about a balanced flow (the
/// quoted packet goes from the VIP to the client) is forwarded to that flow's real server,
/// whose kernel then lowers its path MTU to the client: the TCP connection's `pmtu` (ss), and
/// a route exception for a UDP flow's client (`ip -6 route get CLIENT from VIP`). The other
/// real server learns nothing.
#[test]
fn ipv6_packet_too_big_about_a_flow_reaches_its_real_server() -> Result<()> {
    if !require_root("ipv6_packet_too_big_about_a_flow_reaches_its_real_server") {
        return Ok(());
    }
    let mut lb = dual_stack(2)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    lb.topo.start_servers(Path::new(SRV), 53, true)?;
    service6(&lb, "-t", 80, "rr", &[], &[1, 1])?;
    service6(&lb, "-u", 53, "rr", &[], &[1, 1])?;
    lb.topo.add_client_address(IpAddr::V6(SAME_NET))?;
    let vip = lb.topo.vip6;

    // TCP: a held connection, idle (everything acknowledged).
    let mut held = HoldConn::open(&lb.topo.client.ns, lb.topo.vip6_sock(80), T)?;
    let x = held.backend().to_owned();
    let SocketAddr::V6(local) = held.local_addr()? else {
        bail!("not IPv6")
    };
    let seq = held.server_next_seq()?;
    let pmtu = |name: &str| -> Result<String> {
        let rs = lb.topo.backend_named(name).context("no such real")?;
        let o = rs
            .ns
            .exec(&["ss", "-Htin", "state", "established", "sport", "= :80"])?;
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    assert!(pmtu(&x)?.contains("pmtu:1500"), "{}", pmtu(&x)?);
    send_icmp6(&lb, packet_too_big(lb.topo.vip6_sock(80), local, Some(seq)))?;
    lb_tests::lb::wait_for("the real server's pmtu", Duration::from_secs(2), || {
        Ok(pmtu(&x)?.contains("pmtu:1280").then_some(()))
    })
    .with_context(|| {
        format!(
            "{}\n{}",
            pmtu(&x).unwrap_or_default(),
            lb.lbctl_ok(&["counters"]).unwrap_or_default()
        )
    })?;
    assert_eq!(reason(&lb, REASON_FWD_ICMP)?, 1);
    assert_eq!(
        held.ask(T),
        Outcome::Answered(x.clone()),
        "the connection goes on"
    );

    // UDP: a flow from the second address.
    let (y, udp_local) = lb
        .topo
        .client
        .ns
        .run_in(|| -> Result<(String, SocketAddrV6)> {
            let sock = std::net::UdpSocket::bind(SocketAddrV6::new(SAME_NET, 0, 0, 0))?;
            sock.connect(lb.topo.vip6_sock(53))?;
            sock.set_read_timeout(Some(T))?;
            sock.send(b"ask\n")?;
            let mut buf = [0u8; 64];
            let n = sock.recv(&mut buf)?;
            let SocketAddr::V6(local) = sock.local_addr()? else {
                bail!("not IPv6")
            };
            Ok((String::from_utf8_lossy(&buf[..n]).trim().to_owned(), local))
        })??;
    let route = |rs: usize| -> Result<String> {
        let o = lb.topo.backends[rs].ns.ip(&[
            "-6",
            "route",
            "get",
            &SAME_NET.to_string(),
            "from",
            &vip.context("dual stack")?.to_string(),
        ])?;
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    };
    send_icmp6(&lb, packet_too_big(lb.topo.vip6_sock(53), udp_local, None))?;
    let yi = lb
        .topo
        .backends
        .iter()
        .position(|b| b.name == y)
        .context(y.clone())?;
    lb_tests::lb::wait_for("the route exception", Duration::from_secs(2), || {
        Ok(route(yi)?.contains("mtu 1280").then_some(()))
    })
    .with_context(|| route(yi).unwrap_or_default())?;
    assert_eq!(reason(&lb, REASON_FWD_ICMP)?, 2);
    let other = route(1 - yi)?;
    assert!(!other.contains("mtu 1280"), "the other real: {other}");
    Ok(())
}

/// An IPv6 fwmark service (`-f 1 -6`, `lbctl fwmark add -d VIP6`) bundles two ports under one
/// template per client /64 (`-M 64`), listed as ipvsadm lists it (`FWM  1 IPv6`, the template
/// `IP [2001:db8::]:0 [0:1::]:0`), next to the IPv4 fwmark service of the same mark, which
/// is another service with its own reals.
#[test]
fn ipv6_fwmark_service_bundles_two_ports_next_to_the_ipv4_one_of_the_same_mark() -> Result<()> {
    if !require_root("ipv6_fwmark_service_bundles_two_ports_next_to_the_ipv4_one_of_the_same_mark")
    {
        return Ok(());
    }
    let mut lb = dual_stack(2)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    lb.topo.start_servers(Path::new(SRV), 443, false)?;
    let vip6 = lb.topo.vip6.context("dual stack")?.to_string();
    for port in ["80", "443"] {
        lb.lbctl_ok(&[
            "fwmark",
            "add",
            "-p",
            "tcp",
            "-d",
            &vip6,
            "--dport",
            port,
            "--set-mark",
            "1",
        ])?;
        lb.mark_tcp(port.parse()?, 1)?;
    }
    lb.lbctl_ok(&["-A", "-f", "1", "-6", "-s", "rr", "-p", "30", "-M", "64"])?;
    lb.lbctl_ok(&["-A", "-f", "1", "-s", "rr"])?;
    // The IPv6 service's reals are rs1 and rs2, the IPv4 one's rs2 only.
    for i in 0..2 {
        let rs = format!("[{}]:0", lb.topo.backends[i].addr6.context("dual stack")?);
        lb.lbctl_ok(&["-a", "-f", "1", "-6", "-r", &rs, "-g", "-w", "1"])?;
    }
    let rs2 = lb.topo.backends[1].addr.to_string();
    lb.lbctl_ok(&["-a", "-f", "1", "-r", &rs2, "-g", "-w", "1"])?;
    let listed = lb.lbctl_ok(&["-L", "-n"])?;
    assert!(
        listed.contains("\nFWM  1 rr\n  -> ")
            && listed.contains("\nFWM  1 IPv6 rr persistent 30 mask 64\n"),
        "{listed}"
    );

    let ns = &lb.topo.client.ns;
    let mut reals = std::collections::BTreeSet::new();
    for _ in 0..3 {
        for port in [80, 443] {
            reals.insert(client::http_get(ns, lb.topo.vip6_sock(port), T)?);
        }
    }
    assert_eq!(reals.len(), 1, "both ports on one real: {reals:?}");
    assert_eq!(placed(&lb)?, (1, 5), "one scheduling, then the template");
    let x = reals.pop_first().context("a real")?;
    // The IPv4 service of mark 1 is another service.
    for port in [80, 443] {
        assert_eq!(client::http_get(ns, lb.topo.vip_sock(port), T)?, "rs2");
    }

    let tmpl: Vec<(String, SocketAddr, SocketAddr, SocketAddr)> = templates(&lb)?
        .into_iter()
        .map(|r| (r.proto, r.source, r.virt, r.dest))
        .collect();
    let real = lb.topo.backend_named(&x).context("real")?.sock6(0);
    assert_eq!(
        tmpl,
        [(
            "IP".to_owned(),
            net0("2001:db8::"),
            net0("0:1::"),
            SocketAddr::V6(real)
        )],
        "{tmpl:?}"
    );
    Ok(())
}

/// Sets the sticky hop-by-hop and destination options headers (one PadN option each, 8
/// bytes) on `sock`: every packet it sends carries both extension headers.
fn with_extension_headers(sock: &socket2::Socket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    // Next header (the kernel fills it in), length 0 (8 bytes), PadN of 4 bytes.
    let header: [u8; 8] = [0, 0, 1, 4, 0, 0, 0, 0];
    for opt in [libc::IPV6_HOPOPTS, libc::IPV6_DSTOPTS] {
        // SAFETY: an 8-byte option buffer for a socket we own.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::IPPROTO_IPV6,
                opt,
                header.as_ptr().cast(),
                header.len() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The Bytes column of `lbctl counters` for `name`.
fn counter_bytes(lb: &LbTopology, name: &str) -> Result<u64> {
    let out = lb.lbctl_ok(&["counters"])?;
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
        .with_context(|| format!("no {name} in:\n{out}"))
}

/// The program walks IPv6 extension headers to the transport header (docs/SEMANTICS.md): a TCP
/// connection and a UDP flow whose every packet carries a hop-by-hop and a destination
/// options header are balanced, and their real servers answer. The SYN's 16 extra bytes are
/// in the `fwd_new` count, so the headers were on the wire.
#[test]
fn ipv6_flows_with_extension_headers_are_balanced() -> Result<()> {
    use socket2::{Domain, Socket, Type};
    use std::io::{Read as _, Write as _};
    if !require_root("ipv6_flows_with_extension_headers_are_balanced") {
        return Ok(());
    }
    let mut lb = dual_stack(2)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    lb.topo.start_servers(Path::new(SRV), 53, true)?;
    service6(&lb, "-t", 80, "rr", &[], &[1, 1])?;
    service6(&lb, "-u", 53, "rr", &[], &[1, 1])?;
    // A SYN without them, for the size: Ethernet, IPv6 and TCP with Linux's options.
    client::http_get(&lb.topo.client.ns, lb.topo.vip6_sock(80), T)?;
    let plain_syn = counter_bytes(&lb, "fwd_new")?;

    let (tcp_vip, udp_vip) = (
        SocketAddr::V6(lb.topo.vip6_sock(80)),
        SocketAddr::V6(lb.topo.vip6_sock(53)),
    );
    let (tcp, udp) = lb
        .topo
        .client
        .ns
        .run_in(move || -> Result<(String, String)> {
            let s = Socket::new(Domain::IPV6, Type::STREAM, None)?;
            with_extension_headers(&s)?;
            s.set_read_timeout(Some(T))?;
            s.connect_timeout(&tcp_vip.into(), T)?;
            let mut s = std::net::TcpStream::from(s);
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut response = String::new();
            s.read_to_string(&mut response)?;
            let tcp = response
                .rsplit("\r\n\r\n")
                .next()
                .unwrap_or("")
                .trim()
                .to_owned();

            let u = Socket::new(Domain::IPV6, Type::DGRAM, None)?;
            with_extension_headers(&u)?;
            u.set_read_timeout(Some(T))?;
            u.connect(&udp_vip.into())?;
            let u = std::net::UdpSocket::from(u);
            u.send(b"ask\n")?;
            let mut buf = [0u8; 64];
            let n = u.recv(&mut buf)?;
            Ok((tcp, String::from_utf8_lossy(&buf[..n]).trim().to_owned()))
        })??;
    assert!(["rs1", "rs2"].contains(&tcp.as_str()), "TCP answer {tcp:?}");
    assert!(["rs1", "rs2"].contains(&udp.as_str()), "UDP answer {udp:?}");
    let r = lb.reasons()?;
    assert_eq!(r[REASON_FWD_NEW as usize], 3, "{r:?}");
    assert_eq!(r[REASON_PASS_EXT_HEADERS as usize], 0, "{r:?}");
    // The SYN (94 + 16 bytes) and the datagram (14 + 40 + 16 + 8 + 4).
    assert_eq!(
        counter_bytes(&lb, "fwd_new")?,
        2 * plain_syn + 16 + 14 + 40 + 16 + 8 + 4,
        "{}",
        lb.lbctl_ok(&["counters"])?
    );
    Ok(())
}

/// One GET from the fixed client address `local`, retried while the previous connection from
/// the same port is still closing on the client (`EADDRNOTAVAIL`, `EADDRINUSE`).
fn get6_from_port(lb: &LbTopology, local: SocketAddrV6) -> Result<String> {
    for _ in 0..50 {
        match client::http_try_from(&lb.topo.client.ns, local, lb.topo.vip6_sock(80), T)? {
            Outcome::Answered(name) => return Ok(name),
            Outcome::Error {
                kind: std::io::ErrorKind::AddrNotAvailable | std::io::ErrorKind::AddrInUse,
                ..
            } => std::thread::sleep(Duration::from_millis(50)),
            other => bail!("GET from {local}: {other}"),
        }
    }
    bail!("{local} stays busy on the client")
}

/// `conn_reuse_mode` over IPv6: a SYN reusing the client port of an entry in FIN_WAIT goes
/// through that entry, even to a quiescent real; with `expire_nodest_conn=1` an entry bound to
/// a weight-0 real is expired and the SYN is scheduled afresh.
#[test]
fn ipv6_syn_reusing_the_port_of_a_quiescent_real_is_rescheduled_with_expire_nodest_conn()
-> Result<()> {
    if !require_root(
        "ipv6_syn_reusing_the_port_of_a_quiescent_real_is_rescheduled_with_expire_nodest_conn",
    ) {
        return Ok(());
    }
    let mut lb = dual_stack(3)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let vip = service6(&lb, "-t", 80, "rr", &[], &[1, 1, 1])?;
    // Below the ephemeral range: no other connection takes it.
    let local = SocketAddrV6::new(CLIENT_ADDR6, 30000, 0, 0);
    let entry = || -> Result<ConnRow<SocketAddr>> {
        let rows = lb.conn_rows_any()?;
        rows.iter()
            .find(|r| r.source == SocketAddr::V6(local))
            .cloned()
            .with_context(|| format!("no entry of {local}: {rows:?}"))
    };
    let x = get6_from_port(&lb, local)?;
    assert_eq!(entry()?.state, "FIN_WAIT");
    assert_eq!(get6_from_port(&lb, local)?, x, "SYN on a FIN_WAIT entry");
    assert_eq!(reason(&lb, REASON_FWD_NEW)?, 1);
    let x_addr = real6_named(&lb, &x, 80)?.to_string();
    lb.lbctl_ok(&["-e", "-t", &vip, "-r", &x_addr, "-w", "0"])?;
    assert_eq!(get6_from_port(&lb, local)?, x, "expire_nodest_conn=0");
    assert_eq!(reason(&lb, REASON_FWD_NEW)?, 1);

    lb.lbctl_ok(&["sysctl", "expire_nodest_conn=1"])?;
    let y = get6_from_port(&lb, local)?;
    assert_ne!(y, x, "expire_nodest_conn=1");
    assert_eq!(reason(&lb, REASON_FWD_NEW)?, 2);
    assert_eq!(entry()?.dest, SocketAddr::V6(real6_named(&lb, &y, 80)?));
    Ok(())
}

/// An IPv6 real server whose MAC the director's kernel did not know at `-a` time: lbctl asks
/// the kernel to resolve it and returns, and the program learns the MAC with
/// `bpf_fib_lookup`, which for IPv6 answers only with `net.ipv6.conf.IFACE.forwarding=1` (as
/// for IPv4): without it the packets are dropped (`drop_no_neigh`) although the kernel's
/// neighbour entry is there by then.
#[test]
fn ipv6_real_learned_by_the_program_needs_ipv6_forwarding_on_the_interface() -> Result<()> {
    if !require_root("ipv6_real_learned_by_the_program_needs_ipv6_forwarding_on_the_interface") {
        return Ok(());
    }
    let mut lb = LbTopology::with_config(&TopoConfig::new(1).dual_stack().without_lb_neighbours())?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    service6(&lb, "-t", 80, "rr", &[], &[1])?;
    let rs1 = lb.topo.backends[0].addr6.context("dual stack")?.to_string();
    let mac = lb_tests::netns::format_mac(&lb.topo.backends[0].mac);
    lb_tests::lb::wait_for("the kernel resolving rs1", Duration::from_secs(5), || {
        let o = lb
            .topo
            .lb
            .ns
            .ip(&["-6", "neigh", "show", &rs1, "dev", "eth0"])?;
        Ok(String::from_utf8_lossy(&o.stdout)
            .contains(&format!("lladdr {mac}"))
            .then_some(()))
    })?;
    let ns = &lb.topo.client.ns;
    assert_eq!(
        client::http_try(ns, lb.topo.vip6_sock(80), Duration::from_secs(1))?,
        Outcome::TimedOut
    );
    assert!(reason(&lb, REASON_DROP_NO_NEIGH)? >= 1);
    lb.topo.lb.ns.sysctl("net.ipv6.conf.eth0.forwarding", "1")?;
    assert_eq!(client::http_get(ns, lb.topo.vip6_sock(80), T)?, "rs1");
    Ok(())
}
