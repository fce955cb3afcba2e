//! The load balancer on a [`MethodsTopology`]: lbctl attached to the director's interfaces,
//! the decapsulator (`lbctl decap attach eth0`) on every tunnelled real, and the client-side
//! helpers the suites of the forwarding methods share (`tests/tunnel_e2e.rs`,
//! `tests/nat_e2e.rs`, `tests/ldirectord_methods_e2e.rs`).

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use lb_common::REASON_COUNT;
use lb_user::{Pins, Sizes};

use crate::client;
use crate::lb::{ConnRow, lbctl_path, parse_conn_listing_as};
use crate::netns::{BpfPinDir, Netns};
use crate::topo::{IFNAME, Node};
use crate::topo_methods::{MethodsConfig, MethodsTopology};

/// The table sizes `lbctl attach` is given (small: many tests in parallel).
const CONNS: &str = "65536";

/// A [`MethodsTopology`] with the load balancer attached on the director's interfaces (and
/// pass-through programs on their bridge ports) and the decapsulator on every tunnelled real.
pub struct MethodsLb {
    pub topo: MethodsTopology,
    pub pins: BpfPinDir,
    /// The decapsulator's pin directory of each tunnelled real (same order as `topo.tun`).
    pub decap_pins: Vec<BpfPinDir>,
    lbctl: PathBuf,
}

impl MethodsLb {
    /// Builds the topology and attaches everything.
    pub fn new(cfg: &MethodsConfig) -> Result<MethodsLb> {
        Self::build(cfg, true)
    }

    /// Builds the topology and attaches the load balancer, and the decapsulator when `decap`.
    pub fn build(cfg: &MethodsConfig, decap: bool) -> Result<MethodsLb> {
        let lbctl = lbctl_path()?;
        let topo = MethodsTopology::build(cfg)?;
        let pins = BpfPinDir::new()?;
        let decap_pins = topo
            .tun
            .iter()
            .map(|_| BpfPinDir::new())
            .collect::<Result<Vec<_>>>()?;
        let lb = MethodsLb {
            topo,
            pins,
            decap_pins,
            lbctl,
        };
        for (iface, port) in &lb.topo.lb_ports {
            lb.lbctl_ok(&["attach", iface, "--conns", CONNS, "--templates", CONNS])?;
            let dir = lb.pins.path().to_path_buf();
            let port = port.clone();
            lb.topo.switch.run_in(move || {
                lb_user::attach::attach(
                    &dir,
                    Sizes {
                        conns: 65536,
                        templates: 65536,
                        ..Sizes::DEFAULT
                    },
                    &port,
                    lb_user::attach::Mode::Native,
                    "lb_pass",
                )
            })??;
        }
        for i in (0..lb.topo.tun.len()).filter(|_| decap) {
            lb.decap_ok(i, &["decap", "attach", IFNAME])?;
        }
        Ok(lb)
    }

    /// The lbctl binary under test.
    pub fn lbctl_bin(&self) -> &Path {
        &self.lbctl
    }

    /// `lbctl ARGS` in `ns` with `LB_PIN_PATH=pins`.
    fn run(&self, ns: &Netns, pins: &Path, args: &[&str]) -> Result<Output> {
        let mut cmd = ns.nsenter_cmd(&self.lbctl);
        cmd.args(args)
            .env("LB_PIN_PATH", pins)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.output().context("spawning lbctl")
    }

    /// `lbctl ARGS` in the director's namespace.
    pub fn lbctl(&self, args: &[&str]) -> Result<Output> {
        self.run(&self.topo.lb.ns, self.pins.path(), args)
    }

    /// `lbctl ARGS` in the director's namespace, which must succeed; its stdout.
    pub fn lbctl_ok(&self, args: &[&str]) -> Result<String> {
        ok(self.lbctl(args)?, args)
    }

    /// `lbctl ARGS` on tunnelled real `i` (its own pin directory), which must succeed.
    pub fn decap_ok(&self, i: usize, args: &[&str]) -> Result<String> {
        let out = self.run(&self.topo.tun[i].ns, self.decap_pins[i].path(), args)?;
        ok(out, args).with_context(|| format!("on {}", self.topo.tun[i].name))
    }

    /// The decapsulator's packet counters on tunnelled real `i` (`lbctl decap status`), by
    /// outcome (`decap_ipip_v4`, ...).
    pub fn decap_counts(&self, i: usize) -> Result<BTreeMap<String, u64>> {
        let text = self.decap_ok(i, &["decap", "status"])?;
        let mut out = BTreeMap::new();
        let rows = text
            .lines()
            .skip_while(|l| !l.starts_with("Outcome"))
            .skip(1);
        for l in rows {
            let f: Vec<&str> = l.split_whitespace().collect();
            if let [name, packets, _bytes] = f[..] {
                out.insert(name.to_owned(), packets.parse()?);
            }
        }
        if out.is_empty() {
            bail!("no counters in `lbctl decap status`:\n{text}");
        }
        Ok(out)
    }

    /// `outcome`'s packets summed over every tunnelled real.
    pub fn decapped(&self, outcome: &str) -> Result<u64> {
        let mut sum = 0;
        for i in 0..self.topo.tun.len() {
            sum += self.decap_counts(i)?.get(outcome).copied().unwrap_or(0);
        }
        Ok(sum)
    }

