//! The health-checking daemon at scale: `lbctl daemon` with 1,000 virtual services of 16 real
//! servers (8 answering, 8 that do not answer ARP), `checktype=connect`,
//! `checkinterval=5`, in the lab of `tests/src/daemon_lab.rs`. Measured from `/proc/PID`:
//! CPU time (user + system) over a window after the table is installed, as a share of one
//! core, and the resident memory (now and peak). Two configurations: every virtual service
//! checks the same 16 reals on the same port (the checks are shared: 16 distinct checks), and
//! every virtual service on its own port (16,000 distinct checks every 5 s).

use std::{path::Path, time::Duration, time::Instant};

use anyhow::{Context, Result, bail};

use lb_tests::{daemon_lab::DaemonLab, lb::wait_for};

/// One configuration measured.
#[derive(Clone, Debug, Default)]
pub struct DaemonRun {
    pub label: String,
    pub virtuals: usize,
    pub reals: usize,
    /// Seconds from the daemon's start to the table as expected.
    pub install_s: f64,
    /// CPU time over the window, percent of one core.
    pub cpu_pct: f64,
    pub rss_mb: f64,
    pub peak_rss_mb: f64,
    pub window_s: f64,
}

pub struct DaemonOpts {
    pub virtuals: usize,
    pub window: Duration,
    pub srv: std::path::PathBuf,
}

pub fn run(opts: &DaemonOpts) -> Result<Vec<DaemonRun>> {
    let ports: Vec<u16> = (0..opts.virtuals as u16).map(|i| 2000 + i).collect();
    let lab = DaemonLab::with_ports(8, 8, &opts.srv, &ports)?;
    let global = "checkinterval=5\nchecktimeout=3\n";
    let shared = lab.config(opts.virtuals, "connect", global, "");
    let distinct = lab.config_distinct("connect", global);
    let mut out = Vec::new();
    for (label, conf) in [
        ("same 16 reals, shared checks", shared),
        ("a port per virtual, distinct checks", distinct),
    ] {
        let r = measure(&lab, label, &conf, opts)?;
        eprintln!(
            "    daemon, {} virtuals x {} reals ({label}): installed in {:.1} s, \
             {:.1}% of a core, RSS {:.0} MB (peak {:.0} MB)",
            r.virtuals,
            r.reals / r.virtuals.max(1),
            r.install_s,
            r.cpu_pct,
            r.rss_mb,
            r.peak_rss_mb
        );
        out.push(r);
    }
    Ok(out)
}

fn measure(lab: &DaemonLab, label: &str, conf: &str, opts: &DaemonOpts) -> Result<DaemonRun> {
    let cfg = lb_user::daemon::config::parse(
        Path::new("bench.cf"),
        &conf.replace("@LOG@", "/dev/null"),
        &lb_user::resolve::Resolver::new(),
    )?;
    let reals: usize = cfg.virtuals.iter().map(|v| v.reals.len()).sum();
    let up = cfg.virtuals.len() * lab.answering.len();
    let mut d = lab.start_daemon(conf, &[], None)?;
    let started = Instant::now();
    wait_for(
        "the answering reals up",
        Duration::from_secs(120),
        || -> Result<Option<()>> {
            d.running()?;
            let w = lab.weights()?;
            let ones = w.values().filter(|&&w| w == 1).count();
            Ok((w.len() == reals && ones == up).then_some(()))
        },
    )
    .with_context(|| format!("{label}: log:\n{}", d.log()))?;
    let install_s = started.elapsed().as_secs_f64();
    let pid = d.pid();
    let t0 = cpu_ticks(pid)?;
    let w0 = Instant::now();
    std::thread::sleep(opts.window);
    let t1 = cpu_ticks(pid)?;
    let window_s = w0.elapsed().as_secs_f64();
    let hz = ticks_per_second();
    let (rss, peak) = rss_mb(pid)?;
    d.running()?;
    let st = d.stop()?;
    if !st.success() {
        bail!("{label}: the daemon exited with {st}");
    }
    Ok(DaemonRun {
        label: label.to_string(),
        virtuals: cfg.virtuals.len(),
        reals,
        install_s,
        cpu_pct: 100.0 * (t1 - t0) as f64 / hz / window_s,
        rss_mb: rss,
        peak_rss_mb: peak,
        window_s,
    })
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name (which may hold spaces), from field 3.
    let rest = stat.rsplit_once(')').context("/proc/PID/stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11).context("utime")?.parse()?;
    let stime: u64 = f.get(12).context("stime")?.parse()?;
    Ok(utime + stime)
}

fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |v| v as f64)
}

/// (VmRSS, VmHWM) of `pid`, MB.
fn rss_mb(pid: u32) -> Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb = |key: &str| -> Result<f64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(key))
            .with_context(|| format!("{key} missing"))?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("value")?
            .parse::<f64>()?)
    };
    Ok((kb("VmRSS:")? / 1024.0, kb("VmHWM:")? / 1024.0))
}
