//! End to end: `lbctl daemon` at scale and under abuse (tests/src/daemon_lab.rs: the program in
//! generic mode on a veth, real servers that answer and real servers that do not answer ARP).
//!
//! - 1,000 virtual services of 16 real servers (8 answering, 8 silent) are installed at once
//!   for every check type (`on`, `off`, `connect`, `negotiate`): a real whose MAC is not known
//!   never holds back the others.
//! - Hundreds of connections held open on `--metrics` (sending a byte a second), with the
//!   daemon's open-file limit at 256: the checks keep succeeding (no false failover), a real
//!   server that goes down is still detected, and local errors are counted, never charged to
//!   a real server.
//! - A metrics address that is taken does not stop health checking; the endpoint comes up once
//!   the address is free.

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::{IpAddr, Ipv4Addr, TcpListener, TcpStream},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, ensure};
use lb_tests::{
    daemon_lab::{DaemonLab, DaemonProc},
    lb::wait_for,
    require_root,
};
use lb_user::model::ServiceId;
use nix::sys::resource::{Resource, getrlimit};
use socket2::{Domain, SockAddr, Socket, Type};

const SRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");

type Weights = BTreeMap<(ServiceId, IpAddr), u32>;

/// Waits until the table is exactly `want`.
fn wait_weights(
    lab: &DaemonLab,
    d: &mut DaemonProc,
    want: &Weights,
    limit: Duration,
) -> Result<()> {
    let mut last = Weights::new();
    wait_for("the table as expected", limit, || {
        d.running()?;
        last = lab.weights()?;
        Ok((last == *want).then_some(()))
    })
    .with_context(|| {
        let wrong: Vec<_> = want
            .iter()
            .filter(|(k, w)| last.get(k) != Some(w))
            .take(5)
            .collect();
        format!(
            "{} of {} entries differ (table has {}), e.g. {wrong:?}; log:\n{}",
            want.iter().filter(|(k, w)| last.get(k) != Some(w)).count(),
            want.len(),
            last.len(),
            tail(&d.log())
        )
    })
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The weights `lab.config(virtuals, …)` should end with: `answering` for the answering reals,
/// `silent` for the others.
fn expected(lab: &DaemonLab, virtuals: usize, answering: u32, silent: u32) -> Result<Weights> {
    let conf = lab
        .config(virtuals, "on", "", "")
        .replace("@LOG@", "/dev/null");
    let cfg = lb_user::daemon::config::parse(
        Path::new("t.cf"),
        &conf,
        &lb_user::resolve::Resolver::new(),
    )?;
    let mut w = Weights::new();
    for v in &cfg.virtuals {
        for r in &v.reals {
            let up = lab.answering.iter().any(|a| IpAddr::V4(*a) == r.id.addr);
            w.insert((v.id(), r.id.addr), if up { answering } else { silent });
        }
    }
    Ok(w)
}

#[test]
fn a_thousand_virtuals_of_sixteen_reals_are_installed_at_once_for_every_checktype() -> Result<()> {
    if !require_root(
        "a_thousand_virtuals_of_sixteen_reals_are_installed_at_once_for_every_checktype",
    ) {
        return Ok(());
    }
    let lab = DaemonLab::new(8, 8, Path::new(SRV), 80)?;
    const VIRTUALS: usize = 1000;
    // Generous for a loaded 2-CPU machine: the finding was 30 s of an empty table.
    let limit = Duration::from_secs(20);
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    let global = "checkinterval=1\nchecktimeout=1\nnegotiatetimeout=1\n";
    let extra = "\tservice=http\n\trequest=\"/\"\n\treceive=\"^rs\"\n";
    for (checktype, answering, silent) in [
        ("on", 1, 1),
        ("off", 0, 0),
        ("connect", 1, 0),
        ("negotiate", 1, 0),
    ] {
        let want = expected(&lab, VIRTUALS, answering, silent)?;
        ensure!(want.len() == VIRTUALS * 16);
        let conf = lab.config(VIRTUALS, checktype, global, extra);
        // A soft limit of open files below the hard one: raised at start.
        let mut d = lab.start_daemon(&conf, &[], Some((1024.min(hard), hard)))?;
        let started = Instant::now();
        wait_weights(&lab, &mut d, &want, limit)
            .with_context(|| format!("checktype={checktype}"))?;
        eprintln!(
            "checktype={checktype}: {} reals as expected after {:?}",
            want.len(),
            started.elapsed()
        );
        let log = d.log();
        ensure!(
            hard <= 1024
                || log.contains(&format!(
                    "Raised the limit of open files from 1024 to {hard}"
                )),
            "{}",
            tail(&log)
        );
        ensure!(
            !log.contains("Error"),
            "checktype={checktype}:\n{}",
            tail(&log)
        );
        // The 1,000 virtual services check their 16 reals alike: 16 checks.
        if checktype != "off" {
            d.wait_log("Checking 16000 real servers with 16 distinct checks", limit)
                .with_context(|| format!("checktype={checktype}"))?;
        }
        let st = d.stop()?;
        ensure!(st.success(), "checktype={checktype}: exit {st}");
        ensure!(lab.weights()?.is_empty(), "cleanstop left services");
    }
    Ok(())
}

/// GET /metrics from the director's namespace.
fn scrape(lab: &DaemonLab, port: u16) -> Result<String> {
    lab.lb.run_in(move || -> Result<String> {
        let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })?
}

/// One virtual service of the lab's two answering reals, connect checks every second, a
/// fallback server.
fn small_conf(lab: &DaemonLab) -> String {
    let (a, b) = (lab.answering[0], lab.answering[1]);
    format!(
        "checkinterval=1\nchecktimeout=1\nfailurecount=1\nlogfile=\"@LOG@\"\n\
         virtual=203.0.113.10:80\n\treal={a}:80 gate\n\treal={b}:80 gate\n\
         \tfallback=198.51.100.99:80 gate\n\tchecktype=connect\n"
    )
}

fn small_weights(lab: &DaemonLab, w: u32, fallback: bool) -> Weights {
    let id = ServiceId {
        proto: lb_user::model::Proto::Tcp,
        addr: Ipv4Addr::new(203, 0, 113, 10).into(),
        port: 80,
    };
    let mut m: Weights = lab
        .answering
        .iter()
        .map(|a| ((id, (*a).into()), w))
        .collect();
    if fallback {
        m.insert((id, Ipv4Addr::new(198, 51, 100, 99).into()), 1);
    }
    m
}

#[test]
fn connections_held_on_metrics_starve_no_check_and_fail_over_nothing() -> Result<()> {
    if !require_root("connections_held_on_metrics_starve_no_check_and_fail_over_nothing") {
        return Ok(());
    }
    // This process holds the clients' ends.
    lb_user::daemon::runner::raise_nofile_limit()?;
    let mut lab = DaemonLab::new(2, 0, Path::new(SRV), 80)?;
    const PORT: u16 = 9471;
    let port = format!("127.0.0.1:{PORT}");
    // A soft and hard limit of 256 open files: the daemon cannot raise it.
    let mut d = lab.start_daemon(&small_conf(&lab), &["--metrics", &port], Some((256, 256)))?;
    let slack = Duration::from_secs(10);
    wait_weights(&lab, &mut d, &small_weights(&lab, 1, false), slack)?;
    d.wait_log("Serving metrics on", slack)?;

    let before = d.log();
    // 600 clients (more than the daemon's 256 descriptors), each sending a byte a second.
    // Connected without waiting: those beyond the daemon's cap and the kernel's backlog keep
    // trying, as impatient scrapers would.
    let clients: Vec<TcpStream> = lab.lb.run_in(|| -> Result<Vec<TcpStream>> {
        let to = SockAddr::from(std::net::SocketAddr::from((Ipv4Addr::LOCALHOST, PORT)));
        (0..600)
            .map(|_| {
                let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
                s.set_nonblocking(true)?;
                match s.connect(&to) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                    Err(e) => return Err(e.into()),
                }
                Ok(TcpStream::from(s))
            })
            .collect()
    })??;
    let dribble = std::thread::spawn(move || {
        let mut clients = clients;
        for b in b"GET /metrics HTTP/1.0\r\n".iter().take(8) {
            for c in &mut clients {
                let _ = c.write_all(&[*b]);
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        clients
    });
    // Several check intervals under the load: every check still passes.
    std::thread::sleep(Duration::from_secs(4));
    ensure!(
        lab.weights()? == small_weights(&lab, 1, false),
        "a false failover: {:?}; log:\n{}",
        lab.weights()?,
        tail(&d.log())
    );
    let log = d.log();
    let during = &log[before.len()..];
    ensure!(
        !during.contains("Real server down") && !during.contains("fallback server"),
        "{}",
        tail(&log)
    );
    // A real failure is still detected while the clients hang on: both reals go down, the
    // fallback stands in.
    lab.stop_server()?;
    wait_weights(&lab, &mut d, &small_weights(&lab, 0, true), slack)?;
    let clients = dribble.join().expect("dribbling clients");
    drop(clients);
    lab.start_server(Path::new(SRV))?;
    wait_weights(&lab, &mut d, &small_weights(&lab, 1, false), slack)?;
    // The endpoint serves again, with the count of checks that could not be made.
    let m = wait_for("a scrape", Duration::from_secs(30), || {
        Ok(scrape(&lab, PORT).ok().filter(|m| m.contains("200 OK")))
    })?;
    ensure!(
        m.lines()
            .any(|l| l.starts_with("lbctl_check_local_errors_total ")),
        "{m}"
    );
    ensure!(
        m.lines()
            .any(|l| l.starts_with("lbctl_real_up{") && l.ends_with(" 1")),
        "{m}"
    );
    d.running()?;
    Ok(())
}

#[test]
fn a_taken_metrics_address_stops_no_check_and_is_bound_when_free() -> Result<()> {
    if !require_root("a_taken_metrics_address_stops_no_check_and_is_bound_when_free") {
        return Ok(());
    }
    let lab = DaemonLab::new(2, 0, Path::new(SRV), 80)?;
    const PORT: u16 = 9472;
    let squatter = lab
        .lb
        .run_in(|| TcpListener::bind((Ipv4Addr::LOCALHOST, PORT)))??;
    let mut d = lab.start_daemon(
        &small_conf(&lab),
        &["--metrics", &format!("127.0.0.1:{PORT}")],
        None,
    )?;
    let slack = Duration::from_secs(10);
    // Reals are checked and installed although the endpoint cannot be bound.
    wait_weights(&lab, &mut d, &small_weights(&lab, 1, false), slack)?;
    d.wait_log(
        &format!("Error: cannot serve metrics on 127.0.0.1:{PORT}"),
        slack,
    )?;
    drop(squatter);
    let retry = lb_user::daemon::metrics::BIND_RETRY;
    d.wait_log(
        &format!("Serving metrics on http://127.0.0.1:{PORT}/metrics"),
        retry + slack,
    )?;
    let m = scrape(&lab, PORT)?;
    ensure!(
        m.lines()
            .any(|l| l.starts_with("lbctl_real_up{") && l.ends_with(" 1")),
        "{m}"
    );
    Ok(())
}
