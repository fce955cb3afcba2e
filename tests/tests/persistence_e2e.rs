//! End to end: persistent services (docs/SEMANTICS.md §2) and quiescent real servers under
//! persistence (§3), with real TCP from the client's namespace through the XDP load balancer.
//!
//! Whether a new connection went through a template or through the scheduler is read from
//! the program's counters (`fwd_template`, `fwd_new`): the schedulers run per CPU, so landing
//! on the same real server again proves nothing by itself.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use lb_common::{REASON_FWD_NEW, REASON_FWD_TEMPLATE};
use lb_tests::client::{self, Outcome};
use lb_tests::lb::{ConnRow, LbTopology, sole_real, wait_for};
use lb_tests::require_root;

const SRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");
const T: Duration = client::DEFAULT_TIMEOUT;
/// A second address for the client, in the same /24 as its own.
const CLIENT2: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);

/// A topology with 3 real servers answering on port 80 and the persistent service
/// `-A -t VIP:80 -s rr -p <timeout> [extra...]` with every real at weight 1.
fn persistent(timeout: &str, extra: &[&str]) -> Result<(LbTopology, String)> {
    let mut lb = LbTopology::new(3)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let vip = format!("{}:80", lb.topo.vip);
    let mut args = vec!["-A", "-t", &vip, "-s", "rr", "-p", timeout];
    args.extend_from_slice(extra);
    lb.lbctl_ok(&args)?;
    for b in &lb.topo.backends {
        lb.lbctl_ok(&["-a", "-t", &vip, "-r", &b.addr.to_string(), "-w", "1"])?;
    }
    Ok((lb, vip))
}

/// `n` GETs from the client's own address; every one must be answered. Counts per real.
fn gets(lb: &LbTopology, n: usize) -> Result<HashMap<String, usize>> {
    client::http_get_many(&lb.topo.client.ns, lb.topo.vip_sock(80), n, T)
}

/// One GET from `CLIENT2` (added to the client's eth0 by [`add_second_client_address`]).
fn get_from_second_address(lb: &LbTopology) -> Result<String> {
    let local = SocketAddrV4::new(CLIENT2, 0);
    match client::http_try_from(&lb.topo.client.ns, local, lb.topo.vip_sock(80), T)? {
        Outcome::Answered(name) => Ok(name),
        other => bail!("GET from {CLIENT2}: {other}"),
    }
}

fn add_second_client_address(lb: &LbTopology) -> Result<()> {
    lb.topo
        .client
        .ns
        .ip(&["addr", "add", &format!("{CLIENT2}/24"), "dev", "eth0"])?;
    Ok(())
}

fn real_sock(lb: &LbTopology, name: &str, port: u16) -> Result<SocketAddrV4> {
    let b = lb
        .topo
        .backend_named(name)
        .with_context(|| format!("no real server {name:?}"))?;
    Ok(b.sock(port))
}

/// New flows the scheduler has placed so far (as opposed to placed by a template).
fn scheduled(lb: &LbTopology) -> Result<u64> {
    Ok(lb.reasons()?[REASON_FWD_NEW as usize])
}

/// New flows placed by a template so far.
fn by_template(lb: &LbTopology) -> Result<u64> {
    Ok(lb.reasons()?[REASON_FWD_TEMPLATE as usize])
}

/// The template rows (client port 0) of `-L -c -n`.
fn templates(lb: &LbTopology) -> Result<Vec<ConnRow>> {
    Ok(lb
        .conn_rows()?
        .into_iter()
        .filter(ConnRow::is_template)
        .collect())
}

