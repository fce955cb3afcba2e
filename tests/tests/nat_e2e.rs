//! End to end: masquerading (`-m`) with real TCP from the client's namespace through a
//! two-armed director (clients outside, reals on a private segment whose default route is
//! the director; lbctl attached on both interfaces), over IPv4 and IPv6
//! (`lb_tests::topo_methods`).
//!
//! Scenarios (docs/SEMANTICS.md §19): a port change (VIP:80 -> RIP:8080; the reals listen on
//! 8080 only) with balancing, the real seeing the client's own address, a `RIP:0` real
//! (ldirectord's `real=RIP masq`: the service's port), `--stats` counting both directions;
//! persistence and quiescing; removal under both `expire_nodest_conn` values; and the
//! connection states of `-L -c` following both sides (IPVS's NAT table: the client's FIN
//! first gives `CLOSE_WAIT`, the real's first `FIN_WAIT`), and UDP.

use std::collections::BTreeMap;
use std::net::{Shutdown, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use lb_common::REASON_TX_RST_NODEST;
use lb_tests::client::{self, HoldConn, Outcome};
use lb_tests::lb::{ConnRow, real_line, wait_for};
use lb_tests::methods::{MethodsLb, QuietServer, connect};
use lb_tests::require_root;
use lb_tests::topo_methods::MethodsConfig;

const SRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");
const T: Duration = client::DEFAULT_TIMEOUT;
/// How long the client waits for a flow to resume (TCP retransmits with backoff).
const RESUME: Duration = Duration::from_secs(8);
/// The reals' port.
const RPORT: u16 = 8080;

fn family(v6: bool) -> &'static str {
    if v6 { "IPv6" } else { "IPv4" }
}

/// `RIP:port` of the real called `name`, in ipvsadm's notation.
fn rip(lb: &MethodsLb, name: &str, v6: bool, port: u16) -> Result<String> {
    Ok(SocketAddr::new(lb.topo.real_ip(name, v6)?, port).to_string())
}

/// `-A -t VIP:vport -s rr [extra]`, then `-a ... -r RIP:RPORT -m -w 1` for every NAT real.
fn nat_service(lb: &MethodsLb, v6: bool, vip: u8, vport: u16, extra: &[&str]) -> Result<String> {
    let svc = lb.topo.vip_sock(v6, vip, vport).to_string();
    let mut args = vec!["-A", "-t", &svc, "-s", "rr"];
    args.extend_from_slice(extra);
    lb.lbctl_ok(&args)?;
    for n in &lb.topo.nat {
        let r = rip(lb, &n.name, v6, RPORT)?;
        lb.lbctl_ok(&["-a", "-t", &svc, "-r", &r, "-m", "-w", "1"])?;
    }
    Ok(svc)
}

/// A topology with `n` NAT reals answering on [`RPORT`] only.
fn setup(n: usize) -> Result<MethodsLb> {
    let mut lb = MethodsLb::new(&MethodsConfig::new(0, n, 0))?;
    lb.serve_all(Path::new(SRV), RPORT)?;
    Ok(lb)
}

fn share(counts: &BTreeMap<String, usize>, name: &str) -> i64 {
    counts.get(name).copied().unwrap_or(0) as i64
}

