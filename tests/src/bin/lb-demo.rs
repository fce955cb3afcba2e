//! `lb-demo` (run by `cargo xtask demo`): the load balancer as an LVS user
//! meets it, on a direct-routing topology built in network namespaces.
//!
//! 1. a client, a director with the XDP program attached by `lbctl attach`,
//!    and three real servers holding the VIP on `lo`;
//! 2. `-s wrr` with weights 1, 2, 3: 300 requests are shared 1:2:3, and
//!    `lbctl -L -n --stats` counts them;
//! 3. a persistent service (`-p 60`): every connection of the client goes to
//!    the real server of its template, shown by `lbctl -L -c -n`;
//! 4. quiescing that real server (`-e ... -w 0`): with
//!    `expire_quiescent_template=0` (the IPVS default) the client stays on it
//!    through its template, with `=1` the template is expired on use and the
//!    client moves; an established connection keeps its real server throughout;
//! 5. everything is removed, and the removal is checked.
//!
//! Every `lbctl` command is printed before it runs, as the user would type it.
//! Each result is checked against what IPVS does: a difference is reported and
//! the demo exits non-zero. Namespaces and pins are removed on every path:
//! success, error, panic, and Ctrl-C / SIGTERM / SIGHUP (a handler sets a flag
//! that every step checks, so the guards' `Drop` runs).

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::net::SocketAddrV4;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use lb_tests::client::{self, HoldConn, Outcome};
use lb_tests::lb::LbTopology;
use lb_tests::netns::{BPF_FS, NETNS_PREFIX, PIN_DIR_PREFIX};
use lb_tests::topo::{CLIENT_ADDR, LB_ADDR};

/// Number of real servers.
const BACKENDS: usize = 3;
/// Weights of rs1, rs2, rs3.
const WEIGHTS: [u32; BACKENDS] = [1, 2, 3];
/// The port of the balancing service (step 2).
const WRR_PORT: u16 = 80;
/// The port of the persistent service (steps 3 and 4).
const PERSIST_PORT: u16 = 8080;
/// Persistence timeout (`-p`), in seconds.
const PERSIST_TIMEOUT: &str = "60";
/// Requests of step 2.
const WRR_REQUESTS: usize = 300;
/// Requests of step 3.
const PERSIST_REQUESTS: usize = 10;
/// Requests are sent in batches of this size, so that Ctrl-C is seen quickly.
const BATCH: usize = 25;
/// Per-request timeout.
const TIMEOUT: Duration = client::DEFAULT_TIMEOUT;

/// Set by the signal handler; every step checks it.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    // From now on further signals are ignored, by this process and by the
    // `ip` commands the cleanup runs (SIG_IGN is inherited across exec), so
    // that a second Ctrl-C cannot leave a namespace behind. Everything the
    // demo waits on has a timeout, so the cleanup always gets to run.
    let msg = b"\nlb-demo: interrupted; cleaning up (namespaces, pins)...\n";
    // SAFETY: write(2) and sigaction(2) are async-signal-safe; the buffer
    // and the sigaction struct are valid for the calls.
    unsafe {
        libc::write(2, msg.as_ptr().cast(), msg.len());
        let mut ign: libc::sigaction = std::mem::zeroed();
        ign.sa_sigaction = libc::SIG_IGN;
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaction(sig, &ign, std::ptr::null_mut());
        }
    }
}

/// Installs [`on_signal`] for SIGINT, SIGTERM and SIGHUP.
fn install_signal_handlers() -> Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction with a valid handler and an empty mask;
        // the handler only does async-signal-safe work.
        let rc = unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(sig, &act, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error()).context("cannot install a signal handler");
        }
    }
    Ok(())
}

