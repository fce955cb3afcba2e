//! End to end: the live connection counts (docs/SEMANTICS.md §6.4) with real
//! TCP and UDP through the attached program. `lbctl -L -n` shows ActiveConn
//! and InActConn within a second of each change, with no lbctl or daemon
//! running in between; and wlc, ipvsadm's default, schedules on them in the
//! kernel's order.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use lb_tests::client::{self, HoldConn, Outcome, UdpFlow};
use lb_tests::lb::{LbTopology, wait_for};
use lb_tests::require_root;

const SRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");
const T: Duration = client::DEFAULT_TIMEOUT;
/// Expiry by the sweeper: the state's timeout, plus a sweep, plus slack for
/// a loaded machine.
const EXPIRY: Duration = Duration::from_secs(8);

/// (ActiveConn, InActConn) summed over the reals of the service whose line
/// in `lbctl -L -n` starts with `service`.
fn counts(lb: &LbTopology, service: &str) -> Result<(u64, u64)> {
    let out = lb.lbctl_ok(&["-L", "-n"])?;
    let mut inside = false;
    let (mut active, mut inactive) = (0, 0);
    for line in out.lines() {
        if let Some(real) = line.strip_prefix("  -> ") {
            if inside && !real.starts_with("RemoteAddress") {
                let cols: Vec<&str> = real.split_whitespace().collect();
                active += cols.get(3).context("ActiveConn")?.parse::<u64>()?;
                inactive += cols.get(4).context("InActConn")?.parse::<u64>()?;
            }
        } else {
            inside = line.starts_with(service);
        }
    }
    Ok((active, inactive))
}

fn wait_counts(lb: &LbTopology, service: &str, want: (u64, u64), limit: Duration) -> Result<()> {
    wait_for(&format!("{service} counts {want:?}"), limit, || {
        Ok((counts(lb, service)? == want).then_some(()))
    })
}

#[test]
fn listing_shows_live_counts_with_nothing_running() -> Result<()> {
    if !require_root("listing_shows_live_counts_with_nothing_running") {
        return Ok(());
    }
    let mut lb = LbTopology::new(2)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    lb.topo.start_servers(Path::new(SRV), 53, true)?;
    // FIN_WAIT and UDP entries expire after 2 s.
    lb.lbctl_ok(&["--set", "900", "2", "2"])?;
    let (tcp, udp) = (format!("{}:80", lb.topo.vip), format!("{}:53", lb.topo.vip));
    lb.lbctl_ok(&["-A", "-t", &tcp, "-s", "rr"])?;
    lb.lbctl_ok(&["-A", "-u", &udp, "-s", "rr"])?;
    for b in &lb.topo.backends {
        lb.lbctl_ok(&["-a", "-t", &tcp, "-r", &b.addr.to_string()])?;
        lb.lbctl_ok(&["-a", "-u", &udp, "-r", &b.addr.to_string()])?;
    }
    let (tcp_line, udp_line) = (format!("TCP  {tcp}"), format!("UDP  {udp}"));
    let ns = &lb.topo.client.ns;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(HoldConn::open(ns, lb.topo.vip_sock(80), T)?);
    }
    // Established: active. A second is the promise; the bound allows for a
    // loaded machine.
    wait_counts(&lb, &tcp_line, (3, 0), Duration::from_secs(3))?;
    // One closes: its entry is in FIN_WAIT, inactive...
    held.pop().context("held")?.close()?;
    wait_counts(&lb, &tcp_line, (2, 1), Duration::from_secs(3))?;
    // ...until the sweeper expires it, with nothing in user space running.
    wait_counts(&lb, &tcp_line, (2, 0), EXPIRY)?;
    // UDP flows are inactive, and expire the same way.
    let flow = UdpFlow::open(ns, lb.topo.vip_sock(53))?;
    assert!(matches!(flow.ask(T), Outcome::Answered(_)));
    wait_counts(&lb, &udp_line, (0, 1), Duration::from_secs(3))?;
    wait_counts(&lb, &udp_line, (0, 0), EXPIRY)?;
    // The held connections still work, and still count.
    for h in &mut held {
        assert!(matches!(h.ask(T), Outcome::Answered(_)));
    }
    assert_eq!(counts(&lb, &tcp_line)?, (2, 0));
    Ok(())
}

/// docs/SEMANTICS.md §5.4's example: R1 with weight 1, then R2 with weight 3
/// (the list is R2, R1), connections held open: overhead/weight decides, ties
/// go to the first in the list.
#[test]
fn wlc_schedules_on_the_live_counts_in_the_kernels_order() -> Result<()> {
    if !require_root("wlc_schedules_on_the_live_counts_in_the_kernels_order") {
        return Ok(());
    }
    let mut lb = LbTopology::new(2)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let vip = format!("{}:80", lb.topo.vip);
    // No -s: ipvsadm's default, wlc.
    lb.lbctl_ok(&["-A", "-t", &vip])?;
    let r1 = (
        lb.topo.backends[0].name.clone(),
        lb.topo.backends[0].addr.to_string(),
    );
    let r2 = (
        lb.topo.backends[1].name.clone(),
        lb.topo.backends[1].addr.to_string(),
    );
    lb.lbctl_ok(&["-a", "-t", &vip, "-r", &r1.1, "-w", "1"])?;
    lb.lbctl_ok(&["-a", "-t", &vip, "-r", &r2.1, "-w", "3"])?;
    assert!(
        lb.lbctl_ok(&["-L", "-n"])?
            .contains(&format!("TCP  {vip} wlc"))
    );
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(HoldConn::open(&lb.topo.client.ns, lb.topo.vip_sock(80), T)?);
    }
    let got: Vec<&str> = held.iter().map(|h| h.backend()).collect();
    let (a, b) = (r1.0.as_str(), r2.0.as_str());
    assert_eq!(got, [b, a, b, b, b, a, b, b]);
    Ok(())
}

