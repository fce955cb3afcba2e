//! Flood: new flows from random sources while established flows keep sending, on
//! connection and template tables of a chosen size (table exhaustion).

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use lb_common::REASON_COUNT;
use lb_user::model::{Fwd, Proto, RealId, RealSpec, Sched, ServiceId, ServiceSpec, Thresholds};

use super::{
    config::{HOST, VIP_A},
    rng::Rng,
};
use crate::{
    frame::{Frame, tcp_flags},
    lb::{RunResult, XDP_DROP, XDP_PASS, XDP_TX, in_lab, real_mac},
};

/// The program with connection and template tables of a chosen size, on a
/// private pin directory (the fixtures' `Dataplane` has small fixed tables).
/// Use inside [`in_lab`], like `Dataplane`.
pub struct Rig {
    pub table: lb_user::Table,
    pub(super) ebpf: aya::Ebpf,
    pub(super) _pins: crate::BpfPinDir,
    pub(super) ingress: u32,
}

impl Rig {
    pub fn new(sizes: lb_user::Sizes) -> Result<Rig> {
        let pins = crate::BpfPinDir::new()?;
        let table = lb_user::Table::new(lb_user::Pins::open(pins.path(), Some(sizes))?);
        let mut ebpf = lb_user::pins::load_maps(pins.path(), sizes)?;
        let prog: &mut aya::programs::Xdp = ebpf
            .program_mut(lb_common::PROGRAM_NAME)
            .context("program missing from the object")?
            .try_into()?;
        prog.load().context("loading the program")?;
        let ingress = lb_user::neigh::ifindex("lab0").context("no lab0: run inside in_lab")?;
        Ok(Rig {
            table,
            ebpf,
            _pins: pins,
            ingress,
        })
    }

    /// Runs the program once on `frame` (arriving on lab0).
    pub fn run(&self, frame: &[u8]) -> Result<RunResult> {
        use aya::programs::{TestRun, TestRunOptions, Xdp};
        let prog: &Xdp = self
            .ebpf
            .program(lb_common::PROGRAM_NAME)
            .context("program")?
            .try_into()?;
        let mut md = [0u8; 24];
        md[4..8].copy_from_slice(&(frame.len() as u32).to_ne_bytes());
        md[12..16].copy_from_slice(&self.ingress.to_ne_bytes());
        let mut out = vec![0u8; frame.len() + 512];
        let r = prog.test_run(TestRunOptions {
            data_in: Some(frame),
            data_out: Some(&mut out),
            ctx_in: Some(&md[..]),
            ..TestRunOptions::default()
        })?;
        out.truncate(r.data_size_out as usize);
        Ok(RunResult {
            action: r.return_value,
            frame: out,
        })
    }

    /// Packets per outcome reason, summed over CPUs.
    pub fn reasons(&self) -> Result<Vec<u64>> {
        let mut out = Vec::with_capacity(REASON_COUNT as usize);
        for i in 0..REASON_COUNT {
            out.push(
                self.table
                    .pins
                    .stats
                    .get(&i, 0)?
                    .iter()
                    .map(|c| c.packets)
                    .sum(),
            );
        }
        Ok(out)
    }
}

/// A flood of SYNs from random sources against `established` clients that
/// keep their connections busy.
#[derive(Clone, Debug)]
pub struct FloodConfig {
    pub seed: u64,
    /// Size of the connection (and template) table.
    pub conns: u32,
    /// SYNs of the flood, each from a new source address and port (distinct,
    /// in a scrambled order; at most 2^25).
    pub syns: u64,
    /// Established connections that keep sending during the flood.
    pub established: usize,
    /// Flood SYNs between two packets of one established connection.
    pub gap: u64,
    /// Each flood flow also sends an ACK after its SYN (completed handshakes,
    /// as a flood of real clients would; their entries are then "recently
    /// used" too). Without it, a SYN flood: entries never used again.
    pub handshakes: bool,
}

/// What the flood did.
#[derive(Clone, Debug, Default)]
pub struct FloodReport {
    pub cfg: Option<FloodConfig>,
    /// Flood SYNs forwarded as new flows / dropped because no entry could be
    /// made / anything else.
    pub flood_forwarded: u64,
    pub flood_table_full: u64,
    pub flood_other: u64,
    /// Packets of the established connections, and how they fared: to their
    /// own real server / passed to the host stack because their entry was
    /// evicted (IPVS would have it still; the client sees a reset) / anything
    /// else.
    pub est_packets: u64,
    pub est_kept: u64,
    pub est_evicted: u64,
    pub est_other: u64,
    /// Entries in the connection table afterwards.
    pub entries_after: usize,
    /// Packets per outcome reason over the whole flood.
    pub reasons: Vec<u64>,
    pub elapsed: Duration,
    /// Mean time of one `test_run` over the flood (kernel and syscall).
    pub ns_per_packet: f64,
}

impl FloodReport {
    pub fn render(&self) -> String {
        let Some(c) = &self.cfg else {
            return String::new();
        };
        format!(
            "flood: table {} entries, {} {} from distinct sources ({:.1}x the table), \
             {} established connections each sending every {} flood SYNs: \
             flood forwarded {} / table-full drops {} / other {}; \
             established packets {}: kept {} / evicted {} ({:.4}%) / other {}; \
             {} entries after; {:.2} s, {:.0} ns per packet",
            c.conns,
            c.syns,
            if c.handshakes {
                "handshakes (SYN, ACK)"
            } else {
                "SYNs"
            },
            c.syns as f64 / f64::from(c.conns),
            c.established,
            c.gap,
            self.flood_forwarded,
            self.flood_table_full,
            self.flood_other,
            self.est_packets,
            self.est_kept,
            self.est_evicted,
            100.0 * self.est_evicted as f64 / (self.est_packets.max(1) as f64),
            self.est_other,
            self.entries_after,
            self.elapsed.as_secs_f64(),
            self.ns_per_packet
        )
    }
}

