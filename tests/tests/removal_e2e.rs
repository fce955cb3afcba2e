//! End to end: removing a real server (`-d`) and the `expire_nodest_conn` sysctl
//! (docs/SEMANTICS.md §4), with real TCP from the client's namespace through the XDP load
//! balancer.

use std::net::SocketAddrV4;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use lb_common::{REASON_DROP_NODEST, REASON_FWD_NEW, REASON_TX_RST_NODEST};
use lb_tests::client::{self, HoldConn, Outcome, UdpFlow};
use lb_tests::lb::{ConnRow, LbTopology};
use lb_tests::require_root;

const SRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");
const T: Duration = client::DEFAULT_TIMEOUT;
/// How long the client waits when it expects no answer.
const SHORT: Duration = Duration::from_secs(1);
/// How long the client waits for a flow to resume: TCP retransmits with backoff (0.2 s, then
/// 0.4, 0.8, 1.6, 3.2 s after a loss), so the resumed answer may take a few seconds.
const RESUME: Duration = Duration::from_secs(8);

/// A topology with `n` real servers answering on port 80 and `-A -t VIP:80 -s rr`, every
/// real at weight 1.
fn setup(n: usize) -> Result<(LbTopology, String)> {
    let mut lb = LbTopology::new(n)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let vip = format!("{}:80", lb.topo.vip);
    lb.lbctl_ok(&["-A", "-t", &vip, "-s", "rr"])?;
    for b in &lb.topo.backends {
        lb.lbctl_ok(&["-a", "-t", &vip, "-r", &b.addr.to_string(), "-w", "1"])?;
    }
    Ok((lb, vip))
}

fn addr_of(lb: &LbTopology, name: &str) -> Result<String> {
    Ok(lb
        .topo
        .backend_named(name)
        .with_context(|| format!("no real server {name:?}"))?
        .addr
        .to_string())
}

fn local_v4(c: &HoldConn) -> Result<SocketAddrV4> {
    match c.local_addr()? {
        std::net::SocketAddr::V4(a) => Ok(a),
        other => bail!("not IPv4: {other}"),
    }
}

fn entry(rows: &[ConnRow], source: SocketAddrV4) -> Option<&ConnRow> {
    rows.iter().find(|r| r.source == source)
}

#[test]
fn removed_real_black_holes_its_flows_until_added_back() -> Result<()> {
    if !require_root("removed_real_black_holes_its_flows_until_added_back") {
        return Ok(());
    }
    let (lb, vip) = setup(2)?;
    let ns = &lb.topo.client.ns;
    let mut held = HoldConn::open(ns, lb.topo.vip_sock(80), T)?;
    let x = held.backend().to_owned();
    let x_addr = addr_of(&lb, &x)?;
    let source = local_v4(&held)?;

    // expire_nodest_conn=0 (default): the flow's packets are dropped silently — no reset.
    lb.lbctl_ok(&["-d", "-t", &vip, "-r", &x_addr])?;
    assert_eq!(held.ask(SHORT), Outcome::TimedOut);
    let reasons = lb.reasons()?;
    assert!(reasons[REASON_DROP_NODEST as usize] >= 1, "{reasons:?}");
    assert_eq!(reasons[REASON_TX_RST_NODEST as usize], 0, "{reasons:?}");
    // Its entry is kept (so that the flow can resume), still bound to the removed real.
    let rows = lb.conn_rows()?;
    let e = entry(&rows, source).with_context(|| format!("entry of {source} gone: {rows:?}"))?;
    assert_eq!(
        (e.state.as_str(), e.dest),
        ("ESTABLISHED", format!("{x_addr}:80").parse()?),
        "{rows:?}"
    );
    // New connections go to the remaining real server.
    let counts = client::http_get_many(ns, lb.topo.vip_sock(80), 4, T)?;
    assert!(!counts.contains_key(&x), "{counts:?}");

    // The same real server added back: the held flow resumes where it was.
    lb.lbctl_ok(&["-a", "-t", &vip, "-r", &x_addr, "-w", "1"])?;
    assert_eq!(held.ask(RESUME), Outcome::Answered(x.clone()));
    assert_eq!(held.ask(T), Outcome::Answered(x.clone()));
    held.close()?;
    Ok(())
}

#[test]
fn expire_nodest_conn_resets_the_flows_of_a_removed_real() -> Result<()> {
    if !require_root("expire_nodest_conn_resets_the_flows_of_a_removed_real") {
        return Ok(());
    }
    let (lb, vip) = setup(2)?;
    lb.lbctl_ok(&["sysctl", "net.ipv4.vs.expire_nodest_conn=1"])?;
    let ns = &lb.topo.client.ns;
    let mut held = HoldConn::open(ns, lb.topo.vip_sock(80), T)?;
    let x = held.backend().to_owned();
    let source = local_v4(&held)?;
    assert!(entry(&lb.conn_rows()?, source).is_some());

    lb.lbctl_ok(&["-d", "-t", &vip, "-r", &addr_of(&lb, &x)?])?;
    // The entry is expired at once (the kernel's flush after -d)...
    let rows = lb.conn_rows()?;
    assert!(entry(&rows, source).is_none(), "{rows:?}");
    // ...and the flow's next segment is answered with a reset the client accepts.
    assert_eq!(held.ask(T), Outcome::Reset);
    let reasons = lb.reasons()?;
    assert_eq!(reasons[REASON_TX_RST_NODEST as usize], 1, "{reasons:?}");
    // New connections go to the remaining real server.
    let counts = client::http_get_many(ns, lb.topo.vip_sock(80), 4, T)?;
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert!(!counts.contains_key(&x), "{counts:?}");
    Ok(())
}

