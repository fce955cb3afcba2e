//! Per-packet cost through `BPF_PROG_TEST_RUN`: one call per frame
//! (`repeat = 1`: with more, the kernel feeds the already rewritten frame
//! back in), the kernel-reported durations summed, rounds interleaved so
//! that every case has a `baseline` measured in the same round.
//!
//! Every frame's verdict and output are checked, and the outcome counters
//! must have moved by exactly the number of frames under the case's reason:
//! a fast number on the wrong path is the commonest benchmarking bug.

use std::{net::Ipv4Addr, time::Instant};

use anyhow::{Context, Result, bail, ensure};
use lb_common::{
    CONN_S_ESTABLISHED, COUNTED_ACTIVE, Conn, ConnKey, IPPROTO_TCP, MAP_CONNS, MAP_TEMPLATES,
    REASON_COUNT, REASON_FWD_CONN, REASON_FWD_NAT_REPLY, REASON_FWD_NEW, REASON_FWD_TEMPLATE,
    REASON_NAMES, REASON_PASS_NO_SERVICE, TMPL_S_NONE, Template, TemplateKey,
};
use lb_tests::{
    frame::{DOC_DST_MAC, DOC_SRC_MAC, Frame},
    lb::{XDP_PASS, XDP_TX},
    topo::mac_for,
};
use lb_user::{
    Sizes,
    model::{
        Fwd, Proto, RealId, RealSpec, Sched, SchedFlags, ServiceId, ServiceSpec, Thresholds, Tunnel,
    },
    table::service_key,
};

use super::{
    batch,
    plane::{PROG_BASELINE, PROG_LB, Plane, monotonic_ns, real_addr},
    stats::{Spread, median},
};

pub const VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 10);
/// A destination no service matches.
pub const OTHER_VIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 99);
pub const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
/// The load balancer's MAC as the client's frames carry it.
pub const LB_MAC: [u8; 6] = DOC_DST_MAC;
/// Port of the wrr service (16 reals, weights 1..=16).
pub const WEB_PORT: u16 = 80;
/// Port of the persistent wrr service (16 reals, weight 1).
pub const PERSIST_PORT: u16 = 443;
/// Ports of the sh and mh services (16 reals, weight 1, `-b sh-port` /
/// `-b mh-port`), set up by the packet benchmark only.
pub const SH_PORT: u16 = 8001;
pub const MH_PORT: u16 = 8002;
/// The port of the `new-fwm` case: a rule gives it mark 1, the fwmark
/// service of 16 reals (wrr) takes it.
pub const FWM_PORT: u16 = 8003;
/// Port of the tunnelling service of the `established-tun` case: one real
/// (real 0) with `-i` (IPIP).
pub const TUN_PORT: u16 = 8004;
/// Real servers per service.
pub const REALS: usize = 16;
/// Clients with a persistence template in the `template` case.
const TEMPLATE_CLIENTS: usize = 4;

pub fn web() -> ServiceId {
    ServiceId {
        proto: Proto::Tcp,
        addr: VIP.into(),
        port: WEB_PORT,
    }
}

pub fn persist() -> ServiceId {
    ServiceId {
        proto: Proto::Tcp,
        addr: VIP.into(),
        port: PERSIST_PORT,
    }
}

pub fn real(i: usize, port: u16, weight: u32) -> RealSpec {
    RealSpec {
        id: RealId {
            addr: real_addr(i).into(),
            port,
        },
        fwd: Fwd::Route,
        weight,
        thresholds: Thresholds::NONE,
    }
}

