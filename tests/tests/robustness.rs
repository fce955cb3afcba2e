//! Robustness (issue 5): fuzzed and malformed frames, restart and upgrade
//! under load without losing a flow, table sizing and exhaustion, concurrent
//! control, privileges.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, SocketAddrV4, TcpStream},
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use lb_common::{
    MAP_CONNS, MAP_SERVICES, MAP_SETTINGS, MAP_TEMPLATES, REASON_COUNT, REASON_DROP_NODEST,
    REASON_FWD_CONN, REASON_FWD_NEW, REASON_FWD_TEMPLATE, REASON_NAMES, REASON_PASS_BAD_IP,
    REASON_PASS_FRAGMENT, REASON_PASS_NO_CONN, REASON_PASS_NO_SERVICE, REASON_PASS_NOT_IP,
    REASON_PASS_NOT_L4, REASON_PASS_TRUNCATED, REASON_PASS_VLAN, REASON_TX_ICMP_UNREACH,
    REASON_TX_RST_NODEST,
};
use lb_tests::{
    BpfPinDir, Netns,
    client::{HoldConn, Outcome},
    fuzz::{self, FloodConfig, FuzzConfig},
    lb::{LbTopology, lbctl_path, real_mac},
    netns::{format_mac, run_checked},
    require_root,
};

const SRV: &str = env!("CARGO_BIN_EXE_lb-testsrv");
const TIMEOUT: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------
// Fuzzed and malformed frames
// ---------------------------------------------------------------------------

/// The quick fuzz run of `cargo xtask test`: 10,000 frames, fixed seed,
/// outcome counters checked after every frame, a control-plane change every
/// 200 frames. Every invariant holds, and every path of the program was
/// taken (so a clean run means something).
#[test]
fn fuzz_quick_run_keeps_every_invariant() -> Result<()> {
    if !require_root("fuzz_quick_run_keeps_every_invariant") {
        return Ok(());
    }
    let report = fuzz::run_in_lab(&FuzzConfig {
        seed: 0x5eed_0005,
        frames: 10_000,
        check_every: 1,
        control_every: 200,
        ..FuzzConfig::default()
    })?;
    eprint!("{}", report.render());
    assert!(report.violations.is_empty(), "{}", report.render());
    assert_eq!(report.frames, 10_000);
    for reason in [
        REASON_PASS_NOT_IP,
        REASON_PASS_VLAN,
        REASON_PASS_FRAGMENT,
        REASON_PASS_NOT_L4,
        REASON_PASS_NO_SERVICE,
        REASON_PASS_NO_CONN,
        REASON_PASS_BAD_IP,
        REASON_PASS_TRUNCATED,
        REASON_FWD_CONN,
        REASON_FWD_NEW,
        REASON_FWD_TEMPLATE,
        REASON_TX_ICMP_UNREACH,
        REASON_TX_RST_NODEST,
        REASON_DROP_NODEST,
    ] {
        assert!(
            report.reasons[reason as usize] > 0,
            "the quick run never took the {} path:\n{}",
            REASON_NAMES[reason as usize],
            report.render()
        );
    }
    assert!(report.control_events >= 40);
    Ok(())
}

