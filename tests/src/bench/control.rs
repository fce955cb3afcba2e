//! Control-plane costs: invalidating one quiescent real server's
//! persistence templates (`expire_quiescent_template=1`) among a thousand
//! and among a million, the delay from `lbctl -e … -w N` returning to the
//! first packet scheduled under the new weight, `lbctl -L -n` over a
//! thousand services of sixteen reals, and kernel memory per entry; then
//! the listings at scale (`scale.rs`): a million connection entries, and
//! thousands of services of sixteen reals made through `Table`.

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context, Result, bail, ensure};
use lb_common::{
    MAP_CONNS, MAP_TEMPLATES, REASON_FWD_NEW, REASON_FWD_TEMPLATE, Template, TemplateKey,
};
use lb_tests::lb::XDP_TX;
use lb_user::{
    Sizes,
    model::{Proto, Sched, ServiceId, ServiceSpec},
};

use super::{
    batch,
    packet::{PERSIST_PORT, VIP, doc_addr, fill, persist, provision, real, real_of, tcp},
    plane::{PROG_LB, Plane, real_addr},
    scale::{self, ConnsReport, ServicesReport},
    stats::median,
};

pub struct ControlOpts {
    /// Templates in the map for the small and the large invalidation.
    pub templates: (usize, usize),
    /// Services of 16 reals for the listing.
    pub services: usize,
    /// Table sizes of the listing's plane (`-L` reads both tables).
    pub list_sizes: Sizes,
    /// Repetitions of each timed operation (median reported).
    pub reps: usize,
    pub lbctl: PathBuf,
    /// Connection entries listed by `lbctl -L -c -n` and `-L -n`
    /// (`scale::conns`).
    pub scale_conns: usize,
    /// Services of 16 reals saved and listed by `lbctl -S -n` and `-L -n`
    /// (`scale::services`, on `list_sizes`).
    pub scale_services: usize,
    /// Repetitions of each of those `lbctl` runs.
    pub scale_reps: usize,
}

#[derive(Clone, Debug, Default)]
pub struct ControlReport {
    /// Templates in the map at each invalidation.
    pub templates: (usize, usize),
    /// Median µs of `Table::edit_real(weight 0)` at each size.
    pub invalidate_us: (f64, f64),
    /// Median µs from `lbctl -e` returning to the first packet scheduled
    /// under the new weight.
    pub weight_apply_us: f64,
    /// Median wall time of that `lbctl -e` process, ms.
    pub lbctl_edit_ms: f64,
    /// Services and reals the listing printed.
    pub listed: (usize, usize),
    /// Median wall time of `lbctl -L -n`, ms.
    pub list_ms: f64,
    /// `Table::add_real` with the listing's dests in DESTS, ms.
    pub add_real_ms: f64,
    pub bytes_per_conn: f64,
    pub bytes_per_template: f64,
    /// `lbctl -L -c -n` and `-L -n` over `scale_conns` entries.
    pub conns: ConnsReport,
    /// `lbctl -S -n` and `-L -n` over `scale_services` services.
    pub services: ServicesReport,
    /// `lbctl daemon` at scale (`bench/daemon.rs`).
    pub daemon: Vec<super::daemon::DaemonRun>,
}

pub fn run(opts: &ControlOpts) -> Result<ControlReport> {
    let mut r = ControlReport::default();
    let (t, us) = invalidation(opts)?;
    r.templates = t;
    r.invalidate_us = us;
    eprintln!(
        "    invalidate: {:.1} µs at {} templates, {:.1} µs at {}",
        us.0, t.0, us.1, t.1
    );
    let (apply, edit) = weight_apply(opts)?;
    r.weight_apply_us = apply;
    r.lbctl_edit_ms = edit;
    eprintln!(
        "    weight: first packet {apply:.1} µs after lbctl -e returned (lbctl -e {edit:.1} ms)"
    );
    let l = listing(opts)?;
    r.listed = l.listed;
    r.list_ms = l.list_ms;
    r.add_real_ms = l.add_real_ms;
    r.bytes_per_conn = l.bytes_per_conn;
    r.bytes_per_template = l.bytes_per_template;
    eprintln!(
        "    list: {} services, {} reals in {:.1} ms; add_real {:.1} ms",
        l.listed.0, l.listed.1, l.list_ms, l.add_real_ms
    );
    r.conns = scale::conns(&opts.lbctl, opts.scale_conns, opts.scale_reps)?;
    let c = &r.conns;
    eprintln!(
        "    {} conn entries (filled in {:.1} s): lbctl -L -c -n {:.0} ms, {} KiB peak; -L -n {:.0} ms, {} KiB",
        c.entries, c.fill_s, c.list_c.ms, c.list_c.rss_kib, c.list_n.ms, c.list_n.rss_kib
    );
    r.services = scale::services(
        &opts.lbctl,
        opts.scale_services,
        opts.list_sizes,
        opts.scale_reps,
    )?;
    let s = &r.services;
    eprintln!(
        "    {} services x 16 reals (made in {:.1} s): lbctl -S -n {:.0} ms, {} KiB; -L -n {:.0} ms, {} KiB; -R of {} lines {:.0} ms",
        s.services,
        s.provision_s,
        s.save.ms,
        s.save.rss_kib,
        s.list.ms,
        s.list.rss_kib,
        s.restore_lines,
        s.restore.ms
    );
    Ok(r)
}