    /// Packets counted under each `REASON_*` on the director, summed over CPUs.
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

    /// One reason's count.
    pub fn reason(&self, r: u32) -> Result<u64> {
        Ok(self.reasons()?[r as usize])
    }

    /// The rows of `lbctl -L -c -n`, both families.
    pub fn conn_rows(&self) -> Result<Vec<ConnRow<SocketAddr>>> {
        parse_conn_listing_as(&self.lbctl_ok(&["-L", "-c", "-n"])?)
    }

    /// Starts `lb-testsrv` (TCP) on `port` in every real server.
    pub fn serve_all(&mut self, bin: &Path, port: u16) -> Result<()> {
        for n in self.topo.reals_mut() {
            n.start_server(bin, port, false)?;
        }
        Ok(())
    }

    /// `n` GETs to `addr` from the client, each on a new connection; answers per real.
    pub fn gets(&self, addr: SocketAddr, n: usize) -> Result<BTreeMap<String, usize>> {
        Ok(
            client::http_get_many(&self.topo.client.ns, addr, n, client::DEFAULT_TIMEOUT)?
                .into_iter()
                .collect(),
        )
    }

    /// One GET to `addr` from the client.
    pub fn get(&self, addr: SocketAddr) -> Result<String> {
        client::http_get(&self.topo.client.ns, addr, client::DEFAULT_TIMEOUT)
    }

    /// The client's cached path MTU towards `dst` (`ip route get`), if any.
    pub fn client_pmtu(&self, dst: IpAddr) -> Result<Option<u32>> {
        route_mtu(&self.topo.client.ns, dst)
    }
}

fn ok(out: Output, args: &[&str]) -> Result<String> {
    if !out.status.success() {
        bail!(
            "lbctl {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip route get DST` in `ns`: the `mtu N` it shows (a cached path MTU), if any.
pub fn route_mtu(ns: &Netns, dst: IpAddr) -> Result<Option<u32>> {
    let out = ns.ip(&["route", "get", &dst.to_string()])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut words = text.split_whitespace();
    while let Some(w) = words.next() {
        if w == "mtu" {
            let v = words.next().context("mtu without a value")?;
            return Ok(Some(
                v.parse().with_context(|| format!("bad mtu in {text}"))?,
            ));
        }
    }
    Ok(None)
}

/// A bulk upload to a hold-mode test server (`lb-testsrv`): `HOLD`, then `lines` lines of
/// `len` bytes each, every one answered with the real's name. Full-sized segments from the
/// client: what path MTU discovery is about. Returns the real that answered. Each step may
/// take `timeout` (a lost segment is retransmitted after the client learns the path MTU).
pub fn upload(
    ns: &Netns,
    addr: SocketAddr,
    lines: usize,
    len: usize,
    timeout: Duration,
) -> Result<String> {
    ns.run_in(|| -> Result<String> {
        let s = TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("connect to {addr}"))?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        let mut w = s.try_clone()?;
        let mut r = BufReader::new(s);
        w.write_all(b"HOLD\n")?;
        let mut name = String::new();
        r.read_line(&mut name).context("the HOLD answer")?;
        let name = name.trim_end().to_owned();
        if name.is_empty() {
            bail!("{addr} closed without answering HOLD");
        }
        let mut line = vec![b'x'; len.max(2) - 1];
        line.push(b'\n');
        // Send everything first (the answers are small and fit the client's buffer), then
        // read every answer.
        for _ in 0..lines {
            w.write_all(&line).context("sending")?;
        }
        for i in 0..lines {
            let mut a = String::new();
            r.read_line(&mut a)
                .with_context(|| format!("answer {} of {lines}", i + 1))?;
            if a.trim_end() != name {
                bail!("answer {} of {lines}: {a:?} instead of {name:?}", i + 1);
            }
        }
        w.shutdown(std::net::Shutdown::Both)?;
        Ok(name)
    })?
}

/// A server made by the test itself in a real's namespace (not lb-testsrv): it accepts one
/// connection and holds it open without reading or closing until told to, so the client's
/// and the server's FINs can be sent in the order a test wants.
pub struct QuietServer {
    listener: TcpListener,
}

impl QuietServer {
    /// Listens on `[::]:port` (both families) in `node`'s namespace.
    pub fn listen(node: &Node, port: u16) -> Result<QuietServer> {
        let listener = node
            .ns
            .run_in(|| TcpListener::bind(("::", port)))?
            .with_context(|| format!("cannot listen on port {port} in {}", node.name))?;
        Ok(QuietServer { listener })
    }

    /// Accepts the next connection (within `timeout`).
    pub fn accept(&self, timeout: Duration) -> Result<(TcpStream, SocketAddr)> {
        self.listener.set_nonblocking(true)?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match self.listener.accept() {
                Ok((s, peer)) => {
                    s.set_nonblocking(false)?;
                    return Ok((s, peer));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if std::time::Instant::now() > deadline {
                        bail!("no connection within {timeout:?}");
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Connects from the client to `addr` (a plain stream, nothing sent).
pub fn connect(ns: &Netns, addr: SocketAddr, timeout: Duration) -> Result<TcpStream> {
    match client::tcp_connect(ns, addr, timeout)? {
        Ok(s) => Ok(s),
        Err(o) => bail!("connect to {addr}: {o}"),
    }
}