/// A TCP frame from `src:sport` to `dst:dport` as the client sends it.
pub fn tcp(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> Frame {
    Frame::tcp(src, dst)
        .src_mac(DOC_SRC_MAC)
        .dst_mac(LB_MAC)
        .ports(sport, dport)
}

/// A segment of an established flow: ACK with 10 bytes of data (64-byte frame).
pub fn data_segment(src: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
    tcp(src, sport, VIP, dport)
        .ack()
        .psh()
        .seq(1)
        .ack_seq(1)
        .payload(b"0123456789")
        .build()
}

/// The `i`-th documentation address: 192.0.2.0/24, 198.51.100.0/24,
/// 203.0.113.0/24 (768 in all).
pub fn doc_addr(i: usize) -> Ipv4Addr {
    let i = i % 768;
    match i / 256 {
        0 => Ipv4Addr::new(192, 0, 2, i as u8),
        1 => Ipv4Addr::new(198, 51, 100, (i - 256) as u8),
        _ => Ipv4Addr::new(203, 0, 113, (i - 512) as u8),
    }
}

/// The real server (index) a forwarded frame was sent to.
pub fn real_of(out: &[u8]) -> Option<usize> {
    let mac: [u8; 6] = out.get(0..6)?.try_into().ok()?;
    (0..super::plane::LAB_REALS as usize).find(|&i| mac_for(real_addr(i)) == mac)
}

/// Both services of the benchmark, as `ipvsadm` would set them up:
/// `-A -t VIP:80 -s wrr` with 16 reals of weights 1..=16, and
/// `-A -t VIP:443 -s wrr -p 300` with 16 reals of weight 1.
pub fn provision(plane: &mut Plane) -> Result<()> {
    let t = plane.table()?;
    t.add_service(&ServiceSpec {
        id: web(),
        sched: Sched::Wrr,
        persistent: None,
        netmask: Ipv4Addr::BROADCAST.into(),
        one_packet: false,
    })?;
    t.add_service(&ServiceSpec {
        id: persist(),
        sched: Sched::Wrr,
        persistent: Some(300),
        netmask: Ipv4Addr::BROADCAST.into(),
        one_packet: false,
    })?;
    for i in 0..REALS {
        t.add_real(&web(), &real(i, WEB_PORT, i as u32 + 1))?;
        t.add_real(&persist(), &real(i, PERSIST_PORT, 1))?;
    }
    Ok(())
}

/// (DESTS index, generation, template epoch) of every real of a service.
pub fn dest_bindings(plane: &mut Plane, id: &ServiceId) -> Result<Vec<(u32, u32, u32)>> {
    let t = plane.table()?;
    let svc = t.pins.services.get(&service_key(id), 0)?;
    let mut out = Vec::new();
    for sd in &t.read_list(&svc)? {
        let d = t.pins.dests.get(&sd.dest, 0)?;
        out.push((sd.dest, d.generation, d.tmpl_epoch));
    }
    Ok(out)
}

/// Fills CONNS with `conns` entries of the wrr service and TEMPLATES with
/// `templates` entries of the persistent one, all live and bound to real
/// servers of their service (round robin), keys from documentation
/// addresses. Template keys vary the port from `tmpl_port0` up (there are
/// not a million documentation client addresses). Returns the seconds spent.
pub fn fill(plane: &mut Plane, conns: usize, templates: usize, tmpl_port0: u16) -> Result<f64> {
    let start = Instant::now();
    let now = monotonic_ns();
    if conns > 0 {
        let binds = dest_bindings(plane, &web())?;
        let mut keys = Vec::with_capacity(conns);
        let mut values = Vec::with_capacity(conns);
        for i in 0..conns {
            keys.push(ConnKey {
                caddr: lb_common::addr_v4(doc_addr(i).octets()),
                vaddr: lb_common::addr_v4(VIP.octets()),
                cport: (1024 + (i / 768) as u16).to_be_bytes(),
                vport: WEB_PORT.to_be_bytes(),
                proto: IPPROTO_TCP,
                _pad: [0; 3],
            });
            let (dest, dest_gen, _) = binds[i % binds.len()];
            values.push(Conn {
                last_seen: now,
                tmpl_pushed: 0,
                dest,
                dest_gen,
                timeout: 3600,
                svc: 0,
                state: CONN_S_ESTABLISHED,
                flags: 0,
                fwd: lb_common::FWD_ROUTE,
                _pad: 0,
                counted: COUNTED_ACTIVE,
            });
        }
        from_every_cpu(plane.conns_fd()?, &keys, &values)
            .with_context(|| format!("filling {MAP_CONNS}"))?;
        // What the program would have counted for them (ESTABLISHED:
        // active), so that -L and the counting schedulers see them.
        let mut per_dest = std::collections::BTreeMap::<u32, u32>::new();
        for v in &values {
            *per_dest.entry(v.dest).or_default() += 1;
        }
        let counts = &mut plane.table()?.pins.dest_conns;
        for (dest, n) in per_dest {
            let mut c = counts.get(&dest, 0)?;
            c.active += n;
            counts.set(dest, c, 0)?;
        }
    }
    if templates > 0 {
        let binds = dest_bindings(plane, &persist())?;
        let mut keys = Vec::with_capacity(templates);
        let mut values = Vec::with_capacity(templates);
        for i in 0..templates {
            let port = tmpl_port0 as usize + i / 768;
            ensure!(port < 65536, "too many templates for the key space");
            keys.push(template_key(doc_addr(i), port as u16));
            let (dest, dest_gen, epoch) = binds[i % binds.len()];
            values.push(Template {
                expires: now + 3600 * 1_000_000_000,
                deadline: now + 3600 * 1_000_000_000,
                dest,
                dest_gen,
                epoch,
                timeout: 300,
                open: 0,
                state: TMPL_S_NONE,
                flags: 0,
                _pad: [0; 2],
            });
        }
        from_every_cpu(plane.templates_fd()?, &keys, &values)
            .with_context(|| format!("filling {MAP_TEMPLATES}"))?;
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Batch-inserts an equal share of the entries from each CPU: an LRU map
/// made with `BPF_F_NO_COMMON_LRU` gives each CPU only its share of the
/// capacity, so one CPU alone could not fill it.
fn from_every_cpu<K: aya::Pod + Sync, V: aya::Pod + Sync>(
    fd: std::os::fd::BorrowedFd<'_>,
    keys: &[K],
    values: &[V],
) -> Result<()> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = keys.len().div_ceil(cpus).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = keys
            .chunks(per)
            .zip(values.chunks(per))
            .enumerate()
            .map(|(cpu, (k, v))| {
                scope.spawn(move || {
                    lb_tests::lb::pin_to_cpu(cpu);
                    batch::update(fd, k, v)
                })
            })
            .collect();
        for h in handles {
            h.join()
                .map_err(|_| anyhow::anyhow!("filling thread panicked"))??;
        }
        Ok(())
    })
}

