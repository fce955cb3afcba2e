//! End to end: next hops of direct-routing real servers, asked of the kernel over netlink
//! (lb-user/src/neigh.rs), in the direct-routing topology with an empty neighbour table on
//! the director (the kernel resolves the real servers itself).
//!
//! - A real server the kernel routes through a gateway is refused by `-a` and `-e`, with an
//!   error naming it and the gateway, and nothing changes (listing and `DESTS`).
//! - Real servers that do not answer ARP are installed at once (1,000 of them in under a
//!   second), and traffic flows to one as soon as it answers.
//! - A real server whose MAC changes keeps receiving its flows under `lbctl daemon`
//!   (neighbour events), and after `lbctl -e` (which re-resolves it).

use std::net::Ipv4Addr;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use lb_common::Dest;
use lb_tests::client::{self, HoldConn, Outcome};
use lb_tests::lb::{LbTopology, wait_for};
use lb_tests::netns::next_id;
use lb_tests::require_root;
use lb_tests::topo::TopoConfig;
use lb_user::{Pins, Table};

const SRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");
const T: Duration = client::DEFAULT_TIMEOUT;
/// What the client waits when it expects no answer.
const SHORT: Duration = Duration::from_secs(1);

/// The topology without neighbour entries on the director, the load balancer attached.
struct Lab(LbTopology);

impl Deref for Lab {
    type Target = LbTopology;
    fn deref(&self) -> &LbTopology {
        &self.0
    }
}

impl DerefMut for Lab {
    fn deref_mut(&mut self) -> &mut LbTopology {
        &mut self.0
    }
}

impl Lab {
    fn new(backends: usize) -> Result<Lab> {
        Ok(Lab(LbTopology::with_config(
            &TopoConfig::new(backends).without_lb_neighbours(),
        )?))
    }

    fn lbctl(&self, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        self.0.lbctl_stdin(args, stdin)
    }

    fn ok(&self, args: &[&str]) -> Result<String> {
        self.0.lbctl_ok(args)
    }

    /// Every `DESTS` slot.
    fn dests(&self) -> Result<Vec<Dest>> {
        Ok(Table::new(Pins::open(self.pins.path(), None)?).dest_table()?)
    }

    /// The in-use dest of `addr` (the first).
    fn dest_of(&self, addr: Ipv4Addr) -> Result<Dest> {
        self.dests()?
            .into_iter()
            .find(|d| {
                d.flags & lb_common::DEST_F_IN_USE != 0
                    && d.addr == lb_common::addr_v4(addr.octets())
            })
            .with_context(|| format!("no dest for {addr}"))
    }

    fn vip(&self, port: u16) -> String {
        format!("{}:{port}", self.topo.vip)
    }
}

fn fmt_mac(m: &[u8; 6]) -> String {
    lb_tests::netns::format_mac(m)
}

