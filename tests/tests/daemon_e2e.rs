//! End to end: `lbctl daemon CONFIG` (the ldirectord-compatible health
//! checker) in the director's namespace, with real HTTP backends, driving
//! the XDP load balancer as ldirectord drives IPVS (docs/SEMANTICS.md §9.1).
//!
//! Every test writes an ldirectord.cf with short timings (`checkinterval=1`,
//! `checktimeout=1`), runs the real `lbctl daemon --foreground` and reads
//! the table with `lbctl -L -n`, the daemon's log and `lbctl daemon-status`.
//! The daemon is always stopped by a guard, even when a test fails.

use std::{
    collections::BTreeMap,
    io::{Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::Duration,
};

use anyhow::{Context as _, Result, bail, ensure};
use lb_tests::{
    Netns,
    client::{self, HoldConn, Outcome},
    lb::{LbTopology, lbctl_path},
    netns::{BpfPinDir, Scratch},
    require_root,
    topo::TopoConfig,
};
use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

const SRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");
/// What a test waits for on top of the bound it checks (process start,
/// scheduling on a busy 2-CPU machine).
const SLACK: Duration = Duration::from_secs(4);

use lb_tests::lb::wait_for as poll;

/// A running `lbctl daemon --foreground CONF` in the director's namespace.
/// Dropping it kills the daemon if a test did not stop it.
struct Daemon {
    child: Child,
    scratch: Scratch,
    pins: PathBuf,
}

impl Daemon {
    fn conf(&self) -> PathBuf {
        self.scratch.0.join("ldirectord.cf")
    }
    fn log_path(&self) -> PathBuf {
        self.scratch.0.join("daemon.log")
    }

    /// Writes `conf` (with `@LOG@` replaced by the log file) and starts the
    /// daemon on the topology's pin directory.
    fn start(ns: &Netns, pins: &Path, conf: &str, args: &[&str]) -> Result<Daemon> {
        Self::start_with(ns, pins, conf, args, None)
    }

    /// [`Daemon::start`]; with `dev_log`, the daemon runs in a mount
    /// namespace of its own (`unshare -m`) whose `/dev` is a tmpfs with the
    /// usual character devices and, as `/dev/log`, the socket `dev_log`
    /// bind-mounted. The namespace ends with the daemon, and nothing of it
    /// is seen outside.
    fn start_with(
        ns: &Netns,
        pins: &Path,
        conf: &str,
        args: &[&str],
        dev_log: Option<&Path>,
    ) -> Result<Daemon> {
        let scratch = Scratch::new("daemon")?;
        let log = scratch.0.join("daemon.log");
        let conf_path = scratch.0.join("ldirectord.cf");
        std::fs::write(
            &conf_path,
            conf.replace("@LOG@", &log.display().to_string()),
        )?;
        let stderr = std::fs::File::create(scratch.0.join("stderr"))?;
        let mut cmd = match dev_log {
            None => ns.nsenter_cmd(lbctl_path()?),
            Some(sock) => {
                let old = scratch.0.join("olddev");
                std::fs::create_dir(&old)?;
                let script = format!(
                    "set -e; mount --make-rprivate /; mount --rbind /dev '{old}'; \
                     mount -t tmpfs -o mode=755 lbt-dev /dev; \
                     for n in null zero full random urandom; do \
                       touch /dev/$n; mount --bind '{old}'/$n /dev/$n; done; \
                     umount -l '{old}'; touch /dev/log; mount --bind '{sock}' /dev/log; \
                     exec \"$@\"",
                    old = old.display(),
                    sock = sock.display(),
                );
                let mut cmd = Command::new("unshare");
                cmd.args(["-m", "--", "sh", "-c", &script, "sh"])
                    .arg("nsenter")
                    .arg(format!("--net={}", ns.path().display()))
                    .arg("--")
                    .arg(lbctl_path()?);
                cmd
            }
        };
        cmd.arg("daemon")
            .arg("--foreground")
            .args(args)
            .arg(&conf_path)
            .env("LB_PIN_PATH", pins)
            .env("LB_RUN_DIR", scratch.0.join("run"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let child = cmd.spawn().context("spawning lbctl daemon")?;
        Ok(Daemon {
            child,
            scratch,
            pins: pins.to_path_buf(),
        })
    }

    fn log(&self) -> String {
        let mut s = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(self.scratch.0.join("stderr")).unwrap_or_default());
        s
    }

    /// Waits until the log has a line containing `needle` (and the daemon
    /// still runs).
    fn wait_log(&mut self, needle: &str, limit: Duration) -> Result<()> {
        poll(&format!("log line {needle:?}"), limit, || {
            if let Some(st) = self.child.try_wait()? {
                bail!("the daemon exited ({st}); log:\n{}", self.log());
            }
            Ok(self.log().contains(needle).then_some(()))
        })
        .with_context(|| format!("log:\n{}", self.log()))
    }

    fn signal(&self, sig: Signal) -> Result<()> {
        kill(Pid::from_raw(self.child.id() as i32), sig).context("kill")
    }

    /// Rewrites the configuration (same `@LOG@` substitution).
    fn rewrite(&self, conf: &str) -> Result<()> {
        let tmp = self.scratch.0.join("new.cf");
        std::fs::write(
            &tmp,
            conf.replace("@LOG@", &self.log_path().display().to_string()),
        )?;
        std::fs::rename(&tmp, self.conf())?;
        Ok(())
    }

    /// `lbctl daemon-status` for this daemon: (exit code, text).
    fn status(&self) -> Result<(i32, String)> {
        let o = Command::new(lbctl_path()?)
            .arg("daemon-status")
            .env("LB_PIN_PATH", &self.pins)
            .env("LB_RUN_DIR", self.scratch.0.join("run"))
            .output()?;
        Ok((
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        ))
    }

    /// SIGTERM, then waits for the exit.
    fn stop(&mut self) -> Result<ExitStatus> {
        self.signal(Signal::SIGTERM)?;
        poll("daemon exit after SIGTERM", Duration::from_secs(15), || {
            Ok(self.child.try_wait()?)
        })
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Real servers and weights of the services in `lbctl -L -n`.
fn weights(lb: &LbTopology) -> Result<BTreeMap<String, u32>> {
    let text = lb.lbctl_ok(&["-L", "-n"])?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("  ->"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((f.get(1)?.to_string(), f.get(3)?.parse().ok()?))
        })
        .collect())
}

fn want(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
    pairs.iter().map(|(a, w)| (format!("{a}:80"), *w)).collect()
}

/// Waits until the table holds exactly `pairs`.
fn wait_weights(lb: &LbTopology, d: &Daemon, pairs: &[(&str, u32)], limit: Duration) -> Result<()> {
    let wanted = want(pairs);
    let mut last = BTreeMap::new();
    poll(&format!("weights {wanted:?}"), limit, || {
        last = weights(lb)?;
        Ok((last == wanted).then_some(()))
    })
    .with_context(|| format!("table has {last:?}; log:\n{}", d.log()))
}

fn addr(lb: &LbTopology, i: usize) -> String {
    lb.topo.backends[i].addr.to_string()
}

/// GET /metrics from inside the director's namespace.
fn scrape(lb: &LbTopology, port: u16) -> Result<String> {
    lb.topo.lb.ns.run_in(move || -> Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    })?
}

/// The status line of real server `a` in `daemon-status`, split in words.
fn status_words(text: &str, a: &str) -> Vec<String> {
    text.lines()
        .find(|l| l.contains(&format!("-> {a}:80")))
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

#[test]
fn failed_real_is_quiesced_then_restored_with_status_and_metrics() -> Result<()> {
    if !require_root("failed_real_is_quiesced_then_restored_with_status_and_metrics") {
        return Ok(());
    }
    let mut lb = LbTopology::new(3)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let (rs1, rs2, rs3) = (addr(&lb, 0), addr(&lb, 1), addr(&lb, 2));
    let vip = lb.topo.vip;
    // failurecount=2: down after two failed checks; HTTP negotiate checks.
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\nnegotiatetimeout=1\nfailurecount=2\nlogfile=\"@LOG@\"\n\
         virtual={vip}:80\n\treal={rs1}:80 gate\n\treal={rs2}:80 gate\n\treal={rs3}:80 gate\n\
         \tservice=http\n\tchecktype=negotiate\n\trequest=\"/\"\n\treceive=\"^rs[0-9]+$\"\n\tscheduler=rr\n"
    );
    let mut d = Daemon::start(
        &lb.topo.lb.ns,
        lb.pins.path(),
        &conf,
        &["--metrics", "127.0.0.1:9469"],
    )?;
    // Start: the service is made, the reals are added quiesced, and the
    // first checks bring them up.
    wait_weights(
        &lb,
        &d,
        &[(&rs1, 1), (&rs2, 1), (&rs3, 1)],
        Duration::from_secs(2) + SLACK,
    )?;
    let log = d.log();
    for line in [
        format!("Added virtual server: {vip}:80"),
        format!("Added quiescent real server: {rs2}:80 ({vip}:80)"),
        format!("Real server up: {rs2}:80 ({vip}:80): HTTP/1.0 200 OK"),
        format!("Restored real server: {rs2}:80 ({vip}:80) (Weight set to 1)"),
    ] {
        ensure!(log.contains(&line), "{line:?} missing from the log:\n{log}");
    }
    // One daemon per configuration and pin directory.
    let second = lb
        .topo
        .lb
        .ns
        .nsenter_cmd(lbctl_path()?)
        .args(["daemon", "--foreground"])
        .arg(d.conf())
        .env("LB_PIN_PATH", lb.pins.path())
        .env("LB_RUN_DIR", d.scratch.0.join("run"))
        .output()?;
    ensure!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    ensure!(err.contains("is already running"), "{err}");

    // rs2's server stops: quiesced within checkinterval × failurecount +
    // checktimeout (+ slack), and new clients avoid it.
    lb.topo.backends[1].stop_servers()?;
    wait_weights(
        &lb,
        &d,
        &[(&rs1, 1), (&rs2, 0), (&rs3, 1)],
        Duration::from_secs(2 + 1) + SLACK,
    )?;
    let log = d.log();
    for line in [
        format!("Soft failure real server: {rs2}:80 ({vip}:80) failure 1/2"),
        format!("Real server down: {rs2}:80 ({vip}:80)"),
        format!("Quiescent real server: {rs2}:80 ({vip}:80) (Weight set to 0)"),
    ] {
        ensure!(log.contains(&line), "{line:?} missing from the log:\n{log}");
    }
    let counts = lb.gets(80, 30)?;
    ensure!(
        !counts.contains_key("rs2"),
        "rs2 still gets new clients: {counts:?}"
    );
    ensure!(counts.values().sum::<usize>() == 30, "{counts:?}");

    let (code, text) = d.status()?;
    ensure!(code == 0, "daemon-status exit {code}: {text}");
    ensure!(text.contains("is running with pid"), "{text}");
    let w = status_words(&text, &rs2);
    ensure!(
        w.get(2).map(String::as_str) == Some("down")
            && w.get(3).map(String::as_str) == Some("weight"),
        "{text}"
    );
    ensure!(
        w.contains(&"0/1".to_string()) && w.contains(&"failed".to_string()),
        "{text}"
    );
    let w = status_words(&text, &rs1);
    ensure!(
        w.get(2).map(String::as_str) == Some("up") && w.contains(&"1/1".to_string()),
        "{text}"
    );

    let m = scrape(&lb, 9469)?;
    let svc = format!("service=\"TCP {vip}:80\"");
    for line in [
        format!("lbctl_real_up{{{svc},real=\"{rs2}:80\"}} 0"),
        format!("lbctl_real_up{{{svc},real=\"{rs1}:80\"}} 1"),
        format!("lbctl_real_weight{{{svc},real=\"{rs2}:80\"}} 0"),
    ] {
        ensure!(
            m.lines().any(|l| l == line),
            "{line:?} missing from the metrics:\n{m}"
        );
    }
    let conns: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix(&format!("lbctl_service_connections_total{{{svc}}} ")))
        .context("no service connection counter")?
        .parse()?;
    ensure!(conns >= 30, "{conns} connections counted:\n{m}");

    // rs2 comes back: its weight is restored and it gets clients again.
    lb.topo.backends[1].start_server(Path::new(SRV), 80, false)?;
    wait_weights(
        &lb,
        &d,
        &[(&rs1, 1), (&rs2, 1), (&rs3, 1)],
        Duration::from_secs(1 + 1) + SLACK,
    )?;
    ensure!(
        d.log()
            .contains(&format!("Real server up: {rs2}:80 ({vip}:80)"))
    );
    let counts = lb.gets(80, 30)?;
    ensure!(
        counts.get("rs2").copied().unwrap_or(0) > 0,
        "rs2 gets no clients: {counts:?}"
    );

    // SIGTERM with cleanstop=yes (the default): the service goes away.
    let st = d.stop()?;
    ensure!(st.success(), "daemon exit {st}; log:\n{}", d.log());
    let log = d.log();
    ensure!(
        log.contains(&format!("Purged virtual server (stop): {vip}:80")),
        "{log}"
    );
    ensure!(
        log.contains("lbctl daemon terminated on signal: TERM"),
        "{log}"
    );
    ensure!(weights(&lb)?.is_empty());
    ensure!(!lb.lbctl_ok(&["-L", "-n"])?.contains(&format!("{vip}:80")));
    let (code, text) = d.status()?;
    ensure!(
        code == 3 && text.contains("lbctl daemon is stopped"),
        "{code}: {text}"
    );
    Ok(())
}

