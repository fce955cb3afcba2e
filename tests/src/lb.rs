//! The load balancer under test: `lbctl` for the command line as users run
//! it, and the real XDP program through `BPF_PROG_TEST_RUN` for dataplane
//! fixtures, both on a private pin directory per test.

use std::{
    collections::BTreeMap,
    net::{SocketAddr, SocketAddrV4},
    path::{Path, PathBuf},
    process::Output,
    str::FromStr,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use aya::{Ebpf, TestRun, TestRunOptions, maps::PerCpuArray, programs::Xdp};
use lb_common::{Counters, MAP_STATS, PROGRAM_NAME, REASON_COUNT};
use lb_user::{Pins, Sizes, Table, pins::load_maps};

use crate::{
    client,
    netns::BpfPinDir,
    topo::{DrTopology, TopoConfig},
};

/// Small tables for tests: fast to create, many tests in parallel.
pub const TEST_SIZES: Sizes = Sizes {
    conns: 16384,
    templates: 16384,
    services: 4096,
    reals: 65536,
};

/// The lbctl binary built by `cargo xtask build` (`$LBCTL`, else
/// target/release/lbctl next to this workspace).
pub fn lbctl_path() -> Result<PathBuf> {
    let p = match std::env::var_os("LBCTL") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/lbctl"),
    };
    if !p.exists() {
        bail!(
            "{} not found: build it with `cargo xtask build` (or run the tests with `cargo xtask test`)",
            p.display()
        );
    }
    if lb_user::BPF_OBJECT.is_empty() {
        bail!("the tests were built without the BPF object: run them with `cargo xtask test`");
    }
    Ok(p)
}

/// Pins the calling thread to one CPU, so that per-CPU maps (scheduler state,
/// counters) are the same slot on every `test_run`.
pub fn pin_to_cpu(cpu: usize) {
    use nix::{
        sched::{CpuSet, sched_setaffinity},
        unistd::Pid,
    };
    let mut set = CpuSet::new();
    // A CPU that does not exist leaves the thread where it was.
    if set.set(cpu).is_ok() {
        let _ = sched_setaffinity(Pid::from_raw(0), &set);
    }
}

/// The XDP program loaded (not attached) on a private pin directory, with
/// the control plane (`Table`) over the same maps.
pub struct Dataplane {
    pub table: Table,
    /// `ingress_ifindex` the frames arrive on (0: the kernel's default,
    /// loopback).
    pub ingress: u32,
    ebpf: Ebpf,
    pub pins: BpfPinDir,
}

/// What one `test_run` gave.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub action: u32,
    pub frame: Vec<u8>,
}

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;

impl Dataplane {
    pub fn new() -> Result<Dataplane> {
        Self::with_program(PROGRAM_NAME)
    }

    /// Loads `program` of the object (`lb_xdp`, `lb_baseline`, `lb_pass`).
    pub fn with_program(program: &str) -> Result<Dataplane> {
        if lb_user::BPF_OBJECT.is_empty() {
            bail!("the tests were built without the BPF object: run them with `cargo xtask test`");
        }
        let pins = BpfPinDir::new()?;
        let table = Table::new(Pins::open(pins.path(), Some(TEST_SIZES))?);
        let mut ebpf = load_maps(pins.path(), TEST_SIZES)?;
        let prog: &mut Xdp = ebpf
            .program_mut(program)
            .context("program missing from the object")?
            .try_into()?;
        prog.load().with_context(|| format!("loading {program}"))?;
        Ok(Dataplane {
            table,
            ingress: 0,
            ebpf,
            pins,
        })
    }

    /// Arms the sweeper as `lbctl attach` does: from then on the program's
    /// timer expires entries on its own.
    pub fn arm_sweeper(&mut self) -> Result<()> {
        arm_sweeper(&mut self.ebpf)
    }