/// Fails once the user has asked to stop.
fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// What the demo found, for the summary.
#[derive(Default)]
struct Report {
    /// The step being run (named in the error message if it fails).
    step: String,
    /// What the topology created, for the summary.
    netns: Vec<String>,
    pin_dir: Option<PathBuf>,
    /// Summary lines: (topic, what happened).
    lines: Vec<(&'static str, String)>,
}

impl Report {
    fn step(&mut self, n: u32, title: &str) {
        self.step = format!("{n}. {title}");
        println!("\n== {n}. {title} ==");
    }
}

fn main() -> ExitCode {
    let mut report = Report::default();
    let result = install_signal_handlers().and_then(|()| {
        // A panic unwinds through `run`, dropping the guards, and is reported
        // like any other failure.
        std::panic::catch_unwind(AssertUnwindSafe(|| run(&mut report)))
            .unwrap_or_else(|_| Err(anyhow!("panicked (message above)")))
    });
    // `run` has returned: the topology (namespaces, servers) and the pin
    // directory have been dropped, on every path. Check that they are gone.
    let leftovers = leftovers();
    let mut ok = true;
    match &result {
        Ok(()) => {}
        Err(_) if INTERRUPTED.load(Ordering::SeqCst) => {
            eprintln!("\nlb-demo: interrupted during step {:?}", report.step);
            ok = false;
        }
        Err(e) if report.step.is_empty() => {
            eprintln!("lb-demo: {e:#}");
            ok = false;
        }
        Err(e) => {
            eprintln!("\nlb-demo: FAILED at step {:?}:\n  {e:#}", report.step);
            ok = false;
        }
    }
    if leftovers.is_empty() {
        if !report.netns.is_empty() {
            report.lines.push((
                "cleaned up",
                format!(
                    "{} namespaces and the pin directory {} removed",
                    report.netns.len(),
                    report
                        .pin_dir
                        .as_deref()
                        .map_or("-".into(), |p| p.display().to_string())
                ),
            ));
        }
    } else {
        eprintln!(
            "lb-demo: could not remove everything; remove by hand:\n  {}",
            leftovers.join("\n  ")
        );
        ok = false;
    }
    if ok {
        println!("\n== Summary ==");
        for (topic, line) in &report.lines {
            println!("  {topic:<12} {line}");
        }
        println!(
            "\nNext: README.md shows the same commands on a real interface; \
             `cargo xtask test` runs the test suite."
        );
        ExitCode::SUCCESS
    } else {
        if leftovers.is_empty() && !report.step.is_empty() {
            eprintln!("lb-demo: cleaned up: no namespace or pin of this run is left");
        }
        ExitCode::FAILURE
    }
}

/// Namespaces and pin directories of this process that still exist (their
/// names carry its pid, whatever step created them), as the commands that
/// would remove them.
fn leftovers() -> Vec<String> {
    let pid = std::process::id();
    let mut left = Vec::new();
    let ns_prefix = format!("{NETNS_PREFIX}-{pid}-");
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(o) => {
            for line in String::from_utf8_lossy(&o.stdout).lines() {
                if let Some(ns) = line.split_whitespace().next()
                    && ns.starts_with(&ns_prefix)
                {
                    left.push(format!("ip netns del {ns}"));
                }
            }
        }
        Err(e) => left.push(format!("(cannot run `ip netns list`: {e})")),
    }
    let pin_prefix = format!("{PIN_DIR_PREFIX}-{pid}-");
    if let Ok(dir) = std::fs::read_dir(BPF_FS) {
        for entry in dir.flatten() {
            if entry.file_name().to_string_lossy().starts_with(&pin_prefix) {
                left.push(format!("rm -r {}", entry.path().display()));
            }
        }
    }
    left
}

