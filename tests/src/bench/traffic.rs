//! Real TCP through the load balancer: bulk throughput (one stream and
//! four) and short connections per second from the client namespace to a
//! real server, by direct routing on veth. The same topology with
//! `lb_fwd_baseline` (every frame to the real server, no LB work) is the
//! reference; the client straight to the real server's own address, with
//! no XDP on the path, is shown for information only (any XDP program on a
//! veth turns TSO off on its peer).

use std::{
    io::{Read, Write},
    net::{Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use aya::maps::{Array, Map, MapData, PerCpuArray};
use lb_common::{
    Counters, DEST_F_RESOLVED, Dest, MAP_DESTS, MAP_STATS, REASON_FWD_CONN, REASON_FWD_NEW,
};
use lb_tests::{Netns, lb::LbTopology};
use lb_user::{Sizes, attach};

use super::stats::median;

/// The service port (and the real server's).
const PORT: u16 = 5001;
/// The sizes `LbTopology` attaches with.
const TOPO_SIZES: Sizes = Sizes {
    conns: 65536,
    templates: 65536,
    ..Sizes::DEFAULT
};
const TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Through the VIP, `lb_xdp` on the director.
    Lb,
    /// Through the VIP, `lb_fwd_baseline` on the director.
    Baseline,
    /// To the real server's own address, no XDP on the path.
    Direct,
}

impl Path {
    pub const ALL: [Path; 3] = [Path::Lb, Path::Baseline, Path::Direct];
    pub fn name(self) -> &'static str {
        match self {
            Path::Lb => "lb",
            Path::Baseline => "baseline",
            Path::Direct => "direct",
        }
    }
}

pub struct TrafficOpts {
    /// Length of each run.
    pub secs: f64,
    pub rounds: usize,
    /// Parallel clients of the short-connection run.
    pub cps_clients: usize,
}

/// Medians over the rounds, per path (in `Path::ALL` order).
#[derive(Clone, Debug, Default)]
pub struct PathResult {
    pub gbps_1: f64,
    pub gbps_4: f64,
    pub cps: f64,
    /// Short connections that failed (refused, reset, timed out), all rounds.
    pub failed: u64,
}

#[derive(Clone, Debug, Default)]
pub struct TrafficReport {
    pub paths: Vec<(Path, PathResult)>,
    /// LB / baseline, median over rounds of the ratio within each round
    /// (the two run back to back): 1 stream, 4 streams, connections/s.
    pub lb_vs_baseline: [f64; 3],
    pub secs: f64,
    pub rounds: usize,
    /// The 1-minute load average before and after.
    pub load: (f64, f64),
}

impl TrafficReport {
    pub fn get(&self, p: Path) -> PathResult {
        self.paths
            .iter()
            .find(|(q, _)| *q == p)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    }
}

/// The real server's side: the first byte says what the client wants.
/// `B`: bulk, every byte is counted and the count sent back at EOF.
/// `R`: one request, answered with `ok`, then the server closes.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(ns: &Netns) -> Result<Server> {
        let listener = ns.run_in(|| TcpListener::bind(("0.0.0.0", PORT)))??;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut s) = conn else { continue };
                let _ = s.set_read_timeout(Some(TIMEOUT));
                let mut mode = [0u8; 1];
                if s.read_exact(&mut mode).is_err() {
                    continue;
                }
                if mode[0] == b'B' {
                    std::thread::spawn(move || sink(s));
                } else {
                    let _ = s.write_all(b"ok");
                }
            }
        });
        Ok(Server {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops the accept loop (a connection from inside `ns` wakes it).
    fn stop(mut self, ns: &Netns) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        ns.run_in(|| {
            TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], PORT)), TIMEOUT)
        })??;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        Ok(())
    }
}

fn sink(mut s: TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k as u64,
            Err(_) => return,
        }
    }
    let _ = s.write_all(&n.to_be_bytes());
}

/// One bulk stream until `until`; returns (bytes the server received, when
/// the client learned it).
fn bulk(addr: SocketAddrV4, until: Instant) -> Result<(u64, Instant)> {
    let mut s = TcpStream::connect_timeout(&addr.into(), TIMEOUT).context("bulk connect")?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(b"B")?;
    let buf = vec![0x5au8; 128 * 1024];
    while Instant::now() < until {
        s.write_all(&buf).context("bulk write")?;
    }
    s.shutdown(Shutdown::Write)?;
    let mut n = [0u8; 8];
    s.read_exact(&mut n).context("reading the byte count")?;
    Ok((u64::from_be_bytes(n), Instant::now()))
}