    fn prog(&self, name: &str) -> &Xdp {
        self.ebpf
            .program(name)
            .and_then(|p| <&Xdp>::try_from(p).ok())
            .expect("loaded program")
    }

    /// Runs the program once on `frame`.
    pub fn run(&self, frame: &[u8]) -> Result<RunResult> {
        self.run_prog(PROGRAM_NAME, frame)
    }

    /// Frames arrive on this interface (of the calling thread's namespace).
    pub fn set_ingress(&mut self, iface: &str) -> Result<()> {
        self.ingress = lb_user::neigh::ifindex(iface).with_context(|| format!("no {iface}"))?;
        Ok(())
    }

    fn xdp_md(&self, len: usize) -> [u8; 24] {
        let mut md = [0u8; 24];
        md[4..8].copy_from_slice(&(len as u32).to_ne_bytes());
        md[12..16].copy_from_slice(&self.ingress.to_ne_bytes());
        md
    }

    pub fn run_prog(&self, name: &str, frame: &[u8]) -> Result<RunResult> {
        Ok(self.time(name, frame, 1)?.0)
    }

    /// Runs `repeat` times in one syscall; returns the kernel's mean ns.
    pub fn time(&self, name: &str, frame: &[u8], repeat: u32) -> Result<(RunResult, f64)> {
        let mut out = vec![0u8; frame.len() + 512];
        let md = self.xdp_md(frame.len());
        let r = self.prog(name).test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: (self.ingress != 0).then_some(&md[..]),
            repeat,
            ..TestRunOptions::default()
        })?;
        out.truncate(r.data_size_out as usize);
        Ok((
            RunResult {
                action: r.return_value,
                frame: out,
            },
            r.duration.as_nanos() as f64,
        ))
    }

    /// Packets counted under each `REASON_*`, summed over CPUs.
    pub fn reasons(&self) -> Result<Vec<u64>> {
        let stats: PerCpuArray<_, Counters> =
            PerCpuArray::try_from(self.ebpf.map(MAP_STATS).context(MAP_STATS)?)?;
        let mut out = vec![0; REASON_COUNT as usize];
        for (i, o) in out.iter_mut().enumerate() {
            *o = stats.get(&(i as u32), 0)?.iter().map(|c| c.packets).sum();
        }
        Ok(out)
    }
}

/// A direct-routing topology with the load balancer attached on the LB's
/// interface, driven with lbctl as a user would.
pub struct LbTopology {
    pub topo: DrTopology,
    pub pins: BpfPinDir,
    lbctl: PathBuf,
}

impl LbTopology {
    /// Builds the topology with `backends` real servers, attaches the load
    /// balancer to the LB's interface and a pass-through program to its peer
    /// on the bridge (veth drops `XDP_TX` frames unless the peer runs XDP).
    pub fn new(backends: usize) -> Result<LbTopology> {
        LbTopology::with_config(&TopoConfig::new(backends))
    }

    /// [`LbTopology::new`] on a topology built from `cfg`.
    pub fn with_config(cfg: &TopoConfig) -> Result<LbTopology> {
        let lbctl = lbctl_path()?;
        let topo = DrTopology::build(cfg)?;
        let pins = BpfPinDir::new()?;
        let lb = LbTopology { topo, pins, lbctl };
        lb.lbctl_ok(&["attach", "eth0", "--conns", "65536", "--templates", "65536"])?;
        let dir = lb.pins.path().to_path_buf();
        let peer = lb.topo.lb_peer().to_string();
        lb.topo.switch.run_in(move || {
            lb_user::attach::attach(
                &dir,
                Sizes {
                    conns: 65536,
                    templates: 65536,
                    ..Sizes::DEFAULT
                },
                &peer,
                lb_user::attach::Mode::Native,
                "lb_pass",
            )
        })??;
        Ok(lb)
    }

    /// The `lbctl` binary under test.
    pub fn lbctl_bin(&self) -> &Path {
        &self.lbctl
    }