#[test]
fn a_real_behind_a_gateway_is_refused_and_nothing_changes() -> Result<()> {
    if !require_root("a_real_behind_a_gateway_is_refused_and_nothing_changes") {
        return Ok(());
    }
    let lab = Lab::new(2)?;
    let (rs1, rs2) = (lab.topo.backend(0).addr, lab.topo.backend(1).addr);
    // 192.0.2.0/24 is reached through rs2 (a router on the director's link).
    lab.topo
        .lb
        .ns
        .ip(&["route", "add", "192.0.2.0/24", "via", &rs2.to_string()])?;
    let vip = lab.vip(80);
    lab.ok(&["-A", "-t", &vip, "-s", "rr"])?;
    lab.ok(&["-a", "-t", &vip, "-r", &rs1.to_string(), "-w", "3"])?;
    let listing = lab.ok(&["-L", "-n"])?;
    let dests = lab.dests()?;

    let o = lab.lbctl(&["-a", "-t", &vip, "-r", "192.0.2.20"], None)?;
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a real behind a gateway was accepted");
    assert!(
        err.contains("real server 192.0.2.20")
            && err.contains(&format!("via gateway {rs2} (dev eth0)"))
            && err.contains("directly connected network"),
        "{err}"
    );
    assert_eq!(lab.ok(&["-L", "-n"])?, listing);
    assert!(lab.dests()? == dests, "DESTS changed");

    // The route to rs1 now goes through rs2: `-e` is refused too, and the weight stays.
    lab.topo.lb.ns.ip(&[
        "route",
        "add",
        &format!("{rs1}/32"),
        "via",
        &rs2.to_string(),
    ])?;
    let o = lab.lbctl(&["-e", "-t", &vip, "-r", &rs1.to_string(), "-w", "5"], None)?;
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "-e of a real behind a gateway succeeded"
    );
    assert!(
        err.contains(&format!("real server {rs1}")) && err.contains(&format!("gateway {rs2}")),
        "{err}"
    );
    assert_eq!(lab.ok(&["-L", "-n"])?, listing);
    assert!(lab.dests()? == dests, "DESTS changed");

    // In a `-R` batch the refused line prints its message and changes nothing; the next
    // lines still apply and the status is the last line's, as ipvsadm -R goes on after a
    // line the kernel refused (README, "Messages and exit statuses").
    let o = lab.lbctl(
        &["-R"],
        Some(&format!(
            "-a -t {vip} -r 192.0.2.21\n-A -t {}\n",
            lab.vip(81)
        )),
    )?;
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "the last line succeeded: {err}");
    assert!(
        err.contains("real server 192.0.2.21") && err.contains("gateway"),
        "{err}"
    );
    let after = lab.ok(&["-L", "-n"])?;
    assert!(
        after.contains(&lab.vip(81)),
        "the line after the refused one did not apply"
    );
    assert!(!after.contains("192.0.2.21"), "the refused real was added");
    assert!(lab.dests()? == dests, "DESTS changed");
    Ok(())
}

#[test]
fn a_thousand_reals_that_do_not_answer_arp_are_installed_at_once() -> Result<()> {
    if !require_root("a_thousand_reals_that_do_not_answer_arp_are_installed_at_once") {
        return Ok(());
    }
    let lab = Lab::new(1)?;
    // 192.0.2.0/24 is on the director's link, and nobody there answers ARP.
    lab.topo
        .lb
        .ns
        .ip(&["addr", "add", "192.0.2.2/24", "dev", "eth0"])?;
    let addrs: Vec<Ipv4Addr> = (3..=252).map(|i| Ipv4Addr::new(192, 0, 2, i)).collect();
    // 20 services of 50 real servers: 1,000 dests over 250 addresses.
    let mut input = String::new();
    for s in 0..20u16 {
        let vip = lab.vip(1000 + s);
        input.push_str(&format!("-A -t {vip} -s wrr\n"));
        for j in 0..50 {
            let a = addrs[(usize::from(s) * 50 + j) % addrs.len()];
            input.push_str(&format!("-a -t {vip} -r {a} -w 1\n"));
        }
    }
    let start = Instant::now();
    let o = lab.lbctl(&["-R"], Some(&input))?;
    let took = start.elapsed();
    ensure!(
        o.status.success(),
        "-R failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        took < Duration::from_secs(1),
        "1,000 unresolved real servers took {took:?}"
    );
    let listing = lab.ok(&["-L", "-n"])?;
    assert_eq!(
        listing
            .lines()
            .filter(|l| l.starts_with("  -> 192.0.2."))
            .count(),
        1000
    );
    // Installed unresolved, and the kernel was asked to resolve each address (an entry
    // exists, not yet with a MAC).
    let d = lab.dest_of(addrs[0])?;
    assert_eq!(d.flags & lb_common::DEST_F_RESOLVED, 0);
    let neigh =
        String::from_utf8_lossy(&lab.topo.lb.ns.ip(&["neigh", "show", "dev", "eth0"])?.stdout)
            .into_owned();
    for a in [addrs[0], addrs[249]] {
        let line = neigh
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&a.to_string()))
            .with_context(|| format!("no neighbour entry for {a}:\n{neigh}"))?;
        assert!(!line.contains("lladdr"), "{line}");
    }
    Ok(())
}