/// The demo proper. Everything it creates is owned by `lb`, dropped when this
/// returns (or unwinds).
fn run(report: &mut Report) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "needs root (CAP_BPF and CAP_NET_ADMIN): it creates network namespaces \
             and attaches XDP programs. Run `cargo xtask demo` as root."
        );
    }
    let testsrv = test_server()?;
    println!("lb-demo: an XDP load balancer driven like LVS (ipvsadm), in network namespaces.");
    println!(
        "Everything below runs in namespaces this demo creates (documentation addresses only,\n\
         nothing is sent outside them) and is removed at the end, also on error or Ctrl-C."
    );

    report.step(1, "A direct-routing topology (LVS -g)");
    let started = Instant::now();
    let mut lb = LbTopology::new(BACKENDS).context("building the topology")?;
    report.netns = lb.topo.netns_names();
    report.pin_dir = Some(lb.pins.path().to_path_buf());
    check_interrupted()?;
    let vip = lb.topo.vip;
    println!("  client    {CLIENT_ADDR}   routes {vip} via the director");
    println!("  director  {LB_ADDR}    the XDP program on eth0; does not hold the VIP");
    for b in &lb.topo.backends {
        println!(
            "  {:<9} {}  VIP {vip}/32 on lo, arp_ignore=1, arp_announce=2",
            b.name, b.addr
        );
    }
    println!(
        "  The director only rewrites the destination MAC and sends the frame back out \
         (XDP_TX);\n  the real servers answer the client directly, as with LVS direct routing."
    );
    println!("  $ lbctl attach eth0 --conns 65536 --templates 65536");
    println!(
        "    (run in the director's namespace with LB_PIN_PATH={}: this demo's own\n     \
         tables, so a real /sys/fs/bpf/lb is never touched)",
        lb.pins.path().display()
    );
    for port in [WRR_PORT, PERSIST_PORT] {
        lb.topo
            .start_servers(&testsrv, port, false)
            .with_context(|| format!("starting lb-testsrv on port {port}"))?;
    }
    println!(
        "  Each real server runs lb-testsrv on ports {WRR_PORT} and {PERSIST_PORT}: \
         it answers with its name (rs1, rs2, rs3)."
    );
    check_interrupted()?;

    let names: BTreeMap<String, String> = lb
        .topo
        .backends
        .iter()
        .map(|b| (b.addr.to_string(), b.name.clone()))
        .collect();

    report.step(2, "Weighted round robin (-s wrr, weights 1, 2, 3)");
    let svc80 = format!("{vip}:{WRR_PORT}");
    lbctl(&lb, &["-A", "-t", &svc80, "-s", "wrr"])?;
    add_reals(&lb, &svc80)?;
    println!(
        "  {WRR_REQUESTS} HTTP requests from the client to {svc80}, each on a new connection:"
    );
    let counts = requests(&lb, lb.topo.vip_sock(WRR_PORT), WRR_REQUESTS)?;
    let total_weight: u32 = WEIGHTS.iter().sum();
    // The scheduler's state is per CPU: each CPU follows the wrr sequence
    // exactly, and a CPU that stopped mid-sequence leaves each real server a
    // few picks off.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let tolerance = 3 * cpus;
    let mut shares = Vec::new();
    let mut off = Vec::new();
    for (b, w) in lb.topo.backends.iter().zip(WEIGHTS) {
        let got = counts.get(&b.name).copied().unwrap_or(0);
        let expected = WRR_REQUESTS * w as usize / total_weight as usize;
        println!(
            "    {:<4} weight {w}: {got:>4} requests (exactly 1:2:3 would be {expected})",
            b.name
        );
        shares.push(format!("{} {got}", b.name));
        if got.abs_diff(expected) > tolerance {
            off.push(format!("{} got {got} instead of about {expected}", b.name));
        }
    }
    if !off.is_empty() {
        bail!(
            "wrr with weights 1, 2, 3 should share the requests 1:2:3 (within {tolerance} \
             on {cpus} CPUs): {}",
            off.join(", ")
        );
    }
    println!(
        "  (unlike IPVS, each CPU runs the scheduler with its own state: exact per CPU,\n   \
         so the totals can be a few picks off 1:2:3)"
    );
    print_output(&lbctl(&lb, &["-L", "-n", "--stats"])?);
    println!(
        "  OutPkts is 0, as with IPVS direct routing: the replies go from the real servers\n  \
         straight to the client, never through the director."
    );
    report.lines.push((
        "wrr 1:2:3",
        format!("{WRR_REQUESTS} requests -> {}", shares.join(", ")),
    ));

    report.step(3, "Persistence (-p): a client sticks to one real server");
    let svc8080 = format!("{vip}:{PERSIST_PORT}");
    lbctl(
        &lb,
        &["-A", "-t", &svc8080, "-s", "wrr", "-p", PERSIST_TIMEOUT],
    )?;
    add_reals(&lb, &svc8080)?;
    println!(
        "  {PERSIST_REQUESTS} HTTP requests from the client to {svc8080}, each on a new connection:"
    );
    let counts = requests(&lb, lb.topo.vip_sock(PERSIST_PORT), PERSIST_REQUESTS)?;
    let sticky = match counts.iter().next() {
        Some((name, n)) if counts.len() == 1 => {
            println!("    all {n} served by {name}");
            name.clone()
        }
        _ => bail!(
            "a persistent service should send every connection of the client to one real \
             server, got {}",
            show_counts(&counts)
        ),
    };
    println!(
        "  The first connection was scheduled by wrr and made a template \
         (client {CLIENT_ADDR}, port 0)\n  -> {sticky}; the next ones were \
         sent where the template says. It shows in the connection table:"
    );
    let conns = lbctl(&lb, &["-L", "-c", "-n"])?;
    let tmpl = template_row(&conns, &svc8080)
        .with_context(|| format!("no template row for {svc8080} in `lbctl -L -c -n`:\n{conns}"))?;
    let tmpl_dest = names.get(&tmpl.dest).cloned().unwrap_or(tmpl.dest.clone());
    if tmpl_dest != sticky {
        bail!("the template points to {tmpl_dest}, but the requests went to {sticky}");
    }
    print!("{}", conns_of(&conns, &svc8080, true));
    println!(
        "  The row with source port 0 is the template ({}). It expires -p {PERSIST_TIMEOUT} s \
         after the last\n  new connection, or later while connections it made may still be \
         open (an established\n  one may idle for 15 min): {} here (MM:SS).",
        tmpl.state, tmpl.expire
    );
    report.lines.push((
        "persistence",
        format!(
            "{PERSIST_REQUESTS} of {PERSIST_REQUESTS} requests -> {sticky} \
             (template {CLIENT_ADDR}:0 -> {sticky}, -p {PERSIST_TIMEOUT})"
        ),
    ));

    report.step(4, "Quiescing a real server (weight 0)");
    let sticky_addr = lb
        .topo
        .backend_named(&sticky)
        .map(|b| b.addr.to_string())
        .context("unknown real server")?;
    let mut held = HoldConn::open(&lb.topo.client.ns, lb.topo.vip_sock(PERSIST_PORT), TIMEOUT)
        .context("opening a long-lived connection")?;
    let held_port = held.local_addr().map(|a| a.port()).unwrap_or(0);
    println!(
        "  A long-lived connection (client port {held_port}) is open first: served by {}.",
        held.backend()
    );
    if held.backend() != sticky {
        bail!(
            "the long-lived connection went to {}, not to {sticky} where the template points",
            held.backend()
        );
    }
    println!(
        "  Quiesce {sticky} (weight 0, what ldirectord's quiescent=yes does): the scheduler \
         gives it\n  no new clients, and its existing connections keep going."
    );
    lbctl(
        &lb,
        &["-e", "-t", &svc8080, "-r", &sticky_addr, "-g", "-w", "0"],
    )?;
    print_output(&lbctl(&lb, &["-L", "-n", "-t", &svc8080])?);
    print_output(&lbctl(&lb, &["sysctl", "expire_quiescent_template"])?);
    let now = one_request(&lb, PERSIST_PORT)?;
    if now != sticky {
        bail!(
            "with expire_quiescent_template=0 the template should keep the client on \
             {sticky}, but it was served by {now}"
        );
    }
    println!("  client now served by {now}: still on the quiescent server, through its template");
    let held_answer = ask(&mut held, &sticky)?;
    println!("  long-lived connection: {held_answer}");

    println!("  Expire templates that point to a quiescent server when they are next used:");
    lbctl(&lb, &["sysctl", "expire_quiescent_template=1"])?;
    let moved = one_request(&lb, PERSIST_PORT)?;
    if moved == sticky {
        bail!(
            "with expire_quiescent_template=1 the client should move off the quiescent \
             {sticky}, but it was served by {moved} again"
        );
    }
    println!("  client now served by {moved}: moved off the quiescent server (new template)");
    let again = one_request(&lb, PERSIST_PORT)?;
    if again != moved {
        bail!("the new template should keep the client on {moved}, but it went to {again}");
    }
    println!("  client now served by {again}: stays there (the new template)");
    let held_answer = ask(&mut held, &sticky)?;
    println!("  long-lived connection: {held_answer} (connections are never moved)");
    let conns = lbctl(&lb, &["-L", "-c", "-n"])?;
    print!("{}", conns_of(&conns, &svc8080, false));
    let _ = held.close();
    report.lines.push((
        "quiescing",
        format!(
            "{sticky} at weight 0: expire_quiescent_template=0 kept the client there, \
             =1 moved it to {moved}"
        ),
    ));
    report.lines.push((
        "",
        format!("the open connection to {sticky} kept answering throughout"),
    ));

    report.step(5, "Cleaning up");
    println!(
        "  Deleting the {} namespaces (this stops the servers and removes the XDP programs) \
         and the pin directory.",
        report.netns.len()
    );
    drop(lb);
    report.lines.push((
        "run time",
        format!("{:.1} s", started.elapsed().as_secs_f64()),
    ));
    Ok(())
}