pub fn template_key(caddr: Ipv4Addr, vport: u16) -> TemplateKey {
    TemplateKey {
        caddr: lb_common::addr_v4(caddr.octets()),
        vaddr: lb_common::addr_v4(VIP.octets()),
        vport: vport.to_be_bytes(),
        proto: IPPROTO_TCP,
        _pad: 0,
    }
}

pub fn conn_key(frame_src: Ipv4Addr, sport: u16, dport: u16) -> ConnKey {
    ConnKey {
        caddr: lb_common::addr_v4(frame_src.octets()),
        vaddr: lb_common::addr_v4(VIP.octets()),
        cport: sport.to_be_bytes(),
        vport: dport.to_be_bytes(),
        proto: IPPROTO_TCP,
        _pad: [0; 3],
    }
}

/// What a case's output frames must look like.
#[derive(Clone)]
enum Expect {
    /// MACs swapped, the rest untouched (the baseline).
    Swapped,
    /// Unchanged (passed to the stack).
    Unchanged,
    /// Direct routing to one of the service's reals: destination MAC the
    /// real's, source ours, the rest untouched.
    Routed,
    /// Rewritten (masquerading): this destination MAC and these bytes after
    /// the MACs.
    Rewritten([u8; 6], Vec<u8>),
    /// Direct routing to the given real for frame `i` (`reals[i % len]`).
    RoutedTo(Vec<usize>),
    /// IPIP to one of the reals: 20 bytes of outer IPv4 header in front,
    /// the inner packet with its TTL one less (checksum updated).
    Tunnelled,
}

struct Case {
    name: &'static str,
    /// Index into the planes.
    plane: usize,
    prog: &'static str,
    /// Frames, used in turn.
    frames: Vec<Vec<u8>>,
    action: u32,
    /// The counter that must move by one per frame (none for the baseline).
    reason: Option<u32>,
    expect: Expect,
    /// Conn entries the case creates, removed after each round so that
    /// every round starts from the same tables.
    creates: Vec<ConnKey>,
    what: &'static str,
}