#[test]
fn quiescent_no_removes_reals_and_the_fallback_stands_in() -> Result<()> {
    if !require_root("quiescent_no_removes_reals_and_the_fallback_stands_in") {
        return Ok(());
    }
    let mut lb = LbTopology::new(3)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let (rs1, rs2, rs3) = (addr(&lb, 0), addr(&lb, 1), addr(&lb, 2));
    let vip = lb.topo.vip;
    let scratch = Scratch::new("daemon")?;
    let fb_log = scratch.0.join("fallback.log");
    // rs3 is the fallback (the sorry server), not a real server.
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\nquiescent=no\ncleanstop=no\nlogfile=\"@LOG@\"\n\
         fallbackcommand=\"echo >>{} \"\n\
         virtual={vip}:80\n\treal={rs1}:80 gate\n\treal={rs2}:80 gate\n\tfallback={rs3}:80 gate\n\
         \tchecktype=connect\n",
        fb_log.display()
    );
    let mut d = Daemon::start(&lb.topo.lb.ns, lb.pins.path(), &conf, &[])?;
    let limit = Duration::from_secs(2) + SLACK;
    wait_weights(&lb, &d, &[(&rs1, 1), (&rs2, 1)], limit)?;

    // quiescent=no: a failed real server is deleted.
    lb.topo.backends[0].stop_servers()?;
    wait_weights(&lb, &d, &[(&rs2, 1)], limit)?;
    ensure!(
        d.log()
            .contains(&format!("Deleted real server: {rs1}:80 ({vip}:80)"))
    );
    ensure!(lb.gets(80, 10)? == BTreeMap::from([("rs2".to_string(), 10)]));

    // All down: the fallback comes in with weight 1 and takes the clients.
    lb.topo.backends[1].stop_servers()?;
    wait_weights(&lb, &d, &[(&rs3, 1)], limit)?;
    ensure!(d.log().contains(&format!(
        "Added fallback server: {rs3}:80 ({vip}:80) (Weight set to 1)"
    )));
    ensure!(lb.gets(80, 10)? == BTreeMap::from([("rs3".to_string(), 10)]));
    let (_, text) = d.status()?;
    ensure!(
        text.contains(&format!("-> {rs3}:80")) && text.contains("fallback in use (weight 1)"),
        "{text}"
    );

    // One real server back: it is added again and the fallback leaves.
    lb.topo.backends[0].start_server(Path::new(SRV), 80, false)?;
    wait_weights(&lb, &d, &[(&rs1, 1)], limit)?;
    let log = d.log();
    ensure!(
        log.contains(&format!(
            "Added real server: {rs1}:80 ({vip}:80) (Weight set to 1)"
        )),
        "{log}"
    );
    ensure!(
        log.contains(&format!("Deleted fallback server: {rs3}:80 ({vip}:80)")),
        "{log}"
    );
    ensure!(lb.gets(80, 10)? == BTreeMap::from([("rs1".to_string(), 10)]));

    // fallbackcommand ran with start/stop at each change, in order (at
    // start every real is down until its first check).
    let runs = poll("fallback command runs", limit, || {
        let t = std::fs::read_to_string(&fb_log).unwrap_or_default();
        Ok((t.lines().count() >= 4).then_some(t))
    })?;
    ensure!(
        runs.lines().collect::<Vec<_>>() == ["start", "stop", "start", "stop"],
        "{runs}"
    );

    // cleanstop=no: the dataplane keeps forwarding after the daemon exits.
    let st = d.stop()?;
    ensure!(st.success(), "daemon exit {st}");
    ensure!(!d.log().contains("Purged virtual server"));
    ensure!(weights(&lb)? == want(&[(&rs1, 1)]));
    ensure!(lb.gets(80, 5)? == BTreeMap::from([("rs1".to_string(), 5)]));
    Ok(())
}