#[test]
fn persistent_service_keeps_a_client_on_one_real_and_lists_its_template() -> Result<()> {
    if !require_root("persistent_service_keeps_a_client_on_one_real_and_lists_its_template") {
        return Ok(());
    }
    let (lb, vip) = persistent("30", &[])?;
    let counts = gets(&lb, 20)?;
    let x = sole_real(&counts)?;
    assert_eq!(counts[&x], 20);
    let reasons = lb.reasons()?;
    assert_eq!(reasons[REASON_FWD_NEW as usize], 1, "{reasons:?}");
    assert_eq!(reasons[REASON_FWD_TEMPLATE as usize], 19, "{reasons:?}");

    let rows = lb.conn_rows()?;
    let tmpl: Vec<&ConnRow> = rows.iter().filter(|r| r.is_template()).collect();
    assert_eq!(tmpl.len(), 1, "{rows:?}");
    let t = tmpl[0];
    // TCP  MM:SS ASSURED 198.51.100.10:0 VIP:80 real:80 — ASSURED: its connections reached
    // ESTABLISHED (§2.5).
    assert_eq!(
        (t.proto.as_str(), t.state.as_str(), t.source, t.virt, t.dest),
        (
            "TCP",
            "ASSURED",
            SocketAddrV4::new(lb.topo.client.addr, 0),
            vip.parse()?,
            real_sock(&lb, &x, 80)?
        ),
        "{rows:?}"
    );
    assert!(t.expire_secs > 0, "{t:?}");
    // Every connection entry is bound to the template's real.
    let entries: Vec<&ConnRow> = rows.iter().filter(|r| !r.is_template()).collect();
    assert_eq!(entries.len(), 20, "{rows:?}");
    assert!(entries.iter().all(|r| r.dest == t.dest), "{rows:?}");

    // --persistent-conn counts the template on its real (PersistConn).
    let listing = lb.lbctl_ok(&["-L", "-n", "--persistent-conn"])?;
    for b in &lb.topo.backends {
        let fields: Vec<&str> = listing
            .lines()
            .find(|l| l.starts_with(&format!("  -> {}:80 ", b.addr)))
            .context(listing.clone())?
            .split_whitespace()
            .collect();
        let want = if b.name == x { "1" } else { "0" };
        assert_eq!(fields[3], want, "PersistConn of {}: {listing}", b.name);
    }
    Ok(())
}

#[test]
fn quiescent_real_keeps_its_persistent_clients_by_default() -> Result<()> {
    if !require_root("quiescent_real_keeps_its_persistent_clients_by_default") {
        return Ok(());
    }
    let (lb, vip) = persistent("30", &[])?;
    add_second_client_address(&lb)?;
    let x = sole_real(&gets(&lb, 3)?)?;
    let x_addr = real_sock(&lb, &x, 80)?.ip().to_string();
    lb.lbctl_ok(&["-e", "-t", &vip, "-r", &x_addr, "-w", "0"])?;

    // expire_quiescent_template=0 (default): the template still holds, so the client's new
    // connections go on to the quiescent real server (§3.1).
    let counts = gets(&lb, 10)?;
    assert_eq!(sole_real(&counts)?, x, "{counts:?}");
    assert_eq!((scheduled(&lb)?, by_template(&lb)?), (1, 12));
    // A client without a template is scheduled among the others only, and then sticks.
    let y = get_from_second_address(&lb)?;
    assert_ne!(y, x, "a new client went to the quiescent real server");
    for _ in 0..4 {
        assert_eq!(get_from_second_address(&lb)?, y);
    }

    let mut tmpl = templates(&lb)?;
    tmpl.sort_by_key(|r| *r.source.ip());
    let summary: Vec<(SocketAddrV4, SocketAddrV4, SocketAddrV4)> =
        tmpl.iter().map(|r| (r.source, r.virt, r.dest)).collect();
    assert_eq!(
        summary,
        [
            (
                SocketAddrV4::new(lb.topo.client.addr, 0),
                vip.parse()?,
                real_sock(&lb, &x, 80)?
            ),
            (
                SocketAddrV4::new(CLIENT2, 0),
                vip.parse()?,
                real_sock(&lb, &y, 80)?
            ),
        ],
        "{tmpl:?}"
    );
    Ok(())
}