/// One row of the result.
#[derive(Clone, Debug)]
pub struct CaseResult {
    pub name: &'static str,
    /// Mean ns per frame in each round.
    pub rounds: Vec<f64>,
    /// Ratio to the baseline of the same round.
    pub ratios: Vec<f64>,
    pub what: &'static str,
}

impl CaseResult {
    pub fn ns(&self) -> Spread {
        Spread::of(&self.rounds)
    }
    pub fn ratio(&self) -> f64 {
        median(&self.ratios)
    }
}

pub struct PacketReport {
    pub cases: Vec<CaseResult>,
    pub frames: usize,
    pub rounds: usize,
    pub cpu: usize,
    /// (CONNS entries, capacity, TEMPLATES entries, capacity) of the `full` plane.
    pub full_fill: (usize, u32, usize, u32),
    /// The sweeper's first sweep of the `full` plane: (entries, ns).
    pub sweep: (u64, u64),
    /// Verified instructions and JITed bytes of lb_xdp and lb_baseline.
    pub insns: Vec<(&'static str, u32, u32)>,
    /// Percent of the bench CPU's time stolen by the host while timing.
    pub steal_pct: f64,
}

fn check_output(e: &Expect, i: usize, input: &[u8], out: &[u8], hist: &mut [u64]) -> Result<()> {
    let same_tail = out.len() == input.len() && out[12..] == input[12..];
    let ok = match e {
        Expect::Tunnelled => {
            let inner = out.get(34..).unwrap_or_default();
            out.len() == input.len() + 20
                && real_of(out).is_some()
                && out[6..12] == LB_MAC
                && out[12..14] == [8, 0]
                && out[14 + 9] == 4
                && inner[..8] == input[14..22]
                && inner[8] + 1 == input[22]
                && inner[9] == input[23]
                && inner[12..] == input[26..]
        }
        Expect::Unchanged => out == input,
        Expect::Rewritten(mac, rest) => out[0..6] == *mac && out[12..] == rest[..],
        Expect::Swapped => same_tail && out[0..6] == input[6..12] && out[6..12] == input[0..6],
        Expect::Routed | Expect::RoutedTo(_) => {
            let r = real_of(out);
            if let Some(r) = r {
                hist[r] += 1;
            }
            let right_real = match e {
                Expect::RoutedTo(v) => r == Some(v[i % v.len()]),
                _ => r.is_some_and(|r| r < REALS),
            };
            same_tail && out[6..12] == LB_MAC && right_real
        }
    };
    if !ok {
        bail!(
            "frame {i}: unexpected output {:02x?} for input {:02x?}",
            out,
            input
        );
    }
    Ok(())
}

/// Runs `n` frames of `case` on its plane; returns mean ns per frame.
fn run_case(planes: &[Plane], case: &Case, n: usize, hist: &mut [u64]) -> Result<f64> {
    let plane = &planes[case.plane];
    let before = plane.reasons()?;
    let mut runner = plane.runner(case.prog)?;
    let mut total = 0u64;
    for i in 0..n {
        let f = &case.frames[i % case.frames.len()];
        let (action, ns) = runner.run(f)?;
        if action != case.action {
            bail!(
                "{}: frame {i} got action {action}, expected {}",
                case.name,
                case.action
            );
        }
        check_output(&case.expect, i, f, runner.output(), hist)
            .with_context(|| case.name.to_string())?;
        total += ns;
    }
    let after = plane.reasons()?;
    let mut want = vec![0u64; REASON_COUNT as usize];
    if let Some(r) = case.reason {
        want[r as usize] = n as u64;
    }
    let moved: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    if moved != want {
        let show = |v: &[u64]| -> String {
            v.iter()
                .enumerate()
                .filter(|(_, c)| **c != 0)
                .map(|(i, c)| format!("{}={c}", REASON_NAMES[i]))
                .collect::<Vec<_>>()
                .join(" ")
        };
        bail!(
            "{}: the program took another path: counters moved [{}], expected [{}]",
            case.name,
            show(&moved),
            show(&want)
        );
    }
    Ok(total as f64 / n as f64)
}

/// Sets up a plane with both services, the established flow and the
/// templates of the template clients; returns the reals those clients are
/// bound to.
fn prepare(plane: &mut Plane) -> Result<Vec<usize>> {
    provision(plane)?;
    // The sh and mh services of the `new-sh` and `new-mh` cases.
    let t = plane.table()?;
    for (port, sched) in [
        (SH_PORT, Sched::Sh(SchedFlags::PORT)),
        (MH_PORT, Sched::Mh(SchedFlags::PORT)),
    ] {
        let id = ServiceId { port, ..web() };
        t.add_service(&ServiceSpec {
            id,
            sched,
            persistent: None,
            netmask: Ipv4Addr::BROADCAST.into(),
            one_packet: false,
        })?;
        for i in 0..REALS {
            t.add_real(&id, &real(i, port, 1))?;
        }
    }
    // The tunnelling service of the `established-tun` case.
    let tun = ServiceId {
        port: TUN_PORT,
        ..web()
    };
    t.add_service(&ServiceSpec {
        id: tun,
        sched: Sched::Wrr,
        persistent: None,
        netmask: Ipv4Addr::BROADCAST.into(),
        one_packet: false,
    })?;
    t.add_real(
        &tun,
        &RealSpec {
            fwd: Fwd::Tunnel(Tunnel::IPIP),
            ..real(0, TUN_PORT, 1)
        },
    )?;
    let mut lb = plane.runner(PROG_LB)?;
    // The established tunnelled flow.
    for f in [
        tcp(CLIENT, 40000, VIP, TUN_PORT).syn().build(),
        data_segment(CLIENT, 40000, TUN_PORT),
    ] {
        let (a, _) = lb.run(&f)?;
        ensure!(a == XDP_TX, "the tunnelled flow not forwarded ({a})");
    }
    // The established flow: SYN (scheduled), then its ACK.
    let syn = tcp(CLIENT, 40000, VIP, WEB_PORT).syn().build();
    let (a, _) = lb.run(&syn)?;
    ensure!(
        a == XDP_TX,
        "SYN of the established flow not forwarded ({a})"
    );
    let (a, _) = lb.run(&data_segment(CLIENT, 40000, WEB_PORT))?;
    ensure!(
        a == XDP_TX,
        "ACK of the established flow not forwarded ({a})"
    );
    // One template per template client.
    let mut bound = Vec::new();
    for k in 0..TEMPLATE_CLIENTS {
        let f = tcp(template_client(k), 1000, VIP, PERSIST_PORT)
            .syn()
            .build();
        let (a, _) = lb.run(&f)?;
        ensure!(
            a == XDP_TX,
            "first SYN of template client {k} not forwarded"
        );
        bound.push(real_of(lb.output()).context("template client's real")?);
    }
    Ok(bound)
}

/// The plane of the `new-fwm` case: only `-A -f 1 -s wrr` of 16 reals and
/// the rule `-p tcp -d VIP --dport FWM_PORT --set-mark 1` (a plane of its
/// own: fwmark rules on the other plane would make its new flows classify
/// too, and their cost comparable with no earlier run).
fn prepare_fwmark(plane: &mut Plane) -> Result<()> {
    let t = plane.table()?;
    let id = ServiceId::fwmark(1);
    t.add_service(&ServiceSpec {
        id,
        sched: Sched::Wrr,
        persistent: None,
        netmask: Ipv4Addr::BROADCAST.into(),
        one_packet: false,
    })?;
    for i in 0..REALS {
        t.add_real(&id, &real(i, 0, 1))?;
    }
    t.add_fwmark_rule(&lb_user::fwmark::FwmarkRule {
        matches: lb_user::fwmark::FwmarkMatch::new(
            Proto::Tcp,
            VIP.into(),
            32,
            Some((FWM_PORT, FWM_PORT)),
        ),
        mark: 1,
    })?;
    Ok(())
}

fn template_client(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 51, 100, 100 + k as u8)
}