/// §9.1: with quiescent=yes, a client whose persistence template points to
/// a failed (quiesced) real server keeps going there while
/// `expire_quiescent_template=0`, and is rescheduled with `=1`.
fn persistent_client_follows_template(expire_quiescent_template: u32) -> Result<()> {
    let mut lb = LbTopology::new(2)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    // The health checks go to a separate port, so that the service itself
    // keeps answering after its check fails.
    let health: Vec<_> = lb
        .topo
        .backends
        .iter_mut()
        .map(|b| b.start_server(Path::new(SRV), 8080, false))
        .collect::<Result<_>>()?;
    lb.lbctl_ok(&[
        "sysctl",
        &format!("expire_quiescent_template={expire_quiescent_template}"),
    ])?;
    let (rs1, rs2) = (addr(&lb, 0), addr(&lb, 1));
    let vip = lb.topo.vip;
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\nlogfile=\"@LOG@\"\n\
         virtual={vip}:80\n\treal={rs1}:80 gate\n\treal={rs2}:80 gate\n\
         \tchecktype=connect\n\tcheckport=8080\n\tpersistent=300\n\tscheduler=rr\n"
    );
    let d = Daemon::start(&lb.topo.lb.ns, lb.pins.path(), &conf, &[])?;
    let limit = Duration::from_secs(2) + SLACK;
    wait_weights(&lb, &d, &[(&rs1, 1), (&rs2, 1)], limit)?;

    // The client gets a template to one real server and sticks to it.
    let client = lb.sticky_client(80)?;
    let failed = addr(&lb, client.index);

    // Its check fails: the daemon quiesces it.
    health[client.index].kill()?;
    let remaining = addr(&lb, 1 - client.index);
    wait_weights(&lb, &d, &[(&failed, 0), (&remaining, 1)], limit)?;

    let rows = client.after_quiesce(&lb, expire_quiescent_template)?;
    if expire_quiescent_template != 0 {
        // A new template now points to the real server that is up.
        ensure!(
            rows.lines().any(|l| l.contains(&format!("{vip}:80"))
                && l.contains(":0 ")
                && l.ends_with(&format!("{remaining}:80"))),
            "no template to {remaining}:\n{rows}"
        );
    }
    Ok(())
}

#[test]
fn persistent_client_keeps_a_quiesced_real_with_expire_quiescent_template_0() -> Result<()> {
    if !require_root("persistent_client_keeps_a_quiesced_real_with_expire_quiescent_template_0") {
        return Ok(());
    }
    persistent_client_follows_template(0)
}

#[test]
fn persistent_client_is_rescheduled_with_expire_quiescent_template_1() -> Result<()> {
    if !require_root("persistent_client_is_rescheduled_with_expire_quiescent_template_1") {
        return Ok(());
    }
    persistent_client_follows_template(1)
}