/// UDP (§4.2, §4.3): a datagram of a flow whose real server was removed is dropped with
/// `expire_nodest_conn=0`; with `expire_nodest_conn=1` its entry is expired and the datagram
/// is scheduled afresh, to a remaining real server (no notification for UDP).
#[test]
fn udp_flow_of_a_removed_real_is_dropped_or_rescheduled() -> Result<()> {
    if !require_root("udp_flow_of_a_removed_real_is_dropped_or_rescheduled") {
        return Ok(());
    }
    let mut lb = LbTopology::new(2)?;
    lb.topo.start_servers(Path::new(SRV), 53, true)?;
    let vip = format!("{}:53", lb.topo.vip);
    lb.lbctl_ok(&["-A", "-u", &vip, "-s", "rr"])?;
    for b in &lb.topo.backends {
        lb.lbctl_ok(&["-a", "-u", &vip, "-r", &b.addr.to_string()])?;
    }
    let flow = UdpFlow::open(&lb.topo.client.ns, lb.topo.vip_sock(53))?;
    let x = match flow.ask(T) {
        Outcome::Answered(name) => name,
        other => bail!("UDP: {other}"),
    };
    let x_addr = addr_of(&lb, &x)?;
    lb.lbctl_ok(&["-d", "-u", &vip, "-r", &x_addr])?;
    assert_eq!(flow.ask(SHORT), Outcome::TimedOut, "expire_nodest_conn=0");
    let reasons = lb.reasons()?;
    assert_eq!(reasons[REASON_DROP_NODEST as usize], 1, "{reasons:?}");

    lb.lbctl_ok(&["sysctl", "expire_nodest_conn=1"])?;
    let y = match flow.ask(T) {
        Outcome::Answered(name) => name,
        other => bail!("UDP after expire_nodest_conn=1: {other}"),
    };
    assert_ne!(y, x);
    let rows = lb.conn_rows()?;
    let local = match flow.local_addr()? {
        std::net::SocketAddr::V4(a) => a,
        other => bail!("not IPv4: {other}"),
    };
    let e = entry(&rows, local).with_context(|| format!("{rows:?}"))?;
    assert_eq!(
        e.dest,
        format!("{}:53", addr_of(&lb, &y)?).parse()?,
        "{rows:?}"
    );
    Ok(())
}

/// One GET from the fixed client address `local`, retried while the previous connection
/// from the same port is still closing on the client (`EADDRNOTAVAIL`).
fn get_from(lb: &LbTopology, local: SocketAddrV4) -> Result<String> {
    for _ in 0..50 {
        match client::http_try_from(&lb.topo.client.ns, local, lb.topo.vip_sock(80), T)? {
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

/// §4.4: a SYN that reuses the client port of an entry in FIN_WAIT goes through that entry
/// (`conn_reuse_mode=1` reschedules only TIME_WAIT/CLOSE), even to a quiescent real; with
/// `expire_nodest_conn=1` an entry bound to a weight-0 real is expired and the SYN is
/// scheduled afresh (rule 1).
#[test]
fn syn_reusing_the_port_of_a_quiescent_real_is_rescheduled_with_expire_nodest_conn() -> Result<()> {
    if !require_root(
        "syn_reusing_the_port_of_a_quiescent_real_is_rescheduled_with_expire_nodest_conn",
    ) {
        return Ok(());
    }
    let (lb, vip) = setup(3)?;
    // New flows the scheduler placed so far: a SYN that goes through an old entry is not one.
    let scheduled = || -> Result<u64> { Ok(lb.reasons()?[REASON_FWD_NEW as usize]) };
    // Below the ephemeral range: no other connection takes it.
    let local = SocketAddrV4::new(lb.topo.client.addr, 30000);
    let x = get_from(&lb, local)?;
    let rows = lb.conn_rows()?;
    let e = entry(&rows, local).with_context(|| format!("{rows:?}"))?;
    assert_eq!(e.state, "FIN_WAIT", "{rows:?}");
    assert_eq!(get_from(&lb, local)?, x, "SYN on a FIN_WAIT entry");
    assert_eq!(scheduled()?, 1, "the SYN went through the FIN_WAIT entry");
    let x_addr = addr_of(&lb, &x)?;
    lb.lbctl_ok(&["-e", "-t", &vip, "-r", &x_addr, "-w", "0"])?;
    assert_eq!(
        get_from(&lb, local)?,
        x,
        "expire_nodest_conn=0: the entry still leads to the quiescent real"
    );
    assert_eq!(scheduled()?, 1);

    lb.lbctl_ok(&["sysctl", "expire_nodest_conn=1"])?;
    let y = get_from(&lb, local)?;
    assert_ne!(
        y, x,
        "SYN on an entry of a quiescent real, expire_nodest_conn=1"
    );
    assert_eq!(scheduled()?, 2);
    let rows = lb.conn_rows()?;
    let e = entry(&rows, local).with_context(|| format!("{rows:?}"))?;
    assert_eq!(
        e.dest,
        format!("{}:80", addr_of(&lb, &y)?).parse()?,
        "{rows:?}"
    );
    // The new entry's real is not quiescent: the next SYN on the port goes through it.
    assert_eq!(get_from(&lb, local)?, y);
    assert_eq!(scheduled()?, 2);
    Ok(())
}