#[test]
fn expire_quiescent_template_moves_the_client_to_another_real() -> Result<()> {
    if !require_root("expire_quiescent_template_moves_the_client_to_another_real") {
        return Ok(());
    }
    let (lb, vip) = persistent("30", &[])?;
    lb.lbctl_ok(&["sysctl", "net.ipv4.vs.expire_quiescent_template=1"])?;
    let x = sole_real(&gets(&lb, 3)?)?;
    let x_sock = real_sock(&lb, &x, 80)?;
    lb.lbctl_ok(&["-e", "-t", &vip, "-r", &x_sock.ip().to_string(), "-w", "0"])?;
    // Until a new connection of the client finds it invalid, -L -c shows the
    // template with its own ports, as the kernel does.
    let before = templates(&lb)?;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].dest, x_sock, "{before:?}");
    assert_eq!(before[0].virt, vip.parse()?, "{before:?}");

    // The template to the quiescent real is expired when next used: the client is
    // scheduled afresh, gets a new template, and sticks to its new real server.
    let counts = gets(&lb, 6)?;
    let y = sole_real(&counts)?;
    assert_ne!(y, x, "{counts:?}");
    assert_eq!((scheduled(&lb)?, by_template(&lb)?), (2, 7));
    let tmpl = templates(&lb)?;
    let client0 = SocketAddrV4::new(lb.topo.client.addr, 0);
    let valid: Vec<&ConnRow> = tmpl
        .iter()
        .filter(|r| r.source == client0 && r.virt == vip.parse().unwrap())
        .collect();
    assert_eq!(valid.len(), 1, "{tmpl:?}");
    assert_eq!(valid[0].dest, real_sock(&lb, &y, 80)?, "{tmpl:?}");
    // The old one is listed as the kernel shows an invalidated template.
    let old: Vec<&ConnRow> = tmpl.iter().filter(|r| r.dest.ip() == x_sock.ip()).collect();
    assert_eq!(old.len(), 1, "{tmpl:?}");
    assert_eq!(
        (old[0].source, old[0].virt.port(), old[0].dest.port()),
        (client0, 65535, 65535),
        "{tmpl:?}"
    );
    Ok(())
}

#[test]
fn persistence_netmask_groups_the_clients_of_a_network() -> Result<()> {
    if !require_root("persistence_netmask_groups_the_clients_of_a_network") {
        return Ok(());
    }
    let (lb, vip) = persistent("30", &["-M", "255.255.255.0"])?;
    add_second_client_address(&lb)?;
    let listing = lb.lbctl_ok(&["-L", "-n"])?;
    assert!(
        listing.contains(&format!(
            "\nTCP  {vip} rr persistent 30 mask 255.255.255.0\n"
        )),
        "{listing}"
    );
    let x = sole_real(&gets(&lb, 2)?)?;
    // Another client of the same /24 shares the template.
    for _ in 0..3 {
        assert_eq!(get_from_second_address(&lb)?, x);
    }
    assert_eq!((scheduled(&lb)?, by_template(&lb)?), (1, 4));
    let tmpl = templates(&lb)?;
    assert_eq!(tmpl.len(), 1, "{tmpl:?}");
    assert_eq!(
        (tmpl[0].source, tmpl[0].virt, tmpl[0].dest),
        (
            "198.51.100.0:0".parse()?,
            vip.parse()?,
            real_sock(&lb, &x, 80)?
        ),
        "{tmpl:?}"
    );
    Ok(())
}