/// VIP:80 -> RIP:8080 over both families: balanced (rr per CPU), listed as `Masq` with the
/// real's own port, entries from the client to the VIP leading to RIP:8080, the real sees the
/// client's address (no SNAT), and `--stats` counts requests in and replies out for every
/// real and the service. Then a `RIP:0` real: the service's port.
#[test]
fn nat_changes_the_port_and_balances_real_tcp_over_both_families() -> Result<()> {
    if !require_root("nat_changes_the_port_and_balances_real_tcp_over_both_families") {
        return Ok(());
    }
    let lb = setup(3)?;
    let names = ["nat1", "nat2", "nat3"];
    const N: usize = 30;
    for v6 in [false, true] {
        let fam = family(v6);
        let svc = nat_service(&lb, v6, 0, 80, &[])?;
        let vip = lb.topo.vip_sock(v6, 0, 80);
        let counts = lb.gets(vip, N)?;
        for name in names {
            assert!((share(&counts, name) - 10).abs() <= 3, "{fam}: {counts:?}");
        }
        let listing = lb.lbctl_ok(&["-L", "-n", "-t", &svc])?;
        let stats = lb.lbctl_ok(&["-L", "-n", "--stats", "-t", &svc])?;
        for name in names {
            let r = rip(&lb, name, v6, RPORT)?;
            let line = real_line(&listing, &r).with_context(|| format!("{r} in\n{listing}"))?;
            assert_eq!(line[2], "Masq", "{fam}:\n{listing}");
            // -> addr Conns InPkts OutPkts InBytes OutBytes
            let s = real_line(&stats, &r).with_context(|| format!("{r} in\n{stats}"))?;
            assert_eq!(s[2], share(&counts, name).to_string(), "{fam}:\n{stats}");
            for (i, what) in [
                (3, "InPkts"),
                (4, "OutPkts"),
                (5, "InBytes"),
                (6, "OutBytes"),
            ] {
                assert_ne!(s[i], "0", "{fam}: {what} of {name}:\n{stats}");
            }
        }
        let svc_line = stats
            .lines()
            .find(|l| l.starts_with("TCP "))
            .with_context(|| stats.clone())?;
        let f: Vec<&str> = svc_line.split_whitespace().collect();
        assert_eq!(f[2], N.to_string(), "{fam}: {svc_line}");
        assert!(f[3..7].iter().all(|v| *v != "0"), "{fam}: {svc_line}");

        let rows: Vec<ConnRow<SocketAddr>> = lb
            .conn_rows()?
            .into_iter()
            .filter(|r| r.source.ip() == lb.topo.client_ip(v6))
            .collect();
        assert_eq!(rows.len(), N, "{fam}: {rows:?}");
        for r in &rows {
            assert_eq!(r.virt, vip, "{fam}: {r:?}");
            assert_eq!(r.dest.port(), RPORT, "{fam}: {r:?}");
        }

        // The real sees the client's own address.
        let held = HoldConn::open(&lb.topo.client.ns, vip, T)?;
        let node = lb.topo.real(held.backend()).context("a NAT real")?;
        let ss = node.ns.exec(&["ss", "-Htn", "state", "established"])?;
        let ss = String::from_utf8_lossy(&ss.stdout);
        let client = held.local_addr()?;
        let peers = match client {
            SocketAddr::V4(a) => vec![
                format!("{}:{}", a.ip(), a.port()),
                format!("[::ffff:{}]:{}", a.ip(), a.port()),
            ],
            SocketAddr::V6(a) => vec![format!("[{}]:{}", a.ip(), a.port())],
        };
        let peer = &peers[0];
        assert!(
            peers.iter().any(|p| ss.contains(p.as_str())),
            "{fam}: {peer} not seen by {}:\n{ss}",
            node.name
        );
        held.close()?;

        // RIP:0 (ldirectord's `real=RIP masq`): the service's port, 8080 here.
        let svc = lb.topo.vip_sock(v6, 1, RPORT).to_string();
        lb.lbctl_ok(&["-A", "-t", &svc, "-s", "rr"])?;
        lb.lbctl_ok(&["-a", "-t", &svc, "-r", &rip(&lb, "nat2", v6, 0)?, "-m"])?;
        let listing = lb.lbctl_ok(&["-L", "-n", "-t", &svc])?;
        assert!(
            real_line(&listing, &rip(&lb, "nat2", v6, 0)?).is_some(),
            "{fam}: {listing}"
        );
        assert_eq!(
            lb.get(lb.topo.vip_sock(v6, 1, RPORT))?,
            "nat2",
            "{fam}: RIP:0"
        );
    }
    Ok(())
}

/// Persistence (`-p`): a client sticks to its real; quiescing (weight 0): a held connection
/// goes on (its replies still translated), new connections go to the other real.
#[test]
fn nat_persistence_and_quiescing_over_both_families() -> Result<()> {
    if !require_root("nat_persistence_and_quiescing_over_both_families") {
        return Ok(());
    }
    let lb = setup(2)?;
    for v6 in [false, true] {
        let fam = family(v6);
        nat_service(&lb, v6, 0, 80, &["-p", "60"])?;
        let sticky = lb.topo.vip_sock(v6, 0, 80);
        let x = lb.get(sticky)?;
        let counts = lb.gets(sticky, 6)?;
        assert_eq!(
            counts.get(&x),
            Some(&6),
            "{fam}: template ignored: {counts:?}"
        );
        let tmpl: Vec<_> = lb
            .conn_rows()?
            .into_iter()
            .filter(|r| r.source.port() == 0 && r.virt == sticky)
            .collect();
        assert_eq!(tmpl.len(), 1, "{fam}: {tmpl:?}");
        assert_eq!(
            tmpl[0].dest.to_string(),
            rip(&lb, &x, v6, RPORT)?,
            "{fam}: the template leads to RIP:8080"
        );

        let svc = nat_service(&lb, v6, 1, 80, &[])?;
        let addr = lb.topo.vip_sock(v6, 1, 80);
        let mut held = HoldConn::open(&lb.topo.client.ns, addr, T)?;
        let x = held.backend().to_owned();
        let y = if x == "nat1" { "nat2" } else { "nat1" };
        let x_rip = rip(&lb, &x, v6, RPORT)?;
        lb.lbctl_ok(&["-e", "-t", &svc, "-r", &x_rip, "-m", "-w", "0"])?;
        assert_eq!(held.ask(T), Outcome::Answered(x.clone()), "{fam}: quiesced");
        let counts = lb.gets(addr, 4)?;
        assert_eq!(counts.get(y), Some(&4), "{fam}: {counts:?}");
        assert_eq!(held.ask(T), Outcome::Answered(x.clone()), "{fam}: still");
        held.close()?;
    }
    Ok(())
}