/// The flood's service: TCP VIP_A:80, wrr over two reals.
pub(super) fn flood_setup(rig: &mut Rig) -> Result<()> {
    let id = ServiceId {
        proto: Proto::Tcp,
        addr: VIP_A.into(),
        port: 80,
    };
    rig.table.add_service(&ServiceSpec {
        id,
        sched: Sched::Wrr,
        persistent: None,
        netmask: HOST.into(),
        one_packet: false,
    })?;
    for last in [11, 12] {
        rig.table.add_real(
            &id,
            &RealSpec {
                id: RealId {
                    addr: Ipv4Addr::new(198, 51, 100, last).into(),
                    port: 80,
                },
                fwd: Fwd::Route,
                weight: 1,
                thresholds: Thresholds::NONE,
            },
        )?;
    }
    Ok(())
}

/// Which real (last address byte) a forwarded frame went to.
pub(super) fn routed_to(r: &RunResult) -> Option<u8> {
    (r.action == XDP_TX && r.frame.get(0..5) == Some(&real_mac(0)[0..5])).then(|| r.frame[5])
}

/// Runs a flood (see [`FloodConfig`]) on a fresh program in the lab.
pub fn flood(cfg: &FloodConfig) -> Result<FloodReport> {
    let cfg = cfg.clone();
    in_lab(move || {
        let mut rig = Rig::new(lb_user::Sizes {
            conns: cfg.conns,
            templates: cfg.conns,
            ..lb_user::Sizes::DEFAULT
        })?;
        flood_setup(&mut rig)?;
        flood_on(&rig, &cfg)
    })
}

pub(super) fn flood_on(rig: &Rig, cfg: &FloodConfig) -> Result<FloodReport> {
    use tcp_flags::{ACK, SYN};
    let mut rng = Rng::new(cfg.seed);
    let est = |i: usize, flags: u8| {
        Frame::tcp(Ipv4Addr::new(192, 0, 2, 200 + (i % 50) as u8), VIP_A)
            .ports(50_000 + i as u16, 80)
            .flags(flags)
            .build()
    };
    // Establish: SYN, then ACK.
    let mut owner = Vec::with_capacity(cfg.established);
    for i in 0..cfg.established {
        let real = routed_to(&rig.run(&est(i, SYN))?).context("establishing: SYN not forwarded")?;
        rig.run(&est(i, ACK))?;
        owner.push(real);
    }
    let before = rig.reasons()?;
    let mut rep = FloodReport {
        cfg: Some(cfg.clone()),
        ..FloodReport::default()
    };
    // One established packet every `step` flood SYNs, round robin.
    let step = (cfg.gap / cfg.established.max(1) as u64).max(1);
    let nets = [[192u8, 0, 2], [198, 51, 100], [203, 0, 113]];
    let start = Instant::now();
    let mut next_est = 0usize;
    let mut runs = 0u64;
    // Every flood flow is new: distinct (source, port) pairs in a scrambled
    // order (a bijection on 2^25 indices: 768 addresses x 43,691 ports).
    let salt = rng.next_u64();
    for n in 0..cfg.syns {
        let idx = (n.wrapping_mul(0x9e37_79b1).wrapping_add(salt)) & ((1 << 25) - 1);
        let net = nets[(idx % 3) as usize];
        let src = Ipv4Addr::new(net[0], net[1], net[2], ((idx / 3) % 256) as u8);
        let syn = Frame::tcp(src, VIP_A)
            .ports(1024 + (idx / 768) as u16, 80)
            .syn()
            .build();
        let r = rig.run(&syn)?;
        runs += 1;
        match (r.action, routed_to(&r)) {
            (_, Some(_)) => rep.flood_forwarded += 1,
            (XDP_DROP, None) => rep.flood_table_full += 1,
            _ => rep.flood_other += 1,
        }
        if cfg.handshakes {
            let mut ack = syn;
            // Same flow, flags SYN -> ACK: byte 47 is the TCP flags (no
            // options), and the TCP checksum is not looked at.
            ack[47] = ACK;
            rig.run(&ack)?;
            runs += 1;
        }
        if cfg.established > 0 && n % step == 0 {
            let i = next_est;
            next_est = (next_est + 1) % cfg.established;
            let r = rig.run(&est(i, ACK))?;
            runs += 1;
            rep.est_packets += 1;
            match routed_to(&r) {
                Some(real) if real == owner[i] => rep.est_kept += 1,
                _ if r.action == XDP_PASS => {
                    rep.est_evicted += 1;
                    // The client reconnects (its stack got a reset).
                    let real = routed_to(&rig.run(&est(i, SYN))?)
                        .context("re-establishing: SYN not forwarded")?;
                    rig.run(&est(i, ACK))?;
                    runs += 2;
                    owner[i] = real;
                }
                _ => rep.est_other += 1,
            }
        }
    }
    rep.elapsed = start.elapsed();
    rep.ns_per_packet = rep.elapsed.as_nanos() as f64 / runs.max(1) as f64;
    let after = rig.reasons()?;
    rep.reasons = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    rep.entries_after = rig.table.conn_entries()?.len();
    Ok(rep)
}