    /// Runs `lbctl ARGS` in the LB's namespace (network only, so the pins
    /// stay visible) on this topology's pin directory.
    pub fn lbctl(&self, args: &[&str]) -> Result<Output> {
        self.lbctl_stdin(args, None)
    }

    pub fn lbctl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        use std::io::Write;
        let mut cmd = self.topo.lb.ns.nsenter_cmd(&self.lbctl);
        cmd.args(args).env("LB_PIN_PATH", self.pins.path());
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().context("spawning lbctl")?;
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .context("stdin")?
                .write_all(input.as_bytes())?;
        }
        drop(child.stdin.take());
        Ok(child.wait_with_output()?)
    }

    /// The rows of `lbctl -L -c -n`: connection entries and persistence templates.
    pub fn conn_rows(&self) -> Result<Vec<ConnRow>> {
        parse_conn_listing(&self.lbctl_ok(&["-L", "-c", "-n"])?)
    }

    /// The rows of `lbctl -L -c -n` of both families (`[2001:db8::10]:40000` as well as
    /// `198.51.100.10:40000`).
    pub fn conn_rows_any(&self) -> Result<Vec<ConnRow<SocketAddr>>> {
        parse_conn_listing_as(&self.lbctl_ok(&["-L", "-c", "-n"])?)
    }

    /// Packets counted under each `REASON_*` (the pinned `STATS` map), summed over CPUs:
    /// what the XDP program did with every packet, for assertions and diagnostics.
    pub fn reasons(&self) -> Result<Vec<u64>> {
        let pins = Pins::open(self.pins.path(), None)?;
        let mut out = vec![0; REASON_COUNT as usize];
        for (i, o) in out.iter_mut().enumerate() {
            *o = pins
                .stats
                .get(&(i as u32), 0)?
                .iter()
                .map(|c| c.packets)
                .sum();
        }
        Ok(out)
    }

    /// One `GET /` from the client's namespace to the VIP's `port`; the real server's name.
    pub fn get(&self, port: u16) -> Result<String> {
        client::http_get(
            &self.topo.client.ns,
            self.topo.vip_sock(port),
            client::DEFAULT_TIMEOUT,
        )
    }

    /// `n` GETs from the client's namespace to the VIP's `port`, each on a new connection;
    /// how many each real server answered.
    pub fn gets(&self, port: u16, n: usize) -> Result<BTreeMap<String, usize>> {
        Ok(client::http_get_many(
            &self.topo.client.ns,
            self.topo.vip_sock(port),
            n,
            client::DEFAULT_TIMEOUT,
        )?
        .into_iter()
        .collect())
    }

    /// The arguments of `lbctl fwmark add -p tcp -d VIP --dport PORT --set-mark MARK`: the
    /// VIP's TCP `port` gets `mark`.
    pub fn mark_args(&self, port: u16, mark: u32) -> Vec<String> {
        let vip = self.topo.vip.to_string();
        let (port, mark) = (port.to_string(), mark.to_string());
        [
            "fwmark",
            "add",
            "-p",
            "tcp",
            "-d",
            &vip,
            "--dport",
            &port,
            "--set-mark",
            &mark,
        ]
        .map(String::from)
        .to_vec()
    }

    /// `lbctl fwmark add` of [`LbTopology::mark_args`], which must succeed.
    pub fn mark_tcp(&self, port: u16, mark: u32) -> Result<()> {
        let args = self.mark_args(port, mark);
        self.lbctl_ok(&args.iter().map(String::as_str).collect::<Vec<_>>())?;
        Ok(())
    }

    /// One GET to the VIP's `port`, then five more that must all reach the same real server:
    /// a client held by its persistence template (docs/SEMANTICS.md §9.1), on a topology of
    /// two real servers.
    pub fn sticky_client(&self, port: u16) -> Result<StickyClient> {
        if self.topo.backends.len() != 2 {
            bail!("a sticky client wants two real servers");
        }
        let name = self.get(port)?;
        let got = self.gets(port, 5)?;
        if got != BTreeMap::from([(name.clone(), 5)]) {
            bail!("the client's template to {name} ignored: {got:?}");
        }
        let index = self
            .topo
            .backends
            .iter()
            .position(|b| b.name == name)
            .with_context(|| format!("no real server called {name}"))?;
        let other = self.topo.backends[1 - index].name.clone();
        Ok(StickyClient {
            name,
            index,
            other,
            port,
        })
    }

    /// `lbctl ARGS`, which must succeed; returns stdout.
    pub fn lbctl_ok(&self, args: &[&str]) -> Result<String> {
        let o = self.lbctl(args)?;
        if !o.status.success() {
            bail!(
                "lbctl {} failed ({}): {}",
                args.join(" "),
                o.status,
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }
}

/// A client held by its persistence template ([`LbTopology::sticky_client`]).
#[derive(Debug)]
pub struct StickyClient {
    /// The real server its template points to.
    pub name: String,
    /// That real server's index in the topology.
    pub index: usize,
    /// The other real server.
    pub other: String,
    /// The VIP's port it connects to.
    pub port: u16,
}

impl StickyClient {
    /// After its real server was quiesced (weight 0, still answering): with
    /// `expire_quiescent_template` 0 its next GET still goes there, with 1 it is
    /// rescheduled to the other one (docs/SEMANTICS.md §9.1). Returns `lbctl -L -c -n`,
    /// read after that GET.
    pub fn after_quiesce(&self, lb: &LbTopology, expire_quiescent_template: u32) -> Result<String> {
        let next = lb.get(self.port)?;
        let rows = lb.lbctl_ok(&["-L", "-c", "-n"])?;
        let (want, why) = if expire_quiescent_template == 0 {
            (&self.name, "template ignored")
        } else {
            (&self.other, "template kept")
        };
        if next != *want {
            bail!("{why}: {next} instead of {want}\n{rows}");
        }
        Ok(rows)
    }
}

/// A `Dataplane` fixture test: `lab_test!(name, |dp| { … })` is a `#[test]` that skips
/// without root (`require_root`) and runs the body in [`in_lab`] on a fresh [`Dataplane`]
/// whose ingress is `lab0` (one-armed direct routing: frames come in where the reals are).
/// The body returns `anyhow::Result<()>`; it runs as a closure so that `?` returns from it.
#[macro_export]
macro_rules! lab_test {
    ($name:ident, |$dp:ident| $body:block) => {
        #[test]
        fn $name() -> ::anyhow::Result<()> {
            if !$crate::netns::require_root(stringify!($name)) {
                return Ok(());
            }
            $crate::lb::in_lab(|| {
                let mut $dp = $crate::lb::Dataplane::new()?;
                $dp.set_ingress("lab0")?;
                (|| -> ::anyhow::Result<()> { $body })()
            })
        }
    };
}

/// Like [`lab_test!`], the body run once per address family: the test
/// `NAME` becomes `NAME::ipv4` and `NAME::ipv6`, with `$fam` the
/// [`crate::fixture::Family`].
#[macro_export]
macro_rules! family_test {
    ($name:ident, |$dp:ident, $fam:ident| $body:block) => {
        mod $name {
            use super::*;

            fn body(fam: $crate::fixture::Family) -> ::anyhow::Result<()> {
                if !$crate::netns::require_root(&format!("{}::{fam:?}", stringify!($name))) {
                    return Ok(());
                }
                $crate::lb::in_lab(|| {
                    let mut $dp = $crate::lb::Dataplane::new()?;
                    $dp.set_ingress("lab0")?;
                    let $fam = fam;
                    (|| -> ::anyhow::Result<()> { $body })()
                })
            }

            #[test]
            fn ipv4() -> ::anyhow::Result<()> {
                body($crate::fixture::Family::V4)
            }

            #[test]
            fn ipv6() -> ::anyhow::Result<()> {
                body($crate::fixture::Family::V6)
            }
        }
    };
}

/// A private network namespace for `Dataplane` fixtures: a veth interface
/// on 198.51.100.0/24 and 2001:db8:0:1::/64 with permanent neighbour entries
/// for the real servers 198.51.100.11..=.250 and 2001:db8:0:1::b..=::fa (MAC
/// 02:00:c6:33:64:NN for both), so the controller (IPv4) or the program's
/// `bpf_fib_lookup` (IPv6: the controller does not resolve IPv6 reals yet)
/// finds their MACs at once and nothing is ever sent anywhere. IPv6
/// forwarding is on (`bpf_fib_lookup` answers only a forwarding interface).
pub fn in_lab<R: Send>(f: impl FnOnce() -> Result<R> + Send) -> Result<R> {
    let ns = crate::Netns::new("dp")?;
    ns.sysctl("net.ipv6.conf.all.forwarding", "1")?;
    let mut batch = String::from(
        "link add lab0 type veth peer name lab1\naddr add 198.51.100.2/24 dev lab0\naddr add 2001:db8:0:1::2/64 dev lab0 nodad\nlink set lab1 up\nlink set lab0 up\n",
    );
    for i in 11..=250u8 {
        let mac = crate::netns::format_mac(&real_mac(i));
        batch.push_str(&format!(
            "neigh replace 198.51.100.{i} lladdr {mac} dev lab0 nud permanent\n"
        ));
        batch.push_str(&format!(
            "neigh replace {} lladdr {mac} dev lab0 nud permanent\n",
            crate::fixture::rs6(i)
        ));
    }
    ns.ip_batch(&batch)?;
    ns.run_in(move || {
        pin_to_cpu(0);
        f()
    })?
}

/// Arms the sweeper of a loaded object as `lbctl attach` does (runs
/// `lb_sweep_arm` once).
pub fn arm_sweeper(ebpf: &mut Ebpf) -> Result<()> {
    let prog: &mut Xdp = ebpf
        .program_mut(lb_common::SWEEP_ARM_PROGRAM)
        .context("lb_sweep_arm missing from the object")?
        .try_into()?;
    prog.load().context("loading lb_sweep_arm")?;
    let r = prog.test_run(TestRunOptions {
        data_in: Some(&[0u8; 64]),
        ..TestRunOptions::default()
    })?;
    if r.return_value != XDP_PASS {
        bail!("lb_sweep_arm answered {}", r.return_value);
    }
    Ok(())
}

/// The MAC the lab gives real server 198.51.100.`i`.
pub fn real_mac(i: u8) -> [u8; 6] {
    [0x02, 0x00, 0xc6, 0x33, 0x64, i]
}

/// The frame direct routing must produce from a client's `input`: the same
/// bytes with real `i`'s MAC as destination and the load balancer's
/// (`frame::DOC_DST_MAC`) as source.
pub fn routed(input: &[u8], i: u8) -> Vec<u8> {
    let mut out = input.to_vec();
    out[0..6].copy_from_slice(&real_mac(i));
    out[6..12].copy_from_slice(&crate::frame::DOC_DST_MAC);
    out
}

/// Which real (last address byte) a forwarded frame went to.
pub fn real_of(r: &RunResult) -> Option<u8> {
    (r.action == XDP_TX && r.frame[0..5] == real_mac(0)[0..5]).then(|| r.frame[5])
}

/// Runs the frame and returns how each outcome counter moved.
pub fn run_counted(dp: &Dataplane, f: &[u8]) -> Result<(RunResult, Vec<u64>)> {
    let before = dp.reasons()?;
    let r = dp.run(f)?;
    let after = dp.reasons()?;
    Ok((r, after.iter().zip(&before).map(|(a, b)| a - b).collect()))
}

/// The counter moves of one packet counted under `reason`.
pub fn only(reason: u32) -> Vec<u64> {
    let mut v = vec![0; REASON_COUNT as usize];
    v[reason as usize] = 1;
    v
}

/// The only real server in per-real connection counts.
pub fn sole_real(counts: &std::collections::HashMap<String, usize>) -> Result<String> {
    match counts.keys().collect::<Vec<_>>()[..] {
        [one] => Ok(one.clone()),
        _ => bail!("connections went to several real servers: {counts:?}"),
    }
}

/// One row of `ipvsadm -L -c -n` (`lbctl -L -c -n`): a connection entry, or a persistence
/// template (client port 0). Addresses are `SocketAddrV4` ([`parse_conn_listing`]) or, for a
/// listing with IPv6 rows, `SocketAddr` ([`parse_conn_listing_as`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnRow<A = SocketAddrV4> {
    /// `TCP` or `UDP`.
    pub proto: String,
    /// The `expire` column (`MM:SS`) in seconds.
    pub expire_secs: u64,
    /// `ESTABLISHED`, `FIN_WAIT`, `UDP`, ... for entries; `NONE` or `ASSURED` for templates.
    pub state: String,
    pub source: A,
    pub virt: A,
    pub dest: A,
}