/// Opens held connections to `addr` until one lands on `name` (at most 12 tries).
fn hold_on(lb: &MethodsLb, addr: SocketAddr, name: &str) -> Result<HoldConn> {
    for _ in 0..12 {
        let c = HoldConn::open(&lb.topo.client.ns, addr, T)?;
        if c.backend() == name {
            return Ok(c);
        }
        c.close()?;
    }
    bail!("no held connection to {addr} reached {name}")
}

/// Removal (`-d`): with `expire_nodest_conn=0` a held connection hangs, keeps its entry, and
/// resumes when the real is added back; with 1 its entry goes at once and its next segment
/// is answered with a reset. New connections go to the other real.
#[test]
fn nat_removal_under_both_expire_nodest_conn_values() -> Result<()> {
    if !require_root("nat_removal_under_both_expire_nodest_conn_values") {
        return Ok(());
    }
    let lb = setup(2)?;
    for v6 in [false, true] {
        let fam = family(v6);
        lb.lbctl_ok(&["sysctl", "expire_nodest_conn=0"])?;
        let svc = nat_service(&lb, v6, 0, 80, &[])?;
        let addr = lb.topo.vip_sock(v6, 0, 80);
        let n1 = rip(&lb, "nat1", v6, RPORT)?;
        let mut held = hold_on(&lb, addr, "nat1")?;
        let source = held.local_addr()?;
        lb.lbctl_ok(&["-d", "-t", &svc, "-r", &n1])?;
        assert_eq!(held.ask(Duration::from_secs(1)), Outcome::TimedOut, "{fam}");
        let rows = lb.conn_rows()?;
        let e = rows
            .iter()
            .find(|r| r.source == source)
            .with_context(|| format!("{fam}: the entry of {source} is gone: {rows:?}"))?;
        assert_eq!(e.dest.to_string(), n1, "{fam}: {e:?}");
        let counts = lb.gets(addr, 3)?;
        assert_eq!(counts.get("nat2"), Some(&3), "{fam}: {counts:?}");
        lb.lbctl_ok(&["-a", "-t", &svc, "-r", &n1, "-m"])?;
        assert_eq!(held.ask(RESUME), Outcome::Answered("nat1".into()), "{fam}");
        held.close()?;

        lb.lbctl_ok(&["sysctl", "expire_nodest_conn=1"])?;
        let resets = lb.reason(REASON_TX_RST_NODEST)?;
        let mut held = hold_on(&lb, addr, "nat1")?;
        let source = held.local_addr()?;
        lb.lbctl_ok(&["-d", "-t", &svc, "-r", &n1])?;
        let rows = lb.conn_rows()?;
        assert!(rows.iter().all(|r| r.source != source), "{fam}: {rows:?}");
        assert_eq!(held.ask(T), Outcome::Reset, "{fam}: expire_nodest_conn=1");
        assert_eq!(lb.reason(REASON_TX_RST_NODEST)?, resets + 1, "{fam}");
        let counts = lb.gets(addr, 3)?;
        assert_eq!(counts.get("nat2"), Some(&3), "{fam}: {counts:?}");
    }
    Ok(())
}

/// The state of the entry of the client's connection from `source`.
fn state_of(lb: &MethodsLb, source: SocketAddr, want: &str) -> Result<ConnRow<SocketAddr>> {
    let mut last = Vec::new();
    wait_for(&format!("the entry of {source} in {want}"), T, || {
        last = lb.conn_rows()?;
        Ok(last
            .iter()
            .find(|r| r.source == source && r.state == want)
            .cloned())
    })
    .with_context(|| format!("{last:?}"))
}