pub struct PacketOpts {
    pub frames: usize,
    pub rounds: usize,
    /// Sizes of the plane of every case but `full` (nearly empty).
    pub sizes: Sizes,
    /// Sizes of the plane of the `full` case (filled to 90%).
    pub full_sizes: Sizes,
    pub cpu: usize,
}

/// The per-packet benchmark. Call inside the lab, on the pinned thread.
pub fn run(opts: &PacketOpts) -> Result<PacketReport> {
    let n = opts.frames;
    let mut a = Plane::new(opts.sizes)?;
    let bound = prepare(&mut a)?;
    let mut b = Plane::new(opts.full_sizes)?;
    prepare(&mut b)?;
    let want_conns = opts.full_sizes.conns as usize * 9 / 10;
    let want_tmpls = opts.full_sizes.templates as usize * 9 / 10;
    let fill_secs = {
        // What the flows above already put there counts.
        let have_c = batch::count::<ConnKey, Conn>(b.conns_fd()?)?;
        let have_t = batch::count::<TemplateKey, Template>(b.templates_fd()?)?;
        fill(
            &mut b,
            want_conns.saturating_sub(have_c),
            want_tmpls.saturating_sub(have_t),
            1000,
        )?
    };
    let full_fill = (
        batch::count::<ConnKey, Conn>(b.conns_fd()?)?,
        opts.full_sizes.conns,
        batch::count::<TemplateKey, Template>(b.templates_fd()?)?,
        opts.full_sizes.templates,
    );
    eprintln!(
        "    full: CONNS {}/{} TEMPLATES {}/{} (filled in {fill_secs:.2} s)",
        full_fill.0, full_fill.1, full_fill.2, full_fill.3
    );
    ensure!(
        full_fill.0 >= want_conns && full_fill.2 >= want_tmpls,
        "the LRU tables did not keep 90% of their capacity: {full_fill:?}"
    );

    ensure!(
        n / TEMPLATE_CLIENTS + 1024 < 65536 && n / 256 + 1024 < 65536,
        "too many frames for the port space"
    );
    let est = data_segment(CLIENT, 40000, WEB_PORT);
    let mut template_frames = Vec::with_capacity(n);
    let mut template_keys = Vec::with_capacity(n);
    let mut template_reals = Vec::with_capacity(n);
    let mut new_frames = Vec::with_capacity(n);
    let mut new_keys = Vec::with_capacity(n);
    let mut hash_frames = [Vec::with_capacity(n), Vec::with_capacity(n)];
    let mut hash_keys = [Vec::with_capacity(n), Vec::with_capacity(n)];
    let mut fwm_frames = Vec::with_capacity(n);
    let mut fwm_keys = Vec::with_capacity(n);
    let (new6_frames, new6_keys): (Vec<_>, Vec<_>) = (0..n).map(super::packet6::new_flow6).unzip();
    for i in 0..n {
        // Same clients, a new source port each frame.
        let (c, port) = (
            template_client(i % TEMPLATE_CLIENTS),
            1024 + (i / TEMPLATE_CLIENTS) as u16,
        );
        template_frames.push(tcp(c, port, VIP, PERSIST_PORT).syn().build());
        template_keys.push(conn_key(c, port, PERSIST_PORT));
        template_reals.push(bound[i % TEMPLATE_CLIENTS]);
        // A new client address and port each frame.
        let (c, port) = (
            Ipv4Addr::new(192, 0, 2, (i % 256) as u8),
            1024 + (i / 256) as u16,
        );
        new_frames.push(tcp(c, port, VIP, WEB_PORT).syn().build());
        new_keys.push(conn_key(c, port, WEB_PORT));
        for (k, vport) in [SH_PORT, MH_PORT].into_iter().enumerate() {
            hash_frames[k].push(tcp(c, port, VIP, vport).syn().build());
            hash_keys[k].push(conn_key(c, port, vport));
        }
        fwm_frames.push(tcp(c, port, VIP, FWM_PORT).syn().build());
        fwm_keys.push(conn_key(c, port, FWM_PORT));
    }

    let cases = [
        Case {
            name: "baseline",
            plane: 0,
            prog: PROG_BASELINE,
            frames: vec![est.clone()],
            action: XDP_TX,
            reason: None,
            expect: Expect::Swapped,
            creates: vec![],
            what: "lb_baseline: bounds checks, MAC swap, XDP_TX",
        },
        Case {
            name: "pass",
            plane: 0,
            prog: PROG_LB,
            frames: vec![tcp(CLIENT, 40000, OTHER_VIP, WEB_PORT).syn().build()],
            action: XDP_PASS,
            reason: Some(REASON_PASS_NO_SERVICE),
            expect: Expect::Unchanged,
            creates: vec![],
            what: "no service matches: XDP_PASS",
        },
        Case {
            name: "established",
            plane: 0,
            prog: PROG_LB,
            frames: vec![est.clone()],
            action: XDP_TX,
            reason: Some(REASON_FWD_CONN),
            expect: Expect::Routed,
            creates: vec![],
            what: "data segment of a flow in CONNS",
        },
        Case {
            name: "established-tun",
            plane: 0,
            prog: PROG_LB,
            frames: vec![data_segment(CLIENT, 40000, TUN_PORT)],
            action: XDP_TX,
            reason: Some(REASON_FWD_CONN),
            expect: Expect::Tunnelled,
            creates: vec![],
            what: "data segment of a tunnelled flow (-i, IPIP) in CONNS",
        },
        Case {
            name: "template",
            plane: 0,
            prog: PROG_LB,
            frames: template_frames,
            action: XDP_TX,
            reason: Some(REASON_FWD_TEMPLATE),
            expect: Expect::RoutedTo(template_reals),
            creates: template_keys,
            what: "SYN, new port, client has a template (-p)",
        },
        Case {
            name: "new",
            plane: 0,
            prog: PROG_LB,
            frames: new_frames,
            action: XDP_TX,
            reason: Some(REASON_FWD_NEW),
            expect: Expect::Routed,
            creates: new_keys,
            what: "SYN of a new client, wrr over 16 reals",
        },
        Case {
            name: "new-sh",
            plane: 0,
            prog: PROG_LB,
            frames: std::mem::take(&mut hash_frames[0]),
            action: XDP_TX,
            reason: Some(REASON_FWD_NEW),
            expect: Expect::Routed,
            creates: std::mem::take(&mut hash_keys[0]),
            what: "SYN of a new client, sh (sh-port) over 16 reals",
        },
        Case {
            name: "new-mh",
            plane: 0,
            prog: PROG_LB,
            frames: std::mem::take(&mut hash_frames[1]),
            action: XDP_TX,
            reason: Some(REASON_FWD_NEW),
            expect: Expect::Routed,
            creates: std::mem::take(&mut hash_keys[1]),
            what: "SYN of a new client, mh (mh-port) over 16 reals",
        },
        Case {
            name: "new-fwm",
            plane: 2,
            prog: PROG_LB,
            frames: fwm_frames,
            action: XDP_TX,
            reason: Some(REASON_FWD_NEW),
            expect: Expect::Routed,
            creates: fwm_keys,
            what: "SYN of a new client, classified: fwmark service, wrr over 16 reals",
        },
        Case {
            name: "established6",
            plane: 3,
            prog: PROG_LB,
            frames: vec![super::packet6::data_segment6()],
            action: XDP_TX,
            reason: Some(REASON_FWD_CONN),
            expect: Expect::Routed,
            creates: vec![],
            what: "IPv6: data segment of a flow in CONNS",
        },
        Case {
            name: "new6",
            plane: 3,
            prog: PROG_LB,
            frames: new6_frames,
            action: XDP_TX,
            reason: Some(REASON_FWD_NEW),
            expect: Expect::Routed,
            creates: new6_keys,
            what: "IPv6: SYN of a new client, wrr over 16 reals",
        },
        Case {
            name: "full",
            plane: 1,
            prog: PROG_LB,
            frames: vec![est],
            action: XDP_TX,
            reason: Some(REASON_FWD_CONN),
            expect: Expect::Routed,
            creates: vec![],
            what: "established, CONNS+TEMPLATES 90% full",
        },
        Case {
            name: "nat-request",
            plane: 4,
            prog: PROG_LB,
            frames: vec![super::packet_nat::request()],
            action: XDP_TX,
            reason: Some(REASON_FWD_CONN),
            expect: {
                let (mac, rest) = super::packet_nat::request_out();
                Expect::Rewritten(mac, rest)
            },
            creates: vec![],
            what: "-m: data segment of a flow in CONNS, rewritten to RIP:8080",
        },
        Case {
            name: "nat-reply",
            plane: 4,
            prog: PROG_LB,
            frames: vec![super::packet_nat::reply()],
            action: XDP_TX,
            reason: Some(REASON_FWD_NAT_REPLY),
            expect: {
                let (mac, rest) = super::packet_nat::reply_out();
                Expect::Rewritten(mac, rest)
            },
            creates: vec![],
            what: "-m: the real's data segment, found in NAT_REPLIES, rewritten to VIP:80, sent back the request's way",
        },
    ];

    let mut c = Plane::new(opts.sizes)?;
    prepare_fwmark(&mut c)?;
    let mut d = Plane::new(opts.sizes)?;
    super::packet6::prepare6(&mut d)?;
    let mut e = Plane::new(opts.sizes)?;
    super::packet_nat::prepare_nat(&mut e)?;
    let mut planes = vec![a, b, c, d, e];
    let insns = instructions(&planes[0])?;
    let mut results: Vec<CaseResult> = cases
        .iter()
        .map(|c| CaseResult {
            name: c.name,
            rounds: vec![],
            ratios: vec![],
            what: c.what,
        })
        .collect();
    let steal0 = steal_ticks(opts.cpu);
    for round in 0..opts.rounds {
        let mut baseline = f64::NAN;
        for (ci, case) in cases.iter().enumerate() {
            let mut hist = vec![0u64; super::plane::LAB_REALS as usize];
            let ns = run_case(&planes, case, n, &mut hist)?;
            if case.name == "baseline" {
                baseline = ns;
            }
            if case.name == "new" && n >= 10 * 136 {
                check_wrr_shares(&hist, n)?;
            }
            results[ci].rounds.push(ns);
            results[ci].ratios.push(ns / baseline);
            if !case.creates.is_empty() {
                let fd = planes[case.plane].conns_fd()?;
                let gone = batch::delete(fd, &case.creates)?;
                ensure!(
                    gone == case.creates.len(),
                    "{}: {} of {} conns it made were evicted before the round ended",
                    case.name,
                    case.creates.len() - gone,
                    case.creates.len()
                );
            }
        }
        eprintln!(
            "    round {}/{}: {}",
            round + 1,
            opts.rounds,
            results
                .iter()
                .map(|r| format!("{} {:.1}", r.name, r.rounds[round]))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let steal_pct = steal_ticks(opts.cpu)
        .zip(steal0)
        .map(|((s1, t1), (s0, t0))| 100.0 * (s1 - s0) as f64 / (t1 - t0).max(1) as f64)
        .unwrap_or(0.0);
    // Last, so that its timer disturbs no round: one sweep of the full plane.
    let sweep = planes[1].sweep_once()?;
    planes.clear();
    Ok(PacketReport {
        cases: results,
        frames: n,
        rounds: opts.rounds,
        cpu: opts.cpu,
        full_fill,
        sweep,
        insns,
        steal_pct,
    })
}

/// wrr over weights 1..=16 (sum 136), one CPU: each real gets its weight's
/// share, give or take one pass.
fn check_wrr_shares(hist: &[u64], n: usize) -> Result<()> {
    for (i, &got) in hist.iter().enumerate().take(REALS) {
        let w = i as f64 + 1.0;
        let want = n as f64 * w / 136.0;
        ensure!(
            (got as f64 - want).abs() <= w + 1.0,
            "new: real {} (weight {w}) got {got} of {n} new flows, wrr gives {want:.0}: {hist:?}",
            real_addr(i)
        );
    }
    Ok(())
}

fn instructions(plane: &Plane) -> Result<Vec<(&'static str, u32, u32)>> {
    let mut out = Vec::new();
    for name in [PROG_LB, PROG_BASELINE] {
        let info = plane.xdp(name)?.info()?;
        out.push((
            name,
            info.verified_instruction_count().unwrap_or(0),
            info.size_jitted(),
        ));
    }
    Ok(out)
}

/// (steal, total) ticks of one CPU from /proc/stat.
fn steal_ticks(cpu: usize) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&format!("cpu{cpu}")))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    Some((*v.get(7)?, v.iter().sum()))
}