#[test]
fn reload_applies_only_the_difference() -> Result<()> {
    if !require_root("reload_applies_only_the_difference") {
        return Ok(());
    }
    let mut lb = LbTopology::new(3)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let (rs1, rs2, rs3) = (addr(&lb, 0), addr(&lb, 1), addr(&lb, 2));
    let vip = lb.topo.vip;
    let conf = |w3: Option<u32>, autoreload: &str| {
        let mut c = format!(
            "checkinterval=1\nchecktimeout=1\nautoreload={autoreload}\nlogfile=\"@LOG@\"\n\
             virtual={vip}:80\n\treal={rs1}:80 gate\n\treal={rs2}:80 gate\n"
        );
        if let Some(w) = w3 {
            c.push_str(&format!("\treal={rs3}:80 gate {w}\n"));
        }
        c.push_str("\tchecktype=connect\n\tscheduler=wrr\n");
        c
    };
    let mut d = Daemon::start(&lb.topo.lb.ns, lb.pins.path(), &conf(Some(1), "no"), &[])?;
    let limit = Duration::from_secs(2) + SLACK;
    wait_weights(&lb, &d, &[(&rs1, 1), (&rs2, 1), (&rs3, 1)], limit)?;

    // Held connections on every real server.
    let mut held: Vec<HoldConn> = Vec::new();
    for _ in 0..40 {
        held.push(HoldConn::open(
            &lb.topo.client.ns,
            lb.topo.vip_sock(80),
            client::DEFAULT_TIMEOUT,
        )?);
        let on = |n: &str| held.iter().any(|h| h.backend() == n);
        if on("rs1") && on("rs2") && on("rs3") {
            break;
        }
    }
    let names: Vec<String> = held.iter().map(|h| h.backend().to_string()).collect();
    ensure!(
        ["rs1", "rs2", "rs3"]
            .iter()
            .all(|n| names.iter().any(|x| x == n)),
        "{names:?}"
    );
    let still_answered = |held: &mut Vec<HoldConn>, skip: &str| -> Result<()> {
        for h in held.iter_mut().filter(|h| h.backend() != skip) {
            let name = h.backend().to_string();
            let o = h.ask(client::DEFAULT_TIMEOUT);
            ensure!(
                o == Outcome::Answered(name.clone()),
                "held connection to {name}: {o}"
            );
        }
        Ok(())
    };

    // SIGHUP after changing one real server's weight: only that changes.
    let before = d.log();
    d.rewrite(&conf(Some(3), "no"))?;
    d.signal(Signal::SIGHUP)?;
    wait_weights(&lb, &d, &[(&rs1, 1), (&rs2, 1), (&rs3, 3)], limit)?;
    d.wait_log("Reloaded configuration", limit)?;
    let log = d.log();
    let new = &log[before.len().min(log.len())..];
    ensure!(
        new.contains("Reloading lbctl daemon config on signal"),
        "{new}"
    );
    ensure!(
        new.contains(&format!(
            "Restored real server: {rs3}:80 ({vip}:80) (Weight set to 3)"
        )),
        "{new}"
    );
    for absent in [
        "Changed virtual server",
        "Purged",
        "Deleted",
        "Added",
        "Quiescent",
    ] {
        ensure!(
            !new.contains(absent),
            "{absent:?} after a one-real reload:\n{new}"
        );
    }
    still_answered(&mut held, "")?;

    // A bad file is refused with its line; the old configuration stays.
    d.rewrite(&format!("{}\treal={rs3}:80 nat\n", conf(Some(3), "no")))?;
    d.signal(Signal::SIGHUP)?;
    let bad_line = conf(Some(3), "no").lines().count() + 1;
    d.wait_log(
        &format!(
            "{}:{bad_line}: forward method must be gate, masq or ipip",
            d.conf().display()
        ),
        limit,
    )?;
    ensure!(d.log().contains("keeping the old configuration"));
    ensure!(weights(&lb)? == want(&[(&rs1, 1), (&rs2, 1), (&rs3, 3)]));
    still_answered(&mut held, "")?;

    // autoreload=yes (loaded with SIGHUP), then a change on disk without a
    // signal: rs3 leaves the configuration and is purged; the other held
    // connections keep working.
    d.rewrite(&conf(Some(3), "yes"))?;
    d.signal(Signal::SIGHUP)?;
    poll("second successful reload", limit, || {
        Ok((d.log().matches("Reloaded configuration").count() >= 2).then_some(()))
    })?;
    d.rewrite(&conf(None, "yes"))?;
    wait_weights(&lb, &d, &[(&rs1, 1), (&rs2, 1)], limit)?;
    let log = d.log();
    ensure!(
        log.contains("has changed on disk - reread new configuration"),
        "{log}"
    );
    ensure!(
        log.contains(&format!("Purged real server (reload): {rs3}:80 ({vip}:80)")),
        "{log}"
    );
    still_answered(&mut held, "rs3")?;
    Ok(())
}

#[test]
fn a_bad_configuration_changes_nothing() -> Result<()> {
    if !require_root("a_bad_configuration_changes_nothing") {
        return Ok(());
    }
    let ns = Netns::new("dcfg")?;
    let pins = BpfPinDir::new()?;
    let scratch = Scratch::new("daemon")?;
    let lbctl = |args: &[&str]| -> Result<std::process::Output> {
        Ok(ns
            .nsenter_cmd(lbctl_path()?)
            .args(args)
            .env("LB_PIN_PATH", pins.path())
            .env("LB_RUN_DIR", scratch.0.join("run"))
            .stdin(Stdio::null())
            .output()?)
    };
    let o = lbctl(&["-A", "-t", "203.0.113.10:80", "-s", "rr"])?;
    ensure!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let saved = lbctl(&["-S", "-n"])?.stdout;
    let conf = scratch.0.join("bad.cf");
    let cases = [
        (
            "virtual=203.0.113.10:80\n\treal=198.51.100.11 gate\n\treal=198.51.100.12 nat\n",
            3,
            "forward method must be gate, masq or ipip",
        ),
        (
            "checkinterval=1\nemail=x\n",
            2,
            "Unknown command \"email=x\"",
        ),
        (
            "virtual=203.0.113.20:80\n\treal=198.51.100.11 gate\n\tscheduler=bogus\n",
            3,
            "scheduler bogus: no such scheduler",
        ),
    ];
    for (text, line, msg) in cases {
        std::fs::write(&conf, text)?;
        let o = lbctl(&["daemon", "--foreground", conf.to_str().context("path")?])?;
        let err = String::from_utf8_lossy(&o.stderr);
        ensure!(!o.status.success(), "{text}: accepted");
        ensure!(
            err.contains(&format!("{}:{line}: {msg}", conf.display())),
            "{text}: {err}"
        );
        ensure!(
            lbctl(&["-S", "-n"])?.stdout == saved,
            "{text}: the table changed"
        );
    }
    // A public metrics address is refused before anything is done.
    std::fs::write(
        &conf,
        "virtual=203.0.113.20:80\n\treal=198.51.100.11 gate\n",
    )?;
    let o = lbctl(&[
        "daemon",
        "--metrics",
        "0.0.0.0:9469",
        conf.to_str().context("path")?,
    ])?;
    ensure!(!o.status.success());
    ensure!(String::from_utf8_lossy(&o.stderr).contains("--metrics-public"));
    ensure!(lbctl(&["-S", "-n"])?.stdout == saved);
    // Nothing runs: daemon-status says so (ldirectord's exit status 3).
    let o = lbctl(&["daemon-status"])?;
    ensure!(o.status.code() == Some(3), "{o:?}");
    Ok(())
}

/// The XDP program's own messages (aya-log) reach the daemon's log: a real
/// server whose MAC nobody knows is reported once by the program, when it
/// first has to forward to it.
#[test]
fn messages_of_the_xdp_program_reach_the_daemon_log() -> Result<()> {
    if !require_root("messages_of_the_xdp_program_reach_the_daemon_log") {
        return Ok(());
    }
    let mut lb = LbTopology::new(1)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let rs1 = addr(&lb, 0);
    let vip = lb.topo.vip;
    // 198.51.100.99 is on the segment but no host answers ARP for it.
    let ghost = "198.51.100.99";
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\ncleanstop=yes\nlogfile=\"@LOG@\"\n\
         virtual={vip}:80\n\treal={rs1}:80 gate\n\treal={ghost}:80 gate\n\tchecktype=on\n\
         \tscheduler=rr\n"
    );
    let mut d = Daemon::start(&lb.topo.lb.ns, lb.pins.path(), &conf, &[])?;
    let limit = Duration::from_secs(3) + SLACK;
    wait_weights(&lb, &d, &[(&rs1, 1), (ghost, 1)], limit)?;
    // rr sends every other new connection to the ghost: the program tries
    // the kernel's neighbour table, finds nothing and drops (and says so).
    for _ in 0..4 {
        let _ = client::http_try(
            &lb.topo.client.ns,
            lb.topo.vip_sock(80),
            Duration::from_millis(300),
        )?;
    }
    d.wait_log(
        &format!("xdp warn: real server {ghost}: no neighbour entry"),
        limit,
    )?;
    let counters = lb.lbctl_ok(&["counters"])?;
    ensure!(
        counters
            .lines()
            .any(|l| l.starts_with("drop_no_neigh") && !l.contains(" 0 ")),
        "{counters}"
    );
    // Once per real server, not once per packet.
    let lines = d.log().matches("no neighbour entry").count();
    ensure!(lines == 1, "logged {lines} times:\n{}", d.log());
    Ok(())
}