/// Finds `lb-testsrv` next to this executable (`cargo xtask demo` builds
/// every binary of the package).
fn test_server() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find the running executable")?;
    let srv = exe.with_file_name("lb-testsrv");
    if !srv.exists() {
        bail!(
            "{} not found: run the demo with `cargo xtask demo`, which builds it",
            srv.display()
        );
    }
    Ok(srv)
}

/// Prints `$ lbctl ARGS`, runs it in the director's namespace and returns
/// its stdout; fails with its stderr.
fn lbctl(lb: &LbTopology, args: &[&str]) -> Result<String> {
    check_interrupted()?;
    let line = format!("lbctl {}", args.join(" "));
    println!("  $ {line}");
    flush();
    let out = lb
        .lbctl(args)
        .with_context(|| format!("running `{line}`"))?;
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}):\n  {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `-a -t SERVICE -r RIP -g -w W` for rs1..rs3 with [`WEIGHTS`].
fn add_reals(lb: &LbTopology, service: &str) -> Result<()> {
    for (b, w) in lb.topo.backends.iter().zip(WEIGHTS) {
        let (rip, w) = (b.addr.to_string(), w.to_string());
        lbctl(lb, &["-a", "-t", service, "-r", &rip, "-g", "-w", &w])?;
    }
    Ok(())
}

/// `n` HTTP requests from the client, each on a new connection; answers per
/// real server.
fn requests(lb: &LbTopology, to: SocketAddrV4, n: usize) -> Result<HashMap<String, usize>> {
    let mut counts = HashMap::new();
    let mut left = n;
    while left > 0 {
        check_interrupted()?;
        let batch = left.min(BATCH);
        for (name, k) in client::http_get_many(&lb.topo.client.ns, to, batch, TIMEOUT)? {
            *counts.entry(name).or_insert(0) += k;
        }
        left -= batch;
    }
    Ok(counts)
}

/// One HTTP request from the client on a new connection: who answered.
fn one_request(lb: &LbTopology, port: u16) -> Result<String> {
    check_interrupted()?;
    client::http_get(&lb.topo.client.ns, lb.topo.vip_sock(port), TIMEOUT)
}

/// Asks on the long-lived connection, which must still reach `expected`.
fn ask(held: &mut HoldConn, expected: &str) -> Result<String> {
    check_interrupted()?;
    match held.ask(TIMEOUT) {
        Outcome::Answered(name) if name == expected => Ok(format!("still answered by {name}")),
        other => {
            bail!("the long-lived connection to {expected} should still be answered by it: {other}")
        }
    }
}

fn show_counts(counts: &HashMap<String, usize>) -> String {
    let mut v: Vec<_> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    v.sort();
    v.join(", ")
}

fn flush() {
    let _ = std::io::stdout().flush();
}

/// Prints a listing, indented.
fn print_output(text: &str) {
    for line in text.lines() {
        println!("    {line}");
    }
}

/// TCP states of a connection that the client has closed.
const CLOSING: [&str; 5] = ["FIN_WAIT", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK"];

/// The rows of `-L -c -n` for `service` (`VIP:port`), indented, without
/// those of the connections already closed unless `closed`, saying what was
/// left out.
fn conns_of(listing: &str, service: &str, closed: bool) -> String {
    let mut out = String::new();
    let (mut other, mut closing) = (0, 0);
    for line in listing.lines() {
        // pro expire state source virtual destination
        let cols: Vec<&str> = line.split_whitespace().collect();
        if !matches!(cols.first(), Some(&"TCP" | &"UDP")) {
            out.push_str(&format!("    {line}\n"));
        } else if cols.get(4) != Some(&service) {
            other += 1;
        } else if !closed && cols.get(2).is_some_and(|st| CLOSING.contains(st)) {
            closing += 1;
        } else {
            out.push_str(&format!("    {line}\n"));
        }
    }
    if closing > 0 {
        out.push_str(&format!(
            "    ({} of closed connections to {service} left out)\n",
            rows(closing)
        ));
    }
    if other > 0 {
        out.push_str(&format!(
            "    ({} of other services left out)\n",
            rows(other)
        ));
    }
    out
}

fn rows(n: usize) -> String {
    if n == 1 {
        "1 row".into()
    } else {
        format!("{n} rows")
    }
}

/// A template row of `-L -c -n`.
struct TemplateRow {
    expire: String,
    state: String,
    dest: String,
}

/// The template of the client for `service` (`VIP:port`): source port 0.
fn template_row(listing: &str, service: &str) -> Option<TemplateRow> {
    let source = format!("{CLIENT_ADDR}:0");
    listing.lines().find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        match cols[..] {
            [_, expire, state, src, virt, dest] if src == source && virt == service => {
                Some(TemplateRow {
                    expire: expire.to_owned(),
                    state: state.to_owned(),
                    dest: dest.rsplit_once(':').map_or(dest, |(a, _)| a).to_owned(),
                })
            }
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: &str = "IPVS connection entries\n\
        pro expire state       source             virtual            destination\n\
        TCP 01:59  TIME_WAIT   198.51.100.10:40000 203.0.113.10:80   198.51.100.13:80\n\
        TCP 01:59  TIME_WAIT   198.51.100.10:40002 203.0.113.10:8080 198.51.100.13:8080\n\
        TCP 00:59  ASSURED     198.51.100.10:0    203.0.113.10:8080  198.51.100.13:8080\n";

    #[test]
    fn finds_the_template_row() {
        let t = template_row(LISTING, "203.0.113.10:8080").expect("template");
        assert_eq!(t.state, "ASSURED");
        assert_eq!(t.expire, "00:59");
        assert_eq!(t.dest, "198.51.100.13");
        assert!(template_row(LISTING, "203.0.113.10:80").is_none());
    }

    #[test]
    fn keeps_the_rows_of_one_service() {
        let all = conns_of(LISTING, "203.0.113.10:8080", true);
        assert_eq!(all.lines().count(), 5, "{all}");
        assert!(all.contains(":40002") && all.contains(":0 "), "{all}");
        assert!(!all.contains(":40000"), "{all}");
        assert!(all.contains("(1 row of other services left out)"), "{all}");
        let open = conns_of(LISTING, "203.0.113.10:8080", false);
        assert!(!open.contains(":40002") && open.contains(":0 "), "{open}");
        assert!(open.contains("(1 row of closed connections"), "{open}");
    }
}