#[test]
fn a_real_that_answers_arp_late_gets_its_flows_once_it_answers() -> Result<()> {
    if !require_root("a_real_that_answers_arp_late_gets_its_flows_once_it_answers") {
        return Ok(());
    }
    let mut lab = Lab::new(1)?;
    lab.topo.start_servers(Path::new(SRV), 80, false)?;
    let rs1 = lab.topo.backend(0).addr;
    // Without the daemon, the XDP program learns the MAC itself (`bpf_fib_lookup`), which
    // the kernel answers only on an interface with forwarding on (else FWD_DISABLED).
    lab.topo
        .lb
        .ns
        .sysctl("net.ipv4.conf.eth0.forwarding", "1")?;
    // The real server is off the link: no ARP answer.
    lab.topo
        .backend(0)
        .ns
        .ip(&["link", "set", "dev", "eth0", "down"])?;
    let vip = lab.vip(80);
    lab.ok(&["-A", "-t", &vip, "-s", "rr"])?;
    let start = Instant::now();
    lab.ok(&["-a", "-t", &vip, "-r", &rs1.to_string()])?;
    assert!(
        start.elapsed() < Duration::from_millis(300),
        "-a waited {:?}",
        start.elapsed()
    );
    assert_eq!(lab.dest_of(rs1)?.flags & lb_common::DEST_F_RESOLVED, 0);
    let sock = lab.topo.vip_sock(80);
    assert_eq!(
        client::http_try(&lab.topo.client.ns, sock, SHORT)?,
        Outcome::TimedOut
    );
    // Back on the link: the kernel keeps asking (managed entry), learns the MAC, and the
    // next new flow finds it.
    lab.topo
        .backend(0)
        .ns
        .ip(&["link", "set", "dev", "eth0", "up"])?;
    wait_for(
        "rs1 answering through the director",
        Duration::from_secs(20),
        || {
            Ok(match client::http_try(&lab.topo.client.ns, sock, SHORT)? {
                Outcome::Answered(a) => Some(a),
                _ => None,
            })
        },
    )
    .with_context(|| {
        let o = lab.topo.lb.ns.ip(&["-4", "neigh", "show", "nud", "all"]);
        format!(
            "director's neighbours: {}",
            o.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        )
    })?;
    let d = lab.dest_of(rs1)?;
    assert_eq!(d.mac, lab.topo.backend(0).mac);
    assert_ne!(d.flags & lb_common::DEST_F_RESOLVED, 0);
    Ok(())
}