/// The datagrams of a test's own syslog socket, as text.
struct SyslogSink {
    sock: std::os::unix::net::UnixDatagram,
    got: Vec<String>,
}

impl SyslogSink {
    fn bind(path: &Path) -> Result<SyslogSink> {
        let sock = std::os::unix::net::UnixDatagram::bind(path)?;
        sock.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok(SyslogSink {
            sock,
            got: Vec::new(),
        })
    }

    /// Waits for a message that ends with `text`; returns it whole.
    fn wait(&mut self, text: &str, limit: Duration) -> Result<String> {
        let mut buf = vec![0u8; 4096];
        poll(&format!("syslog message {text:?}"), limit, || {
            while let Ok(n) = self.sock.recv(&mut buf) {
                self.got
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            Ok(self.got.iter().find(|m| m.ends_with(text)).cloned())
        })
        .with_context(|| format!("received:\n{}", self.got.join("\n")))
    }
}

/// `logfile="local0"` (ldirectord's syslog form): every line is an RFC 3164
/// datagram to `/dev/log`, `<PRI>TIMESTAMP ldirectord[PID]: MESSAGE`, at
/// facility local0 and priority info (the XDP program's warning at
/// warning), and nothing is written to standard error. The daemon runs in
/// a mount namespace whose `/dev/log` is the test's own socket.
#[test]
fn logfile_facility_logs_to_syslog() -> Result<()> {
    if !require_root("logfile_facility_logs_to_syslog") {
        return Ok(());
    }
    let mut lb = LbTopology::new(1)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let rs1 = addr(&lb, 0);
    let vip = lb.topo.vip;
    let ghost = "198.51.100.99";
    let had_dev_log = Path::new("/dev/log").exists();
    let sock_dir = Scratch::new("daemon")?;
    let sock_path = sock_dir.0.join("log.sock");
    let mut sink = SyslogSink::bind(&sock_path)?;
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\nnegotiatetimeout=1\ncleanstop=yes\nlogfile=\"LOCAL0\"\n\
         virtual={vip}:80\n\treal={rs1}:80 gate\n\treal={ghost}:80 gate\n\tservice=http\n\
         \tchecktype=on\n\tscheduler=rr\n"
    );
    let mut d = Daemon::start_with(&lb.topo.lb.ns, lb.pins.path(), &conf, &[], Some(&sock_path))?;
    let pid = d.child.id();
    let limit = Duration::from_secs(3) + SLACK;
    // local0 (16) × 8 + info (6) = 134; + warning (4) = 132.
    let head = |pri: u32, m: &str| -> Result<()> {
        let (pri_part, rest) = m.split_once('>').context("no <PRI>")?;
        ensure!(pri_part == format!("<{pri}"), "priority of {m:?}");
        // "Mmm dd hh:mm:ss ldirectord[PID]: ..."
        let words: Vec<&str> = rest.splitn(5, ' ').collect();
        ensure!(words.len() == 5, "{m:?}");
        ensure!(
            words[0].len() == 3 && words[2].len() == 8,
            "timestamp of {m:?}"
        );
        ensure!(
            words[3] == format!("ldirectord[{pid}]:"),
            "identity of {m:?}"
        );
        Ok(())
    };
    let m = sink.wait(&format!("Added virtual server: {vip}:80"), limit)?;
    head(134, &m)?;
    wait_weights(&lb, &d, &[(&rs1, 1), (ghost, 1)], limit)?;
    for _ in 0..4 {
        let _ = client::http_try(
            &lb.topo.client.ns,
            lb.topo.vip_sock(80),
            Duration::from_millis(300),
        )?;
    }
    let m = sink.wait(
        &format!("xdp warn: real server {ghost}: no neighbour entry, its packets are dropped until the kernel resolves it"),
        limit,
    )?;
    head(132, &m)?;
    d.stop()?;
    let m = sink.wait("lbctl daemon terminated on signal: TERM", limit)?;
    head(134, &m)?;
    let stderr = std::fs::read_to_string(d.scratch.0.join("stderr"))?;
    ensure!(stderr.is_empty(), "standard error has:\n{stderr}");
    // The namespace's /dev went with the daemon: the host's is as it was.
    ensure!(Path::new("/dev/log").exists() == had_dev_log);
    Ok(())
}

/// Waits until the table's real servers (any port) have exactly `pairs`.
fn wait_weights_on(
    lb: &LbTopology,
    d: &Daemon,
    port: u16,
    pairs: &[(&str, u32)],
    limit: Duration,
) -> Result<()> {
    let wanted: BTreeMap<String, u32> = pairs
        .iter()
        .map(|(a, w)| (format!("{a}:{port}"), *w))
        .collect();
    let mut last = BTreeMap::new();
    poll(&format!("weights {wanted:?}"), limit, || {
        last = weights(lb)?;
        Ok((last == wanted).then_some(()))
    })
    .with_context(|| format!("table has {last:?}; log:\n{}", d.log()))
}