fn one_request(addr: SocketAddrV4) -> std::io::Result<()> {
    let mut s = TcpStream::connect_timeout(&addr.into(), TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.write_all(b"R")?;
    let mut answer = Vec::with_capacity(2);
    s.read_to_end(&mut answer)?;
    if answer != b"ok" {
        return Err(std::io::Error::other("bad answer"));
    }
    Ok(())
}

/// Short connections until `until`: (answered, failed, end).
fn short_conns(addr: SocketAddrV4, until: Instant) -> (u64, u64, Instant) {
    let (mut ok, mut failed) = (0, 0);
    while Instant::now() < until {
        match one_request(addr) {
            Ok(()) => ok += 1,
            Err(_) => failed += 1,
        }
    }
    (ok, failed, Instant::now())
}

/// `streams` bulk streams from the client for `secs`: Gbit/s.
fn run_bulk(client: &Netns, addr: SocketAddrV4, streams: usize, secs: f64) -> Result<f64> {
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let handles = (0..streams)
        .map(|_| client.spawn_thread(move || bulk(addr, until)))
        .collect::<Result<Vec<_>>>()?;
    let mut bytes = 0;
    let mut end = start;
    for h in handles {
        let (b, e) = h
            .join()
            .map_err(|_| anyhow::anyhow!("bulk client panicked"))???;
        bytes += b;
        end = end.max(e);
    }
    ensure!(bytes > 0, "no byte reached the real server");
    Ok(bytes as f64 * 8.0 / (end - start).as_secs_f64() / 1e9)
}

/// Short connections from `clients` threads for `secs`: (per second, failed).
fn run_cps(client: &Netns, addr: SocketAddrV4, clients: usize, secs: f64) -> Result<(f64, u64)> {
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(secs);
    let handles = (0..clients)
        .map(|_| client.spawn_thread(move || short_conns(addr, until)))
        .collect::<Result<Vec<_>>>()?;
    let (mut ok, mut failed, mut end) = (0, 0, start);
    for h in handles {
        let (o, f, e) = h.join().map_err(|_| anyhow::anyhow!("client panicked"))??;
        ok += o;
        failed += f;
        end = end.max(e);
    }
    ensure!(ok > 0, "no short connection was answered ({failed} failed)");
    Ok((ok as f64 / (end - start).as_secs_f64(), failed))
}

/// Packets lb_xdp forwarded so far (new flows and conn hits).
fn forwarded(lb: &LbTopology) -> Result<u64> {
    let md = MapData::from_pin(lb.pins.join(MAP_STATS))?;
    let stats: PerCpuArray<_, Counters> = PerCpuArray::try_from(Map::PerCpuArray(md))?;
    let mut n = 0;
    for r in [REASON_FWD_NEW, REASON_FWD_CONN] {
        n += stats.get(&r, 0)?.iter().map(|c| c.packets).sum::<u64>();
    }
    Ok(n)
}

/// Puts `program` on the director's interface (atomically replacing what
/// is there).
fn use_program(lb: &LbTopology, program: &'static str) -> Result<()> {
    let dir = lb.pins.path().to_path_buf();
    let iface = lb.topo.lb_ifname().to_string();
    lb.topo.lb.ns.run_in(move || {
        attach::attach(&dir, TOPO_SIZES, &iface, attach::Mode::Native, program)
    })??;
    Ok(())
}

/// What one run measures.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Metric {
    OneStream,
    FourStreams,
    ShortConns,
}