/// An upgrade (attaching again without `--reset`) keeps the counts: they
/// live in the pinned `DEST_CONNS`, kept by whichever program runs, and the
/// new program's sweeper goes on expiring entries.
#[test]
fn counts_survive_a_reattach_and_the_sweeper_goes_on() -> Result<()> {
    if !require_root("counts_survive_a_reattach_and_the_sweeper_goes_on") {
        return Ok(());
    }
    let mut lb = LbTopology::new(2)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    lb.lbctl_ok(&["--set", "900", "2", "300"])?;
    let vip = format!("{}:80", lb.topo.vip);
    lb.lbctl_ok(&["-A", "-t", &vip, "-s", "rr"])?;
    for b in &lb.topo.backends {
        lb.lbctl_ok(&["-a", "-t", &vip, "-r", &b.addr.to_string()])?;
    }
    let line = format!("TCP  {vip}");
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(HoldConn::open(&lb.topo.client.ns, lb.topo.vip_sock(80), T)?);
    }
    wait_counts(&lb, &line, (4, 0), Duration::from_secs(3))?;
    lb.lbctl_ok(&["attach", "eth0"])?;
    assert_eq!(counts(&lb, &line)?, (4, 0));
    for h in &mut held {
        assert!(matches!(h.ask(T), Outcome::Answered(_)));
    }
    held.pop().context("held")?.close()?;
    wait_counts(&lb, &line, (3, 1), Duration::from_secs(3))?;
    wait_counts(&lb, &line, (3, 0), EXPIRY)?;
    Ok(())
}

/// Every scheduler through lbctl with real TCP: R1 (weight 1) added first,
/// then R2 (weight 2), so the list is R2, R1; four connections held open, so
/// each pick sees the ones before it in the live counts. The deterministic
/// ones give the kernel's sequence (docs/SEMANTICS.md §5); for the others
/// every connection is answered and counted.
#[test]
fn every_scheduler_on_real_tcp() -> Result<()> {
    if !require_root("every_scheduler_on_real_tcp") {
        return Ok(());
    }
    let mut lb = LbTopology::new(2)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    lb.lbctl_ok(&["--set", "900", "1", "300"])?;
    let vip = format!("{}:80", lb.topo.vip);
    let (r1, r2) = (
        lb.topo.backends[0].name.clone(),
        lb.topo.backends[1].name.clone(),
    );
    let (a1, a2) = (
        lb.topo.backends[0].addr.to_string(),
        lb.topo.backends[1].addr.to_string(),
    );
    let (x, y) = (r1.as_str(), r2.as_str());
    // (scheduler, the kernel's sequence, or None where it is not fixed).
    // (rr and wrr keep per-CPU state, so their order over real TCP depends
    // on the CPUs the packets land on; balancing.rs tests them.)
    let cases: [(&str, Option<[&str; 4]>); 12] = [
        ("lc", Some([y, x, y, x])),
        ("wlc", Some([y, x, y, y])),
        ("sed", Some([y, y, x, y])),
        ("nq", Some([y, x, y, y])),
        ("fo", Some([y, y, y, y])),
        ("ovf", Some([y, y, y, x])),
        ("sh", None),
        ("mh", None),
        ("dh", None),
        ("lblc", None),
        ("lblcr", None),
        ("twos", None),
    ];
    for (sched, want) in cases {
        lb.lbctl_ok(&["-A", "-t", &vip, "-s", sched])?;
        lb.lbctl_ok(&["-a", "-t", &vip, "-r", &a1, "-w", "1"])?;
        lb.lbctl_ok(&["-a", "-t", &vip, "-r", &a2, "-w", "2"])?;
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(HoldConn::open(&lb.topo.client.ns, lb.topo.vip_sock(80), T)?);
        }
        let got: Vec<&str> = held.iter().map(|h| h.backend()).collect();
        if let Some(want) = want {
            assert_eq!(got, want, "{sched}");
        }
        // One destination address (the VIP): dh always gives its bucket's
        // real; lblc keeps it until it is overloaded by lblc's rule (more
        // active conns than its weight), which takes at least two.
        if sched == "dh" {
            assert!(got.iter().all(|r| *r == got[0]), "{sched}: {got:?}");
        }
        if sched == "lblc" {
            assert_eq!(got[0], got[1], "{sched}: {got:?}");
        }
        let line = format!("TCP  {vip} {sched}");
        wait_counts(&lb, &line, (4, 0), Duration::from_secs(3))?;
        // Closed, the conns go inactive, then expire (FIN_WAIT: 1 s): the
        // next service starts from empty counts in the same slots (a
        // re-added real resumes its trashed slot, as in the kernel).
        drop(held);
        wait_counts(&lb, &line, (0, 0), EXPIRY)?;
        lb.lbctl_ok(&["-D", "-t", &vip])?;
    }
    Ok(())
}