/// An address with a port (the columns of `-L -c -n`).
pub trait HasPort {
    fn port(&self) -> u16;
}

impl HasPort for SocketAddrV4 {
    fn port(&self) -> u16 {
        SocketAddrV4::port(self)
    }
}

impl HasPort for SocketAddr {
    fn port(&self) -> u16 {
        SocketAddr::port(self)
    }
}

impl<A: HasPort> ConnRow<A> {
    /// Whether the row is a persistence template (source port 0).
    pub fn is_template(&self) -> bool {
        self.source.port() == 0
    }
}

/// Parses `-L -c -n` output strictly: the two heading lines of ipvsadm, then one row of six
/// columns per entry (IPv4 only).
pub fn parse_conn_listing(text: &str) -> Result<Vec<ConnRow>> {
    parse_conn_listing_as(text)
}

/// [`parse_conn_listing`] with addresses of type `A` (`SocketAddr`: both families).
pub fn parse_conn_listing_as<A: FromStr>(text: &str) -> Result<Vec<ConnRow<A>>> {
    let mut lines = text.lines();
    if lines.next() != Some("IPVS connection entries")
        || lines.next()
            != Some("pro expire state       source             virtual            destination")
    {
        bail!("not a -L -c -n listing:\n{text}");
    }
    lines
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let row = (|| {
                let [proto, expire, state, source, virt, dest] = f[..] else {
                    return None;
                };
                let (m, s) = expire.split_once(':')?;
                let (m, s): (u64, u64) = (m.parse().ok()?, s.parse().ok()?);
                (s < 60).then_some(())?;
                Some(ConnRow {
                    proto: proto.to_owned(),
                    expire_secs: m * 60 + s,
                    state: state.to_owned(),
                    source: source.parse().ok()?,
                    virt: virt.parse().ok()?,
                    dest: dest.parse().ok()?,
                })
            })();
            row.with_context(|| format!("bad -L -c -n row {line:?} in:\n{text}"))
        })
        .collect()
}

/// Polls `check` (every 100 ms) until it gives `Some`, for at most `limit`; the error says
/// what was awaited. For things that must happen (an entry expiring), never for timing.
pub fn wait_for<T>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = check()? {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("{what}: not within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The fields of the `-L -n` line of real server `addr` (e.g. `198.51.100.11:80`):
/// `["->", addr, Forward, Weight, ActiveConn, InActConn]` (or the `--stats` columns).
pub fn real_line(listing: &str, addr: &str) -> Option<Vec<String>> {
    listing
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|f| {
            f.first().map(String::as_str) == Some("->")
                && f.get(1).map(String::as_str) == Some(addr)
        })
}