pub fn run(opts: &TrafficOpts) -> Result<TrafficReport> {
    let load0 = loadavg();
    let lb = LbTopology::new(1)?;
    let vs = format!("{}:{PORT}", lb.topo.vip);
    let rs = format!("{}:{PORT}", lb.topo.backend(0).addr);
    lb.lbctl_ok(&["-A", "-t", &vs, "-s", "wrr"])?;
    lb.lbctl_ok(&["-a", "-t", &vs, "-r", &rs, "-g", "-w", "1"])?;
    // lb_fwd_baseline forwards to DESTS slot 0: it must be this real, resolved.
    let dests: Array<_, Dest> =
        Array::try_from(Map::Array(MapData::from_pin(lb.pins.join(MAP_DESTS))?))?;
    let d0 = dests.get(&0, 0)?;
    ensure!(
        d0.addr == lb_common::addr_v4(lb.topo.backend(0).addr.octets())
            && d0.flags & DEST_F_RESOLVED != 0,
        "DESTS slot 0 is not the resolved real server"
    );

    let server = Server::start(&lb.topo.backend(0).ns)?;
    let client = &lb.topo.client.ns;
    let vip = lb.topo.vip_sock(PORT);
    let own = SocketAddrV4::new(lb.topo.backend(0).addr, PORT);
    let metrics = [Metric::OneStream, Metric::FourStreams, Metric::ShortConns];
    // samples[path][metric]: one value per round.
    let mut samples = vec![vec![Vec::new(); 3]; 3];
    let mut ratios = vec![Vec::new(); 3];
    let mut failed = [0u64; 3];
    let mut on_director = "lb_xdp";
    let result = (|| -> Result<()> {
        for round in 0..opts.rounds {
            for (mi, &metric) in metrics.iter().enumerate() {
                // LB and baseline back to back, first one then the other.
                let mut order = Path::ALL;
                if round % 2 == 1 {
                    order.swap(0, 1);
                }
                let mut got = [0f64; 3];
                for path in order {
                    let pi = Path::ALL.iter().position(|p| *p == path).unwrap_or(0);
                    let addr = match path {
                        Path::Lb | Path::Baseline => {
                            let program = if path == Path::Lb {
                                "lb_xdp"
                            } else {
                                "lb_fwd_baseline"
                            };
                            if on_director != program {
                                use_program(&lb, program)?;
                                on_director = program;
                            }
                            vip
                        }
                        Path::Direct => own,
                    };
                    let fwd0 = forwarded(&lb)?;
                    let v = match metric {
                        Metric::OneStream => run_bulk(client, addr, 1, opts.secs)?,
                        Metric::FourStreams => run_bulk(client, addr, 4, opts.secs)?,
                        Metric::ShortConns => {
                            let (c, f) = run_cps(client, addr, opts.cps_clients, opts.secs)?;
                            failed[pi] += f;
                            c
                        }
                    };
                    let fwd = forwarded(&lb)? - fwd0;
                    let lb_path = path == Path::Lb;
                    if lb_path && fwd == 0 {
                        bail!("lb: lb_xdp forwarded nothing");
                    }
                    // (Not checked for the direct path: the last segments of
                    // the LB's connections may still be on their way.)
                    if path == Path::Baseline && fwd != 0 {
                        bail!("baseline: lb_xdp forwarded {fwd} packets, still attached?");
                    }
                    samples[pi][mi].push(v);
                    got[pi] = v;
                }
                ratios[mi].push(got[0] / got[1]);
            }
            let last = |p: usize, m: usize| samples[p][m].last().copied().unwrap_or(0.0);
            for (pi, path) in Path::ALL.iter().enumerate() {
                eprintln!(
                    "    round {}/{} {:<8} 1 stream {:.2} Gbit/s, 4 streams {:.2} Gbit/s, {:.0} conn/s",
                    round + 1,
                    opts.rounds,
                    path.name(),
                    last(pi, 0),
                    last(pi, 1),
                    last(pi, 2),
                );
            }
        }
        Ok(())
    })();
    let stopped = server.stop(&lb.topo.backend(0).ns);
    result?;
    stopped?;
    Ok(TrafficReport {
        paths: Path::ALL
            .iter()
            .enumerate()
            .map(|(pi, &p)| {
                (
                    p,
                    PathResult {
                        gbps_1: median(&samples[pi][0]),
                        gbps_4: median(&samples[pi][1]),
                        cps: median(&samples[pi][2]),
                        failed: failed[pi],
                    },
                )
            })
            .collect(),
        lb_vs_baseline: [median(&ratios[0]), median(&ratios[1]), median(&ratios[2])],
        secs: opts.secs,
        rounds: opts.rounds,
        load: (load0, loadavg()),
    })
}

/// The 1-minute load average: other work on this machine shows here.
fn loadavg() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}