/// `service=https` (ldirectord's default for port 443): the HTTP check over
/// TLS against self-signed certificates (not verified, as ldirectord's
/// LWP), SNI from `virtualhost`. A real whose HTTPS answer stops matching
/// `receive` is quiesced, and restored when it matches again.
#[test]
fn https_checks_quiesce_and_restore_with_sni() -> Result<()> {
    if !require_root("https_checks_quiesce_and_restore_with_sni") {
        return Ok(());
    }
    let lb = LbTopology::new(2)?;
    let (rs1, rs2) = (addr(&lb, 0), addr(&lb, 1));
    let vip = lb.topo.vip;
    let files = Scratch::new("daemon")?;
    let body = files.0.join("rs1-body");
    let mut servers = Vec::new();
    for (i, b) in lb.topo.backends.iter().enumerate() {
        let sni = files.0.join(format!("sni-{i}"));
        let mut argv = vec![
            SRV.to_string(),
            "--name".into(),
            format!("rs{}", i + 1),
            "--listen".into(),
            "0.0.0.0:443".into(),
            "--tls".into(),
            "--sni-log".into(),
            sni.display().to_string(),
        ];
        if i == 0 {
            argv.extend(["--body-file".into(), body.display().to_string()]);
        }
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        servers.push(b.ns.spawn(&argv)?);
    }
    let conf = format!(
        "checkinterval=1\nnegotiatetimeout=2\nfailurecount=1\nlogfile=\"@LOG@\"\n\
         virtual={vip}:443\n\treal={rs1}:443 gate\n\treal={rs2}:443 gate\n\
         \tvirtualhost=www.example.org\n\trequest=\"/health\"\n\treceive=\"^rs[0-9]+$\"\n\
         \tscheduler=rr\n\tquiescent=yes\n"
    );
    let mut d = Daemon::start(&lb.topo.lb.ns, lb.pins.path(), &conf, &[])?;
    let limit = Duration::from_secs(3) + SLACK;
    wait_weights_on(&lb, &d, 443, &[(&rs1, 1), (&rs2, 1)], limit)?;
    d.wait_log(
        &format!("Real server up: {rs1}:443 ({vip}:443): HTTP/1.0 200 OK"),
        limit,
    )?;
    // rs1 answers something else: quiesced.
    std::fs::write(&body, "maintenance\n")?;
    wait_weights_on(&lb, &d, 443, &[(&rs1, 0), (&rs2, 1)], limit)?;
    d.wait_log(&format!("Real server down: {rs1}:443 ({vip}:443)"), limit)?;
    ensure!(
        d.log().contains("does not match receive"),
        "log:\n{}",
        d.log()
    );
    // And again what receive wants: restored.
    std::fs::write(&body, "rs1\n")?;
    wait_weights_on(&lb, &d, 443, &[(&rs1, 1), (&rs2, 1)], limit)?;
    d.wait_log(
        &format!("Restored real server: {rs1}:443 ({vip}:443) (Weight set to 1)"),
        limit,
    )?;
    d.stop()?;
    // Every handshake named the virtualhost.
    for i in 0..2 {
        let seen = std::fs::read_to_string(files.0.join(format!("sni-{i}")))?;
        ensure!(!seen.is_empty(), "rs{} saw no TLS connection", i + 1);
        ensure!(
            seen.lines().all(|l| l == "www.example.org"),
            "rs{} saw SNI {seen:?}",
            i + 1
        );
    }
    drop(servers);
    Ok(())
}

/// (Uthreshold, Lthreshold) of each real in `-L -n --thresholds`.
fn thresholds(lb: &LbTopology) -> Result<BTreeMap<String, (String, String)>> {
    let text = lb.lbctl_ok(&["-L", "-n", "--thresholds"])?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("  ->"))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some((
                f.get(1)?.to_string(),
                (f.get(2)?.to_string(), f.get(3)?.to_string()),
            ))
        })
        .collect())
}

/// ldirectord's `l:`/`u:` (§9.1, §5.8): passed as `-y`/`-x` when the real
/// is up, gone while it is quiesced (`-e -w 0` alone), back when restored.
#[test]
fn real_thresholds_follow_the_configuration_as_ldirectord_passes_them() -> Result<()> {
    if !require_root("real_thresholds_follow_the_configuration_as_ldirectord_passes_them") {
        return Ok(());
    }
    let mut lb = LbTopology::new(2)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let (rs1, rs2) = (addr(&lb, 0), addr(&lb, 1));
    let vip = lb.topo.vip;
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\nquiescent=yes\ncleanstop=no\nlogfile=\"@LOG@\"\n\
         virtual={vip}:80\n\treal={rs1}:80 gate 2 l:10 u:100\n\treal={rs2}:80 gate\n\
         \tchecktype=connect\n"
    );
    let mut d = Daemon::start(&lb.topo.lb.ns, lb.pins.path(), &conf, &[])?;
    let limit = Duration::from_secs(2) + SLACK;
    let t = |u: &str, l: &str| (u.to_owned(), l.to_owned());
    wait_weights(&lb, &d, &[(&rs1, 2), (&rs2, 1)], limit)?;
    let got = thresholds(&lb)?;
    ensure!(
        got == BTreeMap::from([
            (format!("{rs1}:80"), t("100", "10")),
            (format!("{rs2}:80"), t("0", "0"))
        ]),
        "{got:?}"
    );
    lb.topo.backends[0].stop_servers()?;
    wait_weights(&lb, &d, &[(&rs1, 0), (&rs2, 1)], limit)?;
    ensure!(thresholds(&lb)?[&format!("{rs1}:80")] == t("0", "0"));
    lb.topo.backends[0].start_server(Path::new(SRV), 80, false)?;
    wait_weights(&lb, &d, &[(&rs1, 2), (&rs2, 1)], limit)?;
    ensure!(thresholds(&lb)?[&format!("{rs1}:80")] == t("100", "10"));
    let st = d.stop()?;
    ensure!(st.success(), "daemon exit {st}");
    Ok(())
}

/// ldirectord's `virtual=MARK`: the daemon makes `-A -f MARK` and its
/// reals (port 0: their own port), checks them on `checkport`, quiesces a
/// failed one; traffic classified by an `lbctl fwmark` rule follows.
#[test]
fn a_fwmark_virtual_is_checked_and_quiesced() -> Result<()> {
    if !require_root("a_fwmark_virtual_is_checked_and_quiesced") {
        return Ok(());
    }
    let mut lb = LbTopology::new(2)?;
    let servers = lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let (rs1, rs2) = (addr(&lb, 0), addr(&lb, 1));
    lb.mark_tcp(80, 1)?;
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\nlogfile=\"@LOG@\"\n\
         virtual=1\n\treal={rs1} gate\n\treal={rs2} gate\n\
         \tchecktype=connect\n\tcheckport=80\n\tscheduler=rr\n"
    );
    let d = Daemon::start(&lb.topo.lb.ns, lb.pins.path(), &conf, &[])?;
    let limit = Duration::from_secs(2) + SLACK;
    let at0 = |pairs: &[(&str, u32)]| -> BTreeMap<String, u32> {
        pairs.iter().map(|(a, w)| (format!("{a}:0"), *w)).collect()
    };
    let wait = |pairs: &[(&str, u32)]| -> Result<()> {
        let wanted = at0(pairs);
        poll(&format!("weights {wanted:?}"), limit, || {
            Ok((weights(&lb)? == wanted).then_some(()))
        })
        .with_context(|| format!("log:\n{}", d.log()))
    };
    wait(&[(&rs1, 1), (&rs2, 1)])?;
    let listed = lb.lbctl_ok(&["-L", "-n"])?;
    ensure!(listed.contains("\nFWM  1 rr\n"), "{listed}");
    ensure!(lb.gets(80, 2)?.values().sum::<usize>() == 2);
    // rs1's service (its check port) stops: quiesced, its traffic goes on.
    servers[0].kill()?;
    wait(&[(&rs1, 0), (&rs2, 1)])?;
    ensure!(lb.gets(80, 3)? == BTreeMap::from([("rs2".to_string(), 3)]));
    Ok(())
}