/// `-L -c` follows both sides with IPVS's NAT table: ESTABLISHED (counted active), the
/// client's FIN first -> CLOSE_WAIT (60 s, inactive), then the real's FIN -> TIME_WAIT; the
/// real's FIN first -> FIN_WAIT, then the client's -> TIME_WAIT. A server made by the test
/// holds each connection so that the FINs come in the order wanted (VIP:90 -> RIP:9000).
#[test]
fn nat_connection_states_follow_both_sides() -> Result<()> {
    if !require_root("nat_connection_states_follow_both_sides") {
        return Ok(());
    }
    let lb = MethodsLb::new(&MethodsConfig::new(0, 1, 0))?;
    let server = QuietServer::listen(&lb.topo.nat[0], 9000)?;
    for v6 in [false, true] {
        let fam = family(v6);
        let svc = lb.topo.vip_sock(v6, 0, 90).to_string();
        let r = rip(&lb, "nat1", v6, 9000)?;
        lb.lbctl_ok(&["-A", "-t", &svc, "-s", "rr"])?;
        lb.lbctl_ok(&["-a", "-t", &svc, "-r", &r, "-m"])?;
        let counts = |want: [&str; 2]| -> Result<()> {
            let listing = lb.lbctl_ok(&["-L", "-n", "-t", &svc])?;
            let line = real_line(&listing, &r).with_context(|| listing.clone())?;
            assert_eq!(
                [&line[4][..], &line[5][..]],
                want,
                "{fam}: ActiveConn InActConn\n{listing}"
            );
            Ok(())
        };
        let addr = lb.topo.vip_sock(v6, 0, 90);

        // The client closes first.
        let c = connect(&lb.topo.client.ns, addr, T)?;
        let (s, _) = server.accept(T)?;
        let source = c.local_addr()?;
        state_of(&lb, source, "ESTABLISHED")?;
        counts(["1", "0"])?;
        c.shutdown(Shutdown::Write)?;
        let row = state_of(&lb, source, "CLOSE_WAIT")?;
        assert!(row.expire_secs <= 60, "{fam}: {row:?}");
        counts(["0", "1"])?;
        s.shutdown(Shutdown::Both)?;
        drop(s);
        state_of(&lb, source, "TIME_WAIT")?;
        drop(c);

        // The real closes first.
        let c = connect(&lb.topo.client.ns, addr, T)?;
        let (s, _) = server.accept(T)?;
        let source = c.local_addr()?;
        state_of(&lb, source, "ESTABLISHED")?;
        s.shutdown(Shutdown::Both)?;
        let row = state_of(&lb, source, "FIN_WAIT")?;
        assert!(row.expire_secs <= 120, "{fam}: {row:?}");
        c.shutdown(Shutdown::Both)?;
        state_of(&lb, source, "TIME_WAIT")?;
        drop((c, s));
    }
    Ok(())
}

/// UDP through NAT (VIP:53 -> RIP:5353) over both families: every datagram answered from the
/// VIP's port (the client's connected socket takes nothing else), entries in state `UDP`
/// counted inactive, replies counted out.
#[test]
fn nat_udp_changes_the_port_over_both_families() -> Result<()> {
    if !require_root("nat_udp_changes_the_port_over_both_families") {
        return Ok(());
    }
    let mut lb = MethodsLb::new(&MethodsConfig::new(0, 2, 0))?;
    for n in lb.topo.nat.iter_mut() {
        n.start_server(Path::new(SRV), 5353, true)?;
    }
    for v6 in [false, true] {
        let fam = family(v6);
        let svc = lb.topo.vip_sock(v6, 0, 53).to_string();
        lb.lbctl_ok(&["-A", "-u", &svc, "-s", "rr"])?;
        for name in ["nat1", "nat2"] {
            lb.lbctl_ok(&["-a", "-u", &svc, "-r", &rip(&lb, name, v6, 5353)?, "-m"])?;
        }
        let counts = client::udp_ask_many(&lb.topo.client.ns, lb.topo.vip_sock(v6, 0, 53), 12, T)?;
        assert_eq!(counts.values().sum::<usize>(), 12, "{fam}: {counts:?}");
        assert_eq!(counts.len(), 2, "{fam}: {counts:?}");
        let rows: Vec<_> = lb
            .conn_rows()?
            .into_iter()
            .filter(|r| r.virt == lb.topo.vip_sock(v6, 0, 53))
            .collect();
        assert_eq!(rows.len(), 12, "{fam}: {rows:?}");
        assert!(
            rows.iter()
                .all(|r| r.proto == "UDP" && r.state == "UDP" && r.dest.port() == 5353),
            "{fam}: {rows:?}"
        );
        let stats = lb.lbctl_ok(&["-L", "-n", "--stats", "-u", &svc])?;
        let listing = lb.lbctl_ok(&["-L", "-n", "-u", &svc])?;
        for name in ["nat1", "nat2"] {
            let r = rip(&lb, name, v6, 5353)?;
            let s = real_line(&stats, &r).with_context(|| stats.clone())?;
            assert_ne!(s[4], "0", "{fam}: OutPkts of {name}:\n{stats}");
            let l = real_line(&listing, &r).with_context(|| listing.clone())?;
            assert_eq!(l[4], "0", "{fam}: UDP is never active:\n{listing}");
            assert_ne!(l[5], "0", "{fam}: InActConn:\n{listing}");
        }
    }
    Ok(())
}