/// A client of the persistent service whose template is followed.
const PROBE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);

/// Sends a SYN from the probe client (a new port each time): (real, reason).
fn probe(plane: &Plane, port: &mut u16) -> Result<(usize, u32)> {
    *port += 1;
    let before = plane.reasons()?;
    let mut lb = plane.runner(PROG_LB)?;
    let (a, _) = lb.run(&tcp(PROBE, *port, VIP, PERSIST_PORT).syn().build())?;
    ensure!(a == XDP_TX, "probe SYN not forwarded (action {a})");
    let real = real_of(lb.output()).context("probe SYN went to no known real")?;
    let after = plane.reasons()?;
    let reason = [REASON_FWD_TEMPLATE, REASON_FWD_NEW]
        .into_iter()
        .find(|&r| after[r as usize] == before[r as usize] + 1)
        .context("probe SYN counted under neither fwd_template nor fwd_new")?;
    Ok((real, reason))
}

fn count_templates(plane: &mut Plane) -> Result<usize> {
    Ok(batch::count::<TemplateKey, Template>(
        plane.templates_fd()?,
    )?)
}

/// Quiescing the real server a client's template points to, with
/// `expire_quiescent_template=1`, at two template-table populations. The
/// client's next SYN must be scheduled afresh to another real, and no
/// template may have been deleted (the invalidation is an epoch bump).
fn invalidation(opts: &ControlOpts) -> Result<((usize, usize), (f64, f64))> {
    let large = opts.templates.1;
    let mut plane = Plane::new(Sizes {
        conns: 1 << 16,
        templates: (2 * large).next_power_of_two() as u32,
        ..Sizes::DEFAULT
    })?;
    provision(&mut plane)?;
    plane.table()?.set_sysctl("expire_quiescent_template", 1)?;
    let mut port = 20000u16;
    let mut counts = [0usize; 2];
    let mut times = [0f64; 2];
    for (stage, (want, port0)) in [(opts.templates.0, 1000u16), (large, 1100)]
        .into_iter()
        .enumerate()
    {
        let (x, _) = probe(&plane, &mut port)?;
        let (again, reason) = probe(&plane, &mut port)?;
        ensure!(
            reason == REASON_FWD_TEMPLATE && again == x,
            "the probe client's template is not followed"
        );
        let have = count_templates(&mut plane)?;
        fill(&mut plane, 0, want.saturating_sub(have), port0)?;
        let count = count_templates(&mut plane)?;
        ensure!(count >= want, "{count} templates in the map, wanted {want}");
        let mut us = Vec::new();
        for rep in 0..opts.reps {
            let t = plane.table()?;
            let start = Instant::now();
            t.edit_real(&persist(), &real(x, PERSIST_PORT, 0))?;
            us.push(start.elapsed().as_secs_f64() * 1e6);
            if rep + 1 < opts.reps {
                t.edit_real(&persist(), &real(x, PERSIST_PORT, 1))?;
            }
        }
        let (y, reason) = probe(&plane, &mut port)?;
        ensure!(
            reason == REASON_FWD_NEW && y != x,
            "after quiescing {} the client's SYN went to {} ({}) instead of being rescheduled",
            real_addr(x),
            real_addr(y),
            lb_common::REASON_NAMES[reason as usize]
        );
        // None deleted; the probe client's invalidated template stays beside its new one
        // (moved to port 65535, as ip_vs_check_template rehashes it: SEMANTICS §3.2).
        let after = count_templates(&mut plane)?;
        ensure!(
            after >= count,
            "templates were deleted ({count} -> {after}): invalidation must be lazy"
        );
        plane
            .table()?
            .edit_real(&persist(), &real(x, PERSIST_PORT, 1))?;
        counts[stage] = count;
        times[stage] = median(&us);
    }
    Ok(((counts[0], counts[1]), (times[0], times[1])))
}