/// IPv6 end to end (`virtual6=`, `real6=`, `fallback6=`), on the dual-stack
/// topology: the daemon checks the reals over IPv6 (HTTP, `Host:
/// [2001:db8::12]`), a failing IPv6 real is quiesced and restored while
/// real IPv6 clients go through the XDP director, the log, `daemon-status`
/// and the metrics name it `[2001:db8::12]:80`, and with every real down
/// the IPv6 fallback takes the clients.
#[test]
fn ipv6_virtual_quiesces_restores_and_falls_back() -> Result<()> {
    if !require_root("ipv6_virtual_quiesces_restores_and_falls_back") {
        return Ok(());
    }
    let mut lb = LbTopology::with_config(&TopoConfig::new(3).dual_stack())?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let a6 = |i: usize| format!("[{}]", lb.topo.backends[i].addr6.expect("dual stack"));
    let (rs1, rs2, rs3) = (a6(0), a6(1), a6(2));
    let vip = format!("[{}]", lb.topo.vip6.expect("dual stack"));
    let vip_sock = lb.topo.vip6_sock(80);
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\nnegotiatetimeout=1\nfailurecount=2\nlogfile=\"@LOG@\"\n\
         virtual6={vip}:80\n\treal6={rs1}:80 gate\n\treal6={rs2}:80 gate\n\tfallback6={rs3}:80 gate\n\
         \tservice=http\n\tchecktype=negotiate\n\trequest=\"/\"\n\treceive=\"^rs[0-9]+$\"\n\
         \tscheduler=rr\n\tquiescent=yes\n"
    );
    let mut d = Daemon::start(
        &lb.topo.lb.ns,
        lb.pins.path(),
        &conf,
        &["--metrics", "127.0.0.1:9471"],
    )?;
    let limit = Duration::from_secs(2 + 1) + SLACK;
    wait_weights(&lb, &d, &[(&rs1, 1), (&rs2, 1)], limit)?;
    let listed = lb.lbctl_ok(&["-L", "-n"])?;
    ensure!(
        listed.contains(&format!("\nTCP  {vip}:80 rr\n")),
        "{listed}"
    );
    for line in [
        format!("Added virtual server: {vip}:80"),
        format!("Real server up: {rs2}:80 ({vip}:80): HTTP/1.0 200 OK"),
        format!("Restored real server: {rs2}:80 ({vip}:80) (Weight set to 1)"),
    ] {
        d.wait_log(&line, limit)?;
    }
    let gets = |n: usize| -> Result<BTreeMap<String, usize>> {
        Ok(
            client::http_get_many(&lb.topo.client.ns, vip_sock, n, client::DEFAULT_TIMEOUT)?
                .into_iter()
                .collect(),
        )
    };
    let counts = gets(20)?;
    ensure!(
        counts.keys().collect::<Vec<_>>() == ["rs1", "rs2"],
        "IPv6 clients: {counts:?}"
    );

    // rs2's server stops: quiesced, new IPv6 clients avoid it.
    lb.topo.backends[1].stop_servers()?;
    wait_weights(&lb, &d, &[(&rs1, 1), (&rs2, 0)], limit)?;
    for line in [
        format!("Real server down: {rs2}:80 ({vip}:80)"),
        format!("Quiescent real server: {rs2}:80 ({vip}:80) (Weight set to 0)"),
    ] {
        d.wait_log(&line, limit)?;
    }
    ensure!(gets(10)? == BTreeMap::from([("rs1".to_string(), 10)]));
    let (code, text) = d.status()?;
    ensure!(code == 0, "daemon-status exit {code}: {text}");
    ensure!(text.contains(&format!("TCP  {vip}:80 rr")), "{text}");
    let w = status_words(&text, &rs2);
    ensure!(w.get(2).map(String::as_str) == Some("down"), "{text}");
    let m = scrape(&lb, 9471)?;
    let svc = format!("service=\"TCP {vip}:80\"");
    for line in [
        format!("lbctl_real_up{{{svc},real=\"{rs2}:80\"}} 0"),
        format!("lbctl_real_up{{{svc},real=\"{rs1}:80\"}} 1"),
        format!("lbctl_real_weight{{{svc},real=\"{rs2}:80\"}} 0"),
    ] {
        ensure!(
            m.lines().any(|l| l == line),
            "{line:?} missing from the metrics:\n{m}"
        );
    }

    // rs2 comes back: restored, it gets IPv6 clients again.
    lb.topo.backends[1].start_server(Path::new(SRV), 80, false)?;
    wait_weights(&lb, &d, &[(&rs1, 1), (&rs2, 1)], limit)?;
    ensure!(gets(20)?.contains_key("rs2"));

    // Every real down: the IPv6 fallback comes in with weight 1 and takes
    // the clients; the reals stay, quiesced.
    lb.topo.backends[0].stop_servers()?;
    lb.topo.backends[1].stop_servers()?;
    wait_weights(&lb, &d, &[(&rs1, 0), (&rs2, 0), (&rs3, 1)], limit)?;
    d.wait_log(
        &format!("Added fallback server: {rs3}:80 ({vip}:80) (Weight set to 1)"),
        limit,
    )?;
    ensure!(gets(10)? == BTreeMap::from([("rs3".to_string(), 10)]));
    // One back: the fallback leaves.
    lb.topo.backends[0].start_server(Path::new(SRV), 80, false)?;
    wait_weights(&lb, &d, &[(&rs1, 1), (&rs2, 0)], limit)?;
    ensure!(gets(10)? == BTreeMap::from([("rs1".to_string(), 10)]));

    let st = d.stop()?;
    ensure!(st.success(), "daemon exit {st}; log:\n{}", d.log());
    ensure!(
        d.log()
            .contains(&format!("Purged virtual server (stop): {vip}:80")),
        "{}",
        d.log()
    );
    ensure!(weights(&lb)?.is_empty());
    Ok(())
}

/// The daemon follows the kernel's IPv6 neighbour entries: when an IPv6
/// real server's MAC changes (a replaced machine: its new MAC in the
/// director's neighbour table, as an unsolicited neighbour advertisement
/// puts it) the dest follows and new IPv6 clients still reach it (with the
/// old MAC their frames would go nowhere).
#[test]
fn ipv6_real_whose_mac_changes_is_followed() -> Result<()> {
    if !require_root("ipv6_real_whose_mac_changes_is_followed") {
        return Ok(());
    }
    let cfg = TopoConfig::new(1).dual_stack().without_lb_neighbours();
    let mut lb = LbTopology::with_config(&cfg)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let rs1 = lb.topo.backends[0].addr6.expect("dual stack");
    let vip = format!("[{}]", lb.topo.vip6.expect("dual stack"));
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\ncleanstop=no\nlogfile=\"@LOG@\"\n\
         virtual6={vip}:80\n\treal6=[{rs1}]:80 gate\n\tchecktype=connect\n\tscheduler=rr\n"
    );
    let mut d = Daemon::start(&lb.topo.lb.ns, lb.pins.path(), &conf, &[])?;
    let mac = |m: &[u8; 6]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    // Up, and its MAC known (from the kernel, which resolves it for the
    // daemon's checks): IPv6 clients reach it.
    let sock = lb.topo.vip6_sock(80);
    poll(
        "an IPv6 client reaches rs1",
        Duration::from_secs(5) + SLACK,
        || {
            Ok(
                (client::http_try(&lb.topo.client.ns, sock, client::DEFAULT_TIMEOUT)?
                    == Outcome::Answered("rs1".into()))
                .then_some(()),
            )
        },
    )
    .with_context(|| format!("log:\n{}", d.log()))?;

    let mac2 = [0x02, 0x00, 0x00, 0x00, 0x06, 0x02];
    let rs = &lb.topo.backends[0];
    rs.ns
        .ip(&["link", "set", "dev", "eth0", "address", &mac(&mac2)])?;
    lb.topo.lb.ns.ip(&[
        "-6",
        "neigh",
        "replace",
        &rs1.to_string(),
        "lladdr",
        &mac(&mac2),
        "dev",
        "eth0",
        "nud",
        "stale",
    ])?;
    d.wait_log(
        &format!("Real server {rs1}: next hop {}", mac(&mac2)),
        Duration::from_secs(10),
    )?;
    ensure!(client::http_get(&lb.topo.client.ns, sock, client::DEFAULT_TIMEOUT)? == "rs1");
    let st = d.stop()?;
    ensure!(st.success(), "daemon exit {st}; log:\n{}", d.log());
    Ok(())
}