/// A running `lbctl daemon --foreground` in the director's namespace (killed on drop; its
/// scratch directory removed).
struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Daemon {
    fn start(lab: &Lab, conf: &str) -> Result<Daemon> {
        let dir =
            std::env::temp_dir().join(format!("lbt-neigh-{}-{}", std::process::id(), next_id()));
        std::fs::create_dir_all(dir.join("run"))?;
        let log = dir.join("daemon.log");
        let cf = dir.join("ldirectord.cf");
        std::fs::write(&cf, conf.replace("@LOG@", &log.display().to_string()))?;
        let stderr = std::fs::File::create(dir.join("stderr"))?;
        let child = lab
            .topo
            .lb
            .ns
            .nsenter_cmd(lab.lbctl_bin())
            .arg("daemon")
            .arg("--foreground")
            .arg(&cf)
            .env("LB_PIN_PATH", lab.pins.path())
            .env("LB_RUN_DIR", dir.join("run"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("spawning lbctl daemon")?;
        Ok(Daemon { child, dir })
    }

    fn log(&self) -> String {
        let mut s = std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default());
        s
    }

    fn wait_log(&mut self, needle: &str, limit: Duration) -> Result<()> {
        wait_for(&format!("log line {needle:?}"), limit, || {
            if let Some(st) = self.child.try_wait()? {
                bail!("the daemon exited ({st}); log:\n{}", self.log());
            }
            Ok(self.log().contains(needle).then_some(()))
        })
        .with_context(|| format!("log:\n{}", self.log()))
    }

    fn stop(&mut self) -> Result<()> {
        use nix::{
            sys::signal::{Signal, kill},
            unistd::Pid,
        };
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).context("kill")?;
        wait_for("daemon exit", Duration::from_secs(15), || {
            Ok(self.child.try_wait()?)
        })?;
        Ok(())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Gives the real server's `eth0` a new MAC and tells the director's kernel, as a
/// gratuitous ARP would (`ip neigh replace`: a dynamic entry with the new address).
fn change_mac(lab: &Lab, mac: [u8; 6]) -> Result<()> {
    let rs = lab.topo.backend(0);
    rs.ns
        .ip(&["link", "set", "dev", "eth0", "address", &fmt_mac(&mac)])?;
    lab.topo.lb.ns.ip(&[
        "neigh",
        "replace",
        &rs.addr.to_string(),
        "lladdr",
        &fmt_mac(&mac),
        "dev",
        "eth0",
        "nud",
        "stale",
    ])?;
    Ok(())
}

#[test]
fn a_real_whose_mac_changes_keeps_its_flows_under_the_daemon_and_after_edit() -> Result<()> {
    if !require_root("a_real_whose_mac_changes_keeps_its_flows_under_the_daemon_and_after_edit") {
        return Ok(());
    }
    let mut lab = Lab::new(1)?;
    lab.topo.start_servers(Path::new(SRV), 80, false)?;
    let rs1 = lab.topo.backend(0).addr;
    let sock = lab.topo.vip_sock(80);
    let ns = &lab.topo.client.ns;
    let mut d = Daemon::start(
        &lab,
        &format!(
            "checkinterval=1\nchecktimeout=1\ncleanstop=no\nlogfile=\"@LOG@\"\n\
             virtual={}\n\treal={rs1}:80 gate\n\tchecktype=on\n\tscheduler=rr\n",
            lab.vip(80)
        ),
    )?;
    // The kernel resolves rs1 (asked by the daemon's `-a`); the daemon fills its MAC in.
    d.wait_log(
        &format!(
            "Real server {rs1}: next hop {}",
            fmt_mac(&lab.topo.backend(0).mac)
        ),
        Duration::from_secs(10),
    )?;
    let mut held = HoldConn::open(ns, sock, T)?;
    assert_eq!(held.backend(), "rs1");

    // New MAC: the daemon follows the neighbour event; old and new flows reach rs1.
    let mac2 = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
    change_mac(&lab, mac2)?;
    d.wait_log(
        &format!("Real server {rs1}: next hop {}", fmt_mac(&mac2)),
        Duration::from_secs(10),
    )?;
    assert_eq!(lab.dest_of(rs1)?.mac, mac2);
    assert_eq!(held.ask(T), Outcome::Answered("rs1".into()));
    assert_eq!(client::http_get(ns, sock, T)?, "rs1");
    d.stop()?;

    // Without the daemon the dest keeps the old MAC: new flows are lost...
    let mac3 = [0x02, 0x00, 0x00, 0x00, 0x00, 0x03];
    change_mac(&lab, mac3)?;
    assert_eq!(client::http_try(ns, sock, SHORT)?, Outcome::TimedOut);
    // ...until `-e` re-resolves the real server.
    lab.ok(&["-e", "-t", &lab.vip(80), "-r", &rs1.to_string(), "-w", "2"])?;
    assert_eq!(lab.dest_of(rs1)?.mac, mac3);
    assert_eq!(client::http_get(ns, sock, T)?, "rs1");
    assert_eq!(held.ask(T), Outcome::Answered("rs1".into()));
    held.close()?;
    Ok(())
}