fn lbctl(bin: &Path, dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin)
        .args(args)
        .env("LB_PIN_PATH", dir)
        .output()
        .context("running lbctl")?;
    if !out.status.success() {
        bail!(
            "lbctl {} failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `-A -t VIP:8080 -s wrr`, R1 weight 1, R2 weight 0: every new flow goes
/// to R1. Then `lbctl -e … -r R2 -w 100` and new flows until one reaches
/// R2 (wrr gives R2 100 of every 101 picks): the time from lbctl's exit to
/// that packet. Returns (median µs, median lbctl ms).
fn weight_apply(opts: &ControlOpts) -> Result<(f64, f64)> {
    const PORT: u16 = 8080;
    let svc = ServiceId {
        proto: Proto::Tcp,
        addr: VIP.into(),
        port: PORT,
    };
    let mut plane = Plane::new(lb_tests::lb::TEST_SIZES)?;
    let t = plane.table()?;
    t.add_service(&ServiceSpec {
        id: svc,
        sched: Sched::Wrr,
        persistent: None,
        netmask: Ipv4Addr::BROADCAST.into(),
        one_packet: false,
    })?;
    t.add_real(&svc, &real(0, PORT, 1))?;
    t.add_real(&svc, &real(1, PORT, 0))?;
    // lbctl takes the pin directory's lock.
    plane.release_table();
    let dir = plane.pin_dir().to_path_buf();
    let vs = format!("{VIP}:{PORT}");
    let r2 = format!("{}:{PORT}", real_addr(1));
    let mut lb = plane.runner(PROG_LB)?;
    let mut next = 0usize;
    let mut syn = || {
        next += 1;
        tcp(doc_addr(next), 30000 + (next / 768) as u16, VIP, PORT)
            .syn()
            .build()
    };
    let (mut apply, mut edit) = (Vec::new(), Vec::new());
    for _ in 0..opts.reps {
        for _ in 0..8 {
            let (a, _) = lb.run(&syn())?;
            ensure!(
                a == XDP_TX && real_of(lb.output()) == Some(0),
                "with R2 quiescent a new flow went elsewhere than R1"
            );
        }
        let frames: Vec<Vec<u8>> = (0..1000).map(|_| syn()).collect();
        let t0 = Instant::now();
        lbctl(
            &opts.lbctl,
            &dir,
            &["-e", "-t", &vs, "-r", &r2, "-w", "100"],
        )?;
        let returned = Instant::now();
        let mut hit = false;
        for f in &frames {
            let (a, _) = lb.run(f)?;
            ensure!(a == XDP_TX, "new flow not forwarded");
            if real_of(lb.output()) == Some(1) {
                hit = true;
                break;
            }
        }
        let done = Instant::now();
        ensure!(
            hit,
            "1000 new flows after `lbctl -e -w 100`, none reached R2"
        );
        apply.push((done - returned).as_secs_f64() * 1e6);
        edit.push((returned - t0).as_secs_f64() * 1e3);
        lbctl(&opts.lbctl, &dir, &["-e", "-t", &vs, "-r", &r2, "-w", "0"])?;
    }
    Ok((median(&apply), median(&edit)))
}

struct Listing {
    listed: (usize, usize),
    list_ms: f64,
    add_real_ms: f64,
    bytes_per_conn: f64,
    bytes_per_template: f64,
}

/// `lbctl -L -n` over `services` services of 16 reals (on the production
/// table sizes in the full run), every one made through `Table` as
/// `lbctl -A/-a` would.
fn listing(opts: &ControlOpts) -> Result<Listing> {
    let mut plane = Plane::new(opts.list_sizes)?;
    let first = |port: u16| ServiceId {
        proto: Proto::Tcp,
        addr: VIP.into(),
        port,
    };
    const BASE: u16 = 10000;
    let t = plane.table()?;
    for k in 0..opts.services {
        let id = first(BASE + k as u16);
        t.add_service(&ServiceSpec {
            id,
            sched: Sched::Wrr,
            persistent: None,
            netmask: Ipv4Addr::BROADCAST.into(),
            one_packet: false,
        })?;
        for i in 0..16 {
            t.add_real(&id, &real(i, 80, 1 + i as u32 % 4))?;
        }
    }

    // One more real server with every other dest in place, as `lbctl -a`.
    let extra = first(BASE - 1);
    t.add_service(&ServiceSpec {
        id: extra,
        sched: Sched::Wrr,
        persistent: None,
        netmask: Ipv4Addr::BROADCAST.into(),
        one_packet: false,
    })?;
    let start = Instant::now();
    t.add_real(&extra, &real(0, 80, 1))?;
    let add_real_ms = start.elapsed().as_secs_f64() * 1e3;
    t.delete_service(&extra)?;

    plane.release_table();
    let dir = plane.pin_dir().to_path_buf();
    let mut ms = Vec::new();
    let mut listed = (0, 0);
    for _ in 0..opts.reps.min(5) {
        let start = Instant::now();
        let out = lbctl(&opts.lbctl, &dir, &["-L", "-n"])?;
        ms.push(start.elapsed().as_secs_f64() * 1e3);
        listed = (
            out.lines().filter(|l| l.starts_with("TCP ")).count(),
            out.lines().filter(|l| l.contains(" Route ")).count(),
        );
    }
    ensure!(
        listed == (opts.services, 16 * opts.services),
        "lbctl -L -n listed {} services and {} reals, expected {} and {}",
        listed.0,
        listed.1,
        opts.services,
        16 * opts.services
    );
    let (c, cmax) = plane.memlock(MAP_CONNS)?;
    let (t, tmax) = plane.memlock(MAP_TEMPLATES)?;
    Ok(Listing {
        listed,
        list_ms: median(&ms),
        add_real_ms,
        bytes_per_conn: c as f64 / cmax as f64,
        bytes_per_template: t as f64 / tmax as f64,
    })
}