/// IPVS only balances frames addressed to the director (`pkt_type ==
/// PACKET_HOST`, docs/SEMANTICS.md §0 step 1); the kernel drops frames for other
/// hosts and gives broadcast/multicast ones to the stack. The XDP program
/// forwards them too, with the frame's destination MAC — broadcast,
/// multicast, or another host's — as source MAC.
#[test]
fn frames_not_addressed_to_the_director_are_left_to_the_stack() -> Result<()> {
    if !require_root("frames_not_addressed_to_the_director_are_left_to_the_stack") {
        return Ok(());
    }
    lb_tests::lb::in_lab(|| {
        let mut dp = lb_tests::lb::Dataplane::new()?;
        dp.set_ingress("lab0")?;
        fuzz::configure(&mut dp)?;
        // IPv4 and IPv6 SYNs to a service, to broadcast and multicast MACs
        // (IPv6 multicast: 33:33:...).
        let v4 = (
            "192.0.2.1".parse::<std::net::IpAddr>()?,
            std::net::IpAddr::from(fuzz::VIP_A),
        );
        let v6 = (
            "2001:db8:1:1::1".parse::<std::net::IpAddr>()?,
            std::net::IpAddr::from(fuzz::VIP6_A),
        );
        for ((src, vip), dst) in [
            (v4, [0xff; 6]),
            (v4, [0x01, 0x00, 0x5e, 0, 0, 1]),
            (v6, [0xff; 6]),
            (v6, [0x33, 0x33, 0, 0, 0, 1]),
            (v6, [0x33, 0x33, 0xff, 0, 0, 0x10]),
        ] {
            let f = lb_tests::frame::Frame::tcp_ip(src, vip)
                .ports(1024, 80)
                .syn()
                .dst_mac(dst)
                .build();
            let r = dp.run(&f)?;
            assert_eq!(
                (r.action, &r.frame),
                (lb_tests::lb::XDP_PASS, &f),
                "a frame to {} is not for the director",
                format_mac(&dst)
            );
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Helpers: lbctl in a namespace of our own
// ---------------------------------------------------------------------------

/// lbctl on a private pin directory, run in a namespace that has an `eth0`
/// (a veth) on 198.51.100.0/24 with permanent neighbour entries for the real
/// servers 198.51.100.11..=30, so that lbctl resolves their MACs without
/// sending anything.
struct Ctl {
    ns: Netns,
    pins: BpfPinDir,
    lbctl: PathBuf,
}

impl Ctl {
    fn new(role: &str) -> Result<Ctl> {
        let lbctl = lbctl_path()?;
        let ns = Netns::new(role)?;
        let mut batch = String::from(
            "link add eth0 type veth peer name eth1\naddr add 198.51.100.2/24 dev eth0\n\
             link set eth1 up\nlink set eth0 up\n",
        );
        for i in 11..=30u8 {
            batch.push_str(&format!(
                "neigh replace 198.51.100.{i} lladdr {} dev eth0 nud permanent\n",
                format_mac(&real_mac(i))
            ));
        }
        ns.ip_batch(&batch)?;
        Ok(Ctl {
            ns,
            pins: BpfPinDir::new()?,
            lbctl,
        })
    }

    fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_at(self.pins.path(), args)
    }

    fn cmd_at(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = self.ns.nsenter_cmd(&self.lbctl);
        c.args(args)
            .env("LB_PIN_PATH", dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn run(&self, args: &[&str]) -> Result<Output> {
        self.cmd(args)
            .output()
            .with_context(|| format!("running lbctl {}", args.join(" ")))
    }

    fn run_stdin(&self, args: &[&str], input: &str) -> Result<Output> {
        let mut c = self.cmd(args);
        c.stdin(Stdio::piped());
        let mut child = c.spawn().context("spawning lbctl")?;
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(input.as_bytes())?;
        Ok(child.wait_with_output()?)
    }

    fn ok(&self, args: &[&str]) -> Result<String> {
        let o = self.run(args)?;
        ensure!(
            o.status.success(),
            "lbctl {} failed ({}): {}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }
}

fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A field of `bpftool -j ... show` output, e.g. `"max_entries":4096`.
fn json_number(text: &str, field: &str) -> Option<u64> {
    let at = text.find(&format!("\"{field}\":"))? + field.len() + 3;
    let digits: String = text[at..]
        .chars()
        .skip_while(|c| c.is_whitespace())
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn bpftool(args: &[&str]) -> Result<String> {
    let o = run_checked(Command::new("bpftool").args(args))?;
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn map_show(pin: &Path) -> Result<String> {
    bpftool(&["-j", "map", "show", "pinned", pin.to_str().context("path")?])
}

/// The id of the program behind a pinned XDP link.
fn link_prog_id(pin: &Path) -> Result<u64> {
    let text = bpftool(&[
        "-j",
        "link",
        "show",
        "pinned",
        pin.to_str().context("path")?,
    ])?;
    json_number(&text, "prog_id").with_context(|| format!("no prog_id in {text}"))
}

// ---------------------------------------------------------------------------
// Restart and upgrade without losing flows
// ---------------------------------------------------------------------------

/// One HTTP/1.0 GET on a new connection; the real server's name, or what
/// went wrong.
fn get_once(addr: SocketAddrV4) -> std::result::Result<String, String> {
    let mut s = TcpStream::connect_timeout(&SocketAddr::V4(addr), TIMEOUT)
        .map_err(|e| format!("connect: {}", Outcome::from_io(&e)))?;
    s.set_read_timeout(Some(TIMEOUT))
        .and_then(|()| s.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("send: {}", Outcome::from_io(&e)))?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)
        .map_err(|e| format!("receive: {}", Outcome::from_io(&e)))?;
    match answer.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.0 200") && body.starts_with("rs") => {
            Ok(body.trim_end().to_string())
        }
        _ => Err(format!("garbled answer {answer:?}")),
    }
}

/// What the client load saw.
struct Load {
    answered: u64,
    failures: Vec<String>,
}

/// Clients keep opening short connections (and a set of long ones stays
/// open) while the program is replaced by `lbctl attach` again and again
/// and lbctl is killed while it holds the table lock. Not one request
/// fails, and every long connection still reaches its real server: flows
/// live in the pinned tables, which the new program reuses, and the pinned
/// link keeps the program attached whatever lbctl does.
///
/// A newer build goes through exactly this path (load against the pinned
/// maps, swap into the pinned link); here the new program is the same
/// object, which is why its id is checked to change.
#[test]
fn upgrades_and_lbctl_crashes_under_load_lose_no_flow() -> Result<()> {
    if !require_root("upgrades_and_lbctl_crashes_under_load_lose_no_flow") {
        return Ok(());
    }
    const MIN_REQUESTS: u64 = 5_000;
    const ROUNDS: usize = 6;
    let mut lb = LbTopology::new(2)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let vip = format!("{}:80", lb.topo.vip);
    lb.lbctl_ok(&["-A", "-t", &vip, "-s", "wrr"])?;
    for i in 0..2 {
        let rs = format!("{}:80", lb.topo.backends[i].addr);
        lb.lbctl_ok(&["-a", "-t", &vip, "-r", &rs, "-w", "1"])?;
    }
    let addr = lb.topo.vip_sock(80);
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(HoldConn::open(&lb.topo.client.ns, addr, TIMEOUT)?);
    }
    let owners: Vec<String> = held.iter().map(|h| h.backend().to_string()).collect();

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, done) = (stop.clone(), done.clone());
        lb.topo.client.ns.spawn_thread(move || {
            let mut load = Load {
                answered: 0,
                failures: Vec::new(),
            };
            while !stop.load(Ordering::Relaxed) {
                match get_once(addr) {
                    Ok(_) => load.answered += 1,
                    Err(e) => load
                        .failures
                        .push(format!("request #{}: {e}", load.answered)),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            load
        })?
    };

    let link = lb.pins.join("link_eth0");
    let lbctl = lbctl_path()?;
    let mut ids = vec![link_prog_id(&link)?];
    let result = (|| -> Result<()> {
        for round in 0..ROUNDS {
            // Upgrade: a new program swapped in atomically, same tables.
            lb.lbctl_ok(&["attach", "eth0"])?;
            let id = link_prog_id(&link)?;
            ensure!(
                !ids.contains(&id),
                "round {round}: program not replaced ({ids:?} -> {id})"
            );
            ids.push(id);
            // A crash: lbctl killed while it holds the lock on the tables
            // (`--rate` samples the counters one second apart).
            let mut listing = lb.topo.lb.ns.nsenter_cmd(&lbctl);
            listing
                .args(["-L", "-n", "--rate"])
                .env("LB_PIN_PATH", lb.pins.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = listing.spawn()?;
            std::thread::sleep(Duration::from_millis(300));
            child.kill()?;
            child.wait()?;
            // The lock died with it: the next invocation works.
            let listing = lb.lbctl_ok(&["-L", "-n"])?;
            ensure!(listing.contains(&vip), "{listing}");
            for (h, owner) in held.iter_mut().zip(&owners) {
                let o = h.ask(TIMEOUT);
                ensure!(
                    o == Outcome::Answered(owner.clone()),
                    "round {round}: held connection to {owner}: {o}"
                );
            }
        }
        // Keep the load going until enough requests went through.
        let deadline = Instant::now() + Duration::from_secs(120);
        while done.load(Ordering::Relaxed) < MIN_REQUESTS {
            ensure!(Instant::now() < deadline, "the load is too slow");
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    let load = load
        .join()
        .map_err(|_| anyhow::anyhow!("the load thread panicked"))??;
    result?;
    eprintln!(
        "{} requests answered, {} failed, program replaced {} times (ids {ids:?})",
        load.answered,
        load.failures.len(),
        ROUNDS
    );
    assert!(load.failures.is_empty(), "{:#?}", load.failures);
    assert!(load.answered >= MIN_REQUESTS, "{}", load.answered);
    for (h, owner) in held.iter_mut().zip(&owners) {
        assert_eq!(h.ask(TIMEOUT), Outcome::Answered(owner.clone()));
    }
    // The held connections' entries are the same ones, still established.
    let rows = lb.conn_rows()?;
    for h in &held {
        let port = h.local_addr()?.port();
        let row = rows
            .iter()
            .find(|r| r.source.port() == port)
            .with_context(|| format!("no entry for client port {port}"))?;
        assert_eq!(row.state, "ESTABLISHED");
    }
    Ok(())
}

/// `lbctl daemon --foreground CONF` in the director's namespace on the
/// topology's tables; killed (SIGKILL) on drop.
struct DaemonProc {
    child: std::process::Child,
    dir: PathBuf,
}

impl DaemonProc {
    fn start(lb: &LbTopology, dir: &Path) -> Result<DaemonProc> {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stderr"))?;
        let child = lb
            .topo
            .lb
            .ns
            .nsenter_cmd(lbctl_path()?)
            .args(["daemon", "--foreground"])
            .arg(dir.join("ldirectord.cf"))
            .env("LB_PIN_PATH", lb.pins.path())
            .env("LB_RUN_DIR", dir.join("run"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("spawning lbctl daemon")?;
        Ok(DaemonProc {
            child,
            dir: dir.to_path_buf(),
        })
    }

    fn log(&self) -> String {
        let mut s = std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default());
        s
    }

    /// Stops it with `sig` and waits for the exit.
    fn stop(&mut self, sig: i32) -> Result<()> {
        use nix::{sys::signal::kill, unistd::Pid};
        let sig = nix::sys::signal::Signal::try_from(sig)?;
        kill(Pid::from_raw(self.child.id() as i32), sig).context("kill")?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for DaemonProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Real servers and weights of `lbctl -L -n`.
fn listed_weights(lb: &LbTopology) -> Result<Vec<(String, u32)>> {
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

/// Polls `check` every 100 ms for at most `limit`.
fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + limit;
    while !check()? {
        ensure!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// The ldirectord-compatible daemon manages a persistent service while
/// clients keep connecting and holding connections; it is killed (SIGKILL)
/// and stopped (SIGTERM, `cleanstop=no`) and started again, and the program
/// is replaced in between. A restarting daemon takes the real servers it
/// finds in the table with a weight as up, so it changes nothing: not one
/// request fails, the held connections and the persistence templates stay
/// as they were.
#[test]
fn daemon_restarts_under_load_touch_no_flow_or_template() -> Result<()> {
    if !require_root("daemon_restarts_under_load_touch_no_flow_or_template") {
        return Ok(());
    }
    const MIN_REQUESTS: u64 = 5_000;
    let mut lb = LbTopology::new(2)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    let scratch = std::env::temp_dir().join(format!(
        "lbt-robust-{}-{}",
        std::process::id(),
        lb_tests::netns::next_id()
    ));
    std::fs::create_dir_all(scratch.join("run"))?;
    struct Cleanup(PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(scratch.clone());
    let (rs1, rs2) = (lb.topo.backends[0].addr, lb.topo.backends[1].addr);
    let vip = lb.topo.vip;
    std::fs::write(
        scratch.join("ldirectord.cf"),
        format!(
            "checkinterval=1\nchecktimeout=3\nnegotiatetimeout=3\nfailurecount=3\n\
             cleanstop=no\nlogfile=\"{}\"\n\
             virtual={vip}:80\n\treal={rs1}:80 gate\n\treal={rs2}:80 gate\n\
             \tservice=http\n\tchecktype=negotiate\n\trequest=\"/\"\n\treceive=\"^rs[0-9]+$\"\n\
             \tscheduler=wrr\n\tpersistent=600\n",
            scratch.join("daemon.log").display()
        ),
    )?;
    let want = vec![(format!("{rs1}:80"), 1), (format!("{rs2}:80"), 1)];
    let mut daemon = DaemonProc::start(&lb, &scratch)?;
    wait_until(
        "the daemon brings both reals up",
        Duration::from_secs(10),
        || Ok(listed_weights(&lb)? == want),
    )
    .with_context(|| daemon.log())?;

    let addr = lb.topo.vip_sock(80);
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(HoldConn::open(&lb.topo.client.ns, addr, TIMEOUT)?);
    }
    let owner = held[0].backend().to_string();
    let templates = |lb: &LbTopology| -> Result<Vec<(SocketAddrV4, SocketAddrV4)>> {
        Ok(lb
            .conn_rows()?
            .into_iter()
            .filter(|r| r.is_template())
            .map(|r| (r.source, r.dest))
            .collect())
    };
    let templates_before = templates(&lb)?;
    ensure!(templates_before.len() == 1, "{templates_before:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, done) = (stop.clone(), done.clone());
        lb.topo.client.ns.spawn_thread(move || {
            let mut load = Load {
                answered: 0,
                failures: Vec::new(),
            };
            while !stop.load(Ordering::Relaxed) {
                match get_once(addr) {
                    Ok(_) => load.answered += 1,
                    Err(e) => load
                        .failures
                        .push(format!("request #{}: {e}", load.answered)),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            load
        })?
    };
    let result = (|| -> Result<()> {
        for round in 0..4 {
            let sig = if round % 2 == 0 {
                libc::SIGKILL
            } else {
                libc::SIGTERM
            };
            daemon.stop(sig)?;
            ensure!(
                listed_weights(&lb)? == want,
                "round {round}: table changed at stop"
            );
            if round == 1 {
                // An upgrade while no daemon runs.
                lb.lbctl_ok(&["attach", "eth0"])?;
            }
            let starts = daemon_starts(&scratch);
            daemon = DaemonProc::start(&lb, &scratch)?;
            wait_until("the daemon restarts", Duration::from_secs(10), || {
                Ok(daemon_starts(&scratch) > starts)
            })
            .with_context(|| daemon.log())?;
            // Two check intervals: its first checks are done.
            std::thread::sleep(Duration::from_millis(2_500));
            ensure!(
                listed_weights(&lb)? == want,
                "round {round}: table changed by the restart; log:\n{}",
                daemon.log()
            );
            for h in &mut held {
                let o = h.ask(TIMEOUT);
                ensure!(
                    o == Outcome::Answered(owner.clone()),
                    "round {round}: held connection to {owner}: {o}"
                );
            }
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while done.load(Ordering::Relaxed) < MIN_REQUESTS {
            ensure!(Instant::now() < deadline, "the load is too slow");
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    let load = load
        .join()
        .map_err(|_| anyhow::anyhow!("the load thread panicked"))??;
    result?;
    eprintln!(
        "{} requests answered, {} failed, daemon restarted 4 times",
        load.answered,
        load.failures.len()
    );
    assert!(load.failures.is_empty(), "{:#?}", load.failures);
    assert!(load.answered >= MIN_REQUESTS, "{}", load.answered);
    for h in &mut held {
        assert_eq!(h.ask(TIMEOUT), Outcome::Answered(owner.clone()));
    }
    assert_eq!(
        templates(&lb)?,
        templates_before,
        "the template is the same"
    );
    let log = daemon.log();
    for changed in [
        "Quiescent real server",
        "Deleted real server",
        "Purged real server",
    ] {
        assert!(!log.contains(changed), "{changed:?} in the log:\n{log}");
    }
    daemon.stop(libc::SIGTERM)?;
    Ok(())
}

/// How many times the daemon logged its start.
fn daemon_starts(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("daemon.log"))
        .unwrap_or_default()
        .matches("Starting lbctl daemon")
        .count()
}

/// A pinned table of another layout (what an older or newer build left
/// behind) is refused with a message naming the map and `--reset`, by every
/// command, and nothing is changed or attached; `--reset` starts afresh.
/// Table sizes that differ from the pinned ones are refused the same way.
#[test]
fn pinned_tables_of_another_layout_are_refused_until_reset() -> Result<()> {
    if !require_root("pinned_tables_of_another_layout_are_refused_until_reset") {
        return Ok(());
    }
    let ctl = Ctl::new("stale")?;
    ctl.ok(&["attach", "eth0", "--conns", "4096", "--templates", "2048"])?;
    ctl.ok(&["-A", "-t", "203.0.113.10:80", "-s", "rr"])?;
    // Sizes as asked.
    let conns = map_show(&ctl.pins.join(MAP_CONNS))?;
    let templates = map_show(&ctl.pins.join(MAP_TEMPLATES))?;
    assert_eq!(json_number(&conns, "max_entries"), Some(4096), "{conns}");
    assert_eq!(
        json_number(&templates, "max_entries"),
        Some(2048),
        "{templates}"
    );
    ctl.ok(&["detach", "eth0"])?;

    // Other sizes are refused (they would need new tables).
    let o = ctl.run(&["attach", "eth0", "--conns", "8192"])?;
    assert!(!o.status.success());
    let err = stderr_of(&o);
    assert!(err.contains("--reset") && err.contains("4096"), "{err}");

    // SERVICES replaced by a map with another value size.
    let services = ctl.pins.join(MAP_SERVICES);
    std::fs::remove_file(&services)?;
    bpftool(&[
        "map",
        "create",
        services.to_str().context("path")?,
        "type",
        "hash",
        "key",
        "8",
        "value",
        "4",
        "entries",
        "4096",
        "name",
        MAP_SERVICES,
    ])?;
    let stale_id = json_number(&map_show(&services)?, "id");
    for args in [
        &["attach", "eth0"][..],
        &["-L", "-n"],
        &["-A", "-t", "203.0.113.10:443", "-s", "rr"],
    ] {
        let o = ctl.run(args)?;
        let err = stderr_of(&o);
        assert!(!o.status.success(), "lbctl {args:?} accepted a stale pin");
        assert!(
            err.contains(MAP_SERVICES) && err.contains("--reset"),
            "lbctl {args:?}: {err}"
        );
    }
    assert!(!ctl.pins.join("link_eth0").exists(), "nothing attached");
    let link = ctl.ns.ip(&["-d", "link", "show", "eth0"])?;
    assert!(
        !String::from_utf8_lossy(&link.stdout).contains("xdp"),
        "no program on eth0"
    );
    let still = map_show(&services)?;
    assert_eq!(
        json_number(&still, "id"),
        stale_id,
        "the stale map is left alone"
    );
    assert_eq!(json_number(&still, "bytes_value"), Some(4), "{still}");

    // --reset: fresh tables, attached.
    ctl.ok(&[
        "attach",
        "eth0",
        "--reset",
        "--conns",
        "4096",
        "--templates",
        "4096",
    ])?;
    assert!(ctl.pins.join("link_eth0").exists());
    let listing = ctl.ok(&["-L", "-n"])?;
    assert!(!listing.contains("203.0.113.10"), "{listing}");
    ctl.ok(&["-A", "-t", "203.0.113.10:80", "-s", "rr"])?;
    ctl.ok(&["detach", "eth0"])?;

    // Same sizes, but made by a build of another layout version.
    {
        use aya::maps::{Array, Map, MapData};
        let md = MapData::from_pin(ctl.pins.join(MAP_SETTINGS))?;
        let mut settings: Array<MapData, lb_common::Settings> =
            Array::try_from(Map::from_map_data(md)?)?;
        let mut s = settings.get(&0, 0)?;
        s.layout = lb_common::LAYOUT_VERSION + 1;
        settings.set(0, s, 0)?;
    }
    for args in [&["attach", "eth0"][..], &["-L", "-n"]] {
        let o = ctl.run(args)?;
        let err = stderr_of(&o);
        assert!(
            !o.status.success(),
            "lbctl {args:?} accepted another layout version"
        );
        assert!(
            err.contains("layout version") && err.contains("--reset"),
            "lbctl {args:?}: {err}"
        );
    }
    assert!(!ctl.pins.join("link_eth0").exists(), "nothing attached");
    ctl.ok(&[
        "attach",
        "eth0",
        "--reset",
        "--conns",
        "4096",
        "--templates",
        "4096",
    ])?;
    ctl.ok(&["-L", "-n"])?;
    ctl.ok(&["detach", "eth0"])?;
    Ok(())
}

/// `lbctl -R` (which keeps what it read and writes each change once) leaves
/// exactly the tables that running its lines one by one does: services and
/// real servers added, edited, removed and re-added, in any order, and
/// lines that fail (as ipvsadm, the next ones are applied).
#[test]
fn restore_leaves_what_its_lines_one_by_one_leave() -> Result<()> {
    if !require_root("restore_leaves_what_its_lines_one_by_one_leave") {
        return Ok(());
    }
    let ctl = Ctl::new("restore")?;
    let other = BpfPinDir::new()?;
    let mut lines = Vec::new();
    for s in 0..12u16 {
        let vip = format!("203.0.113.10:{}", 7000 + s);
        let sched = if s % 2 == 0 { "rr" } else { "wrr" };
        lines.push(format!("-A -t {vip} -s {sched}"));
        for r in 11..(15 + s % 5) {
            lines.push(format!("-a -t {vip} -r 198.51.100.{r} -w {}", 1 + r % 3));
        }
    }
    // Refused in the middle: a service that exists, a real of none.
    lines.push("-A -t 203.0.113.10:7003 -s rr".into());
    lines.push("-a -t 203.0.113.10:7999 -r 198.51.100.11".into());
    for s in (0..12u16).step_by(3) {
        let vip = format!("203.0.113.10:{}", 7000 + s);
        lines.push(format!("-e -t {vip} -r 198.51.100.12 -w 0"));
        lines.push(format!("-d -t {vip} -r 198.51.100.11"));
        lines.push(format!("-E -t {vip} -s wrr -p 60"));
    }
    lines.push("-D -t 203.0.113.10:7001".into());
    lines.push("-a -t 203.0.113.10:7000 -r 198.51.100.11 -w 5".into());
    lines.push("-A -t 203.0.113.10:7001 -s rr".into());
    lines.push("-a -t 203.0.113.10:7001 -r 198.51.100.20".into());
    let o = ctl.run_stdin(&["-R"], &(lines.join("\n") + "\n"))?;
    // The last line succeeded: status 0, the two failures reported.
    assert!(o.status.success(), "{}", stderr_of(&o));
    assert_eq!(
        stderr_of(&o),
        "Service already exists\nService not defined\n"
    );
    let mut failed = 0;
    for line in &lines {
        let args: Vec<&str> = line.split_whitespace().collect();
        let o = ctl.cmd_at(other.path(), &args).output()?;
        failed += usize::from(!o.status.success());
    }
    assert_eq!(failed, 2);
    for args in [&["-S", "-n"][..], &["-L", "-n"]] {
        let a = ctl.ok(args)?;
        let b = ctl.cmd_at(other.path(), args).output()?;
        assert_eq!(a, String::from_utf8_lossy(&b.stdout), "lbctl {args:?}");
    }
    Ok(())
}

/// `--services` and `--reals` size the service and real-server tables when
/// they are made (memory follows them); a command past either limit is
/// refused with ipvsadm's kind of message and changes nothing.
#[test]
fn table_sizes_are_chosen_at_attach_and_their_limits_refuse_cleanly() -> Result<()> {
    if !require_root("table_sizes_are_chosen_at_attach_and_their_limits_refuse_cleanly") {
        return Ok(());
    }
    let ctl = Ctl::new("sizes")?;
    ctl.ok(&["attach", "eth0", "--services", "16", "--reals", "64"])?;
    for (map, want) in [
        (MAP_SERVICES, 16),
        (lb_common::MAP_SCHED, 16),
        (lb_common::MAP_SVC_STATS, 16),
        (lb_common::MAP_DESTS, 64),
        (lb_common::MAP_DEST_STATS, 64),
        (
            lb_common::MAP_SVC_DESTS,
            64 * lb_common::SVC_DESTS_PER_REAL as u64,
        ),
    ] {
        let shown = map_show(&ctl.pins.join(map))?;
        assert_eq!(
            json_number(&shown, "max_entries"),
            Some(want),
            "{map}: {shown}"
        );
    }
    // 16 services of 4 reals: every slot taken.
    let mut rules = String::new();
    for s in 0..16 {
        rules.push_str(&format!("-A -t 203.0.113.10:{} -s rr\n", 8000 + s));
        for r in 11..15 {
            rules.push_str(&format!(
                "-a -t 203.0.113.10:{} -r 198.51.100.{r} -w 1\n",
                8000 + s
            ));
        }
    }
    let o = ctl.run_stdin(&["-R"], &rules)?;
    assert!(o.status.success(), "{}", stderr_of(&o));
    let before = ctl.ok(&["-S", "-n"])?;
    for (args, msg) in [
        (
            &["-A", "-t", "203.0.113.10:9000", "-s", "rr"][..],
            "too many services (at most 16)",
        ),
        (
            &["-a", "-t", "203.0.113.10:8000", "-r", "198.51.100.20"],
            "too many real servers (at most 64",
        ),
    ] {
        let o = ctl.run(args)?;
        // ipvsadm's message for the kernel's failed allocation, exit 255,
        // then which table is full.
        assert_eq!(o.status.code(), Some(255), "{args:?}");
        let err = stderr_of(&o);
        assert!(
            err.starts_with("Memory allocation problem\nlbctl: ") && err.contains(msg),
            "{args:?}: {err}"
        );
    }
    assert_eq!(ctl.ok(&["-S", "-n"])?, before, "nothing changed");
    // A removed real frees its slot for another.
    ctl.ok(&["-d", "-t", "203.0.113.10:8000", "-r", "198.51.100.11"])?;
    ctl.ok(&["-a", "-t", "203.0.113.10:8001", "-r", "198.51.100.20"])?;
    // Other sizes need new tables.
    let o = ctl.run(&["attach", "eth0", "--services", "32", "--reals", "64"])?;
    assert!(!o.status.success());
    assert!(stderr_of(&o).contains("--reset"), "{}", stderr_of(&o));
    ctl.ok(&["detach", "eth0"])?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Exhaustion
// ---------------------------------------------------------------------------

/// A SYN flood from random sources four times the size of the connection
/// table: the table fills (a preallocated hash, it never evicts: see
/// docs/SEMANTICS.md §6.4), the SYNs beyond it are dropped and counted as
/// `drop_conn_table`, and 64 established connections that keep sending
/// (each once per 1,000 flood SYNs) never lose their entry. (No sweeper
/// runs here: relieving a full table is the wire test's.)
#[test]
fn syn_flood_of_four_times_the_table_spares_established_flows() -> Result<()> {
    if !require_root("syn_flood_of_four_times_the_table_spares_established_flows") {
        return Ok(());
    }
    let cfg = FloodConfig {
        seed: 5,
        conns: 16_384,
        syns: 65_536,
        established: 64,
        gap: 1_000,
        handshakes: false,
    };
    let r = fuzz::flood(&cfg)?;
    eprintln!("{}", r.render());
    let room = cfg.conns as u64 - cfg.established as u64;
    assert_eq!(r.flood_forwarded, room, "{}", r.render());
    assert_eq!(r.flood_table_full, cfg.syns - room, "{}", r.render());
    assert_eq!(r.flood_other, 0);
    assert!(r.est_packets >= 4_000);
    assert_eq!(r.est_kept, r.est_packets, "{}", r.render());
    assert_eq!(r.entries_after, cfg.conns as usize);
    // The flood is counted: a new flow per SYN while there was room, a
    // drop per SYN after; nothing else moved but the established packets.
    assert_eq!(r.reasons[REASON_FWD_NEW as usize], room);
    assert_eq!(
        r.reasons[lb_common::REASON_DROP_CONN_TABLE as usize],
        cfg.syns - room
    );
    assert_eq!(r.reasons[REASON_FWD_CONN as usize], r.est_packets);
    assert_eq!(
        r.reasons.iter().sum::<u64>(),
        cfg.syns + r.est_packets,
        "{:?}",
        r.reasons
    );
    assert_eq!(r.reasons.len(), REASON_COUNT as usize);
    Ok(())
}

/// The same with completed handshakes (each flood flow also sends an ACK,
/// so its entries are ESTABLISHED like the real ones): the table fills, the
/// rest is refused, and no established flow loses its entry, however
/// rarely it sends.
#[test]
fn handshake_flood_spares_flows_that_keep_sending() -> Result<()> {
    if !require_root("handshake_flood_spares_flows_that_keep_sending") {
        return Ok(());
    }
    let cfg = FloodConfig {
        seed: 6,
        conns: 16_384,
        syns: 65_536,
        established: 64,
        gap: 2_048,
        handshakes: true,
    };
    let r = fuzz::flood(&cfg)?;
    eprintln!("{}", r.render());
    let room = cfg.conns as u64 - cfg.established as u64;
    assert_eq!(r.flood_forwarded, room, "{}", r.render());
    assert_eq!(r.flood_table_full, cfg.syns - room, "{}", r.render());
    assert_eq!(r.est_kept, r.est_packets, "{}", r.render());
    assert_eq!(r.entries_after, cfg.conns as usize);
    Ok(())
}

/// Sends raw Ethernet frames out of `ifname` of the calling thread's
/// namespace (AF_PACKET).
fn send_frames(ifname: &str, frames: &[Vec<u8>]) -> Result<()> {
    let ifindex = lb_user::neigh::ifindex(ifname).with_context(|| format!("no {ifname}"))?;
    // SAFETY: plain socket(2); the fd is closed below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    ensure!(
        fd >= 0,
        "AF_PACKET socket: {}",
        std::io::Error::last_os_error()
    );
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as u16;
    addr.sll_ifindex = ifindex as i32;
    addr.sll_halen = 6;
    let mut result = Ok(());
    for f in frames {
        addr.sll_addr[..6].copy_from_slice(&f[0..6]);
        // SAFETY: valid fd, buffer and address of the given sizes.
        let n = unsafe {
            libc::sendto(
                fd,
                f.as_ptr().cast(),
                f.len(),
                0,
                (&raw const addr).cast(),
                size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if n < 0 {
            result = Err(anyhow::anyhow!(
                "sendto: {}",
                std::io::Error::last_os_error()
            ));
            break;
        }
    }
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    result
}

/// The same on the wire: the program attached with a 1,024-entry
/// connection table, 8,192 SYNs from spoofed sources (8x the table) sent
/// from the client's interface while eight held connections keep talking.
/// Every SYN is counted, as a new flow while the table has room and as
/// `drop_conn_table` once it is full; the held connections never miss an
/// answer; and afterwards new clients are served (the sweeper drops the
/// flood's stale half-open entries, as IPVS's `drop_entry`) and lbctl lists
/// the table.
#[test]
fn syn_flood_on_the_wire_fills_the_table_and_breaks_nothing() -> Result<()> {
    if !require_root("syn_flood_on_the_wire_fills_the_table_and_breaks_nothing") {
        return Ok(());
    }
    let mut lb = LbTopology::new(2)?;
    lb.topo.start_servers(Path::new(SRV), 80, false)?;
    // Small tables (this drops the topology's, which are empty).
    lb.lbctl_ok(&[
        "attach",
        "eth0",
        "--reset",
        "--conns",
        "1024",
        "--templates",
        "1024",
    ])?;
    let vip = format!("{}:80", lb.topo.vip);
    lb.lbctl_ok(&["-A", "-t", &vip, "-s", "wrr"])?;
    for i in 0..2 {
        let rs = format!("{}:80", lb.topo.backends[i].addr);
        lb.lbctl_ok(&["-a", "-t", &vip, "-r", &rs, "-w", "1"])?;
    }
    let addr = lb.topo.vip_sock(80);
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(HoldConn::open(&lb.topo.client.ns, addr, TIMEOUT)?);
    }
    let owners: Vec<String> = held.iter().map(|h| h.backend().to_string()).collect();
    let before = lb.reasons()?;
    let (client_mac, lb_mac, vip_ip) = (lb.topo.client.mac, lb.topo.lb.mac, lb.topo.vip);
    const SYNS: usize = 8_192;
    const BATCH: usize = 512;
    for batch in 0..SYNS / BATCH {
        let frames: Vec<Vec<u8>> = (0..BATCH)
            .map(|k| {
                let n = batch * BATCH + k;
                // Spoofed, unused addresses of the topology's subnet.
                let src = std::net::Ipv4Addr::new(198, 51, 100, 128 + (n % 127) as u8);
                lb_tests::frame::Frame::tcp(src, vip_ip)
                    .src_mac(client_mac)
                    .dst_mac(lb_mac)
                    .ports(10_000 + (n / 127) as u16, 80)
                    .syn()
                    .build()
            })
            .collect();
        lb.topo
            .client
            .ns
            .run_in(|| send_frames("eth0", &frames))??;
        for (h, owner) in held.iter_mut().zip(&owners) {
            let o = h.ask(TIMEOUT);
            ensure!(
                o == Outcome::Answered(owner.clone()),
                "after {} flood SYNs: held connection to {owner}: {o}",
                (batch + 1) * BATCH
            );
        }
    }
    let after = lb.reasons()?;
    let moved = |r: u32| after[r as usize] - before[r as usize];
    eprintln!(
        "flood on the wire: fwd_new {} fwd_conn {} drop_conn_table {}",
        moved(REASON_FWD_NEW),
        moved(REASON_FWD_CONN),
        moved(lb_common::REASON_DROP_CONN_TABLE)
    );
    // Every SYN arrived and was counted (veth loses nothing): forwarded
    // while there was room, refused once the table was full.
    let full = moved(lb_common::REASON_DROP_CONN_TABLE);
    assert!(
        moved(REASON_FWD_NEW) + full >= SYNS as u64,
        "{} + {full}",
        moved(REASON_FWD_NEW)
    );
    assert!(full > 0, "8x the table fits in it?");
    // New clients are served once the sweeper has dropped the flood's
    // half-open entries (at most two sweeps), and the table lists.
    lb_tests::lb::wait_for(
        "a new client served after the flood",
        Duration::from_secs(10),
        || Ok(lb.topo.client.ns.run_in(|| get_once(addr))?.ok()),
    )?;
    for _ in 0..20 {
        let name = lb.topo.client.ns.run_in(|| get_once(addr))?;
        ensure!(name.is_ok(), "{name:?}");
    }
    let rows = lb.conn_rows()?;
    assert!(rows.len() <= 1024 + 1024, "{} rows", rows.len());
    for h in &held {
        let port = h.local_addr()?.port();
        assert!(
            rows.iter()
                .any(|r| r.source.port() == port && r.state == "ESTABLISHED"),
            "the held connection from port {port} kept its entry"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Concurrent control
// ---------------------------------------------------------------------------

/// The real servers of `-S -n` as (address:port, weight), sorted.
fn saved_reals(save: &str) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = save
        .lines()
        .filter(|l| l.starts_with("-a "))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let r = f.iter().position(|w| *w == "-r")?;
            let w = f.iter().position(|w| *w == "-w")?;
            Some((f.get(r + 1)?.to_string(), f.get(w + 1)?.parse().ok()?))
        })
        .collect();
    out.sort();
    out
}

/// Runs every command as its own lbctl process, all started at once;
/// returns which succeeded.
fn all_at_once(ctl: &Ctl, cmds: &[Vec<String>]) -> Result<Vec<bool>> {
    let mut children = Vec::new();
    for c in cmds {
        let args: Vec<&str> = c.iter().map(String::as_str).collect();
        children.push(ctl.cmd(&args).spawn()?);
    }
    let mut ok = Vec::new();
    for (c, child) in cmds.iter().zip(children) {
        let o = child.wait_with_output()?;
        let err = stderr_of(&o);
        // A failure must be a refusal of the command, never a broken table.
        ensure!(
            o.status.success()
                || err == "Service already exists\n"
                || err == "Destination already exists\n"
                || err == "No such destination\n",
            "lbctl {}: {err}",
            c.join(" ")
        );
        ok.push(o.status.success());
    }
    Ok(ok)
}

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// Eight lbctl processes changing the same service at once: every change
/// that succeeded is in the listing and nothing else, conflicting changes
/// succeed exactly once, and the table stays usable.
#[test]
fn concurrent_lbctl_changes_leave_a_consistent_table() -> Result<()> {
    if !require_root("concurrent_lbctl_changes_leave_a_consistent_table") {
        return Ok(());
    }
    const VIP: &str = "203.0.113.10:80";
    let ctl = Ctl::new("conc")?;
    ctl.ok(&["-A", "-t", VIP, "-s", "wrr"])?;
    let real = |i: u8| format!("198.51.100.{i}:80");

    // Eight writers, each with its own reals, all rewriting the same
    // service value: a lost update would lose a real or a weight.
    let workers: Vec<_> = (0..8u8)
        .map(|i| {
            let mut cmd = Vec::new();
            let mine = real(11 + i);
            let extra = real(21 + i);
            cmd.push(format!("-a -t {VIP} -r {mine} -w 1"));
            for w in 2..=8 {
                cmd.push(format!("-e -t {VIP} -r {mine} -w {w}"));
            }
            cmd.push(format!("-a -t {VIP} -r {extra} -w 3"));
            cmd.push(format!("-d -t {VIP} -r {extra}"));
            if i % 2 == 1 {
                cmd.push(format!("-d -t {VIP} -r {mine}"));
            }
            cmd
        })
        .collect();
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = workers
            .iter()
            .map(|cmds| {
                let ctl = &ctl;
                s.spawn(move || -> Result<()> {
                    for c in cmds {
                        let a = args(c);
                        let a: Vec<&str> = a.iter().map(String::as_str).collect();
                        ctl.ok(&a)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("worker panicked"))??;
        }
        Ok(())
    })?;
    let want: Vec<(String, u32)> = (0..8u8)
        .filter(|i| i % 2 == 0)
        .map(|i| (real(11 + i), 8))
        .collect();
    let save = ctl.ok(&["-S", "-n"])?;
    assert_eq!(saved_reals(&save), want, "{save}");

    // Conflicting changes, eight at a time: exactly one of two identical
    // additions or removals succeeds.
    let round1 = [
        args(&format!("-a -t {VIP} -r {} -w 5", real(21))),
        args(&format!("-a -t {VIP} -r {} -w 5", real(21))),
        args(&format!("-d -t {VIP} -r {}", real(11))),
        args(&format!("-d -t {VIP} -r {}", real(11))),
        args(&format!("-e -t {VIP} -r {} -w 2", real(13))),
        args(&format!("-e -t {VIP} -r {} -w 2", real(13))),
        args(&format!("-a -t {VIP} -r {} -w 9", real(22))),
        args("-L -n"),
    ];
    let ok = all_at_once(&ctl, &round1)?;
    assert_eq!(
        ok[0] as u8 + ok[1] as u8,
        1,
        "one of two identical -a: {ok:?}"
    );
    assert_eq!(
        ok[2] as u8 + ok[3] as u8,
        1,
        "one of two identical -d: {ok:?}"
    );
    assert!(ok[4] && ok[5] && ok[6] && ok[7], "{ok:?}");
    let mut want = vec![
        (real(13), 2),
        (real(15), 8),
        (real(17), 8),
        (real(21), 5),
        (real(22), 9),
    ];
    want.sort();
    let save = ctl.ok(&["-S", "-n"])?;
    assert_eq!(saved_reals(&save), want, "{save}");
    // The service line is intact too.
    assert!(
        save.lines()
            .any(|l| l.starts_with(&format!("-A -t {VIP}")) && l.contains("wrr")),
        "{save}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Privileges
// ---------------------------------------------------------------------------

/// The pin directory and every pinned map are for root only, and lbctl run
/// by an unprivileged user says what it needs, exits non-zero and changes
/// nothing.
#[test]
fn tables_are_root_only_and_lbctl_without_privileges_changes_nothing() -> Result<()> {
    if !require_root("tables_are_root_only_and_lbctl_without_privileges_changes_nothing") {
        return Ok(());
    }
    let ctl = Ctl::new("priv")?;
    // A directory lbctl creates itself, as /sys/fs/bpf/lb.
    let dir = ctl.pins.join("lb");
    let as_root = |a: &[&str]| -> Result<Output> { Ok(ctl.cmd_at(&dir, a).output()?) };
    for a in [
        &["attach", "eth0", "--conns", "4096", "--templates", "4096"][..],
        &["-A", "-t", "203.0.113.10:80", "-s", "rr"],
    ] {
        let o = as_root(a)?;
        ensure!(o.status.success(), "lbctl {a:?}: {}", stderr_of(&o));
    }
    assert!(dir.join("link_eth0").exists());
    let mode = std::fs::metadata(&dir)?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "pin directory mode {mode:o}");
    let mut pins = 0;
    for e in std::fs::read_dir(&dir)? {
        let e = e?;
        let mode = e.metadata()?.permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{} is mode {mode:o}", e.path().display());
        pins += 1;
    }
    assert!(pins >= 10, "{pins} pins");
    let before = String::from_utf8_lossy(&as_root(&["-S", "-n"])?.stdout).into_owned();

    for a in [
        &["-A", "-t", "203.0.113.10:443", "-s", "rr"][..],
        &["-D", "-t", "203.0.113.10:80"],
        &["-C"],
        &["attach", "eth0", "--reset"],
        &["detach", "eth0"],
        &["-L", "-n"],
    ] {
        // nobody, no groups, no capabilities.
        let mut c = ctl.ns.nsenter_cmd("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&ctl.lbctl)
            .args(a)
            .env("LB_PIN_PATH", &dir);
        let o = c.output()?;
        let err = stderr_of(&o);
        assert!(!o.status.success(), "lbctl {a:?} as nobody succeeded");
        assert!(
            err.contains("root") && err.contains("CAP_BPF") && err.contains("CAP_NET_ADMIN"),
            "lbctl {a:?} as nobody: {err}"
        );
    }
    let after = String::from_utf8_lossy(&as_root(&["-S", "-n"])?.stdout).into_owned();
    assert_eq!(before, after, "nothing changed");
    assert!(dir.join("link_eth0").exists(), "still attached");
    let link = ctl.ns.ip(&["-d", "link", "show", "eth0"])?;
    assert!(String::from_utf8_lossy(&link.stdout).contains("xdp"));
    as_root(&["detach", "eth0"])?;
    Ok(())
}