/// The negotiate checks other than HTTP over IPv6: `service=https`
/// (ldirectord's default for port 443; TLS to `[2001:db8::11]:443`, no
/// SNI for an address) and `simpletcp`, each bringing IPv6 reals up, and a
/// simpletcp check that stops being answered quiescing its real.
#[test]
fn ipv6_https_and_simpletcp_checks() -> Result<()> {
    if !require_root("ipv6_https_and_simpletcp_checks") {
        return Ok(());
    }
    let lb = LbTopology::with_config(&TopoConfig::new(2).dual_stack())?;
    let a6 = |i: usize| format!("[{}]", lb.topo.backends[i].addr6.expect("dual stack"));
    let (rs1, rs2) = (a6(0), a6(1));
    let vip = format!("[{}]", lb.topo.vip6.expect("dual stack"));
    let mut plain = Vec::new();
    let mut tls = Vec::new();
    for (i, b) in lb.topo.backends.iter().enumerate() {
        let name = format!("rs{}", i + 1);
        tls.push(b.ns.spawn(&[SRV, "--name", &name, "--listen", "[::]:443", "--tls"])?);
        plain.push(b.ns.spawn(&[SRV, "--name", &name, "--listen", "[::]:8000"])?);
    }
    let conf = format!(
        "checkinterval=1\nnegotiatetimeout=2\nfailurecount=1\nlogfile=\"@LOG@\"\n\
         virtual6={vip}:443\n\treal6={rs1}:443 gate\n\treal6={rs2}:443 gate\n\
         \trequest=\"/health\"\n\treceive=\"^rs[0-9]+$\"\n\tscheduler=rr\n\tquiescent=yes\n\
         virtual6={vip}:8000\n\treal6={rs1}:8000 gate\n\treal6={rs2}:8000 gate\n\
         \tservice=simpletcp\n\trequest=\"HOLD\\n\"\n\treceive=\"^rs[0-9]+\"\n\
         \tscheduler=rr\n\tquiescent=yes\n"
    );
    let mut d = Daemon::start(&lb.topo.lb.ns, lb.pins.path(), &conf, &[])?;
    let limit = Duration::from_secs(3) + SLACK;
    let wait = |d: &Daemon, w1: u32| -> Result<()> {
        let wanted: BTreeMap<String, u32> = [
            (format!("{rs1}:443"), 1),
            (format!("{rs2}:443"), 1),
            (format!("{rs1}:8000"), w1),
            (format!("{rs2}:8000"), 1),
        ]
        .into_iter()
        .collect();
        let mut last = BTreeMap::new();
        poll(&format!("weights {wanted:?}"), limit, || {
            last = weights(&lb)?;
            Ok((last == wanted).then_some(()))
        })
        .with_context(|| format!("table has {last:?}; log:\n{}", d.log()))
    };
    wait(&d, 1)?;
    d.wait_log(
        &format!("Real server up: {rs1}:443 ({vip}:443): HTTP/1.0 200 OK"),
        limit,
    )?;
    d.wait_log(
        &format!("Real server up: {rs1}:8000 ({vip}:8000): rs1"),
        limit,
    )?;
    // rs1's simpletcp service goes away: quiesced; its HTTPS stays up.
    plain[0].kill()?;
    wait(&d, 0)?;
    d.wait_log(&format!("Real server down: {rs1}:8000 ({vip}:8000)"), limit)?;
    d.stop()?;
    drop((plain, tls));
    Ok(())
}

/// `virtual6=1`: an IPv6 fwmark service (`-f 1 -6`) over an `lbctl fwmark`
/// rule for the IPv6 VIP's port 80, its `real6=` reals without a port
/// checked on `checkport=`; a failed one is quiesced and IPv6 clients
/// classified by the rule go to the other.
#[test]
fn an_ipv6_fwmark_virtual_is_checked_and_quiesced() -> Result<()> {
    if !require_root("an_ipv6_fwmark_virtual_is_checked_and_quiesced") {
        return Ok(());
    }
    let mut lb = LbTopology::with_config(&TopoConfig::new(2).dual_stack())?;
    let servers = lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let a6 = |i: usize| format!("[{}]", lb.topo.backends[i].addr6.expect("dual stack"));
    let (rs1, rs2) = (a6(0), a6(1));
    let vip6 = lb.topo.vip6.expect("dual stack").to_string();
    lb.lbctl_ok(&[
        "fwmark",
        "add",
        "-p",
        "tcp",
        "-d",
        &vip6,
        "--dport",
        "80",
        "--set-mark",
        "1",
    ])?;
    let conf = format!(
        "checkinterval=1\nchecktimeout=1\nlogfile=\"@LOG@\"\n\
         virtual6=1\n\treal6={rs1} gate\n\treal6={rs2} gate\n\
         \tchecktype=connect\n\tcheckport=80\n\tscheduler=rr\n"
    );
    let d = Daemon::start(&lb.topo.lb.ns, lb.pins.path(), &conf, &[])?;
    let limit = Duration::from_secs(2) + SLACK;
    let wait = |pairs: &[(&str, u32)]| -> Result<()> {
        let wanted: BTreeMap<String, u32> =
            pairs.iter().map(|(a, w)| (format!("{a}:0"), *w)).collect();
        poll(&format!("weights {wanted:?}"), limit, || {
            Ok((weights(&lb)? == wanted).then_some(()))
        })
        .with_context(|| format!("log:\n{}", d.log()))
    };
    wait(&[(&rs1, 1), (&rs2, 1)])?;
    let listed = lb.lbctl_ok(&["-L", "-n"])?;
    ensure!(listed.contains("\nFWM  1 IPv6 rr\n"), "{listed}");
    let restored = format!("Restored real server: {rs1}:0 (fwmark 1 IPv6)");
    poll(&format!("log line {restored:?}"), limit, || {
        Ok(d.log().contains(&restored).then_some(()))
    })
    .with_context(|| format!("log:\n{}", d.log()))?;
    let gets = |n: usize| -> Result<BTreeMap<String, usize>> {
        Ok(client::http_get_many(
            &lb.topo.client.ns,
            lb.topo.vip6_sock(80),
            n,
            client::DEFAULT_TIMEOUT,
        )?
        .into_iter()
        .collect())
    };
    ensure!(gets(10)?.len() == 2);
    // rs1's service (its check port) stops: quiesced, IPv6 traffic goes on.
    servers[0].kill()?;
    wait(&[(&rs1, 0), (&rs2, 1)])?;
    ensure!(gets(5)? == BTreeMap::from([("rs2".to_string(), 5)]));
    Ok(())
}