/// §2.4: when its timer fires while connection entries still refer to it, the template is
/// kept (the kernel postpones it by 60 s), so the client keeps its real server past `-p`.
#[test]
fn template_outlives_its_timeout_while_it_controls_connections() -> Result<()> {
    if !require_root("template_outlives_its_timeout_while_it_controls_connections") {
        return Ok(());
    }
    let (lb, _vip) = persistent("1", &[])?;
    // FIN_WAIT 2 s: closed connections go quickly.
    lb.lbctl_ok(&["--set", "0", "2", "0"])?;
    let ns = &lb.topo.client.ns;
    let held = client::HoldConn::open(ns, lb.topo.vip_sock(80), T)?;
    let x = held.backend().to_owned();
    // The template's own 1 s runs out while the held connection lives.
    std::thread::sleep(Duration::from_millis(1500));
    held.close()?;
    let client_entries =
        || -> Result<usize> { Ok(lb.conn_rows()?.iter().filter(|r| !r.is_template()).count()) };
    wait_for(
        "the held connection's entry expiring",
        Duration::from_secs(8),
        || Ok((client_entries()? == 0).then_some(())),
    )?;
    // No connection left, -p long past: the template is still there (until the next 60 s
    // check), and the next connection goes through it.
    let tmpl = templates(&lb)?;
    assert_eq!(tmpl.len(), 1, "{tmpl:?}");
    assert_eq!(tmpl[0].dest, real_sock(&lb, &x, 80)?, "{tmpl:?}");
    assert_eq!(sole_real(&gets(&lb, 1)?)?, x);
    assert_eq!((scheduled(&lb)?, by_template(&lb)?), (1, 1));
    Ok(())
}

/// §2.4: a template whose timer fires when no connection entry refers to it any more is
/// removed then. With `-p 3` and the only connection (an HTTP request, closed by the server
/// first) gone after 1 s, the template goes at 3 s and the client is scheduled afresh; `-L -c`
/// shows the template's timer, at most `-p`.
#[test]
fn template_expires_with_its_timeout_once_its_connections_are_gone() -> Result<()> {
    if !require_root("template_expires_with_its_timeout_once_its_connections_are_gone") {
        return Ok(());
    }
    let (lb, _vip) = persistent("3", &[])?;
    lb.lbctl_ok(&["--set", "0", "1", "0"])?;
    sole_real(&gets(&lb, 1)?)?;
    expect_template_gone_at_its_timeout(&lb)
}

/// The same when the client closes first: its FIN, then its ACK of the real server's FIN
/// (the last packet the director sees), must not keep the template past `-p` either.
#[test]
fn template_expires_with_its_timeout_after_the_client_closed() -> Result<()> {
    if !require_root("template_expires_with_its_timeout_after_the_client_closed") {
        return Ok(());
    }
    let (lb, _vip) = persistent("3", &[])?;
    lb.lbctl_ok(&["--set", "0", "1", "0"])?;
    let held = client::HoldConn::open(&lb.topo.client.ns, lb.topo.vip_sock(80), T)?;
    let source = held.local_addr()?;
    held.close()?;
    // The real server's FIN and the client's ACK of it.
    wait_for("the client's last ACK", Duration::from_secs(2), || {
        let closed = lb
            .topo
            .client
            .ns
            .run_in(|| std::fs::read_to_string("/proc/thread-self/net/tcp"))??
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().nth(1).zip(l.split_whitespace().nth(3)))
            .any(|(local, st)| local.ends_with(&format!(":{:04X}", source.port())) && st == "06");
        Ok(closed.then_some(()))
    })?;
    expect_template_gone_at_its_timeout(&lb)
}

/// With `-p 3` and a single connection just closed (FIN_WAIT 1 s): the listed template
/// timer is at most 3 s, the template is gone within a few seconds, and the client's next
/// connection is scheduled afresh.
fn expect_template_gone_at_its_timeout(lb: &LbTopology) -> Result<()> {
    let listed = templates(lb)?;
    wait_for(
        "the template expiring (-p 3, no connection left)",
        Duration::from_secs(8),
        || Ok(templates(lb)?.is_empty().then_some(())),
    )
    .with_context(|| format!("template right after the connection closed: {listed:?}"))?;
    let before = scheduled(lb)?;
    sole_real(&gets(lb, 1)?)?;
    assert_eq!(scheduled(lb)?, before + 1, "the client is scheduled afresh");
    assert!(
        listed.iter().all(|t| t.expire_secs <= 3),
        "the template's timer is -p: {listed:?}"
    );
    Ok(())
}
